"""How well a run's video head predicts the future, on held-out episodes of a dataset.

    python bench/video.py --data DIR --policy RUN [--episodes 5] [--horizons 1,4,8]
                          [--stride 4] [--tokenizer TOK]

RUN is an `agent train --tokenizer TOK` run (policies.video.imagine.load_imagination). Pass a
dataset the run was not trained on (e.g. `agent collect --seed 500 ...`); its last --episodes
successful episodes are used. At every --stride-th frame t the head reads the observation at t
and the episode's own next chunk of actions (so this measures the prediction given the actions
that were taken, not the policy's choice) and predicts the head camera's frame at t+k for each
horizon k. Per horizon: PSNR and SSIM of the predicted frame against the real one (drawn both
ways policies.video.imagine.RENDERINGS names: `pred` from the most likely code of each cell,
`pred_expected` from the expected code embedding; the head's own rendering is reported as
`render`), of the
copy-the-last-frame baseline (frame t as the guess for t+k: what a head must beat to have
learned motion), and of the tokenizer's own reconstruction of the real frame (the ceiling: the
head predicts codes, so it cannot beat what the codes can show); plus the predicted state's EE
position error. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from envs.types import Observation  # noqa: E402
from policies.training.data import DemoEpisode, load_demos  # noqa: E402
from policies.video.imagine import FuturePredictor, load_imagination  # noqa: E402
from policies.video.vq import psnr  # noqa: E402

# SSIM as Wang et al. 2004 define it: an 11-tap Gaussian window (sigma 1.5) over luminance,
# C1 = (0.01 L)^2, C2 = (0.03 L)^2 for L = 255; scikit-image's gaussian_weights=True variant.
SSIM_SIGMA, SSIM_TAPS = 1.5, 11
SSIM_C1, SSIM_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601
WAYS = ("pred", "pred_expected", "copy_last", "ceiling")  # the frames each horizon scores


def _blur(x: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, H - 10, W - 10): separable Gaussian filter, valid part only."""
    r = np.arange(SSIM_TAPS) - SSIM_TAPS // 2
    k = np.exp(-0.5 * (r / SSIM_SIGMA) ** 2)
    k /= k.sum()
    n = SSIM_TAPS - 1
    x = sum(k[i] * x[:, i:x.shape[1] - n + i] for i in range(SSIM_TAPS))  # along H
    return sum(k[i] * x[:, :, i:x.shape[2] - n + i] for i in range(SSIM_TAPS))  # along W


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame SSIM of two uint8 batches (N, H, W, 3) -> (N,) in [-1, 1], on luminance."""
    if a.shape != b.shape or a.ndim != 4 or min(a.shape[1:3]) < SSIM_TAPS:
        raise ValueError(f"ssim needs two (N, H >= {SSIM_TAPS}, W >= {SSIM_TAPS}, 3) batches of "
                         f"one shape, got {a.shape} and {b.shape}")
    x, y = a.astype(np.float64) @ LUMA, b.astype(np.float64) @ LUMA  # (N, H, W)
    mx, my = _blur(x), _blur(y)
    vx, vy = _blur(x * x) - mx * mx, _blur(y * y) - my * my
    cov = _blur(x * y) - mx * my
    s = ((2 * mx * my + SSIM_C1) * (2 * cov + SSIM_C2)) / (
        (mx * mx + my * my + SSIM_C1) * (vx + vy + SSIM_C2))
    return s.mean(axis=(1, 2))  # (N,)


def episode_samples(pred: FuturePredictor, ep: DemoEpisode, horizons: list[int], stride: int
                    ) -> dict[int, dict[str, list[float]]]:
    """Per horizon: lists of psnr/ssim of prediction, copy-last and ceiling, EE error (m)."""
    pol, head = pred.policy, pred.head
    camera = pol.config.cameras[head.cfg.camera]
    H, ee = pol.config.chunk, pol.config.state_layout.ee_pos
    real_all = ep.frames[camera]  # (T, h, w, 3)
    out: dict[int, dict[str, list[float]]] = {k: {} for k in horizons}
    for t in range(0, len(ep.action) - max(horizons), stride):
        obs = Observation({c: ep.frames[c][t] for c in pol.config.cameras}, ep.state[t], ep.task)
        steps = np.minimum(np.arange(t, t + H), len(ep.action) - 1)  # padded as in training
        chunks = np.repeat(ep.action[steps][None], len(horizons), 0)  # one row per horizon
        logits, states = pred.predict(obs, chunks, torch.as_tensor(horizons))  # (nh, ...)
        frames = pred.render(logits, "argmax")  # (nh, h, w, 3)
        expected = pred.render(logits, "expected")  # (nh, h, w, 3)
        real = real_all[t + np.asarray(horizons)]  # (nh, h, w, 3)
        last = np.repeat(real_all[t][None], len(horizons), 0)
        tok = pred.tokenizer
        ceiling = tok.decode(tok.encode(real)).cpu().numpy()
        ee_err = np.linalg.norm(states[:, ee] - ep.state[t + np.asarray(horizons), ee], axis=1)
        parts = {"psnr_pred": psnr(frames, real), "psnr_pred_expected": psnr(expected, real),
                 "psnr_copy_last": psnr(last, real), "psnr_ceiling": psnr(ceiling, real),
                 "ssim_pred": ssim(frames, real), "ssim_pred_expected": ssim(expected, real),
                 "ssim_copy_last": ssim(last, real), "ssim_ceiling": ssim(ceiling, real),
                 "ee_err_m": ee_err}
        for i, h in enumerate(horizons):
            for name, values in parts.items():
                out[h].setdefault(name, []).append(float(values[i]))
    return out


def summarize(per_episode: list[dict[int, dict[str, list[float]]]], horizons: list[int]) -> dict:
    result = {}
    for h in horizons:
        merged: dict[str, list[float]] = {}
        for ep in per_episode:
            for name, values in ep[h].items():
                merged.setdefault(name, []).extend(values)
        if not merged:
            result[str(h)] = None
            continue
        mean = {name: float(np.mean(v)) for name, v in merged.items()}
        result[str(h)] = {
            "n": len(merged["psnr_pred"]),
            "psnr_db": {w: round(mean[f"psnr_{w}"], 2) for w in WAYS},
            "ssim": {w: round(mean[f"ssim_{w}"], 4) for w in WAYS},
            "ee_err_mm": round(mean["ee_err_m"] * 1e3, 1),
        }
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, action="append", required=True, metavar="DIR")
    p.add_argument("--policy", type=Path, required=True, metavar="RUN")
    p.add_argument("--episodes", type=int, default=5, help="the dataset's last N episodes")
    p.add_argument("--horizons", default="1,4,8", help="comma-separated steps ahead")
    p.add_argument("--stride", type=int, default=4, help="predict from every n-th frame")
    p.add_argument("--tokenizer", type=Path, default=None,
                   help="the head's tokenizer, if it moved (default: the recorded path)")
    args = p.parse_args(argv)
    policy, head, tok = load_imagination(args.policy, args.tokenizer)
    horizons = sorted({int(h) for h in args.horizons.split(",")})
    too_far = [h for h in horizons if not 1 <= h <= head.cfg.max_horizon]
    if too_far or args.episodes < 1 or args.stride < 1:
        raise SystemExit(f"error: horizons must lie in 1..{head.cfg.max_horizon} (the head's "
                         f"max_horizon; got {too_far}), --episodes and --stride >= 1")
    demos = load_demos(args.data, policy.config.cameras)[-args.episodes:]
    pred = FuturePredictor(policy, head, tok)
    per_episode = [episode_samples(pred, ep, horizons, args.stride) for ep in demos]
    summary = {"policy": str(args.policy), "data": [str(d) for d in args.data],
               "episodes": len(demos), "camera": policy.config.cameras[head.cfg.camera],
               "render": pred.render_mode,
               "horizons": summarize(per_episode, horizons)}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
