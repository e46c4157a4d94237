"""Camera test doubles: a camera whose read blocks on demand, and pyrealsense2's API surface.

Only the library boundary is faked: `StallingCamera` is a `Camera` subclass (the capture
thread, slot and rig are the real ones), and `fake_pyrealsense2` stands in for the module that
`RealSenseCamera` imports, with the calls it makes.
"""

from __future__ import annotations

import threading
import time
import types

import numpy as np

from hw_bridge.cameras.base import Camera
from sims.robots.description import CameraSpec


class StallingCamera(Camera):
    """Frames of a constant colour at spec.fps; while `stall` is set, a read blocks (as a
    USB camera's read does when the device hangs) until it is cleared or the camera closes."""

    paced = True

    def __init__(self, spec: CameraSpec) -> None:
        super().__init__(spec)
        self.stall = threading.Event()
        self.unblock = threading.Event()
        self.blocked = threading.Event()  # a read is blocked right now
        self.released = False

    def _open(self) -> None:
        self.unblock.clear()

    def _grab(self) -> tuple[np.ndarray, float]:
        while self.stall.is_set() and not self.unblock.is_set():
            self.blocked.set()
            time.sleep(0.01)
        self.blocked.clear()
        return np.full((self.spec.height, self.spec.width, 3), 7, np.uint8), time.monotonic()

    def _release(self) -> None:
        self.released = True

    def close(self, timeout_s: float = 1.0) -> None:
        self.unblock.set()  # a hung device read returns once the handle is torn down
        super().close(timeout_s)


class FakeFrame:
    def __init__(self, image: np.ndarray, ts_ms: float, domain: str) -> None:
        self.image, self.ts_ms, self.domain = image, ts_ms, domain

    def __bool__(self) -> bool:
        return True

    def get_data(self) -> np.ndarray:
        return self.image

    def get_timestamp(self) -> float:
        return self.ts_ms

    def get_frame_timestamp_domain(self) -> str:
        return self.domain


def fake_pyrealsense2(serials: dict[str, tuple[int, int, int]], domain: str = "system_time",
                      latency_s: float = 0.015) -> types.ModuleType:
    """A `pyrealsense2` with cameras `serial -> (width, height, fps)` delivering RGB frames
    stamped `latency_s` before they are handed over, on the wall clock (`system_time`)."""
    rs = types.ModuleType("pyrealsense2")
    rs.stream = types.SimpleNamespace(color="color", depth="depth")
    rs.format = types.SimpleNamespace(rgb8="rgb8")
    rs.timestamp_domain = types.SimpleNamespace(global_time="global_time",
                                                system_time="system_time",
                                                hardware_clock="hardware_clock")
    rs.camera_info = types.SimpleNamespace(serial_number="serial", name="name")
    rs.started = []  # (serial, requested stream) per pipeline.start, for the tests

    class config:  # noqa: N801  (the library's own spelling)
        def enable_device(self, serial: str) -> None:
            self.serial = serial

        def enable_stream(self, stream, width, height, fmt, fps) -> None:
            self.request = (stream, width, height, fmt, fps)

    class pipeline:  # noqa: N801
        def start(self, cfg: config) -> None:
            if cfg.serial not in serials:
                raise RuntimeError(f"No device connected with serial {cfg.serial}")
            self.mode, self.n = serials[cfg.serial], 0
            rs.started.append((cfg.serial, cfg.request))

        def wait_for_frames(self, timeout_ms: int = 5000):
            w, h, fps = self.mode
            time.sleep(1.0 / fps)
            self.n += 1
            img = np.full((h, w, 3), self.n % 256, np.uint8)
            stamp = time.time() - latency_s if domain != "hardware_clock" else 123.0
            frame = FakeFrame(img, 1e3 * stamp, domain)
            return types.SimpleNamespace(get_color_frame=lambda: frame)

        def stop(self) -> None:
            rs.stopped = True

    class _Profile:
        def __init__(self, w: int, h: int, fps: int) -> None:
            self.w, self.h, self.f = w, h, fps

        def stream_type(self) -> str:
            return "color"

        def as_video_stream_profile(self):
            return types.SimpleNamespace(width=lambda: self.w, height=lambda: self.h)

        def fps(self) -> int:
            return self.f

    class _Device:
        def __init__(self, serial: str, mode: tuple[int, int, int]) -> None:
            self.serial, self.mode = serial, mode

        def get_info(self, what: str) -> str:
            return self.serial if what == "serial" else "Intel RealSense D435 (fake)"

        def query_sensors(self):
            w, h, fps = self.mode
            profiles = [_Profile(w, h, fps), _Profile(w // 2, h // 2, fps)]
            return [types.SimpleNamespace(get_stream_profiles=lambda: profiles)]

    class context:  # noqa: N801
        def query_devices(self):
            return [_Device(s, m) for s, m in serials.items()]

    rs.config, rs.pipeline, rs.context = config, pipeline, context
    return rs
