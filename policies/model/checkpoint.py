"""A token-policy checkpoint on disk: what config.json holds and how each file is read back.

    RUN/config.json          format, version, the model's and the policy's config, vocab hash
    RUN/model.safetensors    the weights
    RUN/vocab.json           the vocabulary layout (action_codec.vocab)
    RUN/{state,action,plan}_codec/, RUN/text_tokenizer.json

Every reader here turns a missing, damaged or disagreeing file into a PolicyCheckpointError (or
CheckpointMismatchError) that names the file and what to do, never a traceback from deep inside
safetensors or json. `TokenPolicy.save/load` (token_policy.py) use them.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from envs.features import ACTION_NAMES, EE_NAMES, ActionLayout, StateLayout
from policies.base import PolicyCheckpointError
from policies.inference.torch_engine import check_rule
from policies.model.blocks import check_blocks, check_plan_block, plan_block_name
from policies.model.plan_targets import N_GOAL_SLOTS, POSE, plan_dim
from policies.model.robots import RobotStates
from policies.model.transformer import TokenTransformer, TransformerConfig

CHECKPOINT_FORMAT = "motoken.token_policy"
CHECKPOINT_VERSION = 2  # 2: BPE instruction tokens (text_tokenizer.json), CNN image encoder


class CheckpointMismatchError(PolicyCheckpointError):
    """A checkpoint whose parts (vocabulary, codecs, config) do not fit together or the env."""


# Said wherever a policy meets a robot whose state it was not trained on.
RETRAIN_HINT = ("A policy reads only the state it was trained on: train one on demonstrations "
                "of this robot (`agent collect --env SPEC --out DIR`, then `agent train --data "
                "DIR --out RUN`), or fine-tune one already trained on its state (`agent train "
                "--init RUN --data DIR --out NEW`).")
# What to do about a checkpoint file that cannot be read: nothing in it can be trusted.
DAMAGED = ("the file is damaged (empty, truncated, overwritten or edited): restore the "
            "checkpoint from where it was trained, or re-train it (agent train)")
# ... and about files that read but disagree with each other.
MIXED = ("the checkpoint's files are from different runs or were edited: restore it from "
          "where it was trained, or re-train it (agent train)")


def delay_tokens(n: int) -> tuple[str, ...]:
    """The special tokens delay_0 .. delay_n of a policy with PolicyConfig.delay_tokens n."""
    return tuple(f"delay_{d}" for d in range(n + 1)) if n else ()


@dataclass(frozen=True)
class PolicyConfig:
    """What the policy reads and writes, beside the network's own config."""

    cameras: tuple[str, ...] = ("front", "wrist")
    state_dim: int = 14
    action_dim: int = 7
    # What each state and action dimension means (envs.features), as the training data named
    # them: config.json says which arm's state the policy reads.
    state_names: tuple[str, ...] = field(kw_only=True)
    action_names: tuple[str, ...] = field(kw_only=True)
    chunk: int = 8  # actions predicted per inference (H)
    execute: int = 4  # of those, executed before the next inference (receding horizon)
    text_len: int = 12  # instruction tokens (BPE), padded; a longer instruction is an error
    # how each action token is picked (policies.inference.torch_engine.DECODE_RULES)
    decode: str = "median"
    plan_dim: int = 0  # plan tokens written before the actions (0: none)
    # the plan starts with every object's position (policies.model.plan_targets)
    plan_objects: bool = False
    # How many written tokens one decoder call computes (policies.model.blocks): 1, token by
    # token (checkpoints before it); action_dim, one chunk step per call; chunk * action_dim,
    # the whole chunk in one pass (OpenVLA-OFT's parallel decoding, on our tokens; what
    # config.json's "parallel_actions": true meant, see upgrade_policy_fields). Any divisor of
    # chunk * action_dim.
    action_block: int = 1
    # How the plan's tokens are cut into decoder calls (blocks.PLAN_BLOCKS): "token" by token
    # (checkpoints before it), "xyz" (each position's three values in one call), or the
    # "whole" plan in one (config.json's plan_block true/false: upgrade_policy_fields).
    plan_block: str = "token"
    # The env specs (e.g. "mujoco:pick_place") and robot types (e.g. "mk6") its training data
    # was recorded on (the datasets' meta/motoken.json and info.json), sorted. None: unknown (a
    # checkpoint written before they were recorded, or a dataset that does not say); never
    # guessed. `agent run` refuses a sim env outside trained_on (agent/commands/run.py).
    trained_on: tuple[str, ...] | None = None
    trained_robots: tuple[str, ...] | None = None
    # A policy of several robots (policies.model.robots): each robot's own state names, keyed
    # by the robot names of trained_robots; state_names is then their shared layout, which
    # the state codec reads. None: one robot, whose state state_names is (config.json of
    # such a policy has no robot_states key, as before it existed).
    robot_states: dict[str, tuple[str, ...]] | None = None
    # A policy trained on tasks with different objects (policies.training.mixed): the objects
    # of its per-object plan and aux targets, the union of its tasks' (env state names without
    # ".x" etc.), in this order; an object a task lacks is the plan's absent id, the last id
    # of the plan segment (action_codec.absent.WithAbsent). None: one set of objects, read in
    # the order its env state has them (config.json then has no such key, as before).
    plan_object_names: tuple[str, ...] | None = None
    # A policy trained for `--exec ahead` with delay tokens (agent train --delay-max N
    # --delay-token): its state closes with delay_d instead of end_state, d in 0..delay_tokens
    # the ticks of committed actions the state was rolled forward through, so the policy knows
    # which future its chunk starts at. 0: end_state (config.json then has no such key).
    delay_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("cameras", "state_names", "action_names"):  # lists from JSON
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("trained_on", "trained_robots"):
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{name} must be a list of strings or null, got {value!r}")
                object.__setattr__(self, name, tuple(value))
        state, action = self.state_layout, self.action_layout  # LayoutError if not layouts
        if (state.dim, action.dim) != (self.state_dim, self.action_dim):
            raise ValueError(f"state_names/action_names name {state.dim}/{action.dim} dims, "
                             f"but state_dim/action_dim are {self.state_dim}/{self.action_dim}")
        if self.robot_states is not None:
            self._check_robot_states()
        check_blocks(self.chunk, self.action_dim, self.action_block)
        check_plan_block(self.plan_block, self.plan_dim)
        if self.plan_object_names is not None:
            self._check_plan_objects()
        if not isinstance(self.delay_tokens, int) or self.delay_tokens < 0:
            raise ValueError(f"delay_tokens must be an int >= 0, got {self.delay_tokens!r}")

    @property
    def parallel_actions(self) -> bool:
        """The whole action chunk is one block (one decoder pass)."""
        return self.action_block == self.chunk * self.action_dim

    @property
    def blocks(self) -> bool:
        """Some tokens are decoded as blocks: the vocabulary needs action_query."""
        return self.action_block > 1 or self.plan_block != "token"

    def _check_plan_objects(self) -> None:
        names = self.plan_object_names
        if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"plan_object_names must be a list of object names or null, got "
                             f"{names!r}")
        names = tuple(names)
        object.__setattr__(self, "plan_object_names", names)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"plan_object_names must name distinct objects, got {list(names)}")
        want = plan_dim((N_GOAL_SLOTS + len(names)) * POSE, objects=True)
        if self.plan_dim and (not self.plan_objects or self.plan_dim != want):
            raise ValueError(f"plan_object_names names {len(names)} objects, so the plan is "
                             f"every object's xyz and the goal ({want} values, plan_objects "
                             f"true); the config has plan_dim {self.plan_dim}, plan_objects "
                             f"{self.plan_objects}")

    def _check_robot_states(self) -> None:
        value = self.robot_states
        if not isinstance(value, dict):
            raise ValueError(f"robot_states must map robot names to state names, got "
                             f"{value!r}")
        object.__setattr__(self, "robot_states", {r: tuple(n) for r, n in value.items()})
        robots = self.robots  # ValueError/LayoutError: fewer than two robots, bad names
        assert robots is not None
        if self.trained_robots is None or set(self.trained_robots) != set(robots.robots):
            raise ValueError(f"robot_states names robots {list(robots.robots)} but "
                             f"trained_robots is {self.trained_robots}: they must agree")
        if self.state_layout != robots.shared:
            raise ValueError(f"state_names of a multi-robot policy must be its robots' "
                             f"shared layout {list(robots.shared.names)}, got "
                             f"{list(self.state_names)}")

    @property
    def robots(self) -> RobotStates | None:
        """The robots and their layouts of a multi-robot policy; None for one robot."""
        return None if self.robot_states is None else RobotStates.from_names(self.robot_states)

    def describe_state(self) -> str:
        """One line: the state (or each robot's state) the policy reads."""
        robots = self.robots
        return self.state_layout.describe() if robots is None else robots.describe()

    @property
    def state_layout(self) -> StateLayout:
        return StateLayout(self.state_names)

    @property
    def action_layout(self) -> ActionLayout:
        return ActionLayout(self.action_names)

    def to_dict(self) -> dict:
        """As config.json holds it (lists, so it compares equal to the JSON read back)."""
        listed = {k: None if v is None else list(v) for k, v in (
            ("trained_on", self.trained_on), ("trained_robots", self.trained_robots))}
        out = {**asdict(self), "cameras": list(self.cameras),
               "state_names": list(self.state_names), "action_names": list(self.action_names),
               **listed}
        # Absent for one robot: such a config.json (and an ONNX export's copy) stays as it was.
        robot_states = out.pop("robot_states")
        if robot_states is not None:
            out["robot_states"] = {r: list(n) for r, n in robot_states.items()}
        objects = out.pop("plan_object_names")  # absent for one object set, likewise
        if objects is not None:
            out["plan_object_names"] = list(objects)
        if not out["delay_tokens"]:  # absent without delay tokens, likewise
            del out["delay_tokens"]
        return out

    def describe_trained_on(self) -> str:
        """e.g. "mujoco:pick_place (robot mk6)", or says it is unknown."""
        if self.trained_on is None:
            return "unknown envs (its config.json predates trained_on)"
        robots = "" if not self.trained_robots else f" (robot {', '.join(self.trained_robots)})"
        return ", ".join(self.trained_on) + robots


