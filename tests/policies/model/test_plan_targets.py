"""Auxiliary object-pose targets (policies.model.plan_targets) and their use in training."""

from __future__ import annotations

import numpy as np
import pytest

from envs.features import EE_NAMES, StateLayout
from policies.model.plan_targets import AuxNormalizer, aux_dim, aux_targets
from policies.training.data import DemoEpisode
from policies.training.train import TrainConfig, build_policy, train

LAYOUT = StateLayout((*(f"joint{i}" for i in range(1, 7)), *EE_NAMES))


def _yaw_quat(yaw: float) -> list[float]:
    return [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]


def _state(ee=(0.1, 0.2, 0.3), finger_yaw: float = 0.0) -> np.ndarray:
    """(1, 14) proprioception: 6 joints, EE xyz, EE quaternion (gripper down), opening."""
    from sims.base import quat_from_yaw, quat_mul

    quat = quat_mul(quat_from_yaw(finger_yaw), np.array([0.0, 0.0, 1.0, 0.0]))
    return np.concatenate([np.zeros(6), ee, quat, [0.08]]).astype(np.float32)[None]


def _env_state(yaw: float, n_objects: int = 3) -> np.ndarray:
    poses = [[0.4, 0.1, 0.02, *_yaw_quat(yaw)], [0.5, -0.1, 0.001, 1, 0, 0, 0]]
    poses += [[0.3 + 0.1 * i, 0.05 * i, 0.02, 1, 0, 0, 0] for i in range(n_objects)]
    return np.array(poses, np.float32).reshape(1, -1)


def test_layout_goal_offsets_yaws_then_objects() -> None:
    s = _env_state(0.3)
    t = aux_targets(s, _state(finger_yaw=0.1), LAYOUT)
    assert t.shape == (1, aux_dim(s.shape[1])) == (1, 6 + 4 + 9)
    # goal cube and plate relative to the tool at (0.1, 0.2, 0.3)
    np.testing.assert_allclose(t[0, :6], [0.3, -0.1, -0.28, 0.4, -0.3, -0.299], atol=1e-6)
    np.testing.assert_allclose(t[0, 6:8], [np.sin(1.2), np.cos(1.2)], atol=1e-5)
    np.testing.assert_allclose(t[0, 8:10], [np.sin(0.8), np.cos(0.8)], atol=1e-5)  # 4 * (0.3-0.1)
    np.testing.assert_allclose(t[0, 10:13], [0.3, 0.0, 0.02], atol=1e-6)


def test_yaw_targets_ignore_quarter_turns() -> None:
    """A cube turned by 90 degrees looks the same: its targets must not change."""
    np.testing.assert_allclose(
        aux_targets(_env_state(0.2), _state(finger_yaw=0.5), LAYOUT)[:, 6:10],
        aux_targets(_env_state(0.2 + np.pi / 2), _state(finger_yaw=0.5), LAYOUT)[:, 6:10],
        atol=1e-5)


def test_bad_width_is_an_error() -> None:
    with pytest.raises(ValueError, match="goal slots"):
        aux_dim(15)


def test_normalizer_standardises() -> None:
    states = [np.concatenate([_env_state(y) + 0.01 * i for i in range(4)])
              for y in np.linspace(-0.7, 0.7, 5)]
    props = [np.repeat(_state(), len(e), 0) for e in states]
    z = AuxNormalizer(states, props, LAYOUT)(np.concatenate(states), np.concatenate(props))
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)


def test_normalizer_fits_each_dimension_on_its_present_values() -> None:
    """A union layout's absent objects (NaN) stay NaN and shape no statistics."""
    full = np.concatenate([_env_state(y) + 0.01 * i for i in range(4)
                           for y in np.linspace(-0.7, 0.7, 5)])  # (20, 35)
    props = np.repeat(_state(), len(full), 0)
    holed = full.copy()
    holed[:10, -7:] = np.nan  # the last object absent in half the frames
    norm = AuxNormalizer([holed], [props], LAYOUT)
    alone = AuxNormalizer([full[10:]], [props[10:]], LAYOUT)
    np.testing.assert_allclose(norm.mean[-3:], alone.mean[-3:], atol=1e-6)
    np.testing.assert_allclose(norm.std[-3:], alone.std[-3:], atol=1e-6)
    z = norm(holed, props)
    assert np.isnan(z[:10, -3:]).all() and np.isfinite(z[10:]).all()
    assert np.isfinite(z[:, :-3]).all()


def _demos(with_env: bool, n: int = 3, T: int = 12) -> list[DemoEpisode]:
    """Episodes whose objects sit still at a place the camera shows: episode i's frames are
    uniformly bright in proportion to i, its objects shifted by 5 cm * i."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        frames = {c: np.full((T, 32, 32, 3), 40 + 80 * i, np.uint8) for c in ("front", "wrist")}
        env = np.repeat(_env_state(0.3 * i) + 0.05 * i, T, axis=0)
        out.append(DemoEpisode("put the red cube on the yellow plate", frames,
                               np.repeat(_state(), T, 0),
                               rng.uniform(-0.05, 0.05, (T, 7)).astype(np.float32),
                               env if with_env else None, state_layout=LAYOUT))
    return out


def test_head_exists_only_with_env_state() -> None:
    cfg = TrainConfig(model="nano", n_bins=16)
    assert build_policy(_demos(True), cfg).model.aux_head is not None
    assert build_policy(_demos(False), cfg).model.aux_head is None
    off = TrainConfig(model="nano", n_bins=16, aux_weight=0.0)
    assert build_policy(_demos(True), off).model.aux_head is None


def test_training_fits_the_aux_targets(tmp_path) -> None:
    """The head learns what the frames show: predicting the mean would leave a standardised
    error of 1.0."""
    demos = _demos(True)
    cfg = TrainConfig(model="nano", steps=80, batch_size=8, lr=3e-3, warmup=5, n_bins=16,
                      chunk=2, execute=1, checkpoint_every=1000, shift_px=0)
    policy = build_policy(demos, cfg)
    logs = train(policy, demos, tmp_path, cfg)
    first, last = logs[0].aux_loss, logs[-1].aux_loss
    assert first is not None and last is not None
    assert first > 0.5 and last < 0.2, (first, last)
