"""Cameras on the robot's PC, streamed with the arm state (`agent bridge serve --camera ...`).

    from hw_bridge.cameras import CameraRig, make_camera, parse_camera
    rig = CameraRig([make_camera(parse_camera("wrist=opencv:/dev/video2@640x480:30"))])

Each camera captures on its own thread into a one-slot buffer (`base.Camera`); the stream
thread sends the newest frame of each with its capture time and a stale/dead flag (`rig`).
Device libraries (cv2, pyrealsense2) are imported only when a camera of theirs connects.

The sim driver's rendered cameras stay in the driver, not behind `Camera`: they are drawn from
the very physics snapshot the frame's state comes from, which a free-running capture thread
would break (and a GL context belongs to its thread). On the wire they carry the same
per-camera fields (`seq`, capture `t`, `state`), never stale.
"""

from hw_bridge.cameras.base import Camera, Frame
from hw_bridge.cameras.rig import CameraRig, Freshness
from hw_bridge.cameras.spec import CAMERA_KINDS, GRAMMAR, make_camera, parse_camera, parse_cameras

__all__ = ["CAMERA_KINDS", "GRAMMAR", "Camera", "CameraRig", "Frame", "Freshness",
           "make_camera", "parse_camera", "parse_cameras"]
