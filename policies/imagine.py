"""Glue between a TokenPolicy, its VideoHead and the VQ tokenizer: imagine a chunk's future.

`FuturePredictor(policy, head)` is a lookahead `PredictFn` (policies.lookahead): for one
observation and K candidate chunks it builds the K trunk contexts [prefix + chunk ids], runs
the head once over the batch and decodes the predicted state bins with the policy's state
codec. With a tokenizer it also decodes the predicted frames (for side-by-side videos).
`video_targets` turns real future frames and states into the head's training targets.
"""

from __future__ import annotations

import numpy as np
import torch

from envs.types import Observation
from policies.token_policy import TokenPolicy
from policies.video_head import VideoHead, VideoHeadError
from policies.vq import VQTokenizer


class FuturePredictor:
    """(obs, chunks (K, H, Da)) -> predicted states (K, state_dim) float32."""

    def __init__(self, policy: TokenPolicy, head: VideoHead,
                 tokenizer: VQTokenizer | None = None) -> None:
        c, p = head.cfg, policy.config
        problems = []
        if c.state_dim != p.state_dim:
            problems.append(f"head state_dim {c.state_dim} != policy state_dim {p.state_dim}")
        if c.state_bins != policy.state_codec.vocab_size:
            problems.append(f"head state_bins {c.state_bins} != state codec bins "
                            f"{policy.state_codec.vocab_size}")
        if c.camera >= len(p.cameras):
            problems.append(f"head camera {c.camera} is not one of the policy's "
                            f"{len(p.cameras)} cameras {p.cameras}")
        if tokenizer is not None and (tokenizer.cfg.grid, tokenizer.cfg.codebook_size) != (
                c.grid, c.codebook_size):
            problems.append(f"tokenizer grid/codebook ({tokenizer.cfg.grid}, "
                            f"{tokenizer.cfg.codebook_size}) != head's ({c.grid}, "
                            f"{c.codebook_size})")
        if problems:
            raise VideoHeadError("video head does not fit this policy: " + "; ".join(problems))
        self.policy, self.head, self.tokenizer = policy, head, tokenizer

    def context(self, obs: Observation, chunks: np.ndarray) -> torch.Tensor:
        """(K, S, D) trunk embeddings of [prefix + chunk ids] for each of the K chunks."""
        pol, model = self.policy, self.policy.model
        pol.check_observation(obs)
        K = len(chunks)
        dev = model.embed.weight.device
        frames = np.stack([obs.images[c] for c in pol.config.cameras])[None]  # (1, C, H, W, 3)
        text_ids, state_ids = pol.text_ids([obs.instruction]), pol.state_ids(obs.state[None])
        # A policy with plan tokens writes its plan before the actions: the chunk follows it.
        plan = pol.write_plan(text_ids, frames, state_ids)  # (1, plan_dim + 1) or (1, 0)
        text = torch.as_tensor(text_ids, device=dev)  # (1, T)
        state = torch.as_tensor(np.concatenate([state_ids, plan], axis=1), device=dev)
        prefix = model.prefix_embeddings(text, torch.as_tensor(frames, device=dev),
                                         state)  # (1, P, D)
        ids = torch.as_tensor(pol.action_ids(np.asarray(chunks, np.float32)),
                              device=dev)  # (K, H * Da)
        return torch.cat([prefix.expand(K, -1, -1), model.embed(ids)], dim=1)  # (K, S, D)

    @torch.no_grad()
    def predict(self, obs: Observation, chunks: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """Most likely future codes (K, G, G) int64 and states (K, state_dim) float32."""
        codes, bins = self.head.predict(self.policy.model, self.context(obs, chunks))
        states = self.policy.state_codec.decode(bins.cpu().numpy())  # (K, state_dim)
        return codes, states.astype(np.float32)

    def __call__(self, obs: Observation, chunks: np.ndarray) -> np.ndarray:
        return self.predict(obs, chunks)[1]  # (K, state_dim)

    def frames(self, obs: Observation, chunks: np.ndarray) -> np.ndarray:
        """Predicted frames of the head's camera, (K, H, W, 3) uint8."""
        if self.tokenizer is None:
            raise VideoHeadError("FuturePredictor was built without a tokenizer; pass "
                                 "tokenizer=VQTokenizer.load(DIR) to decode predicted frames")
        codes, _ = self.predict(obs, chunks)
        with torch.no_grad():
            return self.tokenizer.decode(codes.to(self.tokenizer.device)).cpu().numpy()


@torch.no_grad()
def video_targets(tokenizer: VQTokenizer, policy: TokenPolicy, future_frames: np.ndarray,
                  future_states: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Real future frames (B, H, W, 3) uint8 and states (B, state_dim) -> the head's targets:
    codes (B, G, G) int64 and state bins (B, state_dim) int64, both local ids."""
    codes = tokenizer.encode(future_frames).cpu()  # (B, G, G)
    bins = policy.state_codec.encode(np.asarray(future_states, np.float32))  # (B, state_dim)
    return codes, torch.as_tensor(bins, dtype=torch.int64)
