"""More dexterous tasks: AllegroCube (in-hand reorientation) and AlohaInsertion (bimanual peg in socket).

Definitions: ``tasks.md`` sections 3.7 and 3.8. Robot models come from the model
resolver (:mod:`visual_robo_bench.models`): ``VRB_MODEL_DIR`` / ``model_dir=`` or
``robot_descriptions`` (MuJoCo Menagerie at a pinned commit). Every edit of a
source model is an absolute assignment made with ``MjSpec`` (:func:`modify_allegro`,
:func:`modify_aloha`), so applying it to an already modified copy (the offline
ones) changes no compiled field. Heavy visual meshes are decimated for the CPU
render profile by :mod:`visual_robo_bench.core.lod` with a lower quadric
aggressiveness (``lod_agg``) after vertex clustering (``lod_cell``): lod.py's
default setting collapses the Allegro links and stalls on the ALOHA meshes. The
parameters are part of each task's config.

Upstream bugs fixed (``tasks.md`` section 4): the Allegro previous action is
updated every step (2), native torsional friction instead of friction 4.0 on
the ALOHA fingers, peg and socket (17), integer episode lengths (16), a success
predicate for the hand task (22), the Allegro goal ghost inside the policy image
(24).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np

from visual_robo_bench.core import scene
from visual_robo_bench.core.config import CameraConfig
from visual_robo_bench.core.task import Evaluation
from visual_robo_bench.models import shadow_hand_dir
from visual_robo_bench.registry import register_task

from ._common import RobotTask, RobotTaskConfig
from .dexterous import CubeConfig, CubeTask


# ----------------------------------------------------------------------------------- AllegroCube

#: Wonik URDF limits (rad) per joint index within a finger (0 base, 1 proximal, 2 medial, 3 distal).
ALLEGRO_FINGER_RANGES = ((-0.5585, 0.5585), (-0.2792, 1.7278), (-0.2792, 1.7278), (-0.2792, 1.7278))
ALLEGRO_THUMB_RANGES = ((0.2792, 1.5707), (-0.3316, 1.1519), (-0.2792, 1.7278), (-0.2792, 1.7627))
#: The palm pose. (0, 1, 0, 0.7) is written as in the SDPG-modified model; MuJoCo normalises it to
#: (0, 0.81923, 0, 0.57346), the spec's (0, 0.819, 0, 0.573).
ALLEGRO_PALM_POS = (0.25, 0.0, 0.2)
ALLEGRO_PALM_QUAT = (0.0, 1.0, 0.0, 0.7)
ALLEGRO_KP = 3.0
ALLEGRO_DAMPING = 0.1
ALLEGRO_FRICTION = (0.3, 0.005, 0.0001)
ALLEGRO_HOME = (0.0, 0.58058, 0.701595, 0.538675, 0.0, 0.60767, 0.758085, 0.741625,
                0.0, 0.8876, 0.720425, 0.5848, 0.263, 0.32612, 1.08493, 0.806715)
ALLEGRO_FINGERS = ("ff", "mf", "rf", "th")
ALLEGRO_TIPS = ("ff_tip", "mf_tip", "rf_tip", "th_tip")


def allegro_joint_ranges() -> dict[str, tuple[float, float]]:
    """Joint name -> (lo, hi) of the 16 Allegro joints (the Wonik URDF limits)."""
    out = {}
    for f in ALLEGRO_FINGERS:
        ranges = ALLEGRO_THUMB_RANGES if f == "th" else ALLEGRO_FINGER_RANGES
        for k, r in enumerate(ranges):
            out[f"{f}j{k}"] = r
    return out


def modify_allegro(spec: mujoco.MjSpec) -> None:
    """The AllegroCube modifications of Menagerie ``wonik_allegro/right_hand.xml`` (tasks.md 3.7).

    Absolute assignments only, so the function is idempotent: the offline copy,
    which already carries them, compiles to the same model with or without it.
    Call it on the robot file alone (before the task adds its objects): it sets
    the friction of every geom in the spec.
    """
    palm = spec.body("palm")
    palm.pos = list(ALLEGRO_PALM_POS)
    palm.quat = list(ALLEGRO_PALM_QUAT)
    ranges = allegro_joint_ranges()
    for name, (lo, hi) in ranges.items():
        j = spec.joint(name)
        j.range = [lo, hi]
        j.limited = mujoco.mjtLimited.mjLIMITED_TRUE
        j.damping = [ALLEGRO_DAMPING, 0.0, 0.0]
        j.actfrclimited = mujoco.mjtLimited.mjLIMITED_FALSE
        j.actfrcrange = [0.0, 0.0]
    for act in spec.actuators:
        lo, hi = ranges[act.target]
        act.set_to_position(kp=ALLEGRO_KP, kv=0.0)
        act.ctrlrange = [lo, hi]
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_FALSE
        act.forcerange = [0.0, 0.0]
    for geom in spec.geoms:
        geom.friction = list(ALLEGRO_FRICTION)
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0


def block_texture_path() -> str:
    """Gymnasium-Robotics' lettered cube texture (ships with an installed dependency)."""
    return str(shadow_hand_dir().parent / "textures" / "block.png")


