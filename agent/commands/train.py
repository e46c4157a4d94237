"""`agent train`: fit codecs and train the token policy on recorded datasets.

    agent train --data DIR [--data DIR2 ...] --out RUN [--config small] [--steps N] [--resume]
                [--tokenizer TOK [--video-weight 0.5] [--video-horizon 8]
                 [--video-pixel-weight 0]]

Every flag is a field of `TrainCommand`, of the TrainConfig it nests (policies.training.config;
the run keeps it as RUN/train_config.json) or of VideoTrainConfig (policies.video.train_head);
agent/cli.py has tyro make the flags. A closed-loop evaluation in simulation runs every
--eval-every steps on held-out seeds (`agent eval`'s) when --eval-env is given. With
--tokenizer (a directory from `agent train-tokenizer`) a video head learns, in the same steps,
the front camera's frame and the state k in 1..--video-horizon steps after each chunk starts;
it is saved in RUN/video_head/ (policies.video.train_head, policies.video.imagine). `--init` a
run that has a video head, with the same --tokenizer, and training continues that head too.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Generic, TypeVar

import tyro

from agent.commands import BadInput
from policies.training.config import TRAIN_CONFIG, TrainConfig, load_train_config
from policies.video.train_head import VideoTrainConfig

C = TypeVar("C", bound=TrainConfig)


@dataclass(frozen=True)
class TrainCommand(Generic[C]):
    """train the token policy on datasets

    Writes RUN/: weights, config.json, vocab.json, codecs, train_config.json (the training
    settings), train_state.pt for --resume, metrics.jsonl and loss.png. Under torchrun
    (`torchrun --nproc_per_node K -m agent train ...`) it trains with DistributedDataParallel.
    """

    # Field docstrings are the flags' help, one line each (tyro keeps indented line breaks).
    data: Annotated[tuple[Path, ...], tyro.conf.UseAppendAction, tyro.conf.arg(metavar="DIR")]
    """(required) a dataset written by `agent collect`; repeat for several"""
    out: Annotated[Path, tyro.conf.arg(metavar="RUN")]
    """the run directory to write (with --resume: to continue)"""
    train: Annotated[C, tyro.conf.OmitArgPrefixes]
    resume: bool = False
    """continue RUN from its last checkpoint, with its settings where no flag overrides them"""
    # Fine-tuning; e.g. with --tokenizer, add a video head to a trained policy.
    init: Annotated[Path | None, tyro.conf.arg(metavar="POLICY")] = None
    """start from this policy's weights and codecs (its chunk, execute, plan, FiLM kept)"""
    video: Annotated[VideoTrainConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=VideoTrainConfig)
    eval_env: Annotated[str | None, tyro.conf.arg(metavar="SPEC")] = None
    """evaluate in this env (e.g. mujoco:pick_place) on `agent eval`'s held-out seeds"""
    eval_every: Annotated[int, tyro.conf.arg(metavar="STEPS")] = 0
    """steps between evaluations in --eval-env"""
    eval_episodes: int = 10
    """episodes per evaluation"""
    threads: int | None = None
    """torch CPU threads (None: torch's choice)"""

    def __post_init__(self) -> None:
        if not self.data:
            raise ValueError("--data DIR is required (a dataset from `agent collect`; repeat "
                             "for several)")
        if self.resume and self.init is not None:
            raise ValueError("--resume continues RUN from its own checkpoint; --init starts a "
                             "new run from another policy; give one of them")
        if self.eval_every < 0 or self.eval_episodes < 1:
            raise ValueError(f"--eval-every must be >= 0 and --eval-episodes >= 1, got "
                             f"{self.eval_every} and {self.eval_episodes}")
        if (self.eval_env is None) != (self.eval_every == 0):  # one alone would do nothing
            raise ValueError(f"--eval-env SPEC and --eval-every STEPS go together, got "
                             f"{self.eval_env} and {self.eval_every}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")


#: What `agent train` parses (agent/cli.py): the command over TrainConfig.
Command = TrainCommand[TrainConfig]


