"""`agent train --action-block N` end to end: a tiny run, then `agent eval` and `agent run`
(both backends) on the checkpoint it wrote; bad block sizes refused in one line."""

import json

from agent.cli import main
from policies.model.token_policy import TokenPolicy
from tests.agent.conftest import fails_with_one_line


def test_train_with_per_step_blocks_then_eval_and_run(small_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(small_dataset), "--out", str(run), "--config", "nano",
                 "--batch-size", "4", "--steps", "3", "--action-block", "7"]) == 0
    policy = TokenPolicy.load(run)
    assert policy.config.action_block == 7 and not policy.config.plan_block
    assert json.loads((run / "config.json").read_text())["policy"]["action_block"] == 7
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
