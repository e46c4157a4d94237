"""The typed robot description and its TOML loader (one file per robot in `sims/robots/`).

A description is data only: nothing here loads a physics model. Paths to model files are
resolved against the description's own folder, or against `pybullet_data` when written as
`pybullet_data:RELATIVE/PATH` (the models that ship inside the pybullet wheel, so nothing is
downloaded at run time).
"""

from __future__ import annotations

import difflib
import importlib.util
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sims.base import RobotSpec

HERE = Path(__file__).resolve().parent
GripperKind = Literal["parallel", "none"]


class UnknownRobotDescriptionError(KeyError):
    """No description file of that name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


@dataclass(frozen=True)
class GripperSpec:
    """The tool on the flange.

    Attributes:
        kind: "parallel" (two fingers, commanded by opening width) or "none".
        max_opening: metres between the fingers when fully open (0 for "none").
        joints: the model's finger joint names (empty when the gripper is not in the model).
    """

    kind: GripperKind = "parallel"
    max_opening: float = 0.08
    joints: tuple[str, ...] = ()


@dataclass(frozen=True)
class CameraSpec:
    """One camera: where its frames come from and at what size and rate.

    Attributes:
        name: the key in observations and datasets ("front", "wrist", ...).
        height, width: pixels of the frames the policy sees.
        fps: frames per second the camera delivers.
        source: "sim" (rendered from the model camera `name`), "opencv:INDEX|PATH|URL", or
            "realsense:SERIAL"; a robot PC's config may override it per cell.
    """

    name: str
    height: int = 128
    width: int = 128
    fps: float = 20.0
    source: str = "sim"


@dataclass(frozen=True)
class SafetySpec:
    """The numbers the bridge's `SafetyLimits` are built from for this robot."""

    max_velocity: float = 2.0
    max_accel: float = 50.0
    max_step: float = 0.2
    watchdog_s: float = 0.1
    joint_margin: float = 0.02
    workspace_low: tuple[float, float, float] = (0.10, -0.50, 0.010)
    workspace_high: tuple[float, float, float] = (0.85, 0.50, 0.65)


@dataclass(frozen=True)
class RobotDescription:
    """What one robot is. See the module docstring for how `model` paths resolve.

    Attributes:
        name: registry name, also the dataset's `robot_type`.
        model: MJCF or URDF file of the arm (and gripper, where modelled).
        tcp: the model's site or body (URDF link) that carries the tool centre point.
        tcp_offset, tcp_quat: the TCP's position (m) and orientation (wxyz) in that frame. The
            TCP's z points along the approach (out of the gripper) and the fingers close along
            its y; at home it points down with x towards the arm's base (mk6's convention, which
            the EE-delta actions and the scripted expert are written in).
        joint_names, joint_lower, joint_upper: the arm joints (not the fingers), rad.
        home: joint angles at the start of an episode.
        control_hz: the arm's own control rate (the bridge's physics/servo period).
        base_pos: where the arm's base stands in the world frame (m) that poses, the workspace
            box and EE actions are given in: the sim cell's table for simulated arms, a cell's
            calibration for real ones.
    """

    name: str
    model: Path
    tcp: str
    joint_names: tuple[str, ...]
    joint_lower: tuple[float, ...]
    joint_upper: tuple[float, ...]
    home: tuple[float, ...]
    control_hz: float
    gripper: GripperSpec = GripperSpec()
    cameras: tuple[CameraSpec, ...] = ()
    safety: SafetySpec = SafetySpec()
    notes: str = ""
    tcp_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tcp_quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    base_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        for key in ("joint_lower", "joint_upper", "home"):
            if len(getattr(self, key)) != n:
                raise ValueError(f"robot {self.name!r}: {key} has {len(getattr(self, key))} "
                                 f"values for {n} joints {self.joint_names}")
        for j, lo, hi, h in zip(self.joint_names, self.joint_lower, self.joint_upper, self.home,
                                strict=True):
            if not lo < hi or not lo <= h <= hi:
                raise ValueError(f"robot {self.name!r}: joint {j!r} needs lower < upper and "
                                 f"home inside, got [{lo}, {hi}] with home {h}")

    def spec(self) -> RobotSpec:
        """The static facts the sims, the env and the bridge handshake already carry."""
        return RobotSpec(self.name, self.joint_names, self.joint_lower, self.joint_upper,
                         self.home, self.gripper.max_opening)


def _resolve(model: str, base: Path) -> Path:
    if model.startswith("pybullet_data:"):
        # Located, not imported: a robot PC serving `sim:panda` needs the files, not pybullet.
        spec = importlib.util.find_spec("pybullet_data")
        if spec is None or spec.origin is None:
            raise ValueError(f"model {model!r} needs the pybullet_data package (pip install "
                             "pybullet)")
        return Path(spec.origin).parent / model.removeprefix("pybullet_data:")
    return (base / model).resolve()


def known_robots() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.toml"))


def load_robot(name: str) -> RobotDescription:
    """The description `sims/robots/NAME.toml`, or an error listing the known robots."""
    path = HERE / f"{name}.toml"
    if not path.is_file():
        known = known_robots()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownRobotDescriptionError(f"unknown robot {name!r}; known: {known}{hint}")
    return parse_description(tomllib.loads(path.read_text()), path.parent, name)


def parse_description(raw: dict[str, Any], base: Path, name: str) -> RobotDescription:
    """Build a description from a parsed TOML table (also for a user's own file)."""
    raw = dict(raw)
    unknown = set(raw) - {"name", "model", "tcp", "tcp_offset", "tcp_quat", "base_pos",
                          "control_hz", "notes", "arm", "gripper", "cameras", "safety"}
    if unknown:
        raise ValueError(f"robot description {name!r}: unknown field(s) {sorted(unknown)}; "
                         "see sims/robots/mk6.toml for the full set")
    try:
        arm = raw.pop("arm")
        gripper = GripperSpec(**{k: tuple(v) if k == "joints" else v
                                 for k, v in raw.pop("gripper", {}).items()})
        cameras = tuple(CameraSpec(**c) for c in raw.pop("cameras", []))
        safety = SafetySpec(**{k: tuple(v) if isinstance(v, list) else v
                               for k, v in raw.pop("safety", {}).items()})
        return RobotDescription(
            name=raw.pop("name", name), model=_resolve(raw.pop("model"), base),
            tcp=raw.pop("tcp"), joint_names=tuple(arm["joints"]),
            joint_lower=tuple(float(x) for x in arm["lower"]),
            joint_upper=tuple(float(x) for x in arm["upper"]),
            home=tuple(float(x) for x in arm["home"]), control_hz=float(raw.pop("control_hz")),
            gripper=gripper, cameras=cameras, safety=safety, notes=raw.pop("notes", ""),
            tcp_offset=tuple(float(x) for x in raw.pop("tcp_offset", (0.0, 0.0, 0.0))),
            tcp_quat=tuple(float(x) for x in raw.pop("tcp_quat", (1.0, 0.0, 0.0, 0.0))),
            base_pos=tuple(float(x) for x in raw.pop("base_pos", (0.0, 0.0, 0.0))))
    except (KeyError, TypeError) as e:
        raise ValueError(f"robot description {name!r} is missing or misnames a field: {e}; "
                         "see sims/robots/mk6.toml for the full set") from None
