"""Legged robots: Unitree Go2 velocity tracking, Go2 on terrain with depth, Unitree G1 over hurdles.

Definitions: ``tasks.md`` sections 3.10-3.12. Robot models come from the model
resolver (:mod:`visual_robo_bench.models`): Menagerie ``unitree_go2/go2.xml`` and
Unitree's ``g1_23dof_rev_1_0.xml``, from ``VRB_MODEL_DIR`` / ``model_dir=`` or
``robot_descriptions`` at a pinned commit. Every edit of a source model is an
absolute assignment made with ``MjSpec``. Visual meshes are decimated for the CPU
render profile (:mod:`visual_robo_bench.core.lod`); the G1's collision meshes
are moved to geom group 3, which no camera draws.

Upstream bugs fixed (``tasks.md`` section 4): symmetric torque limits from the
actuator force ranges (1); separate a_{t-1} / a_{t-2} buffers, shifted once per
step after the reward (3); every reward term evaluated once per step, timers
advance by dt (4); the first observation comes from the reset state (5); ego
cameras rigid in a body (10); the Go2 depth image is 87 wide x 58 high (11); sane
hurdle heights with ground everywhere (12); every domain-randomisation field is
applied (14); command zeroing on the fresh command (15); terrain from a local
generator seeded by ``terrain_seed`` (21); G1 pelvis/torso contact terminates
(23); actions are Box(-1, 1) (25); Go2Terrain tilt limits allow its slopes (27).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from visual_robo_bench.core import lod, scene
from visual_robo_bench.core.config import CameraConfig
from visual_robo_bench.core.sim import BatchSim
from visual_robo_bench.core.task import Evaluation, TaskState
from visual_robo_bench.registry import register_task

from ._common import HurdleRow, RobotTask, RobotTaskConfig, heading_alignment, random_tilt_quat

# ------------------------------------------------------------------------------------ helpers


def wrap_angle(x: np.ndarray) -> np.ndarray:
    """Angles wrapped to [-pi, pi)."""
    return (np.asarray(x) + np.pi) % (2 * np.pi) - np.pi


def yaw_of(xmat: np.ndarray) -> np.ndarray:
    """Yaw of (k, 9) row-major body rotation matrices."""
    return np.arctan2(xmat[:, 3], xmat[:, 0])


def roll_pitch_of(xmat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Roll and pitch (ZYX Euler angles) of (k, 9) row-major body rotation matrices."""
    roll = np.arctan2(xmat[:, 7], xmat[:, 8])
    pitch = -np.arcsin(np.clip(xmat[:, 6], -1.0, 1.0))
    return roll, pitch


