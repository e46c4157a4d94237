"""The expected-value term of the action loss (policies.training.train.batch_loss)."""

from __future__ import annotations

import numpy as np
import torch

from envs.features import EE_NAMES, StateLayout
from policies.training.data import ChunkSampler, DemoEpisode
from policies.training.train import TrainConfig, batch_loss, bin_values, build_policy, train


def _demos(T: int = 10) -> list[DemoEpisode]:
    """Three episodes, each one action repeated, told apart by the frames' brightness."""
    rng = np.random.default_rng(1)
    return [DemoEpisode("put the red cube on the yellow plate",
                        {c: np.full((T, 32, 32, 3), 60 * i, np.uint8) for c in ("front", "wrist")},
                        rng.normal(size=(T, 14)).astype(np.float32),
                        np.repeat(rng.uniform(-0.05, 0.05, (1, 7)), T, 0).astype(np.float32),
                        state_layout=StateLayout((*(f"j{k}" for k in range(6)), *EE_NAMES)))
            for i in range(3)]


def test_bin_values_are_the_codecs_decoded_bins() -> None:
    policy = build_policy(_demos(), TrainConfig(model="nano", n_bins=16, chunk=2, execute=1))
    values, half = bin_values(policy, torch.device("cpu"))
    ids = np.tile(np.arange(16)[:, None], (1, 7))  # (A, Da): every bin of every dim
    np.testing.assert_allclose(values.numpy().T, policy.action_codec.decode(ids), atol=1e-6)
    assert (half > 0).all()


def test_value_term_matches_its_definition_and_falls_when_trained(tmp_path) -> None:
    demos = _demos()
    cfg = TrainConfig(model="nano", steps=60, batch_size=8, lr=3e-3, warmup=5, n_bins=16,
                      chunk=2, execute=1, checkpoint_every=1000, shift_px=0, value_weight=1.0)
    policy = build_policy(demos, cfg)
    batch = ChunkSampler(demos, policy.config.cameras, cfg.chunk).sample(4)
    frames = torch.from_numpy(batch.frames).float()
    with torch.no_grad():
        got = batch_loss(policy, policy.model, batch, frames, torch.device("cpu"))
        # Recompute from the logits: E[value] under the softmax of the action segment.
        core = policy.model
        text = torch.from_numpy(policy.text_ids(batch.instructions))
        state = torch.from_numpy(policy.state_ids(batch.state))
        act = torch.from_numpy(policy.action_ids(batch.actions))
        x = core.prefix_embeddings(text, frames, state)
        x = torch.cat([x, core.embed(act[:, :-1])], 1)
        logits, _ = core(x, logits_from=x.shape[1] - act.shape[1])
        lo, hi = policy.layout.ranges["action"].start, policy.layout.ranges["action"].stop
        p = logits[..., lo:hi].softmax(-1).numpy()  # (B, n, A)
        values, half = (t.numpy() for t in bin_values(policy, torch.device("cpu")))
        dims = np.arange(act.shape[1]) % 7
        expected = (p * values[dims]).sum(-1)
        target = policy.action_codec.decode((act - lo).numpy().reshape(-1, 7)).reshape(4, -1)
        keep = np.repeat(~batch.pad, 7, axis=1)  # padded steps past an episode's end
        want = (np.abs(expected - target) / half[dims])[keep].mean()
    assert abs(got.value.item() - want) < 1e-4
    logs = train(policy, demos, tmp_path, cfg)
    assert logs[-1].value_loss < 0.3 * logs[0].value_loss, (logs[0].value_loss, logs[-1].value_loss)
