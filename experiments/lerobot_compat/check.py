"""Does LeRobot's own loader read motoken's datasets, and every `agent dataset edit` output?

Runs with a venv that has `lerobot` (not motoken's: LeRobot is no motoken dependency); motoken's
side (`agent collect`, `agent dataset edit`, and its reader, for the values to compare) runs with
motoken's venv in subprocesses. See NOTE.md for the setup and the results.

    HF_HUB_OFFLINE=1 /work/lerobot-venv/bin/python experiments/lerobot_compat/check.py \
        --work /tmp/lerobot_compat [--video-backend pyav] [--extra-columns]

Per dataset it prints one JSON object: `pass`, the `stage` that failed and the `error`. The checks:
LeRobotDatasetMetadata and LeRobotDataset open it offline; len(), episode count, fps, cameras,
the tasks table and every episode's length / index range / task equal motoken's reader's. Every
frame of every episode (`ds[i]`) is then compared with the episode of the same seed in the
*collected* dataset it came from (so an edit that misplaced a video segment or a row shows up
even if motoken's reader agreed with LeRobot's): state, action, next.success, env state and
expert action exactly, timestamp, indices, the task string, and the decoded frame of every
camera (max |diff| reported, at most MAX_PIXEL_DIFF of 255). Then a `delta_timestamps` load
(action chunks, a past camera frame) and a DataLoader batch. `control/shifted_video`, a copy
whose episodes table points one camera one frame late, must FAIL (the check can catch that).
Exit status 1 if a dataset fails that should pass, or the control passes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from extra_columns import BOOL as EXTRA_BOOL
from extra_columns import FLOAT as EXTRA_FLOAT
from extra_columns import PROBES, variants
from extra_columns import values as extra_values
from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
from lerobot.datasets.utils import dataset_to_policy_features

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MAX_PIXEL_DIFF = 2  # of 255: two builds of FFmpeg may round yuv->rgb differently
# Per-frame columns compared exactly when the dataset has them.
EXACT = ("observation.state", "action", "next.success", "observation.environment_state",
         "expert_action")
CONTROL = "control/shifted_video"


class Stage:
    """Which check is running, for the report when one raises."""

    name = "start"


def motoken(python: str, *args: str) -> str:
    """Run `python args` in motoken's repo with its code on the path; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    done = subprocess.run([python, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"motoken command {' '.join(args)} failed ({done.returncode}): "
                           f"{done.stderr.strip()[-2000:]}")
    return done.stdout


def agent(python: str, *args: str) -> None:
    motoken(python, "-m", "agent", *args)


def build(work: Path, python: str, episodes: int) -> dict[str, Path]:
    """Collect sources with `agent collect`, then run every `agent dataset edit` operation."""
    src, other, dart = work / "src", work / "src_other", work / "src_dart"
    collect = ("collect", "--env", "mujoco:pick_place", "--policy", "scripted")
    # 2 episodes per file: episodes live in several data/video files, as in a big dataset.
    agent(python, *collect, "--episodes", str(episodes), "--out", str(src),
          "--episodes-per-file", "2")
    agent(python, *collect, "--episodes", "2", "--out", str(other), "--seed", "100",
          "--episodes-per-file", "2")
    agent(python, *collect, "--episodes", "2", "--out", str(dart), "--seed", "200",
          "--action-noise", "0.01,0.05")
    info = json.loads(motoken(python, "-m", "agent", "dataset", "info", str(src), "--json"))
    first_task = _first_task(python, src)
    edits: list[tuple[str, list[str]]] = [
        ("delete", ["delete", str(src), "--episodes", "1", "--out", str(work / "delete")]),
        ("split_frac", ["split", str(src), "--split", "train=0.75", "--split", "val=0.25",
                        "--out", str(work / "split_frac")]),
        ("split_list", ["split", str(src), "--split", "a=0,2", "--split", "b=3",
                        "--out", str(work / "split_list")]),
        ("merge", ["merge", str(src), str(other), "--out", str(work / "merge")]),
        ("rename_all", ["rename-task", str(src), "--to", "pick up the cube and place it",
                        "--out", str(work / "rename_all")]),
        ("rename_by_task", ["rename-task", str(src), "--task", first_task, "--to",
                            "move the cube onto the plate", "--out", str(work / "rename_by_task")]),
        ("rename_by_episode", ["rename-task", str(src), "--episodes", "0,2", "--to",
                               "a brand new task", "--out", str(work / "rename_by_episode")]),
        ("dart_delete", ["delete", str(dart), "--episodes", "0", "--out",
                         str(work / "dart_delete")]),
    ]
    for _, args in edits:
        agent(python, "dataset", "edit", *args)
    # A merge of edit outputs: the two fraction splits back into one dataset.
    agent(python, "dataset", "edit", "merge", str(work / "split_frac/train"),
          str(work / "split_frac/val"), "--out", str(work / "merge_of_splits"))
    assert info["episodes"] == episodes, info
    return outputs(work)


