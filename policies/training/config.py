"""The settings of a training run: `TrainConfig`, the flags of `agent train` and the run's
RUN/train_config.json, one dataclass for both."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Literal

import tyro

from envs.features import ACTION_NAMES
from policies.model.blocks import PLAN_BLOCKS, check_blocks, plan_block_name
from policies.model.transformer import CONFIGS

#: The model sizes (policies.model.transformer.CONFIGS), as the choices of --model.
ModelName = Literal[tuple(sorted(CONFIGS))]  # type: ignore[valid-type]
PlanBlock = Literal[PLAN_BLOCKS]  # type: ignore[valid-type]


@dataclass(frozen=True)
class TrainConfig:
    """The training settings; a run keeps them in RUN/train_config.json, and --resume
    continues with them where no flag overrides them."""

    # Field docstrings are the flags' help (agent/commands/train.py): one line each, since
    # tyro keeps a docstring's indented line breaks.
    model: Annotated[ModelName, tyro.conf.arg(aliases=("--config",))] = "small"
    """model size (policies.model.transformer.CONFIGS)"""
    steps: int = 3000
    """optimizer steps in all (with --resume: up to this many)"""
    batch_size: int = 32
    """samples per step (per process under torchrun)"""
    lr: float = 1e-3
    """peak learning rate, after the linear warm-up"""
    min_lr_ratio: float = 0.05
    """the cosine decay ends at lr times this"""
    weight_decay: float = 0.05
    """AdamW weight decay of the weight matrices (none on norms and biases)"""
    warmup: int = 100
    """steps of linear learning-rate warm-up"""
    # Long enough that real-time chunking keeps usable steps at 200 ms of inference.
    chunk: int = 8
    """actions predicted per inference"""
    execute: int = 4
    """actions executed per inference (1..chunk)"""
    n_bins: int = 256
    """bins per action and state dimension (the codecs' vocabulary)"""
    # Small: the front camera is fixed, so a shift of s pixels blurs where things are by
    # ~s/128 of the table.
    shift_px: int = 3
    """random-shift augmentation, pixels at 128x128 (0: off)"""
    label_sigma: float = 1.0
    """Gaussian label smoothing over neighbouring action bins, in bins (0: one-hot)"""
    aux_weight: float = 1.0
    """weight of the object-pose loss, with observation.environment_state in the data (0: off)"""
    # |E_softmax[bin value] - expert value| per action token, in half ranges of each
    # dimension (policies.training.train.batch_loss).
    value_weight: float = 0.0
    """weight of the expected-value loss on action tokens (0: cross-entropy only)"""
    # The plan: where the named cube and plate are, written before the actions
    # (policies.model.plan_targets); it needs every episode's environment state.
    plan_weight: float = 1.0
    """weight of the plan tokens, with observation.environment_state in the data (0: no plan)"""
    plan_objects: bool = True
    """the plan starts with every object's position (--no-plan-objects: the named ones only)"""
    # Off: a recipe a teleoperated dataset supports (camera frames, instruction, proprioception
    # and actions only): no plan tokens or object-pose targets, env_state is never read.
    sim_truth: bool = True
    """use the simulator's object poses (plan, aux targets); --no-sim-truth: frames only"""
    # An instruction longer than the window is refused, never cut (policies.model.text);
    # experiments/generalist/NOTE.md measures what varied phrasings need.
    text_len: int = 12
    """instruction tokens the policy reads (BPE, padded); longer instructions are refused"""
    text_vocab: int = 320
    """instruction BPE vocabulary (256 bytes + merges fitted on the data's instructions)"""
    # policies.training.wording: robustness to wording never seen in training.
    text_noise: float = 0.0
    """share of samples whose words outside the objects' names are scrambled (0: off)"""
    # So the keypoints can follow the named cube and plate, not whichever cube is salient.
    film: bool = False
    """condition the image encoder on the instruction (FiLM)"""
    # PolicyConfig.action_block (policies.model.blocks): H * Da sequential decode steps
    # become H * Da / N; 7 (one chunk step per call) keeps the steps autoregressive.
    action_block: int = 1
    """action tokens decoded together per decoder call: 1, a divisor of chunk x 7 (7: per step)"""
    parallel_actions: bool = False
    """the whole action chunk in one pass: --action-block chunk x 7"""
    plan_block: PlanBlock = "token"
    """plan tokens per decoder call: one by one, each position's xyz together, or all at once"""
    # policies.training.data.stale_prefix: what --exec rtc forces at run time.
    stale_prefix: float = 0.0
    """(experimental) share of samples whose first actions are fed stale (0: off)"""
    stale_prefix_steps: int = 3
    """(experimental) longest stale prefix, in steps (1..chunk-1)"""
    # ChunkSampler.lagged: an out-of-date plan rather than a noisy one.
    stale_prefix_lag: int = 0
    """(experimental) stale prefix from the expert's chunk 1..L steps earlier (0: noise)"""
    # ChunkSampler.gather(delays=...): what --exec ahead asks for (VLASH-style).
    delay_max: int = 0
    """(experimental) for --exec ahead: state rolled through d ~ U{0..N} actions (0: off)"""
    # PolicyConfig.delay_tokens: the policy is told d (delay_0..delay_N close its state).
    delay_token: bool = False
    """(experimental) with --delay-max N: tell the policy d as a token (delay_0..delay_N)"""
    # HG-DAgger (policies.training.data.intervention_weights): datasets of `agent run
    # --takeover ... --dataset` say per frame whether a human acted; others are unaffected.
    intervention_weight: float = 1.0
    """sampling weight of frames a human acted in (intervention column) vs the rest"""
    only_interventions: bool = False
    """of datasets with an intervention column, train on the human's frames only"""
    # policies.training.data.env_balance_weights: datasets of several envs.
    balance_envs: bool = False
    """give every env of the datasets the same share of samples (not of frames)"""
    checkpoint_every: int = 500
    """steps between checkpoints (and at the last step)"""
    seed: int = 0
    """seed of sampling, augmentation and initialisation"""

    def __post_init__(self) -> None:
        if self.model not in CONFIGS:
            raise ValueError(f"unknown model config {self.model!r}; known: {sorted(CONFIGS)}")
        for name in ("steps", "batch_size", "chunk", "checkpoint_every", "text_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:  # not > also refuses NaN
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        for name in ("weight_decay", "warmup", "shift_px", "label_sigma", "aux_weight",
                     "value_weight", "plan_weight", "intervention_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.text_vocab < 256:
            raise ValueError(f"text_vocab must be >= 256 (the byte alphabet), got "
                             f"{self.text_vocab}")
        if self.n_bins < 2:
            raise ValueError(f"n_bins must be >= 2, got {self.n_bins}")
        if not 1 <= self.execute <= self.chunk:
            raise ValueError(f"execute must be in 1..chunk={self.chunk}, got {self.execute}")
        if not 0.0 <= self.stale_prefix <= 1.0:
            raise ValueError(f"stale_prefix is a share of samples in [0, 1], got "
                             f"{self.stale_prefix}")
        if self.stale_prefix_lag < 0:
            raise ValueError(f"stale_prefix_lag must be >= 0 steps, got {self.stale_prefix_lag}")
        n_actions = self.chunk * len(ACTION_NAMES)
        check_blocks(self.chunk, len(ACTION_NAMES), self.action_block)
        if self.parallel_actions and self.action_block not in (1, n_actions):
            raise ValueError(f"--parallel-actions means --action-block {n_actions} (the "
                             f"whole chunk); got --action-block {self.action_block} too")
        if self.plan_block not in PLAN_BLOCKS:
            raise ValueError(f"plan_block {self.plan_block!r} is not one of {list(PLAN_BLOCKS)}")
        if self.plan_block != "token" and not (self.plan_weight > 0 and self.sim_truth):
            raise ValueError(f"--plan-block {self.plan_block} decodes plan tokens in blocks; "
                             f"this run writes none (--plan-weight 0 or --no-sim-truth)")
        if not 0.0 <= self.text_noise <= 1.0:
            raise ValueError(f"text_noise is a share of samples in [0, 1], got "
                             f"{self.text_noise}")
        if self.delay_max < 0:
            raise ValueError(f"delay_max must be >= 0 steps, got {self.delay_max}")
        if self.delay_token and self.delay_max < 1:
            raise ValueError("--delay-token tells the policy how far --delay-max rolled its "
                             "state; it needs --delay-max N >= 1")
        if self.delay_max > 0 and self.stale_prefix > 0:
            raise ValueError("--delay-max (for --exec ahead) and --stale-prefix (for --exec "
                             "rtc) train for different run-time modes; choose one")
        if self.stale_prefix > 0 and not 1 <= self.stale_prefix_steps < self.chunk:
            raise ValueError(f"stale_prefix_steps must be in 1..{self.chunk - 1}, got "
                             f"{self.stale_prefix_steps}")


    @property
    def blocks(self) -> tuple[int, str]:
        """(action_block, plan_block) of the policy this run builds."""
        n_actions = self.chunk * len(ACTION_NAMES)
        return (n_actions if self.parallel_actions else self.action_block), self.plan_block


TRAIN_CONFIG = "train_config.json"


def load_train_config(run: Path, cls: type[TrainConfig] = TrainConfig) -> TrainConfig:
    """RUN/train_config.json read back into `cls` (a run's settings, for --resume). Keys that
    are not fields of `cls`, other than "init", are an error: settings this version cannot
    apply. Fields the file lacks (added since) take their defaults.

    Raises:
        ValueError: unreadable JSON, unknown keys or values `cls` refuses.
    """
    path = Path(run) / TRAIN_CONFIG
    saved = json.loads(path.read_text())
    saved.pop("init", None)  # which policy the run started from: not a setting
    if "plan_block" in saved:
        saved["plan_block"] = plan_block_name(saved["plan_block"])
    unknown = sorted(set(saved) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"{path} has settings {cls.__name__} does not know: {unknown}")
    return cls(**saved)
