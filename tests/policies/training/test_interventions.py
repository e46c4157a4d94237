"""HG-DAgger-style training on takeover runs: --intervention-weight and --only-interventions
change which frames (and which chunk steps) the policy is trained on; data without an
intervention column trains exactly as before."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from envs.features import EE_NAMES, StateLayout
from policies.training import train as train_mod
from policies.training.data import ChunkSampler, DemoEpisode, intervention_weights
from policies.training.train import TrainConfig, build_policy, train

T, HUMAN = 20, slice(5, 10)  # the takeover episode: a human acted in frames 5..9
CAMS = ("front", "wrist")


def _episode(i: int, intervention: np.ndarray | None) -> DemoEpisode:
    rng = np.random.default_rng(i)
    return DemoEpisode("put the red cube on the yellow plate",
                       {c: np.full((T, 32, 32, 3), 60 * i, np.uint8) for c in CAMS},
                       rng.normal(size=(T, 14)).astype(np.float32),
                       rng.uniform(-0.05, 0.05, (T, 7)).astype(np.float32),
                       state_layout=StateLayout((*(f"j{k}" for k in range(6)), *EE_NAMES)),
                       intervention=intervention)


def _demos() -> list[DemoEpisode]:
    """Episode 0: a demonstration (no column). Episode 1: a takeover run."""
    human = np.zeros(T, bool)
    human[HUMAN] = True
    return [_episode(0, None), _episode(1, human)]


def _share(rows: np.ndarray) -> dict[str, float]:
    """Shares of sampled rows: demo frames, the takeover's human and policy frames."""
    e, t = rows[:, 0], rows[:, 1]
    human = (e == 1) & (t >= HUMAN.start) & (t < HUMAN.stop)
    return {"demo": float(np.mean(e == 0)), "human": float(np.mean(human)),
            "policy": float(np.mean((e == 1) & ~human))}


def test_weight_and_selection_change_the_sampled_frames():
    demos = _demos()
    assert intervention_weights(demos) is None  # defaults: uniform, as before
    uniform = _share(ChunkSampler(demos, CAMS, 4, seed=0).sample(4000).index)
    w = intervention_weights(demos, weight=4.0)
    weighted = _share(ChunkSampler(demos, CAMS, 4, seed=0, weights=w).sample(4000).index)
    only = ChunkSampler(demos, CAMS, 4, seed=0, weights=intervention_weights(demos, only=True),
                        human_labels_only=True).sample(4000)
    selected = _share(only.index)
    # Uniform: 5 of 40 frames are human (0.125); weight 4: 20 of 55 (0.36); only: 5 of 25.
    assert abs(uniform["human"] - 0.125) < 0.03
    assert abs(weighted["human"] - 20 / 55) < 0.03 and abs(weighted["demo"] - 20 / 55) < 0.03
    assert selected["policy"] == 0.0 and abs(selected["human"] - 0.2) < 0.03
    # A chunk that starts on a human frame scores only the human's steps: frame 8 of 4
    # steps covers 8, 9 (human) and 10, 11 (the policy's again, masked like padding).
    row = only.index.tolist().index([1, 8])
    assert only.pad[row].tolist() == [False, False, True, True]


def test_without_the_column_nothing_changes_and_the_flags_are_refused():
    demos = [_episode(0, None), _episode(2, None)]
    assert intervention_weights(demos) is None
    a = ChunkSampler(demos, CAMS, 4, seed=3).sample(64)
    b = ChunkSampler(demos, CAMS, 4, seed=3, weights=intervention_weights(demos)).sample(64)
    assert np.array_equal(a.index, b.index) and np.array_equal(a.pad, b.pad)
    for kwargs in ({"only": True}, {"weight": 2.0}):
        with pytest.raises(ValueError, match="intervention column"):
            intervention_weights(demos, **kwargs)
    with pytest.raises(ValueError, match="no frame left"):
        intervention_weights([_episode(1, np.zeros(T, bool))], only=True)


def test_train_samples_what_the_config_selects(tmp_path, monkeypatch):
    drawn: list[np.ndarray] = []

    class Recording(ChunkSampler):
        def gather(self, rows, delays=None):
            drawn.append(np.asarray(rows))
            return super().gather(rows, delays)

    monkeypatch.setattr(train_mod, "ChunkSampler", Recording)
    demos = _demos()
    cfg = TrainConfig(model="nano", steps=3, batch_size=16, n_bins=16, chunk=2, execute=1,
                      checkpoint_every=1000, shift_px=0, plan_weight=0, aux_weight=0,
                      only_interventions=True)
    with torch.random.fork_rng():  # later tests' weight inits stay what they were
        train(build_policy(demos, cfg), demos, tmp_path, cfg)
    share = _share(np.concatenate(drawn))
    assert share["policy"] == 0.0 and share["human"] > 0.1 and share["demo"] > 0.5
