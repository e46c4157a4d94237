"""bench/video.py: SSIM against an independent implementation, and one real end-to-end run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agent.cli import main
from policies.video.vq import VQTokenizer, get_config
from tests.bench.conftest import load_bench

video = load_bench("video")


def _ssim_conv2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM by a full 2D Gaussian convolution (torch), as a second implementation."""
    r = torch.arange(11, dtype=torch.float64) - 5
    g = torch.exp(-0.5 * (r / 1.5) ** 2)
    w = (g[:, None] * g[None, :] / g.sum() ** 2)[None, None]  # (1, 1, 11, 11)
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    x, y = (torch.as_tensor(v, dtype=torch.float64) @ luma for v in (a, b))  # (N, H, W)
    f = lambda z: F.conv2d(z[:, None], w)[:, 0]  # noqa: E731
    mx, my = f(x), f(y)
    vx, vy, cov = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = (2 * mx * my + c1) * (2 * cov + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.mean((1, 2)).numpy()


def test_ssim_matches_a_2d_convolution_and_orders_noise():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1, 32, 40, 3)).astype(np.uint8)
    base = np.repeat(np.repeat(base[:, ::4, ::4], 4, 1), 4, 2)  # blocky: has structure
    noisy = [np.clip(base + rng.normal(0, s, base.shape), 0, 255).astype(np.uint8)
             for s in (5, 20, 60)]
    a, b = np.concatenate([base] * 3), np.concatenate(noisy)
    np.testing.assert_allclose(video.ssim(a, b), _ssim_conv2d(a, b), atol=1e-9)
    np.testing.assert_allclose(video.ssim(base, base), [1.0])
    s = video.ssim(a, b)
    assert 1 > s[0] > s[1] > s[2]
    with pytest.raises(ValueError, match="two .* batches of one shape"):
        video.ssim(base, base[:, :20])


def test_bench_reports_prediction_baseline_and_ceiling_per_horizon(tmp_path, capsys):
    data, tok, run = tmp_path / "data", tmp_path / "tok", tmp_path / "run"
    assert main(["collect", "--env", "mujoco:pick_place", "--policy", "scripted",
                 "--episodes", "1", "--out", str(data)]) == 0
    torch.manual_seed(0)
    VQTokenizer(get_config("tiny")).save(tok)
    assert main(["train", "--data", str(data), "--out", str(run), "--config", "nano",
                 "--steps", "2", "--batch-size", "2", "--tokenizer", str(tok)]) == 0
    capsys.readouterr()
    summary = video.main(["--data", str(data), "--policy", str(run), "--episodes", "1",
                          "--stride", "8"])
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith('{"policy"')
    assert set(summary["horizons"]) == {"1", "4", "8"} and summary["camera"] == "front"
    assert summary["render"] == "argmax"  # a codes-only head is drawn from its argmax codes
    for h in summary["horizons"].values():
        assert h["n"] > 0 and h["ee_err_mm"] >= 0
        assert set(h["psnr_db"]) == set(h["ssim"]) == {"pred", "pred_expected", "copy_last",
                                                       "ceiling"}
        assert all(-1 <= v <= 1 for v in h["ssim"].values())
    one, eight = summary["horizons"]["1"], summary["horizons"]["8"]
    # The scene moves: copying the last frame gets worse the further ahead.
    assert one["psnr_db"]["copy_last"] > eight["psnr_db"]["copy_last"]
    with pytest.raises(SystemExit, match=r"horizons must lie in 1..8"):
        video.main(["--data", str(data), "--policy", str(run), "--horizons", "1,9"])
