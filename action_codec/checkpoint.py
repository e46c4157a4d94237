"""Save and load a policy's tokenizers together: the vocab layout plus its codecs.

Layout of a tokenizer directory (inside a policy checkpoint)::

    vocab.json          the VocabLayout (sizes, derived ranges, hash)
    action/codec.json   the action codec (plus bpe.json for the chunk codec)
    state/codec.json    the state codec

Loading checks that the codecs still fill the segments the layout reserves for them and,
when the caller passes the layout its model was built with, that the stored layout is the
same. Either mismatch is a :class:`VocabMismatchError`: a model whose embedding rows mean
other tokens than the ones it was trained on must not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from action_codec.base import Codec
from action_codec.errors import VocabMismatchError
from action_codec.registry import load_codec
from action_codec.vocab import VocabLayout

VOCAB_FILE = "vocab.json"


@dataclass(frozen=True)
class Tokenizers:
    """What a token policy needs to turn actions and state into ids and back.

    Attributes:
        layout: The shared vocabulary layout.
        action: Codec whose local tokens fill the layout's "action" segment.
        state: Codec whose local tokens fill the layout's "state" segment.
    """

    layout: VocabLayout
    action: Codec
    state: Codec

    def __post_init__(self) -> None:
        for segment, codec in (("action", self.action), ("state", self.state)):
            size = self.layout.ranges[segment].size
            if codec.vocab_size != size:
                raise VocabMismatchError(
                    f"{segment} codec {codec.name!r} has {codec.vocab_size} tokens but the "
                    f"layout's {segment} segment holds {size}"
                )

    def save(self, directory: str | Path) -> None:
        """Write the layout and both codecs into ``directory``."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.layout.save(path / VOCAB_FILE)
        self.action.save(path / "action")
        self.state.save(path / "state")

    @classmethod
    def load(cls, directory: str | Path, expected: VocabLayout | None = None) -> Tokenizers:
        """Read what :meth:`save` wrote; ``expected`` (the model's layout) must match.

        Raises:
            CheckpointError: Missing or unreadable files.
            VocabMismatchError: The layout differs from ``expected``, or a codec no longer
                fills its segment.
        """
        path = Path(directory)
        layout = VocabLayout.load(path / VOCAB_FILE, expected=expected)
        return cls(layout, load_codec(path / "action"), load_codec(path / "state"))
