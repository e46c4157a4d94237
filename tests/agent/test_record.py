"""`agent record --teleop keyboard`: typed into a real pseudo-terminal, recorded on real MuJoCo,
read back from real files."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import fails_with_one_line

from agent.cli import main
from agent.teleop import TeleopCommand, TeleopDevice
from agent.teleop.registry import DEVICES
from dataset import LeRobotDatasetReader, edit, layout, video
from tests.dataset.lerobot_schema import lerobot_problems

REPO = Path(__file__).resolve().parents[2]
ENTER, BACKSPACE, ESC = b"\r", b"\x7f", b"\x1b"


def _own_terminal() -> None:
    # In the child: a new session whose controlling terminal is the pty on stdin, as a login
    # shell has, so Ctrl-C typed into it arrives as SIGINT.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """`agent ARGS` with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, *args: str) -> None:
        self.master, self.slave = pty.openpty()
        self.attrs_before = termios.tcgetattr(self.slave)
        env = {**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": "egl"}
        self.proc = subprocess.Popen([sys.executable, "-m", "agent", *args], stdin=self.slave,
                                     stdout=self.slave, stderr=self.slave, env=env, cwd=REPO,
                                     preexec_fn=_own_terminal)
        self.text = ""

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if select.select([self.master], [], [], min(left, 0.05))[0]:
                try:
                    self.text += os.read(self.master, 65536).decode(errors="replace")
                except OSError:
                    return

    def wait_for(self, needle: str, after: int = 0, timeout: float = 60.0) -> int:
        """Read until `needle` appears past position `after`; where it ends."""
        end = time.monotonic() + timeout
        while (at := self.text.find(needle, after)) < 0:
            assert time.monotonic() < end and self.proc.poll() is None, (
                f"no {needle!r} in the terminal:\n{self.text[-3000:]}")
            self.pump(0.05)
        return at + len(needle)

    def type(self, keys: bytes, pause: float = 0.0) -> None:
        os.write(self.master, keys)
        self.pump(pause)

    def close(self) -> int:
        try:
            code = self.proc.wait(timeout=60)
        finally:
            self.proc.kill()
        self.pump(0.2)
        self.attrs_after = termios.tcgetattr(self.slave)
        os.close(self.master)
        os.close(self.slave)
        return code


def _staged(out: Path, take: str) -> list[Path]:
    return list((out / layout.STAGING_DIR).glob(f"{take}-*"))


def test_keyboard_takes_through_a_pty_keep_only_the_kept_episodes(tmp_path):
    out = tmp_path / "ds"
    term = Terminal("record", "--env", "mujoco:pick_place", "--teleop", "keyboard",
                    "--task", "pick up the red cube", "--episodes", "5", "--out", str(out),
                    "--fps", "5", "--episode-s", "60", "--reset-s", "60", "--json")
    try:
        at = term.wait_for("esc or ctrl-c: stop")  # the key help, once
        # episode 1: forward (+x) four presses, then next
        at = term.wait_for("episode 1/5:", at)
        for _ in range(4):
            term.type(b"w", 0.3)
        at = term.wait_for(", moving", at)  # the keys reached the take (however loaded the CPU)
        term.type(b"", 0.5)
        term.type(ENTER)
        at = term.wait_for("reset: put the scene back", at)
        term.type(b"n")  # end the reset period early
        # episode 2, first take: up (+z), then re-record; its staged videos go at once
        at = term.wait_for("episode 2/5:", at)
        term.type(b"r", 0.6)
        term.type(BACKSPACE)
        at = term.wait_for("discarded, recording it again", at)
        deadline = time.monotonic() + 10
        while _staged(out, "take1") and time.monotonic() < deadline:
            term.pump(0.1)
        assert not _staged(out, "take1"), "the discarded take's videos are still staged"
        at = term.wait_for("reset: put the scene back", at)
        term.type(b"n")
        # episode 2 again: left (+y) twice, then next
        at = term.wait_for("episode 2/5:", at)
        term.type(b"a", 0.3)
        term.type(b"a")
        at = term.wait_for(", moving", at)
        term.type(b"", 0.8)
        term.type(b"n")
        at = term.wait_for("reset: put the scene back", at)
        term.type(b"n")
        # episode 3: stop while it records
        at = term.wait_for("episode 3/5:", at)
        term.type(b"s", 0.5)
        term.type(ESC)
        code = term.close()
    finally:
        term.proc.kill()
    assert code == 0, term.text[-3000:]
    assert term.attrs_after == term.attrs_before, "the terminal was not restored"
    summary = json.loads(term.text.strip().splitlines()[-1])
    assert [t["reason"] for t in summary["takes"]] == ["next", "rerecord", "next", "stop"]
    assert summary["kept"] == 2 and summary["discarded"] == 2 and summary["episodes"] == 2

    ds = LeRobotDatasetReader(out)
    assert ds.num_episodes == 2 and ds.fps == 5 and ds.tasks == ["pick up the red cube"]
    assert not (out / layout.STAGING_DIR).exists() and not list(out.rglob("*.tmp"))
    assert lerobot_problems(out) == []  # what LeRobot's own loader needs (tests/dataset)
    first, second = ds.episode(0), ds.episode(1)
    assert [first.seed, second.seed] == [0, 1]  # the re-recorded take kept its seed
    assert [first.length, second.length] == [t["frames"] for t in summary["takes"][::2]]
    x, y, z = (ds.state_names.index(n) for n in ("ee_x", "ee_y", "ee_z"))
    # Episode 1 moved +x only, episode 2 +y only: the recorded actions are the applied
    # ones (nonzero where keys moved the arm) and the EE followed them. (How many frames
    # carry the motion depends on how the loop kept its rate on a loaded machine.)
    assert first.action[:, 0].min() >= 0 and first.action[:, 0].sum() > 0.02
    assert not first.action[:, 1:6].any()
    assert first.state[-1, x] - first.state[0, x] > 0.01
    assert abs(first.state[-1, y] - first.state[0, y]) < 0.005
    assert second.action[:, 1].min() >= 0 and second.action[:, 1].sum() > 0.01
    assert not second.action[:, [0, 2]].any()
    assert second.state[-1, y] - second.state[0, y] > 0.005
    assert abs(second.state[-1, z] - second.state[0, z]) < 0.005  # nothing of the up take
    for ep in (first, second):
        # applied actions stay within the env's limits; next.success is per frame
        assert np.abs(ep.action[:, :3]).max() <= 0.05 + 1e-6
        assert ep.next_success.shape == (ep.length,)
        np.testing.assert_allclose(ep.timestamp, np.arange(ep.length) / ds.fps, atol=1e-6)
        t = ep.capture_time
        assert t[0] == 0 and np.all(np.diff(t) > 0) and t[-1] < ep.length / ds.fps + 1.0
    # The videos hold the kept frames only: the discarded takes left nothing behind.
    for key in ds.camera_keys:
        path, _, end = ds.video_segment(1, key)
        assert abs(video.duration_s(path) - end) < 1e-6
        assert ds.frames(1, key).shape[0] == second.length
    # An edit keeps the capture times.
    kept = edit.delete_episodes(out, tmp_path / "edited", [0])
    np.testing.assert_array_equal(kept.episode(0).capture_time, second.capture_time)


def test_bad_task_and_device_are_one_line_errors(capsys, tmp_path):
    base = ["record", "--env", "mujoco:pick_place", "--episodes", "1", "--out",
            str(tmp_path / "ds")]
    err = fails_with_one_line([*base, "--teleop", "keyboard", "--task", "Pick it UP!"], capsys)
    assert "instruction 'Pick it UP!'" in err and "lowercase" in err
    err = fails_with_one_line([*base, "--teleop", "keybord", "--task", "pick"], capsys)
    assert "did you mean 'keyboard'" in err
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("extra", [["--episodes", "0"], ["--episode-s", "0"]])
def test_bad_numbers_are_refused(capsys, tmp_path, extra):
    argv = ["record", "--env", "mujoco:pick_place", "--teleop", "keyboard", "--task", "pick",
            "--episodes", "1", "--out", str(tmp_path / "ds"), *extra]
    assert extra[0] in fails_with_one_line(argv, capsys)


def test_keyboard_needs_a_terminal(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "agent", "record", "--env", "mujoco:pick_place", "--teleop",
         "keyboard", "--task", "pick", "--episodes", "1", "--out", str(tmp_path / "ds")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": "egl"})
    assert out.returncode == 2
    assert "stdin is not one" in out.stderr and not (tmp_path / "ds").exists()


def test_keyboard_takes_a_robot_over_the_bridge(tmp_path):
    from tests.hw_bridge.conftest import start_server_process

    server, endpoint = start_server_process("--rate", "10")
    out = tmp_path / "ds"
    try:
        term = Terminal("record", "--env", f"bridge:{endpoint}", "--teleop", "keyboard",
                        "--task", "push the cube", "--episodes", "1", "--out", str(out),
                        "--episode-s", "60")
        try:
            at = term.wait_for("episode 1/1:")
            for _ in range(3):
                term.type(b"r", 0.3)  # up: clear of the table whatever the start pose
            at = term.wait_for(", moving", at)
            term.type(b"", 0.8)
            term.type(b"n")
            code = term.close()
        finally:
            term.proc.kill()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert code == 0 and "episode 1/1: kept:" in term.text[at:], term.text[-3000:]
    ds = LeRobotDatasetReader(out)
    ep = ds.episode(0)
    assert ds.fps == 10 and ep.length >= 10 and ds.tasks == ["push the cube"]
    assert ds.env_state_names == []  # a robot has no ground truth to record
    z = ds.state_names.index("ee_z")
    assert ep.action[:, 2].min() > -1e-4 and ep.action[:, 2].sum() > 0.01  # FK round-off
    assert ep.state[-1, z] - ep.state[0, z] > 0.005
    assert np.all(np.diff(ep.capture_time) > 0)


class Forward(TeleopDevice):
    """The operator's hand, scripted: +x at 1 cm per period, no events."""

    name = "forward"

    def connect(self) -> None:
        pass

    def read(self, obs) -> TeleopCommand:
        return TeleopCommand(np.array([0.01, 0, 0, 0, 0, 0, 0], np.float32), engaged=True)


@pytest.mark.slow  # ~10 s; the default suite already drives the keyboard through a pty
def test_resume_adds_takes_and_ctrl_c_keeps_what_was_saved(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ds"
    monkeypatch.setitem(DEVICES, "forward", lambda arg: Forward())
    assert main(["record", "--env", "mujoco:pick_place", "--teleop", "forward", "--task",
                 "push the cube", "--episodes", "1", "--out", str(out), "--fps", "10",
                 "--episode-s", "1"]) == 0
    assert "episode 1/1: kept (time up): 10 frames" in capsys.readouterr().out
    term = Terminal("record", "--env", "mujoco:pick_place", "--teleop", "keyboard", "--task",
                    "push the cube", "--episodes", "3", "--out", str(out), "--fps", "10",
                    "--episode-s", "60", "--resume")
    try:
        at = term.wait_for("episode 2/3:")
        term.type(b"d")
        at = term.wait_for(", moving", at)
        term.type(b"", 0.5)
        term.type(b"n")
        at = term.wait_for("episode 3/3:", at)
        term.type(b"\x03")  # Ctrl-C: SIGINT, as the terminal sends it
        code = term.close()
    finally:
        term.proc.kill()
    assert code == 130 and "interrupted: the take in progress is discarded" in term.text[at:]
    assert term.attrs_after == term.attrs_before
    ds = LeRobotDatasetReader(out)
    assert ds.num_episodes == 2 and [ep.seed for ep in ds] == [0, 1]
    y = ds.state_names.index("ee_y")
    assert (ds.episode(0).action[:, 0] > 0).all()  # the scripted take, kept by the resume
    assert ds.episode(1).state[-1, y] < ds.episode(1).state[0, y] - 0.005  # d: -y
