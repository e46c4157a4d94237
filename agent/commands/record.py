"""`agent record`: record demonstrations by hand, with a teleop device, into a LeRobotDataset v3.0.

Each episode is a take: the loop (`_record_take`, one screen) reads the device, steps the env
with its action and keeps the observation, the action the env really applied
(`info["applied_action"]`, after its clamping) and the time the observation reached the loop
(`complementary_info.capture_time`, time.monotonic() from the take's first frame), paced on
time.monotonic() at --fps. A take ends after --episode-s, when the operator says next (kept),
re-record (discarded, recorded again with the same seed) or stop (discarded; the session ends
and every episode kept so far is saved), or when the env ends it (task done: kept; a
failure: discarded). Between takes comes a reset period (--reset-s) in which the arm holds still
while a human puts the scene back; next ends it early. Then the env resets.

Saving never stalls recording (agent/takes.py): videos encode while the take records, and the
finished take is committed by a background saver while the next one records. The rate the
loop achieved is reported per take, as frames over wall time; LeRobot's `timestamp` column stays
frame_index / fps, as its loader requires, so the real timing lives in `capture_time`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from agent.commands import BadInput
from dataset import layout

BRIDGE_RESET_S = 10.0  # default reset period on a real arm: a human puts the scene back
STATUS_EVERY_S = 0.25  # live status line refresh
END_EVENTS = ("stop", "rerecord", "next")  # the first of these in a reading wins
NO_STEP_LIMIT = 10**9  # for the envs' episode step limits (TimeLimit, the bridge's max_steps)


@dataclass(frozen=True)
class RecordCommand:
    """record demonstrations by hand with a teleop device

    One take per episode: the device's keys keep it (next), discard and record it again
    (re-record) or stop; a line per take gives the rate achieved. Videos encode while recording
    and episodes save in the background, so the next one starts at once.
    """

    env: Annotated[str, tyro.conf.arg(metavar="SPEC")]
    """backend:task or bridge:tcp://HOST:PORT, e.g. mujoco:pick_place"""
    teleop: Annotated[str, tyro.conf.arg(metavar="DEVICE")]
    """teleop device: keyboard (a terminal, also over SSH), keyboard:speed=0.1,hold=0.3, ..."""
    task: Annotated[str, tyro.conf.arg(metavar="TEXT")]
    """the instruction written to the dataset for every episode (the env's own is not used)"""
    episodes: Annotated[int, tyro.conf.arg(metavar="N")]
    """episodes the dataset should hold (with --resume: in total)"""
    out: Annotated[Path, tyro.conf.arg(metavar="DIR")]
    """dataset directory"""
    episode_s: float = 30.0
    """longest take, seconds (next ends one earlier)"""
    reset_s: Annotated[float | None, tyro.conf.arg(metavar="S")] = None
    """reset period between takes, s (None: 0 on a sim env, 10 over the bridge); next ends it"""
    fps: Annotated[int | None, tyro.conf.arg(metavar="F")] = None
    """control rate and dataset fps (None: the env's; over the bridge only the robot's own)"""
    resume: bool = False
    """add episodes to the dataset in DIR after its last complete one"""
    seed: int = 0
    """env seed of the first take (sim scenes), then +1 per kept episode"""
    vcodec: Literal["av1", "h264"] = "av1"
    """video codec (av1, LeRobot's default; h264 is faster to decode)"""
    episodes_per_file: int = layout.EPISODES_PER_FILE
    """episodes per data/video file before rolling to the next (new datasets)"""
    json: bool = False
    """print one JSON summary object as the last stdout line"""

    def __post_init__(self) -> None:
        from envs.tabletop import check_instruction

        check_instruction(self.task)  # InstructionError (a ValueError): one line via the CLI
        if self.episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {self.episodes}")
        if not self.episode_s > 0:
            raise ValueError(f"--episode-s must be > 0, got {self.episode_s}")
        if self.reset_s is not None and not self.reset_s >= 0:
            raise ValueError(f"--reset-s must be >= 0, got {self.reset_s}")
        if self.fps is not None and self.fps < 1:
            raise ValueError(f"--fps must be a positive integer, got {self.fps}")
        if self.episodes_per_file < 1:
            raise ValueError(f"--episodes-per-file must be >= 1, got {self.episodes_per_file}")


