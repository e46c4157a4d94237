"""Losses over absent values (policies.training.losses): never trained on as numbers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from policies.training.losses import masked_mse, plan_ce, smoothed_ce


def test_plan_ce_is_one_hot_on_absent_and_smooths_present_targets_over_bins_only():
    logp = torch.randn(2, 3, 9).log_softmax(-1)  # 8 bins, then the absent id
    target = torch.tensor([[8, 7, 0], [3, 8, 8]])
    got = plan_ce(logp, target, sigma=1.0, absent=8)
    want = torch.stack([-logp[0, 0, 8], smoothed_ce(logp[0, 1, :8], target[0, 1], 1.0),
                        smoothed_ce(logp[0, 2, :8], target[0, 2], 1.0),
                        smoothed_ce(logp[1, 0, :8], target[1, 0], 1.0),
                        -logp[1, 1, 8], -logp[1, 2, 8]]).mean()
    torch.testing.assert_close(got, want)
    # Without an absent id: the plan loss as it always was.
    assert torch.equal(plan_ce(logp, target, 1.0), smoothed_ce(logp, target, 1.0).mean())
    with pytest.raises(ValueError, match="segment's last"):
        plan_ce(logp, target, 1.0, absent=5)


def test_masked_mse_leaves_absent_targets_out():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    want = torch.tensor([[0.0, float("nan")], [3.0, 2.0]])
    torch.testing.assert_close(masked_mse(pred, want), torch.tensor((1 + 0 + 4) / 3))
    full = torch.tensor([[0.0, 1.0], [3.0, 2.0]])
    assert torch.equal(masked_mse(pred, full), F.mse_loss(pred, full))
    with pytest.raises(ValueError, match="every aux target"):
        masked_mse(pred, torch.full((2, 2), float("nan")))
