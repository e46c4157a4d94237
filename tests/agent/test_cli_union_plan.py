"""`agent train` on datasets of two tasks with other objects (pick_place, reach): the plan
covers the union of their objects, says so in one line, is recorded in config.json, and the
policy resumes, is fine-tuned, and runs `agent eval` on each task (policies.training.mixed)."""

from __future__ import annotations

import json

import pytest
from conftest import collect

from agent.cli import main

OBJECTS = ["red_cube", "green_cube", "blue_cube", "yellow_plate", "purple_plate",
           "red_ball", "green_ball", "blue_ball"]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("union")
    for env in ("mujoco:pick_place", "mujoco:reach"):
        assert collect(root / env.split(":")[1], episodes=1, env=env) == 0
    return [root / "pick_place", root / "reach"]


def _train(datasets, out, *extra) -> int:
    data = [a for d in datasets for a in ("--data", str(d))]
    return main(["train", *data, "--out", str(out), "--config", "nano", "--batch-size", "2",
                 "--text-len", "32", *extra])


def test_train_on_two_object_sets_plans_over_their_union(datasets, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(datasets, run, "--steps", "2") == 0
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if "over the union of the tasks' objects" in x]
    assert len(line) == 1 and "plan: 31 tokens, 8 objects" in line[0]
    policy = json.loads((run / "config.json").read_text())["policy"]
    assert policy["plan_object_names"] == OBJECTS and policy["plan_dim"] == 31
    assert _train(datasets, run, "--steps", "3", "--resume") == 0
    # Fine-tuning on one of the tasks keeps the union (the other's objects stay absent).
    tuned = tmp_path / "tuned"
    assert _train(datasets[1:], tuned, "--steps", "1", "--init", str(run)) == 0
    assert json.loads((tuned / "config.json").read_text())["policy"]["plan_object_names"] \
        == OBJECTS
    for env in ("mujoco:reach", "mujoco:pick_place"):
        assert main(["eval", "--env", env, "--policy", str(run), "--episodes", "1"]) == 0


def test_no_plan_objects_cuts_to_the_goal_as_before(datasets, tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(datasets, run, "--steps", "1", "--no-plan-objects") == 0
    assert "over the union" not in capsys.readouterr().err
    policy = json.loads((run / "config.json").read_text())["policy"]
    assert "plan_object_names" not in policy and policy["plan_dim"] == 7
