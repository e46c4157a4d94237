"""`agent train`: fit codecs and train the token policy on recorded datasets.

    agent train --data DIR [--data DIR2 ...] --out RUN [--config small] [--steps N] [--resume]
                [--tokenizer TOK [--video-weight 0.5] [--video-horizon 8]
                 [--video-pixel-weight 0]]

Writes RUN/ (safetensors weights, config.json, vocab.json, codecs, train_state.pt for
--resume, metrics.jsonl, loss.png). Under `torchrun --nproc_per_node K agent train ...` it
trains with DistributedDataParallel. Closed-loop evaluation in simulation every --eval-every
steps on held-out seeds (`agent eval`'s), when --eval-env is given. With --tokenizer (a
directory from `agent train-tokenizer`) a video head learns, in the same steps, the front
camera's frame and the state k in 1..--video-horizon steps after each chunk starts; it is saved
in RUN/video_head/ (policies.video.train_head, policies.video.imagine.load_imagination). `--init` a
run
that has a video head, with the same --tokenizer, and training continues that head too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from policies.model.transformer import CONFIGS
    from policies.training.train import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train the token policy on datasets",
                       description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, action="append", required=True, metavar="DIR",
                   help="a dataset written by `agent collect` (repeat for several)")
    p.add_argument("--out", type=Path, required=True, metavar="RUN")
    p.add_argument("--config", default=d.model, choices=sorted(CONFIGS), help="model size")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--chunk", type=int, default=d.chunk, help="actions predicted per inference")
    p.add_argument("--execute", type=int, default=d.execute,
                   help="actions executed per inference")
    p.add_argument("--shift-px", type=int, default=d.shift_px,
                   help="random-shift augmentation, pixels (0: off)")
    p.add_argument("--label-sigma", type=float, default=d.label_sigma,
                   help="Gaussian label smoothing over neighbouring action bins, in bins (0: off)")
    p.add_argument("--aux-weight", type=float, default=d.aux_weight,
                   help="weight of the auxiliary object-pose loss, used when the data recorded "
                        "observation.environment_state (0: off)")
    p.add_argument("--plan-weight", type=float, default=d.plan_weight,
                   help="weight of the plan tokens (the policy writes where the named cube and "
                        "plate are before its actions), used when the data recorded "
                        "observation.environment_state (0: no plan tokens)")
    p.add_argument("--plan-objects", action=argparse.BooleanOptionalAction,
                   default=d.plan_objects,
                   help="the plan starts with every object's position, then the named cube and "
                        "plate (--no-plan-objects: the named ones only)")
    p.add_argument("--film", action="store_true",
                   help="condition the image encoder on the instruction (FiLM)")
    p.add_argument("--stale-prefix", type=float, default=d.stale_prefix, metavar="P",
                   help="share of samples whose first actions are fed perturbed, as the stale "
                        "prefix --exec rtc forces (policies.training.data.stale_prefix); 0: off")
    p.add_argument("--stale-prefix-steps", type=int, default=d.stale_prefix_steps, metavar="D",
                   help="longest such prefix, in steps (1..chunk-1)")
    p.add_argument("--stale-prefix-lag", type=int, default=d.stale_prefix_lag, metavar="L",
                   help="take the prefix from the expert's chunk 1..L steps earlier (an "
                        "out-of-date plan) instead of adding noise; 0: noise")
    p.add_argument("--value-weight", type=float, default=d.value_weight,
                   help="weight of the expected-value loss on action tokens (0: off)")
    p.add_argument("--tokenizer", type=Path, default=None, metavar="TOK",
                   help="train a video-prediction head on this VQ tokenizer's codes of future "
                        "frames, jointly with the actions (written to RUN/video_head/)")
    p.add_argument("--video-weight", type=float, default=None, metavar="W",
                   help="weight of the predicted frame's codes in the loss (default 0.5, "
                        "Emu3's; the future state weighs 1); needs --tokenizer")
    p.add_argument("--video-horizon", type=int, default=None, metavar="K",
                   help="the head predicts 1..K steps ahead, K <= --chunk (default 8); "
                        "needs --tokenizer")
    p.add_argument("--video-pixel-weight", type=float, default=None, metavar="W",
                   help="also score the frame rendered from the head's expected code embedding "
                        "against the real one (log-MSE, i.e. -PSNR), with this weight "
                        "(default 0: codes only); needs --tokenizer")
    p.add_argument("--resume", action="store_true", help="continue RUN from its last checkpoint")
    p.add_argument("--init", type=Path, default=None, metavar="POLICY",
                   help="start from this trained policy's weights and codecs instead of a fresh "
                        "model (fine-tuning; e.g. with --tokenizer, add a video head to it); "
                        "its chunk, execute, plan and FiLM settings are kept")
    p.add_argument("--eval-env", default=None, metavar="SPEC")
    p.add_argument("--eval-every", type=int, default=0, metavar="STEPS")
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(func=main)


def _train_config(args: argparse.Namespace):
    from policies.training.train import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    given = {"model": args.config, "steps": args.steps, "batch_size": args.batch_size,
             "lr": args.lr, "chunk": args.chunk, "execute": args.execute, "seed": args.seed,
             "shift_px": args.shift_px, "label_sigma": args.label_sigma,
             "aux_weight": args.aux_weight, "value_weight": args.value_weight,
             "plan_weight": args.plan_weight, "plan_objects": args.plan_objects,
             "film": args.film, "stale_prefix": args.stale_prefix,
             "stale_prefix_steps": args.stale_prefix_steps,
             "stale_prefix_lag": args.stale_prefix_lag}
    return TrainConfig(**{k: v for k, v in given.items() if k in names})


def main(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from policies.training.data import load_demos
    from policies.training.train import build_policy, load_run, train, write_metrics

    if args.threads:
        torch.set_num_threads(args.threads)
    if world_size() > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    cfg = _train_config(args)
    demos = load_demos(args.data)
    start, opt_state = 0, None
    if args.resume and args.init is not None:
        raise SystemExit("error: --resume continues RUN from its own checkpoint; --init starts "
                         "a new run from another policy; give one of them")
    if args.resume:
        if not (args.out / "train_state.pt").is_file():
            raise SystemExit(f"error: --resume given but {args.out} holds no training state")
        policy, state = load_run(args.out)
        check_demos_fit(policy, demos)
        start, opt_state = state["step"], state["optimizer"]
        if start >= cfg.steps:
            raise SystemExit(f"error: {args.out} already trained {start} steps; raise --steps")
    else:
        if args.out.exists() and any(args.out.iterdir()):
            raise SystemExit(f"error: {args.out} exists and is not empty; use --resume to "
                             "continue it, or another --out")
        if args.init is None:
            policy = build_policy(demos, cfg)
        else:
            policy, cfg = load_init(args.init, cfg)
            check_demos_fit(policy, demos)
    video = make_video_training(args, policy, demos, cfg.seed)  # errors before --out is written
    if torch.distributed.is_initialized():
        torch.distributed.barrier()  # every rank checked --out before rank 0 writes into it
    rank0 = int(os.environ.get("RANK", 0)) == 0
    if rank0:
        args.out.mkdir(parents=True, exist_ok=True)
        init = str(args.init) if args.init is not None else _recorded_init(args.out)
        (args.out / "train_config.json").write_text(json.dumps({**asdict(cfg), "init": init},
                                                               indent=2))
        frames = sum(len(d.action) for d in demos)
        print(f"training {cfg.model} ({policy.model.num_params() / 1e6:.2f}M params) on "
              f"{len(demos)} episodes / {frames} frames from {len(args.data)} dataset(s)",
              file=sys.stderr)
        off = [name for name, on, w in (
            ("auxiliary object-pose targets", policy.model.aux_head is not None, cfg.aux_weight),
            ("plan tokens", policy.config.plan_dim > 0, cfg.plan_weight)) if w > 0 and not on]
        if off:
            # Not silent: both need every episode's environment state.
            missing = sum(d.env_state is None for d in demos)
            print(f"{' and '.join(off)}: off ({missing} of {len(demos)} episodes have "
                  f"no observation.environment_state; datasets recorded before it existed, "
                  f"or from a real arm)", file=sys.stderr)
    if rank0 and video is not None:
        (args.out / "video_config.json").write_text(json.dumps(video.cfg.to_dict(), indent=2))
        print(f"video head: {video.head.num_params() / 1e6:.2f}M params, "
              f"{video.head.cfg.grid}x{video.head.cfg.grid} codes of camera "
              f"{policy.config.cameras[video.head.cfg.camera]!r}, horizons 1.."
              f"{video.head.cfg.max_horizon}", file=sys.stderr)
    eval_fn = make_eval_fn(args.eval_env, args.eval_episodes) if args.eval_env else None
    tokens = policy.config.chunk * policy.config.action_dim
    bar = tqdm(total=cfg.steps, initial=start, desc="train", unit="step", file=sys.stderr,
               disable=not rank0 or None)

    t_start = time.monotonic()

    def on_log(log) -> None:
        write_metrics(args.out, [log])  # as we go: a killed run keeps its curve
        if bar.disable and (log.step % 100 == 0 or log.step == cfg.steps):
            # No terminal (CI, nohup): a plain progress line instead of the bar.
            done = (log.step - start) / max(1, cfg.steps - start)
            eta = (time.monotonic() - t_start) * (1 - done) / max(done, 1e-9)
            aux = "" if log.aux_loss is None else f" aux {log.aux_loss:.3f}"
            aux += "" if log.value_loss is None else f" value {log.value_loss:.3f}"
            aux += "" if log.plan_loss is None else f" plan {log.plan_loss:.3f}"
            aux += "" if log.video_loss is None else f" video {log.video_loss:.3f}"
            print(f"step {log.step}/{cfg.steps} loss {log.loss:.3f}{aux} "
                  f"{log.samples_per_s * tokens:.0f} tok/s eta {eta / 60:.1f} min",
                  file=sys.stderr, flush=True)
        bar.update(log.step - bar.n)
        post = {"loss": f"{log.loss:.3f}", "tok/s": f"{log.samples_per_s * tokens:.0f}"}
        if log.aux_loss is not None:
            post["aux"] = f"{log.aux_loss:.3f}"
        if log.plan_loss is not None:
            post["plan"] = f"{log.plan_loss:.3f}"
        if log.video_loss is not None:
            post["video"] = f"{log.video_loss:.3f}"
        if log.eval_success is not None:
            post["eval"] = f"{log.eval_success:.0%}"
            tqdm.write(f"step {log.step}: eval success {log.eval_success:.0%}", file=sys.stderr)
        bar.set_postfix(post)

    train(policy, demos, args.out, cfg, start_step=start, optimizer_state=opt_state,
          on_log=on_log, eval_fn=eval_fn, eval_every=args.eval_every, video=video)
    bar.close()
    if rank0:
        plot_loss(args.out)
        print(f"saved {args.out}", file=sys.stderr)
    return 0


def make_video_training(args: argparse.Namespace, policy, demos, seed: int):
    """The VideoTraining --tokenizer asks for (None without it); on --resume, the run's own
    head, which must have been trained against the same tokenizer."""
    from dataclasses import replace

    import torch

    from policies.video.head import VideoHeadError
    from policies.video.imagine import check_tokenizer, has_video_head, load_video_head
    from policies.video.train_head import VideoTrainConfig, VideoTraining
    from policies.video.vq import TokenizerError, VQTokenizer

    given = {"visual_weight": args.video_weight, "max_horizon": args.video_horizon,
             "pixel_weight": args.video_pixel_weight}
    given = {k: v for k, v in given.items() if v is not None}
    resumed_head = args.resume and has_video_head(args.out)
    init_head = args.init is not None and has_video_head(args.init)
    if args.tokenizer is None:
        if given:
            raise SystemExit("error: --video-weight, --video-horizon and --video-pixel-weight "
                             "need --tokenizer TOK")
        if resumed_head:
            raise SystemExit(f"error: {args.out} was trained with a video head; pass the "
                             f"--tokenizer it was trained with to resume it")
        return None
    if world_size() > 1:
        raise SystemExit(f"error: --tokenizer (joint video training) runs in one process, got "
                         f"WORLD_SIZE {world_size()}; run it without torchrun")
    if args.resume and not resumed_head:
        raise SystemExit(f"error: {args.out} was trained without a video head, so its "
                         f"optimizer state has none; start a new run to add --tokenizer")
    device = "cuda" if torch.cuda.is_available() else "cpu"  # encodes the targets once
    try:
        head = None
        if resumed_head:
            head, record = load_video_head(args.out, policy.model.cfg.d_model)
            tok = check_tokenizer(record, args.tokenizer).to(device)
            saved = {"visual_weight": head.cfg.visual_weight,
                     "max_horizon": head.cfg.max_horizon, "pixel_weight": head.cfg.pixel_weight}
            changed = {k: (v, saved[k]) for k, v in given.items() if v != saved[k]}
            if changed:
                raise SystemExit(f"error: --resume keeps the run's video head; these differ "
                                 f"from it (given, saved): {changed}")
            given = saved
        elif init_head:  # fine-tune the init run's head too; its horizons are its embedding's
            head, record = load_video_head(args.init, policy.model.cfg.d_model)
            tok = check_tokenizer(record, args.tokenizer).to(device)
            if given.get("max_horizon", head.cfg.max_horizon) != head.cfg.max_horizon:
                raise SystemExit(f"error: --init {args.init} has a video head of horizon "
                                 f"{head.cfg.max_horizon}; --video-horizon must match it or "
                                 f"be left out")
            weights = {k: v for k, v in given.items() if k != "max_horizon"}
            head.cfg = replace(head.cfg, **weights)
            given = {"visual_weight": head.cfg.visual_weight, "state_weight":
                     head.cfg.state_weight, "pixel_weight": head.cfg.pixel_weight,
                     "max_horizon": head.cfg.max_horizon, "camera": head.cfg.camera}
        else:
            tok = VQTokenizer.load(args.tokenizer, device=device)
        cfg = VideoTrainConfig(tokenizer=args.tokenizer, **given)
        return VideoTraining(policy, demos, tok, cfg, head=head, seed=seed)
    except (TokenizerError, VideoHeadError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None


def _recorded_init(run: Path) -> str | None:
    """The --init a resumed run started from (train_config.json), so resuming keeps it."""
    try:
        return json.loads((run / "train_config.json").read_text()).get("init")
    except (OSError, ValueError):
        return None


def load_init(path: Path, cfg):
    """The policy --init names and the TrainConfig with its chunk/plan/FiLM settings (a value
    given on the command line that contradicts the checkpoint is an error, not overridden)."""
    from dataclasses import replace

    from policies.model.token_policy import CheckpointMismatchError, TokenPolicy, is_checkpoint
    from policies.training.train import TrainConfig

    if not is_checkpoint(path):
        raise SystemExit(f"error: --init {path} is not a token-policy checkpoint (a directory "
                         f"with config.json, e.g. checkpoints/default or a training run)")
    try:
        policy = TokenPolicy.load(path)
    except CheckpointMismatchError as e:
        raise SystemExit(f"error: --init {path}: {e}") from None
    pc, default = policy.config, TrainConfig()
    kept = {"chunk": pc.chunk, "execute": pc.execute, "plan_objects": pc.plan_objects,
            "film": policy.model.cfg.film}
    clash = {k: (getattr(cfg, k), v) for k, v in kept.items()
             if getattr(cfg, k) != v and getattr(cfg, k) != getattr(default, k)}
    if clash:
        raise SystemExit(f"error: --init {path} fixes these settings; drop the flags that "
                         f"contradict it (given, checkpoint): {clash}")
    return policy, replace(cfg, **kept)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def check_demos_fit(policy, demos) -> None:
    """A dataset with other features than the checkpoint was trained on is an error."""
    from policies.model.token_policy import CheckpointMismatchError
    from policies.training.data import demo_layouts

    c = policy.config
    d = demos[0]
    try:
        policy.check_layouts(*demo_layouts(demos), "the dataset")
    except CheckpointMismatchError as e:
        raise SystemExit(f"error: {e}") from None
    missing = [cam for cam in c.cameras if cam not in d.frames]
    if missing:
        raise SystemExit(f"error: dataset lacks camera(s) {missing} the checkpoint uses")


def make_eval_fn(spec: str, episodes: int):
    import numpy as np
    import torch

    import envs
    from agent.commands.eval import EVAL_SEED_BASE
    from agent.runtime import ChunkBroker, run_episode
    from agent.timing import StageTimer

    env = envs.make(spec)

    def evaluate(policy) -> float:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # batch-1 decoding is op-overhead bound: threads only contend
        try:
            results = [run_episode(env, ChunkBroker(policy), EVAL_SEED_BASE + s, StageTimer())
                       for s in range(episodes)]
        finally:
            torch.set_num_threads(threads)
        return float(np.mean([r.success for r in results]))

    return evaluate


def plot_loss(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("action-token cross-entropy")
    ax.set_yscale("log")
    evals = [(r["step"], r["eval_success"]) for r in rows if r.get("eval_success") is not None]
    if evals:
        ax2 = ax.twinx()
        ax2.plot(*zip(*evals, strict=True), "o-", color="tab:green", label="eval success")
        ax2.set_ylim(0, 1)
        ax2.set_ylabel("eval success")
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=100)
    plt.close(fig)
