"""Does LeRobot's own loader read motoken's datasets, and every `agent dataset edit` output?

Runs with a venv that has `lerobot` (not motoken's: LeRobot is no motoken dependency); motoken's
side (`agent collect`, `agent dataset edit`, and its reader, for the values to compare) runs with
motoken's venv in subprocesses. See NOTE.md for the setup and the results.

    HF_HUB_OFFLINE=1 /work/lerobot-venv/bin/python experiments/lerobot_compat/check.py \
        --work /tmp/lerobot_compat [--video-backend pyav] [--extra-columns] [--also DIR ...]

`--also DIR` adds a dataset made elsewhere (`agent record`, a takeover run) and four edits of it.

Per dataset it prints one JSON object: `pass`, the `stage` that failed and the `error`. The checks:
LeRobotDatasetMetadata and LeRobotDataset open it offline; len(), episode count, fps, cameras,
the tasks table and every episode's length / index range / task equal motoken's reader's. Every
frame of every episode (`ds[i]`) is then compared with the episode of the same seed in the
*collected* dataset it came from (so an edit that misplaced a video segment or a row shows up
even if motoken's reader agreed with LeRobot's): state, action, next.success, env state and
expert action exactly, timestamp, indices, the task string, and the decoded frame of every
camera (max |diff| reported, at most MAX_PIXEL_DIFF of 255); and every non-video column, new
ones included, equals what the dataset's own data file stores (`columns` in the report). Where
a source's seeds are not unique (-1 for hand-recorded episodes, say) its episodes and their
edits are compared with their own files only, and `compared_to` says so. Then a
`delta_timestamps` load (action chunks, a past camera frame) and a DataLoader batch.
`control/shifted_video`, a copy whose episodes table points one camera one frame late, must
FAIL (the check can catch that). `policy_inputs`: the features LeRobot's trainers would feed a
policy (`dataset_to_policy_features`). Exit status 1 if a dataset fails that should pass, or the
control passes.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch
from build import Made, also, build, motoken, outputs, shifted_video_copy
from extra_columns import PROBES, variants
from extra_columns import values as extra_values
from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
from lerobot.datasets.utils import dataset_to_policy_features

HERE = Path(__file__).resolve().parent
MAX_PIXEL_DIFF = 2  # of 255: two builds of FFmpeg may round yuv->rgb differently
# Per-frame columns compared exactly when the dataset has them.
EXACT = ("observation.state", "action", "next.success", "observation.environment_state",
         "expert_action")
CONTROL = "control/shifted_video"


class Stage:
    """Which check is running, for the report when one raises."""

    name = "start"


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


# source name -> seed -> (that source's arrays, the episode's index there); None where the
# source's seeds do not tell its episodes apart
Truth = dict[str, dict[int, tuple[Any, int]] | None]


def register(truth: Truth, name: str, ref: dict[str, Any], arrays: Any) -> None:
    seeds = [e["seed"] for e in ref["episodes"]]
    unique = len(set(seeds)) == len(seeds) and min(seeds) >= 0
    truth[name] = {e["seed"]: (arrays, e["index"]) for e in ref["episodes"]} if unique else None


def collected(truth: Truth, sources: tuple[str, ...], seed: int) -> tuple[Any, int] | None:
    """The collected episode with `seed` among `sources` (None: the seeds cannot tell)."""
    hits = [t[seed] for s in sources if (t := truth.get(s)) is not None and seed in t]
    expect(len(hits) <= 1, f"seed {seed} is in more than one of {sources}")
    return hits[0] if hits else None


def check_frames(ds: LeRobotDataset, ref: dict[str, Any], own: Any, truth: Truth,
                 made: Made, extra: bool, result: dict[str, Any]) -> None:
    """Every frame of every episode against the collected episode of the same seed and against
    the dataset's own stored columns; the largest pixel difference goes in `result`.
    `extra`: also the values extra_columns.py wrote."""
    worst, by_seed = 0.0, 0
    for e in ref["episodes"]:
        k, first = e["index"], e["from_index"]
        hit = collected(truth, made.sources, e["seed"])
        arrays, j = hit if hit is not None else (own, k)
        by_seed += hit is not None
        expect(len(arrays[f"{j}/action"]) == e["length"], f"episode {k}: length {e['length']}, "
               f"collected {len(arrays[f'{j}/action'])}")
        stored = {key.split("/col/")[1]: own[key] for key in own.files
                  if key.startswith(f"{k}/col/")}
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
            for key, value in [*want.items(), *((c, v[t]) for c, v in stored.items())]:
                theirs = item[key].numpy().reshape(np.shape(value))
                expect(np.array_equal(theirs, value),
                       f"episode {k} frame {t}: {key} {theirs} != {value}")
            for cam in ref["camera_keys"]:
                worst = max(worst, pixel_diff(item[cam], arrays[f"{j}/{cam}"][t],
                                              f"episode {k} frame {t}: {cam}"))
    result["columns"] = sorted(stored)
    result["compared_to"] = {"collected episode (by seed)": by_seed,
                             "its own files only": ref["num_episodes"] - by_seed}
    result["max_pixel_diff"] = worst


def pixel_diff(img: torch.Tensor, mine: np.ndarray, what: str) -> float:
    """Largest |diff| (of 255) between LeRobot's (3, H, W) float frame and an (H, W, 3) uint8."""
    expect(tuple(img.shape) == (3, *mine.shape[:2]), f"{what}: shape {tuple(img.shape)}")
    diff = float(np.abs((img.numpy().transpose(1, 2, 0) * 255).round() - mine).max())
    expect(diff <= MAX_PIXEL_DIFF, f"{what} differs from motoken's decode of the collected "
                                   f"episode by up to {diff}/255")
    return diff


