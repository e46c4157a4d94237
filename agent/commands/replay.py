"""`agent replay`: re-run a recorded episode's actions in the simulator from its seed.

Resets the env with the episode's recorded seed, applies the recorded (already clipped)
actions open loop, and compares the state the env reports before each action with the recorded
`observation.state`. A deterministic simulator reproduces the recording exactly; a large error
means the env (or its version) is not the one that recorded the dataset.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.commands import BadInput

DEFAULT_TOLERANCE = 1e-4  # rad|m: float32 round-off, far below any physical difference


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="replay a recorded episode's actions in the simulator",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", type=Path, metavar="DIR")
    p.add_argument("--episode", type=int, required=True, metavar="K")
    p.add_argument("--env", default=None, metavar="SPEC",
                   help="env spec (default: the one the dataset was recorded with)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="max state error accepted as a faithful replay (exit 1 beyond it)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=main)


@dataclass(frozen=True)
class ReplayResult:
    episode: int
    seed: int
    steps: int
    recorded_success: bool
    replayed_success: bool
    final_state_error: float  # max |state| difference at the last recorded frame
    max_state_error: float  # ... over every frame

    def faithful(self, tolerance: float) -> bool:
        return (self.replayed_success == self.recorded_success
                and self.max_state_error <= tolerance)


def replay(env: Any, states: np.ndarray, actions: np.ndarray, seed: int) -> tuple[float, float,
                                                                                    bool]:
    """(final-frame error, max error, success) of replaying `actions` from `seed`."""
    obs, _ = env.reset(seed=seed)
    errors = np.zeros(len(actions))
    terminated = False
    for t, action in enumerate(actions):
        errors[t] = float(np.abs(obs["state"] - states[t]).max())
        obs, _, terminated, truncated, _ = env.step(action)
        if (terminated or truncated) and t < len(actions) - 1:
            errors[t + 1:] = np.inf  # the replay ended early: the recording was not reproduced
            break
    return float(errors[-1]), float(errors.max()), bool(terminated)


def main(args: argparse.Namespace) -> int:
    from agent.recorder import make_env
    from dataset import DatasetError, LeRobotDatasetReader

    try:
        ds = LeRobotDatasetReader(args.dataset)
        ep = ds.episode(args.episode)
    except DatasetError as e:
        raise BadInput(str(e)) from None
    spec = args.env or ds.recording.get("env")
    if not spec:
        raise BadInput("the dataset does not say which env recorded it; pass --env")
    if ep.seed < 0:
        raise BadInput(f"episode {args.episode} has no recorded seed; cannot replay")
    import envs

    try:
        env = make_env(spec, ds.fps)
    except envs.UnknownEnvError as e:
        raise BadInput(f"{e}") from None
    try:
        final, worst, success = replay(env, ep.state, ep.action, ep.seed)
    finally:
        env.close()
    result = ReplayResult(args.episode, ep.seed, ep.length, ep.success, success, final, worst)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        verdict = "reproduced" if result.faithful(args.tolerance) else "NOT reproduced"
        print(f"episode {args.episode} (seed {ep.seed}, {ep.length} steps): {verdict}; "
              f"success recorded={ep.success} replayed={success}; state error final="
              f"{final:.3g} max={worst:.3g}")
    return 0 if result.faithful(args.tolerance) else 1
