"""Pieces shared by the task modules: rotations, robots from the model resolver, hurdle rows.

Only code that means the same thing in every task that uses it lives here; a
task's own rules stay in its module. Nothing here registers a task.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from visual_robo_bench.core import lod, scene
from visual_robo_bench.core.config import TaskConfig
from visual_robo_bench.core.task import Task
from visual_robo_bench.models import provenance, resolve_model

# ------------------------------------------------------------------------------------ rotations


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (..., 4) quaternions (w, x, y, z)."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def rotation_angle(q_diff: np.ndarray) -> np.ndarray:
    """theta = 2 asin(min(|vec(q)|, 1)) of (..., 4) unit quaternions."""
    return 2.0 * np.arcsin(np.minimum(np.linalg.norm(q_diff[..., 1:], axis=-1), 1.0))


def mat_to_quat(mat: np.ndarray) -> np.ndarray:
    """(..., 9) row-major rotation matrices -> (..., 4) unit quaternions (w, x, y, z) with w >= 0.

    Vectorised Shepperd method (the branch with the largest diagonal term).
    """
    m = mat.reshape(-1, 3, 3)
    m00, m11, m22 = m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]
    tr = m00 + m11 + m22
    cand = np.stack([tr, m00, m11, m22], axis=1)
    k = np.argmax(cand, axis=1)
    q = np.empty((len(m), 4))
    s = np.sqrt(np.maximum(1.0 + 2.0 * cand[np.arange(len(m)), k] - tr, 1e-300)) * 2.0  # 4 * |q_k|
    r = lambda i, j: m[:, i, j]  # noqa: E731
    w = np.select([k == 0, k == 1, k == 2, k == 3],
                  [0.25 * s, (r(2, 1) - r(1, 2)) / s, (r(0, 2) - r(2, 0)) / s, (r(1, 0) - r(0, 1)) / s])
    x = np.select([k == 0, k == 1, k == 2, k == 3],
                  [(r(2, 1) - r(1, 2)) / s, 0.25 * s, (r(0, 1) + r(1, 0)) / s, (r(0, 2) + r(2, 0)) / s])
    y = np.select([k == 0, k == 1, k == 2, k == 3],
                  [(r(0, 2) - r(2, 0)) / s, (r(0, 1) + r(1, 0)) / s, 0.25 * s, (r(1, 2) + r(2, 1)) / s])
    z = np.select([k == 0, k == 1, k == 2, k == 3],
                  [(r(1, 0) - r(0, 1)) / s, (r(0, 2) + r(2, 0)) / s, (r(1, 2) + r(2, 1)) / s, 0.25 * s])
    q[:] = np.stack([w, x, y, z], axis=1)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(*mat.shape[:-1], 4)


def axis_angle_quat(axis: np.ndarray, angle: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of a rotation by ``angle`` about ``axis`` (normalised here)."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * axis])


def random_tilt_quat(rng: np.random.Generator, max_angle: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of a rotation by U(0, max_angle) about a random horizontal axis."""
    angle = rng.uniform(0.0, max_angle)
    phi = rng.uniform(0.0, 2 * math.pi)
    return np.array([math.cos(angle / 2), math.sin(angle / 2) * math.cos(phi), math.sin(angle / 2) * math.sin(phi), 0.0])


def heading_alignment(xmat: np.ndarray, pos: np.ndarray, target_x: float) -> np.ndarray:
    """Body x-axis . horizontal unit vector from ``pos`` toward (target_x, 0), for (k, 9) row-major
    rotation matrices and (k, 3) positions."""
    d = np.stack([target_x - pos[:, 0], -pos[:, 1]], axis=1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return xmat[:, 0] * d[:, 0] + xmat[:, 3] * d[:, 1]


# ---------------------------------------------------------------------- robots from the resolver


@dataclass(frozen=True)
class RobotTaskConfig(TaskConfig):
    """Settings shared by tasks built on a resolved robot model.

    Attributes:
        model_dir: Directory with the robot models (offline layout); default
            ``$VRB_MODEL_DIR``, then ``robot_descriptions``. Where the files come
            from is not part of the task definition: this field is left out of
            :meth:`to_dict` and :meth:`hash`.
        lod_ratio: Fraction of faces kept per visual-only mesh in the CPU render
            profile (1 = original meshes).
        lod_min_faces: Smallest face count a decimated mesh keeps.

    A subclass may add ``lod_agg`` and ``lod_cell`` (quadric aggressiveness and
    clustering grid of :func:`visual_robo_bench.core.lod.decimate_visual_meshes`);
    without them the LOD uses lod.py's defaults.
    """

    model_dir: str | None = None
    lod_ratio: float = 1.0
    lod_min_faces: int = 64

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("model_dir", None)
        return d


class RobotTask(Task):
    """A task on a resolved robot model, with the CPU-profile mesh LOD."""

    robot: str = ""

    def model_path(self) -> Path:
        path = resolve_model(self.robot, self.cfg.model_dir)
        self.provenance = provenance(self.robot, path)  # source, commit, XML hash: recorded in results files
        return path

    def load_robot(self, floor_names: tuple[str, ...] = ("floor",)) -> mujoco.MjSpec:
        """The robot's ``MjSpec`` without its lights, floor, cameras and keyframes."""
        spec = mujoco.MjSpec.from_file(str(self.model_path()))
        scene.remove_lights_and_floor(spec, floor_names=floor_names)
        for cam in list(spec.cameras):
            spec.delete(cam)
        for key in list(spec.keys):
            spec.delete(key)
        return spec

    def lod_options(self) -> dict[str, Any]:
        """The config's ``lod_agg`` / ``lod_cell`` as keywords of ``decimate_visual_meshes`` (where it has them)."""
        c = self.cfg
        return {k: getattr(c, f"lod_{k}") for k in ("agg", "cell") if hasattr(c, f"lod_{k}")}

    def apply_lod(self, spec: mujoco.MjSpec) -> None:
        c = self.cfg
        if c.lod_ratio < 1.0:
            self.lod_stats = lod.decimate_visual_meshes(spec, c.lod_ratio, c.lod_min_faces, **self.lod_options())

    def finish_robot_scene(self, spec: mujoco.MjSpec) -> None:
        """The last steps of ``build_scene``: the CPU-profile LOD (:meth:`apply_lod`), then the cameras,
        light and render profile (:func:`visual_robo_bench.core.scene.finish_scene`)."""
        self.apply_lod(spec)
        scene.finish_scene(spec, self.cfg.cameras, self.cfg.render_profile)


# ---------------------------------------------------------------------------------- hurdle rows


class HurdleRow:
    """A row of box hurdles along +x for a config with ``hurdle_count``, ``hurdle_start``,
    ``hurdle_spacing``, ``hurdle_min_height``, ``hurdle_max_height`` and ``hurdle_thickness``:
    evenly spaced, heights rising linearly from the first to the last (a mixin: no fields)."""

    @property
    def hurdle_x(self) -> np.ndarray:
        return self.hurdle_start + self.hurdle_spacing * np.arange(self.hurdle_count)

    @property
    def hurdle_heights(self) -> np.ndarray:
        i = np.arange(self.hurdle_count)
        return self.hurdle_min_height + (self.hurdle_max_height - self.hurdle_min_height) * i / max(1, self.hurdle_count - 1)

    def hurdles_cleared(self, x: np.ndarray) -> np.ndarray:
        """Hurdles whose far face lies behind the x positions ``x`` (k,), as float64."""
        return (x[:, None] > self.hurdle_x[None] + self.hurdle_thickness / 2).sum(axis=1).astype(np.float64)