def defaults(args: TrainCommand) -> TrainCommand | None:
    """The defaults to parse `agent train`'s command line over again, where a run is
    continued: on --resume, RUN's own settings (train_config.json), and with --tokenizer its
    video head's; with --init from a run with a video head (and --tokenizer), that head's. A
    flag given still wins; main refuses what contradicts a head. None: nothing to continue."""
    train, video = args.train, args.video
    if args.resume and (args.out / TRAIN_CONFIG).is_file():
        try:
            train = load_train_config(args.out, type(args.train))
        except (OSError, ValueError, TypeError) as e:
            raise BadInput(f"--resume: {e}") from None
    head_run = args.out if args.resume else args.init
    if head_run is not None and args.video.tokenizer is not None:
        video = _head_settings(head_run, args.video)
    if train is args.train and video is args.video:
        return None
    # --data appends to its default: leave it unset, or the datasets would be given twice.
    return replace(args, data=tyro.MISSING, train=train, video=video)


def _head_settings(run: Path, video: VideoTrainConfig) -> VideoTrainConfig:
    """`video` with the settings of RUN's video head (as is without a readable head: loading
    it in main then says what is wrong)."""
    from policies.video.imagine import HEAD_DIR, has_video_head

    if not has_video_head(run):
        return video
    try:
        head = json.loads((run / HEAD_DIR / "config.json").read_text())["head"]
        kept = {f.name: head[f.name] for f in fields(VideoTrainConfig) if f.name in head}
        return replace(video, **kept)
    except (OSError, ValueError, KeyError, TypeError):
        return video


def main(args: TrainCommand) -> int:
    import torch
    from tqdm import tqdm

    from dataset import DatasetError
    from policies.training.data import intervention_weights, load_demos
    from policies.training.mixed import describe_union
    from policies.training.train import (
        add_provenance,
        build_policy,
        check_delay_tokens,
        load_run,
        train,
        write_metrics,
    )
    from policies.training.wording import object_words

    if args.threads:
        torch.set_num_threads(args.threads)
    if world_size() > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    cfg = args.train
    try:
        demos = load_demos(args.data)
    except DatasetError as e:  # a missing, damaged or foreign --data directory
        raise BadInput(str(e)) from None
    if not cfg.sim_truth:  # what a teleoperated dataset has: env_state is never read
        demos = [replace(d, env_state=None) for d in demos]
    try:  # --intervention-weight / --only-interventions on data that cannot take them
        intervention_weights(demos, cfg.intervention_weight, cfg.only_interventions)
        kept = object_words([d.env_state_names for d in demos]) if cfg.text_noise > 0 else None
    except ValueError as e:
        raise BadInput(str(e)) from None
    start, opt_state = 0, None
    if args.resume:
        if not (args.out / "train_state.pt").is_file():
            raise BadInput(f"--resume given but {args.out} holds no training state")
        policy, state = load_run(args.out)
        check_demos_fit(policy, demos)
        add_provenance(policy, demos)
        start, opt_state = state["step"], state["optimizer"]
        if start >= cfg.steps:
            raise BadInput(f"{args.out} already trained {start} steps; raise --steps")
    else:
        check_free(args.out)
        if args.init is None:
            policy = build_policy(demos, cfg)
        else:
            policy, cfg = load_init(args.init, cfg)
            check_demos_fit(policy, demos)
            add_provenance(policy, demos)  # config.json: its data's envs and the init's
    try:
        check_delay_tokens(policy, cfg)  # --init/--resume of a policy without delay tokens
    except ValueError as e:
        raise BadInput(str(e)) from None
    video = make_video_training(args, policy, demos, cfg.seed)  # errors before --out is written
    if torch.distributed.is_initialized():
        torch.distributed.barrier()  # every rank checked --out before rank 0 writes into it
    rank0 = int(os.environ.get("RANK", 0)) == 0
    if rank0:
        args.out.mkdir(parents=True, exist_ok=True)
        if not args.resume:  # an unfinished start's rows (check_free) are not this run's
            (args.out / "metrics.jsonl").unlink(missing_ok=True)
        init = None if args.init is None else str(args.init)
        init = _recorded_init(args.out) if args.resume else init
        (args.out / TRAIN_CONFIG).write_text(json.dumps({**asdict(cfg), "init": init},
                                                        indent=2))
        frames = sum(len(d.action) for d in demos)
        print(f"training {cfg.model} ({policy.model.num_params() / 1e6:.2f}M params) on "
              f"{len(demos)} episodes / {frames} frames from {len(args.data)} dataset(s)",
              file=sys.stderr)
        off = [name for name, on, w in (
            ("auxiliary object-pose targets", policy.model.aux_head is not None, cfg.aux_weight),
            ("plan tokens", policy.config.plan_dim > 0, cfg.plan_weight)) if w > 0 and not on]
        if cfg.balance_envs:
            envs = sorted({str(d.env) for d in demos})
            print(f"--balance-envs: each of {len(envs)} envs ({', '.join(envs)}) gets "
                  f"1/{len(envs)} of the samples", file=sys.stderr)
        if kept is not None:
            print(f"--text-noise: in {cfg.text_noise:.0%} of the instructions, words other than "
                  f"{', '.join(sorted(kept))} are scrambled", file=sys.stderr)
        if not cfg.sim_truth:
            print("--no-sim-truth: training on camera frames, instruction, proprioception "
                  "and actions only (no plan tokens, no object-pose targets)", file=sys.stderr)
        if policy.config.robots is not None:
            print(f"one policy for {policy.config.robots.describe()}", file=sys.stderr)
        if policy.config.plan_object_names is not None:  # one line: what the union costs
            print(describe_union(policy.config), file=sys.stderr)
        if cfg.plan_objects and policy.config.plan_dim and not policy.config.plan_objects:
            # Not silent either: the plan keeps only the part every task has.
            print("plan: the named object and target only (as --no-plan-objects); the tasks "
                  "hold other objects", file=sys.stderr)
        if off and cfg.sim_truth:
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