def legacy_names(pcfg: dict, path: Path) -> dict[str, tuple[str, ...]]:
    """state_names and action_names for a config.json written before checkpoints had them.

    A 14-value state is 6 joints + EE, and the sims' only 6-joint arm is MuJoCo's mk6, on which
    the shipped checkpoints and their benches were trained: its names are assumed, with a
    warning (a 6-joint arm behind the bridge, e.g. a UR5e, would look the same). Any other
    width is refused rather than guessed (7 joints could be the Panda or another arm).
    """
    if (pcfg.get("state_dim"), pcfg.get("action_dim")) != (14, len(ACTION_NAMES)):
        raise CheckpointMismatchError(
            f"{path} names no state or action fields (written before checkpoints recorded "
            f"them) and has state_dim {pcfg.get('state_dim')}, action_dim "
            f"{pcfg.get('action_dim')}; only the mk6 arm's 14/7 are recognised. Add "
            f"\"state_names\" (the joint names, then {list(EE_NAMES)}) and \"action_names\" "
            f"({list(ACTION_NAMES)}) to its \"policy\" section")
    from sims.mujoco_sim import ARM_JOINTS  # loads MuJoCo: only for these old checkpoints

    warnings.warn(f"{path} names no state or action fields (written before checkpoints "
                  f"recorded them); assuming the mk6 arm's {list(ARM_JOINTS)}, the sims' only "
                  f"14-value state. If it was trained on another 6-joint arm, add its "
                  f"\"state_names\" to the file", stacklevel=3)
    return {"state_names": ARM_JOINTS + EE_NAMES, "action_names": ACTION_NAMES}


