"""Video append/trim: packets copied, frames where LeRobot's timestamp lookup expects them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dataset import video


def _clip(n: int, shift: int) -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:64]
    return np.stack([np.stack([(xx * 4 + 7 * (i + shift)) % 256, (yy * 4) % 256,
                               np.full_like(xx, 40 * (i % 6))], -1).astype(np.uint8)
                     for i in range(n)])


@pytest.mark.parametrize("codec", ["av1", "h264"])
def test_append_then_trim(tmp_path: Path, codec: str):
    cfg = video.VideoConfig(codec=codec)
    a, b, c = _clip(5, 0), _clip(4, 30), _clip(6, 60)
    for name, clip in (("a", a), ("b", b), ("c", c)):
        assert video.encode(clip, tmp_path / f"{name}.mp4", 20, cfg) == len(clip)
    assert video.append(None, 0.0, tmp_path / "a.mp4", tmp_path / "f1.mp4") == 0.0
    assert video.append(tmp_path / "f1.mp4", 0.25, tmp_path / "b.mp4", tmp_path / "f2.mp4") == 0.25
    assert video.duration_s(tmp_path / "f2.mp4") == pytest.approx(0.45)
    # A torn tail (b) is dropped when c is appended after a's end.
    assert video.append(tmp_path / "f2.mp4", 0.25, tmp_path / "c.mp4", tmp_path / "f3.mp4") == 0.25
    assert video.duration_s(tmp_path / "f3.mp4") == pytest.approx(0.55)
    for start, end, ref in ((0.0, 0.25, a), (0.25, 0.55, c)):
        got = video.decode(tmp_path / "f3.mp4", start, end, 20)
        assert got.shape == ref.shape
        assert np.abs(got.astype(int) - ref).mean() < 8
    video.append(tmp_path / "f3.mp4", 0.25, None, tmp_path / "f4.mp4")  # trim only
    assert video.duration_s(tmp_path / "f4.mp4") == pytest.approx(0.25)


@pytest.mark.parametrize("codec", ["av1", "h264"])
def test_append_after_a_one_frame_episode(tmp_path: Path, codec: str):
    # h264's one-frame episode ends on dts == pts; the next episode's first packet has
    # dts = pts - 1 frame, so the two collided and the muxer refused the file (reach, DART).
    cfg = video.VideoConfig(codec=codec)
    clips = {"a": _clip(3, 0), "b": _clip(1, 10), "c": _clip(4, 20)}
    for name, clip in clips.items():
        video.encode(clip, tmp_path / f"{name}.mp4", 20, cfg)
    video.append(None, 0.0, tmp_path / "a.mp4", tmp_path / "f1.mp4")
    assert video.append(tmp_path / "f1.mp4", 0.15, tmp_path / "b.mp4", tmp_path / "f2.mp4") == 0.15
    assert video.append(tmp_path / "f2.mp4", 0.20, tmp_path / "c.mp4", tmp_path / "f3.mp4") == 0.20
    assert video.duration_s(tmp_path / "f3.mp4") == pytest.approx(0.40)
    for start, end, name in ((0.0, 0.15, "a"), (0.15, 0.20, "b"), (0.20, 0.40, "c")):
        got = video.decode(tmp_path / "f3.mp4", start, end, 20).astype(int)
        assert got.shape == clips[name].shape
        # Each segment holds its own clip's frames: lossy (a 4-frame AV1 clip decodes ~10
        # grey levels off), but far closer to them than to the other clips'.
        own = np.abs(got - clips[name]).mean()
        others = [np.abs(got - clip[:1]).mean() for n, clip in clips.items() if n != name]
        assert own < 16 and own < 0.5 * min(others), (name, own, others)


def test_unknown_codec():
    with pytest.raises(ValueError, match="unknown video codec 'vp9'"):
        video.VideoConfig(codec="vp9")


@pytest.mark.parametrize("codec", ["av1", "h264"])
def test_extract_copies_a_segment_bit_for_bit(tmp_path: Path, codec: str):
    cfg = video.VideoConfig(codec=codec)
    for name, clip in (("a", _clip(5, 0)), ("b", _clip(4, 30)), ("c", _clip(6, 60))):
        video.encode(clip, tmp_path / f"{name}.mp4", 20, cfg)
    video.append(None, 0.0, tmp_path / "a.mp4", tmp_path / "f1.mp4")
    video.append(tmp_path / "f1.mp4", 0.25, tmp_path / "b.mp4", tmp_path / "f2.mp4")
    video.append(tmp_path / "f2.mp4", 0.45, tmp_path / "c.mp4", tmp_path / "f3.mp4")
    whole = video.decode(tmp_path / "f3.mp4", 0.0, 0.75, 20)
    assert video.extract(tmp_path / "f3.mp4", 0.25, 0.45, tmp_path / "b2.mp4") == 4
    np.testing.assert_array_equal(video.decode(tmp_path / "b2.mp4", 0.0, 0.2, 20), whole[5:9])
    assert video.duration_s(tmp_path / "b2.mp4") == pytest.approx(0.2)
    with pytest.raises(ValueError, match="no frames"):
        video.extract(tmp_path / "f3.mp4", 1.0, 1.5, tmp_path / "none.mp4")


def test_extract_refuses_to_start_on_a_frame_that_is_not_a_keyframe(tmp_path: Path):
    video.encode(_clip(4, 0), tmp_path / "a.mp4", 20, video.VideoConfig(codec="av1"))
    # Frame 1 is not a keyframe (g=2): a segment starting there would need a re-encode.
    with pytest.raises(ValueError, match="not a keyframe"):
        video.extract(tmp_path / "a.mp4", 0.05, 0.2, tmp_path / "bad.mp4")
