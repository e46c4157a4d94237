"""`agent run`: run a policy in an env for N episodes, report success and loop speed."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import tyro
from tqdm import tqdm
from tyro.constructors import PrimitiveConstructorSpec

from agent.commands import BadInput
from agent.execution import EXEC_MODES
from policies.video.lookahead import LookaheadConfig

DEFAULT_EPISODES = 3

ExecMode = Literal[EXEC_MODES]  # type: ignore[valid-type]


def _rerun_where(values: list[str]) -> str:
    if len(values) > 1:
        raise ValueError(f"--rerun takes at most one WHERE, got {values}")
    return values[0] if values else "spawn"


#: --rerun [WHERE]: a flag with an optional value ("spawn" when none follows).
RerunWhere = Annotated[str | None, PrimitiveConstructorSpec(
    nargs="*", metavar="[WHERE]", instance_from_str=_rerun_where,
    is_instance=lambda x: isinstance(x, str), str_from_instance=lambda x: [x])]


@dataclass(frozen=True)
class RunCommand:
    """run a policy in an environment

    Runs a policy for N episodes; one line per episode, then a summary (or one JSON object
    with --json).
    """

    # Field docstrings are the flags' help, one line each (tyro keeps indented line breaks).
    env: Annotated[str, tyro.conf.arg(metavar="SPEC")]
    """backend:task, e.g. mujoco:pick_place, pybullet:pick_place, bridge:tcp://HOST:PORT"""
    policy: Annotated[str | None, tyro.conf.arg(metavar="NAME|PATH")] = None
    """'scripted' or a checkpoint directory (None: the shipped default)"""
    episodes: int = DEFAULT_EPISODES
    """episodes to run"""
    seed: int = 0
    """seed of the first episode (then +1 each)"""
    instruction: Annotated[str | None, tyro.conf.arg(metavar="TEXT")] = None
    """the task in words for every episode, instead of the env's (e.g. "push the red cube")"""
    phrasings: Literal["train", "heldout"] | None = None
    """say each episode's goal in a phrasing of this split (envs.phrasings), drawn per seed"""
    goals: Literal["mt1", "random"] | None = None
    """Meta-World only: goals from MT1's 50 fixed variations (mt1, the default) or drawn
    afresh per episode from the task's own range, seeded (random: LeRobot's protocol)"""
    allow_untrained_env: bool = False
    """run a token policy on a sim env it was not trained on (refused otherwise), with a warning"""
    rate: Annotated[float | None, tyro.conf.arg(metavar="HZ")] = None
    """control rate to pace the loop at, Hz (None: the env's; 0: as fast as possible)"""
    record: Annotated[Path | None, tyro.conf.arg(metavar="DIR")] = None
    """write one mp4 per episode (camera views side by side)"""
    viewer: bool = False
    """open MuJoCo's interactive viewer"""
    json: bool = False
    """print one JSON summary object as the last stdout line"""
    backend: Annotated[str, tyro.conf.arg(metavar="auto|torch|onnx")] = "auto"
    """inference backend of token policies; auto times each available one, keeps the fastest"""
    onnx_dir: Annotated[Path | None, tyro.conf.arg(metavar="DIR")] = None
    """ONNX export to run (None: <checkpoint>/onnx, else exported once into a cache)"""
    onnx_provider: Annotated[str, tyro.conf.arg(metavar="auto|tensorrt|cuda|cpu")] = "auto"
    """ONNX Runtime provider to start at (auto: the best installed of TensorRT, CUDA, CPU)"""
    # sync waits for each inference; naive, ensemble and rtc infer in a background thread
    # while the loop keeps its rate (agent/execution.py).
    exec_mode: Annotated[ExecMode, tyro.conf.arg(name="exec")] = "sync"
    """(experimental) naive, ensemble, rtc, ahead infer as the loop runs; sync (supported) waits"""
    simulate_latency: Annotated[str | None, tyro.conf.arg(metavar="MS|MEAN:JITTER")] = None
    """(experimental) add this delay (ms) to every inference, e.g. 100 or 100:20"""
    lookahead: Annotated[LookaheadConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=LookaheadConfig)
    # agent/rerun_view.py; needs motoken[viz].
    rerun: RerunWhere = None
    """log cameras, actions, state, predicted frames to Rerun: spawn, FILE.rrd or a viewer URL"""
    # agent/teleop/takeover.py: HG-DAgger-style human in the loop.
    takeover: Annotated[str | None, tyro.conf.arg(metavar="DEVICE")] = None
    """teleop device (e.g. gamepad): its takeover key takes control, handback returns it"""
    dataset: Annotated[Path | None, tyro.conf.arg(metavar="OUT")] = None
    """with --takeover: write the run as a LeRobot dataset, each frame labelled by who acted"""

    def __post_init__(self) -> None:
        if self.rate is not None and not self.rate >= 0:  # not >= also refuses NaN
            raise ValueError(f"--rate must be >= 0 Hz (0 = as fast as possible), got "
                             f"{self.rate}")
        if self.dataset is not None and self.takeover is None:
            raise ValueError("--dataset OUT records who acted in a takeover run; give "
                             "--takeover DEVICE too (agent collect records a policy alone)")


