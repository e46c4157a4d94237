"""A multi-robot policy's shared state layout (policies.model.robots), its config in
config.json, and the shipped one-robot checkpoint left exactly as it was."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from action_codec.binning import BinningCodec, BinningConfig
from checkpoints import DEFAULT, PICK_PLACE
from envs.features import EE_NAMES, StateLayout
from envs.types import Observation
from policies.model.checkpoint import PolicyConfig, upgrade_policy_fields
from policies.model.robots import RobotStates, shared_layout
from policies.model.token_policy import TokenPolicy
from sims.mujoco_sim import ARM_JOINTS as MK6_JOINTS
from sims.pybullet_sim import ARM_JOINTS as PANDA_JOINTS

MK6 = StateLayout((*MK6_JOINTS, *EE_NAMES))
PANDA = StateLayout((*PANDA_JOINTS, *EE_NAMES))
ROBOTS = RobotStates((("panda", PANDA), ("mk6", MK6)))


def test_shared_layout_pads_joints_to_the_largest_arm_and_keeps_ee_last():
    shared = ROBOTS.shared
    assert shared == shared_layout([MK6, PANDA])
    assert shared.names == tuple(f"joint_{i}" for i in range(7)) + EE_NAMES
    assert ROBOTS.robots == ("mk6", "panda")  # sorted, whatever order they came in
    assert ROBOTS.specials == ("state_absent", "robot:mk6", "robot:panda")


def test_pack_puts_joints_in_slots_ee_in_place_and_nan_where_absent():
    mk6 = np.arange(14, dtype=np.float32)[None]
    packed = ROBOTS.pack("mk6", mk6)
    assert packed.shape == (1, 15)
    np.testing.assert_array_equal(packed[0, :6], mk6[0, :6])
    assert np.isnan(packed[0, 6])
    np.testing.assert_array_equal(packed[0, 7:], mk6[0, 6:])  # EE at the same positions
    panda = np.arange(15, dtype=np.float32)[None]
    np.testing.assert_array_equal(ROBOTS.pack("panda", panda), panda)


@pytest.mark.parametrize("robot, states, match", [
    (None, np.zeros((1, 14)), r"reads which one the state comes from"),
    ("ur5e", np.zeros((1, 14)), r"robot 'ur5e' is not one this policy was trained on"),
    ("mk6", np.zeros((1, 15)), r"robot 'mk6' states have shape \(1, 15\)"),
])
def test_pack_refuses_what_it_cannot_place(robot, states, match):
    with pytest.raises(ValueError, match=match):
        ROBOTS.pack(robot, states)


def test_one_robot_is_no_multi_robot_state():
    with pytest.raises(ValueError, match="two or more named robots"):
        RobotStates((("mk6", MK6),))


def _config(**kw) -> PolicyConfig:
    base = dict(state_dim=15, state_names=ROBOTS.shared.names,
                action_names=("dx", "dy", "dz", "drx", "dry", "drz", "gripper"),
                trained_robots=("mk6", "panda"), robot_states=ROBOTS.to_names())
    return PolicyConfig(**{**base, **kw})


def test_multi_robot_config_round_trips_through_json():
    config = _config()
    saved = json.loads(json.dumps(config.to_dict()))
    assert saved["robot_states"]["panda"] == list(PANDA.names)
    assert PolicyConfig(**saved) == config
    assert config.robots == ROBOTS


@pytest.mark.parametrize("change, match", [
    (dict(trained_robots=("mk6",)), r"trained_robots is \('mk6',\): they must agree"),
    (dict(trained_robots=None), "trained_robots is None"),
    (dict(state_dim=14, state_names=MK6.names), "must be its robots' shared layout"),
    (dict(robot_states={"mk6": MK6.names}), "two or more named robots"),
])
def test_multi_robot_config_refuses_parts_that_disagree(change, match):
    with pytest.raises(ValueError, match=match):
        _config(**change)


def test_one_robot_config_json_has_no_robot_states_key():
    config = TokenPolicy.load(PICK_PLACE).config
    assert config.robot_states is None and config.robots is None
    assert "robot_states" not in config.to_dict()
    saved = json.loads((PICK_PLACE / "config.json").read_text())["policy"]
    # A config.json written before action_block/plan_block existed lacks them (1 and false);
    # one written before "xyz" says plan_block false, read as "token".
    assert config.to_dict() == upgrade_policy_fields({"action_block": 1, "plan_block": False,
                                                      **saved})


def test_fit_columns_gives_each_dimension_the_bins_fit_gives_it():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) * [1.0, 5.0, 0.01]
    for strategy in ("uniform", "quantile"):
        cfg = BinningConfig(strategy=strategy, n_bins=16)
        whole, cols = BinningCodec(cfg).fit(x), BinningCodec(cfg).fit_columns(list(x.T))
        np.testing.assert_array_equal(whole.centres, cols.centres)
        np.testing.assert_array_equal(whole.encode(x), cols.encode(x))
    short = BinningCodec(BinningConfig(n_bins=16)).fit_columns([x[:, 0], x[:50, 1]])
    assert short.dims == 2


# The state ids and chunk of one fixed observation, first recorded on ab4cc62 (before
# multi-robot states): a one-robot policy's path must not move. The state ids are unchanged
# since; the actions were re-recorded when the default became the --action-block 7 checkpoint
# (its weights differ, the code path does not). That checkpoint is checkpoints/pick_place now.
DEFAULT_STATE_IDS = [1064, 697, 549, 549, 680, 804, 708, 660, 688, 737, 668, 804, 549, 677,
                     695, 1065, 1070]
DEFAULT_FIRST_ACTIONS = [
    [-0.04697913, 0.02287303, -0.04347094, -0.02077726, -0.01327123, 0.3, 1.0],
    [-0.03602299, 0.01738835, -0.04218415, -0.03956643, -0.00652251, 0.01128888, 1.0]]


def test_the_shipped_one_robot_policy_acts_exactly_as_before():
    policy = TokenPolicy.load(PICK_PLACE)
    rng = np.random.default_rng(0)
    size = policy.model.cfg.image_size
    images = {c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
              for c in policy.config.cameras}
    state = np.array([0.1, -0.4, 0.9, 0.0, 1.2, 0.3, 0.45, 0.02, 0.2, 0., 1., 0., 0., 0.06],
                     np.float32)
    obs = Observation(images, state, "put the red cube on the yellow plate")
    assert policy.state_ids(state[None]).tolist() == [DEFAULT_STATE_IDS]
    # A robot name changes nothing for a one-robot policy (it reads its one layout).
    assert policy.observation_state_ids(replace(obs, robot="mk6")).tolist() == [
        DEFAULT_STATE_IDS]
    np.testing.assert_allclose(policy.infer_chunk(obs).actions[:2], DEFAULT_FIRST_ACTIONS,
                               atol=1e-6)


# The shipped default (two robots) on one fixed observation per arm, recorded when it was
# installed (stop 43): state ids (robot token first, absent joint slot for the mk6) and the
# first two actions of its chunk.
DEFAULT_BY_ROBOT = {
    "mk6": ([0.1, -0.4, 0.9, 0.0, 1.2, 0.3, 0.45, 0.02, 0.2, 0., 1., 0., 0., 0.06],
            [1167, 791, 642, 758, 882, 890, 727, 1166, 763, 778, 788, 753, 897, 642, 770, 840,
             1159, 1164],
            [[0.0, -0.02291362, -0.05, 0.00444436, -0.04256173, -0.06447672, 0.0],
             [-0.00595562, -0.00824407, -0.04582803, 0.04712558, 0.06658734, -0.06118618,
              0.0]]),
    "panda": ([0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8, 0.45, 0.02, 0.2, 0., 1., 0., 0., 0.06],
              [1168, 767, 642, 668, 693, 680, 835, 773, 763, 778, 788, 753, 897, 642, 770, 840,
               1159, 1164],
              [[7.7011986e-03, 0.05, 1.3525647e-02, 0.0, -2.1885915e-02, -4.4641639e-03, 0.0],
               [2.1770999e-03, 0.05, 8.1265029e-03, -1.0615717e-02, -2.0711144e-02,
                1.1496323e-02, 0.0]]),
}


@pytest.mark.parametrize("robot", sorted(DEFAULT_BY_ROBOT))
def test_the_shipped_default_acts_exactly_as_before_on_each_arm(robot):
    policy = TokenPolicy.load(DEFAULT)
    rng = np.random.default_rng(0)
    size = policy.model.cfg.image_size
    images = {c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
              for c in policy.config.cameras}
    state, ids, actions = DEFAULT_BY_ROBOT[robot]
    obs = Observation(images, np.array(state, np.float32),
                      "put the red cube on the yellow plate", robot=robot)
    assert policy.observation_state_ids(obs).tolist() == [ids]
    np.testing.assert_allclose(policy.infer_chunk(obs).actions[:2], actions, atol=1e-6)
