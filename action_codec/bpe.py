"""Byte-pair encoding of integer sequences with the ``tokenizers`` library.

As in FAST, every integer in ``[low, high]`` becomes one Unicode character, so a
sequence of integers is a string and a BPE trained on such strings learns to merge
frequent runs (mostly the zeros of high DCT frequencies) into single tokens.

Characters start at U+0100: this skips ASCII control characters and whitespace,
which is safe even though no normalizer or pre-tokenizer is installed (each whole
sequence is one "word"), and the alphabet is capped below the UTF-16 surrogates.

Decoding never trusts the token stream: each token id maps to a fixed run of integers,
and a sequence that does not expand to exactly ``length`` integers is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from action_codec.base import check_token_ids
from action_codec.errors import CheckpointError, CodecError, MalformedTokensError

# Tokenizers spawns a Rayon thread pool by default; codecs run inside the control loop
# and benchmarks measure one core, so stay single-threaded unless the user says otherwise.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import Tokenizer, models, trainers  # noqa: E402

CHAR_BASE = 0x100
MAX_ALPHABET = 0xD800 - CHAR_BASE  # stay below the surrogate block


class IntegerBPE:
    """BPE over sequences of integers in ``[low, high]``, each of fixed ``length``.

    Args:
        low: Smallest integer the alphabet covers.
        high: Largest integer the alphabet covers.
        tokenizer: A trained ``tokenizers.Tokenizer`` (from :meth:`train` or :meth:`load`).
    """

    def __init__(self, low: int, high: int, tokenizer: Tokenizer) -> None:
        self.low, self.high = int(low), int(high)
        self.tokenizer = tokenizer
        self._build_tables()

    @classmethod
    def train(cls, codes: np.ndarray, low: int, high: int, vocab_size: int,
              min_frequency: int = 2) -> IntegerBPE:
        """Train on integer rows ``codes`` (N, L), all within ``[low, high]``.

        Raises:
            CodecError: The alphabet ``high - low + 1`` does not fit ``vocab_size``.
        """
        alphabet = high - low + 1
        if alphabet > min(vocab_size, MAX_ALPHABET):
            raise CodecError(
                f"integer range [{low}, {high}] needs {alphabet} base tokens but the BPE "
                f"vocabulary is {vocab_size}: lower the scale or raise vocab_size"
            )
        tokenizer = Tokenizer(models.BPE())
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            show_progress=False,
            special_tokens=[],
            # Every integer of the range is a base token, even if unseen in training, so
            # any in-range sequence stays encodable.
            initial_alphabet=[chr(CHAR_BASE + i) for i in range(alphabet)],
            limit_alphabet=alphabet,
        )
        tokenizer.train_from_iterator(_to_strings(codes, low), trainer=trainer)
        return cls(low, high, tokenizer)

    def _build_tables(self) -> None:
        size = self.tokenizer.get_vocab_size()
        runs = []
        for i in range(size):
            piece = self.tokenizer.id_to_token(i)
            run = np.frombuffer(piece.encode("utf-32-le"), dtype="<u4").astype(np.int64)
            runs.append(run - CHAR_BASE + self.low)
        missing = [c for c in range(self.low, self.high + 1)
                   if self.tokenizer.token_to_id(chr(CHAR_BASE + c - self.low)) is None]
        if missing:
            raise CheckpointError(f"BPE vocabulary lacks base tokens for integers {missing[:5]}")
        # Flat table: token i expands to _flat[_start[i] : _start[i] + _len[i]].
        self._len = np.array([len(r) for r in runs], dtype=np.int64)
        self._start = np.concatenate([[0], np.cumsum(self._len)[:-1]]).astype(np.int64)
        self._flat = np.concatenate(runs)

    @property
    def vocab_size(self) -> int:
        """Number of BPE token ids (base integers plus merges)."""
        return int(self._len.size)

    def encode(self, codes: np.ndarray) -> list[np.ndarray]:
        """Token ids (one int64 array per row) for integer rows ``codes`` (N, L).

        Values must already lie in ``[low, high]`` (callers clip and count).
        """
        encodings = self.tokenizer.encode_batch(_to_strings(codes, self.low))
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        expanded = np.array([self._len[t].sum() for t in ids], dtype=np.int64)
        if ids and (expanded != codes.shape[1]).any():
            # The BPE model has no unknown token and would drop an unknown character.
            rows = np.flatnonzero(expanded != codes.shape[1])
            raise CodecError(f"BPE lost integers while encoding rows {rows[:5].tolist()}")
        return ids

    def decode(self, sequences: list[np.ndarray], length: int) -> np.ndarray:
        """Integers (N, length) for N token sequences; each must expand to ``length``.

        Raises:
            InvalidInputError: Non-integer ids.
            TokenRangeError: An id outside ``[0, vocab_size)``.
            MalformedTokensError: A sequence expanding to more or fewer than ``length``.
        """
        arrays = [check_token_ids(s, f"token sequence {i}", self.vocab_size).reshape(-1)
                  for i, s in enumerate(sequences)]
        if not arrays:
            return np.zeros((0, length), dtype=np.int64)
        flat_ids = np.concatenate(arrays)
        counts = self._len[flat_ids]  # integers each token expands to
        per_seq = np.array([self._len[a].sum() for a in arrays], dtype=np.int64)
        bad = np.flatnonzero(per_seq != length)
        if bad.size:
            i = int(bad[0])
            raise MalformedTokensError(
                f"token sequence {i} ({arrays[i].size} tokens) expands to {per_seq[i]} "
                f"values, expected exactly {length}; truncated or corrupted chunk"
            )
        # Vectorised gather of every token's run: run starts repeated, plus positions.
        starts = np.repeat(self._start[flat_ids] - (np.cumsum(counts) - counts), counts)
        return self._flat[starts + np.arange(starts.size)].reshape(len(arrays), length)

    def save(self, path: str | Path) -> None:
        """Write the tokenizer JSON to ``path``; the caller stores ``low``/``high``."""
        self.tokenizer.save(str(path))

    @classmethod
    def load(cls, path: str | Path, low: int, high: int) -> IntegerBPE:
        """Read a tokenizer written by :meth:`save` for integers in ``[low, high]``."""
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception on bad files
            raise CheckpointError(f"cannot read BPE tokenizer {path}: {exc}") from exc
        return cls(low, high, tokenizer)


def _to_strings(codes: np.ndarray, low: int) -> list[str]:
    """One string per row, integer ``v`` becoming ``chr(CHAR_BASE + v - low)``."""
    n, length = codes.shape
    text = (codes - low + CHAR_BASE).astype("<u4").tobytes().decode("utf-32-le")
    return [text[i * length:(i + 1) * length] for i in range(n)]
