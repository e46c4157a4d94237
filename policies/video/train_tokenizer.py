"""Training the image tokenizer (checkpoints/video/vq.py) on camera frames of recorded datasets.

Frames come from datasets written by `agent collect` (LeRobot v3.0), every camera unless told
which. Whole episodes are held out (every `heldout_every`-th one) so the reported PSNR is on
frames the tokenizer never saw. AdamW with linear warm-up and a cosine decay; one device
(a CUDA GPU when there is one). Writes into the output directory as it goes: the tokenizer
(model.safetensors + config.json, every `checkpoint_every` steps and at the end),
metrics.jsonl (one row per `log_every` steps) and, at the end, eval.json.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
import tyro

from policies.video.vq import CONFIGS, VQOutput, VQTokenizer, get_config, psnr
from policies.video.vq_quantizer import perplexity

#: The tokenizer sizes (policies.video.vq.CONFIGS), as the choices of --model.
TokenizerName = Literal[tuple(sorted(CONFIGS))]  # type: ignore[valid-type]


@dataclass(frozen=True)
class VQTrainConfig:
    """What `agent train-tokenizer` trains with; each field is a flag
    (agent/commands/train_tokenizer.py)."""

    model: Annotated[TokenizerName, tyro.conf.arg(aliases=("--config",))] = "small"
    """tokenizer size (policies.video.vq.CONFIGS)"""
    steps: int = 20_000
    """optimizer steps"""
    batch_size: int = 32
    """frames per step"""
    lr: float = 1e-3
    """peak learning rate, after the linear warm-up"""
    min_lr_ratio: float = 0.1
    """the cosine decay ends at lr times this"""
    weight_decay: float = 0.01
    """AdamW weight decay"""
    warmup: int = 500
    """steps of linear learning-rate warm-up"""
    grad_clip: float = 1.0
    """gradient-norm clip"""
    log_every: int = 50
    """steps between rows of metrics.jsonl"""
    eval_every: Annotated[int, tyro.conf.arg(metavar="STEPS")] = 1000
    """steps between held-out evaluations (PSNR, codebook usage)"""
    checkpoint_every: int = 1000
    """steps between checkpoints (and at the last step)"""
    heldout_every: int = 10
    """every n-th episode is held out for evaluation"""
    frame_stride: int = 1
    """use every n-th frame of each episode (neighbouring frames are near-duplicates)"""
    max_eval_frames: int = 512
    """held-out frames evaluated at most"""
    seed: int = 0
    """seed of initialisation and sampling"""

    def __post_init__(self) -> None:
        get_config(self.model)  # unknown names fail here, with the known ones listed
        for name in ("steps", "batch_size", "log_every", "eval_every", "checkpoint_every",
                     "frame_stride", "max_eval_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.heldout_every < 2:
            raise ValueError(f"heldout_every must be >= 2, got {self.heldout_every}")
        for name in ("lr", "grad_clip"):
            if not getattr(self, name) > 0:  # not > also refuses NaN
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        for name in ("weight_decay", "warmup"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class FrameSplit:
    """Frames for training and held-out evaluation, (N, H, W, 3) uint8 each."""

    train: np.ndarray
    heldout: np.ndarray


def load_frames(dirs: Sequence[str | Path], cameras: Sequence[str] | None = None,
                frame_stride: int = 1, heldout_every: int = 10) -> FrameSplit:
    """Every `frame_stride`-th frame of the given cameras (all when None) of every episode.

    Episode i of the datasets taken in order is held out when i % heldout_every is
    heldout_every - 1; with fewer episodes than that, the last one is.

    Raises:
        ValueError: A camera a dataset lacks, frames of different sizes, or a single episode
            in total (nothing to hold out).
    """
    from dataset.reader import LeRobotDatasetReader

    episodes = []  # (reader, episode index, camera keys)
    for d in dirs:
        reader = LeRobotDatasetReader(d)
        keys = reader.camera_keys if cameras is None else [_camera_key(reader, c) for c in cameras]
        episodes += [(reader, k, keys) for k in range(reader.num_episodes)]
    if len(episodes) < 2:
        raise ValueError(f"need at least 2 episodes (one is held out), got {len(episodes)} "
                         f"in {[str(d) for d in dirs]}")
    held = {i for i in range(len(episodes)) if i % heldout_every == heldout_every - 1}
    held = held or {len(episodes) - 1}
    train, heldout = [], []
    for i, (reader, k, keys) in enumerate(episodes):
        for key in keys:
            (heldout if i in held else train).append(reader.frames(k, key)[::frame_stride])
    shapes = {f.shape[1:] for f in train + heldout}
    if len(shapes) != 1:
        raise ValueError(f"frames of different sizes across cameras/datasets: {sorted(shapes)}")
    return FrameSplit(np.concatenate(train), np.concatenate(heldout))


def _camera_key(reader, camera: str) -> str:
    key = camera if camera in reader.camera_keys else f"observation.images.{camera}"
    if key not in reader.camera_keys:
        names = [k.removeprefix("observation.images.") for k in reader.camera_keys]
        raise ValueError(f"dataset {reader.root} has no camera {camera!r}; it has {names}")
    return key


def lr_at(step: int, cfg: VQTrainConfig) -> float:
    warmup = min(cfg.warmup, cfg.steps // 5)  # a short run warms up for a fifth of it at most
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, cfg.steps - warmup))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(
        math.pi * progress)))


def make_optimizer(tok: VQTokenizer, cfg: VQTrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in tok.parameters() if p.dim() >= 2]
    no_decay = [p for p in tok.parameters() if p.dim() < 2]  # norms and biases
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg.lr, betas=(0.9, 0.99))


@torch.no_grad()
def evaluate(tok: VQTokenizer, frames: np.ndarray, batch_size: int = 64) -> dict[str, float]:
    """Reconstruction and codebook use on `frames` (N, H, W, 3) uint8.

    Returns:
        psnr: mean per-frame PSNR in dB of decode(encode(frames)) against frames.
        perplexity: exp(entropy) of the code histogram over all frames.
        codebook_usage: fraction of the codebook used at least once.
    """
    was_training = tok.training
    tok.eval()
    scores, codes = [], []
    for i in range(0, len(frames), batch_size):
        x = torch.from_numpy(frames[i:i + batch_size]).to(tok.device)  # (b, H, W, 3)
        c = tok.encode(x)  # (b, h, w)
        scores.append(psnr(tok.decode(c), x).cpu())
        codes.append(c.cpu())
    tok.train(was_training)
    all_codes = torch.cat(codes)
    K = tok.cfg.codebook_size
    return {"psnr": float(torch.cat(scores).mean()),
            "perplexity": float(perplexity(all_codes, K)),
            "codebook_usage": len(torch.unique(all_codes)) / K}


def train_step(tok: VQTokenizer, opt: torch.optim.Optimizer, frames: np.ndarray, lr: float,
               grad_clip: float) -> VQOutput:
    """One AdamW step on a batch of uint8 frames (B, H, W, 3); returns the forward's output."""
    for group in opt.param_groups:
        group["lr"] = lr
    result = tok(torch.from_numpy(frames).to(tok.device))
    opt.zero_grad(set_to_none=True)
    result.loss.backward()
    torch.nn.utils.clip_grad_norm_(tok.parameters(), grad_clip)
    opt.step()
    return result


