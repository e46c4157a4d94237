"""Start franka-sim (libfranka's network protocol on MuJoCo) on one loopback address, offline.

Run with the Python of a separate venv holding `franka-sim` (it pins mujoco<3.3 and
numpy==1.26.4, which our venv must not get): `FRANKA_SIM_PYTHON` in the tests, see
test_franka_sim.py. Usage: `python franka_sim_server.py HOST [--enforce]`.

franka-sim loads its physics model from MuJoCo Menagerie through `robot_descriptions`, which
downloads it on first use; nothing may be downloaded here, so `$FR3_MJCF` is pointed at a model
made on the spot from the FR3 URDF that franka-sim itself ships (`franka_sim/models/fr3.urdf`,
the model it serves to libfranka clients): its visual and collision meshes are referenced as
`package://franka_description/...` and not shipped, so they are dropped (kinematics and
inertias stay), and every joint gets a rotor inertia (armature) of 0.3 kg m^2 and damping 1.0.
The URDF has none, and franka-sim's position servo is explicit at 1 ms with kd up to 450: with
no armature the arm drifts off its start pose; with 0.1 joints 1 and 3 (colinear while joint 2
is at 0) fall into a limit cycle against each other, both saturated at 87 Nm, and the arm
rests 18 mm off its command; with 0.3 it settles on the command (measured in-process, 3 s).
The hand is franka-sim's kinematic one.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import tempfile
from pathlib import Path


def fr3_mjcf(out_dir: Path) -> Path:
    import franka_sim
    import mujoco

    urdf = (Path(franka_sim.__file__).parent / "models" / "fr3.urdf").read_text()
    urdf = re.sub(r"<(visual|collision)\b.*?</\1>", "", urdf, flags=re.S)
    # keep fixed links (link8, the flange) as bodies: franka-sim looks for them by name
    urdf = re.sub(r"(<robot[^>]*>)", r'\1<mujoco><compiler fusestatic="false"/></mujoco>',
                  urdf, count=1)
    spec = mujoco.MjSpec.from_string(urdf)
    for joint in spec.joints:
        joint.armature, joint.damping = 0.3, 1.0
    spec.compile()
    path = out_dir / "fr3_from_franka_sim_urdf.xml"
    path.write_text(spec.to_xml())
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("--gripper-object-width", type=float, default=None)
    parser.add_argument("--enforce", action="store_true",
                        help="abort motions on the FCI's communication and motion limits, as "
                        "the real robot does (franka-sim's default: report, do not abort)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="franka-sim %(levelname)s %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FR3_MJCF"] = str(fr3_mjcf(Path(tmp)))
        from franka_sim import FrankaSimServer

        server = FrankaSimServer(host=args.host, gripper_object_width=args.gripper_object_width,
                                 enforce_comm_constraints=args.enforce,
                                 enforce_motion_limits=args.enforce)
        print("STARTING", os.environ["FR3_MJCF"], flush=True)
        try:
            server.start()  # blocks: TCP 1337 and the hand's 1338 on args.host
        finally:
            server.stop()


if __name__ == "__main__":
    main()
