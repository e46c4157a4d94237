"""Intel RealSense colour cameras through `pyrealsense2` (extra `realsense`, imported on connect).

    realsense:123456789012      the camera with that serial (`agent bridge cameras` lists them)

The colour stream is asked for at the configured fps in RGB at any resolution the camera
offers, then resized to the configured height x width with OpenCV. Capture times: a frame
stamped on the host's clock (timestamp domain `global_time` or `system_time`, ms on the wall
clock) is mapped onto `time.monotonic()` with the wall-clock offset of the moment it is read;
a frame stamped only by the camera's own counter (`hardware_clock`) gets its arrival time.
Not yet tried on hardware: tested against a fake of the library's API (tests/hw_bridge).
"""

from __future__ import annotations

import importlib
import time
from types import ModuleType
from typing import Any

import numpy as np

from hw_bridge.cameras.base import Camera
from hw_bridge.cameras.opencv import import_cv2
from hw_bridge.errors import CameraError, CameraOpenError
from sims.robots.description import CameraSpec

WAIT_MS = 1000  # one wait_for_frames call; a stalled camera then shows up as grab errors


def import_rs() -> ModuleType:
    """`pyrealsense2`, or a CameraOpenError saying which extra to install."""
    try:
        return importlib.import_module("pyrealsense2")
    except ImportError:
        raise CameraOpenError("RealSense cameras need `pyrealsense2`: pip install "
                              "'motoken[realsense]'") from None


class RealSenseCamera(Camera):
    """The colour stream of one RealSense camera, chosen by serial number."""

    def __init__(self, spec: CameraSpec) -> None:
        super().__init__(spec)
        self.serial = spec.source.removeprefix("realsense:")
        self._pipeline: Any = None

    def _open(self) -> None:
        rs, self._cv2 = import_rs(), import_cv2()
        pipeline, config = rs.pipeline(), rs.config()
        config.enable_device(self.serial)
        config.enable_stream(rs.stream.color, 0, 0, rs.format.rgb8, int(round(self.spec.fps)))
        try:
            pipeline.start(config)
        except RuntimeError as exc:
            raise CameraOpenError(
                f"camera {self.name!r}: RealSense {self.serial!r} did not start ({exc}); check "
                "the serial (`agent bridge cameras` lists them), that it is on a USB 3 port, "
                f"and that it offers colour at {self.spec.fps:g} fps (usually 6, 15, 30, 60)"
            ) from None
        self._rs, self._pipeline = rs, pipeline

    def _grab(self) -> tuple[np.ndarray, float]:
        try:
            frames = self._pipeline.wait_for_frames(WAIT_MS)
        except RuntimeError as exc:
            raise CameraError(f"camera {self.name!r} (realsense {self.serial}): {exc}") from None
        color = frames.get_color_frame()
        if not color:
            raise CameraError(f"camera {self.name!r} (realsense {self.serial}): a frameset "
                              "without a colour frame")
        t = self._capture_time(color)
        rgb = np.asanyarray(color.get_data())
        if rgb.shape[:2] != (self.spec.height, self.spec.width):
            rgb = self._cv2.resize(rgb, (self.spec.width, self.spec.height),
                                   interpolation=self._cv2.INTER_AREA)
        return rgb, t

    def _capture_time(self, frame: Any) -> float:
        now = time.monotonic()
        host = (self._rs.timestamp_domain.global_time, self._rs.timestamp_domain.system_time)
        if frame.get_frame_timestamp_domain() not in host:
            return now  # the camera's own counter: not comparable with any host clock
        wall_offset = time.time() - now  # wall clock minus monotonic, at this instant
        return min(now, frame.get_timestamp() / 1e3 - wall_offset)

    def _release(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None


def find_realsense() -> list[dict[str, Any]]:
    """Each attached RealSense: name, serial and its largest colour mode at the highest fps."""
    rs = import_rs()
    found = []
    for dev in rs.context().query_devices():
        modes = []
        for sensor in dev.query_sensors():
            for p in sensor.get_stream_profiles():
                if p.stream_type() == rs.stream.color:
                    v = p.as_video_stream_profile()
                    modes.append((v.width(), v.height(), p.fps()))
        w, h, fps = max(modes, key=lambda m: (m[2], m[0] * m[1])) if modes else (0, 0, 0)
        found.append({"kind": "realsense", "id": dev.get_info(rs.camera_info.serial_number),
                      "backend": dev.get_info(rs.camera_info.name), "width": w, "height": h,
                      "fps": fps, "note": f"{len(modes)} colour modes"})
    return found
