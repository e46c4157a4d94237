"""The token losses of training, including those that read absent values.

A policy trained on tasks with different objects (policies.training.mixed) has plan and aux
targets over the union of their objects, NaN where an episode's task lacks one. Those never
enter a loss as a number: the plan writes them as its absent id (one-hot, no smoothing into
the bins), and the aux regression leaves them out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def smoothed_ce(logp: torch.Tensor, target: torch.Tensor, sigma: float) -> torch.Tensor:
    """(..., A) log-probabilities of ordered bins, (...) target bins -> (...) cross-entropy
    against a Gaussian over neighbouring bins (HL-Gauss, Farebrother et al. 2024; one-hot when
    sigma is 0): a prediction one bin off is then nearly right, not as wrong as any other."""
    if sigma <= 0:
        return -logp.gather(-1, target[..., None])[..., 0]
    bins = torch.arange(logp.shape[-1], device=logp.device, dtype=torch.float32)
    q = (-0.5 * ((bins - target[..., None]) / sigma) ** 2).softmax(-1)  # (..., A)
    return -(q * logp).sum(-1)


def plan_ce(logp: torch.Tensor, target: torch.Tensor, sigma: float,
            absent: int | None = None) -> torch.Tensor:
    """Mean cross-entropy of the plan tokens: (B, Dp, A) log-probabilities over the plan
    segment, (B, Dp) local target ids.

    With `absent` (a union plan's absent id, the segment's last: action_codec.absent), the
    bins are [0, absent): a present target is smoothed over the bins only, so no probability
    is asked of the absent id for a value near the top bin, and an absent target is one-hot
    on the absent id, so no bin is asked for a value that does not exist.
    """
    if absent is None:
        return smoothed_ce(logp, target, sigma).mean()
    if logp.shape[-1] != absent + 1:
        raise ValueError(f"the absent id must be the plan segment's last ({logp.shape[-1] - 1}),"
                         f" got {absent}")
    is_absent = target == absent
    present = smoothed_ce(logp[..., :absent], target.clamp_max(absent - 1), sigma)
    return torch.where(is_absent, -logp[..., absent], present).mean()


def masked_mse(pred: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries of `want` that are not NaN (absent objects' aux
    targets, module doc).

    Raises:
        ValueError: every entry absent (nothing to learn from; a batch always holds the goal).
    """
    present = ~torch.isnan(want)
    if bool(present.all()):  # one task's objects: the loss exactly as it always was
        return F.mse_loss(pred, want)
    if not bool(present.any()):
        raise ValueError("every aux target of the batch is absent (NaN)")
    return F.mse_loss(pred[present], want[present])
