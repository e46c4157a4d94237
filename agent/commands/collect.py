"""`agent collect`: record episodes of a policy into a LeRobotDataset v3.0 (crash-safe).

Seeds are tried in order from `--seed` (on `--resume`: from the last committed episode's seed
+ 1), and episodes are committed in seed order whatever `--num-envs` is, so the same command
gives the same dataset with 1 or K workers. Episode indices are assigned at commit: with
failed episodes dropped (the default), index k is the k-th kept seed; each episode's seed is in
the episodes table (`seed`) for `agent replay`.

`--action-noise POS[,ROT]` records DART-style demonstrations (see agent/action_noise.py): the
executed action is the policy's plus Gaussian noise on the motion dims, seeded from the episode
seed; `action` stays what the env applied and a new `expert_action` column holds the clean one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agent.action_noise import ActionNoise
from agent.commands import BadInput
from dataset import layout
from dataset.errors import DatasetError
from dataset.video import CODECS, VideoConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("collect", help="record a LeRobotDataset v3.0 of policy rollouts",
                       description="Record episodes of a policy into a LeRobotDataset v3.0 "
                                   "(crash-safe: kill it any time, then --resume).")
    p.add_argument("--env", required=True, metavar="SPEC", help="e.g. mujoco:pick_place")
    p.add_argument("--policy", default=None, metavar="NAME|PATH",
                   help="'scripted' or a checkpoint directory (default: the shipped default)")
    p.add_argument("--episodes", type=int, required=True, metavar="N",
                   help="episodes the dataset should hold (with --resume: in total)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="dataset directory")
    p.add_argument("--num-envs", type=int, default=1, metavar="K",
                   help="worker processes, each with its own env (default 1: in-process)")
    p.add_argument("--resume", action="store_true",
                   help="continue the dataset in DIR after its last complete episode")
    p.add_argument("--fps", type=int, default=None, metavar="F",
                   help="control rate and dataset fps (default: the env's, 20)")
    p.add_argument("--keep-failed", action="store_true",
                   help="keep unsuccessful episodes (marked success=false) instead of dropping")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the first episode, then +1 each (a resumed dataset continues "
                        "after its last committed seed)")
    p.add_argument("--vcodec", choices=sorted(CODECS), default="av1",
                   help="video codec (default av1, LeRobot's default; h264 is faster to decode)")
    p.add_argument("--episodes-per-file", type=int, default=layout.EPISODES_PER_FILE,
                   metavar="E", help="episodes per data/video file before rolling to the next "
                        "(new datasets; a resumed one keeps its own)")
    p.add_argument("--action-noise", default=None, metavar="POS[,ROT]",
                   help="DART: add Gaussian noise (std POS m on dx dy dz, ROT rad on drx dry drz, "
                        "default ROT = 5*POS; none on the gripper) to the executed actions and "
                        "record the clean ones as expert_action, e.g. 0.01,0.05")
    p.add_argument("--expert", default=None, metavar="NAME|PATH",
                   help="DAgger: --policy acts and this policy (e.g. 'scripted') labels every "
                        "frame in expert_action, the column training reads; episodes are kept "
                        "whether or not --policy succeeds. Not with --action-noise")
    p.add_argument("--phrasings", choices=("train", "heldout"), default=None,
                   help="say each episode's goal in a varied phrasing of this split "
                        "(envs.phrasings, drawn per seed) instead of the task's own sentence")
    p.add_argument("--json", action="store_true",
                   help="print one JSON summary object as the last stdout line")
    p.set_defaults(func=main)


@dataclass
class Progress:
    """Counters of one `collect` run (mutable: updated as episodes come in)."""

    committed: int = 0
    dropped: int = 0
    successes: int = 0
    frames: int = 0
    start: float = 0.0

    def frames_per_s(self) -> float:
        return self.frames / max(time.monotonic() - self.start, 1e-9)


class _Inline:
    """A not-yet-run episode with a Future's `result()`, for --num-envs 1."""

    def __init__(self, fn: Callable[[int], Any], seed: int) -> None:
        self.fn, self.seed = fn, seed

    def result(self) -> Any:
        return self.fn(self.seed)


