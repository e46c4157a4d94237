import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.registry import SIM_BACKENDS, TASK_IDS

MUJOCO_SPECS = [f"mujoco:{t}" for t in SIM_BACKENDS["mujoco"]]


def _rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    states = [obs["state"]]
    for a in actions:
        obs, *_ = env.step(a)
        states.append(obs["state"])
    return np.array(states)


@pytest.mark.parametrize("spec", [f"{b}:{t}" for b, ts in SIM_BACKENDS.items() for t in ts])
def test_check_env_on_every_registered_env(spec):
    env = envs.make(spec)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_gym_ids_are_registered_with_backend_keyword():
    for gym_id in TASK_IDS.values():
        assert gym_id in gym.registry
    env = gym.make("motoken/Reach-v0", backend="mujoco")
    assert env.unwrapped.backend == "mujoco"
    env.close()


@pytest.mark.parametrize("spec", MUJOCO_SPECS)
def test_same_seed_same_first_observation_and_rollout(spec):
    env = envs.make(spec)
    rng = np.random.default_rng(0)
    actions = [env.action_space.sample() for _ in range(10)]
    del rng
    first_a = env.reset(seed=7)[0]
    a = _rollout(env, 7, actions)
    first_b = env.reset(seed=7)[0]
    b = _rollout(env, 7, actions)
    np.testing.assert_array_equal(first_a["images"]["front"], first_b["images"]["front"])
    assert first_a["instruction"] == first_b["instruction"]
    np.testing.assert_array_equal(a, b)
    env.close()


def test_different_seeds_give_different_layouts():
    env = envs.make("mujoco:pick_place")
    images = [env.reset(seed=s)[0]["images"]["front"] for s in range(3)]
    assert not np.array_equal(images[0], images[1])
    assert not np.array_equal(images[1], images[2])
    env.close()


def test_observation_contract():
    env = envs.make("mujoco:pick_place")
    obs, info = env.reset(seed=0)
    assert set(obs["images"]) == {"front", "wrist"}
    for img in obs["images"].values():
        assert img.shape == (128, 128, 3) and img.dtype == np.uint8 and img.std() > 5
    assert obs["state"].dtype == np.float32 and obs["state"].shape == (14,)
    assert obs["instruction"].startswith("put the ") and " cube on the " in obs["instruction"]
    assert info["privileged"]["goal"]["object"].endswith("_cube")
    env.close()


def test_unknown_spec_lists_known_and_suggests_closest():
    with pytest.raises(envs.UnknownEnvError) as e:
        envs.make("mujoco:pick_plce")
    msg = str(e.value)
    assert "did you mean 'mujoco:pick_place'" in msg and "pybullet:pick_place" in msg
    with pytest.raises(envs.UnknownEnvError):
        envs.make("pick_place")  # no backend
    with pytest.raises(envs.UnknownEnvError, match="known"):
        envs.make("pybullet:push")  # backend does not have that task


@pytest.mark.parametrize("bad, match", [
    (np.full(7, np.nan, np.float32), "non-finite"),
    (np.array([0, 0, np.inf, 0, 0, 0, 0], np.float32), r"indices \[2\]"),
    (np.zeros(6, np.float32), r"shape \(7,\)"),
    (np.zeros((1, 7), np.float32), r"shape \(7,\)"),
    (np.array(["a"] * 7), "real numbers"),
])
def test_bad_actions_raise_clear_errors(bad, match):
    env = envs.make("mujoco:reach")
    env.reset(seed=0)
    before = env.unwrapped.sim.joint_positions()
    with pytest.raises(envs.InvalidActionError, match=match):
        env.step(bad)
    np.testing.assert_array_equal(before, env.unwrapped.sim.joint_positions())  # nothing moved
    env.close()


def test_out_of_range_action_is_clipped_and_reported():
    env = envs.make("mujoco:reach")
    env.reset(seed=0)
    *_, info = env.step(np.array([1.0, -1.0, 0, 5.0, 0, 0, 3.0], np.float32))
    np.testing.assert_allclose(info["applied_action"], [0.05, -0.05, 0, 0.3, 0, 0, 1.0])
    env.close()


def test_physics_divergence_ends_episode_with_reason():
    env = envs.make("mujoco:pick_place")
    env.reset(seed=0)
    env.unwrapped.sim.data.qvel[:] = 1e9  # what a blown-up contact solve looks like
    _, _, terminated, truncated, info = env.step(np.zeros(7, np.float32))
    assert truncated and not terminated
    assert "physics diverged" in info["failure"]
    env.close()


@pytest.mark.parametrize("backend", SIM_BACKENDS)
def test_pick_place_starts_the_arm_where_the_episode_says(backend):
    """The start pose is drawn per seed (breaks the fixed-home shortcut, see sims.tasks) and the
    arm really is there, gripper down at the drawn yaw, when the first observation is taken."""
    from sims.base import GRIPPER_DOWN, quat_from_yaw, quat_mul
    from sims.tasks import START_Z, TABLE_X, TABLE_Y

    env = envs.make(f"{backend}:pick_place")
    starts = []
    for seed in (3, 4):
        obs, info = env.reset(seed=seed)
        start = env.unwrapped.task.sample(np.random.default_rng(seed)).start
        assert TABLE_X[0] <= start.pos[0] <= TABLE_X[1]
        assert TABLE_Y[0] <= start.pos[1] <= TABLE_Y[1] and START_Z[0] <= start.pos[2] <= START_Z[1]
        ee = info["privileged"]["ee_pos"]
        assert np.linalg.norm(ee - np.array(start.pos)) < 0.01, (ee, start)
        want = quat_mul(quat_from_yaw(start.yaw), GRIPPER_DOWN)
        got = info["privileged"]["ee_quat"]
        assert abs(abs(float(np.dot(want, got))) - 1.0) < 1e-3, (want, got)
        assert info["privileged"]["gripper"] > 0.07  # open
        starts.append(ee)
    env.close()
    assert np.linalg.norm(starts[0] - starts[1]) > 0.02