#: What `agent record` parses (agent/cli.py).
Command = RecordCommand


@dataclass
class TakeEnd:
    """How a take ended: `reason` is next, rerecord, stop, time, done or failure."""

    reason: str
    frames: int
    wall_s: float  # first frame's capture to the end of the last frame's period
    ended_at: float  # time.monotonic()
    failure: str | None = None
    obs: Any = None
    info: dict = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        return self.reason in ("next", "time", "done") and self.frames > 0


class Status:
    """The live line (only on a terminal) and the line per take."""

    def __init__(self, cmd: RecordCommand, fps: int) -> None:
        self.cmd, self.fps = cmd, fps
        self.live = sys.stderr.isatty()
        self._last = 0.0

    def update(self, label: str, frames: int, elapsed: float, engaged: bool,
               pending: int) -> None:
        now = time.monotonic()
        if not self.live or now - self._last < STATUS_EVERY_S:
            return
        self._last = now
        rate = frames / elapsed if elapsed > 0 else 0.0
        sys.stderr.write(f"\r\x1b[K{label}: {elapsed:5.1f}/{self.cmd.episode_s:g} s, "
                         f"{frames} frames, {rate:5.2f}/{self.fps} Hz"
                         f"{', moving' if engaged else ''}"
                         f"{f', saving {pending}' if pending else ''}")
        sys.stderr.flush()

    def line(self, text: str) -> None:
        if self.live:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
        print(text, flush=True)


def main(cmd: RecordCommand) -> int:
    import envs
    from agent.recorder import dataset_spec
    from agent.teleop.base import TeleopError
    from agent.teleop.registry import make_device
    from dataset.video import VideoConfig

    try:
        bridge = envs.resolve(cmd.env).gym_id is None
        device = make_device(cmd.teleop)
    except (envs.UnknownEnvError, TeleopError) as e:
        raise BadInput(str(e)) from None
    if cmd.out.exists() and not cmd.out.is_dir():
        raise BadInput(f"--out {cmd.out} exists and is not a directory")
    try:
        device.connect()  # first: a missing device is found before the env loads
    except TeleopError as e:
        raise BadInput(str(e)) from None
    try:
        env = _make_env(cmd, bridge)
        try:
            writer = _open_writer(cmd, dataset_spec(env, VideoConfig(codec=cmd.vcodec),
                                                    capture_time=True))
            try:
                return _session(cmd, env, device, writer, bridge)
            finally:
                writer.close()
        finally:
            env.close()
    finally:
        device.close()


def _make_env(cmd: RecordCommand, bridge: bool) -> Any:
    import envs

    limit = NO_STEP_LIMIT  # a take ends by time or the operator, never by the env's own limit
    try:
        if bridge:
            env = envs.make(cmd.env, instruction=cmd.task, max_steps=limit)
            hz = env.unwrapped.control_hz
            if cmd.fps is not None and cmd.fps != hz:
                env.close()
                raise BadInput(f"--fps {cmd.fps}: the robot at {cmd.env} runs at {hz:g} Hz "
                               f"(its server's control rate); leave --fps out")
            return env
        kw = {} if cmd.fps is None else {"control_hz": float(cmd.fps)}
        return envs.make(cmd.env, instruction=cmd.task, max_episode_steps=limit, **kw)
    except ValueError as e:  # a spec the env refuses (InstructionError, a bad rate)
        raise BadInput(str(e)) from None


def _open_writer(cmd: RecordCommand, spec: Any) -> Any:
    from dataset.errors import DatasetError
    from dataset.writer import DatasetWriter

    try:
        if cmd.resume and (cmd.out / layout.INFO_PATH).exists():
            return DatasetWriter.resume(cmd.out, spec)
        recording = {"env": cmd.env, "teleop": cmd.teleop, "task": cmd.task,
                     "first_seed": cmd.seed, "vcodec": cmd.vcodec,
                     "recorded_by": "motoken agent record"}
        return DatasetWriter.create(cmd.out, spec, cmd.episodes_per_file, recording)
    except DatasetError as e:
        raise BadInput(str(e)) from None


