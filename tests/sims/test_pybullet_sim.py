"""The PyBullet backend: Gymnasium contract, determinism, conventions shared with MuJoCo, and
the scripted expert succeeding on it. Real PyBullet throughout (DIRECT client, tiny renderer)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.types import Observation
from policies.scripted import ScriptedExpert, _gripper_yaw
from sims.base import CUBE_HALF, Placement, quat_from_yaw, quat_mul
from sims.base import GRIPPER_DOWN as DOWN
from sims.pybullet_sim import PybulletSim
from sims.tasks import PickPlace


@pytest.fixture
def env() -> gym.Env:
    e = envs.make("pybullet:pick_place")
    yield e
    e.close()


@pytest.fixture
def sim() -> PybulletSim:
    s = PybulletSim(list(PickPlace.objects))
    s.reset([Placement("red_cube", (0.45, 0.1, CUBE_HALF), 0.3)])
    yield s
    s.close()


def _rollout(env: gym.Env, seed: int, steps: int) -> list[dict]:
    policy = ScriptedExpert()
    obs, info = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        obs, _, _, _, info = env.step(policy.infer(Observation.from_env(obs, info)).actions[0])
        out.append(obs)
    return out


def _same(a: list[dict], b: list[dict]) -> bool:
    return all(np.array_equal(x["state"], y["state"])
               and all(np.array_equal(x["images"][k], y["images"][k]) for k in x["images"])
               for x, y in zip(a, b, strict=True))


def test_check_env(env: gym.Env) -> None:
    check_env(env.unwrapped)


def test_same_seed_replays_identically(env: gym.Env) -> None:
    first = _rollout(env, seed=5, steps=15)
    _rollout(env, seed=6, steps=15)  # a different episode in between leaves no trace
    assert _same(first, _rollout(env, seed=5, steps=15))
    other = envs.make("pybullet:pick_place")  # nor does another client in the same process
    try:
        assert _same(first, _rollout(other, seed=5, steps=15))
    finally:
        other.close()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scripted_expert_succeeds(env: gym.Env, seed: int) -> None:
    policy = ScriptedExpert()
    obs, info = env.reset(seed=seed)
    for _ in range(PickPlace.max_steps):
        obs, _, term, trunc, info = env.step(
            policy.infer(Observation.from_env(obs, info)).actions[0])
        if term or trunc:
            break
    assert term and info["is_success"], info.get("failure")


def test_random_actions_stay_in_observation_space(env: gym.Env) -> None:
    env.reset(seed=2)
    env.action_space.seed(2)
    for _ in range(120):  # flails the arm into its joint limits and the fingers shut on nothing
        obs, _, term, trunc, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs), obs["state"]
        assert "failure" not in info, info["failure"]
        if term or trunc:
            break


def test_nan_action_raises(env: gym.Env) -> None:
    env.reset(seed=0)
    action = np.zeros(7, dtype=np.float32)
    action[2] = np.nan
    with pytest.raises(envs.InvalidActionError):
        env.step(action)


def test_images_have_shape_dtype_and_content(env: gym.Env) -> None:
    obs, _ = env.reset(seed=0)
    assert set(obs["images"]) == {"front", "wrist"}
    for name, image in obs["images"].items():
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8, name
        assert image.std() > 10, f"{name} image is (nearly) blank"
    red = np.array([0.85, 0.12, 0.12]) * 255  # the red cube is on the table, in front view
    assert (np.abs(obs["images"]["front"] - red).max(axis=-1) < 60).any()


def test_image_size_is_height_by_width() -> None:
    s = PybulletSim(list(PickPlace.objects), image_size=(48, 64))
    try:
        assert s.render("front").shape == (48, 64, 3)
        with pytest.raises(KeyError, match="front"):
            s.render("top")
    finally:
        s.close()


def test_home_pose_follows_the_shared_conventions(sim: PybulletSim) -> None:
    assert sim.robot.n_joints == 7 and sim.robot.state_dim == 15
    pos, quat = sim.ee_pose()
    np.testing.assert_allclose(pos, [0.42, 0.0, 0.33], atol=0.01)
    # Gripper straight down, (w, x, y, z) = (0, 0, 1, 0) with MuJoCo's sign, not (0, 0, -1, 0).
    assert np.dot(quat, DOWN) > 0.999
    assert sim.gripper_opening() == pytest.approx(0.08, abs=1e-3)
    p, q = sim.object_pose("red_cube")
    np.testing.assert_allclose(p, [0.45, 0.1, CUBE_HALF], atol=2e-3)
    assert abs(np.dot(q, quat_from_yaw(0.3))) > 0.999


@pytest.mark.parametrize(("target", "yaw"), [((0.33, -0.22, 0.03), -np.pi / 4),
                                             ((0.60, 0.22, 0.03), np.pi / 4),
                                             ((0.45, 0.0, 0.15), 0.0)])
def test_step_reaches_ee_targets(sim: PybulletSim, target: tuple, yaw: float) -> None:
    want = quat_mul(quat_from_yaw(yaw), DOWN)
    for _ in range(30):
        sim.step(np.array(target), want, 0.0)
    pos, quat = sim.ee_pose()
    np.testing.assert_allclose(pos, target, atol=3e-3)
    assert np.dot(quat, want) > 0.9995
    assert _gripper_yaw(quat) == pytest.approx(yaw, abs=0.02)
    assert sim.divergence() is None


def test_gripper_closes_and_opens_on_command(sim: PybulletSim) -> None:
    for _ in range(5):  # 0.25 s; the fingers move at 0.2 m/s each
        sim.step(*sim.ee_pose(), 1.0)
    assert sim.gripper_opening() < 0.002
    for _ in range(5):
        sim.step(*sim.ee_pose(), 0.0)
    assert sim.gripper_opening() == pytest.approx(0.08, abs=3e-3)


def test_joint_targets_and_physics_steps(sim: PybulletSim) -> None:
    q = np.array(sim.robot.home_qpos) + 0.1
    sim.set_joint_targets(q, 0.0)
    sim.physics_step(240)  # 1 s
    np.testing.assert_allclose(sim.joint_positions(), q, atol=0.01)


def test_divergence_reports_absurd_speeds(sim: PybulletSim) -> None:
    assert sim.divergence() is None
    sim._call("resetBaseVelocity", sim._bodies["red_cube"], [500.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert "red_cube" in sim.divergence()


def test_close_twice_is_harmless() -> None:
    s = PybulletSim(list(PickPlace.objects))
    s.close()
    s.close()
