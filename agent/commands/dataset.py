"""`agent dataset info|show|edit`: what a recorded dataset holds, what an episode looks like, and
new datasets made from recorded ones (delete episodes, split, merge, rename a task)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from agent.commands import BadInput

SHEET_FRAMES = 8  # frames per camera on a contact sheet
_LIST = "(comma-separated indices; A-B is A to B inclusive)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataset", help="inspect (info, show) or edit a recorded dataset")
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
    _register_edit(dsub)


def _register_edit(dsub: argparse._SubParsersAction) -> None:
    p = dsub.add_parser("edit", help="write a new dataset from recorded ones: delete episodes, "
                                     "split, merge, rename a task (never edits in place)")
    esub = p.add_subparsers(dest="edit_command", required=True, metavar="OPERATION")
    out_help = "the new dataset's folder (must not exist, or be empty)"
    d = esub.add_parser("delete", help="a copy without some episodes")
    d.add_argument("dataset", type=Path, metavar="DIR")
    d.add_argument("--episodes", required=True, metavar="LIST", help=f"e.g. 0,3,7-9 {_LIST}")
    d.add_argument("--out", type=Path, required=True, metavar="DIR", help=out_help)
    d.set_defaults(func=edit_delete_main)
    s = esub.add_parser("split", help="OUT/<name>/ for each split (fractions or episode lists)")
    s.add_argument("dataset", type=Path, metavar="DIR")
    s.add_argument("--split", action="append", required=True, metavar="NAME=SPEC",
                   help="repeat per split; SPEC a fraction (train=0.8: consecutive episodes) "
                        f"or an episode list (val=0,5-7 {_LIST}); all fractions or all lists")
    s.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder that will hold one dataset per split (must not exist, or "
                        "be empty)")
    s.set_defaults(func=edit_split_main)
    m = esub.add_parser("merge", help="the episodes of several datasets (same features, fps, "
                                      "cameras, robot) in one, in the order given")
    m.add_argument("datasets", type=Path, nargs="+", metavar="DIR")
    m.add_argument("--out", type=Path, required=True, metavar="DIR", help=out_help)
    m.set_defaults(func=edit_merge_main)
    r = esub.add_parser("rename-task", help="give episodes a new task (instruction) string")
    r.add_argument("dataset", type=Path, metavar="DIR")
    r.add_argument("--to", required=True, metavar="TEXT", help="the new task")
    r.add_argument("--task", metavar="TEXT", help="only episodes with this task (default: any)")
    r.add_argument("--episodes", metavar="LIST", help=f"only these episodes {_LIST}")
    r.add_argument("--out", type=Path, required=True, metavar="DIR", help=out_help)
    r.set_defaults(func=edit_rename_main)


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


# -- edit -----------------------------------------------------------------------------------------
def parse_episodes(text: str, what: str = "--episodes") -> list[int]:
    """'0,3,7-9' -> [0, 3, 7, 8, 9]; BadInput for anything else."""
    out: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not (lo.isdigit() and (not dash or hi.isdigit())):
            raise BadInput(f"{what}: {part.strip()!r} in {text!r} is not an episode index or "
                           f"range A-B {_LIST}")
        first, last = int(lo), int(hi) if dash else int(lo)
        if last < first:
            raise BadInput(f"{what}: range {part.strip()!r} runs backwards")
        out.extend(range(first, last + 1))
    return out


def parse_splits(specs: list[str], num_episodes: int) -> dict[str, list[int]]:
    """['train=0.8', 'val=0.2'] or ['a=0-3', 'b=4,5'] -> split name -> episode indices."""
    from dataset.edit import fraction_splits

    named: dict[str, str] = {}
    for spec in specs:
        name, eq, value = spec.partition("=")
        if not eq or not name or not value:
            raise BadInput(f"--split {spec!r} is not NAME=FRACTION or NAME=EPISODES")
        if name in named:
            raise BadInput(f"--split {name!r} is given twice")
        named[name] = value
    kinds = {"." in v for v in named.values()}
    if kinds == {True}:
        try:
            fractions = {n: float(v) for n, v in named.items()}
        except ValueError as e:
            raise BadInput(f"--split: {e}") from None
        return _edit_call(fraction_splits, num_episodes, fractions)
    if kinds == {False}:
        return {n: parse_episodes(v, f"--split {n}") for n, v in named.items()}
    raise BadInput(f"--split: give every split a fraction (0.8) or every split an episode "
                   f"list (0-3), not a mix: {specs}")


def _edit_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Runs a dataset.edit function; what it refuses becomes one `error:` line (exit 2)."""
    from dataset import DatasetError

    try:
        return fn(*args, **kwargs)
    except DatasetError as e:
        raise BadInput(str(e)) from None


def _wrote(ds: Any) -> str:
    return (f"wrote {ds.root}: {ds.num_episodes} episodes, {ds.num_frames} frames, "
            f"{len(ds.tasks)} task(s)")


def edit_delete_main(args: argparse.Namespace) -> int:
    from dataset.edit import delete_episodes

    episodes = parse_episodes(args.episodes)
    print(_wrote(_edit_call(delete_episodes, args.dataset, args.out, episodes)))
    return 0


def edit_split_main(args: argparse.Namespace) -> int:
    from dataset.edit import split

    splits = parse_splits(args.split, _open(args.dataset).num_episodes)
    for name, ds in _edit_call(split, args.dataset, args.out, splits).items():
        print(f"{name}: {_wrote(ds)}")
    return 0


def edit_merge_main(args: argparse.Namespace) -> int:
    from dataset.edit import merge

    print(_wrote(_edit_call(merge, args.datasets, args.out)))
    return 0


def edit_rename_main(args: argparse.Namespace) -> int:
    from dataset.edit import rename_task

    episodes = None if args.episodes is None else parse_episodes(args.episodes)
    print(_wrote(_edit_call(rename_task, args.dataset, args.out, args.to, task=args.task,
                            episodes=episodes)))
    return 0