def _first_seed(writer: Any, seed: int) -> int:
    from dataset.reader import LeRobotDatasetReader

    if writer.num_episodes == 0:
        return seed
    return max(ep["seed"] for ep in LeRobotDatasetReader(writer.root).episodes) + 1


def _session(cmd: RecordCommand, env: Any, device: Any, writer: Any, bridge: bool) -> int:
    """Takes until the dataset holds --episodes or the operator stops; then waits for saves."""
    from agent.takes import RecordError, Saver

    status = Status(cmd, writer.spec.fps)
    saver, takes, code = Saver(writer), [], 0
    try:
        _takes(cmd, env, device, writer, saver, status, takes, bridge)
    except KeyboardInterrupt:
        status.line("interrupted: the take in progress is discarded")
        code = 130
    except RecordError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 1
    finally:
        saved, waited = _wait_for_saves(cmd, saver, status, writer)
    kept_rows = [r for r in takes if r["kept"]]
    for r, s in zip(kept_rows, saved, strict=False):
        r.update(episode=s.index, save_lag_s=round(s.lag_s, 3))
    code = 1 if saver.error is not None else code
    _report(cmd, writer, takes, writer.spec.fps, code, waited)
    return code


def _takes(cmd: RecordCommand, env: Any, device: Any, writer: Any, saver: Any, status: Status,
           takes: list[dict[str, Any]], bridge: bool) -> None:
    """Record takes, appending a row to `takes` for each; kept ones go to the saver."""
    from agent.takes import Take

    fps = writer.spec.fps
    reset_s = (BRIDGE_RESET_S if bridge else 0.0) if cmd.reset_s is None else cmd.reset_s
    seed, have, submitted = _first_seed(writer, cmd.seed), writer.num_episodes, 0
    ended_at = reset_took = None
    take = None
    try:
        while have + submitted < cmd.episodes and saver.error is None:
            obs, info = env.reset(seed=seed)
            first = time.monotonic()
            take = Take.start(writer.spec, writer.staging, f"take{len(takes)}")
            label = f"episode {have + submitted + 1}/{cmd.episodes}"
            end = _record_take(env, device, take, obs, info, first, cmd, fps, status, label,
                               saver)
            row = _row(end, fps, None if ended_at is None else first - ended_at - reset_took)
            if end.kept:
                saver.submit(take.finish(seed, cmd.task, end.failure))
                submitted, seed = submitted + 1, seed + 1
            else:
                take.discard()
            take = None
            takes.append(row)
            status.line(_describe(label, row, fps, saver.pending))
            ended_at, reset_took = end.ended_at, 0.0
            if end.reason == "stop":
                return
            if reset_s and have + submitted < cmd.episodes:
                t0 = time.monotonic()
                if _reset_period(device, end, reset_s, fps, status) == "stop":
                    return
                reset_took = time.monotonic() - t0
    finally:
        if take is not None:  # interrupted mid-take: nothing of it stays
            take.discard()


def _wait_for_saves(cmd: RecordCommand, saver: Any, status: Status,
                    writer: Any) -> tuple[list[Any], float]:
    """Wait for the saver to commit what it was given; (what it saved, seconds waited)."""
    from agent.takes import RecordError

    if saver.pending:
        status.line(f"waiting for {saver.pending} episode(s) to finish saving")
    t0 = time.monotonic()
    try:
        saved = saver.close()
    except RecordError as e:
        print(f"error: {e}; the {writer.num_episodes} episodes committed before are intact "
              f"in {cmd.out} (add more with --resume)", file=sys.stderr)
        saved = saver.saved
    waited = time.monotonic() - t0
    if saved:
        status.line(f"saved {len(saved)} episode(s) ({saved[0].index}..{saved[-1].index}), "
                    f"each committed at most {max(s.lag_s for s in saved):.2f} s after it ended")
    return saved, waited


