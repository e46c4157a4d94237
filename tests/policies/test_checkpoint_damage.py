"""A damaged checkpoint fails to load with one PolicyCheckpointError naming the file and what
to do, never a safetensors/torch/JSON error from deep inside (real files: copies of
checkpoints/default with one file broken)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from policies.base import PolicyCheckpointError
from policies.model.token_policy import CheckpointMismatchError, TokenPolicy, is_checkpoint
from policies.registry import DEFAULT_CHECKPOINT, load_policy

pytestmark = pytest.mark.skipif(not is_checkpoint(DEFAULT_CHECKPOINT),
                                reason="no default checkpoint in this checkout")
WEIGHTS, CONFIG = "model.safetensors", "config.json"
DAMAGED = "the file is damaged .* re-train it"
MIXED = "from different runs or were edited: .* re-train it"


def _edit_config(**model: object) -> Callable[[Path], None]:
    def edit(ckpt: Path) -> None:
        meta = json.loads((ckpt / CONFIG).read_text())
        meta["model"].update(model)
        (ckpt / CONFIG).write_text(json.dumps(meta))
    return edit


def _truncate(name: str, keep: int) -> Callable[[Path], None]:
    def cut(ckpt: Path) -> None:
        data = (ckpt / name).read_bytes()
        (ckpt / name).write_bytes(data[:keep])
    return cut


def _random_weights(ckpt: Path) -> None:
    size = (ckpt / WEIGHTS).stat().st_size
    (ckpt / WEIGHTS).write_bytes(bytes(range(256)) * (size // 256))


DAMAGE = {
    "empty weights": (_truncate(WEIGHTS, 0), WEIGHTS, f"cannot be read .*{DAMAGED}"),
    "truncated weights": (_truncate(WEIGHTS, 100_000), WEIGHTS, f"cannot be read .*{DAMAGED}"),
    "random weights": (_random_weights, WEIGHTS, f"cannot be read .*{DAMAGED}"),
    "config not JSON": (_truncate(CONFIG, 50), CONFIG, f"cannot be read as JSON .*{DAMAGED}"),
    "d_model disagrees": (_edit_config(d_model=64), WEIGHTS,
                          rf"does not fit .*config.json: embed.weight is \(\d+, 128\) in the "
                          rf"weights but \(\d+, 64\) .*\(and \d+ more\); .*{MIXED}"),
    "fewer layers": (_edit_config(n_layers=3), WEIGHTS,
                     f"does not fit .*the weights hold blocks.3.* which the model lacks.*{MIXED}"),
    "unknown model field": (_edit_config(width=3), CONFIG,
                            f"describes no model this code can build .*width.*{MIXED}"),
    "damaged codec": (_truncate("action_codec/codec.json", 10), "action_codec",
                      f"cannot be loaded .*{DAMAGED}"),
    "damaged tokenizer": (_truncate("text_tokenizer.json", 10), "text_tokenizer.json",
                          f"cannot be loaded .*{DAMAGED}"),
}


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    ckpt = tmp_path / "ckpt"
    shutil.copytree(DEFAULT_CHECKPOINT, ckpt)
    return ckpt


def test_the_intact_copy_loads(checkpoint: Path):
    assert isinstance(load_policy(str(checkpoint)), TokenPolicy)


@pytest.mark.parametrize("case", DAMAGE)
def test_damage_is_one_named_error_naming_the_file(checkpoint: Path, case: str):
    damage, culprit, why = DAMAGE[case]
    damage(checkpoint)
    assert is_checkpoint(checkpoint)  # claimed, so the error says what is wrong with it
    with pytest.raises(PolicyCheckpointError, match=why) as e:
        load_policy(str(checkpoint))
    assert str(checkpoint / culprit) in str(e.value)
    assert "\n" not in str(e.value)


def test_vocabulary_of_another_run_is_a_mismatch(checkpoint: Path):
    meta = json.loads((checkpoint / CONFIG).read_text())
    meta["vocab_hash"] = "0" * 64
    (checkpoint / CONFIG).write_text(json.dumps(meta))
    with pytest.raises(CheckpointMismatchError, match=f"vocab.json .* is not the vocabulary"
                                                      f".*{MIXED}"):
        load_policy(str(checkpoint))


def test_a_foreign_config_json_is_not_taken_for_a_checkpoint(tmp_path: Path):
    (tmp_path / CONFIG).write_text(json.dumps({"architectures": ["BertModel"]}))
    assert not is_checkpoint(tmp_path)
    (tmp_path / CONFIG).write_text("not json")  # and no weights beside it
    assert not is_checkpoint(tmp_path)
