"""Described arms other than mk6 behind the bridge: spec grammar, handshake, IK, the expert."""

import json
import subprocess
import sys

import pytest

import envs
from envs.types import Observation
from hw_bridge.drivers import make_driver, parse_sim
from hw_bridge.drivers.sim import SimDriver
from hw_bridge.errors import BridgeError, UnknownRobotError
from hw_bridge.kinematics import make_kinematics
from policies.scripted import ScriptedExpert
from sims.robots import load_robot
from tests.hw_bridge.conftest import Running, start_server_process
from tests.hw_bridge.test_bridge_process import ENV, ROOT


@pytest.mark.parametrize(("arg", "want"), [
    ("pick_place", ("mk6", "pick_place")),  # sim:TASK keeps meaning mk6 with that task
    ("", ("mk6", "pick_place")),
    ("panda", ("panda", "pick_place")),
    ("iiwa14/push", ("iiwa14", "push")),
    ("panda/", ("panda", "pick_place")),
])
def test_sim_specs(arg, want):
    assert parse_sim(arg) == want


@pytest.mark.parametrize(("spec", "said"), [
    ("sim:pandaa", r"robots: \['iiwa14', 'mk6', 'panda'\], tasks: .*did you mean 'panda'"),
    ("sim:pick_plase", r"did you mean 'pick_place'"),
    ("sim:pand/push", r"unknown robot 'pand'.*did you mean 'panda'"),
    ("sim:panda/pushh", r"unknown task 'pushh'.*did you mean 'push'"),
    # fr3.xml models kinematics only (the franka driver's FK): described, not simulated
    ("sim:fr3", r"'fr3' is described for real hardware only.*simulated robots: \['iiwa14', "
                r"'mk6', 'panda'\]"),
])
def test_unknown_sim_names_list_robots_and_tasks(spec, said):
    with pytest.raises(UnknownRobotError, match=said):
        make_driver(spec)


def test_the_driver_takes_limits_cameras_and_kinematics_from_the_description():
    d = make_driver("sim:panda")
    desc = load_robot("panda")
    assert isinstance(d, SimDriver) and d.kinematics == "panda"
    assert d.limits.max_accel == desc.safety.max_accel == 7.5
    assert d.cameras == {c.name: (c.height, c.width) for c in desc.cameras}


def test_unknown_kinematics_names_the_known_robots():
    with pytest.raises(BridgeError, match=r"robot 'ur5': unknown robot 'ur5'; known: "):
        make_kinematics("ur5")


def test_a_panda_behind_the_bridge_is_driven_by_the_scripted_expert():
    r = Running(SimDriver("pick_place", image_size=(32, 32), robot="panda"), stream_hz=30.0)
    env = envs.make(f"bridge:{r.endpoint}")
    try:
        assert env.robot.name == "panda" and env.robot.n_joints == 7
        obs, info = env.reset(seed=0)
        assert obs["state"].shape == (15,) and env.observation_space.contains(obs)
        assert set(obs["images"]) == {"front", "wrist"}
        expert = ScriptedExpert()
        start = info["privileged"]["ee_pos"].copy()
        for _ in range(12):  # reach: the tool heads down towards the named cube
            action = expert.infer(Observation.from_env(obs, info)).actions[0]
            obs, _, _, truncated, info = env.step(action)
            assert not truncated, info.get("failure")
        assert info["privileged"]["ee_pos"][2] < start[2] - 0.05
        assert len(info["applied_command"]["q"]) == 7
    finally:
        env.close()
        r.close()


@pytest.mark.slow
@pytest.mark.parametrize("robot", ["panda", "iiwa14"])
def test_agent_run_scripted_pick_place_on_each_arm(robot):
    proc, endpoint = start_server_process("--robot", f"sim:{robot}")
    try:
        out = subprocess.run([sys.executable, "-m", "agent", "run", "--env", f"bridge:{endpoint}",
                              "--policy", "scripted", "--episodes", "4", "--json"],
                             cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["success_rate"] >= 0.75, summary  # 4 episodes; the 50-episode runs: README


def test_a_server_gone_mid_episode_truncates_with_a_failure_not_a_traceback():
    r = Running(SimDriver("pick_place", image_size=(32, 32), robot="iiwa14"))
    env = envs.make(f"bridge:{r.endpoint}", timeout_s=0.3)
    try:
        env.reset(seed=0)
        r.close()  # the robot PC stops answering: no ack, no frames
        _, _, _, truncated, info = env.step(env.action_space.sample() * 0)
        assert truncated and info["failure"].startswith("bridge: ")
    finally:
        env.close()
