"""Demonstrations as the trainer sees them, and batches of (observation, action chunk).

Episodes come from LeRobot-format datasets written by `agent collect` (or, in tests, straight
from rollouts). Every frame t yields one sample: the observation at t and the actions
t .. t+H-1; steps past the episode's end are padded by repeating its last action and masked
out of the loss, as LeRobot's `action_is_pad` does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from envs.errors import LayoutError
from envs.features import ACTION_LAYOUT, EE_NAMES, ActionLayout, StateLayout, roll_forward
from policies.model.robots import RobotStates

if TYPE_CHECKING:
    from dataset.reader import LeRobotDatasetReader


@dataclass(frozen=True)
class DemoEpisode:
    """One recorded episode. frames: camera -> (T, H, W, 3) uint8; state (T, Ds); action (T, Da).

    `action` is the label the policy is trained on: the expert's clean action or the applied one,
    as `load_demos(labels=...)` chose. `env_state` (T, E) is the simulator's ground truth when
    the dataset recorded it (auxiliary targets only, see policies.model.plan_targets).
    `state_layout` / `action_layout` name the dims of `state` / `action` (the dataset's
    feature names); a policy trained on the episode carries them in its checkpoint.
    `intervention` (T,) bool says which frames a human acted in, for episodes of a takeover
    run (`agent run --takeover ... --dataset`); None where the dataset has no such column.
    `env_state_names` (E,) names env_state's dims (envs.features.env_state_names: goal slots,
    then each object's pose), which tasks with different objects are matched by
    (policies.training.mixed); None where they are not known.
    """

    task: str
    frames: dict[str, np.ndarray]
    state: np.ndarray
    action: np.ndarray
    env_state: np.ndarray | None = None
    state_layout: StateLayout = field(kw_only=True)
    action_layout: ActionLayout = field(default=ACTION_LAYOUT, kw_only=True)
    # Where it was recorded: the env spec (meta/motoken.json) and robot type (info.json) of its
    # dataset; None where the dataset does not say.
    env: str | None = field(default=None, kw_only=True)
    robot_type: str | None = field(default=None, kw_only=True)
    intervention: np.ndarray | None = field(default=None, kw_only=True)
    env_state_names: tuple[str, ...] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        T = len(self.action)
        if (len(self.state) != T or any(len(f) != T for f in self.frames.values())
                or (self.env_state is not None and len(self.env_state) != T)
                or (self.intervention is not None and len(self.intervention) != T)):
            raise ValueError(f"episode arrays disagree on length: action {T}, state "
                             f"{len(self.state)}, frames {[len(f) for f in self.frames.values()]}")
        dims = (self.state.shape[1], self.action.shape[1])
        if dims != (self.state_layout.dim, self.action_layout.dim):
            raise ValueError(f"episode has state/action dims {dims}, its layouts name "
                             f"{self.state_layout.dim}/{self.action_layout.dim}")
        names, env = self.env_state_names, self.env_state
        if names is not None and env is not None and len(names) != env.shape[1]:
            raise ValueError(f"episode has an environment state of {env.shape[1]} values but "
                             f"names {len(names)}")


def demo_sources(demos: list[DemoEpisode]
                 ) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """The distinct env specs and robot types the episodes were recorded on, sorted; either is
    None (unknown) if any episode's dataset does not say: a partial list would be a guess."""
    envs = {d.env for d in demos}
    robots = {d.robot_type for d in demos}
    return (None if None in envs else tuple(sorted(envs)),  # type: ignore[type-var]
            None if None in robots else tuple(sorted(robots)))  # type: ignore[type-var]


def demo_layouts(demos: list[DemoEpisode]) -> tuple[StateLayout, ActionLayout]:
    """The state and action layouts every episode shares; episodes that differ are an error."""
    found = {(d.state_layout, d.action_layout) for d in demos}
    if not found:
        raise ValueError("no episodes")
    if len(found) > 1:
        raise ValueError(f"episodes differ in their state/action names "
                         f"({sorted(s.describe() for s, _ in found)}); a policy reads one layout")
    return found.pop()


def episode_layouts(demos: list[DemoEpisode]) -> list[tuple[StateLayout, ActionLayout]]:
    """The distinct (state, action) layouts of the episodes, in a fixed order."""
    found = {(d.state_layout, d.action_layout) for d in demos}
    return sorted(found, key=lambda f: (f[0].names, f[1].names))


