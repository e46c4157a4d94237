"""Recording episodes: run the control loop, keep what it saw and did, encode the videos.

`EpisodeRecorder` owns one env and one policy; `RecorderPool` runs K of them in worker
processes (spawned, each with its own env and renderer). Workers do the expensive part
(simulate, render, encode, image stats) and hand back an `EpisodeRecord` whose videos sit in the
dataset's staging folder; only the single writer in the main process commits.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.action_noise import ActionNoise, NoisyAgent
from agent.relabel import ExpertLabels
from dataset import stats, video
from dataset.layout import DatasetSpec
from dataset.video import VideoConfig
from dataset.writer import EpisodeRecord
from envs.features import env_state_names, env_state_vector


@dataclass(frozen=True)
class RecorderConfig:
    """What every recorder (in-process or worker) builds.

    Attributes:
        env: env spec, e.g. "mujoco:pick_place".
        policy: "scripted" or a checkpoint path (None: the default policy).
        staging: folder for per-episode videos (the writer's staging dir).
        fps: control rate to build the env with (None: the env's default).
        video: how camera frames are encoded.
        action_noise: DART noise on the executed actions (None: execute the policy's own);
            with it, each frame also records the clean `expert_action`.
        phrasings: "train" or "heldout": each episode's task says its goal in a phrasing of
            that split (envs.phrasings); None: the task's own sentence.
        expert: a policy that labels every frame's `expert_action` while `policy` acts
            (DAgger, agent/relabel.py); None: no labeller. Not with action_noise.
    """

    env: str
    policy: str | None
    staging: Path
    fps: int | None = None
    video: VideoConfig = VideoConfig()
    action_noise: ActionNoise | None = None
    phrasings: str | None = None
    expert: str | None = None

    def __post_init__(self) -> None:
        if self.expert is not None and self.action_noise is not None:
            raise ValueError("an expert labeller (DAgger) and action noise (DART) are two "
                             "ways to label off-expert states; record with one of them")

    @property
    def labelled(self) -> bool:
        """Does each frame also get an `expert_action` (DART's clean action or DAgger's)?"""
        return self.action_noise is not None or self.expert is not None


def make_env(spec: str, fps: int | None, phrasings: str | None = None) -> Any:
    import envs

    kwargs: dict[str, Any] = {} if phrasings is None else {"phrasings": phrasings}
    if fps:
        kwargs["control_hz"] = float(fps)
    return envs.make(spec, **kwargs)


def dataset_spec(env: Any, video_cfg: VideoConfig, expert_action: bool = False,
                 intervention: bool = False, capture_time: bool = False) -> DatasetSpec:
    """The dataset features an env produces: state and action names from the env's layouts
    (envs.features), the robot's name from its sim or, over the bridge, its handshake;
    `intervention` adds the who-acted column of takeover runs, `capture_time` the real capture
    times (recordings by hand)."""
    u = env.unwrapped
    hz = float(u.control_hz)
    if abs(hz - round(hz)) > 1e-9:
        raise ValueError(f"LeRobot datasets need an integer fps; the env runs at {hz} Hz")
    images = env.observation_space["images"]
    cameras = tuple(images.spaces)
    robot = getattr(getattr(u, "sim", None), "robot", None) or u.robot
    return DatasetSpec(fps=round(hz), robot_type=robot.name,
                       cameras=cameras, image_shape=tuple(images[cameras[0]].shape),
                       state_names=u.state_layout.names,
                       action_names=u.action_layout.names, video=video_cfg,
                       expert_action=expert_action, env_state_names=env_state_names(env),
                       intervention=intervention, capture_time=capture_time)


class EpisodeRecorder:
    """Runs episodes in one env and turns each into an `EpisodeRecord`."""

    def __init__(self, cfg: RecorderConfig) -> None:
        from agent.runtime import ChunkBroker
        from agent.timing import StageTimer
        from policies.registry import load_policy

        self.cfg = cfg
        self.env = make_env(cfg.env, cfg.fps, cfg.phrasings)
        self.spec = dataset_spec(self.env, cfg.video, cfg.labelled)
        broker = ChunkBroker(load_policy(cfg.policy))
        self.agent: ChunkBroker | NoisyAgent | ExpertLabels = broker
        if cfg.action_noise:
            self.agent = NoisyAgent(broker, cfg.action_noise)
        elif cfg.expert:
            self.agent = ExpertLabels(broker, ChunkBroker(load_policy(cfg.expert)))
        self.timer = StageTimer()

    def record(self, seed: int) -> EpisodeRecord:
        from agent.runtime import run_episode

        frames: dict[str, list[np.ndarray]] = {c: [] for c in self.spec.cameras}
        state, action, expert, done, task, env_state = [], [], [], [], [], []
        env_names = self.spec.env_state_names
        noisy = self.cfg.labelled  # the agent keeps each tick's label in `clean`
        if noisy:
            self.agent.seed(seed)

        def on_step(obs: Any, applied: np.ndarray, info: dict) -> None:
            for cam in frames:
                frames[cam].append(obs.images[cam])
            state.append(obs.state)
            if env_names:
                env_state.append(env_state_vector(obs.privileged, env_names))
            action.append(np.asarray(applied, dtype=np.float32))
            if noisy:
                expert.append(self.agent.clean)
            done.append(bool(info.get("is_success", False)))
            if not task:
                task.append(obs.instruction)

        result = run_episode(self.env, self.agent, seed, self.timer, rate_hz=0.0, on_step=on_step)
        videos, image_stats = {}, {}
        for cam, key in zip(self.spec.cameras, self.spec.video_keys(), strict=True):
            stack = np.stack(frames[cam])
            path = self.cfg.staging / f"seed{seed}-{key}.mp4"
            video.encode(stack, path, self.spec.fps, self.cfg.video)
            videos[key], image_stats[key] = path, stats.image_stats(stack)
        return EpisodeRecord(seed=seed, task=task[0], success=result.success,
                             state=np.stack(state).astype(np.float32), action=np.stack(action),
                             expert_action=np.stack(expert) if noisy else None,
                             env_state=np.stack(env_state) if env_names else None,
                             next_success=np.array(done, dtype=bool), videos=videos,
                             image_stats=image_stats, failure=result.failure)

    def close(self) -> None:
        self.env.close()


# -- worker processes -----------------------------------------------------------------------------
_WORKER: EpisodeRecorder | None = None


def _die_with_parent() -> None:
    # A kill -9 of the collector must not leave workers simulating for nobody (Linux only).
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: workers exit when their call queue breaks instead


def _init_worker(cfg: RecorderConfig) -> None:
    global _WORKER
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    _WORKER = EpisodeRecorder(cfg)


def _record_in_worker(seed: int) -> EpisodeRecord:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.record(seed)


class RecorderPool:
    """K worker processes, each with its own `EpisodeRecorder`."""

    def __init__(self, cfg: RecorderConfig, workers: int) -> None:
        ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited GL state
        self._pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                         initargs=(cfg,))

    def submit(self, seed: int) -> Future[EpisodeRecord]:
        return self._pool.submit(_record_in_worker, seed)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
