"""TokenPolicy: observations -> token sequences -> transformer -> action tokens -> actions.

Owns everything a checkpoint must carry to act: the model, the fitted state and action
codecs and the vocabulary layout. Decoding is deterministic (each token the median bin of its
distribution, `PolicyConfig.decode`) with a KV cache and constrained to the
action segment of the vocabulary, so every emitted id decodes; the codec still validates.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from action_codec.binning import BinningCodec
from action_codec.vocab import VocabLayout
from envs.types import ActionChunk, Observation
from policies.engines import DecodeEngine, TorchEngine, check_rule
from policies.text import InstructionTokenizer
from policies.transformer import TokenTransformer, TransformerConfig

CHECKPOINT_FORMAT = "motoken.token_policy"
CHECKPOINT_VERSION = 2  # 2: BPE instruction tokens (text_tokenizer.json), CNN image encoder


class CheckpointMismatchError(ValueError):
    """A checkpoint whose parts (vocabulary, codecs, config) do not fit together or the env."""


@dataclass(frozen=True)
class PolicyConfig:
    """What the policy reads and writes, beside the network's own config."""

    cameras: tuple[str, ...] = ("front", "wrist")
    state_dim: int = 14
    action_dim: int = 7
    chunk: int = 8  # actions predicted per inference (H)
    execute: int = 4  # of those, executed before the next inference (receding horizon)
    text_len: int = 12  # instruction tokens (BPE), padded; a longer instruction is an error
    decode: str = "median"  # how each action token is picked (policies.engines.DECODE_RULES)

    def to_dict(self) -> dict:
        return {**asdict(self), "cameras": list(self.cameras)}


