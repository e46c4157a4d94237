"""`--camera NAME=SOURCE[@WxH][:FPS]`: the grammar, its checks, and the camera registry.

    wrist=opencv:/dev/video2@640x480:30   a V4L2 device at 640x480, 30 fps
    front=opencv:0                        device index 0, size and fps by default (below)
    top=opencv:clip.mp4@224x224:15        a video file, paced at 15 fps and looped
    cam=opencv:rtsp://10.0.0.5:554/s@640x480:15   a URL: its fps needs the size before it
    front=realsense:123456789012:30       a RealSense by serial

SOURCE is KIND:ARG with KIND one of `CAMERA_KINDS`. `@WxH` is width x height in pixels;
`:FPS` is frames per second. What is left out comes from the driver's camera of the same
name (an override keeps the shape the policy was trained on), else `CameraSpec`'s defaults.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from hw_bridge.cameras.base import Camera
from hw_bridge.errors import CameraSpecError
from sims.robots.description import CameraSpec

GRAMMAR = "NAME=KIND:ARG[@WxH][:FPS], e.g. wrist=opencv:/dev/video2@640x480:30"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
SUFFIX = re.compile(r"(?P<arg>.+?)(?:@(?P<w>\d+)x(?P<h>\d+))?(?::(?P<fps>\d+(?:\.\d+)?))?")
MAX_SIDE = 4096
MAX_FPS = 240.0


def _opencv(spec: CameraSpec) -> Camera:
    from hw_bridge.cameras.opencv import OpenCVCamera

    return OpenCVCamera(spec)


def _realsense(spec: CameraSpec) -> Camera:
    from hw_bridge.cameras.realsense import RealSenseCamera

    return RealSenseCamera(spec)


CAMERA_KINDS: dict[str, Callable[[CameraSpec], Camera]] = {"opencv": _opencv,
                                                           "realsense": _realsense}
ARG_HELP = {"opencv": "INDEX, /dev/videoN, a video file path or a URL",
            "realsense": "the camera's serial number"}


def _unknown_kind(kind: str, text: str) -> CameraSpecError:
    known = list(CAMERA_KINDS)
    close = difflib.get_close_matches(kind, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    sim = (" (`sim` cameras are rendered by the sim driver itself: --robot sim:TASK)"
           if kind == "sim" else "")
    return CameraSpecError(f"camera {text!r}: unknown source kind {kind!r}{sim}; known: "
                           f"{', '.join(f'{k}:ARG' for k in known)}{hint}")


def parse_camera(text: str, defaults: Mapping[str, CameraSpec] | None = None) -> CameraSpec:
    """Parse one `--camera` value; `defaults` maps names to the driver's own cameras."""
    name, eq, source = text.partition("=")
    if not eq or not source:
        raise CameraSpecError(f"camera {text!r} has no source; expected {GRAMMAR}")
    if not NAME.fullmatch(name):
        raise CameraSpecError(f"camera name {name!r} must be a letter then letters, digits or "
                              "_ (at most 32): it becomes an observation key")
    kind, colon, rest = source.partition(":")
    if kind not in CAMERA_KINDS:
        raise _unknown_kind(kind, text)
    m = SUFFIX.fullmatch(rest) if colon else None
    if m is None:
        raise CameraSpecError(f"camera {text!r}: {kind} needs {kind}:ARG with ARG "
                              f"{ARG_HELP[kind]}; expected {GRAMMAR}")
    arg, fps = m["arg"], m["fps"]
    if "://" in arg and fps is not None and m["w"] is None:  # ":8080" is a URL's port
        arg, fps = f"{arg}:{fps}", None
    base = (defaults or {}).get(name) or CameraSpec(name)
    spec = replace(base, name=name, source=f"{kind}:{arg}")
    if m["w"] is not None:
        w, h = int(m["w"]), int(m["h"])
        if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
            raise CameraSpecError(f"camera {text!r}: size {w}x{h} must be WxH with each side "
                                  f"1..{MAX_SIDE}")
        spec = replace(spec, width=w, height=h)
    if fps is not None:
        if not 0 < float(fps) <= MAX_FPS:
            raise CameraSpecError(f"camera {text!r}: fps {fps} must be in (0, {MAX_FPS:g}]")
        spec = replace(spec, fps=float(fps))
    if kind == "realsense" and not arg.isalnum():
        raise CameraSpecError(f"camera {text!r}: a RealSense is named by its serial number "
                              f"(letters and digits), got {arg!r}")
    return spec


def parse_cameras(texts: Iterable[str],
                  defaults: Mapping[str, CameraSpec] | None = None) -> list[CameraSpec]:
    """Parse every `--camera`; a name given twice is an error (which one would win?)."""
    specs = [parse_camera(t, defaults) for t in texts]
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CameraSpecError(f"camera name(s) {twice} given more than once; one --camera "
                              "per name")
    return specs


def make_camera(spec: CameraSpec) -> Camera:
    """The (not yet connected) camera for `spec.source`."""
    kind = spec.source.partition(":")[0]
    if kind not in CAMERA_KINDS:
        raise _unknown_kind(kind, f"{spec.name}={spec.source}")
    return CAMERA_KINDS[kind](spec)