def check_training_access(root: Path, name: str, backend: str, ref: dict[str, Any],
                          own: Any) -> None:
    """Action chunks and a past camera frame by `delta_timestamps`, then a DataLoader batch."""
    fps, cam = ref["fps"], ref["camera_keys"][0]
    chunked = LeRobotDataset(f"local/{name}", root=root, video_backend=backend,
                             delta_timestamps={"action": [i / fps for i in range(10)],
                                               cam: [-2 / fps, 0.0]})
    last = ref["episodes"][-1]
    k = last["index"]
    t = min(5, last["length"] - 1)
    item = chunked[last["from_index"] + t]
    actions = own[f"{k}/action"]
    n = min(10, last["length"] - t)
    expect(np.array_equal(item["action"][:n].numpy(), actions[t:t + n]), "action chunk")
    expect(item["action_is_pad"].tolist() == [False] * n + [True] * (10 - n), "action padding")
    pixel_diff(item[cam][0], own[f"{k}/{cam}"][max(t - 2, 0)], f"{cam} at t-2")
    batch = next(iter(torch.utils.data.DataLoader(chunked, batch_size=8, shuffle=True)))
    expect(tuple(batch["action"].shape) == (8, 10, actions.shape[1]), "batch action shape")


def check_one(name: str, made: Made, python: str, backend: str, refs: Path,
              truth: Truth, ref_root: Path | None = None) -> dict[str, Any]:
    """Load `made` with LeRobot and compare; registers its episodes in `truth` if it is a
    source. `ref_root`: where motoken's reader takes what to compare with (default its own)."""
    result: dict[str, Any] = {"dataset": name, "pass": False}
    stage = Stage()
    try:
        stage.name = "motoken reader"
        ref, own = reference(python, ref_root or made.path, refs / name.replace("/", "__"))
        if made.sources == (name,):
            register(truth, name, ref, own)
        result |= {"episodes": ref["num_episodes"], "frames": ref["num_frames"],
                   "tasks": len(ref["tasks"]), "cameras": len(ref["camera_keys"])}
        stage.name = "LeRobotDatasetMetadata"
        meta = LeRobotDatasetMetadata(f"local/{name}", root=made.path)
        stage.name = "LeRobotDataset"
        ds = LeRobotDataset(f"local/{name}", root=made.path, video_backend=backend)
        stage.name = "metadata vs motoken"
        check_meta(meta, ds, ref)
        stage.name = "frames vs collected episode"
        check_frames(ds, ref, own, truth, made, name.startswith("extra/"), result)
        stage.name = "delta_timestamps + DataLoader"
        check_training_access(made.path, name, backend, ref, own)
        types = dataset_to_policy_features(meta.features)
        result["policy_inputs"] = sorted(k for k, f in types.items()
                                         if f.type.name in ("STATE", "ENV", "VISUAL"))
        result["pass"] = True
    except Exception as e:  # the report says which stage and why; the run goes on
        result |= {"stage": stage.name, "error": describe(e)[:1500],
                   "where": traceback.format_exc().strip().splitlines()[-3][:300]}
    return result


