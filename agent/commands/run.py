"""`agent run`: run a policy in an env for N episodes, report success and loop speed."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from agent.execution import EXEC_MODES
from policies.video.lookahead import SCORES, WHEN

DEFAULT_EPISODES = 3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a policy in an environment",
                       description="Run a policy for N episodes; one line per episode, then a "
                                   "summary (or one JSON object with --json).")
    add_run_arguments(p)
    add_lookahead_arguments(p)
    p.add_argument("--rerun", nargs="?", const="spawn", default=None, metavar="WHERE",
                   help="log cameras, applied actions, state and (with --lookahead) predicted "
                        "frames to Rerun: 'spawn' a viewer (the default), save to FILE.rrd, or "
                        "a viewer URL (agent/rerun_view.py; needs motoken[viz])")
    p.set_defaults(func=main)


def add_lookahead_arguments(p: argparse.ArgumentParser) -> None:
    """--lookahead and its options (shared with eval)."""
    p.add_argument("--lookahead", type=int, default=None, metavar="K",
                   help="sample K >= 2 candidate chunks per decision, predict each one's future "
                        "with the run's video head, execute the best (agent/lookahead_agent.py); "
                        "needs --policy RUN trained with --tokenizer")
    p.add_argument("--lookahead-horizon", type=int, default=None, metavar="STEPS",
                   help="score the state this many steps ahead (default: the head's horizon)")
    p.add_argument("--lookahead-temperature", type=float, default=1.0, metavar="T",
                   help="sampling temperature of the candidates after the greedy one")
    p.add_argument("--lookahead-margin", type=float, default=None, metavar="M",
                   help="keep the greedy chunk unless a candidate's predicted progress beats "
                        "it by more than M (metres of EE distance; default 0)")
    p.add_argument("--lookahead-score", choices=sorted(SCORES), default=None,
                   help="progress: 'distance' to the plan's goal (the default) or 'funnel', "
                        "the distance to a point above it that falls as the EE lines up")
    p.add_argument("--lookahead-when", choices=WHEN, default=None,
                   help="'always' (the default) chooses every chunk by lookahead; "
                        "'missed-grasp' runs the policy alone until the fingers close on "
                        "nothing, then by lookahead for the rest of the episode")
    p.add_argument("--tokenizer", type=Path, default=None, metavar="TOK",
                   help="the video head's tokenizer, if it moved (default: RUN/video_head/"
                        "tokenizer/ if present, else the recorded path)")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The options `run` shares with commands that roll out policies (eval, collect)."""
    p.add_argument("--env", required=True, metavar="SPEC",
                   help="backend:task, e.g. mujoco:pick_place, pybullet:pick_place, "
                        "bridge:tcp://HOST:PORT")
    p.add_argument("--policy", default=None, metavar="NAME|PATH",
                   help="'scripted' or a checkpoint directory (default: the shipped default)")
    p.add_argument("--episodes", type=int, default=DEFAULT_EPISODES)
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode (then +1 each)")
    p.add_argument("--rate", type=float, default=None, metavar="HZ",
                   help="control rate to pace the loop at (default: the env's, real time); "
                        "0 runs as fast as possible")
    p.add_argument("--record", type=Path, default=None, metavar="DIR",
                   help="write one mp4 per episode (camera views side by side)")
    p.add_argument("--viewer", action="store_true", help="open MuJoCo's interactive viewer")
    p.add_argument("--json", action="store_true",
                   help="print one JSON summary object as the last stdout line")
    add_backend_arguments(p)
    p.add_argument("--exec", default="sync", choices=EXEC_MODES, dest="exec_mode",
                   help="how chunks are executed: sync waits for each inference; naive, "
                        "ensemble and rtc infer in a background thread while the loop keeps "
                        "its rate (see agent/execution.py)")
    p.add_argument("--simulate-latency", default=None, metavar="MS|MEAN:JITTER",
                   help="add this delay (ms) to every inference, e.g. 100 or 100:20")