def train_tokenizer(tok: VQTokenizer, frames: FrameSplit, out: Path, cfg: VQTrainConfig,
                    on_log: Callable[[dict], None] | None = None) -> dict:
    """Train `tok` in place on `frames.train`, writing checkpoints and metrics into `out`.

    Returns:
        The final evaluation on held-out frames (see `evaluate`) with steps, wall_s and the
        frame counts; also written to out/eval.json.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    rng = np.random.default_rng(cfg.seed)
    rng_eval = np.random.default_rng(cfg.seed + 1)
    n_eval = min(cfg.max_eval_frames, len(frames.heldout))
    eval_frames = frames.heldout[np.sort(rng_eval.choice(len(frames.heldout), n_eval, False))]
    opt = make_optimizer(tok, cfg)
    tok.train()
    t0 = time.monotonic()
    t_log, last_logged, row = t0, 0, {}
    for step in range(1, cfg.steps + 1):
        idx = rng.integers(0, len(frames.train), cfg.batch_size)
        result = train_step(tok, opt, frames.train[idx], lr_at(step - 1, cfg), cfg.grad_clip)
        last = step == cfg.steps
        evaluated = step % cfg.eval_every == 0 or last
        logged = step % cfg.log_every == 0 or evaluated
        if logged:
            now = time.monotonic()
            done = step - last_logged
            row = {"step": step, "loss": result.loss.item(),
                   "recon_loss": result.recon_loss.item(),
                   "commit_loss": result.commit_loss.item(),
                   "perplexity": result.perplexity.item(), "lr": opt.param_groups[0]["lr"],
                   "frames_per_s": done * cfg.batch_size / max(now - t_log, 1e-9)}
            if evaluated:
                row.update({f"eval_{k}": v for k, v in evaluate(tok, eval_frames).items()})
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            if on_log is not None:
                on_log(row)
        if step % cfg.checkpoint_every == 0 or last:
            tok.save(out)  # a killed run keeps a usable tokenizer
        if logged:
            t_log, last_logged = time.monotonic(), step  # rates count training, not eval/saving
    summary = {k.removeprefix("eval_"): v for k, v in row.items() if k.startswith("eval_")}
    summary.update(steps=cfg.steps, wall_s=time.monotonic() - t0,
                   codebook_size=tok.cfg.codebook_size, train_frames=len(frames.train),
                   heldout_frames=len(frames.heldout), eval_frames=n_eval)
    (out / "eval.json").write_text(json.dumps(summary, indent=2))
    return summary
