"""Frozen, typed task configuration.

Every task has exactly one config class: a frozen dataclass deriving from
:class:`TaskConfig`. The values registered with a task id are that id's
definition; a released id (``-v0``) never changes behaviour, so any change to a
default below (or in a task's config) means a new ``-vN``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import math
import numbers
import sys
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

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
        check_fields(self, prefix=f"camera {self.name!r}: " if isinstance(self.name, str) else "camera: ")
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


_NO_CHECK = object()  # an annotation the field checks do not understand: the value is left as it is
_HINTS: dict[type, dict[str, Any]] = {}


def _field_hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of the dataclass fields of ``cls`` (cached; unresolvable ones are left out).

    A field a subclass re-annotates loosely (``cameras: tuple``) keeps the annotation of the class that
    declared it first (``tuple[CameraConfig, ...]``): a redefinition narrows a default, never the type.
    """
    if cls in _HINTS:
        return _HINTS[cls]
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):  # base classes first: the first declaration wins
        own = klass.__dict__.get("__annotations__", {})
        if not own:
            continue
        module = sys.modules.get(klass.__module__)
        namespace = dict(vars(module)) if module is not None else {}
        for name, ann in own.items():
            if name in hints:
                continue
            if isinstance(ann, str):
                try:
                    ann = eval(ann, namespace, dict(vars(klass)))  # noqa: S307 - the class's own annotation
                except Exception:  # noqa: BLE001 - e.g. a name local to a function: not checked
                    ann = _NO_CHECK
            hints[name] = ann
    fields = {f.name for f in dataclasses.fields(cls)}
    _HINTS[cls] = {k: v for k, v in hints.items() if k in fields}
    return _HINTS[cls]


def _describe(ann: Any) -> str:
    """An annotation in words, for error messages."""
    if ann is bool:
        return "True or False"
    if ann is int:
        return "an int"
    if ann is float:
        return "a number (int or float)"
    if ann is str:
        return "a str"
    if ann is type(None):
        return "None"
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a tuple of {_plural(args[0])}"
        if all(a == args[0] for a in args):
            return f"a tuple of {len(args)} {_plural(args[0])}"
        return f"a tuple of {len(args)} ({', '.join(_short(a) for a in args)})"
    if ann is tuple:
        return "a tuple"
    return f"a {getattr(ann, '__name__', ann)}"


def _short(ann: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(ann, getattr(ann, "__name__", str(ann)))


def _plural(ann: Any) -> str:
    return {bool: "bools", int: "ints", float: "numbers", str: "strings"}.get(ann, f"{_short(ann)}s")


class _Mismatch(Exception):
    """A value that does not match its annotation."""


def _conform(value: Any, ann: Any) -> Any:
    """``value`` checked against the annotation ``ann``, numpy scalars made Python ones.

    ``int`` fields take integers (Python or numpy, not bools); ``float`` fields real numbers (ints stay
    ints, so the hash of a config written with ``1`` is unchanged; not bools); ``bool`` fields bools
    (numpy too); tuples are checked element by element. Other annotations are isinstance checks, or not
    checked where they are not a class (``Any``, ``Callable[...]``, ...).

    Raises:
        _Mismatch: The value does not match.
    """
    if ann is _NO_CHECK or ann is Any:
        return value
    if ann is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise _Mismatch
    if ann is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
            return int(value)
        raise _Mismatch
    if ann is float:
        if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
            return int(value)
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
            return float(value)
        raise _Mismatch
    if ann is type(None):
        if value is None:
            return None
        raise _Mismatch
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (typing.Union, types.UnionType):
        for alternative in args:
            try:
                return _conform(value, alternative)
            except _Mismatch:
                pass
        raise _Mismatch
    if origin is tuple or ann is tuple:
        if not isinstance(value, tuple):
            raise _Mismatch
        if not args:
            return value
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_conform(v, args[0]) for v in value)
        if len(value) != len(args):
            raise _Mismatch
        return tuple(_conform(v, a) for v, a in zip(value, args))
    if isinstance(ann, type):
        if isinstance(value, ann):
            return value
        raise _Mismatch
    return value  # a typing construct the checks do not cover (Callable, Literal, dict[...], ...)


def check_fields(obj: Any, prefix: str = "", skip: tuple[str, ...] = ()) -> None:
    """Check every dataclass field of the frozen ``obj`` against its annotation, normalizing in place.

    Numpy scalars become the Python numbers they equal, so that equal configs have equal hashes.

    Raises:
        ValueError: ``<prefix><field> must be <what the annotation says>, got <value>``.
    """
    for name, ann in _field_hints(type(obj)).items():
        if name in skip:
            continue
        value = getattr(obj, name)
        try:
            conformed = _conform(value, ann)
        except _Mismatch:
            shown = "" if type(value) in (int, float, bool, str, tuple, type(None)) else f" ({type(value).__name__})"
            raise ValueError(f"{prefix}{name} must be {_describe(ann)}, got {value!r}{shown}") from None
        if conformed is not value:
            object.__setattr__(obj, name, conformed)


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

    def __post_init__(self) -> None:
        check_fields(self, prefix="render_profile.")


