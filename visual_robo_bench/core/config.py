"""Frozen, typed task configuration.

Every task has exactly one config class: a frozen dataclass deriving from
:class:`TaskConfig`. The values registered with a task id are that id's
definition; a released id (``-v0``) never changes behaviour, so any change to a
default below (or in a task's config) means a new ``-vN``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class CameraConfig:
    """A camera the task adds to the scene with ``MjSpec``.

    The pose is a position, a look-at point and an up vector, all in the frame of
    ``body`` (the world when ``body`` is ``None``), converted to MuJoCo's
    ``xyaxes`` when the scene is built.

    Attributes:
        name: Camera name; the observation key is ``pixels`` for the primary
            policy camera and ``pixels_<name>`` for the others.
        pos: Camera position in the parent frame.
        lookat: Point the optical axis goes through, in the parent frame.
        up: Up direction in the parent frame.
        body: Parent body name, or ``None`` for a world camera.
        mode: MuJoCo camera mode: ``"fixed"`` (rigid in the body: ego-centric
            cameras rotate with the robot) or ``"track"`` (constant world offset
            and orientation: third-person tracking cameras).
        fovy: Vertical field of view in degrees.
        depth: Whether this camera produces depth instead of RGB.
        depth_far: Far limit (m) of the linear uint8 depth encoding.
        geomgroups: The geom groups this camera draws.
    """

    name: str
    pos: Vec3
    lookat: Vec3
    up: Vec3 = (0.0, 0.0, 1.0)
    body: str | None = None
    mode: str = "fixed"
    fovy: float = 60.0
    depth: bool = False
    depth_far: float = 5.0
    geomgroups: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self) -> None:
        if self.mode not in ("fixed", "track"):
            raise ValueError(f"camera {self.name!r}: mode must be 'fixed' or 'track', got {self.mode!r}")


def is_count(value: Any, minimum: int = 1) -> bool:
    """Whether ``value`` is an integer (Python or numpy, not a bool) of at least ``minimum``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum


def check_count(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer of at least ``minimum``.

    Raises:
        ValueError: Anything else (a float such as 2.5 is refused, never truncated).
    """
    if not is_count(value, minimum):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class RenderProfile:
    """CPU render profile: part of the task version because it changes pixels.

    Defaults follow ``rendering.md`` section 7: no shadows, reflections, skybox,
    haze or fog, no multisampling, coarse tessellation.
    """

    shadows: bool = False
    reflections: bool = False
    skybox: bool = False
    offsamples: int = 0
    numslices: int = 8
    numstacks: int = 4
    numquads: int = 1
    headlight_diffuse: float = 0.4
    headlight_ambient: float = 0.3
    light_diffuse: float = 0.8


@dataclass(frozen=True)
class TaskConfig:
    """Settings shared by every task. Task configs subclass this.

    Attributes:
        max_episode_steps: Episode length in control steps (an integer, never
            computed from a duration).
        timestep: Physics timestep in seconds.
        substeps: Physics sub-steps per control step (actions are held).
        image_size: (H, W) of the policy images.
        frame_stack: Number of stacked frames K in ``pixels``.
        cameras: Every camera the task adds.
        policy_cameras: Names of the observed cameras, primary first.
        render_camera: Camera for the human-facing ``render()`` view.
        render_size: (H, W) of ``render()`` images.
        render_profile: The CPU render profile.
        proprio_dim: Length of the ``proprio`` vector.
        privileged_dim: Length of the ``privileged`` vector.
        height_scan_dim: Length of ``height_scan`` (0 when the task has none).
    """

    max_episode_steps: int = 1000
    timestep: float = 0.005
    substeps: int = 2
    image_size: tuple[int, int] = (84, 84)
    frame_stack: int = 3
    cameras: tuple[CameraConfig, ...] = ()
    policy_cameras: tuple[str, ...] = ()
    render_camera: str = ""
    render_size: tuple[int, int] = (240, 320)
    render_profile: RenderProfile = field(default_factory=RenderProfile)
    proprio_dim: int = 0
    privileged_dim: int = 0
    height_scan_dim: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.max_episode_steps, int) or self.max_episode_steps <= 0:
            raise ValueError(f"max_episode_steps must be a positive int, got {self.max_episode_steps!r}")
        # checked, and stored as Python numbers (numpy scalars too), so that equal configs have equal hashes
        normalize = object.__setattr__  # the config is frozen
        for name in ("substeps", "frame_stack"):
            normalize(self, name, check_count(name, getattr(self, name)))
        for name in ("image_size", "render_size"):
            size = getattr(self, name)
            if not (isinstance(size, tuple) and len(size) == 2 and all(is_count(x, 8) for x in size)):
                raise ValueError(f"{name} must be (H, W) with two ints >= 8, e.g. (84, 84); got {size!r}")
            normalize(self, name, tuple(map(int, size)))
        if not (isinstance(self.timestep, numbers.Real) and math.isfinite(self.timestep) and self.timestep > 0):
            raise ValueError(f"timestep must be a positive number of seconds, got {self.timestep!r}")
        normalize(self, "timestep", float(self.timestep))
        names = [c.name for c in self.cameras]
        for cam in (*self.policy_cameras, *((self.render_camera,) if self.render_camera else ())):
            if cam not in names:
                raise ValueError(f"camera {cam!r} is not defined; the task defines {names}")

    @property
    def control_dt(self) -> float:
        """Seconds per control step."""
        return self.timestep * self.substeps

    def camera(self, name: str) -> CameraConfig:
        """The camera config called ``name``."""
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"no camera {name!r}; the task defines {[c.name for c in self.cameras]}")

    def replace(self, **changes: Any) -> "TaskConfig":
        """A copy with ``changes``; unknown names raise a ``TypeError`` listing the fields."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} has no field(s) {unknown}; valid fields: {sorted(known)}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-able data."""
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """A stable hash of the full definition (used in results files)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
