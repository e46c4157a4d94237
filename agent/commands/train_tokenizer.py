"""`agent train-tokenizer`: train the VQ image tokenizer on the camera frames of datasets.

    agent train-tokenizer --data DIR [--data DIR2 ...] --out TOK [--config small] [--steps N]
                          [--cameras front,wrist]

Writes TOK/ (model.safetensors + config.json, loadable by policies.video.vq.VQTokenizer.load;
metrics.jsonl; eval.json) and prints one JSON line: held-out PSNR, codebook usage, steps and
wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from policies.video.train_tokenizer import VQTrainConfig
    from policies.video.vq import CONFIGS

    d = VQTrainConfig()
    p = sub.add_parser("train-tokenizer", help="train the VQ image tokenizer on dataset frames",
                       description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, action="append", required=True, metavar="DIR",
                   help="a dataset written by `agent collect` (repeat for several)")
    p.add_argument("--out", type=Path, required=True, metavar="TOK")
    p.add_argument("--config", default=d.model, choices=sorted(CONFIGS), help="tokenizer size")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--cameras", default=None, metavar="NAMES",
                   help="comma-separated camera names, e.g. front,wrist (default: all)")
    p.add_argument("--frame-stride", type=int, default=d.frame_stride,
                   help="use every n-th frame of each episode")
    p.add_argument("--eval-every", type=int, default=d.eval_every, metavar="STEPS")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from dataset.errors import DatasetError
    from policies.video.train_tokenizer import VQTrainConfig, load_frames, train_tokenizer
    from policies.video.vq import VQTokenizer, get_config

    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"error: {args.out} exists and is not empty; choose another --out")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        cfg = VQTrainConfig(model=args.config, steps=args.steps, batch_size=args.batch_size,
                            lr=args.lr, frame_stride=args.frame_stride,
                            eval_every=args.eval_every, seed=args.seed)
        cameras = [c.strip() for c in args.cameras.split(",")] if args.cameras else None
        frames = load_frames(args.data, cameras, cfg.frame_stride, cfg.heldout_every)
        model_cfg = get_config(cfg.model)
        if frames.train.shape[1:] != (model_cfg.image_size, model_cfg.image_size, 3):
            raise ValueError(f"frames are {frames.train.shape[1:]}, the {cfg.model!r} tokenizer "
                             f"takes ({model_cfg.image_size}, {model_cfg.image_size}, 3)")
    except (ValueError, DatasetError) as exc:
        raise SystemExit(f"error: {exc}") from None
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
