"""`--policy NAME|PATH` resolution: named built-ins, or a checkpoint directory."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

import checkpoints
from policies.base import Policy


class UnknownPolicyError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def _scripted() -> Policy:
    from policies.scripted import ScriptedExpert

    return ScriptedExpert()


BUILTINS: dict[str, Callable[[], Policy]] = {"scripted": _scripted}
# The policy `agent run` uses when no --policy is given: the learned checkpoint shipped in
# checkpoints/default/ (rebuilt by scripts/train_default.sh), or the scripted expert where a
# checkout has none.
DEFAULT_CHECKPOINT = checkpoints.DEFAULT


def default_policy_spec() -> str:
    from policies.model.token_policy import is_checkpoint

    return str(DEFAULT_CHECKPOINT) if is_checkpoint(DEFAULT_CHECKPOINT) else "scripted"


def _is_token_checkpoint(path: Path) -> bool:
    from policies.model.token_policy import is_checkpoint

    return is_checkpoint(path)


def _load_token_policy(path: Path) -> Policy:
    import torch

    from policies.model.token_policy import TokenPolicy

    # Batch-1 autoregressive decoding is bound by per-op overhead; on a CPU extra threads
    # only contend (measured: 1.7 ms vs 5.6 ms per token with 2 threads on a busy 2-core box).
    if not torch.cuda.is_available():
        torch.set_num_threads(1)
    return TokenPolicy.load(path)


# Checkpoint loaders, tried in order on a directory: (can_load(path), load(path)).
CHECKPOINT_LOADERS: list[tuple[Callable[[Path], bool], Callable[[Path], Policy]]] = [
    (_is_token_checkpoint, _load_token_policy),
]


def load_policy(spec: str | None) -> Policy:
    """A policy from a built-in name ("scripted") or a checkpoint directory path."""
    spec = spec or default_policy_spec()
    if spec in BUILTINS:
        return BUILTINS[spec]()
    path = Path(spec)
    if path.exists():
        for can_load, load in CHECKPOINT_LOADERS:
            if can_load(path):
                return load(path)
        raise UnknownPolicyError(f"{spec!r} exists but is not a policy checkpoint this version "
                                 f"can load (loaders registered: {len(CHECKPOINT_LOADERS)})")
    close = difflib.get_close_matches(spec, BUILTINS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownPolicyError(f"unknown policy {spec!r}: not a built-in ({sorted(BUILTINS)}) "
                             f"and no such checkpoint directory{hint}")
