"""Teleoperation devices: a human's hand turned into the env's action contract.

Every device answers `read()` with a `TeleopCommand`: a 7-D action in the same end-effector
delta contract the policy uses (dpos xyz m, drot xyz rad, gripper command 0 open .. 1 closed; see
`envs.features.ACTION_LAYOUT`), plus the operator's key events. Devices are built from a
`--teleop` spec through `make_device` (registry in `agent.teleop.registry`).
"""

from agent.teleop.base import EVENTS, TeleopCommand, TeleopDevice, TeleopError

__all__ = ["EVENTS", "TeleopCommand", "TeleopDevice", "TeleopError"]