def demo_robots(demos: list[DemoEpisode]) -> RobotStates | None:
    """The robots and their state layouts where the episodes hold more than one state layout
    (a multi-robot policy, policies.model.robots); None where they share one.

    Raises:
        ValueError: an episode that does not name its robot (robot_type), or a robot with
            episodes of two state layouts.
    """
    layouts = {d.state_layout for d in demos}
    if len(layouts) < 2:
        return None
    found: dict[str, StateLayout] = {}
    for d in demos:
        if d.robot_type is None:
            raise ValueError(f"the episodes hold {len(layouts)} state layouts; training one "
                             f"policy on several robots needs each episode's robot name (its "
                             f"dataset's info.json robot_type), and an episode of "
                             f"{d.state_layout.describe()} names none")
        seen = found.setdefault(d.robot_type, d.state_layout)
        if seen != d.state_layout:
            raise ValueError(f"robot {d.robot_type!r} has episodes of two state layouts, "
                             f"{seen.describe()} and {d.state_layout.describe()}; a robot "
                             f"has one")
    return RobotStates(tuple(found.items()))


@dataclass(frozen=True)
class Batch:
    instructions: list[str]
    frames: np.ndarray  # (B, C, H, W, 3) uint8
    state: np.ndarray  # (B, Ds) float32
    actions: np.ndarray  # (B, H, Da) float32
    pad: np.ndarray  # (B, H) bool: True where the step is past the episode's end
    env_state: np.ndarray | None = None  # (B, E) float32 at the observed frame, if recorded
    # (B, 2) int64 (episode, frame) rows the batch was gathered from: targets that live
    # further along the episode (policies.video.train_head's future frames) are looked up by it.
    index: np.ndarray | None = None
    # Real-time chunking's training side (stale_prefix): action values fed as the decoder's
    # inputs where they differ from `actions`, and how many leading steps of each row are
    # such a forced prefix (their own predictions are not scored; inference forces them).
    input_actions: np.ndarray | None = None  # (B, H, Da) float32
    prefix_steps: np.ndarray | None = None  # (B,) int64
    # (B,) int64 ticks each row's state was rolled forward (gather's delays, cut where the
    # episode ends); None: not rolled.
    delays: np.ndarray | None = None
    # Each row's robot (DemoEpisode.robot_type): a multi-robot policy's state ids open with
    # it (TokenPolicy.state_ids); None where an episode does not say.
    robots: list[str] | None = None


def env_balance_weights(episodes: list[DemoEpisode]) -> np.ndarray | None:
    """Per-frame sampling weights, in ChunkSampler's order, giving every env (each episode's
    dataset's env spec) the same share of samples, frames within an env alike; None (uniform,
    exactly as without) where all episodes share one env.

    Why: a uniform draw over frames gives each task its share of *frames*. Mixed datasets
    differ in episode length far more than in worth: reach's episodes are ~9 frames and push's
    ~85, so 150 reach episodes were 2.6% of the generalist's samples and it reached 24% on
    reach, where the expert gets 100% (experiments/generalist/NOTE.md).
    """
    envs = [ep.env for ep in episodes]
    if len(set(envs)) < 2:
        return None
    frames: dict[str | None, int] = {}
    for env, ep in zip(envs, episodes, strict=True):
        frames[env] = frames.get(env, 0) + len(ep.action)
    return np.concatenate([np.full(len(ep.action), 1.0 / frames[env])
                           for env, ep in zip(envs, episodes, strict=True)])


def combine_weights(*weights: np.ndarray | None) -> np.ndarray | None:
    """The product of per-frame weights (None: uniform); None if all are."""
    given = [w for w in weights if w is not None]
    if not given:
        return None
    out = given[0]
    for w in given[1:]:
        out = out * w
    return out


