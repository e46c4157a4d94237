"""`agent train-tokenizer`: train the VQ image tokenizer on the camera frames of datasets.

    agent train-tokenizer --data DIR [--data DIR2 ...] --out TOK [--config small] [--steps N]
                          [--cameras front,wrist]

Every flag is a field of `Command` or of the VQTrainConfig it nests
(policies.video.train_tokenizer); agent/cli.py has tyro make the flags.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from agent.commands import BadInput
from policies.video.train_tokenizer import VQTrainConfig


@dataclass(frozen=True)
class TrainTokenizerCommand:
    """train the VQ image tokenizer on dataset frames

    Writes TOK/ (model.safetensors and config.json, loadable by VQTokenizer.load; metrics.jsonl;
    eval.json) and prints one JSON line: held-out PSNR, codebook usage, steps and wall time.
    """

    # Field docstrings are the flags' help, one line each (tyro keeps indented line breaks).
    data: Annotated[tuple[Path, ...], tyro.conf.UseAppendAction, tyro.conf.arg(metavar="DIR")]
    """(required) a dataset written by `agent collect`; repeat for several"""
    out: Annotated[Path, tyro.conf.arg(metavar="TOK")]
    """the tokenizer directory to write"""
    train: Annotated[VQTrainConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=VQTrainConfig)
    cameras: Annotated[str | None, tyro.conf.arg(metavar="NAMES")] = None
    """comma-separated camera names, e.g. front,wrist (None: all)"""
    device: str = "auto"
    """auto (a GPU when there is one), cpu, cuda"""
    threads: int | None = None
    """torch CPU threads (None: torch's choice)"""

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("--data DIR is required (a dataset from `agent collect`; repeat "
                             "for several)")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")


#: What `agent train-tokenizer` parses (agent/cli.py).
Command = TrainTokenizerCommand


def main(args: TrainTokenizerCommand) -> int:
    import torch
    from tqdm import tqdm

    from dataset.errors import DatasetError
    from policies.video.train_tokenizer import load_frames, train_tokenizer
    from policies.video.vq import VQTokenizer, get_config

    if args.out.exists() and any(args.out.iterdir()):
        raise BadInput(f"{args.out} exists and is not empty; choose another --out")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        cfg = args.train
        cameras = [c.strip() for c in args.cameras.split(",")] if args.cameras else None
        frames = load_frames(args.data, cameras, cfg.frame_stride, cfg.heldout_every)
        model_cfg = get_config(cfg.model)
        if frames.train.shape[1:] != (model_cfg.image_size, model_cfg.image_size, 3):
            raise ValueError(f"frames are {frames.train.shape[1:]}, the {cfg.model!r} tokenizer "
                             f"takes ({model_cfg.image_size}, {model_cfg.image_size}, 3)")
    except (ValueError, DatasetError) as exc:
        raise BadInput(f"{exc}") from None
    torch.manual_seed(cfg.seed)
    tok = VQTokenizer(model_cfg).to(device)
    print(f"training tokenizer {cfg.model} ({tok.num_params() / 1e6:.2f}M params, "
          f"{model_cfg.codebook_size} codes) on {len(frames.train)} frames, "
          f"{len(frames.heldout)} held out, on {device}", file=sys.stderr)
    bar = tqdm(total=cfg.steps, desc="train-tokenizer", unit="step", file=sys.stderr,
               disable=None)
    t0 = time.monotonic()

    def on_log(row: dict) -> None:
        if bar.disable and (row["step"] % 500 == 0 or row["step"] == cfg.steps):
            # No terminal (CI, nohup): a plain progress line instead of the bar.
            eta = (time.monotonic() - t0) * (cfg.steps / row["step"] - 1)
            print(f"step {row['step']}/{cfg.steps} loss {row['loss']:.4f} "
                  f"perplexity {row['perplexity']:.0f} {row['frames_per_s']:.1f} frames/s "
                  f"eta {eta / 60:.1f} min", file=sys.stderr, flush=True)
        if "eval_psnr" in row:
            tqdm.write(f"step {row['step']}: held-out PSNR {row['eval_psnr']:.2f} dB, "
                       f"codebook usage {row['eval_codebook_usage']:.0%}", file=sys.stderr)
        bar.update(row["step"] - bar.n)
        bar.set_postfix(loss=f"{row['loss']:.4f}", ppl=f"{row['perplexity']:.0f}")

    summary = train_tokenizer(tok, frames, args.out, cfg, on_log=on_log)
    bar.close()
    print(json.dumps({"psnr": round(summary["psnr"], 3),
                      "codebook_usage": round(summary["codebook_usage"], 4),
                      "perplexity": round(summary["perplexity"], 1),
                      "steps": summary["steps"], "wall_s": round(summary["wall_s"], 1),
                      "out": str(args.out)}))
    return 0