def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    """Which engine runs a token policy (policies/inference/backend.py); shared with eval."""
    p.add_argument("--backend", default="auto", metavar="auto|torch|onnx",
                   help="inference backend for token policies; auto times each available one "
                        "and keeps the fastest (default)")
    p.add_argument("--onnx-dir", type=Path, default=None, metavar="DIR",
                   help="ONNX export to run (default: <checkpoint>/onnx, else exported once "
                        "into a cache)")
    p.add_argument("--onnx-provider", default="auto", metavar="auto|tensorrt|cuda|cpu",
                   help="ONNX Runtime provider to start the chain at (default: the best "
                        "installed of TensorRT -> CUDA -> CPU)")


def setup_backend(args: argparse.Namespace, policy: Any, log: Callable[[str], None]
                  ) -> str | None:
    """Install the engine --backend asks for on a token policy; its description, or None for
    policies that have no backend to choose (scripted)."""
    from policies.inference.backend import BackendOptions, UnknownBackendError, make_engine
    from policies.inference.onnx_engine import ProviderError
    from policies.model.token_policy import CheckpointMismatchError, TokenPolicy

    if not isinstance(policy, TokenPolicy):
        if args.backend not in ("auto", "torch"):
            raise SystemExit(f"error: --backend {args.backend} applies to token policies; "
                             f"{policy.name!r} has no model to run")
        return None
    spec = Path(args.policy) if args.policy else None
    opts = BackendOptions(args.backend, checkpoint=spec if spec and spec.is_dir() else None,
                          onnx_dir=args.onnx_dir, provider=args.onnx_provider)
    try:
        return make_engine(policy, opts, log).describe()
    except (UnknownBackendError, ProviderError, CheckpointMismatchError) as e:
        raise SystemExit(f"error: {e}") from None


def check_policy_fits(policy: Any, env: Any, agent: Any = None) -> None:
    """A token policy trained on another robot's state (or actions) than the env's stops the
    run with one line, before any episode; the env (and the agent, if made) is closed."""
    from agent.lookahead_agent import robot_spec
    from policies.model.token_policy import CheckpointMismatchError, TokenPolicy

    if not isinstance(policy, TokenPolicy):
        return  # the scripted expert reads privileged state, whatever the arm
    u = env.unwrapped
    try:
        policy.check_layouts(u.state_layout, u.action_layout, f"robot {robot_spec(env).name!r}")
    except CheckpointMismatchError as e:
        env.close()
        if agent is not None:
            agent.close()
        raise SystemExit(f"error: {e}") from None


def make_agent(args: argparse.Namespace, policy: Any) -> tuple[Any, Any]:
    """The execution broker --exec names, over the policy slowed by --simulate-latency."""
    from agent.execution import make_broker
    from agent.latency import DelayedPolicy, LatencySpec

    latency = None
    try:
        if args.simulate_latency:
            latency = LatencySpec.parse(args.simulate_latency)
            policy = DelayedPolicy(policy, latency, seed=args.seed)
        return make_broker(policy, args.exec_mode), latency
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None


def load_predictor(args: argparse.Namespace, policy: Any) -> Any:
    """The FuturePredictor --lookahead needs (None without it); loaded before the env."""
    from policies.model.token_policy import TokenPolicy
    from policies.video.head import VideoHeadError
    from policies.video.imagine import (
        FuturePredictor,
        check_tokenizer,
        load_video_head,
        tokenizer_dir,
    )

    extra = [f for f, v in (("--lookahead-horizon", args.lookahead_horizon),
                            ("--lookahead-margin", args.lookahead_margin),
                            ("--lookahead-score", args.lookahead_score),
                            ("--lookahead-when", args.lookahead_when),
                            ("--tokenizer", args.tokenizer)) if v is not None]
    if args.lookahead is None:
        if extra:
            raise SystemExit(f"error: {' and '.join(extra)} apply to --lookahead K only")
        return None
    if args.lookahead < 2:
        raise SystemExit(f"error: --lookahead K needs K >= 2 candidates, got {args.lookahead}")
    if not isinstance(policy, TokenPolicy) or not args.policy:
        raise SystemExit(f"error: --lookahead needs --policy RUN, a token policy trained with "
                         f"a video head (agent train --tokenizer); got {policy.name!r}")
    if args.exec_mode == "rtc":
        raise SystemExit("error: --lookahead chooses among freshly sampled chunks, which "
                         "cannot continue committed actions; use --exec sync, naive or ensemble")
    try:
        head, record = load_video_head(Path(args.policy), policy.model.cfg.d_model)
        tok = check_tokenizer(record, args.tokenizer or tokenizer_dir(Path(args.policy), record))
        return FuturePredictor(policy, head, tok)
    except VideoHeadError as e:
        raise SystemExit(f"error: {e}") from None


