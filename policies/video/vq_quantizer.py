"""The vector quantizer of the image tokenizer (checkpoints/video/vq.py).

Nearest code on the unit sphere: encoder outputs and codes are l2-normalised (ViT-VQGAN), so
the nearest code by L2 distance is the one of largest cosine. The codebook learns by an
exponential moving average of the encoder outputs assigned to each code, not by gradient; it
starts from real encoder outputs, and a code left unused for `restart_after` batches is
restarted on an encoder output of the current batch, drawn with probability growing with how
badly that output is quantized (dead codes are VQ's classic failure). The straight-through
estimator carries the decoder's gradient past the lookup; the commitment loss keeps the
encoder near its codes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class Quantized(NamedTuple):
    z_q: torch.Tensor  # (B, D, h, w) chosen codes, straight-through to the encoder output
    codes: torch.Tensor  # (B, h, w) int64
    commit_loss: torch.Tensor  # scalar
    perplexity: torch.Tensor  # scalar: exp(entropy) of the batch's code histogram


class VectorQuantizer(nn.Module):
    """K codes of dimension D, learned by EMA with dead-code restarts.

    Args:
        codebook_size: K.
        code_dim: D.
        beta: Weight of the commitment loss.
        decay: EMA decay of the per-code statistics (codes average ~1 / (1 - decay) batches).
        restart_after: A code no encoder output chose for this many training batches is dead,
            and restarts.
    """

    def __init__(self, codebook_size: int, code_dim: int, beta: float = 0.25,
                 decay: float = 0.99, restart_after: int = 50) -> None:
        super().__init__()
        self.codebook_size, self.beta = codebook_size, beta
        self.decay, self.restart_after = decay, restart_after
        K, D = codebook_size, code_dim
        self.register_buffer("embed", F.normalize(torch.randn(K, D), dim=1))  # (K, D) unit
        self.register_buffer("embed_avg", self.embed.clone())  # (K, D) EMA sum of members
        self.register_buffer("cluster_size", torch.ones(K))  # (K,) EMA hits per batch
        self.register_buffer("idle", torch.zeros(K, dtype=torch.int64))  # (K,) batches unused
        self.register_buffer("initialized", torch.tensor(False))

    def lookup(self, z: torch.Tensor) -> torch.Tensor:
        """(N, D) unit vectors -> (N,) int64 index of the nearest code."""
        return (z @ self.embed.T).argmax(dim=1)  # max cosine = min L2 between unit vectors

    def forward(self, z_e: torch.Tensor) -> Quantized:
        B, D, h, w = z_e.shape
        z_e = F.normalize(z_e, dim=1)  # (B, D, h, w)
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, D).detach()  # (N, D), N = B*h*w
        if self.training and not bool(self.initialized):
            self._init_from(flat)
        idx = self.lookup(flat)  # (N,)
        if self.training:
            self._ema_update(flat, idx)
        z_q = self.embed[idx].view(B, h, w, D).permute(0, 3, 1, 2)  # (B, D, h, w)
        commit = self.beta * F.mse_loss(z_e, z_q.detach())
        z_q = z_e + (z_q - z_e).detach()  # straight-through estimator
        return Quantized(z_q, idx.view(B, h, w), commit, perplexity(idx, self.codebook_size))

    @torch.no_grad()
    def _init_from(self, flat: torch.Tensor) -> None:
        # Codes that start where the data is are all in use from the first step.
        share = flat.shape[0] / self.codebook_size  # hits per code per batch, if even
        pick = torch.randint(0, flat.shape[0], (self.codebook_size,), device=flat.device)
        self.embed.copy_(flat[pick])
        self.embed_avg.copy_(flat[pick] * share)
        self.cluster_size.fill_(share)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, idx: torch.Tensor) -> None:
        K, share = self.codebook_size, flat.shape[0] / self.codebook_size
        hits = torch.bincount(idx, minlength=K).to(flat.dtype)  # (K,)
        sums = torch.zeros_like(self.embed_avg).index_add_(0, idx, flat)  # (K, D)
        self.cluster_size.mul_(self.decay).add_(hits, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        self.idle.add_(1).masked_fill_(hits > 0, 0)
        dead = self.idle >= self.restart_after  # (K,)
        n_dead = int(dead.sum())
        if n_dead:
            err = 1.0 - (flat * self.embed[idx]).sum(1)  # (N,) cosine distance to its code
            pick = torch.multinomial(err.clamp_min(0) + 1e-6, n_dead, replacement=True)
            self.embed_avg[dead] = flat[pick] * share
            self.cluster_size[dead] = share
            self.idle[dead] = 0
        self.embed.copy_(F.normalize(self.embed_avg, dim=1))


def perplexity(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """exp(entropy) of the histogram of `codes`: 1 if one code, codebook_size if all evenly."""
    p = torch.bincount(codes.reshape(-1), minlength=codebook_size).float() / codes.numel()
    return torch.exp(-(p * torch.log(p.clamp_min(1e-10))).sum())
