"""`agent train --action-block N --plan-block xyz` end to end: a tiny run, then `agent eval`
and `agent run` (both backends) on the checkpoint it wrote; bad blocks refused in one line."""

import json
from dataclasses import replace

import pytest

from agent.cli import main
from policies.model.token_policy import TokenPolicy
from tests.agent.conftest import fails_with_one_line


def test_train_with_per_step_blocks_then_eval_and_run(small_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(small_dataset), "--out", str(run), "--config", "nano",
                 "--batch-size", "4", "--steps", "3", "--action-block", "7",
                 "--plan-block", "xyz"]) == 0
    policy = TokenPolicy.load(run)
    assert policy.config.action_block == 7 and policy.config.plan_block == "xyz"
    saved = json.loads((run / "config.json").read_text())["policy"]
    assert (saved["action_block"], saved["plan_block"]) == (7, "xyz")
    for backend in ("torch", "onnx"):
        capsys.readouterr()
        assert main(["eval", "--env", "mujoco:pick_place", "--policy", str(run), "--episodes",
                     "1", "--backend", backend, "--json"]) == 0
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert report["episodes"] == 1, report
    assert main(["run", "--env", "mujoco:pick_place", "--policy", str(run), "--episodes", "1",
                 "--exec", "rtc", "--backend", "onnx"]) == 0


def test_a_block_that_does_not_divide_the_chunk_is_refused_in_one_line(small_dataset, tmp_path,
                                                                       capsys):
    err = fails_with_one_line(["train", "--data", str(small_dataset), "--out",
                               str(tmp_path / "r"), "--action-block", "5"], capsys)
    assert "allowed [1, 2, 4, 7, 8, 14, 28, 56]" in err, err


def test_an_unknown_plan_block_is_refused_with_the_choices(small_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:  # tyro's own message for a choice it does not know
        main(["train", "--data", str(small_dataset), "--out", str(tmp_path / "r"),
              "--plan-block", "xy"])
    err = " ".join(capsys.readouterr().err.split())
    assert e.value.code == 2 and "invalid choice 'xy' for argument '--plan-block'" in err, err
    assert "Expected one of ('token', 'xyz', 'whole')" in err, err
    assert not (tmp_path / "r").exists()


def test_init_recuts_the_plan_into_xyz_blocks_and_keeps_the_rest(small_dataset, tmp_path):
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    train = ["train", "--data", str(small_dataset), "--config", "nano", "--batch-size", "4"]
    assert main([*train, "--out", str(base), "--steps", "2", "--action-block", "7"]) == 0
    assert main([*train, "--out", str(tuned), "--steps", "2", "--init", str(base),
                 "--plan-block", "xyz"]) == 0
    a, b = TokenPolicy.load(base), TokenPolicy.load(tuned)
    assert (a.config.plan_block, b.config.plan_block) == ("token", "xyz")
    assert b.config == replace(a.config, plan_block="xyz") and b.layout.hash == a.layout.hash
    plan = a.config.plan_dim
    assert b.slot_layout().n - a.slot_layout().n == 2 * (plan - 1) // 3  # two echoes a triple


def test_init_without_action_query_cannot_take_plan_blocks(small_dataset, tmp_path, capsys):
    base = tmp_path / "base"
    train = ["train", "--data", str(small_dataset), "--config", "nano", "--batch-size", "4"]
    assert main([*train, "--out", str(base), "--steps", "2"]) == 0
    err = fails_with_one_line([*train, "--out", str(tmp_path / "t"), "--steps", "2", "--init",
                               str(base), "--plan-block", "xyz"], capsys)
    assert "no action_query token" in err and "--plan-block xyz" in err, err
    assert not (tmp_path / "t").exists()