def to_yaw_frame(v: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """World (k, 3) vectors expressed in the yaw-only frame of the base."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1], v[:, 2]], axis=1)


def to_body_frame(v: np.ndarray, xmat: np.ndarray) -> np.ndarray:
    """World (k, 3) vectors in the body frame: R^T v."""
    return np.einsum("kji,kj->ki", xmat.reshape(-1, 3, 3), v)


def drop_unused_texcoords(spec: mujoco.MjSpec) -> list[str]:
    """Re-define visual-only meshes whose geoms use no texture without their texture coordinates.

    Menagerie's Go2 OBJ files carry texture coordinates although its materials are plain colours;
    the LOD step leaves textured meshes alone, so the coordinates are dropped first (the geometry
    and its placement are unchanged: vertices are written back in the source file's frame).
    """
    model = spec.copy().compile()
    textured_mat = {m for m in range(model.nmat) if (model.mat_texid[m] >= 0).any()}
    uses: dict[int, list[int]] = {}
    for g in range(model.ngeom):
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH:
            uses.setdefault(int(model.geom_dataid[g]), []).append(g)
    names = []
    for k, geoms in sorted(uses.items()):
        if model.mesh_texcoordnum[k] == 0:
            continue
        if any(model.geom_contype[g] or model.geom_conaffinity[g] or model.geom_matid[g] in textured_mat for g in geoms):
            continue
        verts, faces = lod.mesh_in_source_frame(model, k)
        lod.set_user_mesh(spec, model.mesh(k).name, verts, faces)
        names.append(model.mesh(k).name)
    return names


def add_contact_sensor(spec: mujoco.MjSpec, name: str, objtype, objname: str, reftype=None, refname: str = "") -> None:
    """A contact sensor giving the net contact force (3 values) on ``objname`` (against ``refname``)."""
    kw: dict[str, Any] = {}
    if reftype is not None:
        kw = {"reftype": reftype, "refname": refname}
    # intprm: data = force (bit 1), reduce = netforce (3), num = 1
    spec.add_sensor(name=name, type=mujoco.mjtSensor.mjSENS_CONTACT, objtype=objtype, objname=objname,
                    intprm=[2, 3, 1], **kw)


@dataclass(frozen=True)
class LeggedConfig(RobotTaskConfig):
    """Settings shared by the legged tasks (``model_dir``, ``lod_ratio``, ``lod_min_faces``:
    see :class:`RobotTaskConfig`; visual meshes keep 2%, at least 32 faces)."""

    lod_ratio: float = 0.02
    lod_min_faces: int = 32
    timestep: float = 0.005
    substeps: int = 4


class LeggedTask(RobotTask):
    """A task on a resolved legged-robot model with a free base."""

    base_body: str = ""

    def setup(self, model):
        super().setup(model)
        self.base_id = model.body(self.base_body).id
        joints = [j for j in range(model.njnt) if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]
        # actuated joints in actuator order
        self.act_joints = np.array([int(model.actuator_trnid[a, 0]) for a in range(model.nu)])
        assert sorted(self.act_joints.tolist()) == joints, "every hinge joint must have one actuator"
        self.qadr = model.jnt_qposadr[self.act_joints]
        self.vadr = model.jnt_dofadr[self.act_joints]
        self.jlo, self.jhi = model.jnt_range[self.act_joints].T.copy()

    def sensor_slice(self, name: str) -> slice:
        s = self.model.sensor(name)
        return slice(int(s.adr[0]), int(s.adr[0]) + int(s.dim[0]))

    def contact_norm(self, sim: BatchSim, env_ids: np.ndarray, names: list[str]) -> np.ndarray:
        """(k, len(names)) net contact-force magnitudes of contact sensors."""
        data = sim.sensordata[env_ids]
        return np.stack([np.linalg.norm(data[:, self.sensor_slice(n)], axis=1) for n in names], axis=1)

    def base_pose(self, sim, env_ids):
        return sim.xpos[env_ids, self.base_id], sim.xmat[env_ids, self.base_id]

    def spawn(self, sim: BatchSim, env_ids, rngs, center, pos_noise, max_tilt, q_default, joint_noise) -> None:
        """Base at ``center`` +- pos_noise, tilt <= max_tilt, joints at default +- noise (clipped), at rest."""
        for i, r in zip(env_ids, rngs):
            qpos = self.model.qpos0.copy()
            qpos[0:3] = np.asarray(center, float) + r.uniform(-pos_noise, pos_noise, 3)
            qpos[3:7] = random_tilt_quat(r, max_tilt)
            qpos[self.qadr] = np.clip(q_default + r.uniform(-joint_noise, joint_noise, len(self.qadr)),
                                      self.jlo, self.jhi)
            sim.qpos[i] = qpos
        sim.qvel[env_ids] = 0.0
        sim.ctrl[env_ids] = q_default


# ========================================================================================= Go2

GO2_LEGS = ("FL", "FR", "RL", "RR")
GO2_DEFAULT = (0.0, 0.8, -1.5, 0.0, 0.8, -1.5, 0.0, 1.0, -1.5, 0.0, 1.0, -1.5)
GO2_TORQUE = (23.7, 23.7, 45.43) * 4
#: Scales of the velocity command (v_x*, v_y*, omega*) in Go2's 45-D actor vector (its columns 6:9).
COMMAND_SCALE = np.array([2.0, 2.0, 0.25])
# the spec's depth pipeline: render 106 x 60 at fovy 58, drop the last 2 rows and 4 columns on each
# side, resize to 87 x 58. Nearly the same pixel grid comes straight from a pinhole camera with these
# intrinsics (pixels): fy = 30 / tan(29 deg), fx = fy * 87 / 98. Not quite: MuJoCo centres the principal
# point, while that crop leaves the optical axis one row below the centre (30 rows above it, 28 below), so the
# image sits one row (about 1 deg) off the spec's (a documented deviation of Go2-v0 and Go2Terrain-v0).
_GO2_FY = 30.0 / math.tan(math.radians(29.0))
_GO2_FX = _GO2_FY * 87.0 / 98.0
GO2_DEPTH_FOVY = 2 * math.degrees(math.atan(29.0 / _GO2_FY))  # vertical FOV of the 58 kept rows


def go2_cameras() -> tuple[CameraConfig, ...]:
    return (
        CameraConfig("ego_depth", pos=(0.32, 0.0, 0.15), lookat=(0.5, 0.0, 0.0), up=(0.0, 0.0, 1.0), body="base",
                     mode="fixed", fovy=GO2_DEPTH_FOVY, depth=True, depth_far=2.0, geomgroups=(0,)),
        CameraConfig("track", pos=(-1.2, -1.2, 0.7), lookat=(0.0, 0.0, 0.0), body="base", mode="track", fovy=50.0,
                     geomgroups=(0, 1, 2)),
    )


@dataclass(frozen=True)
class Go2Config(LeggedConfig):
    """VRB/Go2-v0 (tasks.md 3.10)."""

    max_episode_steps: int = 1000
    image_size: tuple[int, int] = (58, 87)
    frame_stack: int = 1
    cameras: tuple[CameraConfig, ...] = go2_cameras()
    policy_cameras: tuple[str, ...] = ("ego_depth",)
    render_camera: str = "track"
    proprio_dim: int = 45
    privileged_dim: int = 60
    kp: float = 30.0
    kd: float = 1.5
    action_scale: float = 0.5
    default_pose: tuple[float, ...] = GO2_DEFAULT
    torque_limits: tuple[float, ...] = GO2_TORQUE
    # commands
    command_segments: int = 5
    command_segment_steps: int = 200
    command_vx: tuple[float, float] = (-1.0, 1.0)
    command_vy: tuple[float, float] = (-1.0, 1.0)
    command_heading: tuple[float, float] = (-math.pi, math.pi)
    command_zero_below: float = 0.2
    # reset
    spawn_z: float = 0.42
    spawn_noise: float = 0.025
    spawn_tilt_deg: float = 7.5
    joint_noise: float = 0.5
    # termination / success
    base_contact_force: float = 1.0
    max_roll: float = 0.4
    max_pitch: float = 0.4
    success_tracking_error: float = 0.3
    # reward (weights; the weighted sum is multiplied by the control dt)
    w_tracking_lin_vel: float = 5.0
    w_tracking_ang_vel: float = 1.5
    w_lin_vel_z: float = -2.0
    w_ang_vel_xy: float = -0.05
    w_base_height: float = -2.0
    w_dof_pos_limits: float = -2.0
    w_collision: float = -1.0
    w_dof_acc: float = -2.5e-7
    w_action_rate: float = -0.01
    w_action_smoothness: float = -0.01
    w_feet_air_time: float = 1.0
    w_stand_still: float = 0.5
    w_feet_clearance: float = 0.2
    tracking_sigma: float = 0.25
    base_height_target: float = 0.3
    soft_limit_fraction: float = 0.9
    feet_clearance_target: float = 0.072


class Go2Base(LeggedTask):
    """Shared Go2 machinery: PD position actuators, commands, reward, termination."""

    robot = "unitree_go2"
    base_body = "base"
    metric_names = ("distance", "vel_tracking_error", "fell")

    # ------------------------------------------------------------------ scene
    def build_scene(self) -> mujoco.MjSpec:
        c = self.cfg
        spec = self.load_robot()
        spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        spec.option.impratio = 100.0
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_EULER
        for k, act in enumerate(spec.actuators):
            act.set_to_position(kp=c.kp, kv=c.kd)
            act.ctrllimited = 0  # mjLIMITED_FALSE: targets may leave the joint range, torques may not
            act.ctrlrange = [0.0, 0.0]
            act.forcelimited = 1
            act.forcerange = [-c.torque_limits[k], c.torque_limits[k]]
        for leg in GO2_LEGS:
            calf = spec.body(f"{leg}_calf")
            calf.add_site(name=f"{leg}_foot", pos=[-0.002, 0.0, -0.213], size=[0.01, 0, 0], group=4)
            spec.add_sensor(name=f"{leg}_foot_vel", type=mujoco.mjtSensor.mjSENS_FRAMELINVEL,
                            objtype=mujoco.mjtObj.mjOBJ_SITE, objname=f"{leg}_foot")
            add_contact_sensor(spec, f"{leg}_foot_contact", mujoco.mjtObj.mjOBJ_GEOM, leg)
            add_contact_sensor(spec, f"{leg}_thigh_contact", mujoco.mjtObj.mjOBJ_BODY, f"{leg}_thigh")
            k = 0
            for geom in calf.geoms:
                if geom.name != leg and (geom.contype or geom.conaffinity):
                    geom.name = f"{leg}_calf_col{k}"
                    add_contact_sensor(spec, geom.name + "_contact", mujoco.mjtObj.mjOBJ_GEOM, geom.name)
                    k += 1
            self._calf_geoms = k
        add_contact_sensor(spec, "base_contact", mujoco.mjtObj.mjOBJ_BODY, "base")
        self.build_ground(spec)
        if self.cfg.lod_ratio < 1.0:
            drop_unused_texcoords(spec)
        self.finish_robot_scene(spec)
        self.set_depth_intrinsics(spec)
        return spec

    def set_depth_intrinsics(self, spec: mujoco.MjSpec) -> None:
        """Give the depth camera the intrinsics of the spec's crop-and-resize pipeline (87 x 58)."""
        cam = spec.camera("ego_depth")
        h, w = self.cfg.image_size
        if (h, w) != (58, 87):
            return  # a user-chosen image size keeps square pixels at the configured fovy
        pitch = 1e-3  # arbitrary sensor pixel pitch (m); only ratios matter
        cam.resolution = [w, h]
        cam.sensor_size = [w * pitch, h * pitch]
        cam.focal_length = [_GO2_FX * pitch, _GO2_FY * pitch]

    def build_ground(self, spec: mujoco.MjSpec) -> None:
        scene.add_floor(spec, half_size=(40.0, 40.0), center=(0.0, 0.0), checker=0.5)

    def setup(self, model):
        super().setup(model)
        c = self.cfg
        self.q_default = np.asarray(c.default_pose, float)
        mid, half = (self.jlo + self.jhi) / 2, (self.jhi - self.jlo) / 2
        self.soft_lo, self.soft_hi = mid - c.soft_limit_fraction * half, mid + c.soft_limit_fraction * half
        self.foot_sites = np.array([model.site(f"{leg}_foot").id for leg in GO2_LEGS])
        self.foot_vel = [self.sensor_slice(f"{leg}_foot_vel") for leg in GO2_LEGS]
        self.foot_contact = [f"{leg}_foot_contact" for leg in GO2_LEGS]
        self.body_contact = (["base_contact"] + [f"{leg}_thigh_contact" for leg in GO2_LEGS]
                             + [f"{leg}_calf_col{k}_contact" for leg in GO2_LEGS for k in range(self._calf_geoms)])
        self.calf_geoms = {leg: [model.geom(f"{leg}_calf_col{k}").id for k in range(self._calf_geoms)]
                           for leg in GO2_LEGS}

    def state_spec(self):
        c = self.cfg
        return {
            **super().state_spec(),
            "t": ((1,), np.int64),                         # control steps completed in this episode
            "cmd_schedule": ((c.command_segments, 3), np.float64),  # (v_x*, v_y*, heading*) per segment
            "cmd": ((3,), np.float64),                     # command in force: (v_x*, v_y*, omega*)
            "air_time": ((4,), np.float64),
            "last_contact": ((4,), np.bool_),
            "prev_qvel": ((12,), np.float64),
            "err_sum": ((1,), np.float64),
            "spawn_xy": ((2,), np.float64),
        }

    # ------------------------------------------------------------------ episode
    def sample_commands(self, rng: np.random.Generator) -> np.ndarray:
        """The reset-time command schedule: (segments, 3) of (v_x*, v_y*, heading*).

        The linear command is zeroed when its norm is below ``command_zero_below``,
        judged on the freshly drawn command itself.
        """
        c = self.cfg
        n = c.command_segments
        vx = rng.uniform(*c.command_vx, n)
        vy = rng.uniform(*c.command_vy, n)
        heading = rng.uniform(*c.command_heading, n)
        small = np.hypot(vx, vy) < c.command_zero_below
        vx[small] = 0.0
        vy[small] = 0.0
        return np.stack([vx, vy, heading], axis=1)

    def spawn_center(self, rng: np.random.Generator, env_id: int, state: TaskState) -> np.ndarray:
        return np.array([0.0, 0.0, self.cfg.spawn_z])

    def initialize_episode(self, sim, state, env_ids, rngs):
        c = self.cfg
        for i, r in zip(env_ids, rngs):
            center = self.spawn_center(r, int(i), state)
            self.spawn(sim, np.array([i]), [r], center, c.spawn_noise, math.radians(c.spawn_tilt_deg),
                       self.q_default, c.joint_noise)
            state["cmd_schedule"][i] = self.sample_commands(r)
        sim.forward(env_ids)
        state["spawn_xy"][env_ids] = sim.xpos[env_ids, self.base_id, :2]
        self.update_command(sim, state, env_ids)

    def update_command(self, sim, state, env_ids) -> None:
        """The command in force for the next step: the schedule's segment and the yaw-rate command."""
        c = self.cfg
        t = state["t"][env_ids, 0]
        seg = np.minimum(t // c.command_segment_steps, c.command_segments - 1)
        sched = state["cmd_schedule"][env_ids, seg]
        yaw = yaw_of(sim.xmat[env_ids, self.base_id])
        omega = np.clip(0.5 * wrap_angle(sched[:, 2] - yaw), -1.0, 1.0)
        state["cmd"][env_ids] = np.stack([sched[:, 0], sched[:, 1], omega], axis=1)

    # ------------------------------------------------------------------ control
    def targets(self, state, action, env_ids):
        return self.q_default + self.cfg.action_scale * action

    def apply_action(self, sim, state, action, env_ids):
        sim.ctrl[env_ids] = self.targets(state, action, env_ids)

    # ------------------------------------------------------------------ observations
    def actor_vector(self, sim, state, env_ids) -> np.ndarray:
        """The 45-D actor vector."""
        _, xmat = self.base_pose(sim, env_ids)
        q, v = sim.qpos[env_ids], sim.qvel[env_ids]
        cmd = state["cmd"][env_ids]
        return np.concatenate([
            0.25 * v[:, 3:6],                      # body angular velocity (free joint: local frame)
            -xmat[:, 6:9],                          # projected gravity R^T (0, 0, -1)
            cmd * COMMAND_SCALE,
            q[:, self.qadr] - self.q_default,
            0.05 * v[:, self.vadr],
            state["prev_action"][env_ids],          # a_t, the action just applied
        ], axis=1)

    def base_lin_vel_yaw(self, sim, env_ids):
        _, xmat = self.base_pose(sim, env_ids)
        return to_yaw_frame(sim.qvel[env_ids, 0:3], yaw_of(xmat))

    def observe(self, sim, state, env_ids):
        actor = self.actor_vector(sim, state, env_ids)
        priv = np.concatenate([2.0 * self.base_lin_vel_yaw(sim, env_ids), actor, state["prev_action2"][env_ids]],
                              axis=1)
        return {"proprio": actor, "privileged": priv}

    # ------------------------------------------------------------------ reward
    def feet_contact(self, sim, env_ids) -> np.ndarray:
        # the magnitude of the net contact force, not its vertical part as tasks.md 3.10 says: a documented
        # deviation of the v0 ids (changing it changes the rewards, so it needs new ids)
        return self.contact_norm(sim, env_ids, self.foot_contact) > 1.0

    def tracking_error(self, sim, state, env_ids) -> np.ndarray:
        v = self.base_lin_vel_yaw(sim, env_ids)
        return np.linalg.norm(state["cmd"][env_ids, :2] - v[:, :2], axis=1)

    def foot_height(self, sim, env_ids) -> np.ndarray:
        """Foot-centre heights above the ground below them (flat floor: z)."""
        return sim.site_xpos[env_ids][:, self.foot_sites, 2]

    def reward_terms(self, sim, state, action, env_ids):
        c = self.cfg
        dt = c.control_dt
        pos, xmat = self.base_pose(sim, env_ids)
        v = sim.qvel[env_ids]
        cmd = state["cmd"][env_ids]
        v_yaw = self.base_lin_vel_yaw(sim, env_ids)
        v_body = to_body_frame(v[:, 0:3], xmat)
        ang = v[:, 3:6]
        q = sim.qpos[env_ids][:, self.qadr]
        qd = v[:, self.vadr]
        a1, a2 = state["prev_action"][env_ids], state["prev_action2"][env_ids]
        contact = self.feet_contact(sim, env_ids)
        filt = contact | state["last_contact"][env_ids]
        air = state["air_time"][env_ids]
        first = (air > 0.0) & filt
        air_now = air + dt
        moving = np.linalg.norm(cmd[:, :2], axis=1) > 0.1
        foot_v = np.stack([np.linalg.norm(sim.sensordata[env_ids, s][:, :2], axis=1) for s in self.foot_vel], axis=1)
        foot_z = self.foot_height(sim, env_ids)
        collisions = (self.contact_norm(sim, env_ids, self.body_contact) > 0.1).reshape(len(env_ids), -1)
        # base + 4 thighs count once each; a calf counts once if any of its collision geoms touches
        nc = self._calf_geoms
        calf = collisions[:, 5:].reshape(len(env_ids), 4, nc).any(axis=2) if nc else np.zeros((len(env_ids), 4), bool)
        n_coll = collisions[:, :5].sum(axis=1) + calf.sum(axis=1)
        raw = {
            "tracking_lin_vel": np.exp(-np.sum((cmd[:, :2] - v_yaw[:, :2]) ** 2, axis=1) / c.tracking_sigma),
            "tracking_ang_vel": np.exp(-((cmd[:, 2] - ang[:, 2]) ** 2) / c.tracking_sigma),
            "lin_vel_z": v_body[:, 2] ** 2,
            "ang_vel_xy": np.sum(ang[:, :2] ** 2, axis=1),
            "base_height": (pos[:, 2] - c.base_height_target) ** 2,
            "dof_pos_limits": np.sum(np.clip(self.soft_lo - q, 0, None) + np.clip(q - self.soft_hi, 0, None), axis=1),
            "collision": n_coll.astype(np.float64),
            "dof_acc": np.sum(((qd - state["prev_qvel"][env_ids]) / dt) ** 2, axis=1),
            "action_rate": np.sum((action - a1) ** 2, axis=1),
            "action_smoothness": np.sum((action - 2 * a1 + a2) ** 2, axis=1),
            "feet_air_time": np.sum((air_now - 0.5) * first, axis=1) * moving,
            "stand_still": (contact.all(axis=1) & (np.linalg.norm(cmd, axis=1) < 0.01)).astype(np.float64),
            "feet_clearance": np.exp(-np.sum(foot_v * (foot_z - c.feet_clearance_target) ** 2, axis=1) / 0.01),
        }
        weights = {k: getattr(c, f"w_{k}") for k in raw}
        return {k: weights[k] * raw[k] * dt for k in raw}

    def after_step(self, sim, state, action, env_ids):
        super().after_step(sim, state, action, env_ids)
        c = self.cfg
        contact = self.feet_contact(sim, env_ids)
        filt = contact | state["last_contact"][env_ids]
        state["air_time"][env_ids] = (state["air_time"][env_ids] + c.control_dt) * ~filt
        state["last_contact"][env_ids] = contact
        state["prev_qvel"][env_ids] = sim.qvel[env_ids][:, self.vadr]
        state["err_sum"][env_ids, 0] += self.tracking_error(sim, state, env_ids)
        state["t"][env_ids, 0] += 1
        self.update_command(sim, state, env_ids)

    # ------------------------------------------------------------------ success / failure
    def failure(self, sim, state, env_ids) -> np.ndarray:
        c = self.cfg
        pos, xmat = self.base_pose(sim, env_ids)
        roll, pitch = roll_pitch_of(xmat)
        base_hit = self.contact_norm(sim, env_ids, ["base_contact"])[:, 0] > c.base_contact_force
        return base_hit | (np.abs(roll) > c.max_roll) | (np.abs(pitch) > c.max_pitch) | (pos[:, 2] < 0.0)

    def distance(self, sim, state, env_ids) -> np.ndarray:
        return np.linalg.norm(sim.xpos[env_ids, self.base_id, :2] - state["spawn_xy"][env_ids], axis=1)

    def evaluate(self, sim, state, env_ids):
        c = self.cfg
        failure = self.failure(sim, state, env_ids)
        steps = state["t"][env_ids, 0] + 1  # this step included
        mean_err = (state["err_sum"][env_ids, 0] + self.tracking_error(sim, state, env_ids)) / steps
        success = (steps >= self.max_episode_steps) & ~failure & (mean_err <= c.success_tracking_error)
        return Evaluation(success, failure, {"distance": self.distance(sim, state, env_ids),
                                             "vel_tracking_error": mean_err, "fell": failure.astype(np.float64)})


GO2_ID = "VRB/Go2-v0"


@register_task(GO2_ID)
class Go2(Go2Base):
    """Unitree Go2 tracks commanded planar velocities and heading on flat ground (ego depth camera).

    **Description.** Menagerie ``unitree_go2/go2.xml`` on a textured flat floor. The model's motors
    become PD position actuators (kp 30, kv 1.5) with symmetric torque limits from the actuator
    force ranges: +-23.7 N m (hip, thigh), +-45.43 N m (calf). Model values kept: joint damping 2,
    armature 0.01, frictionloss 0.2, feet friction 0.8 with condim 6, elliptic cones, impratio 100.
    Timestep 0.005 s x 4 sub-steps (50 Hz). Render profile: visual meshes decimated to 2%.

    **Observations.** ``pixels`` 58x87x1 ego depth (metric depth clipped to [0, 2] m, linear to
    0-255); ``proprio`` (45): 0.25 x body angular velocity (3), projected gravity (3), command
    (2 v_x*, 2 v_y*, 0.25 omega*) (3), q - q_default (12), 0.05 x qd (12), last applied action a_t
    (12); ``privileged`` (60): 2 x base linear velocity in the yaw frame (3), the 45 above, a_{t-1}
    (12).

    **Actions.** 12 joint targets q* = q_default + 0.5 a in actuator order FL, FR, RL, RR (hip,
    thigh, calf); default pose hips 0, front thighs 0.8, rear thighs 1.0, calves -1.5.

    **Reward terms.** Each weighted and multiplied by dt = 0.02: tracking_lin_vel (5 exp(-|cmd_xy -
    v_xy|^2 / 0.25), yaw frame), tracking_ang_vel (1.5 exp(-(omega* - omega_z)^2 / 0.25)), lin_vel_z
    (-2 v_z^2), ang_vel_xy (-0.05 |omega_xy|^2), base_height (-2 (z - 0.3)^2), dof_pos_limits (-2 x
    violation of the central 90% of each range), collision (-1 x base/thigh/calf bodies with contact
    force > 0.1 N), dof_acc (-2.5e-7 sum qdd^2), action_rate (-0.01 |a_t - a_{t-1}|^2),
    action_smoothness (-0.01 |a_t - 2 a_{t-1} + a_{t-2}|^2), feet_air_time (sum (t_air - 0.5) at
    first contact, when |cmd_xy| > 0.1; timers advance 0.02 s per step), stand_still (0.5 when all
    feet touch and |cmd| < 0.01), feet_clearance (0.2 exp(-sum |v_foot,xy| (z_foot - 0.072)^2 /
    0.01)). A foot touches when the magnitude of its net contact force exceeds 1 N (tasks.md says its
    vertical force; on flat ground with friction 0.8 the two differ at most by the friction cone, on
    Go2Terrain's risers and slopes more): a documented deviation of the v0 ids.

    **Success.** At the final step only: the episode reached 1000 steps without termination and
    the episode mean of |cmd_xy - v_xy| is <= 0.3 m/s. Metrics: distance (horizontal, from the
    spawn), vel_tracking_error (running mean of |cmd_xy - v_xy|), fell.

    **Episode end.** Terminates on base contact force > 1 N, |roll| > 0.4, |pitch| > 0.4 or base
    z < 0; truncates at 1000 steps (20 s). Commands: 5 segments of 200 steps drawn at reset,
    v_x*, v_y* ~ U(-1, 1) (zeroed when |(v_x*, v_y*)| < 0.2), heading* ~ U(-pi, pi); omega* =
    clip(0.5 wrap(heading* - heading), -1, 1) every step. Reset: base at (0, 0, 0.42) +- 0.025,
    tilt <= 7.5 deg, joints default +- 0.5 (clipped to the limits).

    **Cameras.** ``ego_depth``: rigid in ``base`` at (0.32, 0, 0.15), looking at (0.5, 0, 0) (about
    40 deg down), 87 wide x 58 high with the intrinsics of the D435-like 106x60 fovy-58 image cropped
    (last 2 rows, 4 columns per side) and resized to 87x58 (about 84 x 56 deg), except that the principal
    point is centred (the crop would leave it one row, about 1 deg, below the centre); draws only geom
    group 0 (ground), not the robot. ``track``: third-person view for ``render()``.

    **Version history.** v0: initial release.
    """

    config_cls = Go2Config



# ===================================================================================== G1Hurdle

G1_JOINTS = (
    "left_hip_pitch", "left_hip_roll", "left_hip_yaw", "left_knee", "left_ankle_pitch", "left_ankle_roll",
    "right_hip_pitch", "right_hip_roll", "right_hip_yaw", "right_knee", "right_ankle_pitch", "right_ankle_roll",
    "waist_yaw",
    "left_shoulder_pitch", "left_shoulder_roll", "left_shoulder_yaw", "left_elbow", "left_wrist_roll",
    "right_shoulder_pitch", "right_shoulder_roll", "right_shoulder_yaw", "right_elbow", "right_wrist_roll",
)
# per joint kind: (action scale, kp, kd)
G1_GAINS = {
    "hip_pitch": (1.5533, 200.0, 5.0), "hip_roll": (0.698, 150.0, 5.0), "hip_yaw": (0.157, 150.0, 5.0),
    "knee": (1.1694, 200.0, 5.0), "ankle_pitch": (0.255, 20.0, 2.0), "ankle_roll": (0.0524, 20.0, 2.0),
    "waist_yaw": (0.262, 200.0, 5.0), "shoulder_pitch": (1.0997, 40.0, 10.0), "shoulder_roll": (0.894, 40.0, 10.0),
    "shoulder_yaw": (0.314, 40.0, 10.0), "elbow": (0.747, 40.0, 10.0), "wrist_roll": (0.493, 40.0, 10.0),
}


def _g1_kind(joint: str) -> str:
    return joint.replace("left_", "").replace("right_", "")


def _g1_default(joint: str) -> float:
    kind = _g1_kind(joint)
    table = {"hip_pitch": -0.312, "knee": 0.669, "ankle_pitch": -0.363, "shoulder_pitch": 0.2, "elbow": 0.6}
    if kind == "shoulder_roll":
        return 0.2 if joint.startswith("left_") else -0.2
    return table.get(kind, 0.0)


@dataclass(frozen=True)
class G1HurdleConfig(HurdleRow, LeggedConfig):
    """VRB/G1Hurdle-v0 (tasks.md 3.12)."""

    max_episode_steps: int = 1000
    proprio_dim: int = 56
    privileged_dim: int = 56
    height_scan_dim: int = 135
    cameras: tuple[CameraConfig, ...] = (
        CameraConfig("ego", pos=(0.2, 0.0, -0.1), lookat=(0.8, 0.0, -0.3), up=(0.0, 0.0, 1.0), body="torso_link",
                     mode="fixed", fovy=80.0, geomgroups=(0, 1, 2)),
        CameraConfig("track", pos=(0.5, -3.0, 0.3), lookat=(0.5, 0.0, -0.2), body="pelvis", mode="track", fovy=50.0),
    )
    policy_cameras: tuple[str, ...] = ("ego",)
    render_camera: str = "track"
    joints: tuple[str, ...] = G1_JOINTS
    action_scale: tuple[float, ...] = tuple(G1_GAINS[_g1_kind(j)][0] for j in G1_JOINTS)
    kp: tuple[float, ...] = tuple(G1_GAINS[_g1_kind(j)][1] for j in G1_JOINTS)
    kd: tuple[float, ...] = tuple(G1_GAINS[_g1_kind(j)][2] for j in G1_JOINTS)
    default_pose: tuple[float, ...] = tuple(_g1_default(j) for j in G1_JOINTS)
    hurdle_count: int = 10
    hurdle_start: float = 2.0
    hurdle_spacing: float = 2.0
    hurdle_min_height: float = 0.05
    hurdle_max_height: float = 0.30
    hurdle_thickness: float = 0.10
    hurdle_width: float = 5.0
    floor_friction: float = 1.0
    spawn: tuple[float, float, float] = (0.2, 0.0, 0.8)
    spawn_noise: float = 0.05
    spawn_tilt_deg: float = 7.5
    joint_noise: float = 0.05
    min_z: float = 0.6
    max_z: float = 1.0
    max_abs_y: float = 2.5
    success_x: float = 21.0
    heading_target: float = 200.0
    scan_x: tuple[float, ...] = tuple(round(-0.8 + 0.2 * i, 1) for i in range(15))
    scan_y: tuple[float, ...] = tuple(round(-0.4 + 0.1 * i, 1) for i in range(9))
    w_height: float = 1.0
    w_forward: float = 1.0
    w_upright: float = 0.1
    w_heading: float = 1.0
    w_action: float = -0.002


@register_task("VRB/G1Hurdle-v0")
class G1Hurdle(LeggedTask):
    """Unitree G1 (23 DoF) walks forward over 10 hurdles from an ego-centric RGB camera.

    **Description.** Unitree's ``g1_23dof_rev_1_0.xml`` (mesh collision geoms, 4 small spheres per
    foot) on a flat textured floor (ground everywhere) with 10 static red box hurdles, 5 m wide and
    0.10 m thick, at x = 2, 4, ..., 20 m, heights rising linearly from 0.05 to 0.30 m. The model's
    motors become PD position actuators (kp/kd: hip pitch, roll, yaw, knee 200/150/150/200 with kd 5;
    ankles 20 with kd 2; waist 200/5; arms 40/10) with the model's symmetric force ranges.
    Integrator implicitfast, timestep 0.005 s x 4 sub-steps (50 Hz). Render profile: visual meshes
    decimated to 2%; the collision meshes are in geom group 3, which no camera draws.

    **Observations.** ``pixels`` 84x84x9 from ``ego``; ``proprio`` (56) = ``privileged`` (56): pelvis
    z (1), projected gravity (3), base velocity (linear world, angular body) (6), 23 joint positions,
    23 joint velocities; ``height_scan`` (135): absolute terrain heights on a 15 x 9 grid, x in
    {-0.8, ..., 2.0} m, y in {-0.4, ..., 0.4} m around the pelvis, rotated by its yaw.

    **Actions.** 23 joint targets q* = q_default + a * s, clipped to the joint limits (s per joint:
    hip pitch 1.5533, roll 0.698, yaw 0.157, knee 1.1694, ankle pitch 0.255, roll 0.0524, waist
    0.262, shoulder pitch 1.0997, roll 0.894, yaw 0.314, elbow 0.747, wrist roll 0.493).

    **Reward terms.** height (10 d if d > 0 else -200 d^2, d = clip(z - 0.7, -1, 0.1)), forward
    (v_x), upright (0.1 x z-component of the pelvis z-axis), heading (pelvis x-axis toward
    (200, 0)), action (-0.002 sum a^2).

    **Success.** Pelvis x >= 21 m (past the last hurdle) and not terminated. Metrics: distance,
    hurdles_cleared, fell.

    **Episode end.** Terminates when z < 0.6, z > 1.0, |y| > 2.5 m, or the pelvis or torso touches
    the ground or a hurdle; truncates at 1000 steps (20 s). Reset: pelvis at (0.2, 0, 0.8) +- 0.05,
    tilt <= 7.5 deg, joints default +- 0.05 (hip pitch -0.312, knee 0.669, ankle pitch -0.363,
    shoulder pitch 0.2, shoulder roll +-0.2, elbow 0.6, others 0).

    **Cameras.** ``ego``: rigid in ``torso_link`` at (0.2, 0, -0.1) looking at (0.8, 0, -0.3), up
    torso +z, fovy 80 (rotates with the torso); ``track``: side view for ``render()``.

    **Version history.** v0: initial release.
    """

    config_cls = G1HurdleConfig
    robot = "unitree_g1_23dof"
    base_body = "pelvis"
    metric_names = ("distance", "hurdles_cleared", "fell")

    def build_scene(self):
        c = self.cfg
        spec = self.load_robot()
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        # position actuators, in the order of c.joints
        acts = {a.name.replace("_joint", ""): a for a in spec.actuators}
        if set(acts) != set(c.joints):
            raise ValueError(f"G1 model actuators {sorted(acts)} differ from the task's joints {sorted(c.joints)}")
        for j, name in enumerate(c.joints):
            act = acts[name]
            joint = spec.joint(f"{name}_joint")
            act.set_to_position(kp=c.kp[j], kv=c.kd[j])
            act.ctrllimited = 0
            act.ctrlrange = [0.0, 0.0]
            act.forcelimited = 1
            act.forcerange = [float(joint.actfrcrange[0]), float(joint.actfrcrange[1])]
        # collision geoms to group 3 (never drawn); a mesh shared by a visual and a collision geom
        # gets a visual-only copy, so that the CPU profile can decimate what is drawn
        shared = {g.meshname for g in spec.geoms if g.type == mujoco.mjtGeom.mjGEOM_MESH and (g.contype or g.conaffinity)}
        copies: dict[str, str] = {}
        for geom in list(spec.geoms):
            if geom.contype or geom.conaffinity:
                geom.group = 3
            elif geom.type == mujoco.mjtGeom.mjGEOM_MESH and geom.meshname in shared:
                src = geom.meshname
                if src not in copies:
                    m = spec.mesh(src)
                    copy = spec.add_mesh(name=f"{src}_vis", file=m.file, scale=list(m.scale))
                    copy.refpos, copy.refquat = list(m.refpos), list(m.refquat)
                    copies[src] = copy.name
                geom.meshname = copies[src]
        scene.add_floor(spec, half_size=(30.0, 10.0), center=(20.0, 0.0), friction=c.floor_friction)
        spec.add_material(name="hurdle", rgba=[0.8, 0.15, 0.1, 1.0])
        for i, (x, h) in enumerate(zip(c.hurdle_x, c.hurdle_heights)):
            spec.worldbody.add_geom(name=f"hurdle{i}", type=mujoco.mjtGeom.mjGEOM_BOX,
                                    size=[c.hurdle_thickness / 2, c.hurdle_width / 2, h / 2], pos=[x, 0.0, h / 2],
                                    material="hurdle", friction=[c.floor_friction, 0.005, 0.0001], group=0,
                                    **scene.COLLIDES)
        for body in ("pelvis", "torso_link"):
            add_contact_sensor(spec, f"{body}_ground", mujoco.mjtObj.mjOBJ_BODY, body,
                               mujoco.mjtObj.mjOBJ_BODY, "world")
        self.finish_robot_scene(spec)
        return spec

    def setup(self, model):
        super().setup(model)
        c = self.cfg
        names = [model.joint(int(j)).name.replace("_joint", "") for j in self.act_joints]
        if names != list(c.joints):
            raise ValueError(f"G1 actuator order {names} differs from the task's {list(c.joints)}")
        self.q_default = np.asarray(c.default_pose, float)
        self.scale = np.asarray(c.action_scale, float)
        self.torso_id = model.body("torso_link").id
        sx, sy = np.meshgrid(np.asarray(c.scan_x), np.asarray(c.scan_y), indexing="ij")
        self.scan_pts = np.stack([sx.ravel(), sy.ravel()], axis=1)  # (135, 2), x-major

    def state_spec(self):
        return {**super().state_spec(), "spawn_x": ((1,), np.float64)}

    def initialize_episode(self, sim, state, env_ids, rngs):
        c = self.cfg
        self.spawn(sim, env_ids, rngs, c.spawn, c.spawn_noise, math.radians(c.spawn_tilt_deg), self.q_default,
                   c.joint_noise)
        sim.forward(env_ids)
        state["spawn_x"][env_ids, 0] = sim.xpos[env_ids, self.base_id, 0]

    def apply_action(self, sim, state, action, env_ids):
        sim.ctrl[env_ids] = np.clip(self.q_default + action * self.scale, self.jlo, self.jhi)

    def terrain_height(self, xy: np.ndarray) -> np.ndarray:
        """Ground height at world points ``xy`` (..., 2): hurdle tops, else 0."""
        c = self.cfg
        x, y = xy[..., 0], xy[..., 1]
        on = (np.abs(x[..., None] - c.hurdle_x) <= c.hurdle_thickness / 2) & (np.abs(y[..., None]) <= c.hurdle_width / 2)
        return (on * c.hurdle_heights).max(axis=-1)

    def height_scan(self, sim, env_ids):
        pos, xmat = self.base_pose(sim, env_ids)
        yaw = yaw_of(xmat)
        cs, sn = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        px, py = self.scan_pts[None, :, 0], self.scan_pts[None, :, 1]
        world = np.stack([pos[:, :1] + cs * px - sn * py, pos[:, 1:2] + sn * px + cs * py], axis=-1)
        return self.terrain_height(world)

    def observe(self, sim, state, env_ids):
        pos, xmat = self.base_pose(sim, env_ids)
        q, v = sim.qpos[env_ids], sim.qvel[env_ids]
        vec = np.concatenate([pos[:, 2:3], -xmat[:, 6:9], v[:, 0:6], q[:, self.qadr], v[:, self.vadr]], axis=1)
        return {"proprio": vec, "privileged": vec.copy(), "height_scan": self.height_scan(sim, env_ids)}

    def heading(self, sim, env_ids):
        pos, xmat = self.base_pose(sim, env_ids)
        return heading_alignment(xmat, pos, self.cfg.heading_target)

    def reward_terms(self, sim, state, action, env_ids):
        c = self.cfg
        pos, xmat = self.base_pose(sim, env_ids)
        d = np.clip(pos[:, 2] - 0.7, -1.0, 0.1)
        return {
            "height": c.w_height * np.where(d > 0, 10.0 * d, -200.0 * d**2),
            "forward": c.w_forward * sim.qvel[env_ids, 0],
            "upright": c.w_upright * xmat[:, 8],
            "heading": c.w_heading * self.heading(sim, env_ids),
            "action": c.w_action * np.sum(action**2, axis=1),
        }

    def failure(self, sim, state, env_ids):
        c = self.cfg
        pos, _ = self.base_pose(sim, env_ids)
        touch = (self.contact_norm(sim, env_ids, ["pelvis_ground", "torso_link_ground"]) > 0.0).any(axis=1)
        return (pos[:, 2] < c.min_z) | (pos[:, 2] > c.max_z) | (np.abs(pos[:, 1]) > c.max_abs_y) | touch

    def evaluate(self, sim, state, env_ids):
        c = self.cfg
        x = sim.xpos[env_ids, self.base_id, 0]
        failure = self.failure(sim, state, env_ids)
        success = (x >= c.success_x) & ~failure
        return Evaluation(success, failure, {"distance": x - state["spawn_x"][env_ids, 0],
                                             "hurdles_cleared": c.hurdles_cleared(x),
                                             "fell": failure.astype(np.float64)})
