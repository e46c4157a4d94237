"""`agent dataset info|show`: what a recorded dataset holds, and what an episode looks like."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from agent.commands import BadInput

SHEET_FRAMES = 8  # frames per camera on a contact sheet


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="inspect a recorded dataset (info, show)")
    dsub = p.add_subparsers(dest="dataset_command", required=True, metavar="SUBCOMMAND")
    info = dsub.add_parser("info", help="episodes, frames, fps, features, size on disk")
    info.add_argument("dataset", type=Path, metavar="DIR")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=info_main)
    show = dsub.add_parser("show", help="an episode as a contact sheet (.png) or video (.mp4), "
                                        "actions plotted under the frames")
    show.add_argument("dataset", type=Path, metavar="DIR")
    show.add_argument("--episode", type=int, required=True, metavar="K")
    show.add_argument("--out", type=Path, required=True, metavar="FILE.png|FILE.mp4")
    show.set_defaults(func=show_main)


def _open(path: Path) -> Any:
    from dataset import DatasetError, LeRobotDatasetReader

    try:
        return LeRobotDatasetReader(path)
    except DatasetError as e:
        raise BadInput(str(e)) from None


def summary(ds: Any) -> dict[str, Any]:
    """The `info --json` object."""
    sizes: dict[str, int] = {}
    for p in ds.root.rglob("*"):
        kind = p.relative_to(ds.root).parts[0]
        if p.is_file() and not kind.startswith("."):  # .lock, a crash's .staging
            sizes[kind] = sizes.get(kind, 0) + p.stat().st_size
    successes = [bool(e.get("success", False)) for e in ds.episodes]
    return {
        "path": str(ds.root), "codebase_version": ds.info["codebase_version"],
        "robot_type": ds.info.get("robot_type"), "episodes": ds.num_episodes,
        "frames": ds.num_frames, "fps": ds.fps, "duration_s": round(ds.num_frames / ds.fps, 2),
        "tasks": len(ds.tasks),
        "success_rate": round(float(np.mean(successes)), 4) if successes else None,
        "recording": ds.recording,
        "expert_labels": ds.has_expert_action,
        "action_noise": ds.recording.get("action_noise"),
        "features": {k: {"dtype": f["dtype"], "shape": list(f["shape"])}
                     for k, f in ds.features.items()},
        "video_codec": next((f["info"].get("video.codec") for f in ds.features.values()
                             if f["dtype"] == "video"), None),
        "size_bytes": sum(sizes.values()), "size_bytes_by_folder": sizes,
        "bytes_per_frame": round(sum(sizes.values()) / max(ds.num_frames, 1), 1),
    }


def info_main(args: argparse.Namespace) -> int:
    s = summary(_open(args.dataset))
    if args.json:
        print(json.dumps(s))
        return 0
    rate = "n/a" if s["success_rate"] is None else f"{s['success_rate']:.0%}"
    lines = [f"{s['path']}: LeRobotDataset {s['codebase_version']}, robot {s['robot_type']}",
             f"  episodes {s['episodes']}, frames {s['frames']}, fps {s['fps']} "
             f"({s['duration_s']:.1f} s), tasks {s['tasks']}, success {rate}",
             f"  recorded: {s['recording'].get('env', '?')} with policy "
             f"{s['recording'].get('policy', '?')}",
             f"  {_labels_line(s)}",
             f"  size on disk {_mib(s['size_bytes'])} ({s['bytes_per_frame']:.0f} bytes/frame): "
             + ", ".join(f"{k} {_mib(v)}" for k, v in sorted(s["size_bytes_by_folder"].items())),
             "  features:"]
    for name, f in s["features"].items():
        extra = f" ({s['video_codec']})" if f["dtype"] == "video" else ""
        lines.append(f"    {name:28s} {f['dtype']:8s} {tuple(f['shape'])}{extra}")
    print("\n".join(lines))
    return 0


def _labels_line(s: dict[str, Any]) -> str:
    if not s["expert_labels"]:
        return "expert labels: no (action = the policy's own, as applied)"
    noise = s["action_noise"] or {}
    return (f"expert labels: yes (expert_action); executed with action noise std "
            f"{noise.get('pos_std_m', '?')} m (dx dy dz), {noise.get('rot_std_rad', '?')} rad "
            f"(drx dry drz), none on the gripper")


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def show_main(args: argparse.Namespace) -> int:
    from dataset import DatasetError

    ds = _open(args.dataset)
    suffix = args.out.suffix.lower()
    if suffix not in (".png", ".mp4"):
        raise BadInput(f"--out must end in .png (contact sheet) or .mp4, got {args.out}")
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never open a window
    except ImportError:
        raise BadInput("`agent dataset show` needs matplotlib (pip install "
                         "matplotlib)") from None
    try:
        ep = ds.episode(args.episode)
        frames = {k: ds.frames(args.episode, k) for k in ds.camera_keys}
    except DatasetError as e:
        raise BadInput(str(e)) from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    names = ds.features["action"].get("names") or [f"a{i}" for i in range(ep.action.shape[1])]
    title = (f"episode {ep.index} (seed {ep.seed}): {ep.task} - "
             f"{'success' if ep.success else 'failure'}, {ep.length} frames")
    if suffix == ".png":
        from dataset.show import contact_sheet

        contact_sheet(frames, ep.action, ep.timestamp, names, title, args.out)
    else:
        from dataset.show import episode_video

        episode_video(frames, ep.action, ep.timestamp, names, title, ds.fps, args.out)
    print(f"wrote {args.out}")
    return 0
