"""One policy over two robots (MuJoCo's mk6, PyBullet's Panda) and two tasks (pick_place with
5 objects, push with 3 of them: a plan over their union): it trains, saves, loads and acts on
both envs, exports to ONNX at parity, and refuses a robot it was not trained on in one line
(policies.model.robots, policies.training.mixed)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import envs
from agent.rollout import rollout_demos
from envs.features import ACTION_LAYOUT, EE_NAMES, StateLayout
from envs.types import Observation
from policies.inference.onnx_engine import OnnxEngine
from policies.inference.onnx_export import export_policy
from policies.inference.parity import parity_report
from policies.inference.torch_engine import TorchEngine
from policies.model.plan_targets import PLAN_NAMES
from policies.model.token_policy import CheckpointMismatchError, TokenPolicy
from policies.training.data import ChunkSampler, demo_robots
from policies.training.mixed import GOAL_WIDTH, as_policy_reads, check_targets_fit
from policies.training.train import TrainConfig, build_policy, train

PICK_PLACE_OBJECTS = ("red_cube", "green_cube", "blue_cube", "yellow_plate", "purple_plate")
CFG = TrainConfig(model="nano", steps=20, batch_size=4, lr=3e-3, warmup=5, shift_px=0,
                  checkpoint_every=10_000)


@pytest.fixture(scope="module")
def mixed_demos():
    return (rollout_demos("mujoco:pick_place", range(1))
            + rollout_demos("pybullet:pick_place", range(1))
            + rollout_demos("mujoco:push", range(1)))


@pytest.fixture(scope="module")
def mixed_run(mixed_demos, tmp_path_factory):
    """(policy as trained, its run dir) after a few steps on every episode."""
    torch.manual_seed(0)
    policy = build_policy(mixed_demos, CFG)
    out = tmp_path_factory.mktemp("mixed_run")
    train(policy, mixed_demos, out, CFG)
    return policy, out


def observation(demo, t: int = 3) -> Observation:
    return Observation({c: f[t] for c, f in demo.frames.items()}, demo.state[t], demo.task,
                       robot=demo.robot_type)


def test_the_demos_are_two_robots_and_two_object_sets(mixed_demos):
    assert [d.robot_type for d in mixed_demos] == ["mk6", "panda", "mk6"]
    assert [d.env_state.shape[1] for d in mixed_demos] == [49, 49, 35]
    assert [d.state.shape[1] for d in mixed_demos] == [14, 15, 14]
    assert {d.action_layout for d in mixed_demos} == {ACTION_LAYOUT}  # one action contract


def test_build_makes_one_multi_robot_policy_with_the_union_object_plan(mixed_run, mixed_demos):
    config = mixed_run[0].config
    assert config.trained_robots == ("mk6", "panda")
    assert config.robots == demo_robots(mixed_demos)
    assert set(config.robot_states) == {"mk6", "panda"}
    assert config.state_dim == 15 and config.state_names[-len(EE_NAMES):] == EE_NAMES
    # Tasks with other objects: the plan covers their union (push's are pick_place's too).
    assert config.plan_object_names == PICK_PLACE_OBJECTS
    assert config.plan_dim == 3 * 5 + len(PLAN_NAMES) and config.plan_objects
    assert mixed_run[0].model.cfg.aux_dim == 10 + 3 * 5  # goal offsets and yaws, then xyz


def test_state_ids_open_with_the_robot_and_mark_absent_joints(mixed_run, mixed_demos):
    policy = mixed_run[0]
    lay = policy.layout
    mk6, panda = (policy.observation_state_ids(observation(d))[0] for d in mixed_demos[:2])
    assert (mk6[0], panda[0]) == (lay.special_id("robot:mk6"), lay.special_id("robot:panda"))
    absent = lay.special_id("state_absent")
    assert [i for i, x in enumerate(mk6) if x == absent] == [7]  # slot joint_6, after the token
    assert absent not in panda
    assert mk6.shape == panda.shape == (policy.config.state_dim + 3,)
    r = lay.ranges["state"]
    assert all(r.start <= x < r.stop for x in mk6[1:7]) and all(
        r.start <= x < r.stop for x in mk6[8:16])


def test_training_reads_packed_states_and_union_env_states(mixed_run, mixed_demos):
    config = mixed_run[0].config
    read = as_policy_reads(mixed_demos, config.robots, config.plan_object_names)
    assert {d.state.shape[1] for d in read} == {15}
    assert {d.env_state.shape[1] for d in read} == {49}
    np.testing.assert_array_equal(read[0].env_state, mixed_demos[0].env_state)
    push, own = read[2].env_state.reshape(-1, 7, 7), mixed_demos[2].env_state.reshape(-1, 5, 7)
    np.testing.assert_array_equal(push[:, [0, 1, 2, 4, 5]], own)  # goal, red, blue, yellow
    assert np.isnan(push[:, [3, 6]]).all()  # push has no green cube, no purple plate
    batch = ChunkSampler(read, ("front", "wrist"), 8).sample(6)
    assert set(batch.robots) <= {"mk6", "panda"}
    assert batch.state.shape == (6, 15) and batch.env_state.shape == (6, 49)


def test_without_a_per_object_plan_mixed_objects_are_cut_to_the_goal(mixed_demos):
    policy = build_policy(mixed_demos, replace(CFG, plan_objects=False))  # --no-plan-objects
    assert policy.config.plan_object_names is None and policy.model.cfg.aux_dim == 10
    assert policy.config.plan_dim == len(PLAN_NAMES) and not policy.config.plan_objects
    read = as_policy_reads(mixed_demos, policy.config.robots)
    assert {d.env_state.shape[1] for d in read} == {GOAL_WIDTH}
    np.testing.assert_array_equal(read[2].env_state, mixed_demos[2].env_state[:, :GOAL_WIDTH])


def test_one_robot_one_task_episodes_are_read_as_they_are(mixed_demos):
    same = [mixed_demos[0]]
    assert demo_robots(same) is None
    assert as_policy_reads(same, None)[0] is same[0]


def test_saved_policy_loads_and_acts_on_both_robots(mixed_run, mixed_demos):
    policy, out = mixed_run
    loaded = TokenPolicy.load(out)
    assert loaded.config == policy.config
    for d in mixed_demos:
        obs = observation(d)
        chunk = loaded.infer(obs).actions
        assert chunk.shape == (policy.config.execute, 7) and np.isfinite(chunk).all()
        np.testing.assert_array_equal(loaded.infer_chunk(obs).actions,
                                      policy.infer_chunk(obs).actions)


@pytest.mark.parametrize("spec, robot", [("mujoco:pick_place", "mk6"),
                                         ("pybullet:pick_place", "panda")])
def test_the_policy_acts_on_each_env_from_the_robot_its_info_names(mixed_run, spec, robot):
    policy = TokenPolicy.load(mixed_run[1])
    env = envs.make(spec)
    try:
        obs, info = env.reset(seed=0)  # the demos' seed: an instruction it knows
        o = Observation.from_env(obs, info)
        assert o.robot == robot
        policy.check_layouts(env.unwrapped.state_layout, env.unwrapped.action_layout,
                             f"robot {robot!r}")
        action = policy.infer(o).actions[0]
        assert np.isfinite(action).all()
        env.step(action)
    finally:
        env.close()


def test_a_robot_it_was_not_trained_on_is_one_line(mixed_run, mixed_demos):
    policy = mixed_run[0]
    obs = observation(mixed_demos[0])
    for bad, match in ((replace(obs, robot="ur5e"), "robot 'ur5e' is not one this policy"),
                       (replace(obs, robot=None), "reads which one the state comes from"),
                       (replace(obs, robot="panda"), r"state has shape \(14,\), policy needs "
                                                     r"\(15,\)")):
        with pytest.raises(CheckpointMismatchError, match=match) as e:
            policy.infer(bad)
        assert "\n" not in str(e.value)
    other = StateLayout(tuple(f"ur_joint{i}" for i in range(6)) + EE_NAMES)
    with pytest.raises(CheckpointMismatchError, match="robot 'ur5e' has state") as e:
        policy.check_layouts(other, ACTION_LAYOUT, "robot 'ur5e'")
    assert "\n" not in str(e.value) and "robot 'panda'" in str(e.value)
    for d in mixed_demos[:2]:
        policy.check_layouts(d.state_layout, d.action_layout, "its own robot")  # no error


def test_a_plan_with_every_object_refuses_mixed_objects_with_a_reason(mixed_demos):
    one_task = [mixed_demos[0]]
    policy = build_policy(one_task, CFG)  # pick_place only: a plan of every object
    assert policy.config.plan_objects
    with pytest.raises(ValueError, match=r"writes 22 plan values starting with every object"):
        check_targets_fit(policy.config, policy.model.cfg.aux_dim,
                          as_policy_reads([mixed_demos[0], mixed_demos[2]], None))


def test_onnx_export_of_a_mixed_policy_is_at_parity(mixed_run, mixed_demos, tmp_path):
    policy = TokenPolicy.load(mixed_run[1])
    meta = export_policy(policy, tmp_path)
    observations = [observation(d, t) for d in mixed_demos for t in (0, 5)]
    report = parity_report(policy, TorchEngine(policy.model, "cpu"),
                           OnnxEngine(tmp_path, meta, "cpu"), observations)
    assert report["identical_token_share"] == 1.0
    assert report["identical_token_share_forced_prefix"] == 1.0
    assert report["max_abs_logit_diff"] < 1e-4 and report["parity"]


def test_the_backends_warm_up_observation_fits_a_mixed_policy(mixed_run):
    from policies.inference.backend import blank_observation

    obs = blank_observation(mixed_run[0])
    assert obs.robot == "mk6" and obs.state.shape == (14,)
    assert np.isfinite(mixed_run[0].infer_chunk(obs).actions).all()


def test_state_ids_refuse_rows_whose_gaps_are_not_their_robots(mixed_run):
    policy = mixed_run[0]
    packed = policy.config.robots.pack("mk6", np.zeros((1, 14), np.float32))
    with pytest.raises(ValueError, match="NaN exactly in the joint slots"):
        policy.state_ids(packed, ["panda"])  # the Panda has a 7th joint
    with pytest.raises(ValueError, match="one robot name per state row"):
        policy.state_ids(packed)
    with pytest.raises(ValueError, match="robot 'ur5e' is not one"):
        policy.state_ids(packed, ["ur5e"])
    with pytest.raises(ValueError, match="non-finite"):
        policy.config.robots.pack("mk6", np.full((1, 14), np.nan, np.float32))
