"""The keyboard teleop device: key parsing, press-to-motion, and the terminal it borrows (a real
pseudo-terminal)."""

from __future__ import annotations

import io
import os
import pty
import termios
import time

import numpy as np
import pytest

from agent.teleop import TeleopError
from agent.teleop.keyboard import (
    ESC_WAIT_S,
    MAX_DT_S,
    KeyboardConfig,
    KeyboardDevice,
    KeyMotion,
    KeyParser,
)
from agent.teleop.registry import DEVICES, make_device
from envs.tabletop import MAX_DPOS


def test_parser_reads_letters_named_keys_and_arrows():
    p = KeyParser()
    assert p.feed(b"wS \r\n\x7f\x08+", 0.0) == ["w", "s", " ", "ENTER", "ENTER", "BACKSPACE",
                                               "BACKSPACE", "+"]
    assert p.feed(b"\x1b[A\x1b[B\x1bOC\x1b[D", 0.0) == ["UP", "DOWN", "RIGHT", "LEFT"]
    assert p.feed(b"\x1b[1;5A\x1b[3~x", 0.0) == ["x"]  # other sequences are dropped
    assert p.feed("é".encode(), 0.0) == []


def test_a_lone_esc_is_the_key_only_once_nothing_follows():
    p = KeyParser()
    assert p.feed(b"\x1b", 1.0) == []  # could be the start of an arrow
    assert p.feed(b"[A", 1.01) == ["UP"]  # it was
    assert p.feed(b"\x1b", 2.0) == []
    assert p.feed(b"", 2.0 + ESC_WAIT_S / 2) == []
    assert p.feed(b"", 2.001 + ESC_WAIT_S) == ["ESC"]
    assert p.feed(b"\x1bn", 3.0) == ["ESC", "n"]  # Esc, then another key: both
    assert p.feed(b"\x1b[1;", 4.0) == [] and p.feed(b"", 4.001 + ESC_WAIT_S) == []  # torn: dropped
    assert p.feed(b"w", 4.1) == ["w"]


def test_a_press_moves_for_hold_s_at_the_speed_then_stops():
    m = KeyMotion(KeyboardConfig(speed=0.05, hold_s=0.4))
    assert m.press("w", 10.0) == frozenset()
    np.testing.assert_allclose(m.action(10.1, 10.0), [0.005, 0, 0, 0, 0, 0, 0], atol=1e-7)
    assert m.engaged(10.3)
    assert m.action(10.3, 10.1)[0] == pytest.approx(0.01)
    assert m.action(10.5, 10.3)[0] == pytest.approx(0.005)  # only the 0.1 s left of the move
    assert not m.action(10.6, 10.5).any() and not m.engaged(10.6)
    m.press("w", 11.0)
    m.press("w", 11.3)  # a repeat (key held) extends the move
    assert m.action(11.6, 11.5)[0] == pytest.approx(0.005)
    m.press("s", 11.6)  # the opposite key reverses at once
    assert m.action(11.7, 11.6)[0] == pytest.approx(-0.005)
    m.press("q", 12.0)  # yaw: ROT_PER_M rad/s per m/s
    assert m.action(12.1, 12.0)[5] == pytest.approx(0.05)


def test_a_press_is_not_lost_when_the_loop_stalls():
    m = KeyMotion(KeyboardConfig(speed=0.05, hold_s=0.2))
    m.press("a", 5.0)
    assert m.action(7.0, 5.0)[1] == pytest.approx(0.01)  # the whole 0.2 s move, late
    m = KeyMotion(KeyboardConfig(speed=0.05, hold_s=1.0))
    m.press("a", 5.0)
    assert m.action(7.0, 5.0)[1] == pytest.approx(0.05 * MAX_DT_S)  # but no jump


def test_speed_gripper_events_and_limits():
    m = KeyMotion(KeyboardConfig(speed=0.05))
    m.press("+", 0.0)
    assert m.speed == pytest.approx(0.1)
    for _ in range(10):
        m.press("-", 0.0)
    assert m.speed == pytest.approx(0.005)  # the floor
    assert m.press(" ", 0.0) == frozenset() and m.action(0.1, 0.0)[6] == 1.0  # closed
    m.press(" ", 0.0)
    assert m.action(0.1, 0.0)[6] == 0.0  # open again
    assert [m.press(k, 0.0) for k in ("ENTER", "n", "BACKSPACE", "b", "ESC", "t")] == [
        {"next"}, {"next"}, {"rerecord"}, {"rerecord"}, {"stop"}, {"takeover", "handback"}]
    fast = KeyMotion(KeyboardConfig(speed=0.4))
    fast.press("r", 0.0)
    assert fast.action(0.25, 0.0)[2] == pytest.approx(MAX_DPOS)  # 0.1 m asked, the env's cap


def test_config_parse():
    assert KeyboardConfig.parse("") == KeyboardConfig()
    assert KeyboardConfig.parse("speed=0.1, hold=0.3") == KeyboardConfig(0.1, 0.3)
    for bad, why in (("speed=9", "speed must be in"), ("fast=1", "KEY one of"),
                     ("speed=x", "not a number"), ("hold=0", "hold must be in")):
        with pytest.raises(ValueError, match=why):
            KeyboardConfig.parse(bad)


def test_registry_makes_keyboard_and_suggests_names():
    assert "keyboard" in DEVICES
    dev = make_device("keyboard:speed=0.1")
    assert isinstance(dev, KeyboardDevice) and dev.cfg.speed == 0.1
    with pytest.raises(TeleopError, match="did you mean 'keyboard'"):
        make_device("keybaord")
    with pytest.raises(TeleopError, match="--teleop keyboard:speed=2: speed must be in"):
        make_device("keyboard:speed=2")


def _read_until(dev: KeyboardDevice, want: str, timeout: float = 2.0) -> set[str]:
    seen: set[str] = set()
    end = time.monotonic() + timeout
    while want not in seen and time.monotonic() < end:
        seen |= dev.read(None).events
        time.sleep(0.01)
    return seen


def test_device_on_a_real_pty_reads_keys_and_restores_the_terminal():
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    out = io.StringIO()
    dev = KeyboardDevice(KeyboardConfig(), fd=slave, out=out)
    try:
        with dev:
            mode = termios.tcgetattr(slave)
            assert not mode[3] & (termios.ECHO | termios.ICANON)  # cbreak: no echo, no lines
            assert mode[3] & termios.ISIG  # Ctrl-C still interrupts
            assert "backspace or b: re-record" in out.getvalue()  # the key help
            assert not dev.read(None).events  # nothing typed: returns at once
            os.write(master, b"w")
            time.sleep(0.05)
            cmd = dev.read(None)
            assert cmd.engaged and cmd.action.shape == (7,)
            os.write(master, b"\x7f")
            assert "rerecord" in _read_until(dev, "rerecord")
            os.write(master, b"\x1b")
            assert "stop" in _read_until(dev, "stop")  # a lone Esc, after the wait
        assert termios.tcgetattr(slave) == before
        with dev:
            os.close(master)  # the terminal goes away: stop (and closing it is no error)
            master = -1
            assert "stop" in _read_until(dev, "stop")
    finally:
        os.close(slave)
        if master >= 0:
            os.close(master)


def test_device_refuses_a_non_terminal(tmp_path):
    r, w = os.pipe()
    try:
        with pytest.raises(TeleopError, match="stdin is not one"):
            KeyboardDevice(fd=r, out=io.StringIO()).connect()
    finally:
        os.close(r)
        os.close(w)