Part = TypeVar("Part")


def read_config(path: Path) -> dict[str, Any]:
    """config.json, checked for the format, version and the keys `load` reads."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:  # missing, unreadable, not UTF-8, not JSON
        raise PolicyCheckpointError(f"{path} cannot be read as JSON ({e}); {DAMAGED}") from e
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatchError(f"{path.parent} is not a {CHECKPOINT_FORMAT} checkpoint")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointMismatchError(
            f"{path}: checkpoint version {meta.get('version')}, this code reads "
            f"{CHECKPOINT_VERSION}; re-train it with this version (agent train)")
    missing = [k for k in ("model", "policy", "vocab_hash") if k not in meta]
    if missing:
        raise PolicyCheckpointError(f"{path} lacks {missing}; {DAMAGED}")
    return meta


def upgrade_policy_fields(pcfg: dict) -> dict:
    """A policy section as this code writes it: "parallel_actions" (written by checkpoints
    and exports before action_block existed) becomes the action_block it meant, the whole
    chunk (true) or 1 (false). Both at once must agree. A plan_block of true/false (before
    "xyz" existed) becomes "whole"/"token".

    Raises:
        ValueError: parallel_actions and an action_block that says otherwise.
    """
    out = dict(pcfg)
    if "plan_block" in out:
        out["plan_block"] = plan_block_name(out["plan_block"])
    if "parallel_actions" not in out:
        return out
    parallel = out.pop("parallel_actions")
    default = {f.name: f.default for f in fields(PolicyConfig)}
    meant = (out.get("chunk", default["chunk"]) * out.get("action_dim", default["action_dim"])
             if parallel else 1)
    if out.setdefault("action_block", meant) != meant:
        raise ValueError(f"parallel_actions {parallel} contradicts action_block "
                         f"{out['action_block']}")
    return out


def policy_config(pcfg: dict, path: Path) -> PolicyConfig:
    """config.json's "policy" section; names filled in for older files (legacy_names), older
    fields read as what they meant (upgrade_policy_fields)."""
    has = [k for k in ("state_names", "action_names") if k in pcfg]
    if len(has) == 1:
        raise CheckpointMismatchError(f"{path} has {has[0]} but not the other of "
                                      f"state_names/action_names")
    if not has:
        pcfg = {**pcfg, **legacy_names(pcfg, path)}
    try:
        return PolicyConfig(**upgrade_policy_fields(pcfg))
    except ValueError as e:  # names that are no layout, or disagree with the dims
        raise CheckpointMismatchError(f"{path}: {e}") from None


def build(path: Path, meta: dict[str, Any]) -> tuple[PolicyConfig, TokenTransformer]:
    """The policy config and the (untrained) model config.json describes."""
    try:
        config = policy_config(meta["policy"], path)
        check_rule(config.decode)
        model = TokenTransformer(TransformerConfig(**meta["model"]))
    except PolicyCheckpointError:
        raise  # _policy_config's own: it names what is missing and how to fix it
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # RuntimeError: torch sizes
        raise PolicyCheckpointError(
            f"{path} describes no model this code can build ({type(e).__name__}: {e}); "
            f"{MIXED}") from e
    return config, model


def load_weights(model: TokenTransformer, path: Path, config: Path) -> None:
    """model.safetensors into `model`; every tensor must have the shape config.json implies."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        weights = load_file(str(path))
    except (OSError, SafetensorError) as e:
        raise PolicyCheckpointError(f"{path} cannot be read ({e}); {DAMAGED}") from e
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in weights.items()}
    wrong = [f"{k} is {got[k]} in the weights but {want[k]} in the model config.json describes"
             for k in want if k in got and got[k] != want[k]]
    wrong += [f"the weights lack {k}" for k in want if k not in got]
    wrong += [f"the weights hold {k}, which the model lacks" for k in got if k not in want]
    if wrong:
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise CheckpointMismatchError(f"{path} does not fit {config}: {wrong[0]}{more}; {MIXED}")
    model.load_state_dict(weights)


def read_part(path: Path, load: Callable[[Path], Part]) -> Part:
    """One of the checkpoint's vocabulary, codec or tokenizer files."""
    try:
        return load(path)
    except (OSError, ValueError, KeyError, TypeError) as e:  # CodecError is a ValueError
        raise PolicyCheckpointError(f"{path} cannot be loaded ({e}); {DAMAGED}") from e


def is_checkpoint(path: Path) -> bool:
    """Whether `path` is a token-policy checkpoint: its config.json names this format, or is
    unreadable beside a model.safetensors (loading then says what is wrong with it, instead of
    the directory being taken for no checkpoint at all)."""
    cfg = path / "config.json"
    if not cfg.is_file():
        return False
    try:
        meta = json.loads(cfg.read_text())
    except (OSError, ValueError):
        return (path / "model.safetensors").is_file()
    return isinstance(meta, dict) and meta.get("format") == CHECKPOINT_FORMAT