def _record_take(env: Any, device: Any, take: Any, obs: Any, info: dict, captured: float,
                 cmd: RecordCommand, fps: int, status: Status, label: str,
                 saver: Any) -> TakeEnd:
    """The control loop of one take (see the module docstring)."""
    from envs.types import Observation

    period, frames_max = 1.0 / fps, max(1, round(cmd.episode_s * fps))
    start = next_tick = captured
    reason, failure = "time", None
    while len(take) < frames_max:
        observation = Observation.from_env(obs, info)
        command = device.read(observation)
        event = next((e for e in END_EVENTS if e in command.events), None)
        if event is not None:
            reason = event
            break
        obs, _, terminated, truncated, info = env.step(command.action)
        take.add(observation, info["applied_action"], info.get("is_success", False), captured)
        captured = time.monotonic()
        if terminated or (truncated and "failure" in info):
            reason, failure = ("done", None) if terminated else ("failure", info["failure"])
            break
        next_tick += period
        slack = next_tick - time.monotonic()
        if slack > 0:
            time.sleep(slack)
        elif slack < -period:  # a whole period behind: that time is lost (the rate shows it)
            next_tick = time.monotonic()
        # else a little late: go on at once, back on the frame grid (capture_time shows it)
        status.update(label, len(take), time.monotonic() - start, command.engaged,
                      saver.pending)
    now = time.monotonic()
    return TakeEnd(reason, len(take), now - start, now, failure, obs, info)


def _reset_period(device: Any, end: TakeEnd, seconds: float, fps: int, status: Status) -> str:
    """Wait while the scene is put back: the arm holds (nothing is sent). 'next' ends the wait
    early, 'stop' ends the session; returns which, or 'time'."""
    from envs.types import Observation

    status.line(f"reset: put the scene back ({seconds:g} s; next: start now, stop: end)")
    obs = Observation.from_env(end.obs, end.info)
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        events = device.read(obs).events
        for event in ("stop", "next"):
            if event in events:
                return event
        time.sleep(min(1.0 / fps, max(0.0, until - time.monotonic())))
    return "time"


def _row(end: TakeEnd, fps: int, gap_s: float | None) -> dict[str, Any]:
    rate = end.frames / end.wall_s if end.wall_s > 0 else 0.0
    return {"kept": end.kept, "reason": end.reason, "frames": end.frames,
            "wall_s": round(end.wall_s, 3), "rate_hz": round(rate, 3),
            "rate_ratio": round(rate / fps, 4),
            "gap_s": None if gap_s is None else round(gap_s, 3), "failure": end.failure}


def _describe(label: str, row: dict[str, Any], fps: int, pending: int) -> str:
    what = {"next": "kept", "time": "kept (time up)", "done": "kept (task done)",
            "rerecord": "discarded, recording it again", "stop": "discarded (stop)",
            "failure": f"discarded ({row['failure']}), recording it again"}[row["reason"]]
    if not row["frames"]:
        what = "no frames, nothing kept"
    gap = "" if row["gap_s"] is None else f", started {row['gap_s']:.2f} s after the last"
    saving = f"; {pending} saving in the background" if pending else ""
    return (f"{label}: {what}: {row['frames']} frames in {row['wall_s']:.2f} s = "
            f"{row['rate_hz']:.2f} Hz of {fps} Hz ({row['rate_ratio']:.1%}){gap}{saving}")


def _report(cmd: RecordCommand, writer: Any, takes: list[dict[str, Any]], fps: int,
            code: int, waited_s: float) -> None:
    kept = [r for r in takes if r["kept"]]
    gaps = [r["gap_s"] for r in takes if r["gap_s"] is not None]
    summary = {"out": str(cmd.out), "env": cmd.env, "teleop": cmd.teleop, "task": cmd.task,
               "fps": fps, "episodes": writer.num_episodes, "kept": len(kept),
               "discarded": len(takes) - len(kept), "frames": sum(r["frames"] for r in kept),
               "rate_ratio_min": min((r["rate_ratio"] for r in kept), default=None),
               "gap_s_max": max(gaps, default=None), "save_wait_at_end_s": round(waited_s, 3),
               "exit_code": code, "takes": takes}
    if cmd.json:
        print(json.dumps(summary))
        return
    worst = ("" if summary["rate_ratio_min"] is None else
             f"; slowest take ran at {summary['rate_ratio_min']:.1%} of {fps} Hz")
    print(f"{writer.num_episodes} episodes in {cmd.out} ({len(kept)} recorded now, "
          f"{summary['discarded']} takes discarded){worst}")
