"""Issue 33 through the CLI: a token policy meeting a sim env it was not trained on is refused in
one line (run anyway with --allow-untrained-env), `agent train` records its data's envs, and
--instruction replaces the env's sentence in what the policy reads."""

from __future__ import annotations

import json
import os
import shutil

import pytest

import policies.model.token_policy as token_policy
from agent.cli import main
from checkpoints import PICK_PLACE
from envs.errors import InstructionError
from envs.tabletop import TableTopEnv
from policies.registry import DEFAULT_CHECKPOINT, load_policy


def test_a_pick_place_policy_on_push_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--env", "mujoco:push", "--policy", str(PICK_PLACE), "--episodes", "1",
              "--backend", "torch"])
    assert e.value.code == 2
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{PICK_PLACE} was trained on mujoco:pick_place (robot mk6), not "
                          f"mujoco:push; ")
    assert "--policy scripted" in msg and "--allow-untrained-env" in msg
    assert "episode" not in capsys.readouterr().out  # refused before any episode


def test_the_default_on_an_arm_it_was_not_trained_for_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:  # Meta-World's Sawyer: neither of the default's arms
        main(["eval", "--env", "metaworld:reach", "--episodes", "1", "--backend", "torch"])
    assert e.value.code == 2
    msg = str(e.value).removeprefix("error: ")
    assert "\n" not in msg
    assert msg.startswith(f"{os.path.relpath(DEFAULT_CHECKPOINT)} was trained for robot mk6, "
                          f"panda (robot 'mk6': state [joint1, ")
    assert "not robot 'sawyer'" in msg and "it cannot drive this arm" in msg
    assert "episode" not in capsys.readouterr().out


def test_with_the_override_it_runs_saying_the_instruction(monkeypatch, capsys):
    seen: list[str] = []
    infer_chunk = token_policy.TokenPolicy.infer_chunk

    def spy(self, obs, committed=None):
        seen.append(obs.instruction)
        return infer_chunk(self, obs, committed)

    monkeypatch.setattr(token_policy.TokenPolicy, "infer_chunk", spy)
    assert main(["run", "--env", "mujoco:push", "--policy", str(PICK_PLACE), "--episodes", "1",
                 "--rate", "0", "--backend", "torch", "--allow-untrained-env",
                 "--instruction", "push the red cube"]) == 0
    err = capsys.readouterr().err
    assert "not mujoco:push; running anyway (--allow-untrained-env)" in err
    assert seen and set(seen) == {"push the red cube"}


def test_an_instruction_the_policy_cannot_hold_is_one_line():
    with pytest.raises(SystemExit, match=r"^--instruction: instruction 'put .*' is \d+ tokens; "
                                         r"this policy reads at most 12"):
        main(["run", "--env", "mujoco:pick_place", "--policy", str(PICK_PLACE), "--episodes",
              "1", "--backend", "torch", "--instruction", "put the red cube on the yellow "
              "plate then the blue one on the green plate please"])


def test_an_instruction_the_env_cannot_hold_is_one_line():
    with pytest.raises(SystemExit, match=r"^--instruction: instruction 'Pick': characters "
                                         r"\['P'\] are not allowed"):
        main(["run", "--env", "mujoco:pick_place", "--policy", "scripted", "--episodes", "1",
              "--instruction", "Pick"])


def test_the_env_says_the_fixed_instruction():
    env = TableTopEnv("push", instruction="push the red cube")
    try:
        obs, _ = env.reset(seed=0)
        assert obs["instruction"] == "push the red cube"
    finally:
        env.close()
    with pytest.raises(InstructionError, match="it has 0 characters"):
        TableTopEnv("push", instruction="")


def test_a_trained_run_records_its_datas_env(small_dataset, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", str(small_dataset), "--out", str(out), "--config", "nano",
                 "--batch-size", "4", "--steps", "1"]) == 0
    policy = json.loads((out / "config.json").read_text())["policy"]
    assert policy["trained_on"] == ["mujoco:pick_place"]
    assert policy["trained_robots"] == ["mk6"]
    with pytest.raises(SystemExit, match=r"^\S*run was trained on mujoco:pick_place \(robot "
                                         r"mk6\), not mujoco:push; "):
        main(["run", "--env", "mujoco:push", "--policy", str(out), "--episodes", "1",
              "--backend", "torch"])


def test_an_older_checkpoint_is_unknown_not_guessed(tmp_path):
    old = tmp_path / "old"
    shutil.copytree(PICK_PLACE, old)
    meta = json.loads((old / "config.json").read_text())
    del meta["policy"]["trained_on"], meta["policy"]["trained_robots"]
    (old / "config.json").write_text(json.dumps(meta))
    config = load_policy(str(old)).config
    assert config.trained_on is None and config.trained_robots is None
    assert config.describe_trained_on().startswith("unknown envs")


def test_a_variant_of_the_trained_task_is_not_refused(capsys):
    # pick_place_hard is pick_place with crowded cubes (same objects, instructions, expert):
    # a policy trained on pick_place alone runs on it.
    assert main(["run", "--env", "mujoco:pick_place_hard", "--policy", str(PICK_PLACE),
                 "--episodes", "1", "--rate", "0", "--backend", "torch", "--seed",
                 "1000000"]) == 0
    err = capsys.readouterr().err
    assert "was trained on" not in err and "error:" not in err


def test_task_families():
    import envs

    assert envs.task_family("mujoco:pick_place_hard") == "mujoco:pick_place"
    assert envs.task_family("mujoco:push") == "mujoco:push"
    assert envs.task_family("bridge:tcp://127.0.0.1:5555") == "bridge:tcp://127.0.0.1:5555"