def intervention_weights(episodes: list[DemoEpisode], weight: float = 1.0,
                         only: bool = False) -> np.ndarray | None:
    """Per-frame sampling weights for HG-DAgger-style training on takeover runs, in
    ChunkSampler's (episode, frame) order; None (uniform, exactly as without) when no episode
    has an intervention column or the settings change nothing.

    A frame a human acted in weighs `weight`; a frame the policy acted in weighs 1, or 0 with
    `only` (its label is the policy's own action: imitating it teaches nothing new); frames of
    episodes without the column (demonstrations) weigh 1.

    Raises:
        ValueError: `only` or a weight other than 1 with no intervention column anywhere, a
            negative weight, or nothing left to sample.
    """
    if not weight >= 0:
        raise ValueError(f"intervention weight must be >= 0, got {weight}")
    labelled = [ep.intervention is not None for ep in episodes]
    if not any(labelled):
        if only or weight != 1.0:
            raise ValueError("--only-interventions / --intervention-weight need datasets with "
                             "an intervention column (agent run --takeover DEVICE --dataset "
                             "OUT); none of the training datasets has one")
        return None
    if weight == 1.0 and not only:
        return None
    parts = []
    for ep in episodes:
        if ep.intervention is None:
            parts.append(np.ones(len(ep.action)))
        else:
            parts.append(np.where(ep.intervention, weight, 0.0 if only else 1.0))
    w = np.concatenate(parts)
    if not w.sum() > 0:
        raise ValueError("no frame left to train on: the datasets hold no human frames "
                         "(intervention) and --only-interventions drops the policy's")
    return w


class ChunkSampler:
    """Random (episode, frame) samples with their H-step action chunks: uniform, or in
    proportion to per-frame `weights` (intervention_weights). With `human_labels_only`, steps
    of a chunk that the policy acted in (intervention False) are masked out of the loss like
    steps past the episode's end: they are not the human's labels."""

    def __init__(self, episodes: list[DemoEpisode], cameras: tuple[str, ...], chunk: int,
                 seed: int = 0, weights: np.ndarray | None = None,
                 human_labels_only: bool = False) -> None:
        if not episodes:
            raise ValueError("no episodes to train on")
        for i, ep in enumerate(episodes):
            missing = [c for c in cameras if c not in ep.frames]
            if missing:
                raise ValueError(f"episode {i} has no camera(s) {missing}; it has "
                                 f"{sorted(ep.frames)}")
        self.episodes, self.cameras, self.chunk = episodes, cameras, chunk
        self.index = np.array([(e, t) for e, ep in enumerate(episodes)
                               for t in range(len(ep.action))])
        self.rng = np.random.default_rng(seed)
        if weights is not None and weights.shape != (len(self.index),):
            raise ValueError(f"weights must be one per frame ({len(self.index)}), got "
                             f"{weights.shape}")
        self.p = None if weights is None else weights / weights.sum()
        self.human_labels_only = human_labels_only

    def __len__(self) -> int:
        return len(self.index)

    def sample(self, batch_size: int, max_delay: int = 0) -> Batch:
        """`batch_size` rows; with `max_delay` > 0 each is shifted by d ~ U{0..max_delay}
        steps (gather's `delays`)."""
        if self.p is None:  # the uniform draw exactly as before weights existed
            picks = self.rng.integers(len(self.index), size=batch_size)
        else:
            picks = self.rng.choice(len(self.index), size=batch_size, p=self.p)
        delays = None
        if max_delay > 0:
            delays = self.rng.integers(0, max_delay + 1, size=batch_size)
        return self.gather(self.index[picks], delays)

    def gather(self, rows: np.ndarray, delays: np.ndarray | None = None) -> Batch:
        """The batch of (episode, frame) `rows`. With `delays` (B,) steps, row i is what
        `--exec ahead` asks for when inference takes d = delays[i] ticks: the frame at t, the
        state rolled forward through the d actions that run meanwhile (roll_forward), and the
        chunk that starts after them, t + d on (d is cut where the episode ends first)."""
        frames, states, actions, pads, texts, env, robots = [], [], [], [], [], [], []
        used = []
        for i, (e, t) in enumerate(rows):
            ep = self.episodes[e]
            d = 0 if delays is None else min(int(delays[i]), len(ep.action) - 1 - t)
            used.append(d)
            steps = np.arange(t + d, t + d + self.chunk)
            pad = steps >= len(ep.action)
            if self.human_labels_only and ep.intervention is not None:
                pad |= ~ep.intervention[np.minimum(steps, len(ep.action) - 1)]
            pads.append(pad)
            actions.append(ep.action[np.minimum(steps, len(ep.action) - 1)])
            frames.append(np.stack([ep.frames[c][t] for c in self.cameras]))
            states.append(ep.state[t] if d == 0 else roll_forward(
                ep.state[t], ep.action[t:t + d], ep.state_layout, ep.action_layout))
            texts.append(ep.task)
            env.append(None if ep.env_state is None else ep.env_state[t])
            robots.append(ep.robot_type)
        has_env = all(e is not None for e in env)
        return Batch(texts, np.stack(frames), np.stack(states).astype(np.float32),
                     np.stack(actions).astype(np.float32), np.stack(pads),
                     np.stack(env).astype(np.float32) if has_env else None,
                     np.asarray(rows, np.int64).reshape(len(rows), 2),
                     robots=None if None in robots else robots,
                     delays=None if delays is None else np.asarray(used, np.int64))


    def lagged(self, rows: np.ndarray, lags: np.ndarray) -> np.ndarray:
        """(B, 2) (episode, frame) rows, (B,) lags -> (B, H, Da) float32: each row's chunk as
        it stood `lag` steps earlier (frame t - lag on; the episode's first action before 0)."""
        out = []
        for (e, t), lag in zip(rows, lags, strict=True):
            ep = self.episodes[e]
            steps = np.clip(np.arange(t - lag, t - lag + self.chunk), 0, len(ep.action) - 1)
            out.append(ep.action[steps])
        return np.stack(out).astype(np.float32)


