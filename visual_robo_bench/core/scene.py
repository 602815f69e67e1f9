"""Scene-building helpers shared by tasks (``MjSpec`` composition).

Tasks build their scene in :meth:`Task.build_scene` from a robot model plus the
pieces here: a finite textured floor with a coarse render grid, the standard
light, policy cameras given as position/look-at/up, and the render profile.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import mujoco
import numpy as np

from .config import CameraConfig, RenderProfile

FLOOR_MATERIAL = "vrb_floor"


def asset_path(*parts: str) -> Path:
    """Path of a file shipped in the package's ``assets`` directory."""
    return Path(str(resources.files("visual_robo_bench.assets").joinpath(*parts)))


def look_at_xyaxes(pos: np.ndarray, lookat: np.ndarray, up: np.ndarray) -> np.ndarray:
    """MuJoCo ``xyaxes`` of a camera at ``pos`` looking at ``lookat`` with ``up``.

    MuJoCo cameras look along their -z axis with +y up and +x to the right.
    """
    forward = np.asarray(lookat, float) - np.asarray(pos, float)
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ValueError("camera position and look-at point coincide")
    forward /= norm
    right = np.cross(forward, np.asarray(up, float))
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("camera up vector is parallel to its viewing direction")
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    return np.concatenate([right, true_up])


def add_camera(spec: mujoco.MjSpec, cam: CameraConfig) -> None:
    """Add ``cam`` to ``spec`` (world or body camera)."""
    parent = spec.worldbody if cam.body is None else spec.body(cam.body)
    if parent is None:
        raise ValueError(f"camera {cam.name!r}: no body {cam.body!r} in the scene")
    mode = mujoco.mjtCamLight.mjCAMLIGHT_TRACK if cam.mode == "track" else mujoco.mjtCamLight.mjCAMLIGHT_FIXED
    c = parent.add_camera(name=cam.name, pos=list(cam.pos), fovy=cam.fovy, mode=mode)
    c.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
    c.alt.xyaxes = look_at_xyaxes(np.array(cam.pos), np.array(cam.lookat), np.array(cam.up)).tolist()


def remove_lights_and_floor(spec: mujoco.MjSpec, floor_names: tuple[str, ...] = ("floor",)) -> None:
    """Delete the robot file's own lights and floor so the task's standard ones are used."""
    for light in list(spec.lights):
        spec.delete(light)
    for geom in list(spec.geoms):
        if geom.name in floor_names:
            spec.delete(geom)


#: ``add_geom`` keywords of a world geom the robot must collide with (floor, obstacles, terrain). Explicit, because
#: a geom added to a robot's ``MjSpec`` inherits the robot file's default class: dm_control's ``walker.xml`` and
#: Gymnasium's ``ant.xml`` default every geom to ``conaffinity=0`` (only their own floors set 1).
COLLIDES = {"contype": 1, "conaffinity": 1}


def add_floor(
    spec: mujoco.MjSpec,
    half_size: tuple[float, float] = (60.0, 10.0),
    center: tuple[float, float] = (0.0, 0.0),
    friction: float = 1.0,
    checker: float = 1.0,
    rgb1: tuple[float, float, float] = (0.25, 0.35, 0.45),
    rgb2: tuple[float, float, float] = (0.45, 0.55, 0.65),
    contact: bool = True,
) -> None:
    """A finite plane at z=0 with a checker texture (squares of ``checker`` m).

    ``contact=True`` gives the plane :data:`COLLIDES`, so that a robot file's default geom class
    cannot switch its contacts off. ``contact=False`` keeps the inherited defaults: only the
    deprecated v0 of Walker, WalkerHurdle and Ant, whose robots fall through their floor, pass it.

    The render grid (the plane's third size) is a quarter of the larger half
    size: MuJoCo draws planes as a grid of quads, and a fine grid was measured as
    the single largest software-rendering cost. The checker *texture* keeps
    motion visible.
    """
    if spec.texture("vrb_checker") is None:
        spec.add_texture(
            name="vrb_checker",
            type=mujoco.mjtTexture.mjTEXTURE_2D,
            builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
            rgb1=list(rgb1),
            rgb2=list(rgb2),
            width=64,
            height=64,
        )
        mat = spec.add_material(name=FLOOR_MATERIAL, texrepeat=[0.5 / checker, 0.5 / checker], reflectance=0.0)
        mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "vrb_checker"
        mat.texuniform = True
    spec.worldbody.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[half_size[0], half_size[1], max(half_size) / 4.0],
        pos=[center[0], center[1], 0.0],
        material=FLOOR_MATERIAL,
        friction=[friction, 0.005, 0.0001],
        condim=3,
        group=0,
        **(COLLIDES if contact else {}),
    )


def add_standard_light(spec: mujoco.MjSpec, profile: RenderProfile) -> None:
    """One white directional light pointing down, no shadow (plus the headlight)."""
    spec.worldbody.add_light(
        name="vrb_sun",
        type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
        pos=[0, 0, 10],
        dir=[0, 0, -1],
        diffuse=[profile.light_diffuse] * 3,
        specular=[0.1, 0.1, 0.1],
        castshadow=False,
    )


def apply_render_profile(spec: mujoco.MjSpec, profile: RenderProfile) -> None:
    """Write the model-side render settings (tessellation, MSAA, headlight)."""
    q = spec.visual.quality
    q.offsamples = profile.offsamples
    q.numslices = profile.numslices
    q.numstacks = profile.numstacks
    q.numquads = profile.numquads
    q.shadowsize = 0 if not profile.shadows else 2048
    hl = spec.visual.headlight
    hl.diffuse = [profile.headlight_diffuse] * 3
    hl.ambient = [profile.headlight_ambient] * 3
    hl.specular = [0.1, 0.1, 0.1]
    spec.visual.map.znear = 0.01
    spec.visual.map.zfar = 50.0


def finish_scene(spec: mujoco.MjSpec, cameras: tuple[CameraConfig, ...], profile: RenderProfile) -> None:
    """Add the task's cameras and light, and apply the render profile."""
    add_standard_light(spec, profile)
    for cam in cameras:
        add_camera(spec, cam)
    apply_render_profile(spec, profile)