_ALLEGRO_GOAL = (0.25, 0.0, 0.25)


@dataclass(frozen=True)
class AllegroCubeConfig(CubeConfig):
    """VRB/AllegroCube-v0 (tasks.md 3.7)."""

    max_episode_steps: int = 333
    timestep: float = 0.005
    substeps: int = 6
    proprio_dim: int = 107
    privileged_dim: int = 124
    cameras: tuple[CameraConfig, ...] = (
        CameraConfig("fixed", pos=(0.40, 0.05, 0.425), lookat=(0.25, -0.10, 0.275), fovy=80.0),
        CameraConfig("side", pos=(0.62, 0.22, 0.50), lookat=(0.25, -0.06, 0.25), fovy=45.0),
    )
    policy_cameras: tuple[str, ...] = ("fixed",)
    render_camera: str = "side"
    goal_pos: tuple[float, float, float] = _ALLEGRO_GOAL
    ghost_offset: tuple[float, float, float] = (0.0, -0.12, 0.05)
    cube_half: float = 0.03
    cube_density: float = 600.0
    cube_friction: float = 0.3
    cube_spawn: tuple[float, float, float] = (0.25, 0.0, 0.275)
    home: tuple[float, ...] = ALLEGRO_HOME
    drop_distance: float = 0.2
    lod_ratio: float = 0.05
    lod_min_faces: int = 48
    lod_agg: int = 2
    lod_cell: float = 0.002


@register_task("VRB/AllegroCube-v0")
class AllegroCube(CubeTask):
    """Allegro hand turns a 6 cm lettered cube to a goal orientation shown as a ghost.

    **Description.** Menagerie ``wonik_allegro/right_hand.xml`` (16 position-controlled joints, no
    wrist) with the SDPG modifications applied in code as absolute values: palm at (0.25, 0, 0.2),
    quaternion (0, 0.819, 0, 0.573), joint and ctrl ranges = the Wonik URDF limits, kp 3, kv 0, no
    force limit, joint damping 0.1, geom friction 0.3, elliptic cones, impratio 10. A 6 cm cube
    (density 600, friction 0.3, Gymnasium-Robotics' lettered ``block.png``) spawns at
    (0.25, 0, 0.275) in the palm; plane at z = 0. The offline copy's visualisation-only fingertip
    sensors are dropped. The goal ghost is a translucent (alpha 0.4),
    non-colliding mocap copy of the cube at p_goal + (0, -0.12, 0.05) = (0.25, -0.12, 0.30) with the
    goal orientation. Timestep 0.005 s x 6 sub-steps (33.3 Hz). Render profile: visual meshes
    clustered on a 2 mm grid, then quadric-decimated to 5% (>= 48 faces each,
    aggressiveness 2): the policy camera draws ~2.4k mesh faces instead of ~27k.

    **Observations.** ``pixels`` 84x84x9 from ``fixed``; ``privileged`` (124): 16 scaled joint
    positions (2q - lo - hi)/(hi - lo), 0.2 x 16 joint velocities, cube position (3), quaternion
    (4), linear (3) and angular (3) velocity, p_goal = (0.25, 0, 0.25) (3), q_goal (4),
    q_cube * q_goal^-1 (4), fingertips ff, mf, rf, th (tip-body origins): positions (12),
    quaternions (16), linear (12) and angular (12) velocities, previous action a_{t-1} (16, updated
    every step). ``proprio`` (107): the same without the cube state and the rotation difference.

    **Actions.** 16 absolute joint targets, ctrl = c + a * h (centre and half-width of each joint
    range).

    **Reward terms.** position (-10 d), orientation (-theta^2), action (-0.0002 sum a^2), alive (3);
    d = |p_cube - p_goal|, theta = 2 asin(min(|vec(q_cube * q_goal^-1)|, 1)).

    **Success.** theta < 0.1 rad and d < 0.2 m (the cube is in hand).

    **Episode end.** Terminates when d > 0.2 m (dropped); truncates at 333 steps (~10 s).

    **Cameras.** ``fixed``: world camera at (0.40, 0.05, 0.425) looking at (0.25, -0.10, 0.275),
    fovy 80 (hand, cube and ghost in view); ``side``: wider view for ``render()``.

    **Version history.** v0: initial release.
    """

    config_cls = AllegroCubeConfig
    robot = "allegro_hand"
    cube_body = "object"
    cube_joint = "object:joint"
    fingertip_sites = tuple(f"vrb_{t}" for t in ALLEGRO_TIPS)

    def build_scene(self):
        c = self.cfg
        spec = self.load_robot()
        modify_allegro(spec)
        for sensor in list(spec.sensors):  # the SDPG copy's fingertip "trace" sensors (visualisation only)
            spec.delete(sensor)
        for tip in ALLEGRO_TIPS:
            spec.body(tip).add_site(name=f"vrb_{tip}", pos=[0.0, 0.0, 0.0], group=4)
        spec.add_texture(name="vrb_block", type=mujoco.mjtTexture.mjTEXTURE_CUBE, file=block_texture_path(),
                         gridsize=[3, 4], gridlayout=".U..LFRB.D..")
        mat = spec.add_material(name="vrb_cube", specular=0.3)
        mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "vrb_block"
        ghost = spec.add_material(name="vrb_goal", rgba=[1.0, 1.0, 1.0, c.ghost_alpha], specular=0.3)
        ghost.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "vrb_block"
        cube = spec.worldbody.add_body(name=self.cube_body, pos=list(c.cube_spawn))
        cube.add_freejoint(name=self.cube_joint)
        cube.add_geom(name="object", type=mujoco.mjtGeom.mjGEOM_BOX, size=[c.cube_half] * 3,
                      density=c.cube_density, friction=[c.cube_friction, 0.005, 0.0001], material="vrb_cube")
        self.add_ghost(spec, "vrb_goal")
        scene.add_floor(spec, half_size=(0.6, 0.6), center=(0.25, 0.0), checker=0.1)
        self.finish_robot_scene(spec)
        return spec

    def initialize_episode(self, sim, state, env_ids, rngs):
        """Hand at the home pose +- 0.1 range (clipped), cube at the spawn +- 1 cm, identity; targets = pose."""
        c = self.cfg
        width = self.jhi - self.jlo
        home = np.asarray(c.home)
        for i, r in zip(env_ids, rngs):
            q = self.model.qpos0.copy()
            q[self.hq] = np.clip(home + r.uniform(-1, 1, len(self.hq)) * c.joint_noise * width, self.jlo, self.jhi)
            q[self.cube_q:self.cube_q + 3] = np.asarray(c.cube_spawn) + r.uniform(-c.spawn_noise, c.spawn_noise, 3)
            q[self.cube_q + 3:self.cube_q + 7] = (1.0, 0.0, 0.0, 0.0)
            sim.qpos[i] = q
            self.set_goal(sim, state, np.array([i]), self.sample_goal(r)[None])
        sim.qvel[env_ids] = 0.0
        self.hold_targets(sim, state, env_ids, sim.qpos[env_ids][:, self.hq[self.act_joint]])

    def setup(self, model):
        super().setup(model)
        # actuator k drives hand joint self.hand_joints[self.act_joint[k]]
        pos = {int(j): k for k, j in enumerate(self.hand_joints)}
        self.act_joint = np.array([pos[int(model.actuator_trnid[k, 0])] for k in range(model.nu)])


