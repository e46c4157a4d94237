"""Instruction tokens: a byte-level BPE trained with `tokenizers` on the datasets' instructions.

Byte-level, so any string encodes (an unseen word falls back to its bytes) and nothing needs
a download; trained on the instructions, so "put the red cube on the yellow plate" is ~8
tokens instead of 36 bytes, which is 28 fewer positions in every training sample.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one core per control loop

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402


class InstructionTooLongError(ValueError):
    """An instruction needs more tokens than the policy's text window holds."""


class InstructionTokenizer:
    """Instruction string <-> local text ids in [0, vocab_size)."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, instructions: list[str], vocab_size: int = 320) -> InstructionTokenizer:
        """Fit on `instructions` (every byte is in the alphabet; merges up to `vocab_size`)."""
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
        tok.train_from_iterator(instructions, trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.tokenizer.encode(text).ids, np.int64)

    def decode(self, ids: np.ndarray) -> str:
        return self.tokenizer.decode([int(i) for i in ids])

    def encode_padded(self, texts: list[str], length: int, pad: int,
                      to_global=lambda ids: ids) -> np.ndarray:
        """(B, length) ids, `pad` after each instruction's tokens.

        Raises:
            InstructionTooLongError: an instruction needs more than `length` tokens (cutting
                it would silently change what the robot is asked to do).
        """
        out = np.full((len(texts), length), pad, np.int64)
        for i, s in enumerate(texts):
            ids = self.encode(s)
            if len(ids) > length:
                raise InstructionTooLongError(
                    f"instruction {s!r} is {len(ids)} tokens; this policy reads at most "
                    f"{length} (it was trained on instructions like the ones in its dataset)")
            out[i, : len(ids)] = to_global(ids)
        return out

    def save(self, path: Path) -> None:
        self.tokenizer.save(str(path))

    @classmethod
    def load(cls, path: Path) -> InstructionTokenizer:
        """Raises ValueError for a missing or malformed file."""
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception for both
            raise ValueError(f"cannot read instruction tokenizer {path}: {e}") from e
        return cls(tokenizer)
