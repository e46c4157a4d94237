"""Episode videos with PyAV: encode, append (remux, no re-encode), trim, decode.

Defaults follow LeRobot's recorder: SVT-AV1, yuv420p, a keyframe every 2 frames (g=2, so a
random frame decodes from at most one frame back), crf 30, preset 12.

Every file uses one time base and frame k of an episode sits at pts `k / fps` past the episode's
`from_timestamp`, so LeRobot's timestamp lookup (tolerance 1e-4 s) finds each frame exactly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

# SVT-AV1 prints its whole configuration to stderr for every encoder it opens (twice per
# episode) and the same warnings each time; keep errors only unless the user asks for more.
os.environ.setdefault("SVT_LOG", "1")

CODECS = {"av1": "libsvtav1", "h264": "libx264"}  # --vcodec name -> FFmpeg encoder


@dataclass(frozen=True)
class VideoConfig:
    """How camera frames are encoded (one config for every camera of a dataset)."""

    codec: str = "av1"
    pix_fmt: str = "yuv420p"
    gop: int = 2
    crf: int = 30
    preset: int = 12  # SVT-AV1 speed preset (LeRobot's default); ignored for h264

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"unknown video codec {self.codec!r}; known: {sorted(CODECS)}")

    def options(self) -> dict[str, str]:
        opts = {"g": str(self.gop), "crf": str(self.crf)}
        if self.codec == "av1":
            opts["preset"] = str(self.preset)
        else:
            # One thread: a 128x128 frame is too small to split, and workers already use
            # every core; threads only add overhead (0.35 vs 0.7 ms of CPU per frame).
            opts.update(preset="veryfast", threads="1")
        return opts

    def info(self, height: int, width: int, fps: int) -> dict[str, Any]:
        """The `info` block LeRobot puts in a video feature (what `get_video_info` reads)."""
        return {"video.height": height, "video.width": width, "video.codec": self.codec,
                "video.pix_fmt": self.pix_fmt, "video.is_depth_map": False,
                "video.fps": fps, "video.channels": 3, "has_audio": False}


def encode(frames: Iterable[np.ndarray], path: Path, fps: int, cfg: VideoConfig) -> int:
    """Encode (H, W, 3) uint8 RGB frames to `path`; returns the number of frames."""
    n = 0
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(CODECS[cfg.codec], rate=fps, options=cfg.options())
        stream.pix_fmt = cfg.pix_fmt
        tb = Fraction(1, fps)
        for frame in frames:
            if n == 0:
                stream.height, stream.width = frame.shape[:2]
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = n, tb
            container.mux(stream.encode(vf))
            n += 1
        container.mux(stream.encode())  # flush the encoder's delayed frames
    return n


def append(base: Path | None, keep_until_s: float, episode: Path | None, out: Path) -> float:
    """Write `out` = `base`'s frames before `keep_until_s` + `episode`'s frames after them.

    Packets are copied, not re-encoded (as LeRobot's `concatenate_video_files`); frames of
    `base` at or past `keep_until_s` (an uncommitted tail left by a crash) are dropped.
    With `episode` None this only trims. Returns the episode's `from_timestamp` in `out`.
    """
    inputs = ([base] if base is not None else []) + ([episode] if episode is not None else [])
    with av.open(str(out), mode="w", format="mp4") as dst:
        ostream = None
        offset_s = 0.0
        last_dts = None
        for i, src_path in enumerate(inputs):
            with av.open(str(src_path)) as src:
                istream = src.streams.video[0]
                if ostream is None:
                    ostream = dst.add_stream_from_template(istream, opaque=True)
                    ostream.time_base = istream.time_base
                tb = istream.time_base
                is_base = base is not None and i == 0
                shift = round(offset_s / tb)
                for packet in src.demux(istream):
                    if packet.dts is None:  # demuxer's end-of-stream marker
                        continue
                    if is_base and packet.pts * tb >= keep_until_s - 0.5 / 1e4:
                        continue
                    packet.pts += shift
                    packet.dts += shift
                    # A one-frame h264 episode ends on dts == pts, and the next one starts one
                    # frame early (dts = pts - 1 frame): the two collide and the muxer refuses
                    # (EINVAL). Decode order is kept, and no frame's pts (its timestamp) moves.
                    if last_dts is not None and packet.dts <= last_dts:
                        packet.dts = last_dts + 1
                    last_dts = packet.dts
                    packet.stream = ostream
                    dst.mux(packet)
            if i == 0 and base is not None:
                offset_s = keep_until_s
    return keep_until_s if base is not None else 0.0


def extract(src: Path, from_s: float, to_s: float, out: Path) -> int:
    """Write `out` = the frames of `src` with `from_s <= t < to_s`, shifted to start at 0.

    Packets are copied, not re-encoded, so the frames decode bit for bit as in `src`. This needs
    the segment to start on a keyframe, as every episode of a file written by `append` does
    (each episode was encoded on its own). Returns the number of frames copied.

    Raises:
        ValueError: no frames in the range, or the first one is not a keyframe.
    """
    half_frame = 0.5 / 1e4  # LeRobot's timestamp tolerance is 1e-4 s
    n = 0
    with av.open(str(src)) as container, av.open(str(out), mode="w", format="mp4") as dst:
        istream = container.streams.video[0]
        ostream = dst.add_stream_from_template(istream, opaque=True)
        ostream.time_base = tb = istream.time_base
        shift = round(from_s / tb)
        container.seek(max(0, shift), stream=istream, backward=True)
        for packet in container.demux(istream):
            if packet.dts is None:
                continue
            t = float(packet.pts * tb)
            if t < from_s - half_frame or t >= to_s - half_frame:
                continue
            if n == 0 and not packet.is_keyframe:
                raise ValueError(f"{src}: the frame at {t:.4f} s is not a keyframe; a segment "
                                 f"that starts there cannot be copied without re-encoding")
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = ostream
            dst.mux(packet)
            n += 1
    if n == 0:
        raise ValueError(f"{src}: no frames in [{from_s}, {to_s})")
    return n


def decode(path: Path, from_s: float, to_s: float, fps: int) -> np.ndarray:
    """Frames with `from_s <= t < to_s` as (T, H, W, 3) uint8, T = round((to - from) * fps)."""
    count = round((to_s - from_s) * fps)
    out: list[np.ndarray | None] = [None] * count
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        # Seek to the keyframe at or before from_s; decode forward until to_s.
        container.seek(max(0, int(from_s / stream.time_base)), stream=stream, backward=True)
        for frame in container.decode(stream):
            k = round((float(frame.pts * stream.time_base) - from_s) * fps)
            if k >= count:
                break
            if k >= 0:
                out[k] = frame.to_ndarray(format="rgb24")
    missing = [k for k, f in enumerate(out) if f is None]
    if missing:
        raise ValueError(f"{path}: no frame at {len(missing)} timestamps in [{from_s}, {to_s}) "
                         f"(first missing frame {missing[0]})")
    return np.stack(out)  # type: ignore[arg-type]


def duration_s(path: Path) -> float:
    """Time past the last frame: (last pts + 1 frame) in seconds, 0.0 for no frames."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        last = max((p.pts for p in container.demux(stream) if p.pts is not None), default=None)
        if last is None:
            return 0.0
        rate = stream.average_rate or stream.base_rate
        return float(last * stream.time_base + 1 / rate)
