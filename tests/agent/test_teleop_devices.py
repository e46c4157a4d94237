"""The gamepad and the SpaceMouse, tested at their libraries' boundary: a fake `pygame` and a
fake `pyspacemouse` module (installed in sys.modules for the test) report what a pad or a puck
would; everything from there on (mapping, deadzone, dead-man, buttons to events, gripper,
clamping, errors) is the real device code. The registry is tested here too."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from agent.teleop.base import TeleopError
from agent.teleop.gamepad import Gamepad, GamepadConfig
from agent.teleop.registry import DEVICES, make_device
from agent.teleop.spacemouse import SpaceMouse, SpaceMouseConfig
from envs.tabletop import MAX_DPOS, MAX_DROT


def obs(opening: float = 0.08, pos=(0.4, 0.0, 0.2)) -> dict:
    """A follower observation: 6 joints, tool position, quaternion, gripper opening."""
    state = np.concatenate([np.zeros(6), pos, [0.0, 1.0, 0.0, 0.0], [opening]])
    return {"state": state.astype(np.float32)}


# -- a fake pygame ---------------------------------------------------------------------------
class FakeJoystick:
    def __init__(self, n_axes: int = 6, n_buttons: int = 11) -> None:
        self.axes = [0.0] * n_axes
        self.buttons = [0] * n_buttons

    def init(self) -> None:
        pass

    def get_instance_id(self) -> int:
        return 0

    def get_name(self) -> str:
        return "Fake Pad"

    def get_numaxes(self) -> int:
        return len(self.axes)

    def get_axis(self, i: int) -> float:
        return self.axes[i]

    def get_button(self, i: int) -> int:
        return self.buttons[i]


def fake_pygame(pads: list[FakeJoystick]) -> types.ModuleType:
    pg = types.ModuleType("pygame")
    pg.JOYBUTTONDOWN = 1539
    pg.error = type("error", (RuntimeError,), {})
    pg.queue = []  # events the next event.get() returns
    pg.display = types.SimpleNamespace(init=lambda: None, quit=lambda: None)
    pg.joystick = types.SimpleNamespace(init=lambda: None, quit=lambda: None,
                                        get_count=lambda: len(pads), Joystick=lambda i: pads[i])

    def get(kind):
        out = [e for e in pg.queue if e.type == kind]
        pg.queue.clear()
        return out

    pg.event = types.SimpleNamespace(pump=lambda: None, get=get)
    pg.press = lambda button: pg.queue.append(
        types.SimpleNamespace(type=pg.JOYBUTTONDOWN, button=button, instance_id=0))
    return pg


@pytest.fixture
def pad(monkeypatch):
    js = FakeJoystick()
    pg = fake_pygame([js])
    monkeypatch.setitem(sys.modules, "pygame", pg)
    return js, pg


def test_gamepad_maps_sticks_with_deadzone_only_while_the_deadman_is_held(pad):
    js, _ = pad
    device = make_device("gamepad")
    device.connect()
    js.axes[1], js.axes[0] = -1.0, 0.575  # left stick: full forward, half right
    js.axes[4], js.axes[3] = 0.1, 0.0  # right stick: inside the deadzone (0.15)
    released = device.read(obs())
    assert not released.engaged and not released.action[:6].any()
    js.buttons[4] = 1  # LB, the dead-man
    held = device.read(obs())
    assert held.engaged
    # dx = full * 0.02 m; dy = -(0.575 - 0.15) / 0.85 * 0.02 = -0.01 m; dz inside deadzone
    np.testing.assert_allclose(held.action, [0.02, -0.01, 0, 0, 0, 0, 0], atol=1e-6)
    device.close()


def test_gamepad_buttons_become_events_and_the_gripper_toggles(pad):
    js, pg = pad
    device = Gamepad()
    device.connect()
    for button in (3, 7):  # Y, start
        pg.press(button)
    cmd = device.read(obs())
    assert cmd.events == {"takeover", "next"}
    for button in (2, 1, 6):  # X, B, back
        pg.press(button)
    assert device.read(obs()).events == {"handback", "rerecord", "stop"}
    assert device.read(obs()).events == frozenset()  # a press fires once
    pg.press(0)  # A toggles the gripper: open -> closed
    assert device.read(obs()).action[6] == 1.0
    pg.press(0)
    assert device.read(obs()).action[6] == 0.0


def test_takeover_keeps_the_gripper_the_policy_closed(pad):
    _, pg = pad
    device = Gamepad()
    device.connect()
    assert device.read(obs(opening=0.08)).action[6] == 0.0  # open at the start
    pg.press(3)  # takeover while the policy holds a 4 cm cube (opening 0.04 of 0.08)
    cmd = device.read(obs(opening=0.04))
    assert "takeover" in cmd.events and cmd.action[6] == 1.0


def test_gamepad_output_is_clamped_to_the_env_bounds(pad):
    js, _ = pad
    device = Gamepad(GamepadConfig(pos_step=0.5, rot_step=2.0, deadman=None))
    device.connect()
    js.axes[1], js.axes[0], js.axes[3] = -1.0, -1.0, 1.0
    cmd = device.read(obs())
    np.testing.assert_allclose(cmd.action[:3], [MAX_DPOS, MAX_DPOS, 0.0])
    assert cmd.action[5] == pytest.approx(-MAX_DROT) and cmd.engaged


def test_gamepad_without_pygame_or_without_a_pad_says_what_to_do(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygame", None)  # import pygame raises ImportError
    with pytest.raises(TeleopError, match=r"pip install 'motoken\[teleop\]'"):
        Gamepad().connect()
    monkeypatch.setitem(sys.modules, "pygame", fake_pygame([]))
    with pytest.raises(TeleopError, match=r"no gamepad at index 0: 0 joystick.*/dev/input"):
        Gamepad().connect()
    with pytest.raises(TeleopError, match="not connected"):
        Gamepad().read(obs())


# -- a fake pyspacemouse ---------------------------------------------------------------------
class FakePuck:
    def __init__(self) -> None:
        self.state = dict(x=0.0, y=0.0, z=0.0, roll=0.0, pitch=0.0, yaw=0.0, buttons=[0, 0])
        self.closed = False

    def read(self) -> types.SimpleNamespace:
        return types.SimpleNamespace(t=0.0, **self.state)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def puck(monkeypatch):
    dev = FakePuck()
    lib = types.ModuleType("pyspacemouse")
    lib.open = lambda DeviceNumber=0: dev if DeviceNumber == 0 else None
    monkeypatch.setitem(sys.modules, "pyspacemouse", lib)
    return dev


def test_spacemouse_maps_six_axes_with_deadzone(puck):
    device = make_device("spacemouse")
    device.connect()
    assert not device.read(obs()).engaged  # a puck at rest holds the arm
    puck.state.update(y=1.0, x=0.55, z=0.05, roll=-1.0, yaw=1.0)
    cmd = device.read(obs())
    # dx <- y; dy <- -x: -(0.55 - 0.1) / 0.9 * 0.02 = -0.01; dz: inside the deadzone
    np.testing.assert_allclose(cmd.action, [0.02, -0.01, 0, -0.1, 0, -0.1, 0], atol=1e-6)
    assert cmd.engaged
    device.close()
    assert puck.closed


def test_spacemouse_buttons_fire_on_the_press_edge(puck):
    device = SpaceMouse()
    device.connect()
    puck.state["buttons"] = [0, 1]
    assert device.read(obs()).events == {"takeover", "handback"}
    assert device.read(obs()).events == frozenset()  # still held: no second event
    puck.state["buttons"] = [1, 0]
    assert device.read(obs()).action[6] == 1.0  # left button: gripper closed
    assert device.read(obs()).action[6] == 1.0  # held, not toggled again
    puck.state["buttons"] = [0, 0]
    device.read(obs())
    puck.state["buttons"] = [1, 0]
    assert device.read(obs()).action[6] == 0.0


def test_spacemouse_clamps_and_reports_a_missing_library_or_device(puck, monkeypatch):
    device = SpaceMouse(SpaceMouseConfig(pos_step=1.0, rot_step=1.0))
    device.connect()
    puck.state.update(y=-1.0, pitch=1.0)
    cmd = device.read(obs())
    assert cmd.action[0] == pytest.approx(-MAX_DPOS) and cmd.action[4] == pytest.approx(MAX_DROT)
    with pytest.raises(TeleopError, match="no SpaceMouse found.*hidraw"):
        make_device("spacemouse:1").connect()
    monkeypatch.setitem(sys.modules, "pyspacemouse", None)
    with pytest.raises(TeleopError, match=r"pyspacemouse and hidapi.*motoken\[teleop\]"):
        SpaceMouse().connect()


# -- the registry ----------------------------------------------------------------------------
def test_registry_names_the_devices_and_refuses_with_a_suggestion():
    assert {"gamepad", "spacemouse", "leader"} <= set(DEVICES)
    with pytest.raises(TeleopError, match=r"unknown teleop device 'spacemose'.*did you mean "
                                          r"'spacemouse'"):
        make_device("spacemose")
    with pytest.raises(TeleopError, match="joystick index"):
        make_device("gamepad:left")
    with pytest.raises(TeleopError, match="tcp://HOST:PORT"):
        make_device("leader:localhost")
    with pytest.raises(ValueError, match="button role 'jump'"):
        GamepadConfig(buttons=((0, "jump"),))


def test_real_pygame_without_a_pad_says_so(monkeypatch):
    """The real library (SDL, dummy video driver): this machine has no gamepad."""
    pygame = pytest.importorskip("pygame")
    monkeypatch.setitem(sys.modules, "pygame", pygame)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_JOYSTICK_DEVICE", "/nonexistent")  # no pad, whatever is plugged in
    device = Gamepad(GamepadConfig(index=7))  # no one has 8 pads
    with pytest.raises(TeleopError, match="no gamepad at index 7"):
        device.connect()
    device.close()
    pygame.quit()