# --------------------------------------------------------------------------------- AlohaInsertion

ALOHA_SIDES = ("left", "right")
ALOHA_ARM = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")
#: Position-actuator kp (kv 0), joint damping and force limit (the joint's actuatorfrcrange), tasks.md 3.8.
ALOHA_GAINS = {
    "waist": (43.0, 5.76, 35.0),
    "shoulder": (265.0, 20.0, 144.0),
    "elbow": (227.0, 18.49, 59.0),
    "forearm_roll": (78.0, 6.78, 22.0),
    "wrist_angle": (37.0, 6.28, 35.0),
    "wrist_rotate": (10.4, 1.2, 35.0),
    "gripper": (1200.0, 60.0, 80.0),
}
ALOHA_GRIPPER_RANGE = (0.002, 0.037)
ALOHA_FRICTION = (1.0, 0.05, 0.001)
ALOHA_CONDIM = 4
ALOHA_GRIPPER_SITE = (0.13, 0.0, -0.003)
ALOHA_HOME_LEFT = (0.0834, -0.1220, 0.9502, 0.1082, -0.8692, -0.0731)
ALOHA_HOME_RIGHT = (-0.0862, -0.1095, 0.9495, -0.1130, -0.8874, 0.0754)
ALOHA_GRIPPER_OPEN = 0.0305