def describe(e: BaseException | None) -> str:
    """`e` and the exceptions it was raised from (HF datasets wraps the real cause)."""
    parts = []
    while e is not None and len(parts) < 4:
        parts.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
    return " <- ".join(parts)


def datasets_to_check(args: argparse.Namespace) -> dict[str, Made]:
    if args.skip_build:
        datasets = outputs(args.work)
    else:
        shutil.rmtree(args.work, ignore_errors=True)
        datasets = build(args.work, args.motoken_python, args.episodes)
    datasets |= also(args.work, args.motoken_python, args.also)
    scratch = args.work / "derived"  # remade each run
    shutil.rmtree(scratch, ignore_errors=True)
    src = datasets["src"].path
    datasets[CONTROL] = Made(shifted_video_copy(src, scratch / "shifted_video"), ("src",))
    if args.extra_columns:
        datasets |= {name: Made(path, ("src",))
                     for name, path in variants(src, scratch / "extra").items()}
    if args.only:
        datasets = {k: v for k, v in datasets.items() if k in ("src", "src_other", "src_dart")
                    or k.startswith(tuple(args.only))}
    return datasets


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/lerobot_compat"),
                   help="scratch folder for the datasets (wiped first)")
    p.add_argument("--motoken-python", default="/work/main/.venv/bin/python")
    p.add_argument("--video-backend", default="pyav", choices=("pyav", "torchcodec"))
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--skip-build", action="store_true",
                   help="reuse the collected datasets and their edits a previous run left in "
                        "--work")
    p.add_argument("--extra-columns", action="store_true",
                   help="also check copies with hand-added bool / float32 columns "
                        "(extra_columns.py)")
    p.add_argument("--also", type=Path, action="append", default=[], metavar="DIR",
                   help="also check this dataset (2+ episodes; never written to) and four edits "
                        "of it; repeatable")
    p.add_argument("--only", action="append", default=[], metavar="PREFIX",
                   help="check only datasets whose name starts with PREFIX (repeatable); the "
                        "collected sources are always checked (the others are compared to them)")
    args = p.parse_args()
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        sys.exit("set HF_HUB_OFFLINE=1: a dataset LeRobot cannot read locally must fail, not be "
                 "fetched from the hub")
    datasets = datasets_to_check(args)
    refs = args.work / "derived/refs"
    refs.mkdir(parents=True)
    results, truth = [], {}
    for name, made in datasets.items():
        # The control's own metadata is the bad part: compare it with its source's.
        ref_root = datasets["src"].path if name == CONTROL else None
        results.append(check_one(name, made, args.motoken_python, args.video_backend, refs,
                                 truth, ref_root))
        results[-1]["expected"] = ("fail" if name == CONTROL else
                                   "either (a probe)" if name in PROBES else "pass")
        print(json.dumps(results[-1]), flush=True)
    versions = {m: importlib.metadata.version(m)
                for m in ("lerobot", "torch", "torchvision", "av", "torchcodec", "datasets")}
    run = {"video_backend": args.video_backend, "versions": versions, "results": results}
    (args.work / "results.json").write_text(json.dumps(run, indent=1))
    wrong = [r["dataset"] for r in results if r["expected"] != "either (a probe)"
             and r["pass"] != (r["expected"] == "pass")]
    print(f"{sum(r['pass'] for r in results)}/{len(results)} datasets read by LeRobot; "
          + (f"NOT AS EXPECTED: {wrong}" if wrong else "all as expected"))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
