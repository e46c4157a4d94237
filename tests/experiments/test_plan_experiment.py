"""experiments/perception/plan.py: the plan against the truth on the env asked for, and only
on pick-and-place."""

from __future__ import annotations

import pytest

from tests.experiments.conftest import load_experiment

plan = load_experiment("perception", "plan")


def test_runs_on_the_hard_variant_and_says_so():
    out = plan.main(["--policy", "checkpoints/pick_place", "--seeds", "1",
                     "--env", "mujoco:pick_place_hard"])
    assert out["env"] == "mujoco:pick_place_hard"
    assert out["episodes"] == 1
    assert out["cube_xy_err_mm_median"] >= 0 and out["plate_xy_err_mm_median"] >= 0


def test_a_task_without_a_cube_and_plate_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        plan.main(["--policy", "checkpoints/pick_place", "--env", "mujoco:reach"])
    err = capsys.readouterr().err
    assert "mujoco:reach" in err and "mujoco:pick_place_hard" in err