LABELS = ("auto", "expert", "applied")  # load_demos(labels=...)


def load_demos(dirs: list, cameras: tuple[str, ...] | None = None,
               successful_only: bool = True, labels: str = "auto") -> list[DemoEpisode]:
    """Episodes of LeRobot v3.0 datasets written by `agent collect`, frames decoded.

    Datasets must agree on action names and cameras. Their state names may differ where each
    dataset names its robot (info.json robot_type): build_policy then makes a multi-robot
    policy (policies.model.robots). Each episode carries the dataset's state and action
    layouts (info.json's feature names) and robot.

    Args:
        dirs: dataset directories.
        cameras: camera names to decode (None: the first dataset's, e.g. front and wrist for
            our sim envs, corner2 and gripperPOV for Meta-World; every dataset must have them).
        successful_only: skip episodes that did not end in success, except in a DAgger
            dataset (`agent collect --expert`, meta/motoken.json "expert"): its labels are
            the expert's whether or not the acting policy succeeded.
        labels: which column becomes each episode's `action`, the training label.
            "expert": `expert_action`, the clean action of a noisy (DART) collection
            (`agent collect --action-noise`); a dataset without it is an error.
            "applied": `action`, what the env executed (noise included, if any).
            "auto": per dataset, `expert_action` where it exists and `action` elsewhere, so
            noisy and noise-free datasets mix; without noise the applied action is the
            expert's up to the env's clipping, so both are expert labels.

    Raises:
        DatasetError: a directory that is missing, not a dataset, or damaged (the message
            names it; see dataset.LeRobotDatasetReader).
        ValueError: unknown `labels`, labels="expert" on a dataset without expert labels,
            missing cameras, feature names that are no state/action layout, datasets that
            disagree on actions, state layouts that differ without robot names (demo_robots),
            or no episodes at all.
    """
    from dataset.reader import LeRobotDatasetReader

    if labels not in LABELS:
        raise ValueError(f"labels must be one of {LABELS}, got {labels!r}")
    demos: list[DemoEpisode] = []
    first: tuple | None = None
    for d in dirs:
        ds = LeRobotDatasetReader(d)
        if cameras is None:
            cameras = tuple(k.removeprefix("observation.images.") for k in ds.camera_keys)
        missing = [c for c in cameras if f"observation.images.{c}" not in ds.camera_keys]
        if missing:
            raise ValueError(f"dataset {d} lacks camera(s) {missing}; it has {ds.camera_keys}")
        if labels == "expert" and not ds.has_expert_action:
            raise ValueError(f"dataset {d} has no expert_action labels (it was recorded without "
                             f"`agent collect --action-noise`); use labels='applied' or 'auto'")
        state, action = dataset_layouts(ds)
        robot = ds.info.get("robot_type")
        if first is None:
            first = (d, state, action, robot)
        elif action != first[2]:
            raise ValueError(f"dataset {d} has actions {list(action.names)}, but {first[0]} "
                             f"has {list(first[2].names)}: datasets with other actions cannot "
                             f"be mixed")
        elif state != first[1] and None in (robot, first[3]):
            raise ValueError(f"dataset {d} has {state.describe()}, but {first[0]} has "
                             f"{first[1].describe()}: datasets of robots with other states mix "
                             f"only where each names its robot (info.json robot_type), and "
                             f"{d if robot is None else first[0]} names none")
        use_expert = labels != "applied" and ds.has_expert_action
        env_names = tuple(ds.env_state_names) or None  # None: not recorded
        relabelled = ds.recording.get("expert") is not None
        for ep in ds:
            if successful_only and not ep.success and not relabelled:
                continue
            frames = {c: ds.frames(ep.index, c) for c in cameras}
            label = ep.expert_action if use_expert else ep.action
            demos.append(DemoEpisode(ep.task, frames, ep.state, label, ep.env_state,
                                     state_layout=state, action_layout=action,
                                     env=ds.recording.get("env"),
                                     robot_type=ds.info.get("robot_type"),
                                     intervention=ep.intervention,
                                     env_state_names=env_names))
    if not demos:
        raise ValueError(f"no successful episodes in {[str(d) for d in dirs]}")
    demo_robots(demos)  # a robot named with two state layouts: said here, not at training
    return demos


