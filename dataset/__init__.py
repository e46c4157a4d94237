"""LeRobotDataset v3.0 on disk: a crash-safe writer, a reader, stats and video helpers.

    >>> from dataset import LeRobotDatasetReader
    >>> ds = LeRobotDatasetReader("/tmp/pp100")
    >>> ep = ds.episode(0)                  # ep.state (T, 14), ep.action (T, 7), ep.task
    >>> frames = ds.frames(0, "front")      # (T, 128, 128, 3) uint8, decoded from the mp4

Layout and durability design: see `dataset/writer.py`.
"""

from __future__ import annotations

from dataset.errors import (
    DatasetCorruptError,
    DatasetError,
    DatasetExistsError,
    DatasetWriteError,
    EpisodeNotFoundError,
    FeatureMismatchError,
    NotADatasetError,
)
from dataset.reader import EpisodeData, LeRobotDatasetReader

__all__ = ["DatasetCorruptError", "DatasetError", "DatasetExistsError", "DatasetWriteError",
           "EpisodeData", "EpisodeNotFoundError", "FeatureMismatchError", "LeRobotDatasetReader",
           "NotADatasetError"]
