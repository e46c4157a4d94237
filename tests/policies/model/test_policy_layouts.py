"""A checkpoint names the state and action fields it was trained on (PolicyConfig.state_names,
action_names in config.json), older checkpoints get mk6's names only where that is what they
are, and a policy refuses another robot's state with one message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from checkpoints import PICK_PLACE
from envs.features import ACTION_LAYOUT, ACTION_NAMES, EE_NAMES, StateLayout
from envs.types import Observation
from policies.model.token_policy import CheckpointMismatchError, TokenPolicy
from sims.mujoco_sim import ARM_JOINTS as MK6_JOINTS
from sims.pybullet_sim import ARM_JOINTS as PANDA_JOINTS

CHECKPOINTS = Path(__file__).resolve().parents[3] / "checkpoints"
MK6 = StateLayout((*MK6_JOINTS, *EE_NAMES))
PANDA = StateLayout((*PANDA_JOINTS, *EE_NAMES))


def _copy_with(src: Path, dst: Path, **policy) -> Path:
    """A copy of checkpoint `src` whose config.json "policy" is updated by `policy`; a value
    of None drops that key."""
    shutil.copytree(src, dst)
    meta = json.loads((dst / "config.json").read_text())
    meta["policy"].update(policy)
    meta["policy"] = {k: v for k, v in meta["policy"].items() if v is not None}
    (dst / "config.json").write_text(json.dumps(meta, indent=2))
    return dst


def test_a_trained_checkpoint_carries_its_episodes_names(trained, demos):
    policy, _, out = trained
    assert policy.config.state_layout == demos[0].state_layout == MK6
    saved = json.loads((out / "config.json").read_text())["policy"]
    assert saved["state_names"] == MK6.to_names()
    assert saved["action_names"] == list(ACTION_NAMES)
    assert TokenPolicy.load(out).config == policy.config


@pytest.mark.parametrize("name", ["pick_place", "video"])
def test_shipped_checkpoints_name_the_mk6_arm(name):
    config = TokenPolicy.load(CHECKPOINTS / name).config
    assert config.state_layout == MK6 and config.action_layout == ACTION_LAYOUT


def test_the_shipped_default_names_both_of_its_arms():
    config = TokenPolicy.load(CHECKPOINTS / "default").config
    assert config.trained_robots == ("mk6", "panda")
    assert StateLayout(config.robot_states["mk6"]) == MK6
    assert StateLayout(config.robot_states["panda"]) == PANDA
    assert config.action_layout == ACTION_LAYOUT


def test_an_old_checkpoint_acts_as_before_under_mk6s_names(demos, tmp_path):
    """The shipped pick-and-place checkpoint as it was before its names were added: it loads
    (with a warning saying what was assumed) to the same config, and acts exactly as the
    named one."""
    old = _copy_with(PICK_PLACE, tmp_path / "old", state_names=None, action_names=None)
    with pytest.warns(UserWarning, match=r"assuming the mk6 arm's \['joint1'"):
        legacy = TokenPolicy.load(old)
    named = TokenPolicy.load(PICK_PLACE)
    assert legacy.config == named.config
    d = demos[0]
    for t in (0, len(d.action) // 2):
        obs = Observation({c: d.frames[c][t] for c in named.config.cameras}, d.state[t], d.task)
        np.testing.assert_array_equal(legacy.infer(obs).actions, named.infer(obs).actions)


def test_an_old_checkpoint_of_another_width_is_refused(trained, tmp_path):
    _, _, out = trained
    old = _copy_with(out, tmp_path / "old", state_names=None, action_names=None, state_dim=15)
    with pytest.raises(CheckpointMismatchError, match=r"names no state or action fields .* "
                                                      r"state_dim 15.*Add \"state_names\""):
        TokenPolicy.load(old)


@pytest.mark.parametrize(("change", "why"), [
    ({"state_names": [f"state_{i}" for i in range(14)]}, "do not form a state layout"),
    ({"state_names": PANDA.to_names()}, r"name 15/7 dims, but state_dim/action_dim are 14/7"),
    ({"action_names": ["vx", "vy", "vz", "wx", "wy", "wz", "grip"]},
     "do not form an action layout"),
    ({"action_names": None}, "has state_names but not the other"),
])
def test_names_that_do_not_fit_are_refused(trained, tmp_path, change, why):
    _, _, out = trained
    with pytest.raises(CheckpointMismatchError, match=why):
        TokenPolicy.load(_copy_with(out, tmp_path / "bad", **change))


def test_another_robots_state_is_one_message_naming_both(trained):
    policy, _, _ = trained
    policy.check_layouts(MK6, ACTION_LAYOUT, "robot 'mk6'")  # its own: no error
    with pytest.raises(CheckpointMismatchError) as e:
        policy.check_layouts(PANDA, ACTION_LAYOUT, "robot 'panda'")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("robot 'panda' has state [panda_joint1, panda_joint2, ")
    assert "this policy was trained on state [joint1, joint2, joint3, joint4, joint5, " \
           "joint6] + EE pose and gripper opening (14 values)" in msg
    assert "agent train --init RUN" in msg


def test_a_wrong_width_state_names_what_the_policy_reads(trained, demos):
    policy, _, _ = trained
    d = demos[0]
    obs = Observation({c: d.frames[c][0] for c in policy.config.cameras},
                      np.zeros(15, np.float32), d.task)
    with pytest.raises(CheckpointMismatchError, match=r"state has shape \(15,\), policy needs "
                                                      r"\(14,\): it was trained on state "
                                                      r"\[joint1"):
        policy.infer(obs)