def modify_aloha(spec: mujoco.MjSpec, condim: int = ALOHA_CONDIM,
                 friction: tuple[float, float, float] = ALOHA_FRICTION) -> None:
    """The AlohaInsertion modifications of Menagerie ``aloha/aloha.xml`` (tasks.md 3.8), idempotent.

    - every colliding geom of the source is removed; each arm gets a capsule on its
      ``gripper_base`` and a box pad per finger link (contype 1, conaffinity 2: no self
      collision), condim 4 with friction (1, 0.05, 0.001) (native torsional friction; no 4.0);
    - the Genesis proxy bodies ``left/gripper_site`` and ``right/gripper_site`` are removed and
      the ``<side>/gripper`` sites set to (0.13, 0, -0.003) in ``<side>/gripper_link``;
    - elliptic cones, impratio 10;
    - position actuators kp (kv 0), joint damping and joint force limits of ``ALOHA_GAINS``; arm
      ctrl ranges = the joint ranges, gripper ctrl range [0.002, 0.037] m.

    Delete-and-add of the collision geoms and absolute assignments elsewhere make it idempotent:
    applied to its own output it changes no compiled field.
    """
    for geom in list(spec.geoms):
        if geom.contype != 0 or geom.conaffinity != 0:
            spec.delete(geom)
    used = {geom.meshname for geom in spec.geoms if geom.type == mujoco.mjtGeom.mjGEOM_MESH}
    for mesh in list(spec.meshes):
        if mesh.name not in used:  # Menagerie's collision meshes, now unused
            spec.delete(mesh)
    for side in ALOHA_SIDES:
        proxy = spec.body(f"{side}/gripper_site")
        if proxy is not None:
            spec.delete(proxy)
        link = spec.body(f"{side}/gripper_link")
        site = spec.site(f"{side}/gripper")
        if site is None:
            site = link.add_site(name=f"{side}/gripper")
        site.pos = list(ALOHA_GRIPPER_SITE)
        site.group = 5
        coll = {"contype": 1, "conaffinity": 2, "condim": condim, "friction": list(friction),
                "group": 3, "rgba": [1.0, 0.0, 0.0, 0.5], "mass": 0.0}
        spec.body(f"{side}/gripper_base").add_geom(
            name=f"{side}/gripper_base", type=mujoco.mjtGeom.mjGEOM_CAPSULE,
            fromto=[0.055, 0.0, 0.015, -0.055, 0.0, 0.015], size=[0.03, 0.0, 0.0], **coll)
        for finger, y in (("left", -0.052), ("right", 0.052)):
            spec.body(f"{side}/{finger}_finger_link").add_geom(
                name=f"{side}/{finger}_finger_pad", type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[0.018, 0.028, 0.006], pos=[0.0125, y, 0.020], **coll)
        for name in ALOHA_ARM:
            kp, damping, force = ALOHA_GAINS[name]
            j = spec.joint(f"{side}/{name}")
            j.damping = [damping, 0.0, 0.0]
            j.actfrcrange = [-force, force]
            j.actfrclimited = mujoco.mjtLimited.mjLIMITED_TRUE
            a = spec.actuator(f"{side}/{name}")
            a.set_to_position(kp=kp, kv=0.0)
            a.ctrlrange = list(j.range)
            a.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
            a.forcelimited = mujoco.mjtLimited.mjLIMITED_FALSE
            a.forcerange = [0.0, 0.0]
        kp, damping, force = ALOHA_GAINS["gripper"]
        for finger in ("left_finger", "right_finger"):
            j = spec.joint(f"{side}/{finger}")
            j.damping = [damping, 0.0, 0.0]
            j.actfrcrange = [-force, force]
            j.actfrclimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a = spec.actuator(f"{side}/gripper")
        a.set_to_position(kp=kp, kv=0.0)
        a.ctrlrange = list(ALOHA_GRIPPER_RANGE)
        a.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.forcelimited = mujoco.mjtLimited.mjLIMITED_FALSE
        a.forcerange = [0.0, 0.0]
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0


def camera_from_quat(name: str, pos, quat, fovy: float, body: str | None = None,
                     geomgroups: tuple[int, ...] = (0, 1, 2)) -> CameraConfig:
    """A :class:`CameraConfig` for a MuJoCo camera pose given as position and quaternion.

    The values enter the task's config and so its hash: they are computed the same on every machine. The
    quaternion's norm is a correctly rounded sum (``math.fsum``), not ``np.linalg.norm``, whose BLAS kernel
    differs between CPUs (it moved AlohaInsertion-v0's hash on an Intel machine by one bit of one value).
    """
    norm = math.sqrt(math.fsum(float(x) * float(x) for x in quat))
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, np.array([float(x) / norm for x in quat]))
    R = R.reshape(3, 3)
    lookat = np.asarray(pos, float) - R[:, 2] * 0.1  # MuJoCo cameras look along their -z axis
    return CameraConfig(name, pos=tuple(float(x) for x in pos), lookat=tuple(float(x) for x in lookat),
                        up=tuple(float(x) for x in R[:, 1]), body=body, mode="fixed", fovy=fovy,
                        geomgroups=geomgroups)


def tolerance(x: np.ndarray, bounds: tuple[float, float], margin: float, sigmoid: str,
              value_at_margin: float = 0.1) -> np.ndarray:
    """``dm_control.utils.rewards.tolerance`` for the ``linear`` and ``gaussian`` sigmoids (vectorised)."""
    lo, hi = bounds
    x = np.asarray(x, np.float64)
    inside = (x >= lo) & (x <= hi)
    if margin <= 0:
        return inside.astype(np.float64)
    d = np.where(x < lo, lo - x, x - hi) / margin
    if sigmoid == "linear":
        scaled = d * (1.0 - value_at_margin)
        out = np.where(np.abs(scaled) < 1.0, 1.0 - scaled, 0.0)
    elif sigmoid == "gaussian":
        scale = np.sqrt(-2.0 * np.log(value_at_margin))
        out = np.exp(-0.5 * (d * scale) ** 2)
    else:
        raise ValueError(f"unknown sigmoid {sigmoid!r}")
    return np.where(inside, 1.0, out)


_WRIST_POS = (0.0, -0.0824748, -0.0095955)
_WRIST_QUAT = (0.21644, 0.976296, 0.0, 0.0)


