"""`agent collect/eval --phrasings` and `agent train --no-sim-truth` (issue 33's groundwork),
with real collection, real datasets and real training steps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from agent.cli import main
from dataset import layout
from dataset.reader import LeRobotDatasetReader
from envs.phrasings import task_phrasings
from policies.model.token_policy import TokenPolicy
from tests.agent.conftest import collect, fails_with_one_line


@pytest.fixture(scope="module")
def varied(tmp_path_factory) -> Path:
    """4 scripted reach episodes, each saying its goal in a TRAIN phrasing."""
    out = tmp_path_factory.mktemp("phr") / "reach"
    assert collect(out, "--phrasings", "train", "--vcodec", "h264", episodes=4,
                   env="mujoco:reach") == 0
    return out


def _without_env_state(src: Path, dst: Path) -> Path:
    """A copy of `src` as a teleoperated dataset would be: no environment_state anywhere."""
    shutil.copytree(src, dst)
    for f in (dst / "data").rglob("*.parquet"):
        t = pq.read_table(f)
        pq.write_table(t.drop_columns([layout.ENV_STATE_KEY]), f)
    info = json.loads((dst / layout.INFO_PATH).read_text())
    del info["features"][layout.ENV_STATE_KEY]
    (dst / layout.INFO_PATH).write_text(json.dumps(info, indent=2))
    return dst


def test_collect_records_train_phrasings(varied):
    ds = LeRobotDatasetReader(varied)
    said = [ep.task for ep in ds]
    allowed = set(task_phrasings("reach", "train"))
    assert all(s in allowed for s in said), said
    assert len(set(said)) > 1  # varied, not one template
    assert ds.recording["phrasings"] == "train"


def test_collect_phrasings_refused_for_a_bridge(tmp_path, capsys):
    line = fails_with_one_line(["collect", "--env", "bridge:tcp://127.0.0.1:1", "--episodes",
                                "1", "--out", str(tmp_path / "x"), "--phrasings", "train"],
                               capsys)
    assert "table-top sim envs" in line


def test_no_sim_truth_trains_on_a_dataset_without_env_state(varied, tmp_path):
    bare = _without_env_state(varied, tmp_path / "bare")
    assert all(ep.env_state is None for ep in LeRobotDatasetReader(bare))
    run = tmp_path / "run"
    assert main(["train", "--data", str(bare), "--out", str(run), "--config", "nano",
                 "--batch-size", "4", "--steps", "5", "--no-sim-truth",
                 "--text-len", "32", "--text-vocab", "400"]) == 0
    p = TokenPolicy.load(run)
    assert p.config.plan_dim == 0 and p.model.aux_head is None and p.config.text_len == 32
    assert json.loads((run / "train_config.json").read_text())["sim_truth"] is False
    # Every train phrasing fits the 32-token window of a BPE fitted on the data's sentences.
    p.text_ids(["please touch the green sphere with the gripper"])


def test_no_sim_truth_ignores_env_state_that_is_there(varied, tmp_path, monkeypatch):
    import policies.training.train as tr

    def no_plan(*a, **k):  # the plan targets are the only reader of env_state
        raise AssertionError("plan_targets read env_state under --no-sim-truth")

    monkeypatch.setattr(tr, "plan_targets", no_plan)
    run = tmp_path / "run"
    assert main(["train", "--data", str(varied), "--out", str(run), "--config", "nano",
                 "--batch-size", "4", "--steps", "3", "--no-sim-truth"]) == 0
    p = TokenPolicy.load(run)
    assert p.config.plan_dim == 0 and p.model.aux_head is None


def test_eval_phrasings_refused_where_the_window_is_too_small(tmp_path, capsys):
    # The pick-and-place specialist reads 12 tokens of a BPE fitted on six sentences: held-out
    # phrasings need more, which must be said before any episode, not mid-run.
    line = fails_with_one_line(["eval", "--env", "mujoco:pick_place", "--policy",
                                "checkpoints/pick_place", "--episodes", "1", "--phrasings",
                                "heldout"], capsys)
    assert "--phrasings heldout" in line and "tokens" in line


def test_eval_runs_scripted_with_heldout_phrasings(capsys):
    assert main(["eval", "--env", "mujoco:reach", "--policy", "scripted", "--episodes", "2",
                 "--phrasings", "heldout", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["phrasings"] == "heldout" and summary["episodes"] == 2


def test_goals_refused_off_metaworld(capsys):
    line = fails_with_one_line(["eval", "--env", "mujoco:reach", "--policy", "scripted",
                                "--episodes", "1", "--goals", "random"], capsys)
    assert "--goals applies to Meta-World" in line and "mujoco:reach" in line


def test_text_noise_trains_and_says_which_words_it_keeps(varied, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(varied), "--out", str(run), "--config", "nano",
                 "--batch-size", "4", "--steps", "5", "--text-len", "32", "--text-vocab", "400",
                 "--text-noise", "0.5", "--no-sim-truth"]) == 0
    err = capsys.readouterr().err
    assert "--text-noise: in 50% of the instructions, words other than" in err
    assert "ball" in err and "red" in err  # reach's objects: the red/green/blue balls
    assert json.loads((run / "train_config.json").read_text())["text_noise"] == 0.5


def test_text_noise_refused_in_one_line_without_object_names(varied, tmp_path, capsys):
    bare = _without_env_state(varied, tmp_path / "bare")
    run = tmp_path / "run"
    line = fails_with_one_line(["train", "--data", str(bare), "--out", str(run), "--config",
                                "nano", "--steps", "5", "--text-len", "32", "--text-noise",
                                "0.5"], capsys)
    assert "--text-noise" in line and "environment state names" in line
    assert not run.exists()