def make_video_training(args: TrainCommand, policy, demos, seed: int):
    """The VideoTraining --tokenizer asks for (None without it); on --resume, the run's own
    head, which must have been trained against the same tokenizer; with --init from a run with
    a head, that head, continued. (`defaults` took both heads' settings as the defaults.)"""
    import torch

    from policies.video.head import VideoHeadError
    from policies.video.imagine import check_tokenizer, has_video_head, load_video_head
    from policies.video.train_head import VideoTraining
    from policies.video.vq import TokenizerError, VQTokenizer

    cfg = args.video
    resumed_head = args.resume and has_video_head(args.out)
    init_head = args.init is not None and has_video_head(args.init)
    if cfg.tokenizer is None:
        if resumed_head:
            raise BadInput(f"{args.out} was trained with a video head; pass the "
                             f"--tokenizer it was trained with to resume it")
        return None
    if policy.config.robots is not None:  # its state targets are one robot's state bins
        raise BadInput(f"--tokenizer (joint video training) takes the datasets of one robot; "
                       f"these hold {policy.config.robots.describe()}")
    if world_size() > 1:
        raise BadInput(f"--tokenizer (joint video training) runs in one process, got "
                         f"WORLD_SIZE {world_size()}; run it without torchrun")
    if args.resume and not resumed_head:
        raise BadInput(f"{args.out} was trained without a video head, so its "
                         f"optimizer state has none; start a new run to add --tokenizer")
    device = "cuda" if torch.cuda.is_available() else "cpu"  # encodes the targets once
    try:
        head = None
        if resumed_head or init_head:
            run = args.out if resumed_head else args.init
            head, record = load_video_head(run, policy.model.cfg.d_model)
            tok = check_tokenizer(record, cfg.tokenizer).to(device)
            check_head_settings(head.cfg, cfg, resumed_head, args.init)
            head.cfg = replace(head.cfg, visual_weight=cfg.visual_weight,
                               state_weight=cfg.state_weight, pixel_weight=cfg.pixel_weight)
        else:
            tok = VQTokenizer.load(cfg.tokenizer, device=device)
        return VideoTraining(policy, demos, tok, cfg, head=head, seed=seed)
    except (TokenizerError, VideoHeadError, ValueError) as e:
        raise BadInput(f"{e}") from None


def check_head_settings(saved, cfg: VideoTrainConfig, resumed: bool, init: Path | None) -> None:
    """A continued head keeps its settings on --resume (the optimizer state goes with them),
    and its horizon and camera (its embeddings) with --init; a flag that contradicts them is
    an error, not overridden."""
    names = [f.name for f in fields(VideoTrainConfig) if f.name != "tokenizer"]
    if resumed:
        changed = {k: (getattr(cfg, k), getattr(saved, k)) for k in names
                   if getattr(cfg, k) != getattr(saved, k)}
        if changed:
            raise BadInput(f"--resume keeps the run's video head; these differ "
                             f"from it (given, saved): {changed}")
    elif cfg.max_horizon != saved.max_horizon:
        raise BadInput(f"--init {init} has a video head of horizon "
                         f"{saved.max_horizon}; --video-horizon must match it or be left out")
    elif cfg.camera != saved.camera:
        raise BadInput(f"--init {init} has a video head of camera {saved.camera}; "
                         f"--video-camera must match it or be left out")