def main(args: argparse.Namespace) -> int:
    from agent.recorder import EpisodeRecorder, RecorderConfig, RecorderPool

    noise = _check_args(args)
    cfg = RecorderConfig(args.env, args.policy, args.out / layout.STAGING_DIR, args.fps,
                         VideoConfig(codec=args.vcodec), noise, args.phrasings, args.expert)
    recorder = _build(lambda: EpisodeRecorder(cfg))  # in-process env; also gives the features
    try:
        writer = _open_writer(args, recorder.spec, noise)
    except DatasetError as e:
        recorder.close()
        raise BadInput(str(e)) from None
    pool = None
    if args.num_envs > 1:
        recorder.close()
        pool = RecorderPool(cfg, args.num_envs)
    submit = pool.submit if pool else (lambda seed: _Inline(recorder.record, seed))
    progress = Progress(committed=writer.num_episodes, start=time.monotonic())
    fps = recorder.spec.fps
    try:
        _loop(writer, submit, _first_seed(writer, args.seed), args, progress, fps)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BrokenProcessPool:
        print(f"error: a worker process died (out of memory? killed?); {writer.num_episodes} "
              f"complete episodes are in {args.out}; rerun with --resume", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: {writer.num_episodes} complete episodes are in {args.out}; "
              f"rerun with --resume to continue", file=sys.stderr)
        return 130
    finally:
        if pool:
            pool.close()
        else:
            recorder.close()
        writer.close()
    _report(args, writer, progress, fps)
    return 0


def _check_args(args: argparse.Namespace) -> ActionNoise | None:
    """Refuse bad arguments before anything is built; returns the parsed --action-noise."""
    if args.episodes < 1:
        raise BadInput(f"--episodes must be >= 1, got {args.episodes}")
    if args.num_envs < 1:
        raise BadInput(f"--num-envs must be >= 1, got {args.num_envs}")
    if args.fps is not None and args.fps < 1:
        raise BadInput(f"--fps must be a positive integer, got {args.fps}")
    if args.out.exists() and not args.out.is_dir():
        raise BadInput(f"--out {args.out} exists and is not a directory")
    if args.phrasings is not None:
        _check_phrasings(args.env)
    if args.expert is not None:
        if args.action_noise is not None:
            raise BadInput("--expert (DAgger: the expert labels the policy's states) and "
                           "--action-noise (DART: noise on the expert's own actions) are two "
                           "ways to label off-expert states; choose one")
        if args.policy == args.expert:
            raise BadInput(f"--expert {args.expert} would label its own states; DAgger labels "
                           f"the states another --policy (a checkpoint) reaches")
        args.keep_failed = True  # a failed rollout's states are what DAgger is for
    if args.action_noise is None:
        return None
    try:
        return ActionNoise.parse(args.action_noise)
    except ValueError as e:
        raise BadInput(f"{e}") from None


def _check_phrasings(spec: str) -> None:
    import envs
    from envs.registry import SIM_BACKENDS

    try:
        backend = envs.resolve(spec).backend
    except envs.UnknownEnvError as e:
        raise BadInput(str(e)) from None
    if backend not in SIM_BACKENDS:
        raise BadInput(f"--phrasings applies to table-top sim envs "
                       f"({', '.join(f'{b}:TASK' for b in SIM_BACKENDS)}), not {spec}")


def _build(make: Callable[[], Any]) -> Any:
    import envs
    from policies.registry import UnknownPolicyError

    try:
        return make()
    # ValueError includes a damaged --policy checkpoint (policies.base.PolicyCheckpointError)
    except (envs.UnknownEnvError, UnknownPolicyError, ValueError) as e:
        raise BadInput(str(e)) from None


