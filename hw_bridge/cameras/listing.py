"""`agent bridge cameras`: what is attached to this PC, as a table (cf. LeRobot's find-cameras).

OpenCV: every /dev/video* node and the indices 0..N-1, each opened once for its native mode.
RealSense: every device `pyrealsense2` sees, by serial. A library that is not installed is
said so in the output, with the extra that brings it; so is finding nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hw_bridge.errors import CameraOpenError

COLUMNS = ("kind", "id", "backend", "width", "height", "fps", "note")
NONE_FOUND = ("no cameras found. Check: is the camera plugged in (`ls /dev/video*`, `lsusb`)? "
              "may this user open it (the `video` group)? is the library for it installed "
              "(above)?")


def _table(rows: list[dict[str, Any]]) -> str:
    cells = [COLUMNS] + [tuple(str(r.get(c, "")) for c in COLUMNS) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)


def list_cameras(max_index: int = 8, sources: Sequence[str] = ()) -> str:
    """The report `agent bridge cameras` prints: library notes, then a table or NONE_FOUND."""
    from hw_bridge.cameras.opencv import find_opencv, probe
    from hw_bridge.cameras.realsense import find_realsense

    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for label, find in (("OpenCV", lambda: find_opencv(max_index)),
                        ("RealSense", find_realsense)):
        try:
            found = find()
        except CameraOpenError as exc:  # the library is missing: say which extra brings it
            notes.append(f"{label}: not searched: {exc}")
            continue
        notes.append(f"{label}: {len(found)} found")
        rows += found
    for source in sources:
        kind, _, arg = source.partition(":")
        if kind != "opencv" or not arg:
            notes.append(f"--try {source!r}: only opencv:ARG sources can be tried")
            continue
        try:
            info = probe(int(arg) if arg.isdigit() else arg)
        except CameraOpenError as exc:
            notes.append(f"--try {source!r}: {exc}")
            continue
        rows.append(info or {"kind": "opencv", "id": arg, "note": "cannot open"})
    body = _table(rows) if rows else NONE_FOUND
    return "\n".join(notes + ["", body])