def make_lookahead(args: argparse.Namespace, policy: Any, predictor: Any, env: Any) -> Any:
    """Wrap the token policy in lookahead over the env's robot (its joint limits)."""
    from agent.lookahead_agent import LookaheadPolicy, robot_spec

    try:
        return LookaheadPolicy(policy, predictor, robot_spec(env), args.lookahead,
                               args.lookahead_horizon, seed=args.seed,
                               temperature=args.lookahead_temperature,
                               margin=args.lookahead_margin or 0.0,
                               score=args.lookahead_score or "distance",
                               when=args.lookahead_when or "always",
                               keep_frames=args.record is not None
                               or getattr(args, "rerun", None) is not None)
    except ValueError as e:
        env.close()
        raise SystemExit(f"error: {e}") from None


def wilson_ci95(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval for a success rate (sane at 0% and 100%, unlike Wald)."""
    if n == 0:
        return (0.0, 1.0)
    z, p = 1.96, successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def _viewer_hook(env: Any) -> tuple[Callable[..., None], Callable[[], None]]:
    sim = getattr(env.unwrapped, "sim", None)
    if not hasattr(sim, "model"):
        raise SystemExit("error: --viewer needs a MuJoCo env (e.g. mujoco:pick_place)")
    if not os.environ.get("DISPLAY") or os.environ.get("MUJOCO_GL") == "egl":
        raise SystemExit("error: --viewer needs a display (DISPLAY is unset or MUJOCO_GL=egl); "
                         "use --record DIR to write videos instead")
    import mujoco.viewer

    viewer = mujoco.viewer.launch_passive(sim.model, sim.data)
    return (lambda *_: viewer.sync()), viewer.close


def _rerun_view(args: argparse.Namespace, env: Any, agent: Any, look: Any, policy: Any,
                predictor: Any) -> Any:
    """The --rerun logger (agent/rerun_view.py), or None without --rerun."""
    if getattr(args, "rerun", None) is None:
        return None
    from agent.rerun_view import RerunError, RerunView, open_stream

    try:
        stream = open_stream(args.rerun)
    except RerunError as e:
        env.close()
        agent.close()
        raise SystemExit(f"error: {e}") from None
    if look is None:
        return RerunView(stream)
    return RerunView(stream, look.latest_prediction,
                     policy.config.cameras[predictor.head.cfg.camera])


def _chain(hooks: list[Callable[..., None]]) -> Callable[..., None] | None:
    if not hooks:
        return None

    def call_all(*a: Any) -> None:
        for hook in hooks:
            hook(*a)

    return call_all


def main(args: argparse.Namespace) -> int:
    import envs
    from agent.episode_video import EpisodeVideo, PredictionVideo
    from agent.runtime import run_episode
    from agent.timing import StageTimer
    from policies.registry import UnknownPolicyError, default_policy_spec, load_policy
    from policies.video.lookahead import LookaheadError

    if args.episodes < 1:
        raise SystemExit(f"error: --episodes must be >= 1, got {args.episodes}")
    # The policy (and its backend: imports torch, may time engines) is ready before the env is
    # made: for bridge:... making the env opens a session on the robot, and a long import
    # holding the GIL can starve the client's heartbeat thread until the watchdog ends it.
    try:
        envs.resolve(args.env)  # a bad spec fails here, before anything loads
        policy = load_policy(args.policy)
    except (envs.UnknownEnvError, UnknownPolicyError) as e:
        raise SystemExit(f"error: {e}") from None
    backend = setup_backend(args, policy, log=lambda m: print(m, file=sys.stderr))
    predictor = load_predictor(args, policy)
    look = None
    if predictor is None:
        agent, latency = make_agent(args, policy)
        env = envs.make(args.env)
        check_policy_fits(policy, env, agent)
    else:  # lookahead reads the joint limits off the env's robot, so the env comes first
        env = envs.make(args.env)
        check_policy_fits(policy, env)
        look = make_lookahead(args, policy, predictor, env)
        agent, latency = make_agent(args, look)
    rate = env.unwrapped.control_hz if args.rate is None else args.rate
    hooks, closers = [], []
    if args.viewer:
        hook, close = _viewer_hook(env)
        hooks.append(hook)
        closers.append(close)
    view = _rerun_view(args, env, agent, look, policy, predictor)
    if view is not None:
        hooks.append(view.add)
        closers.append(view.close)
    timer, results = StageTimer(), []
    bar = tqdm(total=args.episodes, desc="episodes", unit="ep", file=sys.stderr, disable=None)
    for i in range(args.episodes):
        seed = args.seed + i
        video = None
        if args.record:
            fps = rate or env.unwrapped.control_hz
            path = args.record / f"episode_{seed:04d}.mp4"
            video = (EpisodeVideo(path, fps) if look is None else PredictionVideo(
                path, fps, policy.config.cameras[predictor.head.cfg.camera],
                look.latest_prediction))
        on_step = _chain(hooks + ([video.add] if video else []))
        if view is not None:
            view.start(seed)
        try:
            r = run_episode(env, agent, seed, timer, rate_hz=rate, on_step=on_step)
        except LookaheadError as e:  # every candidate rejected: stop, never run one of them
            env.close()
            agent.close()
            raise SystemExit(f"error: episode seed={seed}: {e}") from None
        finally:
            if video:
                video.close()
        results.append(r)
        why = f" ({r.failure})" if r.failure else ""
        tqdm.write(f"episode {i + 1}/{args.episodes} seed={seed} success={r.success} "
                   f"steps={r.steps} loop={r.steps / r.duration_s:.1f} Hz{why}", file=sys.stdout)
        bar.set_postfix(success=f"{np.mean([x.success for x in results]):.0%}")
        bar.update(1)
    bar.close()
    for close in closers:
        close()
    env.close()
    agent.close()
    summary = summarize(args.env, policy.name if args.policy is None else args.policy,
                        results, timer)
    summary.update(backend=backend, exec=args.exec_mode,
                   simulate_latency_ms=None if latency is None else
                   {"mean": latency.mean_ms, "jitter": latency.jitter_ms},
                   **agent.stats.summary())
    summary["lookahead"] = None if look is None else look.summary(summary["loop_hz"])
    if args.policy is None:
        summary["policy"] = f"{default_policy_spec()} (default)"
    if args.json:
        print(json.dumps(summary))
    else:
        lo, hi = summary["success_ci95"]
        print(f"success {summary['success_rate']:.0%} (95% CI {lo:.0%}-{hi:.0%}) over "
              f"{len(results)} episodes, mean {summary['mean_steps']:.0f} steps, loop "
              f"{summary['loop_hz']:.1f} Hz, deadline misses {summary['deadline_misses']}")
    return 0


def summarize(env_spec: str, policy: str, results: list, timer: Any) -> dict[str, Any]:
    """The `--json` object (schema documented in README)."""
    successes = sum(r.success for r in results)
    steps = sum(r.steps for r in results)
    latency = timer.summary_ms()
    return {
        "env": env_spec,
        "policy": policy,
        "episodes": len(results),
        "success_rate": successes / len(results),
        "success_ci95": wilson_ci95(successes, len(results)),
        "mean_steps": steps / len(results),
        "loop_hz": round(steps / sum(r.duration_s for r in results), 2),
        "deadline_misses": sum(r.deadline_misses for r in results),
        "latency_ms": {k: {"p50": v["p50"], "p99": v["p99"]} for k, v in latency.items()},
        "seeds": [r.seed for r in results],
        "failed_seeds": [r.seed for r in results if not r.success],
        "failures": [r.failure for r in results if r.failure],
    }
