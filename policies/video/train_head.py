"""Joint training of the video head (policies.video.head) with the policy's action tokens.

`agent train --tokenizer TOK` builds a VideoHead over the policy's trunk and adds its loss to
the action loss in the same optimizer step (GR-1 trains future frames next to actions; Emu3
weighs visual tokens 0.5). The tokenizer is frozen: it only turns real future frames into the
head's targets, so it is encoded once, up front, for every frame of the head's camera.

Targets of a sample at frame t of an episode: k is drawn uniformly from 1..max_horizon (one k
per sample, which is what teaches the head's horizon embedding); the target is the camera's
frame t+k (VQ codes) and the state at t+k (the state codec's bins), after k of the chunk's
actions. A sample with t + k past the episode's last frame is SKIPPED (masked out of the video
loss), not clamped to the last frame: demonstrations end the moment the task succeeds, with
the arm still moving, so the last frame is not what the scene looks like k steps later, and a
clamped target would teach the head that motion stops at the end of every chunk.

With pixel_weight > 0 (`--video-pixel-weight`) the first PIXEL_BATCH kept samples of each batch
are also rendered through the frozen decoder and scored against the real future frame
(policies.video.head, "Rendering"); only the first few, because that decoder pass costs about
0.5 s per 32 frames on a 2-core CPU, a quarter of a training step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import tyro

from policies.model.token_policy import TokenPolicy
from policies.training.data import Batch, DemoEpisode
from policies.video.head import (
    Present,
    VideoHead,
    VideoHeadConfig,
    VideoHeadError,
    VideoLoss,
    expected_frames,
    pixel_loss,
    video_loss,
)
from policies.video.imagine import save_video_head, tokenizer_record
from policies.video.vq import VQTokenizer

ENCODE_BATCH = 64  # frames per tokenizer call while precomputing the targets
PIXEL_BATCH = 16  # samples per batch whose rendered frame the pixel loss scores


def _flag(field: str) -> str:
    """The `agent train` flag of a VideoTrainConfig field."""
    named = {"tokenizer": "tokenizer", "visual_weight": "video-weight",
             "max_horizon": "video-horizon"}
    return named.get(field, "video-" + field.replace("_", "-"))


def _arg(field: str, metavar: str) -> object:
    return tyro.conf.arg(name=_flag(field), metavar=metavar)


@dataclass(frozen=True)
class VideoTrainConfig:
    """(experimental) The video-prediction head trained with the policy (--tokenizer); a run
    keeps these in RUN/video_config.json."""

    # Field docstrings are the flags' help (`_flag`), one line each.
    tokenizer: Annotated[Path | None, _arg("tokenizer", "TOK")] = None
    """(experimental) train a video head on this VQ tokenizer's codes (`agent train-tokenizer`)"""
    # Emu3 weighs visual tokens 0.5; the future state weighs state_weight.
    visual_weight: Annotated[float, _arg("visual_weight", "W")] = 0.5
    """(experimental) weight of the predicted frame's codes in the loss"""
    max_horizon: Annotated[int, _arg("max_horizon", "K")] = 8
    """(experimental) the head predicts 1..K steps ahead, K <= --chunk"""
    state_weight: Annotated[float, _arg("state_weight", "W")] = 1.0
    """(experimental) weight of the predicted future state in the loss"""
    camera: Annotated[int, _arg("camera", "I")] = 0
    """(experimental) index into the policy's cameras of the predicted frames (0: front)"""
    # The frame rendered from the head's expected code embedding against the real one
    # (log-MSE, i.e. -PSNR; policies.video.head, "Rendering").
    pixel_weight: Annotated[float, _arg("pixel_weight", "W")] = 0.0
    """(experimental) weight of the rendered frame's pixel loss (0: codes only)"""

    def __post_init__(self) -> None:
        if self.max_horizon < 1:
            raise ValueError(f"video horizon must be >= 1, got {self.max_horizon}")
        if not min(self.visual_weight, self.state_weight, self.pixel_weight) >= 0:
            raise ValueError(f"video loss weights must be >= 0, got visual {self.visual_weight}, "
                             f"state {self.state_weight}, pixel {self.pixel_weight}")
        if self.camera < 0:
            raise ValueError(f"video camera must be an index >= 0, got {self.camera}")
        head = [f for f in fields(self) if f.name != "tokenizer"]
        if self.tokenizer is None and any(getattr(self, f.name) != f.default for f in head):
            flags = [f"--{_flag(f.name)}" for f in head]
            raise ValueError(f"{', '.join(flags[:-1])} and {flags[-1]} need --tokenizer TOK")

    def to_dict(self) -> dict:
        tok = None if self.tokenizer is None else str(self.tokenizer)
        return {**asdict(self), "tokenizer": tok}


def head_config(policy: TokenPolicy, tokenizer: VQTokenizer, cfg: VideoTrainConfig
                ) -> VideoHeadConfig:
    """The head that fits `policy` and `tokenizer`; predicts max_horizon by default."""
    return VideoHeadConfig(horizon=cfg.max_horizon, max_horizon=cfg.max_horizon,
                           camera=cfg.camera, grid=tokenizer.cfg.grid,
                           codebook_size=tokenizer.cfg.codebook_size,
                           state_dim=policy.config.state_dim,
                           state_bins=policy.state_codec.vocab_size,
                           visual_weight=cfg.visual_weight, state_weight=cfg.state_weight,
                           pixel_weight=cfg.pixel_weight)