#: What `agent run` parses (agent/cli.py).
Command = RunCommand


def setup_backend(args: RunCommand, policy: Any, log: Callable[[str], None]
                  ) -> str | None:
    """Install the engine --backend asks for on a token policy; its description, or None for
    policies that have no backend to choose (scripted)."""
    from policies.inference.backend import BackendOptions, UnknownBackendError, make_engine
    from policies.inference.onnx_engine import ProviderError
    from policies.model.token_policy import CheckpointMismatchError, TokenPolicy

    if not isinstance(policy, TokenPolicy):
        if args.backend not in ("auto", "torch"):
            raise BadInput(f"--backend {args.backend} applies to token policies; "
                             f"{policy.name!r} has no model to run")
        return None
    spec = Path(args.policy) if args.policy else None
    opts = BackendOptions(args.backend, checkpoint=spec if spec and spec.is_dir() else None,
                          onnx_dir=args.onnx_dir, provider=args.onnx_provider)
    try:
        return make_engine(policy, opts, log).describe()
    except (UnknownBackendError, ProviderError, CheckpointMismatchError) as e:
        raise BadInput(f"{e}") from None


def check_policy_fits(args: RunCommand, policy: Any, env: Any, agent: Any = None) -> None:
    """A token policy trained on another robot's state (or actions) than the env's, or on
    other sim envs than this one (check_trained_on), stops the run with one line, before any
    episode; the env (and the agent, if made) is closed."""
    from agent.lookahead_agent import robot_spec
    from policies.model.token_policy import CheckpointMismatchError, TokenPolicy

    if not isinstance(policy, TokenPolicy):
        return  # the scripted expert reads privileged state, whatever the arm
    u = env.unwrapped
    try:
        try:
            policy.check_layouts(u.state_layout, u.action_layout, "")
        except CheckpointMismatchError:
            raise BadInput(other_robot(args, policy, robot_spec(env).name, u)) from None
        check_trained_on(args, policy)
    except BadInput:
        env.close()
        if agent is not None:
            agent.close()
        raise


def other_robot(args: RunCommand, policy: Any, robot: str, env: Any) -> str:
    """The one line for a token policy meeting an arm whose state (or actions) it was not
    trained on: which robot it was trained for, and what to do instead."""
    from policies.registry import default_policy_spec

    cfg = policy.config
    name = args.policy or shown_path(default_policy_spec())
    trained = (f"robot {', '.join(cfg.trained_robots)}" if cfg.trained_robots
               else "another robot")
    return (f"{name} was trained for {trained} ({cfg.describe_state()}, actions "
            f"{list(cfg.action_layout.names)}), not robot {robot!r} ("
            f"{env.state_layout.describe()}): it cannot drive this arm. Train a policy for "
            f"{robot} on its own demonstrations: agent collect --env {args.env} --policy "
            f"scripted --out DIR (or record them by teleoperation), then agent train --data DIR "
            f"--out RUN (agent train --init {name} fine-tunes only on data of the robot it "
            f"was trained for)")


def shown_path(spec: str) -> str:
    """`spec` relative to the working directory where it lies under it (as a user types it)."""
    try:
        return str(Path(spec).resolve().relative_to(Path.cwd()))
    except ValueError:
        return spec