#: The counts and dimensions of :class:`TaskConfig`, with their minimum.
COUNT_FIELDS = {"max_episode_steps": 1, "substeps": 1, "frame_stack": 1,
                "proprio_dim": 0, "privileged_dim": 0, "height_scan_dim": 0}


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
        check_config(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Make a subclass's own ``__post_init__`` run :func:`check_config` first, whether it calls super or not.

        A ``__post_init__`` that forgets ``super().__post_init__()`` would otherwise skip every field check
        (a wrong type in a class default, a constructor argument or a ``gym.make`` override would pass
        silently). One that does call it runs the checks twice; they are idempotent.
        """
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if inspect.isfunction(own) and not getattr(own, "_vrb_checks_first", False):
            cls.__post_init__ = _checks_first(own)  # type: ignore[method-assign]

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
        new = dataclasses.replace(self, **changes)
        check_config(new)  # also where a subclass's __init__ or __post_init__ got around the checks
        return new

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-able data."""
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """A stable hash of the full definition (used in results files)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def check_config(cfg: TaskConfig) -> None:
    """Check ``cfg``'s fields, normalizing them in place: what every :class:`TaskConfig` runs when it is made.

    The counts, sizes and timestep have their own rules; every other field (a task config's own too) is
    checked against its annotation: int, float (ints accepted), bool, str, tuples of them, nested configs.
    Values are stored as Python numbers (numpy scalars too), so that equal configs have equal hashes; running
    the checks again changes nothing. ``TaskConfig.__post_init__`` runs them, a subclass's own
    ``__post_init__`` runs them first (see ``TaskConfig.__init_subclass__``), and ``TaskConfig.replace`` and
    :func:`~visual_robo_bench.registry.register_task` run them on the configs the envs use.

    Raises:
        ValueError: ``<field> must be <what its annotation says>, got <value>``, or a policy or render
            camera that ``cameras`` does not define.
    """
    normalize = object.__setattr__  # the config is frozen
    for name, minimum in COUNT_FIELDS.items():
        normalize(cfg, name, check_count(name, getattr(cfg, name), minimum))
    for name in ("image_size", "render_size"):
        size = getattr(cfg, name)
        if not (isinstance(size, tuple) and len(size) == 2 and all(is_count(x, 8) for x in size)):
            raise ValueError(f"{name} must be (H, W) with two ints >= 8, e.g. (84, 84); got {size!r}")
        normalize(cfg, name, tuple(map(int, size)))
    if not (isinstance(cfg.timestep, numbers.Real) and math.isfinite(cfg.timestep) and cfg.timestep > 0):
        raise ValueError(f"timestep must be a positive number of seconds, got {cfg.timestep!r}")
    normalize(cfg, "timestep", float(cfg.timestep))
    check_fields(cfg, skip=(*COUNT_FIELDS, "image_size", "render_size", "timestep"))
    names = [c.name for c in cfg.cameras]
    for cam in (*cfg.policy_cameras, *((cfg.render_camera,) if cfg.render_camera else ())):
        if cam not in names:
            raise ValueError(f"camera {cam!r} is not defined; the task defines {names}")


def _checks_first(post_init: Callable[..., None]) -> Callable[..., None]:
    """``post_init`` (a config subclass's own ``__post_init__``) preceded by :func:`check_config`."""

    @functools.wraps(post_init)
    def __post_init__(self: TaskConfig, *args: Any, **kwargs: Any) -> None:  # args: the class's InitVars
        check_config(self)
        post_init(self, *args, **kwargs)

    __post_init__._vrb_checks_first = True  # type: ignore[attr-defined]
    return __post_init__


def check_config_class(cls: Any, owner: str = "config_cls") -> None:
    """Refuse a task config class that would silently lose fields.

    A config class must be a frozen dataclass deriving from :class:`TaskConfig`, and every class between it
    and ``TaskConfig`` must be decorated itself: an undecorated subclass's annotations (``proprio_dim: int = 4``,
    new fields) are not fields at all, so they would vanish from ``to_dict``, the hash and the overrides. A
    class attribute that redefines a field without an annotation (``proprio_dim = 4``) is refused for the
    same reason. (``TaskConfig.__init_subclass__`` cannot check this: the decorator runs after it.)

    Args:
        cls: The class to check.
        owner: What it is, for the messages (``"ReachTask.config_cls"``).

    Raises:
        TypeError: What is wrong and how to write it instead.
    """
    fix = "decorate it with @dataclass(frozen=True)"
    if not (isinstance(cls, type) and issubclass(cls, TaskConfig)):
        raise TypeError(f"{owner} must be a subclass of TaskConfig (a @dataclass(frozen=True) class deriving from "
                        f"visual_robo_bench.TaskConfig), got {getattr(cls, '__name__', cls)!r}")
    if not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{owner} {cls.__name__} is not frozen: {fix}")
    fields = {f.name for f in dataclasses.fields(cls)}
    for klass in cls.__mro__:
        if klass is TaskConfig or not issubclass(klass, TaskConfig):
            continue
        own = klass.__dict__.get("__annotations__", {})
        declared = klass.__dict__.get("__dataclass_fields__") if "__dataclass_params__" in klass.__dict__ else None
        if own and declared is None:
            raise TypeError(f"{owner}: {klass.__name__} is not a dataclass, so its annotated attributes "
                            f"{sorted(own)} are not config fields (left out of to_dict, the hash and overrides): {fix}")
        missing = sorted(set(own) - set(declared or ()))
        if missing:
            raise TypeError(f"{owner}: {klass.__name__}'s annotated attributes {missing} are not fields: {fix}")
        shadowing = sorted(name for name in vars(klass) if name in fields and name not in own)
        if shadowing:
            raise TypeError(f"{owner}: {klass.__name__} sets {shadowing} without an annotation, which changes no "
                            f"field: write them as annotated fields, e.g. '{shadowing[0]}: int = ...', in a class "
                            f"decorated with @dataclass(frozen=True)")