@dataclass(frozen=True)
class AlohaInsertionConfig(RobotTaskConfig):
    """VRB/AlohaInsertion-v0 (tasks.md 3.8)."""

    max_episode_steps: int = 250
    timestep: float = 0.0025
    substeps: int = 4
    image_size: tuple[int, int] = (64, 64)
    frame_stack: int = 1
    proprio_dim: int = 52
    privileged_dim: int = 90
    cameras: tuple[CameraConfig, ...] = (
        camera_from_quat("table", (0.0, -0.377167, 0.0316055), (0.672659, 0.739953, 0.0, 0.0), 80.0),
        camera_from_quat("wrist_left", _WRIST_POS, _WRIST_QUAT, 60.0, body="left/gripper_base"),
        camera_from_quat("wrist_right", _WRIST_POS, _WRIST_QUAT, 60.0, body="right/gripper_base"),
        CameraConfig("overview", pos=(0.0, -0.95, 0.62), lookat=(0.0, 0.0, 0.05), fovy=50.0),
    )
    policy_cameras: tuple[str, ...] = ("table", "wrist_left", "wrist_right")
    render_camera: str = "overview"
    lod_ratio: float = 0.01
    lod_min_faces: int = 48
    lod_agg: int = 2
    lod_cell: float = 0.006
    table_size: tuple[float, float, float] = (0.61, 0.37, 0.1)
    table_top: float = 0.0008
    home_left: tuple[float, ...] = ALOHA_HOME_LEFT
    home_right: tuple[float, ...] = ALOHA_HOME_RIGHT
    gripper_open: float = ALOHA_GRIPPER_OPEN
    delta: float = 0.02
    friction: tuple[float, float, float] = ALOHA_FRICTION
    condim: int = ALOHA_CONDIM
    peg_half: tuple[float, float, float] = (0.048, 0.015, 0.015)
    peg_mass: float = 0.1
    socket_length: float = 0.096
    socket_bore: float = 0.036
    socket_wall: float = 0.002
    socket_back: float = 0.008
    socket_wall_mass: float = 0.016
    socket_back_mass: float = 0.006
    peg_spawn: tuple[float, float, float] = (0.136459, 0.0, 0.0157945)
    socket_spawn: tuple[float, float, float] = (-0.146984, 0.0, 0.0227945)
    spawn_range: float = 0.1
    socket_goal: tuple[float, float, float] = (-0.05, 0.0, 0.15)
    peg_goal: tuple[float, float, float] = (0.05, 0.0, 0.15)
    axis_tolerance: float = 0.005
    success_depth: float = 0.02
    bounds: float = 1.0
    w_left_reward: float = 1.0
    w_right_reward: float = 1.0
    w_left_target_qpos: float = 0.3
    w_right_target_qpos: float = 0.3
    w_no_table_collision: float = 0.3
    w_socket_entrance_reward: float = 4.0
    w_peg_end2_reward: float = 4.0
    w_socket_z_up: float = 0.5
    w_peg_z_up: float = 0.5
    w_peg_insertion_reward: float = 8.0


