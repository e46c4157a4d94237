"""TokenPolicy: observations -> token sequences -> transformer -> action tokens -> actions.

Owns everything a checkpoint must carry to act: the model, the fitted state, action (and plan)
codecs and the vocabulary layout. Decoding is deterministic (each token the median bin of its
distribution, `PolicyConfig.decode`) with a KV cache and constrained to the
action segment of the vocabulary, so every emitted id decodes; the codec still validates.

A policy trained with plan tokens (`PolicyConfig.plan_dim`,
policies.model.plan_targets.plan_targets) first
writes its estimate of where the named cube and plate are relative to the tool, then
begin_actions, then the action chunk; the plan is decoded too and kept as `last_plan`. A plan
over the union of several tasks' objects (PolicyConfig.plan_object_names) may write the plan's
absent id (its segment's last) at an object's three positions, never at the goal's; it
decodes to NaN.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from action_codec.absent import WithAbsent
from action_codec.binning import BinningCodec
from action_codec.vocab import VocabLayout
from envs.features import ActionLayout, StateLayout
from envs.types import ActionChunk, Observation
from policies.inference.torch_engine import DecodeEngine, TorchEngine, check_rule
from policies.model.blocks import QUERY, Schedule, SlotLayout, groups, schedule, slot_layout
from policies.model.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    MIXED,
    RETRAIN_HINT,
    CheckpointMismatchError,
    PolicyConfig,
    build,
    delay_tokens,
    is_checkpoint,
    load_weights,
    read_config,
    read_part,
)
from policies.model.plan_targets import PLAN_GOAL, PLAN_NAMES
from policies.model.robots import ABSENT, robot_token
from policies.model.text import InstructionTokenizer
from policies.model.transformer import TokenTransformer

# Re-exported: callers take the checkpoint's names from the policy's module.
__all__ = ["CheckpointMismatchError", "PolicyConfig", "TokenPolicy", "is_checkpoint"]


class TokenPolicy:
    """The learned multimodal policy. `infer` returns `execute` actions of a chunk of H."""

    name = "token"

    def __init__(self, model: TokenTransformer, config: PolicyConfig, layout: VocabLayout,
                 state_codec: BinningCodec, action_codec: BinningCodec,
                 text_tokenizer: InstructionTokenizer,
                 plan_codec: BinningCodec | WithAbsent | None = None) -> None:
        self.model, self.config, self.layout = model.eval(), config, layout
        self.state_codec, self.action_codec = state_codec, action_codec
        self.plan_codec = plan_codec
        self.text_tokenizer = text_tokenizer
        # (B, plan_dim) of the latest generate(); NaN where it wrote the absent id
        self.last_plan: np.ndarray | None = None
        self._check_consistency()
        self._set_embedding_order()
        self._act_lo = layout.ranges["action"].start
        self._act_hi = layout.ranges["action"].stop
        self._pad = layout.special_id("pad")  # what block decoding's unread slots hold
        self.engine: DecodeEngine = TorchEngine(self.model, device="cpu")

    def use_engine(self, engine: DecodeEngine) -> TokenPolicy:
        """Run inference on `engine` (see policies.inference.backend) from now on; returns self."""
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
        if (c.plan_dim > 0) != (self.plan_codec is not None):
            raise CheckpointMismatchError(
                f"policy config has plan_dim {c.plan_dim} but "
                f"{'no' if self.plan_codec is None else 'a'} plan codec")
        if self.plan_codec is not None and (isinstance(self.plan_codec, WithAbsent)
                                            != (c.plan_object_names is not None)):
            raise CheckpointMismatchError(
                f"policy config has plan_object_names {c.plan_object_names} but a plan codec "
                f"{'with' if isinstance(self.plan_codec, WithAbsent) else 'without'} an "
                f"absent id")
        if self.plan_codec is None and lay.sizes.size_of("plan"):
            raise CheckpointMismatchError(
                f"vocabulary has {lay.sizes.size_of('plan')} plan ids but the policy has no "
                f"plan codec")
        codecs = [("state", self.state_codec, c.state_dim),
                  ("action", self.action_codec, c.action_dim)]
        if self.plan_codec is not None:
            codecs.append(("plan", self.plan_codec, c.plan_dim))
        for name, codec, dims in codecs:
            if codec.vocab_size != lay.sizes.size_of(name):
                raise CheckpointMismatchError(
                    f"{name} codec has {codec.vocab_size} tokens but the vocabulary's {name} "
                    f"segment has {lay.sizes.size_of(name)}")
            if codec.dims != dims:
                raise CheckpointMismatchError(
                    f"{name} codec was fitted on {codec.dims} dims, policy expects {dims}")
        if c.blocks and QUERY not in lay.sizes.specials:
            raise CheckpointMismatchError(
                f"policy config decodes blocks of tokens (action_block {c.action_block}, "
                f"plan_block {c.plan_block}) but the vocabulary has no {QUERY} token")
        robots = c.robots
        lacking = [] if robots is None else [n for n in robots.specials
                                              if n not in lay.sizes.specials]
        if lacking:
            raise CheckpointMismatchError(
                f"policy config names robots {list(robots.robots)} but the vocabulary lacks "
                f"the special tokens {lacking}")
        lacking = [n for n in delay_tokens(c.delay_tokens) if n not in lay.sizes.specials]
        if lacking:
            raise CheckpointMismatchError(
                f"policy config has delay tokens 0..{c.delay_tokens} but the vocabulary lacks "
                f"{lacking}")
        if self.model.cfg.n_cameras != len(c.cameras):
            raise CheckpointMismatchError(
                f"model has {self.model.cfg.n_cameras} camera slots, config names {c.cameras}")

    def _set_embedding_order(self) -> None:
        """Tell the embedding which ids are ordered bins (see TokenEmbedding)."""
        import torch

        V = self.layout.total_size
        value, segment = torch.zeros(V), torch.zeros(V, dtype=torch.long)
        for seg, name in ((1, "state"), (2, "action"), (3, "plan")):
            r = self.layout.ranges[name]
            # The plan's absent id (a union plan's last) is no bin: unordered, like a special.
            stop = r.stop - (name == "plan" and self.plan_absent_id is not None)
            if stop > r.start:
                value[r.start:stop] = torch.linspace(-1.0, 1.0, stop - r.start)
                segment[r.start:stop] = seg
        self.model.embed.set_order(value.to(self.model.embed.weight.device),
                                   segment.to(self.model.embed.weight.device))

    @property
    def plan_absent_id(self) -> int | None:
        """The global id of an absent plan value, a union plan's segment's last (WithAbsent's
        absent_id; the segment's size is the codec's, _check_consistency); None: no such id."""
        absent = isinstance(self.plan_codec, WithAbsent)
        return self.layout.ranges["plan"].stop - 1 if absent else None

    def plan_spans(self) -> tuple[list[int], list[int]]:
        """Per plan position, the id range [lo, hi) it is written in: the plan segment, less
        the absent id at the goal's positions (every task has a named object and target)."""
        r, Dp = self.layout.ranges["plan"], self.config.plan_dim
        hi = [r.stop] * Dp
        if self.plan_absent_id is not None:
            hi[PLAN_GOAL] = [self.plan_absent_id] * len(PLAN_NAMES)
        return [r.start] * Dp, hi

    # -- tokenization (also used by training) --------------------------------------------
    def text_ids(self, instructions: list[str]) -> np.ndarray:
        """(B, text_len) global ids of the BPE instruction tokens, padded."""
        return self.text_tokenizer.encode_padded(
            instructions, self.config.text_len, self.layout.special_id("pad"),
            lambda ids: self.layout.to_global("text", ids))

    def state_ids(self, states: np.ndarray, robots: list[str] | None = None,
                  delays: np.ndarray | None = None) -> np.ndarray:
        """(B, Ds) float state -> (B, Ds + 3) ids: begin_state, state, end_state, then
        begin_plan (a policy with plan tokens) or begin_actions: what the policy writes next.

        A policy with delay tokens (PolicyConfig.delay_tokens) closes each row's state with
        delay_d instead, d = `delays[i]` (None: 0) the ticks the state was rolled forward.

        A multi-robot policy (policies.model.robots) reads states packed into its shared
        layout (NaN: absent) and each row's robot in `robots`: the row opens with that robot's
        token instead of begin_state, and absent dims are the state_absent id. A one-robot
        policy ignores `robots` (its one layout was checked where the states came from)."""
        lay = self.layout
        states = states.astype(np.float32)
        if self.config.robot_states is None:
            ids = lay.to_global("state", self.state_codec.encode(states))
            first = np.full((len(states), 1), lay.special_id("begin_state"))
        else:
            if robots is None or len(robots) != len(states):
                raise ValueError(f"a multi-robot policy needs one robot name per state row, "
                                 f"got {robots!r} for {len(states)} rows")
            known = self.config.robots
            absent = np.stack([known.absent(r) for r in robots])  # ValueError: unknown robot
            if (np.isnan(states) != absent).any():  # NaN exactly in the robot's absent slots
                raise ValueError("packed states must be NaN exactly in the joint slots their "
                                 "robot lacks (RobotStates.pack)")
            filled = np.where(absent, self.state_codec.lo, states).astype(np.float32)
            local = self.state_codec.encode(filled)  # absent dims' bins are replaced below
            ids = np.where(absent, lay.special_id(ABSENT), lay.to_global("state", local))
            first = np.array([[lay.special_id(robot_token(r))] for r in robots])
        nxt = "begin_plan" if self.config.plan_dim else "begin_actions"
        close = np.full((len(states), 1), lay.special_id("end_state"))
        if self.config.delay_tokens:
            d = np.zeros(len(states), np.int64) if delays is None else np.asarray(delays)
            if d.shape != (len(states),) or (d < 0).any() or (d > self.config.delay_tokens).any():
                raise ValueError(f"delays must be {len(states)} ints in 0.."
                                 f"{self.config.delay_tokens} (the policy's delay tokens), "
                                 f"got {d.tolist()}")
            names = delay_tokens(self.config.delay_tokens)
            close = np.array([[lay.special_id(names[int(k)])] for k in d])
        elif delays is not None and np.any(np.asarray(delays) != 0):
            raise ValueError("this policy has no delay tokens (trained without --delay-token): "
                             "it reads states that were not rolled forward")
        return np.concatenate([first, ids, close,
                               np.full((len(states), 1), lay.special_id(nxt))], axis=1)

    def observation_state_ids(self, obs: Observation, delay: int = 0) -> np.ndarray:
        """(1, Ds + 3) state ids of one observation (state_ids), its state rolled forward
        `delay` ticks: a multi-robot policy packs it into its shared layout as obs.robot's
        state (check_observation says if it can't)."""
        robots, delays = self.config.robots, np.array([delay])
        if robots is None:
            return self.state_ids(obs.state[None], delays=delays)
        return self.state_ids(robots.pack(obs.robot, obs.state[None]), [obs.robot], delays)

    def action_ids(self, chunks: np.ndarray) -> np.ndarray:
        """(B, H, Da) actions -> (B, H * Da) ids, time-major (all dims of step 0 first)."""
        B, H, D = chunks.shape
        local = self.action_codec.encode(chunks.reshape(B * H, D).astype(np.float32))
        return self.layout.to_global("action", local).reshape(B, H * D)

    def plan_ids(self, plans: np.ndarray) -> np.ndarray:
        """(B, plan_dim) plan targets -> (B, plan_dim + 1) ids: the plan, then begin_actions."""
        if self.plan_codec is None:
            raise ValueError("this policy was trained without plan tokens (plan_dim 0)")
        ids = self.layout.to_global("plan", self.plan_codec.encode(plans.astype(np.float32)))
        mark = np.full((len(plans), 1), self.layout.special_id("begin_actions"))
        return np.concatenate([ids, mark], axis=1)

    def write_plan(self, text: np.ndarray, frames: np.ndarray, state: np.ndarray) -> np.ndarray:
        """(B, plan_dim + 1) ids the policy writes after the prefix before its actions: its
        plan, then begin_actions; (B, 0) for a policy without plan tokens."""
        Dp = self.config.plan_dim
        if not Dp:
            return np.empty((len(text), 0), np.int64)
        plan = slot_layout(groups(Dp, self.config.plan_block, 0, 1)[:-1])  # the plan's groups
        given = np.full((len(text), Dp), -1, np.int64)
        lo, hi = self.plan_spans()
        s = schedule(plan, lo, hi, given, self._query_id(), self._pad)
        ids = self.engine.generate(text, frames, state, s.n, s.lo, s.hi, self.config.decode,
                                   forced=s.forced, feed=s.feed, echo=s.echo)
        return np.concatenate([s.tokens(ids), np.full((len(text), 1),
                                                      self.layout.special_id("begin_actions"))],
                              axis=1)

    def slot_layout(self) -> SlotLayout:
        """The decoded segment's slots (policies.model.blocks): what training feeds and what
        the engines decode, one layout for both."""
        c = self.config
        return slot_layout(groups(c.plan_dim, c.plan_block, c.chunk * c.action_dim,
                                  c.action_block))

    def _query_id(self) -> int:
        return self.layout.special_id(QUERY) if self.config.blocks else -1

    def decode_schedule(self, forced_actions: np.ndarray) -> Schedule:
        """What the decoder writes after the prefix: [plan ids, begin_actions] (if any), then
        the H * Da action ids, the first forced_actions.shape[1] of which are given (real-time
        chunking's committed steps), in the blocks of PolicyConfig.action_block/plan_block
        (policies.model.blocks); `Schedule.tokens` takes the written ids from the decoded."""
        B, k = forced_actions.shape
        Dp, n_act = self.config.plan_dim, self.config.chunk * self.config.action_dim
        head = Dp + 1 if Dp else 0
        lo, hi = [self._act_lo] * (head + n_act), [self._act_hi] * (head + n_act)
        given = np.full((B, head + n_act), -1, np.int64)
        if Dp:
            lo[:Dp], hi[:Dp] = self.plan_spans()
            given[:, Dp] = self.layout.special_id("begin_actions")
        given[:, head:head + k] = forced_actions
        return schedule(self.slot_layout(), lo, hi, given, self._query_id(), self._pad)

    def _split(self, ids: np.ndarray) -> np.ndarray:
        """Generated ids (B, n) -> (B, H, Da) actions; keeps the decoded plan in last_plan."""
        H, Da, Dp = self.config.chunk, self.config.action_dim, self.config.plan_dim
        if Dp:
            self.last_plan = self.plan_codec.decode(self.layout.to_local("plan", ids[:, :Dp]))
            ids = ids[:, Dp + 1:]
        actions = self.action_codec.decode(self.layout.to_local("action", ids).reshape(-1, Da))
        return actions.reshape(len(ids), H, Da).astype(np.float32)

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
        robots = self.config.robots
        if robots is None:
            want, layout = self.config.state_dim, self.config.state_layout
        else:
            try:
                layout = robots.layout_of(obs.robot)
            except ValueError as e:
                raise CheckpointMismatchError(f"{e}. {RETRAIN_HINT}") from None
            want = layout.dim
        if obs.state.shape != (want,):
            raise CheckpointMismatchError(
                f"state has shape {obs.state.shape}, policy needs ({want},): "
                f"it was trained on {layout.describe()}")

    def check_layouts(self, state: StateLayout, action: ActionLayout, source: str) -> None:
        """Raise CheckpointMismatchError unless `source` (e.g. "robot 'panda'", a dataset)
        names its state and action dimensions as the data this policy was trained on."""
        own_state, own_action = self.config.state_layout, self.config.action_layout
        robots = self.config.robots
        problems = []
        if robots is None and state != own_state:
            problems.append(f"{source} has {state.describe()}, this policy was trained on "
                            f"{own_state.describe()}")
        if robots is not None and robots.robot_with(state) is None:
            problems.append(f"{source} has {state.describe()}, this policy was trained on "
                            f"{robots.describe()}")
        if action != own_action:
            problems.append(f"{source} takes actions {list(action.names)}, this policy "
                            f"writes {list(own_action.names)}")
        if problems:
            raise CheckpointMismatchError("; ".join(problems) + ". " + RETRAIN_HINT)

    # -- acting ------------------------------------------------------------------------------
    def reset(self) -> None:
        pass

    def infer(self, obs: Observation) -> ActionChunk:
        return ActionChunk(self.infer_chunk(obs).actions[: self.config.execute])

    def infer_chunk(self, obs: Observation, committed: np.ndarray | None = None,
                    delay: int = 0) -> ActionChunk:
        """The whole H-step chunk for `obs`, continuing `committed` (k, Da) actions if given;
        `delay`: ticks obs.state was rolled forward (a policy with delay tokens; --exec ahead).

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
                              self.observation_state_ids(obs, delay), prefix)[0]
        return ActionChunk(chunk)

    def sample_chunks(self, obs: Observation, k: int, rng: np.random.Generator,
                      temperature: float = 1.0, top_k: int | None = None) -> np.ndarray:
        """(k, H, Da) candidate chunks for `obs`: row 0 the greedy chunk, the rest sampled
        (what lookahead chooses among; policies.video.lookahead)."""
        if k < 1:
            raise ValueError(f"need at least one candidate, got k={k}")
        greedy = self.infer_chunk(obs).actions[None]  # (1, H, Da); also checks obs
        if k == 1:
            return greedy
        frames = np.stack([obs.images[c] for c in self.config.cameras])[None]
        text, state = self.text_ids([obs.instruction]), self.observation_state_ids(obs)
        reps = (k - 1, 1)
        s = self.decode_schedule(np.empty((k - 1, 0), np.int64))
        ids = self.engine.sample(np.tile(text, reps), np.tile(frames, (k - 1, 1, 1, 1, 1)),
                                 np.tile(state, reps), s.n, s.lo, s.hi, rng, temperature,
                                 top_k, forced=s.forced, feed=s.feed, echo=s.echo)
        plan = self.last_plan  # the greedy chunk's plan: what the executed chunk follows
        sampled = self._split(s.tokens(ids))
        self.last_plan = plan
        return np.concatenate([greedy, sampled]).astype(np.float32)

    def generate(self, text: np.ndarray, frames: np.ndarray, state: np.ndarray,
                 prefix: np.ndarray | None = None) -> np.ndarray:
        """Greedy decode of (B, H, Da) action chunks; `prefix` (B, k, Da) actions, k < H, are
        forced as the chunk's first k steps."""
        H, Da = self.config.chunk, self.config.action_dim
        committed = np.empty((len(text), 0), np.int64)
        if prefix is not None and prefix.shape[1]:
            if prefix.shape[1] >= H or prefix.shape[2] != Da:
                raise ValueError(f"forced prefix of shape {prefix.shape}: needs (B, k < {H}, "
                                 f"{Da})")
            committed = self.action_ids(prefix)  # (B, k * Da), time-major like the chunk
        # The committed ids are fed to the decoder exactly as if it had generated them (after
        # the plan, which is still the policy's own), and decoding resumes after them.
        s = self.decode_schedule(committed)
        ids = self.engine.generate(text, frames, state, s.n, s.lo, s.hi, self.config.decode,
                                   forced=s.forced, feed=s.feed, echo=s.echo)
        return self._split(s.tokens(ids))

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
        if self.plan_codec is not None:
            self.plan_codec.save(directory / "plan_codec")

    @classmethod
    def load(cls, directory: Path) -> TokenPolicy:
        """The policy `save` wrote to `directory`.

        Raises:
            PolicyCheckpointError: a file missing, damaged, or disagreeing with the others
                (CheckpointMismatchError); the message names the file and what to do.
        """
        meta = read_config(directory / "config.json")
        layout = read_part(directory / "vocab.json", VocabLayout.load)
        if layout.hash != meta["vocab_hash"]:
            raise CheckpointMismatchError(
                f"{directory / 'vocab.json'} (hash {layout.hash}) is not the vocabulary the "
                f"weights were trained with (hash {meta['vocab_hash']}); {MIXED}")
        config, model = build(directory / "config.json", meta)
        load_weights(model, directory / "model.safetensors", directory / "config.json")
        plan = (read_part(directory / "plan_codec", BinningCodec.load) if config.plan_dim
                else None)
        if plan is not None and config.plan_object_names is not None:
            plan = WithAbsent(plan)  # the absent id is the config's, not the codec file's
        state, action = (read_part(directory / n, BinningCodec.load)
                         for n in ("state_codec", "action_codec"))
        text = read_part(directory / "text_tokenizer.json", InstructionTokenizer.load)
        try:
            return cls(model, config, layout, state, action, text, plan)
        except CheckpointMismatchError as e:
            raise CheckpointMismatchError(f"{directory}: {e}; {MIXED}") from e
