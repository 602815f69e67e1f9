"""Classic visual locomotion tasks: Hopper, Walker, Ant, Humanoid, WalkerHurdle.

Definitions: ``tasks.md`` sections 3.1-3.5. Models come from the ``gymnasium``
(hopper, ant) and ``dm_control`` (walker, humanoid) packages, never from the
non-commercially licensed DiffRL copies. The upstream bugs listed in
``tasks.md`` section 4 are fixed: symmetric torque limits, "up" from the body
z-axis, kept hopper armature/damping, sane hurdles with ground everywhere, an
ego camera that rotates with the torso.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass

import mujoco
import numpy as np

from visual_robo_bench.core import scene
from visual_robo_bench.core.config import CameraConfig, TaskConfig
from visual_robo_bench.core.sim import BatchSim, gather, state_columns
from visual_robo_bench.core.task import Evaluation, Task, TaskState
from visual_robo_bench.models import package_provenance
from visual_robo_bench.registry import register_task

from ._common import HurdleRow, heading_alignment, random_tilt_quat


def gymnasium_asset(name: str) -> str:
    """Path of a MuJoCo model shipped with the ``gymnasium`` package."""
    import gymnasium

    return os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", name)


def dm_control_asset(name: str) -> str:
    """Path of a model of the ``dm_control`` suite.

    Found without importing dm_control, which fixes its GL backend at import time.
    """
    spec = importlib.util.find_spec("dm_control")
    if spec is None or spec.origin is None:
        raise ImportError("dm_control is required for this task: pip install 'dm_control==1.0.50'")
    return os.path.join(os.path.dirname(spec.origin), "suite", name)


def tracking_camera(pos, lookat=(0.0, 0.0, 0.0), body: str = "torso") -> CameraConfig:
    """A third-person tracking camera (``mode="track"``) inside ``body``."""
    return CameraConfig("track", pos=pos, lookat=lookat, body=body, mode="track", fovy=60.0)


@dataclass(frozen=True)
class LocomotionConfig(TaskConfig):
    """Shared locomotion settings.

    Attributes:
        success_distance: Metres travelled along +x for success.
        floor_friction: Friction of the floor plane.
        reset_noise: Half-width of the uniform noise on the initial joints.
    """

    success_distance: float = 10.0
    floor_friction: float = 1.0
    reset_noise: float = 0.05
    render_camera: str = "track"
    policy_cameras: tuple[str, ...] = ("track",)


class LocomotionTask(Task):
    """Shared machinery: model loading, floor, spawn bookkeeping, progress metrics."""

    model_path: str = ""
    #: The installed package that ships ``model_path`` (its version goes into results files' provenance).
    model_package: str = ""
    torso: str = "torso"
    metric_names = ("distance", "fell")
    #: Floor and obstacles collide with the robot; False only in the deprecated v0 of Walker,
    #: WalkerHurdle and Ant, whose robots fall through the floor (see their version history).
    world_contact: bool = True
    #: Drawn extent of the floor along x (from -20 m) and its half-width, metres.
    floor_length: float = 140.0
    floor_half_width: float = 10.0

    def load_robot(self) -> mujoco.MjSpec:
        """The robot's ``MjSpec`` without its own floor, lights and cameras."""
        spec = mujoco.MjSpec.from_file(self.model_path)
        # source, version and XML hash: recorded in results files
        self.provenance = package_provenance(os.path.splitext(os.path.basename(self.model_path))[0],
                                             self.model_package, self.model_path)
        scene.remove_lights_and_floor(spec)
        for cam in list(spec.cameras):
            spec.delete(cam)
        return spec

    def build_scene(self) -> mujoco.MjSpec:
        spec = self.load_robot()
        half = self.floor_length / 2
        scene.add_floor(spec, half_size=(half, self.floor_half_width), center=(half - 20.0, 0.0),
                        friction=self.cfg.floor_friction, contact=self.world_contact)
        self.customize(spec)
        scene.finish_scene(spec, self.cfg.cameras, self.cfg.render_profile)
        return spec

    def customize(self, spec: mujoco.MjSpec) -> None:
        """Task-specific edits of the scene (absolute assignments)."""

    def setup(self, model: mujoco.MjModel) -> None:
        super().setup(model)
        self.torso_id = model.body(self.torso).id
        # the torso is the root body: its world x is the free joint's x, or its body offset plus the rootx slide
        free = model.jnt_type[model.body_jntadr[self.torso_id]] == mujoco.mjtJoint.mjJNT_FREE
        self.root_x_adr = model.jnt_qposadr[model.body_jntadr[self.torso_id] if free else model.joint("rootx").id]
        self.torso_x_offset = 0.0 if free else model.body_pos[self.torso_id, 0]

    def state_spec(self):
        return {**super().state_spec(), "x0": ((1,), np.float64)}

    def torso_x(self, sim: BatchSim, env_ids: np.ndarray) -> np.ndarray:
        return sim.xpos[:, self.torso_id, 0].take(env_ids)

    def remember_spawn(self, sim: BatchSim, state: TaskState, env_ids: np.ndarray) -> None:
        """Store the spawn x of the torso, read from ``qpos`` (no kinematics pass needed)."""
        state["x0"][env_ids, 0] = self.torso_x_offset + sim.qpos[env_ids, self.root_x_adr]

    def evaluate(self, sim: BatchSim, state: TaskState, env_ids: np.ndarray) -> Evaluation:
        distance = self.torso_x(sim, env_ids) - state["x0"][:, 0].take(env_ids)
        failure = self.failure(sim, state, env_ids)
        success = (distance >= self.cfg.success_distance) & ~failure
        return Evaluation(success, failure, {"distance": distance, "fell": failure.astype(np.float64)})

    def failure(self, sim: BatchSim, state: TaskState, env_ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------- planar


class PlanarTask(LocomotionTask):
    """Planar robots (hopper, walker): root slide x/z and hinge y."""

    joint_names: tuple[str, ...] = ()
    spawn_z: float = 1.25
    #: h is the torso height relative to its spawn height (the root z slide minus its reference); False only
    #: in the deprecated Hopper-v0, whose h was the absolute torso height (see its version history).
    relative_height: bool = True

    def setup(self, model):
        super().setup(model)
        adr = lambda n: model.joint(n).qposadr[0]  # noqa: E731
        dadr = lambda n: model.joint(n).dofadr[0]  # noqa: E731
        self.i_x, self.i_z, self.i_pitch = adr("rootx"), adr("rootz"), adr("rooty")
        # h = qpos[rootz] - z_ref: Gymnasium's hopper gives rootz ref=1.25 (qpos0 = 1.25 at spawn), dm_control's
        # walker none (qpos0 = 0)
        self.z_ref = float(model.qpos0[self.i_z]) if self.relative_height else 0.0
        self.v_x, self.v_z, self.v_pitch = dadr("rootx"), dadr("rootz"), dadr("rooty")
        self.q_legs = np.array([adr(n) for n in self.joint_names])
        self.v_legs = np.array([dadr(n) for n in self.joint_names])
        # observation vectors as columns of the state rows: one gather each on the hot path
        self.legs_cols = self.state_cols(self.q_legs, self.v_legs)  # [legs q, legs qd]
        # Walker's privileged layout: [pitch, h, legs q, v_x, w_pitch, v_z, legs qd]
        self.planar_cols = self.state_cols(np.r_[self.i_pitch, self.i_z, self.q_legs],
                                           np.r_[self.v_x, self.v_pitch, self.v_z, self.v_legs])

    def state_cols(self, qpos_idx, qvel_idx) -> np.ndarray:
        """State-row columns of ``qpos[qpos_idx]`` followed by ``qvel[qvel_idx]``."""
        return np.r_[state_columns(self.model, mujoco.mjtState.mjSTATE_QPOS, qpos_idx),
                     state_columns(self.model, mujoco.mjtState.mjSTATE_QVEL, qvel_idx)]

    def initialize_episode(self, sim, state, env_ids, rngs):
        lo, hi = -self.cfg.reset_noise, self.cfg.reset_noise
        # r.uniform(lo, hi, n) is lo + (hi - lo) * r.random(n): the same numbers, scaled in one operation
        noise = lo + (hi - lo) * np.array([r.random(self.model.nq) for r in rngs])
        sim.qpos[env_ids] = self.model.qpos0 + noise
        sim.qvel[env_ids] = 0.0
        self.remember_spawn(sim, state, env_ids)

    def height(self, sim, env_ids):
        """h: the torso height relative to the spawn height (the root z slide minus its reference)."""
        return sim.qpos[env_ids, self.i_z] - self.z_ref

    def planar_vector(self, sim, env_ids):
        """[pitch, h, legs q, v_x, w_pitch, v_z, legs qd] (Walker's privileged layout)."""
        return gather(sim.state, env_ids, self.planar_cols)


@dataclass(frozen=True)
class HopperConfig(LocomotionConfig):
    """VRB/Hopper-v1 and the deprecated v0 (tasks.md 3.1)."""

    timestep: float = 0.005
    substeps: int = 2
    floor_friction: float = 0.9
    proprio_dim: int = 6
    privileged_dim: int = 11
    cameras: tuple[CameraConfig, ...] = (tracking_camera((0.0, -2.0, -0.5), (0.0, 0.0, -0.5)),)
    w_height: float = 1.0
    w_upright: float = 1.0
    w_forward: float = 1.0
    w_action: float = -0.1


@register_task("VRB/Hopper-v1")
class Hopper(PlanarTask):
    """Planar one-legged hopper hops forward from pixels.

    **Description.** Gymnasium's ``hopper.xml`` (armature 1 and damping 1 kept on the leg joints)
    on a 200 m textured floor (x from -20 to 180 m); timestep 0.005 s x 2 sub-steps (100 Hz control).

    **Observations.** ``pixels`` 84x84x9 (3 RGB frames, oldest first); ``proprio`` (6): thigh, leg,
    foot angles and velocities; ``privileged`` (11): [h, pitch, 3 q, v_x, v_z, w_pitch, 3 qd] with
    h = z_torso - 1.25 (0 at the spawn height).

    **Actions.** 3 torques, tau = 200 a.

    **Reward terms.** height (d if d > 0 else -200 d^2 with d = clip(h + 0.3, -1, 3)),
    upright (1 - pitch^2 / (pi/6)^2), forward (v_x), action (-0.1 sum a^2).

    **Success.** Moved >= 10 m forward and not terminated.

    **Episode end.** Terminates when h < -0.45, h > 15 or any |qvel| > 100; truncates at 1000 steps.

    **Cameras.** ``track``: tracking camera 2 m to the side, 0.5 m below the torso, fovy 60. The floor's
    checker is drawn tinted by ``hopper.xml``'s default geom colour (rgba 0.8 0.6 0.4, the hopper's own) in
    v0 and v1: pixels are part of the version, so a fix needs a new one.

    **Version history.** v0: initial release; h was the absolute torso height (about 1.25 at the spawn),
    so the fall condition h < -0.45 never fired and a hopper lying on the floor still earned the height
    term; its floor was drawn 140 m long; deprecated. v1: h = z_torso - 1.25 (reward, termination and
    ``privileged``), as specified; the floor is drawn 200 m long.
    """

    config_cls = HopperConfig
    model_path, model_package = gymnasium_asset("hopper.xml"), "gymnasium"
    joint_names = ("thigh_joint", "leg_joint", "foot_joint")
    floor_length = 200.0

    def setup(self, model):
        super().setup(model)
        # privileged layout: [h, pitch, legs q, v_x, v_z, w_pitch, legs qd]
        self.hopper_cols = self.state_cols(np.r_[self.i_z, self.i_pitch, self.q_legs],
                                           np.r_[self.v_x, self.v_z, self.v_pitch, self.v_legs])

    def observe(self, sim, state, env_ids):
        rows = sim.state.take(env_ids, axis=0)
        privileged = rows.take(self.hopper_cols, axis=1)
        privileged[:, 0] -= self.z_ref  # h
        return {"proprio": rows.take(self.legs_cols, axis=1), "privileged": privileged}

    def reward_terms(self, sim, state, action, env_ids):
        c = self.cfg
        d = np.clip(self.height(sim, env_ids) + 0.3, -1.0, 3.0)
        pitch = (sim.qpos[env_ids, self.i_pitch] + np.pi) % (2 * np.pi) - np.pi
        return {
            "height": c.w_height * np.where(d > 0, d, -200.0 * d**2),
            "upright": c.w_upright * (1.0 - pitch**2 / (np.pi / 6) ** 2),
            "forward": c.w_forward * sim.qvel[env_ids, self.v_x],
            "action": c.w_action * np.sum(action**2, axis=1),
        }

    def failure(self, sim, state, env_ids):
        h = self.height(sim, env_ids)
        return (h < -0.45) | (h > 15.0) | (np.abs(sim.qvel[env_ids]) > 100.0).any(axis=1)


@register_task("VRB/Hopper-v0", deprecated_by="VRB/Hopper-v1",
               reason=("h is the absolute torso height, so the hopper never terminates when it falls",
                       "In v0 h was the absolute torso height (about 1.25 at the spawn) where the task defines "
                       "h = z_torso - 1.25: the fall condition h < -0.45 never fired, a hopper lying on the floor "
                       "kept earning the height term and could still succeed, and the floor was drawn 140 m long"))
class HopperV0(Hopper):
    relative_height = False
    floor_length = 140.0


#: Why the v0 of Walker, WalkerHurdle and Ant is deprecated (short, then in full).
FELL_THROUGH = "the robot falls through the floor"
NO_FLOOR_CONTACT = ("In v0 the floor{extra} inherited the robot file's default geom class (contype 1, conaffinity 0), "
                    "so nothing collided with {it} and the robot fell through the floor")


WALKER_JOINTS = ("right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle")


@dataclass(frozen=True)
class WalkerConfig(LocomotionConfig):
    """VRB/Walker-v1 and the deprecated v0 (tasks.md 3.2)."""

    timestep: float = 0.005
    substeps: int = 2
    floor_friction: float = 0.7
    proprio_dim: int = 12
    privileged_dim: int = 17
    cameras: tuple[CameraConfig, ...] = (tracking_camera((0.0, -2.0, -0.5), (0.0, 0.0, -0.5)),)
    w_forward: float = 1.0
    w_alive: float = 0.1
    w_action: float = -0.01


class WalkerBase(PlanarTask):
    """dm_control's planar walker: observations by joint name, walker termination."""

    model_path, model_package = dm_control_asset("walker.xml"), "dm_control"
    joint_names = WALKER_JOINTS

    def setup(self, model):
        super().setup(model)
        self.failure_cols = self.state_cols([self.i_z, self.i_pitch], np.arange(model.nv))  # [h, pitch, qvel]

    def reward_terms(self, sim, state, action, env_ids):
        c = self.cfg
        return {
            "forward": c.w_forward * sim.qvel[:, self.v_x].take(env_ids),
            "alive": np.full(len(env_ids), c.w_alive),
            "action": c.w_action * np.sum(action**2, axis=1),
        }

    def failure(self, sim, state, env_ids):
        g = gather(sim.state, env_ids, self.failure_cols)
        h, pitch = g[:, 0], g[:, 1]
        return (h < -0.5) | (h > 0.7) | (np.abs(pitch) > 1.0) | (np.abs(g[:, 2:]).max(axis=1) > 100.0)


@register_task("VRB/Walker-v1")
class Walker(WalkerBase):
    """Planar biped walker walks forward from pixels.

    **Description.** dm_control's ``walker.xml`` (damping 0.1, armature 0.01, friction 0.7) on a
    140 m textured floor; timestep 0.005 s x 2 sub-steps (100 Hz control).

    **Observations.** ``pixels`` 84x84x9; ``proprio`` (12): the 6 leg-joint angles and velocities
    (right hip, knee, ankle, then left); ``privileged`` (17): [pitch, h, 6 q, v_x, w_pitch, v_z, 6 qd].

    **Actions.** 6 torques, tau = a * (100, 50, 20, 100, 50, 20).

    **Reward terms.** forward (v_x), alive (0.1), action (-0.01 sum a^2).

    **Success.** Moved >= 10 m forward and not terminated.

    **Episode end.** Terminates when h < -0.5, h > 0.7, |pitch| > 1 rad or any |qvel| > 100;
    truncates at 1000 steps.

    **Cameras.** ``track``: tracking camera 2 m to the side, 0.5 m below the torso, fovy 60.

    **Version history.** v0: initial release; the floor inherited ``walker.xml``'s default geom class
    (conaffinity 0), so the walker never touched it and fell through (every episode ended within ~30
    steps); deprecated. v1: the floor collides with the walker (contype and conaffinity 1).
    """

    config_cls = WalkerConfig

    def observe(self, sim, state, env_ids):
        return {"proprio": gather(sim.state, env_ids, self.legs_cols), "privileged": self.planar_vector(sim, env_ids)}


@register_task("VRB/Walker-v0", deprecated_by="VRB/Walker-v1",
               reason=(FELL_THROUGH, NO_FLOOR_CONTACT.format(extra="", it="it")))
class WalkerV0(Walker):
    world_contact = False


# -------------------------------------------------------------------------------- walker hurdle


@dataclass(frozen=True)
class WalkerHurdleConfig(HurdleRow, WalkerConfig):
    """VRB/WalkerHurdle-v1 and the deprecated v0 (tasks.md 3.5)."""

    proprio_dim: int = 17
    privileged_dim: int = 17
    height_scan_dim: int = 36
    cameras: tuple[CameraConfig, ...] = (
        CameraConfig("ego", pos=(0.2, 0.0, -0.1), lookat=(0.8, 0.0, -0.3), up=(0.0, 0.0, 1.0),
                     body="torso", mode="fixed", fovy=80.0),
        tracking_camera((0.0, -3.0, -0.5), (0.0, 0.0, -0.5)),
    )
    policy_cameras: tuple[str, ...] = ("ego",)
    render_camera: str = "track"
    hurdle_count: int = 8
    hurdle_start: float = 2.0
    hurdle_spacing: float = 2.0
    hurdle_min_height: float = 0.10
    hurdle_max_height: float = 0.35
    hurdle_thickness: float = 0.2
    scan_offsets: tuple[float, ...] = tuple(round(-2.0 + 0.2 * i, 1) for i in range(36))
    w_forward: float = 10.0
    w_alive: float = 1.0
    w_action: float = -0.1


@register_task("VRB/WalkerHurdle-v1")
class WalkerHurdle(WalkerBase):
    """Planar walker clears 8 hurdles from an ego-centric camera.

    **Description.** The walker of VRB/Walker-v1 on a floor with 8 static red box hurdles, 0.2 m
    thick, centred at x = 2, 4, ..., 16 m, heights rising linearly from 0.10 to 0.35 m; ground
    everywhere.

    **Observations.** ``pixels`` 84x84x9 from the ego camera; ``proprio`` (17) and ``privileged``
    (17): [pitch, h, 6 q, v_x, w_pitch, v_z, 6 qd]; ``height_scan`` (36): hurdle-top height at
    x_torso + {-2.0, -1.8, ..., 5.0} m.

    **Actions.** 6 torques, tau = a * (100, 50, 20, 100, 50, 20).

    **Reward terms.** forward (10 v_x), alive (1), action (-0.1 sum a^2).

    **Success.** Torso past the last hurdle + 1 m (x >= 17 m) and not terminated. Metrics:
    distance, hurdles_cleared, fell.

    **Episode end.** As VRB/Walker-v1: h < -0.5, h > 0.7, |pitch| > 1 rad or |qvel| > 100;
    truncates at 1000 steps.

    **Cameras.** ``ego``: rigid in the torso at (0.2, 0, -0.1), looking forward and down, fovy 80
    (it rotates with the torso); ``track``: side view for ``render()``.

    **Version history.** v0: initial release; floor and hurdles inherited ``walker.xml``'s default
    geom class (conaffinity 0), so the walker never touched them and fell through the floor;
    deprecated. v1: floor and hurdles collide with the walker (contype and conaffinity 1).
    """

    config_cls = WalkerHurdleConfig
    metric_names = ("distance", "hurdles_cleared", "fell")

    def customize(self, spec):
        c = self.cfg
        spec.add_material(name="hurdle", rgba=[0.8, 0.15, 0.1, 1.0])
        for i, (x, h) in enumerate(zip(c.hurdle_x, c.hurdle_heights)):
            spec.worldbody.add_geom(
                name=f"hurdle{i}", type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[c.hurdle_thickness / 2, 1.0, h / 2], pos=[x, 0.0, h / 2], material="hurdle",
                friction=[c.floor_friction, 0.005, 0.0001], **(scene.COLLIDES if self.world_contact else {}),
            )

    def setup(self, model):
        super().setup(model)
        c = self.cfg  # the course as arrays, once (the config computes them on every access)
        self.hurdle_x, self.hurdle_heights = c.hurdle_x, c.hurdle_heights
        self.scan_offsets = np.asarray(c.scan_offsets)

    def height_scan(self, sim, env_ids):
        xs = self.torso_x(sim, env_ids)[:, None] + self.scan_offsets[None]
        on = np.abs(xs[..., None] - self.hurdle_x[None, None]) <= self.cfg.hurdle_thickness / 2
        return (on * self.hurdle_heights[None, None]).max(axis=-1)

    def observe(self, sim, state, env_ids):
        vec = self.planar_vector(sim, env_ids)
        return {"proprio": vec, "privileged": vec.copy(), "height_scan": self.height_scan(sim, env_ids)}

    def evaluate(self, sim, state, env_ids):
        c = self.cfg
        x = self.torso_x(sim, env_ids)
        failure = self.failure(sim, state, env_ids)
        success = (x >= self.hurdle_x[-1] + 1.0) & ~failure
        return Evaluation(success, failure, {"distance": x - state["x0"][env_ids, 0],
                                             "hurdles_cleared": c.hurdles_cleared(x),
                                             "fell": failure.astype(np.float64)})


@register_task("VRB/WalkerHurdle-v0", deprecated_by="VRB/WalkerHurdle-v1",
               reason=(FELL_THROUGH, NO_FLOOR_CONTACT.format(extra=" and the hurdles", it="them")))
class WalkerHurdleV0(WalkerHurdle):
    world_contact = False


# ------------------------------------------------------------------------------------ 3D robots


class FreeBaseTask(LocomotionTask):
    """Robots with a free root joint (ant, humanoid)."""

    heading_target: float = 10000.0

    def setup(self, model):
        super().setup(model)
        self.joint_ids = [j for j in range(model.njnt) if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]
        self.qadr = model.jnt_qposadr[self.joint_ids]
        self.vadr = model.jnt_dofadr[self.joint_ids]

    def spawn(self, sim, state, env_ids, rngs, root_pos, max_tilt, joint_center) -> None:
        """Root at ``root_pos`` +- noise, tilt <= ``max_tilt``, joints at ``joint_center`` +- noise, at rest."""
        noise = self.cfg.reset_noise
        for i, r in zip(env_ids, rngs):
            qpos = self.model.qpos0.copy()
            qpos[0:3] = np.asarray(root_pos) + r.uniform(-noise, noise, 3)
            qpos[3:7] = random_tilt_quat(r, max_tilt)
            qpos[self.q_obs] = joint_center + r.uniform(-noise, noise, len(self.q_obs))
            sim.qpos[i] = qpos
        sim.qvel[env_ids] = 0.0
        self.remember_spawn(sim, state, env_ids)

    def observe(self, sim, state, env_ids):
        """proprio: joints q and 0.1 qd; privileged: [z, quat, root qvel, proprio, up, heading, last torques]."""
        q, v = sim.qpos[env_ids], sim.qvel[env_ids]
        joints = np.concatenate([q[:, self.q_obs], 0.1 * v[:, self.v_obs]], axis=1)
        torques = state["prev_action"][env_ids] * self.gear
        priv = np.concatenate([q[:, 2:7], v[:, 0:6], joints, self.up(sim, env_ids)[:, None],
                               self.heading(sim, env_ids)[:, None], torques], axis=1)
        return {"proprio": joints, "privileged": priv}

    def up(self, sim, env_ids):
        """z-component of the torso z-axis (cosine of the tilt)."""
        return sim.xmat[env_ids, self.torso_id, 8]

    def heading(self, sim, env_ids):
        """Torso x-axis . horizontal unit vector toward (heading_target, 0)."""
        return heading_alignment(sim.xmat[env_ids, self.torso_id], sim.xpos[env_ids, self.torso_id],
                                 self.heading_target)


ANT_ACTION_ORDER = ("hip_1", "ankle_1", "hip_2", "ankle_2", "hip_3", "ankle_3", "hip_4", "ankle_4")


@dataclass(frozen=True)
class AntConfig(LocomotionConfig):
    """VRB/Ant-v1 and the deprecated v0 (tasks.md 3.3)."""

    timestep: float = 0.005
    substeps: int = 2
    floor_friction: float = 1.5
    geom_friction: float = 1.5
    proprio_dim: int = 16
    privileged_dim: int = 37
    cameras: tuple[CameraConfig, ...] = (tracking_camera((0.5, -2.0, 1.0)),)
    w_forward: float = 1.0
    w_upright: float = 0.1
    w_heading: float = 1.0
    w_height: float = 1.0


@register_task("VRB/Ant-v1")
class Ant(FreeBaseTask):
    """Quadruped ant runs forward from pixels.

    **Description.** Gymnasium's ``ant.xml`` (armature 1, damping 1; geom friction 1.5) on a
    textured floor; timestep 0.005 s x 2 sub-steps (100 Hz control).

    **Observations.** ``pixels`` 84x84x9; ``proprio`` (16): 8 joint angles and 0.1 x 8 joint
    velocities in action order; ``privileged`` (37): [z, quat(4), root qvel(6), 8 q, 0.1 x 8 qd, up,
    heading, 8 torques applied in the last step].

    **Actions.** 8 torques, tau = 150 a (symmetric), order hip_1, ankle_1, ..., hip_4, ankle_4.

    **Reward terms.** forward (v_x), upright (0.1 up), heading (heading), height (z - 0.27).

    **Success.** Moved >= 10 m forward and not terminated.

    **Episode end.** Terminates when z < 0.27 or z > 1.3; truncates at 1000 steps.

    **Cameras.** ``track``: tracking camera at (0.5, -2, 1) from the torso, looking at it, fovy 60. The floor's
    checker is drawn tinted by ``ant.xml``'s default geom colour (rgba 0.8 0.6 0.4, the ant's own) in v0 and
    v1: pixels are part of the version, so a fix needs a new one.

    **Version history.** v0: initial release; the floor inherited ``ant.xml``'s default geom class
    (conaffinity 0), so the ant never touched it and fell through (every episode ended within ~32
    steps); deprecated. v1: the floor collides with the ant (contype and conaffinity 1).
    """

    config_cls = AntConfig
    model_path, model_package = gymnasium_asset("ant.xml"), "gymnasium"

    def customize(self, spec):
        for geom in spec.geoms:
            if geom.name != "floor":
                geom.friction = [self.cfg.geom_friction, geom.friction[1], geom.friction[2]]

    def setup(self, model):
        super().setup(model)
        joint_of_act = [model.joint(model.actuator_trnid[a, 0]).name for a in range(model.nu)]
        self.act_perm = np.array([joint_of_act.index(n) for n in ANT_ACTION_ORDER])  # action k -> actuator
        self.q_obs = np.array([model.joint(n).qposadr[0] for n in ANT_ACTION_ORDER])
        self.v_obs = np.array([model.joint(n).dofadr[0] for n in ANT_ACTION_ORDER])
        self.gear = model.actuator_gear[self.act_perm, 0]

    def apply_action(self, sim, state, action, env_ids):
        ctrl = np.empty((len(env_ids), self.model.nu))
        ctrl[:, self.act_perm] = action
        sim.ctrl[env_ids] = ctrl

    def initialize_episode(self, sim, state, env_ids, rngs):
        center = np.array([0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0])
        self.spawn(sim, state, env_ids, rngs, (0.0, 0.0, 0.75), math.pi / 24, center)

    def reward_terms(self, sim, state, action, env_ids):
        c = self.cfg
        return {
            "forward": c.w_forward * sim.qvel[env_ids, 0],
            "upright": c.w_upright * self.up(sim, env_ids),
            "heading": c.w_heading * self.heading(sim, env_ids),
            "height": c.w_height * (sim.qpos[env_ids, 2] - 0.27),
        }

    def failure(self, sim, state, env_ids):
        z = sim.qpos[env_ids, 2]
        return (z < 0.27) | (z > 1.3)


@register_task("VRB/Ant-v0", deprecated_by="VRB/Ant-v1",
               reason=(FELL_THROUGH, NO_FLOOR_CONTACT.format(extra="", it="it")))
class AntV0(Ant):
    world_contact = False


HUMANOID_GEARS = {
    "abdomen": 67.5, "hip_x": 45.0, "hip_z": 45.0, "hip_y": 135.0, "knee": 90.0,
    "ankle_x": 22.5, "ankle_y": 22.5, "shoulder1": 67.5, "shoulder2": 67.5, "elbow": 45.0,
}


@dataclass(frozen=True)
class HumanoidConfig(LocomotionConfig):
    """VRB/Humanoid-v0 (tasks.md 3.4)."""

    timestep: float = 0.005
    substeps: int = 2
    proprio_dim: int = 42
    privileged_dim: int = 76
    cameras: tuple[CameraConfig, ...] = (tracking_camera((-3.0, 0.0, 1.0)),)
    w_height: float = 1.0
    w_forward: float = 1.0
    w_upright: float = 0.1
    w_heading: float = 1.0
    w_action: float = -0.002


@register_task("VRB/Humanoid-v0")
class Humanoid(FreeBaseTask):
    """21-actuator humanoid runs forward from pixels.

    **Description.** dm_control's ``humanoid.xml`` with upstream's actuator gears (abdomen 67.5;
    hip x, z, y 45, 45, 135; knee 90; ankle 22.5; shoulders 67.5; elbow 45); timestep 0.005 s x 2
    sub-steps (100 Hz control).

    **Observations.** ``pixels`` 84x84x9; ``proprio`` (42): 21 joint angles and 0.1 x 21 joint
    velocities; ``privileged`` (76): [z, quat(4), root qvel(6), 21 q, 0.1 x 21 qd, up, heading,
    21 torques applied in the last step].

    **Actions.** 21 torques, tau = a * gear, in dm_control's actuator order.

    **Reward terms.** height (10 d if d > 0 else -200 d^2, d = clip(z - 0.84, -1, 0.1)), forward
    (v_x), upright (0.1 up), heading (heading toward (200, 0)), action (-0.002 sum a^2).

    **Success.** Moved >= 10 m forward and not terminated.

    **Episode end.** Terminates when z < 0.74 or z > 2.0; truncates at 1000 steps.

    **Cameras.** ``track``: tracking camera 3 m behind and 1 m above the torso, fovy 60.

    **Version history.** v0: initial release.
    """

    config_cls = HumanoidConfig
    model_path, model_package = dm_control_asset("humanoid.xml"), "dm_control"
    heading_target = 200.0

    def customize(self, spec):
        for act in spec.actuators:
            key = next(k for k in HUMANOID_GEARS if k in act.name)
            act.gear = [HUMANOID_GEARS[key], 0, 0, 0, 0, 0]

    def setup(self, model):
        super().setup(model)
        self.gear = model.actuator_gear[:, 0].copy()
        self.q_obs, self.v_obs = self.qadr, self.vadr

    def initialize_episode(self, sim, state, env_ids, rngs):
        self.spawn(sim, state, env_ids, rngs, (0.0, 0.0, 1.35), math.radians(7.5), 0.0)

    def reward_terms(self, sim, state, action, env_ids):
        c = self.cfg
        d = np.clip(sim.qpos[env_ids, 2] - 0.84, -1.0, 0.1)
        return {
            "height": c.w_height * np.where(d > 0, 10.0 * d, -200.0 * d**2),
            "forward": c.w_forward * sim.qvel[env_ids, 0],
            "upright": c.w_upright * self.up(sim, env_ids),
            "heading": c.w_heading * self.heading(sim, env_ids),
            "action": c.w_action * np.sum(action**2, axis=1),
        }

    def failure(self, sim, state, env_ids):
        z = sim.qpos[env_ids, 2]
        return (z < 0.74) | (z > 2.0)
