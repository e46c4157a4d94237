"""Errors raised by the dataset package: what was found, and what to do about it."""

from __future__ import annotations


class DatasetError(Exception):
    """Base class for dataset errors."""


class NotADatasetError(DatasetError):
    """A folder that is neither empty nor a LeRobot v3.0 dataset (no meta/info.json)."""


class DatasetCorruptError(DatasetError):
    """A dataset file that cannot be read (a truncated info.json), or files that disagree
    (info.json's totals vs the episodes table)."""


class DatasetExistsError(DatasetError):
    """`--out` already holds a dataset and `--resume` was not given."""


class FeatureMismatchError(DatasetError):
    """Resuming a dataset whose features (or fps, codec) differ from what would be recorded."""


class DatasetLockedError(DatasetError):
    """Another process is writing to the dataset."""


class DatasetWriteError(DatasetError):
    """Writing an episode failed (disk full, permissions); committed episodes are intact."""


class EditError(DatasetError):
    """An edit that cannot be done as asked: an unknown episode or task, an empty result, split
    fractions that do not add up, an output folder inside a source."""


class EpisodeNotFoundError(DatasetError, IndexError):
    """An episode index outside the dataset."""
