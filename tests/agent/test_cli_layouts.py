"""Named layouts through the CLI: datasets carry the robot's names, and a policy trained on one
arm's state is refused on another's, in one line, by `agent run` and `agent train --init`."""

from __future__ import annotations

import json
import shutil

import pytest

from agent.cli import main
from checkpoints import PICK_PLACE
from envs.features import EE_NAMES
from policies.training.data import load_demos
from sims.pybullet_sim import ARM_JOINTS as PANDA_JOINTS


@pytest.fixture(scope="module")
def panda_dataset(tmp_path_factory):
    """One scripted pick-and-place episode on pybullet's Panda (7 joints: a 15-value state)."""
    out = tmp_path_factory.mktemp("panda") / "pick_place"
    assert main(["collect", "--env", "pybullet:pick_place", "--policy", "scripted",
                 "--episodes", "1", "--out", str(out)]) == 0
    return out


def _refusal(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2  # printed as one `error: ` line, exit 2
    msg = str(e.value).removeprefix("error: ")  # a BadInput's message has no prefix
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_run_refuses_a_policy_trained_on_another_robot_in_one_line():
    msg = _refusal(["run", "--env", "pybullet:pick_place", "--policy", "checkpoints/pick_place",
                    "--episodes", "1", "--backend", "torch"])
    assert msg.startswith("checkpoints/pick_place was trained for robot mk6 (state [joint1, ")
    assert "not robot 'panda' (state [panda_joint1, panda_joint2, " in msg
    assert "agent collect --env pybullet:pick_place --policy scripted --out DIR" in msg
    assert "agent train --data DIR --out RUN" in msg and "agent train --init" in msg


def test_run_refuses_an_mk6_policy_on_a_panda_behind_the_bridge():
    from hw_bridge.drivers.sim import SimDriver
    from tests.hw_bridge.conftest import Running

    r = Running(SimDriver("pick_place", image_size=(32, 32), robot="panda"))
    try:
        msg = _refusal(["run", "--env", f"bridge:{r.endpoint}", "--policy",
                        "checkpoints/pick_place", "--episodes", "1", "--backend", "torch"])
    finally:
        r.close()
    assert msg.startswith("checkpoints/pick_place was trained for robot mk6 ")
    assert "not robot 'panda'" in msg and "it cannot drive this arm" in msg


def test_a_dataset_names_its_robots_state(panda_dataset):
    info = json.loads((panda_dataset / "meta" / "info.json").read_text())
    assert info["robot_type"] == "panda"
    assert info["features"]["observation.state"]["names"] == [*PANDA_JOINTS, *EE_NAMES]
    assert load_demos([panda_dataset])[0].state_layout.joint_names == PANDA_JOINTS


def test_train_init_refuses_a_dataset_of_another_robot(panda_dataset, tmp_path):
    with pytest.raises(SystemExit, match=r"^(error: )?the dataset has state \[panda_joint1, .*"
                                         r"this policy was trained on state \[joint1, "):
        main(["train", "--data", str(panda_dataset), "--out", str(tmp_path / "run"),
              "--init", str(PICK_PLACE), "--steps", "1"])
    assert not (tmp_path / "run").exists()


def test_datasets_of_two_named_robots_train_one_policy(panda_dataset, small_dataset, tmp_path):
    demos = load_demos([small_dataset, panda_dataset])
    assert {d.robot_type for d in demos} == {"mk6", "panda"}
    run = tmp_path / "run"
    assert main(["train", "--data", str(small_dataset), "--data", str(panda_dataset),
                 "--out", str(run), "--config", "nano", "--batch-size", "2", "--steps", "2"]) == 0
    policy = json.loads((run / "config.json").read_text())["policy"]
    assert policy["trained_robots"] == ["mk6", "panda"]
    assert policy["robot_states"]["panda"] == [*PANDA_JOINTS, *EE_NAMES]
    # agent run drives the Panda with it (the env names its robot in info["robot"]); the
    # mk6 side is tests/policies/training/test_mixed.py's (a whole untrained episode is slow).
    assert main(["run", "--env", "pybullet:pick_place", "--policy", str(run), "--episodes", "1",
                 "--backend", "torch"]) == 0


def test_datasets_of_two_robots_mix_only_where_each_names_it(panda_dataset, small_dataset,
                                                              tmp_path):
    nameless = tmp_path / "nameless"
    shutil.copytree(panda_dataset, nameless)
    info_path = nameless / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["robot_type"] = None
    info_path.write_text(json.dumps(info, indent=4))
    with pytest.raises(ValueError, match=r"has state \[panda_joint1, .* but .* has state "
                                         r"\[joint1, .*each names its robot \(info.json "
                                         r"robot_type\), and .*nameless names none") as e:
        load_demos([small_dataset, nameless])
    assert "\n" not in str(e.value)


def test_a_dataset_without_a_robots_names_is_refused(small_dataset, tmp_path):
    """As `agent collect` over the bridge wrote them before datasets named the joints."""
    old = tmp_path / "old"
    shutil.copytree(small_dataset, old)
    info_path = old / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["features"]["observation.state"]["names"] = [f"state_{i}" for i in range(14)]
    info_path.write_text(json.dumps(info, indent=4))
    with pytest.raises(ValueError, match=r"do not form a state layout.*Re-record it, or write "
                                         r"the arm's joint names"):
        load_demos([old])
