"""The datasets check.py loads with LeRobot: collected with `agent collect`, then every
`agent dataset edit` operation, all run with motoken's venv in subprocesses (the LeRobot venv
never imports motoken). Each dataset knows the datasets its episodes were recorded in, so
check.py can compare it with the collected episodes, not only with itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
COLLECT = ("collect", "--env", "mujoco:pick_place", "--policy", "scripted")


@dataclass(frozen=True)
class Made:
    """A dataset to check: its folder and the names of the datasets its episodes came from."""

    path: Path
    sources: tuple[str, ...]


def motoken(python: str, *args: str) -> str:
    """Run `python args` in motoken's repo with its code on the path; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    done = subprocess.run([python, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"motoken command {' '.join(args)} failed ({done.returncode}): "
                           f"{done.stderr.strip()[-2000:]}")
    return done.stdout


def edit(python: str, *args: str) -> None:
    motoken(python, "-m", "agent", "dataset", "edit", *args)


def build(work: Path, python: str, episodes: int) -> dict[str, Made]:
    """Collect three sources, then run every edit operation on them (see `outputs`)."""
    w = {name: str(made.path) for name, made in outputs(work).items()}
    # 2 episodes per file: episodes live in several data/video files, as in a big dataset.
    motoken(python, "-m", "agent", *COLLECT, "--episodes", str(episodes), "--out", w["src"],
            "--episodes-per-file", "2")
    motoken(python, "-m", "agent", *COLLECT, "--episodes", "2", "--out", w["src_other"],
            "--seed", "100", "--episodes-per-file", "2")
    motoken(python, "-m", "agent", *COLLECT, "--episodes", "2", "--out", w["src_dart"],
            "--seed", "200", "--action-noise", "0.01,0.05")
    first_task = _episode_task(python, work / "src", 0)
    edit(python, "delete", w["src"], "--episodes", "1", "--out", w["delete"])
    edit(python, "split", w["src"], "--split", "train=0.75", "--split", "val=0.25",
         "--out", str(work / "split_frac"))
    edit(python, "split", w["src"], "--split", "a=0,2", "--split", "b=3",
         "--out", str(work / "split_list"))
    edit(python, "merge", w["src"], w["src_other"], "--out", w["merge"])
    edit(python, "rename-task", w["src"], "--to", "pick up the cube and place it",
         "--out", w["rename_all"])
    edit(python, "rename-task", w["src"], "--task", first_task, "--to",
         "move the cube onto the plate", "--out", w["rename_by_task"])
    edit(python, "rename-task", w["src"], "--episodes", "0,2", "--to", "a brand new task",
         "--out", w["rename_by_episode"])
    edit(python, "delete", w["src_dart"], "--episodes", "0", "--out", w["dart_delete"])
    # A merge of edit outputs: the two fraction splits back into one dataset.
    edit(python, "merge", w["split_frac/train"], w["split_frac/val"], "--out",
         w["merge_of_splits"])
    return outputs(work)


def outputs(work: Path) -> dict[str, Made]:
    """What `build` makes: name -> dataset (sources first: check.py reads them first)."""
    on_src = ("delete", "split_frac/train", "split_frac/val", "split_list/a", "split_list/b",
              "rename_all", "rename_by_task", "rename_by_episode", "merge_of_splits")
    return {"src": Made(work / "src", ("src",)),
            "src_other": Made(work / "src_other", ("src_other",)),
            "src_dart": Made(work / "src_dart", ("src_dart",)),
            **{name: Made(work / name, ("src",)) for name in on_src},
            "merge": Made(work / "merge", ("src", "src_other")),
            "dart_delete": Made(work / "dart_delete", ("src_dart",))}


def also(work: Path, python: str, dirs: Sequence[Path]) -> dict[str, Made]:
    """Datasets made elsewhere (`agent record`, a takeover run) and four edits of each, made
    afresh each run: delete episode 0, split in halves, rename every task, merge with itself."""
    out: dict[str, Made] = {}
    for d in dirs:
        name, here = f"also/{d.name}", work / "also" / d.name
        made = {"": d, "/delete": here / "delete", "/split/a": here / "split/a",
                "/split/b": here / "split/b", "/rename_all": here / "rename_all",
                "/merge_self": here / "merge_self"}
        info = json.loads(motoken(python, "-m", "agent", "dataset", "info", str(d), "--json"))
        if info["episodes"] < 2:
            raise SystemExit(f"--also {d}: {info['episodes']} episode(s); the edits need 2+")
        shutil.rmtree(here, ignore_errors=True)
        edit(python, "delete", str(d), "--episodes", "0", "--out", str(made["/delete"]))
        edit(python, "split", str(d), "--split", "a=0.5", "--split", "b=0.5",
             "--out", str(here / "split"))
        edit(python, "rename-task", str(d), "--to", "a renamed task", "--out",
             str(made["/rename_all"]))
        edit(python, "merge", str(d), str(d), "--out", str(made["/merge_self"]))
        out |= {name + suffix: Made(path, (name,)) for suffix, path in made.items()}
    return out


def _episode_task(python: str, root: Path, k: int) -> str:
    code = ("import sys; from dataset import LeRobotDatasetReader as R; "
            "print(R(sys.argv[1]).episode(int(sys.argv[2])).task)")
    return motoken(python, "-c", code, str(root), str(k)).strip()


def shifted_video_copy(src: Path, out: Path, episode: int = 1) -> Path:
    """A copy of `src` whose episodes table starts `episode`'s first camera one frame late."""
    shutil.copytree(src, out, ignore=shutil.ignore_patterns(".lock"))
    fps = json.loads((out / "meta/info.json").read_text())["fps"]
    for path in sorted((out / "meta/episodes").glob("*/*.parquet")):
        table = pq.read_table(path)
        rows = table.to_pylist()
        for row in rows:
            if row["episode_index"] == episode:
                cam = next(k for k in row if k.startswith("videos/") and
                           k.endswith("/from_timestamp"))
                row[cam] += 1 / fps
                row[cam.replace("from_", "to_")] += 1 / fps
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    return out