def check_trained_on(args: RunCommand, policy: Any) -> None:
    """BadInput for a sim env spec outside the policy's trained_on (without
    --allow-untrained-env); a warning line where it runs anyway or trained_on is unknown.
    bridge: specs name an address, not a task: the robot's layouts are what is compared there
    (check_layouts)."""
    import envs
    from policies.registry import default_policy_spec

    if envs.resolve(args.env).gym_id is None:
        return
    trained_on = policy.config.trained_on
    name = args.policy or shown_path(default_policy_spec())
    if trained_on is None:
        print(f"warning: {name} does not record which envs it was trained on (older "
              f"checkpoint); {args.env} may be one it was never trained for", file=sys.stderr)
        return
    if envs.covered_by(args.env, trained_on):
        return  # its tasks or variants of them (pick_place_hard of pick_place, push of mt10)
    said = f"{name} was trained on {policy.config.describe_trained_on()}, not {args.env}"
    if args.allow_untrained_env:
        print(f"warning: {said}; running anyway (--allow-untrained-env): expect it to fail",
              file=sys.stderr)
        return
    raise BadInput(f"{said}; use --policy scripted, or collect demonstrations and train or "
                   f"fine-tune for it (agent collect --env {args.env} --out DIR, then agent "
                   f"train --init {name} --data DIR --out RUN), or run it anyway with "
                   f"--allow-untrained-env")


def check_instruction(args: RunCommand, policy: Any) -> None:
    """--instruction (or every sentence --phrasings may say), refused in one line if the
    policy's text window cannot hold it (the env checks characters and length when made:
    make_env)."""
    from envs.phrasings import task_phrasings
    from policies.model.text import InstructionTooLongError
    from policies.model.token_policy import TokenPolicy

    if not isinstance(policy, TokenPolicy):
        return
    flag, texts = "--instruction", [] if args.instruction is None else [args.instruction]
    if args.phrasings is not None:
        flag, texts = f"--phrasings {args.phrasings}", list(
            task_phrasings(phrasing_task(args), args.phrasings))
    try:
        for text in texts:
            policy.text_ids([text])
    except InstructionTooLongError as e:
        raise BadInput(f"{flag}: {e}") from None


def phrasing_task(args: RunCommand) -> str:
    """The table-top task --phrasings phrases, or BadInput for envs without phrasings."""
    import envs
    from envs.registry import SIM_BACKENDS

    resolved = envs.resolve(args.env)
    if resolved.backend not in SIM_BACKENDS:
        raise BadInput(f"--phrasings applies to table-top sim envs "
                       f"({', '.join(f'{b}:TASK' for b in SIM_BACKENDS)}), not {args.env}")
    if args.instruction is not None:
        raise BadInput("give --instruction or --phrasings, not both")
    return resolved.target


def make_env(args: RunCommand) -> Any:
    """The env --env names, saying --instruction instead of its own sentence if given."""
    import envs
    from envs.errors import InstructionError

    kwargs: dict[str, Any] = {} if args.instruction is None else {
        "instruction": args.instruction}
    if args.phrasings is not None:
        phrasing_task(args)
        kwargs["phrasings"] = args.phrasings
    if args.goals is not None:
        if envs.resolve(args.env).backend != "metaworld":
            raise BadInput(f"--goals applies to Meta-World envs (metaworld:TASK), not {args.env}")
        kwargs["goals"] = args.goals
    try:
        return envs.make(args.env, **kwargs)
    except InstructionError as e:
        raise BadInput(f"--instruction: {e}") from None


def make_agent(args: RunCommand, policy: Any, env: Any) -> tuple[Any, Any]:
    """The execution broker --exec names, over the policy slowed by --simulate-latency; `env`
    says whose state --exec ahead rolls forward."""
    from agent.execution import make_broker
    from agent.latency import DelayedPolicy, LatencySpec

    latency = None
    try:
        if args.simulate_latency:
            latency = LatencySpec.parse(args.simulate_latency)
            policy = DelayedPolicy(policy, latency, seed=args.seed)
        return make_broker(policy, args.exec_mode,
                           getattr(env.unwrapped, "state_layout", None)), latency
    except ValueError as e:
        raise BadInput(f"{e}") from None


