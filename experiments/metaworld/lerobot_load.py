"""Does LeRobot's own loader read the collected Meta-World dataset, and give back what motoken
wrote?

    HF_HUB_OFFLINE=1 /work/lerobot-venv/bin/python experiments/metaworld/lerobot_load.py \
        data/metaworld_mt10_500 [--episodes 0 137 250 499] [--out RESULT.json]

Runs in a venv with lerobot (experiments/lerobot_compat/NOTE.md has its setup). Checks, with
`LeRobotDatasetMetadata` and `LeRobotDataset(video_backend="pyav")`: episode and frame counts,
the task strings, then every frame of the chosen episodes (state, action, task, both cameras'
decoded images) against what motoken's own reader gives for them (dumped by this same file run
with motoken's venv: `--dump`), and one DataLoader batch. The full-dataset, every-edit check
of our own envs' datasets is experiments/lerobot_compat/check.py; this one is sized for a 40k
frame dataset on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def dump(data: Path, episodes: list[int], out: Path) -> None:
    """motoken's side (motoken's venv): the chosen episodes as its reader gives them."""
    sys.path.insert(0, str(ROOT))
    from dataset import LeRobotDatasetReader

    ds = LeRobotDatasetReader(data)
    arrays, meta = {}, {"num_episodes": ds.num_episodes, "num_frames": ds.num_frames,
                        "tasks": ds.tasks, "cameras": list(ds.camera_keys), "episodes": {}}
    for k in episodes:
        ep = ds.episode(k)
        m = ds.episode_meta(k)
        meta["episodes"][k] = {"task": ep.task, "from": int(m["dataset_from_index"]),
                               "to": int(m["dataset_to_index"])}
        arrays[f"{k}/state"], arrays[f"{k}/action"] = ep.state, ep.action
        for cam in ds.camera_keys:
            arrays[f"{k}/{cam}"] = ds.frames(k, cam)
    np.savez(out.with_suffix(".npz"), **arrays)
    out.with_suffix(".json").write_text(json.dumps(meta))


def check(data: Path, episodes: list[int], motoken_python: str) -> dict:
    """LeRobot's side: load with its classes and compare with motoken's dump."""
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata

    with tempfile.TemporaryDirectory() as tmp:
        ref = Path(tmp) / "motoken"
        subprocess.run([motoken_python, __file__, str(data), "--dump", str(ref), "--episodes",
                        *map(str, episodes)], check=True)
        own = json.loads(ref.with_suffix(".json").read_text())
        arrays = dict(np.load(ref.with_suffix(".npz")))
    meta = LeRobotDatasetMetadata("local/metaworld", root=data)
    ds = LeRobotDataset("local/metaworld", root=data, video_backend="pyav")
    out = {"episodes": meta.total_episodes, "frames": len(ds), "fps": meta.fps,
           "tasks": sorted(meta.tasks.index) if hasattr(meta.tasks, "index") else None,
           "checked_episodes": episodes, "max_image_diff": 0, "max_state_diff": 0.0,
           "max_action_diff": 0.0}
    assert meta.total_episodes == own["num_episodes"], (meta.total_episodes, own)
    assert len(ds) == own["num_frames"], (len(ds), own["num_frames"])
    checked = 0
    for k in episodes:
        e = own["episodes"][str(k)]
        for t, i in enumerate(range(e["from"], e["to"])):
            item = ds[i]
            assert int(item["episode_index"]) == k and item["task"] == e["task"]
            out["max_state_diff"] = max(out["max_state_diff"], float(np.abs(
                item["observation.state"].numpy() - arrays[f"{k}/state"][t]).max()))
            out["max_action_diff"] = max(out["max_action_diff"], float(np.abs(
                item["action"].numpy() - arrays[f"{k}/action"][t]).max()))
            for cam in own["cameras"]:
                img = (item[cam].permute(1, 2, 0).numpy() * 255).round().astype(np.int16)
                diff = int(np.abs(img - arrays[f"{k}/{cam}"][t].astype(np.int16)).max())
                out["max_image_diff"] = max(out["max_image_diff"], diff)
            checked += 1
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True)))
    out |= {"frames_compared": checked, "dataloader_batch": {
        k: list(v.shape) for k, v in batch.items() if hasattr(v, "shape")}}
    out["pass"] = out["max_state_diff"] == 0 and out["max_action_diff"] == 0 \
        and out["max_image_diff"] == 0
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path)
    p.add_argument("--episodes", type=int, nargs="+", default=[0, 137, 250, 499])
    p.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--motoken-python", default=str(ROOT / ".venv/bin/python"))
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.dump is not None:
        dump(args.data, args.episodes, args.dump)
        return 0
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        sys.exit("set HF_HUB_OFFLINE=1: a dataset LeRobot cannot read locally must fail, not be "
                 "fetched from the hub")
    result = check(args.data.resolve(), args.episodes, args.motoken_python)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
