import json

import pytest

from agent.cli import main
from policies.video.vq import VQTokenizer


def _train(dataset, out, *extra):
    return main(["train-tokenizer", "--data", str(dataset), "--out", str(out), "--config", "tiny",
                 "--steps", "3", "--batch-size", "2", "--frame-stride", "20", *extra])


def test_train_tokenizer_prints_its_summary_and_writes_a_tokenizer(small_dataset, tmp_path,
                                                                   capsys):
    out = tmp_path / "tok"
    assert _train(small_dataset, out, "--cameras", "front") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 3 and summary["out"] == str(out)
    assert summary["psnr"] > 0 and 0 < summary["codebook_usage"] <= 1
    assert {"perplexity", "wall_s"} <= summary.keys()
    for name in ("model.safetensors", "config.json", "metrics.jsonl", "eval.json"):
        assert (out / name).is_file(), name
    assert VQTokenizer.load(out).cfg.codebook_size == 128


def test_unknown_camera_is_an_error(small_dataset, tmp_path):
    with pytest.raises(SystemExit, match=r"no camera 'side'; it has \['front', 'wrist'\]"):
        _train(small_dataset, tmp_path / "tok", "--cameras", "side")


def test_train_tokenizer_refuses_to_overwrite(small_dataset, tmp_path):
    (tmp_path / "x").write_text("x")
    with pytest.raises(SystemExit, match="exists and is not empty"):
        _train(small_dataset, tmp_path)


def test_a_directory_that_is_not_a_dataset_is_an_error(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(SystemExit, match="not a LeRobot dataset"):
        _train(tmp_path / "data", tmp_path / "tok")