def load_predictor(args: RunCommand, policy: Any) -> Any:
    """The FuturePredictor --lookahead needs (None without it); loaded before the env."""
    from policies.model.token_policy import TokenPolicy
    from policies.video.head import VideoHeadError
    from policies.video.imagine import (
        FuturePredictor,
        check_tokenizer,
        load_video_head,
        tokenizer_dir,
    )

    if args.lookahead.k is None:  # LookaheadConfig refused its options without K
        return None
    if not isinstance(policy, TokenPolicy) or not args.policy:
        raise BadInput(f"--lookahead needs --policy RUN, a token policy trained with "
                         f"a video head (agent train --tokenizer); got {policy.name!r}")
    if args.exec_mode == "rtc":
        raise BadInput("--lookahead chooses among freshly sampled chunks, which "
                         "cannot continue committed actions; use --exec sync, naive or ensemble")
    try:
        head, record = load_video_head(Path(args.policy), policy.model.cfg.d_model)
        tok = check_tokenizer(record, args.lookahead.tokenizer
                              or tokenizer_dir(Path(args.policy), record))
        return FuturePredictor(policy, head, tok)
    except VideoHeadError as e:
        raise BadInput(f"{e}") from None


def make_lookahead(args: RunCommand, policy: Any, predictor: Any, env: Any) -> Any:
    """Wrap the token policy in lookahead over the env's robot (its joint limits)."""
    from agent.lookahead_agent import LookaheadPolicy, robot_spec

    c = args.lookahead
    try:
        return LookaheadPolicy(policy, predictor, robot_spec(env), c.k, c.horizon,
                               seed=args.seed, temperature=c.temperature, margin=c.margin,
                               score=c.score, when=c.when,
                               keep_frames=args.record is not None or args.rerun is not None)
    except ValueError as e:
        env.close()
        raise BadInput(f"{e}") from None


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
        raise BadInput("--viewer needs a MuJoCo env (e.g. mujoco:pick_place)")
    if not os.environ.get("DISPLAY") or os.environ.get("MUJOCO_GL") == "egl":
        raise BadInput("--viewer needs a display (DISPLAY is unset or MUJOCO_GL=egl); "
                         "use --record DIR to write videos instead")
    import mujoco.viewer

    viewer = mujoco.viewer.launch_passive(sim.model, sim.data)
    return (lambda *_: viewer.sync()), viewer.close


def _rerun_view(args: RunCommand, env: Any, agent: Any, look: Any, policy: Any,
                predictor: Any) -> Any:
    """The --rerun logger (agent/rerun_view.py), or None without --rerun."""
    if args.rerun is None:
        return None
    from agent.rerun_view import RerunError, RerunView, open_stream

    try:
        stream = open_stream(args.rerun)
    except RerunError as e:
        env.close()
        agent.close()
        raise BadInput(f"{e}") from None
    if look is None:
        return RerunView(stream)
    return RerunView(stream, look.latest_prediction,
                     policy.config.cameras[predictor.head.cfg.camera])


def _takeover(args: RunCommand, env: Any, agent: Any) -> tuple[Any, Any]:
    """The agent wrapped for --takeover (and the --dataset log), or both as given."""
    if args.takeover is None:
        return agent, None
    from agent.teleop.base import TeleopError
    from agent.teleop.registry import make_device
    from agent.teleop.takeover import InterventionLog, TakeoverAgent
    from dataset import DatasetError

    try:
        device = make_device(args.takeover)
        device.connect()
    except TeleopError as e:
        env.close()
        agent.close()
        raise BadInput(f"--takeover: {e}") from None
    wrapped = TakeoverAgent(agent, device)
    if args.dataset is None:
        return wrapped, None
    try:
        log = InterventionLog(args.dataset, env, wrapped,
                              {"env": args.env, "policy": args.policy or "default",
                               "takeover": args.takeover, "seed": args.seed})
    except (DatasetError, ValueError) as e:
        env.close()
        wrapped.close()
        raise BadInput(f"--dataset: {e}") from None
    return wrapped, log


def _chain(hooks: list[Callable[..., None]]) -> Callable[..., None] | None:
    if not hooks:
        return None

    def call_all(*a: Any) -> None:
        for hook in hooks:
            hook(*a)

    return call_all