def outputs(work: Path) -> dict[str, Path]:
    """The datasets `build` makes: name -> folder."""
    names = ["src", "src_other", "src_dart", "delete", "split_frac/train", "split_frac/val",
             "split_list/a", "split_list/b", "merge", "rename_all", "rename_by_task",
             "rename_by_episode", "dart_delete", "merge_of_splits"]
    return {name: work / name for name in names}


def _first_task(python: str, root: Path) -> str:
    code = ("import sys; from dataset import LeRobotDatasetReader as R; "
            "print(R(sys.argv[1]).episode(0).task)")
    return motoken(python, "-c", code, str(root)).strip()


def reference(python: str, root: Path, out: Path) -> tuple[dict[str, Any], Any]:
    """motoken's reader's view of `root` (see motoken_side.py)."""
    motoken(python, str(HERE / "motoken_side.py"), str(root), str(out))
    return json.loads(out.with_suffix(".json").read_text()), np.load(out.with_suffix(".npz"))


def expect(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


def check_meta(meta: LeRobotDatasetMetadata, ds: LeRobotDataset, ref: dict[str, Any]) -> None:
    expect(meta.info["codebase_version"] == "v3.0", f"codebase {meta.info['codebase_version']}")
    expect(len(ds) == ref["num_frames"], f"len {len(ds)} != motoken's {ref['num_frames']}")
    expect(ds.num_episodes == ref["num_episodes"],
           f"episodes {ds.num_episodes} != motoken's {ref['num_episodes']}")
    expect(ds.fps == ref["fps"], f"fps {ds.fps} != {ref['fps']}")
    expect(list(meta.video_keys) == ref["camera_keys"],
           f"video keys {meta.video_keys} != {ref['camera_keys']}")
    expect(set(meta.tasks.index) == set(ref["tasks"]),
           f"tasks {sorted(meta.tasks.index)} != motoken's {sorted(ref['tasks'])}")
    expect(sorted(meta.tasks.task_index) == list(range(len(ref["tasks"]))),
           f"task indices {sorted(meta.tasks.task_index)}")
    for e in ref["episodes"]:
        row = meta.episodes[e["index"]]
        got = (row["episode_index"], row["length"], row["dataset_from_index"],
               row["dataset_to_index"], list(row["tasks"]))
        want = (e["index"], e["length"], e["from_index"], e["to_index"], [e["task"]])
        expect(got == want, f"episode {e['index']} metadata {got} != motoken's {want}")


# seed -> (arrays of the collected dataset the episode was recorded in, its index there)
Truth = dict[int, tuple[Any, int]]


def truth_of(ref: dict[str, Any], arrays: Any) -> Truth:
    return {e["seed"]: (arrays, e["index"]) for e in ref["episodes"]}


def check_frames(ds: LeRobotDataset, ref: dict[str, Any], truth: Truth,
                 extra: bool = False) -> float:
    """Every frame of every episode against the collected episode of the same seed; the largest
    pixel difference. `extra`: also the hand-added columns of extra_columns.py."""
    worst = 0.0
    for e in ref["episodes"]:
        k, first = e["index"], e["from_index"]
        arrays, j = truth[e["seed"]]
        expect(len(arrays[f"{j}/action"]) == e["length"], f"episode {k}: length {e['length']}, "
               f"collected {len(arrays[f'{j}/action'])}")
        for t in range(e["length"]):
            item = ds[first + t]
            ids = (item["episode_index"].item(), item["frame_index"].item(), item["index"].item())
            expect(ids == (k, t, first + t), f"frame {t} of episode {k}: ids {ids}")
            expect(item["task"] == e["task"],
                   f"episode {k} frame {t}: task {item['task']!r} != {e['task']!r}")
            expect(abs(item["timestamp"].item() - arrays[f"{j}/timestamp"][t]) < 1e-6,
                   f"episode {k} frame {t}: timestamp {item['timestamp'].item()}")
            want = {key: arrays[f"{j}/{key}"][t] for key in EXACT if f"{j}/{key}" in arrays}
            if extra:
                want |= {key: v[0] for key, v in extra_values(np.array([first + t])).items()}
            for key, value in want.items():
                theirs = item[key].numpy().reshape(np.shape(value))
                expect(np.array_equal(theirs, value),
                       f"episode {k} frame {t}: {key} {theirs} != {value}")
            for cam in ref["camera_keys"]:
                worst = max(worst, pixel_diff(item[cam], arrays[f"{j}/{cam}"][t],
                                              f"episode {k} frame {t}: {cam}"))
    return worst


def pixel_diff(img: torch.Tensor, mine: np.ndarray, what: str) -> float:
    """Largest |diff| (of 255) between LeRobot's (3, H, W) float frame and an (H, W, 3) uint8."""
    expect(tuple(img.shape) == (3, *mine.shape[:2]), f"{what}: shape {tuple(img.shape)}")
    diff = float(np.abs((img.numpy().transpose(1, 2, 0) * 255).round() - mine).max())
    expect(diff <= MAX_PIXEL_DIFF, f"{what} differs from motoken's decode of the collected "
                                   f"episode by up to {diff}/255")
    return diff


def check_training_access(root: Path, name: str, backend: str, ref: dict[str, Any],
                          truth: Truth) -> None:
    """Action chunks and a past camera frame by `delta_timestamps`, then a DataLoader batch."""
    fps, cam = ref["fps"], ref["camera_keys"][0]
    chunked = LeRobotDataset(f"local/{name}", root=root, video_backend=backend,
                             delta_timestamps={"action": [i / fps for i in range(10)],
                                               cam: [-2 / fps, 0.0]})
    last = ref["episodes"][-1]
    arrays, j = truth[last["seed"]]
    t = min(5, last["length"] - 1)
    item = chunked[last["from_index"] + t]
    actions = arrays[f"{j}/action"]
    n = min(10, last["length"] - t)
    expect(np.array_equal(item["action"][:n].numpy(), actions[t:t + n]), "action chunk")
    expect(item["action_is_pad"].tolist() == [False] * n + [True] * (10 - n), "action padding")
    pixel_diff(item[cam][0], arrays[f"{j}/{cam}"][max(t - 2, 0)], f"{cam} at t-2")
    batch = next(iter(torch.utils.data.DataLoader(chunked, batch_size=8, shuffle=True)))
    expect(tuple(batch["action"].shape) == (8, 10, actions.shape[1]), "batch action shape")


def check_one(name: str, root: Path, python: str, backend: str, refs: Path,
              truth: Truth, ref_root: Path | None = None) -> dict[str, Any]:
    """Load `root` with LeRobot and compare; adds its episodes to `truth` if it is a source.

    `ref_root`: where motoken's reader takes the metadata to compare with (default `root`)."""
    result: dict[str, Any] = {"dataset": name, "pass": False}
    stage = Stage()
    try:
        stage.name = "motoken reader"
        ref, arrays = reference(python, ref_root or root, refs / name.replace("/", "__"))
        if name.startswith("src"):
            truth |= truth_of(ref, arrays)
        result |= {"episodes": ref["num_episodes"], "frames": ref["num_frames"],
                   "tasks": len(ref["tasks"]), "cameras": len(ref["camera_keys"])}
        stage.name = "LeRobotDatasetMetadata"
        meta = LeRobotDatasetMetadata(f"local/{name}", root=root)
        stage.name = "LeRobotDataset"
        ds = LeRobotDataset(f"local/{name}", root=root, video_backend=backend)
        stage.name = "metadata vs motoken"
        check_meta(meta, ds, ref)
        stage.name = "frames vs collected episode"
        result["max_pixel_diff"] = check_frames(ds, ref, truth, name.startswith("extra/"))
        stage.name = "delta_timestamps + DataLoader"
        check_training_access(root, name, backend, ref, truth)
        if name.startswith("extra/"):
            types = dataset_to_policy_features(meta.features)
            result["policy_feature_types"] = {k: types[k].type.name if k in types else None
                                              for k in (EXTRA_BOOL, EXTRA_FLOAT)}
        result["pass"] = True
    except Exception as e:  # the report says which stage and why; the run goes on
        result |= {"stage": stage.name, "error": describe(e)[:1500],
                   "where": traceback.format_exc().strip().splitlines()[-3][:300]}
    return result


def describe(e: BaseException) -> str:
    """`e` and the exceptions it was raised from (HF datasets wraps the real cause)."""
    parts = []
    while e is not None and len(parts) < 4:
        parts.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
    return " <- ".join(parts)


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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/lerobot_compat"),
                   help="scratch folder for the datasets (wiped first)")
    p.add_argument("--motoken-python", default="/work/main/.venv/bin/python")
    p.add_argument("--video-backend", default="pyav", choices=("pyav", "torchcodec"))
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--skip-build", action="store_true",
                   help="reuse the datasets a previous run left in --work")
    p.add_argument("--extra-columns", action="store_true",
                   help="also check copies with hand-added bool / float32 columns "
                        "(extra_columns.py)")
    p.add_argument("--only", action="append", default=[], metavar="PREFIX",
                   help="check only datasets whose name starts with PREFIX (repeatable); the "
                        "collected sources are always checked (the others are compared to them)")
    args = p.parse_args()
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        sys.exit("set HF_HUB_OFFLINE=1: a dataset LeRobot cannot read locally must fail, not be "
                 "fetched from the hub")
    if args.skip_build:
        datasets = outputs(args.work)
    else:
        shutil.rmtree(args.work, ignore_errors=True)
        datasets = build(args.work, args.motoken_python, args.episodes)
    scratch = args.work / "derived"  # remade each run
    shutil.rmtree(scratch, ignore_errors=True)
    datasets[CONTROL] = shifted_video_copy(datasets["src"], scratch / "shifted_video")
    if args.extra_columns:
        datasets |= variants(datasets["src"], scratch / "extra")
    if args.only:
        datasets = {k: v for k, v in datasets.items()
                    if k.startswith(("src", *args.only))}
    refs = scratch / "refs"
    refs.mkdir(parents=True)
    results, truth = [], {}
    for name, root in datasets.items():
        # The control's own metadata is the bad part: compare it with its source's.
        ref_root = datasets["src"] if name == CONTROL else None
        results.append(check_one(name, root, args.motoken_python, args.video_backend, refs,
                                 truth, ref_root))
        results[-1]["expected"] = ("fail" if name == CONTROL else
                                   "either (a probe)" if name in PROBES else "pass")
        print(json.dumps(results[-1]), flush=True)
    (args.work / "results.json").write_text(json.dumps(results, indent=1))
    wrong = [r["dataset"] for r in results if r["expected"] != "either (a probe)"
             and r["pass"] != (r["expected"] == "pass")]
    print(f"{sum(r['pass'] for r in results)}/{len(results)} datasets read by LeRobot; "
          + (f"NOT AS EXPECTED: {wrong}" if wrong else "all as expected"))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
