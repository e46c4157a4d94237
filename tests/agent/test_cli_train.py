import json
import os
import shutil
import subprocess
import sys

import pytest

from agent.cli import main
from policies.model.token_policy import TokenPolicy


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "pp"
    assert main(["collect", "--env", "mujoco:pick_place", "--policy", "scripted",
                 "--episodes", "2", "--out", str(out), "--vcodec", "h264"]) == 0
    return out


def _train(dataset, out, *extra):
    return main(["train", "--data", str(dataset), "--out", str(out), "--config", "nano",
                 "--batch-size", "4", *extra])


def test_train_writes_a_loadable_checkpoint_and_resumes(dataset, tmp_path):
    run = tmp_path / "run"
    assert _train(dataset, run, "--steps", "4") == 0
    for name in ("model.safetensors", "config.json", "vocab.json", "train_state.pt",
                 "metrics.jsonl", "loss.png", "state_codec", "action_codec", "text_tokenizer.json"):
        assert (run / name).exists(), name
    TokenPolicy.load(run)
    assert _train(dataset, run, "--steps", "8", "--resume") == 0
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 8 and min(steps) >= 1


def test_train_refuses_to_overwrite_a_run(dataset, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "something").write_text("x")
    with pytest.raises(SystemExit, match="exists and is not empty"):
        _train(dataset, run, "--steps", "2")


def test_resume_without_state_is_an_error(dataset, tmp_path):
    with pytest.raises(SystemExit, match="holds no training state"):
        _train(dataset, tmp_path / "empty", "--steps", "2", "--resume")


def test_init_fine_tunes_a_trained_policy_keeping_its_codecs(dataset, tmp_path):
    base = tmp_path / "base"
    assert _train(dataset, base, "--steps", "2", "--chunk", "4", "--execute", "2") == 0
    tuned = tmp_path / "tuned"
    assert _train(dataset, tuned, "--steps", "3", "--init", str(base), "--lr", "1e-4") == 0
    a, b = TokenPolicy.load(base), TokenPolicy.load(tuned)
    assert b.config == a.config and b.layout.hash == a.layout.hash  # chunk 4 kept from base
    for codec in ("state_codec", "action_codec"):
        for f in (base / codec).iterdir():
            assert (tuned / codec / f.name).read_bytes() == f.read_bytes()
    moved = [(pa - pb).abs().max().item() for pa, pb in
             zip(a.model.parameters(), b.model.parameters(), strict=True)]
    assert 0 < max(moved) < 0.01  # trained from the base's weights, a few small steps
    assert json.loads((tuned / "train_config.json").read_text())["init"] == str(base)


def test_init_errors_say_what_is_wrong(dataset, tmp_path):
    base = tmp_path / "base"
    assert _train(dataset, base, "--steps", "2", "--chunk", "4", "--execute", "2") == 0
    with pytest.raises(SystemExit, match=r"contradict it.*'chunk': \(16, 4\)"):
        _train(dataset, tmp_path / "a", "--steps", "2", "--init", str(base), "--chunk", "16")
    with pytest.raises(SystemExit, match="is not a token-policy checkpoint"):
        _train(dataset, tmp_path / "b", "--steps", "2", "--init", str(tmp_path))
    with pytest.raises(SystemExit, match="give one of them"):
        _train(dataset, base, "--steps", "4", "--init", str(base), "--resume")
    # --delay-token on a policy without delay tokens would be ignored: refused, nothing written
    with pytest.raises(SystemExit, match="needs delay_0..delay_3; this policy has none"):
        _train(dataset, tmp_path / "c", "--steps", "2", "--init", str(base), "--delay-max",
               "3", "--delay-token")
    assert not (tmp_path / "c").exists()


def test_eval_with_a_non_checkpoint_directory_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="not a policy checkpoint"):
        main(["eval", "--env", "mujoco:reach", "--policy", str(tmp_path), "--episodes", "1"])


@pytest.mark.slow
def test_torchrun_ddp_on_cpu(dataset, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    run = tmp_path / "ddp"
    subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "agent", "train",
                    "--data", str(dataset), "--out", str(run), "--config", "nano",
                    "--steps", "3", "--batch-size", "2"], check=True, timeout=600)
    TokenPolicy.load(run)