def main(args: RunCommand) -> int:
    import envs
    from agent.episode_video import EpisodeVideo, PredictionVideo
    from agent.runtime import run_episode
    from agent.timing import StageTimer
    from policies.base import PolicyCheckpointError
    from policies.registry import UnknownPolicyError, default_policy_spec, load_policy
    from policies.video.lookahead import LookaheadError

    if args.episodes < 1:
        raise BadInput(f"--episodes must be >= 1, got {args.episodes}")
    # The policy (and its backend: imports torch, may time engines) is ready before the env is
    # made: for bridge:... making the env opens a session on the robot, and a long import
    # holding the GIL can starve the client's heartbeat thread until the watchdog ends it.
    try:
        envs.resolve(args.env)  # a bad spec fails here, before anything loads
        policy = load_policy(args.policy)
    except (envs.UnknownEnvError, UnknownPolicyError, PolicyCheckpointError) as e:
        raise BadInput(str(e)) from None
    check_instruction(args, policy)
    backend = setup_backend(args, policy, log=lambda m: print(m, file=sys.stderr))
    predictor = load_predictor(args, policy)
    look = None
    if predictor is None:
        env = make_env(args)
        try:
            agent, latency = make_agent(args, policy, env)
        except BadInput:
            env.close()
            raise
        check_policy_fits(args, policy, env, agent)
    else:  # lookahead reads the joint limits off the env's robot, so the env comes first
        env = make_env(args)
        check_policy_fits(args, policy, env)
        look = make_lookahead(args, policy, predictor, env)
        agent, latency = make_agent(args, look, env)
    rate = env.unwrapped.control_hz if args.rate is None else args.rate
    agent, hil = _takeover(args, env, agent)  # the device opens before any window does
    hooks, closers = [], []
    if args.viewer:
        hook, close = _viewer_hook(env)
        hooks.append(hook)
        closers.append(close)
    view = _rerun_view(args, env, agent, look, policy, predictor)
    if hil is not None:
        closers.append(hil.close)
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
        on_step = _chain(hooks + ([video.add] if video else []) + ([hil.add] if hil else []))
        if view is not None:
            view.start(seed)
        if hil is not None:
            hil.start()
        try:
            r = run_episode(env, agent, seed, timer, rate_hz=rate, on_step=on_step)
        except LookaheadError as e:  # every candidate rejected: stop, never run one of them
            env.close()
            agent.close()
            raise BadInput(f"episode seed={seed}: {e}") from None
        finally:
            if video:
                video.close()
        if hil is not None:
            hil.commit(r)
        results.append(r)
        why = f" ({r.failure})" if r.failure else ""
        tqdm.write(f"episode {i + 1}/{args.episodes} seed={seed} success={r.success} "
                   f"steps={r.steps} loop={r.steps / r.duration_s:.1f} Hz{why}", file=sys.stdout)
        bar.set_postfix(success=f"{np.mean([x.success for x in results]):.0%}")
        bar.update(1)
        if getattr(agent, "stop_requested", False):  # the operator's stop key (--takeover)
            break
    bar.close()
    for close in closers:
        close()
    env.close()
    agent.close()
    summary = summarize(args.env, policy.name if args.policy is None else args.policy,
                        results, timer)
    summary.update(backend=backend, exec=args.exec_mode, phrasings=args.phrasings, goals=args.goals,
                   simulate_latency_ms=None if latency is None else
                   {"mean": latency.mean_ms, "jitter": latency.jitter_ms},
                   **agent.stats.summary())
    summary["lookahead"] = None if look is None else look.summary(summary["loop_hz"])
    if args.takeover is not None:
        summary["takeover"] = {**agent.takeover.summary(), "device": args.takeover,
                               "dataset": None if args.dataset is None else str(args.dataset)}
    if args.policy is None:
        summary["policy"] = f"{default_policy_spec()} (default)"
    if args.json:
        print(json.dumps(summary))
    else:
        lo, hi = summary["success_ci95"]
        for task, t in summary.get("per_task", {}).items():
            print(f"  {task}: {t['successes']}/{t['episodes']}")
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
        **per_task(results),
    }


def per_task(results: list) -> dict[str, Any]:
    """`{"per_task": {task: {"episodes", "successes", "success_rate"}}}` for envs that name
    each episode's task (Meta-World sets: agent eval --env metaworld:mt10), else {}."""
    tasks: dict[str, list[bool]] = {}
    for r in results:
        if r.task is not None:
            tasks.setdefault(r.task, []).append(r.success)
    if not tasks:
        return {}
    return {"per_task": {t: {"episodes": len(s), "successes": sum(s),
                             "success_rate": sum(s) / len(s)} for t, s in sorted(tasks.items())}}
