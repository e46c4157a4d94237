import numpy as np
import pytest

from policies.model.text import InstructionTokenizer, InstructionTooLongError

INSTRUCTIONS = [f"put the {c} cube on the {p} plate"
                for c in ("red", "green", "blue") for p in ("yellow", "purple")]


@pytest.fixture(scope="module")
def tok():
    return InstructionTokenizer.train(INSTRUCTIONS)


def test_round_trip_and_trained_instructions_are_short(tok):
    for s in INSTRUCTIONS:
        ids = tok.encode(s)
        assert tok.decode(ids) == s
        assert len(ids) <= 9  # words became tokens: 36-38 bytes -> 8 tokens
        assert ids.min() >= 0 and ids.max() < tok.vocab_size


def test_unseen_words_still_encode_exactly(tok):
    s = "stack the orange cube on the blue plate, gently"
    assert tok.decode(tok.encode(s)) == s  # byte fallback: nothing is lost


def test_padding_and_too_long_is_an_error(tok):
    out = tok.encode_padded(INSTRUCTIONS[:2], 12, pad=-1)
    assert out.shape == (2, 12) and (out[:, -1] == -1).all()
    np.testing.assert_array_equal(out[0, :8], tok.encode(INSTRUCTIONS[0]))
    with pytest.raises(InstructionTooLongError, match="at most 12"):
        tok.encode_padded(["put " * 20], 12, pad=-1)


def test_save_load_gives_identical_ids(tok, tmp_path):
    tok.save(tmp_path / "t.json")
    again = InstructionTokenizer.load(tmp_path / "t.json")
    assert again.vocab_size == tok.vocab_size
    for s in INSTRUCTIONS:
        np.testing.assert_array_equal(again.encode(s), tok.encode(s))