def _open_writer(args: argparse.Namespace, spec: Any, noise: ActionNoise | None) -> Any:
    from dataset.writer import DatasetWriter

    wanted = noise.to_json() if noise else None
    if args.resume and (args.out / layout.INFO_PATH).exists():
        # With vs without noise differ in features (resume refuses); here: two noise levels,
        # which meta/motoken.json, recording one, could not describe.
        stored = _stored(args.out, "action_noise")
        if stored is not None and wanted is not None and stored != wanted:
            raise DatasetError(f"cannot resume {args.out}: it was recorded with action noise "
                               f"{stored}, this recording has {wanted}")
        expert = _stored(args.out, "expert")  # DAgger labels of one labeller per dataset
        if expert != args.expert:
            said = {e: "no --expert" if e is None else f"--expert {e}"
                    for e in (expert, args.expert)}
            raise DatasetError(f"cannot resume {args.out}: it was recorded with {said[expert]}, "
                               f"this recording has {said[args.expert]}")
        return DatasetWriter.resume(args.out, spec)
    recording = {"env": args.env, "policy": args.policy or "scripted (default)",
                 "first_seed": args.seed, "keep_failed": args.keep_failed,
                 "vcodec": args.vcodec, "recorded_by": "motoken agent collect"}
    if wanted is not None:  # noise-free datasets keep exactly the keys they always had
        recording["action_noise"] = wanted
    if args.phrasings is not None:
        recording["phrasings"] = args.phrasings
    if args.expert is not None:  # training keeps failed episodes of such a dataset
        recording["expert"] = args.expert
    return DatasetWriter.create(args.out, spec, args.episodes_per_file, recording)


def _stored(root: Path, key: str) -> Any:
    """`key` of how the dataset in `root` was recorded (meta/motoken.json); None if absent."""
    path = root / layout.MOTOKEN_PATH
    return layout.load_json(path).get(key) if path.exists() else None


def _first_seed(writer: Any, seed: int) -> int:
    from dataset.reader import LeRobotDatasetReader

    if writer.num_episodes == 0:
        return seed
    return max(ep["seed"] for ep in LeRobotDatasetReader(writer.root).episodes) + 1


def _loop(writer: Any, submit: Callable[[int], Any], seed: int, args: argparse.Namespace,
          progress: Progress, fps: int) -> None:
    """Record until the dataset holds args.episodes; commit in seed order."""
    pending: deque = deque()
    in_flight = 2 * args.num_envs if args.num_envs > 1 else 1  # keep workers busy on commits
    max_dropped = max(20, 2 * args.episodes)
    bar = tqdm(total=args.episodes, initial=writer.num_episodes, desc="collect", unit="ep",
               file=sys.stderr, disable=None, dynamic_ncols=True)
    try:
        while writer.num_episodes < args.episodes:
            while len(pending) < min(in_flight, args.episodes - writer.num_episodes):
                pending.append(submit(seed))
                seed += 1
            ep = pending.popleft().result()
            progress.frames += ep.length
            progress.successes += ep.success
            if ep.success or args.keep_failed:
                writer.commit(ep)
                progress.committed = writer.num_episodes
                bar.update(1)
            else:
                progress.dropped += 1
                for path in ep.videos.values():
                    path.unlink(missing_ok=True)
                if progress.dropped > max_dropped:
                    raise DatasetError(f"{progress.dropped} episodes failed and were dropped; "
                                       f"the policy rarely succeeds (use --keep-failed to keep "
                                       f"them)")
            rate = progress.frames_per_s()
            bar.set_postfix(fps=f"{rate:.0f}", realtime=f"{rate / fps:.1f}x",
                            dropped=progress.dropped)
    finally:
        bar.close()


def _report(args: argparse.Namespace, writer: Any, progress: Progress, fps: int) -> None:
    elapsed = time.monotonic() - progress.start
    rate = progress.frames_per_s()
    summary = {"out": str(args.out), "env": args.env, "episodes": writer.num_episodes,
               "frames": writer.num_frames, "recorded_frames": progress.frames,
               "dropped": progress.dropped, "wall_s": round(elapsed, 2),
               "frames_per_s": round(rate, 1), "realtime_factor": round(rate / fps, 2),
               "num_envs": args.num_envs}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{writer.num_episodes} episodes, {writer.num_frames} frames in {args.out}; "
              f"this run recorded {progress.frames} frames in {elapsed:.1f} s "
              f"({rate:.0f} frames/s, {rate / fps:.1f}x real time), dropped {progress.dropped}")
