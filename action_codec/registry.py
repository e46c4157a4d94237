"""Codec registry: one table from a name to the class and config that build it.

``make_codec("uniform", n_bins=256)`` builds an unfitted codec; ``load_codec(dir)`` reads
the name stored in a saved codec's ``codec.json`` and loads it with the right class.
An unknown name raises :class:`UnknownCodecError`, listing the known names and the
closest match.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from action_codec.base import Codec, read_meta
from action_codec.binning import BinningCodec, BinningConfig
from action_codec.errors import InvalidInputError, UnknownCodecError
from action_codec.fast import FastCodec, FastConfig

# name -> (builder taking config keyword arguments, loader taking a directory)
_REGISTRY: dict[str, tuple[Callable[..., Codec], Callable[[str | Path], Codec]]] = {
    "uniform": (lambda **kw: BinningCodec(BinningConfig(strategy="uniform", **kw)),
                BinningCodec.load),
    "quantile": (lambda **kw: BinningCodec(BinningConfig(strategy="quantile", **kw)),
                 BinningCodec.load),
    "fast": (lambda **kw: FastCodec(FastConfig(**kw)), FastCodec.load),
}


def codec_names() -> tuple[str, ...]:
    """Names accepted by :func:`make_codec`, sorted."""
    return tuple(sorted(_REGISTRY))


def _entry(name: str) -> tuple[Callable[..., Codec], Callable[[str | Path], Codec]]:
    if name not in _REGISTRY:
        raise UnknownCodecError(name, _REGISTRY)
    return _REGISTRY[name]


def make_codec(name: str, **config: Any) -> Codec:
    """Build an unfitted codec by registry name with config keyword arguments.

    Raises:
        UnknownCodecError: ``name`` is not registered.
        InvalidInputError: A config keyword the codec does not have.
    """
    builder, _ = _entry(name)
    try:
        return builder(**config)
    except TypeError as exc:  # unexpected keyword: say which codec refused it
        raise InvalidInputError(f"bad config for codec {name!r}: {exc}") from exc


def load_codec(directory: str | Path) -> Codec:
    """Load any saved codec, picking its class from the name stored in ``codec.json``.

    Raises:
        CheckpointError: Missing or unreadable checkpoint.
        UnknownCodecError: The stored name is not registered.
    """
    name = read_meta(directory).get("codec")
    _, loader = _entry(str(name))
    return loader(directory)
