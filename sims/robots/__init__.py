"""Robot descriptions: one TOML file per arm in this folder, loaded by name.

    from sims.robots import load_robot
    panda = load_robot("panda")

A description says what a robot *is* (model file, joints and limits, gripper, cameras, control
rate, safety numbers); drivers, the simulator, the workstation's kinematics and the dataset all
read it from here, so adding an arm is adding one file.
"""

from sims.robots.description import (
    CameraSpec,
    GripperSpec,
    RobotDescription,
    SafetySpec,
    UnknownRobotDescriptionError,
    known_robots,
    load_robot,
)

__all__ = ["CameraSpec", "GripperSpec", "RobotDescription", "SafetySpec",
           "UnknownRobotDescriptionError", "known_robots", "load_robot"]