@register_task("VRB/AlohaInsertion-v0")
class AlohaInsertion(RobotTask):
    """ALOHA 2 bimanual peg-in-socket: one arm lifts the socket, the other inserts the peg.

    **Description.** Menagerie ``aloha/aloha.xml`` (two ViperX 300s, 6 arm joints + a parallel
    gripper each; the right finger mirrors the left through an equality), modified in code
    (:func:`modify_aloha`): the source's collision geoms are replaced by a capsule on each
    ``gripper_base`` and a box pad per finger (no self collision), condim 4 with friction
    (1, 0.05, 0.001) (MuJoCo's native torsional friction), elliptic cones, impratio 10, the
    ``<side>/gripper`` sites at (0.13, 0, -0.003) in ``gripper_link``, and the gains below. VRB
    builds the table (a collision box 1.22 x 0.74 x 0.2 m with its top at z = 0.0008, plus the
    ``tabletop.obj``/``tablelegs.obj`` visuals), a red 9.6 x 3 x 3 cm peg (0.1 kg) and a blue
    9.6 cm square tube with a 3.6 cm bore, walls of half-thickness 2 mm (Playground's socket) and a
    red 8 mm back wall at -x (0.07 kg); both condim 4, same friction. Sites: ``peg_end1``/``peg_end2`` at +-4.8 cm on the
    peg's x-axis, ``socket_rear`` at the tube centre, ``socket_entrance`` at +4.8 cm. Timestep
    0.0025 s x 4 sub-steps (100 Hz). Render profile: visual meshes clustered on a 6 mm grid, then
    quadric-decimated to 1% (>= 48 faces, aggressiveness 2): ~331k -> ~7.7k mesh faces per image.

    **Observations.** ``pixels`` 64x64x3 (table camera), ``pixels_wrist_left`` and
    ``pixels_wrist_right`` 64x64x3, one frame each. Joint order everywhere: left arm (6), right
    arm (6), the two actuated fingers (left, right arm), the two mirrored fingers. ``proprio`` (52):
    joint positions (16), joint velocities (16), ctrl (14, actuator order), gripper-site positions
    left, right (6). ``privileged`` (90): joint positions (16), peg position and quaternion (7),
    socket position and quaternion (7), joint velocities (16), peg free-joint velocity (6), socket
    free-joint velocity (6), ctrl (14), gripper sites (6), socket entrance (3), peg end 2 (3),
    world z-axis in the socket frame (3) and in the peg frame (3).

    **Actions.** 14 delta targets (per arm: 6 joints + gripper): ctrl <- clip(ctrl + 0.02 a, lo, hi),
    bounds the arm joint limits and [0.002, 0.037] m for the grippers. kp / joint damping / force
    limit: waist 43 / 5.76 / 35, shoulder 265 / 20 / 144, elbow 227 / 18.49 / 59, forearm_roll
    78 / 6.78 / 22, wrist_angle 37 / 6.28 / 35, wrist_rotate 10.4 / 1.2 / 35, gripper 1200 / 60 / 80;
    kv 0.

    **Reward terms.** tol = dm_control's tolerance (0.1 at the margin). left_reward
    (tol(|p_socket - p_leftgrip|, [0, 0.001], 0.3, linear)), right_reward (the same for the peg and
    the right gripper), left_target_qpos / right_target_qpos (0.3 tol(|q_arm - q0_arm|, [0, 0.01],
    2, gaussian) x left_reward x right_reward), no_table_collision (0.3 (1 - [a finger touches the
    table])), socket_entrance_reward (lift_s = 4 tol(|(-0.05, 0, 0.15) - p_socket|, [0, 0.01], 0.15,
    linear)), peg_end2_reward (lift_p, the same for the peg and (0.05, 0, 0.15)), socket_z_up /
    peg_z_up (0.5 tol(z-axis . world z, [0.99, 1], 0.03, linear) x the unweighted lift term),
    peg_insertion_reward (8 tol(|p_pegend2 - p_socketrear|, [0, 0.001], 0.1, linear) x [peg end 2
    within 5 mm of the socket axis]). Maximum 19.9 per step.

    **Success.** Peg end 2 lies within 5 mm of the socket axis and inside the tube at least 2 cm
    past the entrance: axial coordinate in the socket frame in [-0.048, +0.028] m.

    **Episode end.** Terminates when a coordinate of the peg or socket position exceeds 1 m in
    magnitude; truncates at 250 steps (2.5 s).

    **Cameras.** ``table``: at Menagerie's ``worms_eye_cam`` pose, (0, -0.377, 0.032), looking along
    +y slightly upward, fovy 80; ``wrist_left`` / ``wrist_right``: rigid in ``<side>/gripper_base``
    at Menagerie's ``wrist_cam_<side>`` pose, fovy 60; ``overview``: a view of the whole table for
    ``render()``.

    **Version history.** v0: initial release.
    """

    config_cls = AlohaInsertionConfig
    robot = "aloha"
    metric_names = ("peg_axis_distance", "peg_depth", "peg_socket_distance")

    # ---- scene
    def build_scene(self):
        c = self.cfg
        path = self.model_path()
        spec = mujoco.MjSpec.from_file(str(path))
        for light in list(spec.lights):
            spec.delete(light)
        for cam in list(spec.cameras):
            spec.delete(cam)
        for key in list(spec.keys):
            spec.delete(key)
        modify_aloha(spec, c.condim, c.friction)
        assets = path.parent / "assets"
        # table: collision box (top at z = table_top) + the tabletop/legs visual meshes
        spec.add_texture(name="vrb_table", type=mujoco.mjtTexture.mjTEXTURE_2D,
                         file=str(assets / "small_meta_table_diffuse.png"))
        mat = spec.add_material(name="vrb_table")
        mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "vrb_table"
        for name in ("tabletop", "tablelegs"):
            spec.add_mesh(name=f"vrb_{name}", file=str(assets / f"{name}.obj"))
            spec.worldbody.add_geom(name=f"vrb_{name}", type=mujoco.mjtGeom.mjGEOM_MESH, meshname=f"vrb_{name}",
                                    material="vrb_table", pos=[0, 0, -0.75], quat=[1, 0, 0, 1],
                                    contype=0, conaffinity=0, group=2, mass=0.0)
        sx, sy, sz = c.table_size
        spec.worldbody.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[sx, sy, sz],
                                pos=[0, 0, c.table_top - sz], contype=1, conaffinity=1, condim=3,
                                friction=list(c.friction), group=3, rgba=[0.5, 0.5, 0.5, 1])
        obj = {"contype": 1, "conaffinity": 1, "condim": c.condim, "friction": list(c.friction)}
        # peg
        peg = spec.worldbody.add_body(name="peg", pos=list(c.peg_spawn))
        peg.add_freejoint(name="peg")
        peg.add_geom(name="peg", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(c.peg_half), mass=c.peg_mass,
                     rgba=[0.9, 0.1, 0.1, 1.0], **obj)
        peg.add_site(name="peg_end1", pos=[c.peg_half[0], 0, 0], group=4)
        peg.add_site(name="peg_end2", pos=[-c.peg_half[0], 0, 0], group=4)
        # socket: a square tube along x with a back wall at -x
        sock = spec.worldbody.add_body(name="socket", pos=list(c.socket_spawn))
        sock.add_freejoint(name="socket")
        L, b, w = c.socket_length / 2, c.socket_bore / 2, c.socket_wall
        blue, red = [0.22, 0.34, 0.85, 1.0], [0.9, 0.1, 0.1, 1.0]
        walls = (("bottom", [L, b + 2 * w, w], [0, 0, -(b + w)]), ("top", [L, b + 2 * w, w], [0, 0, b + w]),
                 ("left", [L, w, b], [0, -(b + w), 0]), ("right", [L, w, b], [0, b + w, 0]))
        for name, size, pos in walls:
            sock.add_geom(name=f"socket_{name}", type=mujoco.mjtGeom.mjGEOM_BOX, size=size, pos=pos,
                          mass=c.socket_wall_mass, rgba=blue, **obj)
        h = c.socket_back / 2
        sock.add_geom(name="socket_back", type=mujoco.mjtGeom.mjGEOM_BOX, size=[h, b, b], pos=[-L + h, 0, 0],
                      mass=c.socket_back_mass, rgba=red, **obj)
        sock.add_site(name="socket_rear", pos=[0, 0, 0], group=4)
        sock.add_site(name="socket_entrance", pos=[L, 0, 0], group=4)
        # finger-table contact (a contact sensor per finger link: exact, computed with the step)
        for side in ALOHA_SIDES:
            for finger in ("left", "right"):
                spec.add_sensor(name=f"{side}/{finger}_finger_table", type=mujoco.mjtSensor.mjSENS_CONTACT,
                                objtype=mujoco.mjtObj.mjOBJ_XBODY, objname=f"{side}/{finger}_finger_link",
                                reftype=mujoco.mjtObj.mjOBJ_GEOM, refname="table", intprm=[1, 0, 1])
        self.finish_robot_scene(spec)
        return spec

    def setup(self, model):
        super().setup(model)
        c = self.cfg
        arm = [f"{s}/{j}" for s in ALOHA_SIDES for j in ALOHA_ARM]
        names = arm + ["left/left_finger", "right/left_finger", "left/right_finger", "right/right_finger"]
        joints = np.array([model.joint(n).id for n in names])
        self.jq, self.jv = model.jnt_qposadr[joints], model.jnt_dofadr[joints]
        self.arm_q = {s: model.jnt_qposadr[[model.joint(f"{s}/{j}").id for j in ALOHA_ARM]] for s in ALOHA_SIDES}
        self.fingers_q = model.jnt_qposadr[[model.joint(f"{s}/{f}").id for s in ALOHA_SIDES
                                            for f in ("left_finger", "right_finger")]]
        acts = [f"{s}/{j}" for s in ALOHA_SIDES for j in (*ALOHA_ARM, "gripper")]
        assert [model.actuator(k).name for k in range(model.nu)] == acts, "unexpected actuator order"
        self.ctrl_lo, self.ctrl_hi = model.actuator_ctrlrange.T.copy()
        self.home_ctrl = np.array([*c.home_left, c.gripper_open, *c.home_right, c.gripper_open])
        self.grip_sites = np.array([model.site(f"{s}/gripper").id for s in ALOHA_SIDES])
        jp, js = model.joint("peg"), model.joint("socket")
        self.peg_q, self.peg_v = int(jp.qposadr[0]), int(jp.dofadr[0])
        self.sock_q, self.sock_v = int(js.qposadr[0]), int(js.dofadr[0])
        self.peg_body, self.sock_body = model.body("peg").id, model.body("socket").id
        self.peg_end2 = model.site("peg_end2").id
        self.sock_rear, self.sock_entrance = model.site("socket_rear").id, model.site("socket_entrance").id
        self.contact_adr = np.array([int(model.sensor(f"{s}/{f}_finger_table").adr[0])
                                     for s in ALOHA_SIDES for f in ("left", "right")])

    # ---- episode
    def initialize_episode(self, sim, state, env_ids, rngs):
        c = self.cfg
        for i, r in zip(env_ids, rngs):
            q = self.model.qpos0.copy()
            q[self.arm_q["left"]] = c.home_left
            q[self.arm_q["right"]] = c.home_right
            q[self.fingers_q] = c.gripper_open
            dp = r.uniform(-c.spawn_range, c.spawn_range, 2)
            ds = r.uniform(-c.spawn_range, c.spawn_range, 2)
            q[self.peg_q:self.peg_q + 7] = (c.peg_spawn[0] + dp[0], c.peg_spawn[1] + dp[1], c.peg_spawn[2], 1, 0, 0, 0)
            q[self.sock_q:self.sock_q + 7] = (c.socket_spawn[0] + ds[0], c.socket_spawn[1] + ds[1], c.socket_spawn[2],
                                              1, 0, 0, 0)
            sim.qpos[i] = q
        sim.qvel[env_ids] = 0.0
        sim.ctrl[env_ids] = self.home_ctrl

    def apply_action(self, sim, state, action, env_ids):
        sim.ctrl[env_ids] = np.clip(sim.ctrl[env_ids] + self.cfg.delta * action, self.ctrl_lo, self.ctrl_hi)

    # ---- quantities
    def quantities(self, sim, env_ids):
        xmat = sim.xmat[env_ids]
        sock_R = xmat[:, self.sock_body].reshape(-1, 3, 3)
        peg_R = xmat[:, self.peg_body].reshape(-1, 3, 3)
        sites = sim.site_xpos[env_ids]
        rear, entrance, end2 = sites[:, self.sock_rear], sites[:, self.sock_entrance], sites[:, self.peg_end2]
        local = np.einsum("kji,kj->ki", sock_R, end2 - rear)  # peg end 2 in the socket frame
        return {
            "peg": sim.xpos[env_ids, self.peg_body], "socket": sim.xpos[env_ids, self.sock_body],
            "grips": sites[:, self.grip_sites], "rear": rear, "entrance": entrance, "end2": end2,
            "sock_z": sock_R[:, 2, :], "peg_z": peg_R[:, 2, :],  # world z in the body frames (rows of R)
            "axial": local[:, 0], "radial": np.linalg.norm(local[:, 1:], axis=1),
        }

    def observe(self, sim, state, env_ids):
        x = self.quantities(sim, env_ids)
        q, v, ctrl = sim.qpos[env_ids], sim.qvel[env_ids], sim.ctrl[env_ids]
        grips = x["grips"].reshape(len(env_ids), 6)
        proprio = np.concatenate([q[:, self.jq], v[:, self.jv], ctrl, grips], axis=1)
        priv = np.concatenate([
            q[:, self.jq], q[:, self.peg_q:self.peg_q + 7], q[:, self.sock_q:self.sock_q + 7],
            v[:, self.jv], v[:, self.peg_v:self.peg_v + 6], v[:, self.sock_v:self.sock_v + 6],
            ctrl, grips, x["entrance"], x["end2"], x["sock_z"], x["peg_z"]], axis=1)
        return {"proprio": proprio, "privileged": priv}

    def reward_terms(self, sim, state, action, env_ids):
        c = self.cfg
        x = self.quantities(sim, env_ids)
        q = sim.qpos[env_ids]
        left = tolerance(np.linalg.norm(x["socket"] - x["grips"][:, 0], axis=1), (0, 0.001), 0.3, "linear")
        right = tolerance(np.linalg.norm(x["peg"] - x["grips"][:, 1], axis=1), (0, 0.001), 0.3, "linear")
        qpos = {s: tolerance(np.linalg.norm(q[:, self.arm_q[s]] - np.asarray(h), axis=1), (0, 0.01), 2.0, "gaussian")
                for s, h in (("left", c.home_left), ("right", c.home_right))}
        touch = (sim.sensordata[env_ids][:, self.contact_adr] > 0).any(axis=1)
        lift_s = tolerance(np.linalg.norm(np.asarray(c.socket_goal) - x["socket"], axis=1), (0, 0.01), 0.15, "linear")
        lift_p = tolerance(np.linalg.norm(np.asarray(c.peg_goal) - x["peg"], axis=1), (0, 0.01), 0.15, "linear")
        sock_up = tolerance(x["sock_z"][:, 2], (0.99, 1.0), 0.03, "linear")
        peg_up = tolerance(x["peg_z"][:, 2], (0.99, 1.0), 0.03, "linear")
        on_axis = x["radial"] <= c.axis_tolerance
        insert = tolerance(np.linalg.norm(x["end2"] - x["rear"], axis=1), (0, 0.001), 0.1, "linear") * on_axis
        return {
            "left_reward": c.w_left_reward * left,
            "right_reward": c.w_right_reward * right,
            "left_target_qpos": c.w_left_target_qpos * qpos["left"] * left * right,
            "right_target_qpos": c.w_right_target_qpos * qpos["right"] * left * right,
            "no_table_collision": c.w_no_table_collision * (1.0 - touch),
            "socket_entrance_reward": c.w_socket_entrance_reward * lift_s,
            "peg_end2_reward": c.w_peg_end2_reward * lift_p,
            "socket_z_up": c.w_socket_z_up * sock_up * lift_s,
            "peg_z_up": c.w_peg_z_up * peg_up * lift_p,
            "peg_insertion_reward": c.w_peg_insertion_reward * insert,
        }

    def evaluate(self, sim, state, env_ids):
        c = self.cfg
        x = self.quantities(sim, env_ids)
        half = c.socket_length / 2
        success = (x["radial"] <= c.axis_tolerance) & (x["axial"] <= half - c.success_depth) & (x["axial"] >= -half)
        failure = (np.abs(x["peg"]) > c.bounds).any(axis=1) | (np.abs(x["socket"]) > c.bounds).any(axis=1)
        return Evaluation(success, failure, {"peg_axis_distance": x["radial"], "peg_depth": half - x["axial"],
                                             "peg_socket_distance": np.linalg.norm(x["end2"] - x["rear"], axis=1)})