def _recorded_init(run: Path) -> str | None:
    """The --init a resumed run started from (train_config.json), so resuming keeps it."""
    try:
        return json.loads((run / TRAIN_CONFIG).read_text()).get("init")
    except (OSError, ValueError):
        return None


def load_init(path: Path, cfg):
    """The policy --init names and the TrainConfig with its chunk/plan/FiLM settings (a value
    given on the command line that contradicts the checkpoint is an error, not overridden;
    except --plan-block, which re-cuts the checkpoint's plan into other decoder calls)."""
    from policies.base import PolicyCheckpointError
    from policies.model.blocks import QUERY
    from policies.model.token_policy import TokenPolicy, is_checkpoint

    if not is_checkpoint(path):
        raise BadInput(f"--init {path} is not a token-policy checkpoint (a directory "
                         f"with config.json, e.g. checkpoints/default or a training run)")
    try:
        policy = TokenPolicy.load(path)
    except PolicyCheckpointError as e:
        raise BadInput(f"--init {path}: {e}") from None
    pc, default = policy.config, type(cfg)()
    # --parallel-actions given is the action_block it means (checkpoints keep only that)
    cfg = replace(cfg, action_block=cfg.blocks[0], parallel_actions=False)
    kept = {"chunk": pc.chunk, "execute": pc.execute, "plan_objects": pc.plan_objects,
            "film": policy.model.cfg.film, "action_block": pc.action_block}
    clash = {k: (getattr(cfg, k), v) for k, v in kept.items()
             if getattr(cfg, k) != v and getattr(cfg, k) != getattr(default, k)}
    if clash:
        raise BadInput(f"--init {path} fixes these settings; drop the flags that "
                         f"contradict it (given, checkpoint): {clash}")
    if cfg.plan_block == default.plan_block:  # not given: the checkpoint's
        return policy, replace(cfg, **kept, plan_block=pc.plan_block)
    # A given --plan-block re-cuts the plan into other decoder calls: the same weights read
    # any slot layout (blocks.py), so fine-tuning adapts them; blocks need action_query.
    if QUERY not in policy.layout.sizes.specials:
        raise BadInput(f"--init {path} has no {QUERY} token in its vocabulary, so its plan "
                       f"cannot be decoded in blocks (--plan-block {cfg.plan_block}); train "
                       f"from scratch, or from a checkpoint with --action-block > 1")
    try:
        policy.config = replace(pc, plan_block=cfg.plan_block)
    except ValueError as e:
        raise BadInput(f"--init {path} --plan-block {cfg.plan_block}: {e}") from None
    return policy, replace(cfg, **kept)


#: What a start writes into RUN before its first checkpoint (no weights, no train_state.pt):
#: a RUN holding only these never trained, so a fresh start may have it.
UNFINISHED_START = frozenset({TRAIN_CONFIG, "video_config.json", "metrics.jsonl"})


def check_free(out: Path) -> None:
    """A fresh start's RUN: missing, empty, or an unfinished start (UNFINISHED_START, said on
    stderr); anything else is an error, since --resume or another --out is meant."""
    if not out.exists():
        return
    held = sorted(p.name for p in out.iterdir())
    if held and set(held) <= UNFINISHED_START:
        print(f"{out} holds an unfinished start ({', '.join(held)}; no weights, no "
              f"train_state.pt): starting afresh in it", file=sys.stderr)
    elif held:
        raise BadInput(f"{out} exists and is not empty; use --resume to continue it, "
                         "or another --out")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def check_demos_fit(policy, demos) -> None:
    """A dataset with other features than the checkpoint was trained on is an error."""
    from policies.model.token_policy import CheckpointMismatchError
    from policies.training.data import episode_layouts
    from policies.training.mixed import as_policy_reads

    c = policy.config
    d = demos[0]
    try:
        for state, action in episode_layouts(demos):  # several where robots mix
            policy.check_layouts(state, action, "the dataset")
        if c.robots is not None or c.plan_object_names is not None:  # as training packs them
            as_policy_reads(demos, c.robots, c.plan_object_names)
    except (CheckpointMismatchError, ValueError) as e:
        raise BadInput(f"{e}") from None
    missing = [cam for cam in c.cameras if cam not in d.frames]
    if missing:
        raise BadInput(f"dataset lacks camera(s) {missing} the checkpoint uses")
    if c.plan_dim and any(x.env_state is None for x in demos):
        raise BadInput("the checkpoint writes plan tokens, trained from "
                       "observation.environment_state, which this data lacks (or "
                       "--no-sim-truth hides); start from a checkpoint without a plan")


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