def check_fits(policy: TokenPolicy, tokenizer: VQTokenizer, head_cfg: VideoHeadConfig,
               demos: Sequence[DemoEpisode]) -> str:
    """The head camera's name; a clear error when policy, tokenizer, head or data disagree."""
    p = policy.config
    if head_cfg.max_horizon > p.chunk:
        raise VideoHeadError(f"video horizon {head_cfg.max_horizon} exceeds the chunk of "
                             f"{p.chunk} actions: the frame k steps ahead depends on actions the "
                             f"head does not see beyond the chunk; use a horizon in 1..{p.chunk}")
    if head_cfg.camera >= len(p.cameras):
        raise VideoHeadError(f"video camera index {head_cfg.camera} is not one of the policy's "
                             f"cameras {p.cameras}")
    camera = p.cameras[head_cfg.camera]
    size = tokenizer.cfg.image_size
    shape = demos[0].frames[camera].shape[1:]
    if shape != (size, size, 3):
        raise VideoHeadError(f"camera {camera!r} frames are {shape}, the tokenizer takes "
                             f"({size}, {size}, 3)")
    # The trunk reads [prefix + plan + chunk] and then the head's queries.
    n = policy.model.cfg.max_seq_len
    context = (p.text_len + policy.model.cfg.n_patches + p.state_dim + 3
               + (p.plan_dim + 1 if p.plan_dim else 0) + p.chunk * p.action_dim)
    if context + head_cfg.n_queries > n:
        raise VideoHeadError(f"context {context} + {head_cfg.n_queries} video queries exceeds "
                             f"the trunk's max_seq_len {n}; use a tokenizer with a smaller grid")
    return camera


class VideoTraining:
    """The head, its precomputed targets and its loss term for policies.training.train.train."""

    def __init__(self, policy: TokenPolicy, demos: Sequence[DemoEpisode], tokenizer: VQTokenizer,
                 cfg: VideoTrainConfig, head: VideoHead | None = None, seed: int = 0) -> None:
        if cfg.tokenizer is None:
            raise VideoHeadError("VideoTrainConfig.tokenizer is None: the head's targets are "
                                 "that tokenizer's codes, give its directory")
        hcfg = head.cfg if head is not None else head_config(policy, tokenizer, cfg)
        camera = check_fits(policy, tokenizer, hcfg, demos)
        self.policy, self.tokenizer, self.cfg = policy, tokenizer, cfg
        self.head = head if head is not None else VideoHead(hcfg, policy.model.cfg.d_model)
        self.codes = [self._encode(d.frames[camera]) for d in demos]  # (T, G, G) int64 each
        self.frames = [d.frames[camera] for d in demos]  # (T, H, W, 3) uint8 each
        tokenizer.requires_grad_(False)  # frozen: the pixel loss trains the head through it
        self.bins = [torch.as_tensor(policy.state_codec.encode(d.state.astype(np.float32)),
                                     dtype=torch.int64) for d in demos]  # (T, Ds) each
        self.rng = np.random.default_rng(seed)
        self.record = tokenizer_record(cfg.tokenizer, tokenizer)  # hashed once, saved each time

    def _encode(self, frames: np.ndarray) -> torch.Tensor:
        return torch.cat([self.tokenizer.encode(frames[i:i + ENCODE_BATCH]).cpu()
                          for i in range(0, len(frames), ENCODE_BATCH)])  # (T, G, G)

    def targets(self, index: np.ndarray) -> tuple[torch.Tensor, Present, torch.Tensor,
                                                  torch.Tensor, torch.Tensor, np.ndarray]:
        """(B, 2) (episode, frame) rows -> horizons (B,), the present (frame t), the target
        codes (B, G, G) and state bins (B, Ds) at t + k, keep (B,) bool: False where
        t + k is past the episode (module doc), and the (episode, frame) of each target."""
        k = self.rng.integers(1, self.head.cfg.max_horizon + 1, size=len(index))  # (B,)
        codes, bins, keep, where = [], [], [], []
        for (e, t), kk in zip(index, k, strict=True):
            last = len(self.codes[e]) - 1
            keep.append(t + kk <= last)
            f = min(t + kk, last)  # a placeholder where skipped: keep masks it out
            codes.append(self.codes[e][f])
            bins.append(self.bins[e][f])
            where.append((e, f))
        present = Present(torch.stack([self.codes[e][t] for e, t in index]),
                          torch.stack([self.bins[e][t] for e, t in index]))
        return (torch.as_tensor(k, dtype=torch.int64), present, torch.stack(codes),
                torch.stack(bins), torch.as_tensor(keep, dtype=torch.bool), np.asarray(where))

    def loss(self, model: torch.nn.Module, x_context: torch.Tensor, batch: Batch) -> VideoLoss:
        """The video loss of a batch; x_context (B, S, D) = [prefix + plan + whole chunk]."""
        if batch.index is None:
            raise VideoHeadError("the batch has no (episode, frame) index; video targets are "
                                 "looked up by it (policies.training.data.ChunkSampler sets it)")
        k, present, codes, bins, keep, where = self.targets(batch.index)
        dev = x_context.device
        present = Present(present.codes.to(dev), present.bins.to(dev))
        pred = self.head(model, x_context, present, k.to(dev))
        loss = video_loss(pred, codes.to(dev), bins.to(dev), self.head.cfg, keep.to(dev))
        w = self.head.cfg.pixel_weight
        if w == 0:
            return loss
        rows = torch.nonzero(keep).flatten()[:PIXEL_BATCH].tolist()  # at least one, or 0 loss
        rows = rows or [0]
        real = np.stack([self.frames[e][f] for e, f in where[rows]])  # (n, H, W, 3) uint8
        target = torch.as_tensor(real, device=dev).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        frames = expected_frames(pred.code_logits[rows], self.tokenizer)  # (n, 3, H, W)
        pixels = pixel_loss(frames, target, keep[rows].to(dev))
        return loss._replace(total=loss.total + w * pixels, pixels=pixels)

    def save(self, run: Path) -> None:
        save_video_head(self.head, self.record, run)
