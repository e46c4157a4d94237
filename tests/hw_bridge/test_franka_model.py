"""sims/assets/fr3.xml against the FR3's published DH table, and the fr3 description."""

import numpy as np

from hw_bridge.drivers.franka import DescriptionFk
from sims.robots import load_robot

# Franka's DH parameters for the FR3 (Craig's convention): (a, d, alpha) per joint, then the
# flange; the Franka Hand's TCP is 0.1034 m further along z, turned -45 degrees about z.
DH = [(0.0, 0.333, 0.0), (0.0, 0.0, -np.pi / 2), (0.0, 0.316, np.pi / 2),
      (0.0825, 0.0, np.pi / 2), (-0.0825, 0.384, -np.pi / 2), (0.0, 0.0, np.pi / 2),
      (0.088, 0.0, np.pi / 2)]
FLANGE_D, HAND_TCP_Z = 0.107, 0.1034


def _craig(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
    ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
    return np.array([[ct, -st, 0, a], [st * ca, ct * ca, -sa, -d * sa],
                     [st * sa, ct * sa, ca, d * ca], [0, 0, 0, 1]])


def _dh_tcp(q: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    for (a, d, alpha), theta in zip(DH, q, strict=True):
        t = t @ _craig(a, d, alpha, theta)
    t = t @ _craig(0.0, FLANGE_D, 0.0, -np.pi / 4)  # flange, hand turned -45 degrees
    # the hand's TCP, turned 180 degrees about z: motoken's TCP frame is gripper-down
    # (wxyz 0 0 1 0) at home on every arm (sims/assets/fr3.xml)
    return t @ _craig(0.0, HAND_TCP_Z, 0.0, np.pi)


def test_the_fr3_model_is_the_published_dh_table():
    desc = load_robot("fr3")
    fk = DescriptionFk(desc)
    rng = np.random.default_rng(0)
    lo, hi = np.array(desc.joint_lower), np.array(desc.joint_upper)
    for q in [np.array(desc.home), *rng.uniform(lo, hi, size=(20, 7))]:
        want = _dh_tcp(q)
        pos, quat = fk.pose(q)
        w, x, y, z = quat
        rot = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
        assert np.abs(pos - want[:3, 3]).max() < 1e-9
        assert np.abs(rot - want[:3, :3]).max() < 1e-9


def test_the_fr3_description_states_the_datasheet_numbers():
    desc = load_robot("fr3")
    assert desc.control_hz == 1000.0 and desc.gripper.max_opening == 0.08
    assert len(desc.joint_names) == 7 and desc.joint_lower[5] == 0.5445
    home_tcp = DescriptionFk(desc).pose(np.array(desc.home))[0]
    assert np.allclose(home_tcp, [0.307, 0.0, 0.487], atol=1e-3)
    assert all(lo <= p <= hi for lo, p, hi in zip(desc.safety.workspace_low, home_tcp,
                                                  desc.safety.workspace_high, strict=True))
    # the bridge's setpoint jerk (max_accel per 1 ms period) stays inside the franka driver's
    # rate-limiter budget, so on-time setpoints reach the robot unchanged
    from hw_bridge.drivers.franka import FR3_MAX_JERK

    assert desc.safety.max_accel / (1.0 / desc.control_hz) < FR3_MAX_JERK
