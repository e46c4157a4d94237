"""OpenCV cameras: a V4L2/USB device (index or /dev/videoN), a video file, or a stream URL.

    opencv:0 | opencv:/dev/video2     a device; it delivers at its own rate (V4L2 on Linux)
    opencv:clip.mp4                   a video file, paced at the configured fps and looped
                                      (it stands in for a camera, and a camera never ends)
    opencv:rtsp://HOST/stream         a stream (OpenCV's FFmpeg); it delivers at its own rate

Frames are converted to RGB and resized to the configured height x width (INTER_AREA). The
`cv2` module (opencv-python-headless, extra `cameras`) is imported on connect only, so a robot
PC without cameras never needs it.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np

from hw_bridge.cameras.base import Camera
from hw_bridge.errors import CameraError, CameraOpenError
from sims.robots.description import CameraSpec

log = logging.getLogger(__name__)
SourceKind = Literal["device", "file", "url"]
DEVICE_HINT = ("check that it is plugged in (`agent bridge cameras` lists what is attached), "
               "that this user may open it (the `video` group owns /dev/video*), and that no "
               "other program holds it")


def import_cv2() -> ModuleType:
    """`cv2`, or a CameraOpenError saying which extra to install."""
    try:
        cv2 = importlib.import_module("cv2")
    except ImportError:
        raise CameraOpenError("OpenCV cameras need the `cv2` module: pip install "
                              "'motoken[cameras]' (opencv-python-headless)") from None
    # Colour conversion and resizing run on the calling (capture) thread, which the server
    # makes real-time: OpenCV's own worker threads would not be, and a loaded machine starves
    # them, and with them the camera's pace.
    cv2.setNumThreads(1)
    return cv2


def classify(target: str) -> tuple[SourceKind, int | str]:
    """What an `opencv:` argument names: ("device", index or path), ("file", path), ("url", s)."""
    if target.isdigit():
        return "device", int(target)
    if target.startswith("/dev/"):
        return "device", target
    if "://" in target:
        return "url", target
    return "file", target


class OpenCVCamera(Camera):
    """A camera read through `cv2.VideoCapture`; see the module docstring for sources."""

    def __init__(self, spec: CameraSpec) -> None:
        super().__init__(spec)
        self.kind, self.target = classify(spec.source.removeprefix("opencv:"))
        self.paced = self.kind == "file"
        self.loops = 0  # times a file source restarted from its first frame
        self.native: tuple[int, int, float] = (0, 0, 0.0)  # width, height, fps as opened
        self._cap: Any = None

    def _open(self) -> None:
        cv2 = import_cv2()
        if self.kind == "file" and not Path(self.target).is_file():
            raise CameraOpenError(f"camera {self.name!r}: no video file at {self.target!r} "
                                  f"(source {self.spec.source!r}); check the path, or write "
                                  "opencv:INDEX or opencv:/dev/videoN for a device")
        if self.kind == "device":
            backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        else:
            backend = cv2.CAP_FFMPEG
        # Decode on the capture thread too (FFmpeg's decoder threads are not real-time).
        params = [] if self.kind == "device" else [cv2.CAP_PROP_N_THREADS, 1]
        cap = cv2.VideoCapture(self.target, backend, params)
        if not cap.isOpened():
            cap.release()
            hint = {"device": DEVICE_HINT,
                    "file": "check that it is a video OpenCV's FFmpeg can decode",
                    "url": "check that the stream is reachable from this PC and playing"}
            raise CameraOpenError(f"camera {self.name!r}: OpenCV cannot open "
                                  f"{self.spec.source!r}; {hint[self.kind]}")
        if self.kind == "device":  # ask; the device may pick its nearest mode
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.spec.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.spec.height)
            cap.set(cv2.CAP_PROP_FPS, self.spec.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # a queued frame is an old frame
        self.native = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                       int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), float(cap.get(cv2.CAP_PROP_FPS)))
        if self.kind == "device" and self.native[2] and abs(self.native[2] - self.spec.fps) > 0.5:
            log.warning("camera %r: asked %s for %g fps, it reports %g; frames arrive at the "
                        "device's rate", self.name, self.spec.source, self.spec.fps,
                        self.native[2])
        self._cv2, self._cap = cv2, cap

    def _grab(self) -> tuple[np.ndarray, float]:
        cv2, cap = self._cv2, self._cap
        ok = cap.grab()
        t = time.monotonic()  # the frame is out of the device (or decoder) now
        if not ok and self.kind == "file":  # end of the file: start it again
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self.loops += 1
            ok = cap.grab()
            t = time.monotonic()
        if not ok:
            what = "the video file cannot be read from its start" if self.kind == "file" else (
                "no frame (unplugged, or the stream ended)")
            raise CameraError(f"camera {self.name!r} ({self.spec.source}): {what}")
        ok, bgr = cap.retrieve()
        if not ok or bgr is None:
            raise CameraError(f"camera {self.name!r} ({self.spec.source}): frame not decodable")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if rgb.shape[:2] != (self.spec.height, self.spec.width):
            rgb = cv2.resize(rgb, (self.spec.width, self.spec.height),
                             interpolation=cv2.INTER_AREA)
        return rgb, t

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def probe(target: int | str, cv2: ModuleType | None = None) -> dict[str, Any] | None:
    """Open `target` once and read its native mode; None if OpenCV cannot open it."""
    cv2 = cv2 or import_cv2()
    kind = "device" if isinstance(target, int) or str(target).startswith("/dev/") else "file"
    backend = cv2.CAP_V4L2 if kind == "device" and sys.platform.startswith("linux") else (
        cv2.CAP_ANY if kind == "device" else cv2.CAP_FFMPEG)
    cap = cv2.VideoCapture(target, backend)
    try:
        if not cap.isOpened():
            return None
        ok = cap.grab()
        return {"kind": "opencv", "id": str(target), "backend": cap.getBackendName(),
                "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                "fps": round(float(cap.get(cv2.CAP_PROP_FPS)), 2),
                "note": "" if ok else "opens but gives no frame"}
    finally:
        cap.release()


def find_opencv(max_index: int = 8) -> list[dict[str, Any]]:
    """Every /dev/video* node, then indices 0..max_index-1 not already seen, that opens."""
    cv2 = import_cv2()
    try:  # a missing index is expected while probing; keep OpenCV's warnings off the table
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:
        pass
    nodes = sorted(str(p) for p in Path("/dev").glob("video*"))
    found = [info for node in nodes if (info := probe(node, cv2))]
    seen = {f"/dev/video{i}" for i in range(max_index)} & set(nodes)
    for i in range(max_index):
        if f"/dev/video{i}" not in seen and (info := probe(i, cv2)):
            found.append(info)
    return found
