"""Bad input to `agent collect`: clear errors, and nothing already recorded is touched."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import collect


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_non_dataset_folder_as_out_is_refused(tmp_path: Path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"not a dataset")
    for extra in ((), ("--resume",)):
        with pytest.raises(SystemExit, match="not an empty folder or a LeRobot dataset"):
            collect(out, *extra, episodes=1)
    assert [p.name for p in out.iterdir()] == ["holiday.jpg"]


def test_file_as_out_is_refused(tmp_path: Path):
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(SystemExit, match="not a directory"):
        collect(out, episodes=1)


def test_existing_dataset_needs_resume(small_dataset: Path):
    before = _snapshot(small_dataset)
    with pytest.raises(SystemExit, match="already holds a dataset; pass --resume"):
        collect(small_dataset, episodes=4)
    assert _snapshot(small_dataset) == before


@pytest.mark.parametrize(("extra", "why"), [
    (("--fps", "10"), "fps: dataset has 20, this recording has 10"),
    (("--vcodec", "h264"), "video.codec"),
])
def test_resume_with_different_features_is_refused(small_dataset: Path, extra, why):
    before = _snapshot(small_dataset)
    with pytest.raises(SystemExit, match="recorded with different features") as e:
        collect(small_dataset, "--resume", *extra, episodes=4)
    assert why in str(e.value)
    assert _snapshot(small_dataset) == before


def test_unknown_env_and_policy(tmp_path: Path):
    from agent.cli import main

    with pytest.raises(SystemExit, match="did you mean 'mujoco:pick_place'"):
        main(["collect", "--env", "mujoco:pick_plac", "--episodes", "1", "--out",
              str(tmp_path / "a")])
    with pytest.raises(SystemExit, match="unknown policy"):
        main(["collect", "--env", "mujoco:pick_place", "--policy", "nope", "--episodes", "1",
              "--out", str(tmp_path / "b")])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("flag", ["--episodes", "--num-envs", "--fps"])
def test_non_positive_counts(tmp_path: Path, flag):
    from agent.cli import main

    args = {"--episodes": "1", "--num-envs": "1", "--fps": "20"} | {flag: "0"}
    with pytest.raises(SystemExit, match=f"{flag} must be"):
        main(["collect", "--env", "mujoco:pick_place", "--out", str(tmp_path / "x"),
              *[x for kv in args.items() for x in kv]])


def test_one_writer_at_a_time(small_dataset: Path):
    from agent.recorder import EpisodeRecorder, RecorderConfig
    from dataset.errors import DatasetLockedError
    from dataset.writer import DatasetWriter

    recorder = EpisodeRecorder(RecorderConfig("mujoco:pick_place", "scripted", Path("/none")))
    spec = recorder.spec
    recorder.close()
    first = DatasetWriter.resume(small_dataset, spec)
    try:
        with pytest.raises(DatasetLockedError, match="another `agent collect` is writing"):
            DatasetWriter.resume(small_dataset, spec)
    finally:
        first.close()
    DatasetWriter.resume(small_dataset, spec).close()  # released on close
