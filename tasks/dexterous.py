"""Dexterous manipulation tasks: ShadowCube, AllegroCube, FrankaPick.

Definitions: ``tasks.md`` sections 3.6, 3.7 and 3.9. Robot models come from the
model resolver (:mod:`visual_robo_bench.models`): the Shadow Hand from the
installed ``gymnasium-robotics`` package (no download), the Allegro hand and the
Panda from ``VRB_MODEL_DIR`` / ``model_dir=`` or ``robot_descriptions``
(MuJoCo Menagerie at a pinned commit). All edits of the source models are
absolute assignments made with ``MjSpec``. Heavy visual meshes are decimated for
the CPU render profile (:mod:`visual_robo_bench.core.lod`); the decimation
parameters are part of each task's config.

Upstream bugs fixed (``tasks.md`` section 4): the previous action is updated
every step (2), the Franka target is visible and observed (6), the Franka cube
is 4 cm (7) and spawns resting on the table (8), no hidden gripper override (9),
integer episode lengths (16), success predicates for the hand tasks (22), goal
ghosts inside the policy image (24), the 20-actuator tendon-coupled Shadow Hand
(28).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from visual_robo_bench.core import scene
from visual_robo_bench.core.config import CameraConfig
from visual_robo_bench.core.sim import BatchSim
from visual_robo_bench.core.task import Evaluation, TaskState
from visual_robo_bench.registry import register_task

from ._common import (RobotTask, RobotTaskConfig, axis_angle_quat, mat_to_quat,  # noqa: F401 - also imported from here
                      quat_conj, quat_mul, rotation_angle)

# ------------------------------------------------------------------------------------ helpers


def site_velocity(sim: BatchSim, model: mujoco.MjModel, env_ids: np.ndarray, site_ids: np.ndarray):
    """World-frame (linear, angular) velocities of sites, as ``mj_objectVelocity`` (global frame)."""
    bodies = model.site_bodyid[site_ids]
    cvel = sim.cvel[env_ids][:, bodies]  # (k, s, 6): [angular, linear] at the subtree com of the root
    com = sim.subtree_com[env_ids][:, model.body_rootid[bodies]]
    ang, lin = cvel[..., :3], cvel[..., 3:]
    lin = lin + np.cross(ang, sim.site_xpos[env_ids][:, site_ids] - com)
    return lin, ang


# ------------------------------------------------------------------------ in-hand reorientation


@dataclass(frozen=True)
class CubeConfig(RobotTaskConfig):
    """Shared settings of the in-hand cube-reorientation tasks.

    Attributes:
        goal_pos: p_goal (also the nominal spawn of the cube).
        ghost_offset: Goal-ghost position relative to p_goal.
        ghost_alpha: Opacity of the goal ghost.
        cube_half: Half edge of the cube (m).
        goal_angle_range: Goal rotation angle range (rad) about world x or y.
        spawn_noise: Cube spawn noise per axis (m).
        joint_noise: Joint spawn noise as a fraction of each joint range.
        success_angle: Orientation error for success (rad).
        drop_distance: Distance from p_goal beyond which the cube has dropped (m).
    """

    goal_pos: tuple[float, float, float] = (1.0, 0.87, 0.2)
    ghost_offset: tuple[float, float, float] = (0.15, 0.0, 0.0)
    ghost_alpha: float = 0.4
    cube_half: float = 0.025
    goal_angle_range: tuple[float, float] = (math.radians(60.0), math.radians(90.0))
    spawn_noise: float = 0.01
    joint_noise: float = 0.1
    success_angle: float = 0.1
    drop_distance: float = 0.1
    w_position: float = -10.0
    w_orientation: float = -1.0
    w_action: float = -0.0002
    w_alive: float = 3.0


class CubeTask(RobotTask):
    """Shared machinery of the hand tasks: goal ghost, observations, reward, success."""

    cube_body: str = "object"
    cube_joint: str = "object:joint"
    ghost_body: str = "target"
    fingertip_sites: tuple[str, ...] = ()
    cube_angvel_scale: float | None = None  # factor on the cube's angular velocity in ``privileged`` (None: 1)
    metric_names = ("orientation_error", "position_error", "dropped")

    # ---- scene
    def add_ghost(self, spec: mujoco.MjSpec, material: str) -> None:
        """The goal ghost: a translucent, non-colliding mocap copy of the cube (geom group 2)."""
        body = spec.worldbody.add_body(name=self.ghost_body, mocap=True,
                                       pos=list(np.add(self.cfg.goal_pos, self.cfg.ghost_offset)))
        body.add_geom(name="goal_ghost", type=mujoco.mjtGeom.mjGEOM_BOX, size=[self.cfg.cube_half] * 3,
                      material=material, contype=0, conaffinity=0, group=2, mass=0.0)

    def setup(self, model):
        super().setup(model)
        jnt = model.joint(self.cube_joint)
        self.cube_q = int(jnt.qposadr[0])
        self.cube_v = int(jnt.dofadr[0])
        self.ghost_mocap = int(model.body_mocapid[model.body(self.ghost_body).id])
        self.hand_joints = np.array([j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE])
        self.hq = model.jnt_qposadr[self.hand_joints]
        self.hv = model.jnt_dofadr[self.hand_joints]
        self.jlo, self.jhi = model.jnt_range[self.hand_joints].T
        self.tips = np.array([model.site(s).id for s in self.fingertip_sites])
        self.ctrl_lo, self.ctrl_hi = model.actuator_ctrlrange.T.copy()

    def state_spec(self):
        return {**super().state_spec(), "goal_quat": ((4,), np.float64)}

    # ---- episode
    def sample_goal(self, rng: np.random.Generator) -> np.ndarray:
        axis = np.eye(3)[0] if rng.uniform() < 0.5 else np.eye(3)[1]
        return axis_angle_quat(axis, rng.uniform(*self.cfg.goal_angle_range))

    def set_goal(self, sim: BatchSim, state: TaskState, env_ids: np.ndarray, quats: np.ndarray) -> None:
        """Write q_goal into the task state and the ghost (both part of the cloneable state)."""
        state["goal_quat"][env_ids] = quats
        sim.mocap_pos[env_ids, self.ghost_mocap] = np.add(self.cfg.goal_pos, self.cfg.ghost_offset)
        sim.mocap_quat[env_ids, self.ghost_mocap] = quats

    def place(self, sim, state, env_ids, rngs, hand_center: np.ndarray) -> None:
        """Hand at ``hand_center`` +- joint_noise * range (clipped), cube at p_goal +- noise, targets = pose."""
        c = self.cfg
        rng_width = self.jhi - self.jlo
        for i, r in zip(env_ids, rngs):
            q = self.model.qpos0.copy()
            q[self.hq] = np.clip(hand_center + r.uniform(-1, 1, len(self.hq)) * c.joint_noise * rng_width,
                                 self.jlo, self.jhi)
            q[self.cube_q:self.cube_q + 3] = np.asarray(c.goal_pos) + r.uniform(-c.spawn_noise, c.spawn_noise, 3)
            q[self.cube_q + 3:self.cube_q + 7] = (1.0, 0.0, 0.0, 0.0)
            sim.qpos[i] = q
            self.set_goal(sim, state, np.array([i]), self.sample_goal(r)[None])
        sim.qvel[env_ids] = 0.0
        sim.forward(env_ids)
        # actuator targets match the pose (coupled actuators: their tendon length)
        self.hold_targets(sim, state, env_ids, sim.actuator_length[env_ids])

    def hold_targets(self, sim, state, env_ids, targets: np.ndarray) -> None:
        """ctrl = ``targets`` clipped to the ctrl ranges; a_{t-1} = a_{t-2} = the action that holds them."""
        ctrl = np.clip(targets, self.ctrl_lo, self.ctrl_hi)
        sim.ctrl[env_ids] = ctrl
        a0 = (ctrl - (self.ctrl_lo + self.ctrl_hi) / 2) / ((self.ctrl_hi - self.ctrl_lo) / 2)
        state["prev_action"][env_ids] = a0
        state["prev_action2"][env_ids] = a0

    # ---- observations
    def cube_pose(self, sim, env_ids):
        q = sim.qpos[env_ids]
        return q[:, self.cube_q:self.cube_q + 3], q[:, self.cube_q + 3:self.cube_q + 7]

    def errors(self, sim, state, env_ids):
        pos, quat = self.cube_pose(sim, env_ids)
        d = np.linalg.norm(pos - np.asarray(self.cfg.goal_pos), axis=1)
        diff = quat_mul(quat, quat_conj(state["goal_quat"][env_ids]))
        return d, rotation_angle(diff), diff

    def hand_vector(self, sim, env_ids):
        q, v = sim.qpos[env_ids], sim.qvel[env_ids]
        return (2 * q[:, self.hq] - self.jlo - self.jhi) / (self.jhi - self.jlo), v[:, self.hv]

    def fingertips(self, sim, env_ids):
        k = len(env_ids)
        pos = sim.site_xpos[env_ids][:, self.tips].reshape(k, -1)
        quat = mat_to_quat(sim.site_xmat[env_ids][:, self.tips]).reshape(k, -1)
        lin, ang = site_velocity(sim, self.model, env_ids, self.tips)
        return pos, quat, lin.reshape(k, -1), ang.reshape(k, -1)

    def cube_state(self, sim, env_ids):
        pos, quat = self.cube_pose(sim, env_ids)
        v = sim.qvel[env_ids]
        return pos, quat, v[:, self.cube_v:self.cube_v + 3], v[:, self.cube_v + 3:self.cube_v + 6]

    def observe(self, sim, state, env_ids):
        k = len(env_ids)
        qs, qd = self.hand_vector(sim, env_ids)
        cpos, cquat, clin, cang = self.cube_state(sim, env_ids)
        if self.cube_angvel_scale is not None:
            cang = self.cube_angvel_scale * cang
        goal_q = state["goal_quat"][env_ids]
        goal_p = np.broadcast_to(np.asarray(self.cfg.goal_pos), (k, 3))
        diff = quat_mul(cquat, quat_conj(goal_q))
        tpos, tquat, tlin, tang = self.fingertips(sim, env_ids)
        prev = state["prev_action"][env_ids]
        proprio = np.concatenate([qs, 0.2 * qd, goal_p, goal_q, tpos, tquat, tlin, tang, prev], axis=1)
        priv = np.concatenate([qs, 0.2 * qd, cpos, cquat, clin, cang, goal_p, goal_q, diff,
                               tpos, tquat, tlin, tang, prev], axis=1)
        return {"proprio": proprio, "privileged": priv}

    # ---- reward, success
    def reward_terms(self, sim, state, action, env_ids):
        c = self.cfg
        d, theta, _ = self.errors(sim, state, env_ids)
        return {
            "position": c.w_position * d,
            "orientation": c.w_orientation * theta**2,
            "action": c.w_action * np.sum(action**2, axis=1),
            "alive": c.w_alive * np.ones(len(env_ids)),
        }

    def evaluate(self, sim, state, env_ids):
        c = self.cfg
        d, theta, _ = self.errors(sim, state, env_ids)
        dropped = d > c.drop_distance
        success = (theta < c.success_angle) & ~dropped
        return Evaluation(success, dropped, {"orientation_error": theta, "position_error": d,
                                             "dropped": dropped.astype(np.float64)})


# ----------------------------------------------------------------------------------- ShadowCube

SHADOW_TIPS = ("robot0:S_fftip", "robot0:S_mftip", "robot0:S_rftip", "robot0:S_lftip", "robot0:S_thtip")
_SHADOW_GOAL = (1.0, 0.87, 0.2)


def _offset(p, d):
    return tuple(float(a + b) for a, b in zip(p, d))


@dataclass(frozen=True)
class ShadowCubeConfig(CubeConfig):
    """VRB/ShadowCube-v0 (tasks.md 3.6)."""

    max_episode_steps: int = 250
    timestep: float = 0.002
    substeps: int = 20
    proprio_dim: int = 140
    privileged_dim: int = 157
    cameras: tuple[CameraConfig, ...] = (
        CameraConfig("fixed", pos=_offset(_SHADOW_GOAL, (0.25, -0.20, 0.20)),
                     lookat=_offset(_SHADOW_GOAL, (0.075, 0.0, 0.0)), fovy=50.0),
        CameraConfig("side", pos=_offset(_SHADOW_GOAL, (0.45, -0.45, 0.30)),
                     lookat=_offset(_SHADOW_GOAL, (0.05, 0.1, -0.03)), fovy=45.0),
    )
    policy_cameras: tuple[str, ...] = ("fixed",)
    render_camera: str = "side"
    goal_pos: tuple[float, float, float] = _SHADOW_GOAL
    lod_ratio: float = 0.1
    lod_min_faces: int = 64


@register_task("VRB/ShadowCube-v0")
class ShadowCube(CubeTask):
    """Shadow Dexterous Hand turns a lettered block to a goal orientation shown as a ghost.

    **Description.** Gymnasium-Robotics' ``hand/manipulate_block.xml`` (from the installed
    ``gymnasium-robotics`` package; no download): the Shadow Hand palm up at (1, 1.25, 0.15), a
    5 cm lettered block (density 567, condim 4) and a floor. The model's free-jointed ``target`` is
    replaced by a mocap goal ghost: a translucent (alpha 0.4), non-colliding copy of the block at
    p_goal + (0.15, 0, 0) with the goal orientation. Timestep 0.002 s x 20 sub-steps (25 Hz).
    Render profile: visual meshes decimated to 10% (>= 64 faces each).

    **Observations.** ``pixels`` 84x84x9 from ``fixed``; ``privileged`` (157): 24 scaled joint
    positions (2q - lo - hi)/(hi - lo), 0.2 x 24 joint velocities, block position (3), quaternion
    (4), linear velocity (3), 0.2 x angular velocity (3), p_goal (3), q_goal (4),
    q_block * q_goal^-1 (4), 5 fingertip positions (15), quaternions (20), linear (15) and angular
    (15) velocities, previous action (20). ``proprio`` (140): the same without the block state and
    the rotation difference.

    **Actions.** 20 absolute joint targets, ctrl = c + a * h (centre and half-width of each
    actuator's ctrlrange); the distal joints J0 of the four fingers follow J1 through the model's
    coupling tendons, as on the real hand.

    **Reward terms.** position (-10 d), orientation (-theta^2), action (-0.0002 sum a^2), alive (3);
    d = |p_block - p_goal|, theta = 2 asin(min(|vec(q_block * q_goal^-1)|, 1)).

    **Success.** theta < 0.1 rad and d < 0.1 m.

    **Episode end.** Terminates when d > 0.1 m (dropped); truncates at 250 steps (10 s).

    **Cameras.** ``fixed``: world camera at p_goal + (0.25, -0.2, 0.2) looking at
    p_goal + (0.075, 0, 0), fovy 50 (palm, fingertips, block and ghost in view); ``side``: wider
    view for ``render()``.

    **Version history.** v0: initial release.
    """

    config_cls = ShadowCubeConfig
    robot = "shadow_hand"
    fingertip_sites = SHADOW_TIPS
    cube_angvel_scale = 0.2

    def build_scene(self):
        spec = self.load_robot(floor_names=("floor0",))
        # the model's free-jointed target becomes the mocap goal ghost
        spec.delete(spec.body("target"))
        mat = spec.add_material(name="vrb_goal", rgba=[1.0, 1.0, 1.0, self.cfg.ghost_alpha], specular=0.3)
        mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "texture:object"
        self.add_ghost(spec, "vrb_goal")
        # the inner "hidden" block is never visible: keep physics, skip drawing it
        hidden = spec.geom("object_hidden")
        if hidden is not None:
            spec.delete(hidden)
        scene.add_floor(spec, half_size=(1.0, 1.0), center=(1.0, 1.0))
        self.finish_robot_scene(spec)
        return spec

    def initialize_episode(self, sim, state, env_ids, rngs):
        self.place(sim, state, env_ids, rngs, np.zeros(len(self.hq)))



# ------------------------------------------------------------------------------------ FrankaPick

PANDA_HOME = (0.0, 0.3, 0.0, -1.57079, 0.0, 2.0, -0.7853)


@dataclass(frozen=True)
class FrankaPickConfig(RobotTaskConfig):
    """VRB/FrankaPick-v0 (tasks.md 3.9)."""

    max_episode_steps: int = 300
    timestep: float = 0.005
    substeps: int = 2
    frame_stack: int = 1
    proprio_dim: int = 38
    privileged_dim: int = 66
    cameras: tuple[CameraConfig, ...] = (
        CameraConfig("wrist", pos=(-0.2, 0.0, -0.05), lookat=(0.0, 0.0, 0.1), up=(1.0, 0.0, 0.0), body="hand",
                     mode="fixed", fovy=60.0, geomgroups=(0, 1)),
        CameraConfig("front", pos=(1.3, 0.6, 0.7), lookat=(0.55, 0.0, 0.2), fovy=45.0),
    )
    policy_cameras: tuple[str, ...] = ("wrist", "front")
    render_camera: str = "front"
    lod_ratio: float = 0.05
    lod_min_faces: int = 32
    cube_half: float = 0.02
    cube_density: float = 1000.0
    cube_friction: float = 1.0
    cube_spawn: tuple[float, float, float] = (0.6, 0.0, 0.02)
    spawn_range: float = 0.1
    target_height: tuple[float, float] = (0.2, 0.4)
    marker_radius: float = 0.015
    home: tuple[float, ...] = PANDA_HOME
    arm_delta: float = 0.04
    finger_delta: float = 0.04
    finger_max: float = 0.04
    grip_offset: float = 0.05
    reach_distance: float = 0.02
    lift_height: float = 0.035
    grasp_width: float = 0.045
    success_distance: float = 0.025
    bounds: float = 1.0
    w_reach: float = 4.0
    w_move_to_target: float = 8.0
    w_no_floor_contact: float = 0.25
    w_home_pose: float = 0.3
    w_grasp: float = 1.0
    w_lifted: float = 3.0
    w_target_coarse: float = 16.0
    w_target_fine: float = 5.0
    w_action: float = -0.01


@register_task("VRB/FrankaPick-v0")
class FrankaPick(RobotTask):
    """Franka Panda picks a 4 cm cube and lifts it to a visible target.

    **Description.** Menagerie ``franka_emika_panda/panda.xml`` (7 position-controlled arm joints,
    tendon-driven gripper ``actuator8``), base at the origin on a wooden table top (plane z = 0).
    A 4 cm cube (density 1000, friction 1) rests on the table; the target is an opaque,
    non-colliding green sphere (r = 1.5 cm, mocap) drawn by both cameras (opaque: llvmpipe blends
    a translucent sphere differently at different tile offsets where it crosses a finger). Timestep 0.005 s x 2
    sub-steps (100 Hz). Render profile: visual meshes decimated to 5% (>= 32 faces each).

    **Observations.** ``pixels`` 84x84x3 (wrist camera) and ``pixels_front`` 84x84x3 (fixed
    camera), one frame each; ``proprio`` (38): arm q (7), finger q (2), arm qd (7), finger qd (2),
    gripper position (3), gripper rotation-matrix entries 3-8 (6), targets - (arm q, finger-1 q)
    with the finger target in metres (8), target position (3); ``privileged`` (66): qpos (7, 2,
    cube 3 + 4), qvel (7, 2, cube 6), gripper position and rotation entries (9), cube rotation
    entries 3-8 (6), cube - gripper (3), target - cube (3), (R_target - R_cube) entries 0-5 (6),
    targets - qpos (8). The gripper point is the midpoint of the finger bodies plus 0.05 m along
    the hand z-axis.

    **Actions.** 8 delta targets: arm ctrl <- clip(ctrl + 0.04 a_1..7, joint limits); finger target
    (m) <- clip(target + 0.04 a_8, 0, 0.04), ctrl_8 = target * 255 / 0.04. No hidden override.

    **Reward terms.** reach (4 (1 - tanh(5 d))), move_to_target (8 (1 - tanh(5 (0.9 e + 0.1 e_R)))
    x reached), no_floor_contact (0.25), home_pose (0.3 (1 - tanh(|q_arm - q_home|))), grasp
    (reached x [finger1 + finger2 < 0.045]), lifted (3 x [cube bottom >= 3.5 cm]), target_coarse
    (16 (1 - tanh(e / 0.3)) x lifted), target_fine (5 (1 - tanh(e / 0.1)) x lifted), action
    (-0.01 sum a^2); d = |cube - gripper|, e = |target - cube|, reached is sticky (d < 0.02).

    **Success.** e <= 0.025 m.

    **Episode end.** Terminates when the cube leaves |x|, |y|, |z| <= 1 m (or z < 0) or a hand or
    finger geom touches the table; truncates at 300 steps (3 s).

    **Cameras.** ``wrist``: rigid in the hand at (-0.2, 0, -0.05) looking at (0, 0, 0.1), up hand
    +x, fovy 60, drawing geom groups 0-1 (table, cube, target, fingers; not the hand body right in
    front of it); ``front``: world camera at (1.3, 0.6, 0.7) looking at (0.55, 0, 0.2), fovy 45
    (also the ``render()`` view).

    **Version history.** v0: initial release.
    """

    config_cls = FrankaPickConfig
    robot = "franka_emika_panda"
    metric_names = ("cube_target_distance", "lifted", "reached")

    def build_scene(self):
        c = self.cfg
        spec = self.load_robot()
        scene.add_floor(spec, half_size=(1.0, 1.0), center=(0.4, 0.0), checker=0.25,
                        rgb1=(0.55, 0.38, 0.22), rgb2=(0.62, 0.45, 0.28))
        cube = spec.worldbody.add_body(name="cube", pos=list(c.cube_spawn))
        cube.add_freejoint(name="cube")
        mat = spec.add_material(name="vrb_cube", rgba=[0.85, 0.15, 0.1, 1.0])
        cube.add_geom(name="cube", type=mujoco.mjtGeom.mjGEOM_BOX, size=[c.cube_half] * 3, density=c.cube_density,
                      friction=[c.cube_friction, 0.005, 0.0001], condim=4, material="vrb_cube")
        del mat
        target = spec.worldbody.add_body(name="target", mocap=True, pos=[0.6, 0.0, 0.3])
        target.add_geom(name="target_marker", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[c.marker_radius, 0, 0],
                        rgba=[0.1, 0.9, 0.2, 1.0], contype=0, conaffinity=0, group=1, mass=0.0)
        # the wrist camera draws groups 0-1: table, cube, target and the fingers (moved to group 1),
        # not the hand body right in front of it (Menagerie's visual group 2)
        for name in ("left_finger", "right_finger"):
            for geom in spec.body(name).geoms:
                if geom.contype == 0 and geom.conaffinity == 0:
                    geom.group = 1
        # floor contact of the hand or fingers (a contact sensor: exact, computed with the step)
        spec.add_sensor(name="hand_floor", type=mujoco.mjtSensor.mjSENS_CONTACT,
                        objtype=mujoco.mjtObj.mjOBJ_XBODY, objname="hand",
                        reftype=mujoco.mjtObj.mjOBJ_GEOM, refname="floor", intprm=[1, 0, 1])
        self.finish_robot_scene(spec)
        return spec

    def setup(self, model):
        super().setup(model)
        self.arm_j = np.array([model.joint(f"joint{i}").id for i in range(1, 8)])
        self.arm_q = model.jnt_qposadr[self.arm_j]
        self.arm_v = model.jnt_dofadr[self.arm_j]
        self.fing_j = np.array([model.joint(n).id for n in ("finger_joint1", "finger_joint2")])
        self.fing_q = model.jnt_qposadr[self.fing_j]
        self.fing_v = model.jnt_dofadr[self.fing_j]
        self.arm_act = np.array([model.actuator(f"actuator{i}").id for i in range(1, 8)])
        self.grip_act = model.actuator("actuator8").id
        self.grip_scale = float(model.actuator_ctrlrange[self.grip_act, 1]) / self.cfg.finger_max  # 255 / 0.04
        self.arm_lo, self.arm_hi = model.jnt_range[self.arm_j].T.copy()
        jc = model.joint("cube")
        self.cube_q, self.cube_v = int(jc.qposadr[0]), int(jc.dofadr[0])
        self.cube_body = model.body("cube").id
        self.hand = model.body("hand").id
        self.fingers = np.array([model.body("left_finger").id, model.body("right_finger").id])
        self.target_mocap = int(model.body_mocapid[model.body("target").id])
        s = model.sensor("hand_floor")
        self.contact_adr = int(s.adr[0])

    def state_spec(self):
        return {**super().state_spec(), "target": ((3,), np.float64), "reached": ((1,), np.float64)}

    def initialize_episode(self, sim, state, env_ids, rngs):
        c = self.cfg
        for i, r in zip(env_ids, rngs):
            q = self.model.qpos0.copy()
            q[self.arm_q] = c.home
            q[self.fing_q] = c.finger_max
            xy = r.uniform(-c.spawn_range, c.spawn_range, 2)
            q[self.cube_q:self.cube_q + 3] = (c.cube_spawn[0] + xy[0], c.cube_spawn[1] + xy[1], c.cube_half)
            q[self.cube_q + 3:self.cube_q + 7] = (1.0, 0.0, 0.0, 0.0)
            sim.qpos[i] = q
            txy = r.uniform(-c.spawn_range, c.spawn_range, 2)
            target = (c.cube_spawn[0] + txy[0], c.cube_spawn[1] + txy[1], c.cube_spawn[2] + r.uniform(*c.target_height))
            state["target"][i] = target
            sim.mocap_pos[i, self.target_mocap] = target
            sim.mocap_quat[i, self.target_mocap] = (1.0, 0.0, 0.0, 0.0)
        sim.qvel[env_ids] = 0.0
        ctrl = np.zeros((len(env_ids), self.model.nu))
        ctrl[:, self.arm_act] = c.home
        ctrl[:, self.grip_act] = c.finger_max * self.grip_scale
        sim.ctrl[env_ids] = ctrl
        state["reached"][env_ids] = 0.0

    def apply_action(self, sim, state, action, env_ids):
        c = self.cfg
        ctrl = sim.ctrl[env_ids].copy()
        ctrl[:, self.arm_act] = np.clip(ctrl[:, self.arm_act] + c.arm_delta * action[:, :7], self.arm_lo, self.arm_hi)
        finger = np.clip(ctrl[:, self.grip_act] / self.grip_scale + c.finger_delta * action[:, 7], 0.0, c.finger_max)
        ctrl[:, self.grip_act] = finger * self.grip_scale
        sim.ctrl[env_ids] = ctrl

    # ---- quantities
    def gripper(self, sim, env_ids):
        xmat = sim.xmat[env_ids, self.hand]
        mid = sim.xpos[env_ids][:, self.fingers].mean(axis=1)
        return mid + self.cfg.grip_offset * xmat[:, [2, 5, 8]], xmat

    def quantities(self, sim, state, env_ids):
        pos, xmat = self.gripper(sim, env_ids)
        cube = sim.xpos[env_ids, self.cube_body]
        cube_R = sim.xmat[env_ids, self.cube_body]
        target = state["target"][env_ids]
        d = np.linalg.norm(cube - pos, axis=1)
        e = np.linalg.norm(target - cube, axis=1)
        eye = np.array([1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0])
        e_R = np.linalg.norm(eye[:6] - cube_R[:, :6], axis=1)
        lifted = (cube[:, 2] - self.cfg.cube_half) >= self.cfg.lift_height
        floor = sim.sensordata[env_ids, self.contact_adr] > 0
        reached = (state["reached"][env_ids, 0] > 0) | (d < self.cfg.reach_distance)
        return {"grip": pos, "grip_R": xmat, "cube": cube, "cube_R": cube_R, "target": target, "d": d, "e": e,
                "e_R": e_R, "lifted": lifted, "floor": floor, "reached": reached}

    def target_errors(self, sim, env_ids):
        ctrl = sim.ctrl[env_ids]
        q = sim.qpos[env_ids]
        arm = ctrl[:, self.arm_act] - q[:, self.arm_q]
        finger = ctrl[:, self.grip_act] / self.grip_scale - q[:, self.fing_q[0]]
        return np.concatenate([arm, finger[:, None]], axis=1)

    def observe(self, sim, state, env_ids):
        k = len(env_ids)
        x = self.quantities(sim, state, env_ids)
        q, v = sim.qpos[env_ids], sim.qvel[env_ids]
        errs = self.target_errors(sim, env_ids)
        proprio = np.concatenate([q[:, self.arm_q], q[:, self.fing_q], v[:, self.arm_v], v[:, self.fing_v],
                                  x["grip"], x["grip_R"][:, 3:9], errs, x["target"]], axis=1)
        eye = np.tile([1.0, 0, 0, 0, 1.0, 0], (k, 1))
        priv = np.concatenate([
            q[:, self.arm_q], q[:, self.fing_q], q[:, self.cube_q:self.cube_q + 7],
            v[:, self.arm_v], v[:, self.fing_v], v[:, self.cube_v:self.cube_v + 6],
            x["grip"], x["grip_R"][:, 3:9], x["cube_R"][:, 3:9], x["cube"] - x["grip"], x["target"] - x["cube"],
            eye - x["cube_R"][:, :6], errs], axis=1)
        return {"proprio": proprio, "privileged": priv}

    def reward_terms(self, sim, state, action, env_ids):
        c = self.cfg
        x = self.quantities(sim, state, env_ids)
        reached = x["reached"].astype(np.float64)
        lifted = x["lifted"].astype(np.float64)
        q = sim.qpos[env_ids]
        width = q[:, self.fing_q].sum(axis=1)
        return {
            "reach": c.w_reach * (1.0 - np.tanh(5.0 * x["d"])),
            "move_to_target": c.w_move_to_target * (1.0 - np.tanh(5.0 * (0.9 * x["e"] + 0.1 * x["e_R"]))) * reached,
            "no_floor_contact": c.w_no_floor_contact * (1.0 - x["floor"]),
            "home_pose": c.w_home_pose * (1.0 - np.tanh(np.linalg.norm(q[:, self.arm_q] - np.asarray(c.home), axis=1))),
            "grasp": c.w_grasp * reached * (width < c.grasp_width),
            "lifted": c.w_lifted * lifted,
            "target_coarse": c.w_target_coarse * (1.0 - np.tanh(x["e"] / 0.3)) * lifted,
            "target_fine": c.w_target_fine * (1.0 - np.tanh(x["e"] / 0.1)) * lifted,
            "action": c.w_action * np.sum(action**2, axis=1),
        }

    def evaluate(self, sim, state, env_ids):
        c = self.cfg
        x = self.quantities(sim, state, env_ids)
        cube = x["cube"]
        out = (np.abs(cube) > c.bounds).any(axis=1) | (cube[:, 2] < 0.0)
        failure = out | x["floor"]
        success = x["e"] <= c.success_distance
        return Evaluation(success, failure, {"cube_target_distance": x["e"], "lifted": x["lifted"].astype(np.float64),
                                             "reached": x["reached"].astype(np.float64)})

    def after_step(self, sim, state, action, env_ids):
        super().after_step(sim, state, action, env_ids)
        d = np.linalg.norm(sim.xpos[env_ids, self.cube_body] - self.gripper(sim, env_ids)[0], axis=1)
        state["reached"][env_ids, 0] = np.maximum(state["reached"][env_ids, 0], (d < self.cfg.reach_distance))