class TokenPolicy:
    """The learned multimodal policy. `infer` returns `execute` actions of a chunk of H."""

    name = "token"

    def __init__(self, model: TokenTransformer, config: PolicyConfig, layout: VocabLayout,
                 state_codec: BinningCodec, action_codec: BinningCodec,
                 text_tokenizer: InstructionTokenizer) -> None:
        self.model, self.config, self.layout = model.eval(), config, layout
        self.state_codec, self.action_codec = state_codec, action_codec
        self.text_tokenizer = text_tokenizer
        self._check_consistency()
        self._set_embedding_order()
        self._act_lo = layout.ranges["action"].start
        self._act_hi = layout.ranges["action"].stop
        self.engine: DecodeEngine = TorchEngine(self.model, device="cpu")

    def use_engine(self, engine: DecodeEngine) -> TokenPolicy:
        """Run inference on `engine` (see policies.backends) from now on; returns self."""
        self.engine = engine
        return self

    def _check_consistency(self) -> None:
        c, lay = self.config, self.layout
        check_rule(c.decode)
        if self.model.cfg.vocab_size != lay.total_size:
            raise CheckpointMismatchError(
                f"model vocab_size {self.model.cfg.vocab_size} != vocabulary size "
                f"{lay.total_size}")
        if self.text_tokenizer.vocab_size != lay.sizes.size_of("text"):
            raise CheckpointMismatchError(
                f"instruction tokenizer has {self.text_tokenizer.vocab_size} tokens but the "
                f"vocabulary's text segment has {lay.sizes.size_of('text')}")
        for name, codec, dims in (("state", self.state_codec, c.state_dim),
                                  ("action", self.action_codec, c.action_dim)):
            if codec.vocab_size != lay.sizes.size_of(name):
                raise CheckpointMismatchError(
                    f"{name} codec has {codec.vocab_size} tokens but the vocabulary's {name} "
                    f"segment has {lay.sizes.size_of(name)}")
            if codec.dims != dims:
                raise CheckpointMismatchError(
                    f"{name} codec was fitted on {codec.dims} dims, policy expects {dims}")
        if self.model.cfg.n_cameras != len(c.cameras):
            raise CheckpointMismatchError(
                f"model has {self.model.cfg.n_cameras} camera slots, config names {c.cameras}")

    def _set_embedding_order(self) -> None:
        """Tell the embedding which ids are ordered bins (see TokenEmbedding)."""
        import torch

        V = self.layout.total_size
        value, segment = torch.zeros(V), torch.zeros(V, dtype=torch.long)
        for seg, name in ((1, "state"), (2, "action")):
            r = self.layout.ranges[name]
            value[r.start:r.stop] = torch.linspace(-1.0, 1.0, r.size)
            segment[r.start:r.stop] = seg
        self.model.embed.set_order(value.to(self.model.embed.weight.device),
                                   segment.to(self.model.embed.weight.device))

    # -- tokenization (also used by training) --------------------------------------------
    def text_ids(self, instructions: list[str]) -> np.ndarray:
        """(B, text_len) global ids of the BPE instruction tokens, padded."""
        return self.text_tokenizer.encode_padded(
            instructions, self.config.text_len, self.layout.special_id("pad"),
            lambda ids: self.layout.to_global("text", ids))

    def state_ids(self, states: np.ndarray) -> np.ndarray:
        """(B, Ds) float state -> (B, Ds + 3) ids: begin_state, state, end_state, begin_actions."""
        lay = self.layout
        ids = lay.to_global("state", self.state_codec.encode(states.astype(np.float32)))
        marks = [lay.special_id(n) for n in ("begin_state", "end_state", "begin_actions")]
        b = np.full((len(states), 1), marks[0])
        return np.concatenate([b, ids, np.full((len(states), 1), marks[1]),
                               np.full((len(states), 1), marks[2])], axis=1)

    def action_ids(self, chunks: np.ndarray) -> np.ndarray:
        """(B, H, Da) actions -> (B, H * Da) ids, time-major (all dims of step 0 first)."""
        B, H, D = chunks.shape
        local = self.action_codec.encode(chunks.reshape(B * H, D).astype(np.float32))
        return self.layout.to_global("action", local).reshape(B, H * D)

    def check_observation(self, obs: Observation) -> None:
        missing = [c for c in self.config.cameras if c not in obs.images]
        if missing:
            raise CheckpointMismatchError(
                f"observation lacks camera(s) {missing}; this policy needs "
                f"{list(self.config.cameras)}, got {sorted(obs.images)}")
        size = self.model.cfg.image_size
        for c in self.config.cameras:
            if obs.images[c].shape != (size, size, 3):
                raise CheckpointMismatchError(
                    f"camera {c!r} image is {obs.images[c].shape}, policy needs "
                    f"({size}, {size}, 3)")
        if obs.state.shape != (self.config.state_dim,):
            raise CheckpointMismatchError(
                f"state has shape {obs.state.shape}, policy needs ({self.config.state_dim},)")

    # -- acting ------------------------------------------------------------------------------
    def reset(self) -> None:
        pass

    def infer(self, obs: Observation) -> ActionChunk:
        return ActionChunk(self.infer_chunk(obs).actions[: self.config.execute])

    def infer_chunk(self, obs: Observation, committed: np.ndarray | None = None) -> ActionChunk:
        """The whole H-step chunk for `obs`, continuing `committed` (k, Da) actions if given.

        Real-time chunking for an autoregressive policy: the actions that will run while this
        inference is in flight are already decided, so their tokens are fed through the decoder
        as a forced prefix of the action segment and only the remaining H - k steps are
        generated; the returned chunk starts with exactly the committed actions (as the codec
        represents them).
        """
        self.check_observation(obs)
        frames = np.stack([obs.images[c] for c in self.config.cameras])[None]  # (1, C, H, W, 3)
        prefix = None if committed is None else np.asarray(committed, np.float32)[None]
        chunk = self.generate(self.text_ids([obs.instruction]), frames,
                              self.state_ids(obs.state[None]), prefix)[0]
        return ActionChunk(chunk)

    def sample_chunks(self, obs: Observation, k: int, rng: np.random.Generator,
                      temperature: float = 1.0, top_k: int | None = None) -> np.ndarray:
        """(k, H, Da) candidate chunks for `obs`: row 0 the greedy chunk, the rest sampled
        (what lookahead chooses among; policies.lookahead)."""
        if k < 1:
            raise ValueError(f"need at least one candidate, got k={k}")
        greedy = self.infer_chunk(obs).actions[None]  # (1, H, Da); also checks obs
        if k == 1:
            return greedy
        H, Da = self.config.chunk, self.config.action_dim
        frames = np.stack([obs.images[c] for c in self.config.cameras])[None]
        text, state = self.text_ids([obs.instruction]), self.state_ids(obs.state[None])
        reps = (k - 1, 1)
        ids = self.engine.sample(np.tile(text, reps), np.tile(frames, (k - 1, 1, 1, 1, 1)),
                                 np.tile(state, reps), H * Da, self._act_lo, self._act_hi,
                                 rng, temperature, top_k)
        sampled = self.action_codec.decode(self.layout.to_local("action", ids).reshape(-1, Da))
        return np.concatenate([greedy, sampled.reshape(k - 1, H, Da)]).astype(np.float32)

    def generate(self, text: np.ndarray, frames: np.ndarray, state: np.ndarray,
                 prefix: np.ndarray | None = None) -> np.ndarray:
        """Greedy decode of (B, H, Da) action chunks; `prefix` (B, k, Da) actions, k < H, are
        forced as the chunk's first k steps."""
        H, Da = self.config.chunk, self.config.action_dim
        forced = np.empty((len(text), 0), np.int64)
        if prefix is not None and prefix.shape[1]:
            if prefix.shape[1] >= H or prefix.shape[2] != Da:
                raise ValueError(f"forced prefix of shape {prefix.shape}: needs (B, k < {H}, "
                                 f"{Da})")
            forced = self.action_ids(prefix)  # (B, k * Da), time-major like the chunk
        # The forced ids extend the prefill: the decoder reads them exactly as if it had
        # generated them, and decoding resumes after them.
        ids = self.engine.generate(text, frames, np.concatenate([state, forced], axis=1),
                                   H * Da - forced.shape[1], self._act_lo, self._act_hi,
                                   self.config.decode)
        local = self.layout.to_local("action", np.concatenate([forced, ids], axis=1))
        actions = self.action_codec.decode(local.reshape(-1, Da))
        return actions.reshape(len(text), H, Da)

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        from safetensors.torch import save_file

        directory.mkdir(parents=True, exist_ok=True)
        # CPU copies: the model keeps training on its device while we write.
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(directory / "model.safetensors"))
        meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "model": self.model.cfg.to_dict(), "policy": self.config.to_dict(),
                "vocab_hash": self.layout.hash}
        (directory / "config.json").write_text(json.dumps(meta, indent=2))
        self.layout.save(directory / "vocab.json")
        self.state_codec.save(directory / "state_codec")
        self.action_codec.save(directory / "action_codec")
        self.text_tokenizer.save(directory / "text_tokenizer.json")

    @classmethod
    def load(cls, directory: Path) -> TokenPolicy:
        from safetensors.torch import load_file

        meta = json.loads((directory / "config.json").read_text())
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointMismatchError(f"{directory} is not a {CHECKPOINT_FORMAT} checkpoint")
        if meta.get("version") != CHECKPOINT_VERSION:
            raise CheckpointMismatchError(
                f"checkpoint version {meta.get('version')}, this code reads {CHECKPOINT_VERSION}")
        layout = VocabLayout.load(directory / "vocab.json")
        if layout.hash != meta["vocab_hash"]:
            raise CheckpointMismatchError(
                f"vocab.json (hash {layout.hash}) is not the vocabulary the weights were trained "
                f"with (hash {meta['vocab_hash']})")
        pcfg = meta["policy"]
        config = PolicyConfig(**{**pcfg, "cameras": tuple(pcfg["cameras"])})
        model = TokenTransformer(TransformerConfig(**meta["model"]))
        weights = load_file(str(directory / "model.safetensors"))
        model.load_state_dict(weights)
        return cls(model, config, layout, BinningCodec.load(directory / "state_codec"),
                   BinningCodec.load(directory / "action_codec"),
                   InstructionTokenizer.load(directory / "text_tokenizer.json"))


def is_checkpoint(path: Path) -> bool:
    cfg = path / "config.json"
    if not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text()).get("format") == CHECKPOINT_FORMAT
    except (OSError, ValueError):
        return False