def dataset_layouts(ds: LeRobotDatasetReader) -> tuple[StateLayout, ActionLayout]:
    """The layouts a dataset's info.json names in its features.

    Raises:
        ValueError: names that are no state or action layout, e.g. the state_0, state_1, ...
            that `agent collect` wrote over the bridge before datasets named the arm's joints.
    """
    try:
        return (StateLayout.from_names(ds.state_names), ActionLayout.from_names(ds.action_names))
    except LayoutError as e:
        raise ValueError(f"dataset {ds.root}: {e}. Re-record it, or write the arm's joint "
                         f"names and then {list(EE_NAMES)} into meta/info.json's "
                         f"features[\"observation.state\"][\"names\"]") from None


def stale_prefix(batch: Batch, rng: np.random.Generator, prob: float, max_steps: int,
                 noise: tuple[float, float] = (0.01, 0.05), lagged: np.ndarray | None = None
                 ) -> Batch:
    """The batch with a perturbed, committed-looking prefix on a `prob` share of its rows.

    Under real-time chunking (agent.execution, rtc) the chunk's first d steps are forced to the
    actions an older chunk committed, planned from an older observation. Teacher forcing only
    ever shows the expert's own consistent first steps, so the model learns to continue
    whatever prefix it is given, and with a stale one it extrapolates the old plan instead of
    reading the scene (experiments/async_execution/prefix_copy.py). Here a row gets
    d ~ U{1..max_steps} leading steps perturbed by Gaussian noise (position m, rotation rad; the
    gripper is kept), fed as inputs only: the targets after them stay the expert's, so the
    model learns to return to what the observation calls for.

    With `lagged` (B, H, Da) the prefix is taken from it instead of `actions` (noise still
    added): ChunkSampler.lagged gives the expert's own actions from a few steps earlier, a
    plausible plan that is out of date, as a chunk planned from an older frame is.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"stale-prefix probability must be in [0, 1], got {prob}")
    B, H, Da = batch.actions.shape
    if not 1 <= max_steps < H:
        raise ValueError(f"stale-prefix steps must be in 1..{H - 1} (the chunk is {H}), "
                         f"got {max_steps}")
    if lagged is not None and lagged.shape != batch.actions.shape:
        raise ValueError(f"lagged actions {lagged.shape} must match the batch's "
                         f"{batch.actions.shape}")
    steps = np.where(rng.random(B) < prob, rng.integers(1, max_steps + 1, size=B), 0)
    sigma = np.zeros(Da, np.float32)  # the gripper and anything else: no noise
    sigma[ACTION_LAYOUT.dpos], sigma[ACTION_LAYOUT.drot] = noise
    jitter = rng.normal(size=(B, H, Da)).astype(np.float32) * sigma
    if lagged is not None:
        jitter += lagged - batch.actions
    jitter *= (np.arange(H)[None, :] < steps[:, None])[..., None]  # only inside the prefix
    return dataclasses.replace(batch, input_actions=batch.actions + jitter,
                               prefix_steps=steps.astype(np.int64))
