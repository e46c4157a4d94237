"""`agent train --tokenizer`: the video head trains with the policy and loads back as it was."""

import json
import shutil

import numpy as np
import pytest
import torch

from agent.cli import main
from envs.types import Observation
from policies.video.imagine import FuturePredictor, load_imagination
from policies.video.vq import VQTokenizer, get_config


def test_train_writes_the_head_and_it_loads_back_with_identical_predictions(video_run):
    run = video_run["run"]
    for name in ("model.safetensors", "config.json"):
        assert (run / "video_head" / name).is_file(), name
    meta = json.loads((run / "video_head" / "config.json").read_text())
    assert meta["head"]["max_horizon"] == 4 and meta["head"]["visual_weight"] == 0.5
    assert meta["tokenizer"]["path"] == str(video_run["tok"].resolve())
    assert len(meta["tokenizer"]["weights_sha256"]) == 64
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 4 and rows[-1]["video_loss"] > 0
    policy, head, tok = load_imagination(run)
    d = video_run["demos"][0]
    obs = Observation({c: d.frames[c][2] for c in policy.config.cameras}, d.state[2], d.task)
    chunks = np.stack([d.action[2:2 + policy.config.chunk]] * 3)
    chunks = chunks + np.arange(3)[:, None, None] * 0.01  # three distinct candidates
    trained = FuturePredictor(video_run["policy"], video_run["video"].head, tok)
    loaded = FuturePredictor(policy, head, tok)
    for k in (1, 4):
        want_logits, want_states = trained.predict(obs, chunks, k)
        got_logits, got_states = loaded.predict(obs, chunks, k)
        torch.testing.assert_close(got_logits, want_logits, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(got_states, want_states)


def test_a_version_1_head_is_refused_with_the_reason(video_run, tmp_path):
    from policies.video.imagine import NoVideoHeadError

    run = tmp_path / "old"
    shutil.copytree(video_run["run"], run)
    meta_path = run / "video_head" / "config.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "version": 1}))
    with pytest.raises(NoVideoHeadError, match="version 1 heads do not read the present frame"):
        load_imagination(run)


def test_resume_keeps_the_head_and_checks_the_tokenizer(video_run, small_dataset, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(video_run["run"], run)
    base = ["train", "--data", str(small_dataset), "--out", str(run), "--config", "nano",
            "--batch-size", "4", "--steps", "6", "--resume"]
    with pytest.raises(SystemExit, match="trained with a video head; pass the --tokenizer"):
        main(base)
    torch.manual_seed(3)
    VQTokenizer(get_config("tiny")).save(tmp_path / "other")
    with pytest.raises(SystemExit, match="is not the one the video head was trained against"):
        main([*base, "--tokenizer", str(tmp_path / "other")])
    with pytest.raises(SystemExit, match=r"differ from it \(given, saved\): \{'max_horizon'"):
        main([*base, "--tokenizer", str(video_run["tok"]), "--video-horizon", "8"])
    assert main([*base, "--tokenizer", str(video_run["tok"])]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 6 and rows[-1]["video_loss"] is not None


def test_video_options_without_a_tokenizer_or_too_far_are_errors(small_dataset, video_run,
                                                                tmp_path):
    base = ["train", "--data", str(small_dataset), "--out", str(tmp_path / "r"), "--config",
            "nano", "--steps", "2"]
    for flag in ("--video-horizon", "--video-pixel-weight"):
        with pytest.raises(SystemExit, match="--video-pixel-weight need --tokenizer"):
            main([*base, flag, "4"])
    with pytest.raises(SystemExit, match="video horizon 9 exceeds the chunk of 8 actions"):
        main([*base, "--tokenizer", str(video_run["tok"]), "--video-horizon", "9"])
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_init_from_a_video_run_continues_its_head_with_a_new_pixel_weight(video_run,
                                                                          small_dataset,
                                                                          tmp_path):
    import policies.training.train

    base = ["train", "--data", str(small_dataset), "--out", str(tmp_path / "ft"), "--init",
            str(video_run["run"]), "--batch-size", "4", "--steps", "2",
            "--tokenizer", str(video_run["tok"])]
    with pytest.raises(SystemExit, match="has a video head of horizon 4; --video-horizon must"):
        main([*base, "--video-horizon", "8"])
    _, saved, _ = load_imagination(video_run["run"])
    seen = {}
    real_train = policies.training.train.train

    def capture(policy, demos, out, cfg, **kw):  # the head as training receives it
        head = kw["video"].head
        seen.update(cfg=head.cfg, queries=head.queries.detach().clone())
        return real_train(policy, demos, out, cfg, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(policies.training.train, "train", capture)
        assert main([*base, "--video-pixel-weight", "0.5"]) == 0
    torch.testing.assert_close(seen["queries"], saved.queries.detach())  # not a fresh head
    assert seen["cfg"].pixel_weight == 0.5 and seen["cfg"].max_horizon == 4
    rows = [json.loads(line) for line in (tmp_path / "ft" / "metrics.jsonl").read_text()
            .splitlines()]
    assert rows[-1]["video_pixel_loss"] is not None and rows[-1]["video_pixel_loss"] < 0
    policy, head, tok = load_imagination(tmp_path / "ft")
    assert head.cfg.pixel_weight == 0.5
    assert FuturePredictor(policy, head, tok).render_mode == "expected"  # as it was trained
