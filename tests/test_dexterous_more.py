"""Task-specific rules of AllegroCube and AlohaInsertion (tasks.md 3.7, 3.8).

Robot models come from the offline copies (``VRB_MODEL_DIR``, set in conftest);
a test that needs a missing model is skipped, never downloads.
"""

from __future__ import annotations

import math

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import visual_robo_bench  # noqa: F401
import visual_robo_bench.tasks.dexterous_more as dm  # registers the tasks even before tasks/__init__ lists them
from visual_robo_bench.core import lod
from visual_robo_bench.models import resolve_model
from visual_robo_bench.tasks.dexterous import axis_angle_quat, quat_mul, rotation_angle
from vrb_helpers import box_corners, hold, make, needs_model, project, settle


def compiled_fields_equal(m0: mujoco.MjModel, m1: mujoco.MjModel) -> list[str]:
    """Names of the numeric ``MjModel`` fields (and options) that differ between two models."""
    differ = []
    for name in dir(m0):
        if name.startswith("_"):
            continue
        a = getattr(m0, name, None)
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiub":
            continue
        b = getattr(m1, name)
        if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
            differ.append(name)
    for name in ("timestep", "impratio", "cone", "integrator", "noslip_iterations", "iterations"):
        if getattr(m0.opt, name) != getattr(m1.opt, name):
            differ.append(f"opt.{name}")
    return differ


# ----------------------------------------------------------------------------------- AllegroCube

ALLEGRO = "VRB/AllegroCube-v0"
needs_allegro = needs_model("allegro_hand", "Allegro model unavailable offline")


@needs_allegro
def test_allegro_modifications_are_idempotent_absolute_assignments():
    path = str(resolve_model("allegro_hand"))
    m0 = mujoco.MjModel.from_xml_path(path)  # the offline copy already carries the modifications
    spec = mujoco.MjSpec.from_file(path)
    dm.modify_allegro(spec)
    m1 = spec.compile()
    assert compiled_fields_equal(m0, m1) == []
    dm.modify_allegro(spec)  # twice: still the same
    assert compiled_fields_equal(m0, spec.compile()) == []
    # the assignments are absolute: a model with other values is brought to the same compiled model
    spec = mujoco.MjSpec.from_file(path)
    spec.body("palm").pos = [0.0, 0.1, 0.3]
    spec.body("palm").quat = [1.0, 0.0, 0.0, 0.0]
    for j in spec.joints:
        j.range = [-0.1, 0.1]
        j.damping = [2.0, 0.0, 0.0]
    for a in spec.actuators:
        a.set_to_position(kp=1.0, kv=0.2)
        a.ctrlrange = [-0.1, 0.1]
        a.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        a.forcerange = [-0.5, 0.5]
    for g in spec.geoms:
        g.friction = [1.0, 0.02, 0.001]
    spec.option.cone = mujoco.mjtCone.mjCONE_PYRAMIDAL
    spec.option.impratio = 1.0
    assert compiled_fields_equal(m0, spec.compile())  # really perturbed
    dm.modify_allegro(spec)
    assert compiled_fields_equal(m0, spec.compile()) == []


@needs_allegro
def test_allegro_model_matches_the_spec():
    env = make(ALLEGRO, obs_mode="state")
    venv = env.unwrapped
    m = venv.model
    assert env.single_action_space.shape == (16,) and m.nu == 16
    assert m.opt.timestep == 0.005 and venv.cfg.substeps == 6 and venv.cfg.max_episode_steps == 333
    assert gym.spec(ALLEGRO).max_episode_steps == 333
    assert m.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC and m.opt.impratio == 10.0
    palm = m.body("palm").id
    np.testing.assert_allclose(m.body_pos[palm], [0.25, 0, 0.2])
    np.testing.assert_allclose(m.body_quat[palm], [0, 0.819, 0, 0.573], atol=1e-3)
    ranges = dm.allegro_joint_ranges()
    for k in range(m.nu):
        j = m.actuator_trnid[k, 0]
        name = m.joint(j).name
        np.testing.assert_array_equal(m.jnt_range[j], ranges[name])
        np.testing.assert_array_equal(m.actuator_ctrlrange[k], ranges[name])
        assert m.dof_damping[m.jnt_dofadr[j]] == 0.1
    assert (m.actuator_gainprm[:, 0] == 3.0).all() and (m.actuator_biasprm[:, 1] == -3.0).all()
    assert (m.actuator_biasprm[:, 2] == 0.0).all() and not m.actuator_forcelimited.any()
    hand = [g for g in range(m.ngeom) if m.body_rootid[m.geom_bodyid[g]] == palm]
    assert len(hand) > 30 and (m.geom_friction[hand, 0] == 0.3).all()
    cube = m.geom("object").id
    assert m.geom_size[cube].tolist() == [0.03] * 3 and m.geom_friction[cube, 0] == 0.3
    assert m.body_mass[m.body("object").id] == pytest.approx(0.06**3 * 600)
    ghost = m.geom("goal_ghost").id
    assert m.geom_contype[ghost] == 0 and m.geom_conaffinity[ghost] == 0 and m.nmocap == 1
    assert m.mat_rgba[m.geom_matid[ghost]][3] == pytest.approx(0.4)
    assert m.nq == 16 + 7  # the ghost adds no state
    assert m.nsensor == 0  # the SDPG copy's visualisation-only trace sensors are dropped
    # CPU render profile: the policy camera draws a decimated hand (Allegro draws ~27k faces per frame)
    drawn = lod.drawn_faces(m, venv.cfg.camera("fixed").geomgroups)
    assert venv.task.lod_stats.faces_before > 20000 and drawn <= 3000, drawn
    env.close()


@needs_allegro
def test_allegro_decimated_hand_looks_like_the_original():
    """The decimated meshes keep the hand's shape: the policy image barely changes.

    (Quadric aggressiveness 7, lod.py's default, collapses the finger links: ~4.5% of the
    pixels change against ~0.8% with the task's setting.)
    """
    images = {}
    for name, kw in (("original", {"lod_ratio": 1.0}), ("task", {})):
        env = make(ALLEGRO, n=2, **kw)
        obs, _ = env.reset(seed=0)
        images[name] = obs["pixels"][..., -3:].astype(int)
        env.close()
    changed = (np.abs(images["task"] - images["original"]).sum(-1) > 60).mean()
    assert changed < 0.02, changed
    # and the decimated copies keep their volume
    path = str(resolve_model("allegro_hand"))
    m = mujoco.MjModel.from_xml_path(path)
    cfg = visual_robo_bench.get_task(ALLEGRO).config
    for k in lod.visual_only_meshes(m):
        v, f = lod._mesh_in_source_frame(m, k)
        nv, nf = lod.decimate(v, f, lod.target_faces(len(f), cfg.lod_ratio, cfg.lod_min_faces), cfg.lod_agg,
                              cfg.lod_cell)
        assert len(nf) < len(f)
        assert _volume(nv, nf) == pytest.approx(_volume(v, f), rel=0.1), m.mesh(k).name


def _volume(v, f):
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6


@needs_allegro
def test_allegro_reset_distribution_and_goal():
    n = 8
    env = make(ALLEGRO, n=n, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=0)
    t = venv.task
    q = venv.sim.qpos[:, t.hq]
    home = np.asarray(dm.ALLEGRO_HOME)
    width = t.jhi - t.jlo
    assert (np.abs(q - home) <= 0.1 * width + 1e-12).all()
    assert (q >= t.jlo).all() and (q <= t.jhi).all()
    assert np.ptp(q, axis=0).min() > 0  # randomised per env
    pos, quat = t.cube_pose(venv.sim, np.arange(n))
    assert (np.abs(pos - np.array([0.25, 0.0, 0.275])) <= 0.01 + 1e-12).all()
    np.testing.assert_array_equal(quat, np.tile([1.0, 0, 0, 0], (n, 1)))
    goals = venv.state["goal_quat"]
    angles = rotation_angle(goals)
    assert (angles >= math.radians(60) - 1e-9).all() and (angles <= math.radians(90) + 1e-9).all()
    assert (np.abs(goals[:, 3]) < 1e-12).all()  # about world x or y
    assert len({tuple(np.round(g, 6)) for g in goals}) == n
    np.testing.assert_allclose(venv.sim.mocap_quat[:, 0], goals)
    np.testing.assert_allclose(venv.sim.mocap_pos[:, 0], np.tile([0.25, -0.12, 0.30], (n, 1)))
    # actuator targets = the pose; previous action = the normalised pose
    np.testing.assert_array_equal(venv.sim.ctrl, q)
    lo, hi = venv.model.actuator_ctrlrange.T
    np.testing.assert_allclose(venv.state["prev_action"], (q - (lo + hi) / 2) / ((hi - lo) / 2), rtol=1e-6)
    env.close()


@needs_allegro
def test_allegro_cube_rests_in_the_palm():
    env = make(ALLEGRO, n=4, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=3)
    _, info = settle(venv, env, steps=40)
    d = info["metrics"]["position_error"]
    assert (d < 0.03).all(), d  # held near p_goal = (0.25, 0, 0.25), not dropped
    assert not info["physics_error"].any()
    env.close()


@needs_allegro
def test_allegro_success_when_goal_is_reached_and_not_otherwise():
    env = make(ALLEGRO, n=2, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=1)
    settle(venv, env)
    ids = np.arange(2)
    _, quat = venv.task.cube_pose(venv.sim, ids)
    # env 0: the goal is the cube's current orientation (solved); env 1: 80 degrees away (failed)
    goals = np.stack([quat[0], quat_mul(axis_angle_quat([1, 0, 0], math.radians(80)), quat[1])])
    venv.task.set_goal(venv.sim, venv.state, ids, goals)
    venv.sim.forward(ids)
    obs, r, te, tr, info = env.step(hold(venv))
    theta = info["metrics"]["orientation_error"]
    assert theta[0] < 0.1 and theta[1] > 1.2
    assert info["success"].tolist() == [True, False] and not te.any()
    assert r[0] > r[1]
    np.testing.assert_allclose(info["reward_terms"]["orientation"], -theta**2)
    env.close()


@needs_allegro
def test_allegro_dropped_cube_terminates_and_is_no_success():
    env = make(ALLEGRO, n=2, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=2)
    t = venv.task
    # env 1: the cube lies on the floor beside the hand, with the goal orientation: dropped, not a success
    venv.sim.qpos[1, t.cube_q:t.cube_q + 7] = (0.25, 0.3, 0.03, *venv.state["goal_quat"][1])
    venv.sim.forward(np.array([1]))
    obs, r, te, tr, info = env.step(hold(venv))
    assert te.tolist() == [False, True]
    assert info["metrics"]["orientation_error"][1] < 0.1
    assert not info["success"][1] and info["metrics"]["dropped"].tolist() == [0.0, 1.0]
    env.close()


@needs_allegro
def test_allegro_previous_action_is_observed_and_updated():
    env = make(ALLEGRO, privileged=True, obs_mode="state")
    obs, _ = env.reset(seed=0)
    venv = env.unwrapped
    np.testing.assert_allclose(obs["privileged"][0, -16:], venv.state["prev_action"][0])  # normalised pose
    a1 = np.full((1, 16), 0.3, np.float32)
    a2 = np.linspace(-0.5, 0.5, 16, dtype=np.float32)[None]
    obs, *_ = env.step(a1)
    np.testing.assert_allclose(obs["privileged"][0, -16:], a1[0])
    obs, *_ = env.step(a2)
    np.testing.assert_allclose(obs["privileged"][0, -16:], a2[0])
    np.testing.assert_allclose(venv.state["prev_action2"][0], a1[0])
    env.close()
    env = make(ALLEGRO)
    env.reset(seed=0)
    obs, *_ = env.step(a1)
    np.testing.assert_allclose(obs["proprio"][0, -16:], a1[0])
    obs, *_ = env.step(a2)
    np.testing.assert_allclose(obs["proprio"][0, -16:], a2[0])
    env.close()


@needs_allegro
def test_allegro_observation_layout():
    env = make(ALLEGRO, privileged=True)
    obs, _ = env.reset(seed=4)
    venv, t = env.unwrapped, env.unwrapped.task
    p, pr = obs["proprio"][0], obs["privileged"][0]
    assert p.shape == (107,) and pr.shape == (124,)
    np.testing.assert_array_equal(p[:32], pr[:32])  # joints
    np.testing.assert_allclose(pr[32:39], venv.sim.qpos[0, t.cube_q:t.cube_q + 7], rtol=1e-6)  # cube pose
    np.testing.assert_allclose(p[32:35], [0.25, 0, 0.25], rtol=1e-6)  # p_goal
    np.testing.assert_allclose(p[35:39], venv.state["goal_quat"][0], rtol=1e-6)  # q_goal
    np.testing.assert_array_equal(p[32:39], pr[45:52])
    np.testing.assert_array_equal(p[39:], pr[56:])  # fingertips and previous action
    tips = venv.sim.site_xpos[0][t.tips].ravel()
    np.testing.assert_allclose(p[39:51], tips, rtol=1e-6)
    env.close()


@needs_allegro
def test_allegro_camera_sees_cube_and_ghost_and_goal_changes_pixels():
    env = make(ALLEGRO, n=2)
    venv = env.unwrapped
    obs, _ = env.reset(seed=[0, 0])  # two identical envs
    t = venv.task
    ids = np.arange(2)
    pos, quat = t.cube_pose(venv.sim, ids)
    cube = project(venv, "fixed", box_corners(pos[0], quat[0], 0.03))
    ghost = project(venv, "fixed", box_corners(venv.sim.mocap_pos[0, 0], venv.sim.mocap_quat[0, 0], 0.03))
    assert (ghost >= 0).all() and (ghost < 84).all(), ghost
    assert (cube >= 0).all() and (cube < 84).all(), cube
    assert np.ptp(cube[:, 0]) >= 12 and np.ptp(ghost[:, 0]) >= 12
    # the ghost hides neither the cube nor the hand: its box lies left of the cube's
    assert ghost[:, 0].max() <= cube[:, 0].min() + 2
    for tip in t.tips:
        uv = project(venv, "fixed", venv.sim.site_xpos[0, tip][None])
        assert (uv >= 0).all() and (uv < 84).all()
    # a different goal in env 1 changes the image at the ghost only, and q_goal in proprio
    venv.task.set_goal(venv.sim, venv.state, np.array([1]), axis_angle_quat([0, 1, 0], 1.5)[None])
    venv.sim.forward(np.array([1]))
    obs, *_ = env.step(np.repeat(hold(venv)[:1], 2, axis=0))
    changed = np.abs(obs["pixels"][0, ..., -3:].astype(int) - obs["pixels"][1, ..., -3:].astype(int)).sum(-1) > 30
    rows, cols = np.nonzero(changed)
    assert changed.sum() > 20
    assert cols.min() >= ghost[:, 0].min() - 8 and cols.max() <= ghost[:, 0].max() + 8
    assert rows.min() >= ghost[:, 1].min() - 8 and rows.max() <= ghost[:, 1].max() + 8
    assert not np.allclose(obs["proprio"][0, 35:39], obs["proprio"][1, 35:39])
    np.testing.assert_array_equal(obs["proprio"][0, :32], obs["proprio"][1, :32])  # same hand state
    env.close()


# -------------------------------------------------------------------------------- AlohaInsertion

ALOHA = "VRB/AlohaInsertion-v0"
needs_aloha = needs_model("aloha", "ALOHA model unavailable offline")
ZERO = np.zeros(14, np.float32)


@needs_aloha
def test_aloha_modifications_are_idempotent_absolute_assignments():
    path = str(resolve_model("aloha"))
    raw = mujoco.MjModel.from_xml_path(path)
    spec = mujoco.MjSpec.from_file(path)
    dm.modify_aloha(spec)
    m1 = spec.compile()
    assert compiled_fields_equal(raw, m1)  # the offline Playground copy is not the task's model
    dm.modify_aloha(spec)
    assert compiled_fields_equal(m1, spec.compile()) == []
    # from other values: the same model
    spec = mujoco.MjSpec.from_file(path)
    dm.modify_aloha(spec)
    spec.body("left/gripper_link").add_body(name="left/gripper_site", pos=[0.15, 0, 0], mass=1e-6,
                                            inertia=[1e-9] * 3, explicitinertial=True)
    spec.body("right/upper_arm_link").add_geom(name="extra", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.02, 0, 0],
                                               contype=1, conaffinity=1)
    spec.site("right/gripper").pos = [0.15, 0, 0]
    for geom in spec.geoms:
        if geom.name.endswith("_pad"):
            geom.friction = [4.0, 0.005, 0.0001]
            geom.condim = 3
    for j in spec.joints:
        j.damping = [40.0, 0, 0]
        j.actfrcrange = [-35, 35]
    for a in spec.actuators:
        a.set_to_position(kp=2000, kv=124)
    spec.option.cone = mujoco.mjtCone.mjCONE_PYRAMIDAL
    spec.option.impratio = 5.0
    dm.modify_aloha(spec)
    assert compiled_fields_equal(m1, spec.compile()) == []


@needs_aloha
def test_aloha_model_matches_the_spec():
    env = make(ALOHA, obs_mode="state")
    venv = env.unwrapped
    m, cfg = venv.model, venv.cfg
    assert env.single_action_space.shape == (14,) and m.nu == 14
    assert m.opt.timestep == 0.0025 and cfg.substeps == 4 and cfg.max_episode_steps == 250
    assert gym.spec(ALOHA).max_episode_steps == 250
    assert m.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC and m.opt.impratio == 10.0
    names = [m.body(b).name for b in range(m.nbody)]
    assert "left/gripper_site" not in names and "right/gripper_site" not in names
    for side in ("left", "right"):
        s = m.site(f"{side}/gripper")
        assert m.body(s.bodyid[0]).name == f"{side}/gripper_link"
        np.testing.assert_allclose(s.pos, [0.13, 0, -0.003])
    # collision: a capsule per gripper base and a pad per finger, nothing else on the robot
    robot = [g for g in range(m.ngeom) if m.geom_bodyid[g] != 0 and m.body(m.geom_bodyid[g]).name.split("/")[0]
             in ("left", "right") and (m.geom_contype[g] or m.geom_conaffinity[g])]
    assert sorted(m.geom(g).name for g in robot) == sorted(
        f"{s}/{n}" for s in ("left", "right") for n in ("gripper_base", "left_finger_pad", "right_finger_pad"))
    for g in robot:
        assert (m.geom_contype[g], m.geom_conaffinity[g], m.geom_condim[g]) == (1, 2, 4)
        np.testing.assert_allclose(m.geom_friction[g], [1.0, 0.05, 0.001])  # native torsional friction, not 4.0
    np.testing.assert_allclose(m.geom_size[m.geom("left/left_finger_pad").id], [0.018, 0.028, 0.006])
    # gains (kp, kv 0, joint damping, force limit)
    for side in ("left", "right"):
        for name, (kp, damping, force) in dm.ALOHA_GAINS.items():
            a = m.actuator(f"{side}/{name}")
            j = m.joint(a.trnid[0])
            assert a.gainprm[0] == kp and a.biasprm[1] == -kp and a.biasprm[2] == 0 and not a.forcelimited[0]
            assert m.dof_damping[j.dofadr[0]] == damping
            assert m.jnt_actfrclimited[j.id] and m.jnt_actfrcrange[j.id].tolist() == [-force, force]
            if name == "gripper":
                assert j.name == f"{side}/left_finger" and a.ctrlrange.tolist() == [0.002, 0.037]
            else:
                np.testing.assert_array_equal(a.ctrlrange, m.jnt_range[j.id])
    # objects
    peg, sock = m.body("peg").id, m.body("socket").id
    assert m.body_mass[peg] == pytest.approx(0.1) and m.body_mass[sock] == pytest.approx(0.07)
    for g in range(m.ngeom):
        if m.geom_bodyid[g] in (peg, sock):
            assert m.geom_condim[g] == 4 and m.geom_friction[g, 0] == 1.0
    np.testing.assert_allclose(m.geom_size[m.geom("peg").id], [0.048, 0.015, 0.015])
    np.testing.assert_allclose(m.site("peg_end2").pos, [-0.048, 0, 0])
    np.testing.assert_allclose(m.site("socket_entrance").pos, [0.048, 0, 0])
    assert m.nmesh == 12 + 2  # the arm visuals and the table top and legs; no unused collision meshes
    table = m.geom("table").id
    assert m.geom_pos[table][2] + m.geom_size[table][2] == pytest.approx(0.0008)
    np.testing.assert_allclose(2 * m.geom_size[table][:2], [1.22, 0.74])
    # the bore: 3.6 cm between the inner faces of opposite walls
    inner = [abs(m.geom_pos[m.geom(f"socket_{w}").id][k]) - m.geom_size[m.geom(f"socket_{w}").id][k]
             for w, k in (("bottom", 2), ("top", 2), ("left", 1), ("right", 1))]
    np.testing.assert_allclose(inner, [0.018] * 4)
    # render profile: the policy cameras draw ~7.7k mesh faces each instead of ~331k
    for cam in cfg.policy_cameras:
        assert lod.drawn_faces(m, cfg.camera(cam).geomgroups) < 9000
    assert venv.task.lod_stats.faces_before > 300000
    env.close()


def test_tolerance_matches_dm_control():
    rewards = pytest.importorskip("dm_control.utils.rewards")
    x = np.concatenate([np.linspace(-1, 3, 201), [0.0, 0.001, 0.01, 0.99, 1.0]])
    for bounds, margin, sigmoid in (((0, 0.001), 0.3, "linear"), ((0, 0.01), 2.0, "gaussian"),
                                    ((0.99, 1.0), 0.03, "linear"), ((0, 0.01), 0.15, "linear")):
        want = rewards.tolerance(x, bounds=bounds, margin=margin, sigmoid=sigmoid, value_at_margin=0.1)
        np.testing.assert_allclose(dm.tolerance(x, bounds, margin, sigmoid), want, rtol=1e-12, atol=1e-15)


@needs_aloha
def test_aloha_reset_distribution():
    n = 6
    env = make(ALOHA, n=n, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=0)
    t, cfg = venv.task, venv.cfg
    q = venv.sim.qpos
    np.testing.assert_array_equal(q[:, t.arm_q["left"]], np.tile(cfg.home_left, (n, 1)))
    np.testing.assert_array_equal(q[:, t.arm_q["right"]], np.tile(cfg.home_right, (n, 1)))
    assert (q[:, t.fingers_q] == 0.0305).all()
    np.testing.assert_array_equal(venv.sim.ctrl, np.tile(t.home_ctrl, (n, 1)))
    peg, sock = q[:, t.peg_q:t.peg_q + 7], q[:, t.sock_q:t.sock_q + 7]
    for pose, spawn in ((peg, cfg.peg_spawn), (sock, cfg.socket_spawn)):
        assert (np.abs(pose[:, :2] - spawn[:2]) <= 0.1).all() and (pose[:, 2] == spawn[2]).all()
        np.testing.assert_array_equal(pose[:, 3:], np.tile([1.0, 0, 0, 0], (n, 1)))
        assert len({tuple(p) for p in np.round(pose[:, :2], 6)}) == n  # per-env seeds
    # resting on the table, not inside it
    m = venv.model
    for i in range(n):
        d = venv.sim.data(i)
        mujoco.mj_forward(m, d)
        assert d.ncon > 0 and min(d.contact[k].dist for k in range(d.ncon)) >= -1e-4
    env.close()


@needs_aloha
def test_aloha_delta_control_and_rest():
    env = make(ALOHA, n=2, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=1)
    t = venv.task
    a = np.zeros((2, 14), np.float32)
    a[0] = 1.0
    a[1, 3] = -0.5
    env.step(a)
    np.testing.assert_allclose(venv.sim.ctrl[0], np.minimum(t.home_ctrl + 0.02, t.ctrl_hi))
    assert venv.sim.ctrl[0, 6] == 0.037 and venv.sim.ctrl[0, 13] == 0.037  # grippers clipped open
    expected = t.home_ctrl.copy()
    expected[3] -= 0.01
    np.testing.assert_allclose(venv.sim.ctrl[1], expected)
    # holding still for 50 steps: no warnings, peg and socket stay put
    before = venv.sim.qpos[:, t.peg_q:t.peg_q + 3].copy()
    for _ in range(50):
        obs, r, te, tr, info = env.step(np.zeros((2, 14), np.float32))
        assert not info["physics_error"].any() and not te.any()
    assert np.abs(venv.sim.qpos[:, t.peg_q:t.peg_q + 3] - before).max() < 2e-3
    env.close()


def _place(venv, i, socket_pos, peg_axial):
    """Socket at ``socket_pos`` (identity), the peg on its axis with peg end 2 at axial ``peg_axial``."""
    t = venv.task
    q = venv.sim.qpos[i]
    q[t.sock_q:t.sock_q + 7] = (*socket_pos, 1, 0, 0, 0)
    q[t.peg_q:t.peg_q + 7] = (socket_pos[0] + peg_axial + 0.048, socket_pos[1], socket_pos[2], 1, 0, 0, 0)
    venv.sim.qvel[i] = 0.0


@needs_aloha
def test_aloha_success_when_inserted_and_not_otherwise():
    env = make(ALOHA, n=4, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=2)
    sock = (0.0, 0.15, 0.0227945)
    _place(venv, 0, sock, -0.03)  # 7.8 cm inside: solved
    _place(venv, 1, sock, 0.035)  # only 1.3 cm inside: failed
    _place(venv, 2, sock, -0.25)  # on the axis but behind the socket: failed
    # env 3: inserted deep enough, but 8 mm off the axis (peg rotated in the bore)
    _place(venv, 3, sock, -0.03)
    t = venv.task
    venv.sim.qpos[3, t.peg_q + 3:t.peg_q + 7] = axis_angle_quat([0, 0, 1], 0.2)
    venv.sim.forward(np.arange(4))
    obs, r, te, tr, info = env.step(np.zeros((4, 14), np.float32))
    depth = info["metrics"]["peg_depth"]
    assert depth[0] > 0.07 and depth[1] < 0.02
    assert info["metrics"]["peg_axis_distance"][3] > 0.005
    assert info["success"].tolist() == [True, False, False, False]
    assert not te.any() and not info["physics_error"].any()
    ins = info["reward_terms"]["peg_insertion_reward"]
    assert ins[0] > 0 and ins[0] > ins[1] and ins[3] == 0.0
    env.close()


@needs_aloha
def test_aloha_out_of_bounds_terminates_and_table_contact_costs():
    env = make(ALOHA, n=3, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=3)
    t = venv.task
    venv.sim.qpos[1, t.peg_q] = 1.2  # the peg left the workspace
    # env 2: the left arm bent down until its fingers go into the table
    venv.sim.qpos[2, t.arm_q["left"][1]] = 0.5
    venv.sim.qpos[2, t.arm_q["left"][2]] = 0.95
    venv.sim.forward(np.arange(3))
    obs, r, te, tr, info = env.step(np.zeros((3, 14), np.float32))
    assert te.tolist() == [False, True, False]
    np.testing.assert_array_equal(info["reward_terms"]["no_table_collision"], [0.3, 0.3, 0.0])
    env.close()


@needs_aloha
def test_aloha_observation_layout():
    env = make(ALOHA, privileged=True)
    obs, _ = env.reset(seed=4)
    venv, t = env.unwrapped, env.unwrapped.task
    p, pr = obs["proprio"][0].astype(np.float64), obs["privileged"][0].astype(np.float64)
    assert p.shape == (52,) and pr.shape == (90,)
    q = venv.sim.qpos[0]
    np.testing.assert_allclose(p[:6], venv.cfg.home_left, rtol=1e-6)
    np.testing.assert_allclose(p[6:12], venv.cfg.home_right, rtol=1e-6)
    np.testing.assert_allclose(p[12:16], 0.0305, rtol=1e-6)
    np.testing.assert_allclose(p[32:46], t.home_ctrl, rtol=1e-6)
    np.testing.assert_allclose(p[46:52], venv.sim.site_xpos[0][t.grip_sites].ravel(), rtol=1e-6)
    np.testing.assert_array_equal(pr[:16], p[:16])
    np.testing.assert_allclose(pr[16:23], q[t.peg_q:t.peg_q + 7], rtol=1e-6)
    np.testing.assert_allclose(pr[23:30], q[t.sock_q:t.sock_q + 7], rtol=1e-6)
    np.testing.assert_array_equal(pr[30:46], p[16:32])
    np.testing.assert_array_equal(pr[58:78], p[32:52])
    np.testing.assert_allclose(pr[78:81], venv.sim.site_xpos[0, t.sock_entrance], rtol=1e-6)
    np.testing.assert_allclose(pr[81:84], venv.sim.site_xpos[0, t.peg_end2], rtol=1e-6)
    np.testing.assert_allclose(pr[84:90], [0, 0, 1, 0, 0, 1], atol=1e-6)  # upright at reset
    env.close()


@needs_aloha
def test_aloha_cameras_see_peg_socket_and_grippers():
    env = make(ALOHA, n=2)
    venv = env.unwrapped
    obs, _ = env.reset(seed=[0, 0])
    t, cfg = venv.task, venv.cfg
    assert set(obs) == {"pixels", "pixels_wrist_left", "pixels_wrist_right", "proprio"}
    for k in ("pixels", "pixels_wrist_left", "pixels_wrist_right"):
        assert obs[k].shape == (2, 64, 64, 3)
    # nominal spawn: peg, socket and both grippers inside the table camera's image
    for i in range(2):
        venv.sim.qpos[i, t.peg_q:t.peg_q + 3] = cfg.peg_spawn
        venv.sim.qpos[i, t.sock_q:t.sock_q + 3] = cfg.socket_spawn
    venv.sim.forward(np.arange(2))
    pts = np.concatenate([box_corners(cfg.peg_spawn, [1, 0, 0, 0], cfg.peg_half),
                          box_corners(cfg.socket_spawn, [1, 0, 0, 0], (0.048, 0.022, 0.022)),
                          venv.sim.site_xpos[0][t.grip_sites]])
    uv = project(venv, "table", pts)
    assert (uv >= 0).all() and (uv < 64).all(), uv
    # each wrist camera sees its own finger pads, and the table below them
    m = venv.model
    for side in ("left", "right"):
        pads = [m.geom(f"{side}/{f}_finger_pad").id for f in ("left", "right")]
        uv = project(venv, f"wrist_{side}", venv.sim.data(0).geom_xpos[pads])
        assert (uv >= 0).all() and (uv < 64).all(), (side, uv)
    obs, *_ = env.step(np.zeros((2, 14), np.float32))
    for k in ("pixels_wrist_left", "pixels_wrist_right"):
        img = obs[k][0].astype(int)
        table = (img[..., 0] > img[..., 2] + 30) & (img[..., 0] > 90)  # the wooden top is orange-brown
        assert table.mean() > 0.2, (k, table.mean())
    # moving the peg in env 1 changes the table image there
    venv.sim.qpos[1, t.peg_q:t.peg_q + 2] += (-0.08, 0.08)
    venv.sim.forward(np.array([1]))
    obs, *_ = env.step(np.zeros((2, 14), np.float32))
    changed = np.abs(obs["pixels"][0].astype(int) - obs["pixels"][1].astype(int)).sum(-1) > 60
    assert changed.sum() >= 10
    env.close()


@needs_aloha
def test_aloha_decimated_arms_look_like_the_originals():
    images = {}
    for name, kw in (("original", {"lod_ratio": 1.0}), ("task", {})):
        env = make(ALOHA, n=1, **kw)
        obs, _ = env.reset(seed=0)
        images[name] = {k: v.astype(int) for k, v in obs.items() if k.startswith("pixels")}
        env.close()
    for k, img in images["task"].items():
        changed = (np.abs(img - images["original"][k]).sum(-1) > 60).mean()
        assert changed < (0.01 if k == "pixels" else 0.04), (k, changed)


def _twist_held_peg(condim: int, torque: float = 0.5) -> tuple[float, float]:
    """Close the right gripper on a peg placed between its pads, then twist the peg about the
    closing axis for 50 steps. Returns (rotation in rad, drop in m)."""
    from visual_robo_bench.tasks.dexterous import mat_to_quat

    env = make(ALOHA, obs_mode="state", condim=condim)
    venv = env.unwrapped
    m, t = venv.model, venv.task
    env.reset(seed=0)
    d = venv.sim.data(0)
    mujoco.mj_forward(m, d)
    pads = [m.geom(f"right/{f}_finger_pad").id for f in ("left", "right")]
    c0, c1 = d.geom_xpos[pads]
    n = (c1 - c0) / np.linalg.norm(c1 - c0)  # the closing axis
    along = d.geom_xmat[pads[0]].reshape(3, 3)[:, 1]
    along = (along - n * (along @ n)) / np.linalg.norm(along - n * (along @ n))
    R = np.stack([along, n, np.cross(along, n)], axis=1)  # peg x along the fingers, 3 cm across the gap
    venv.sim.qpos[0, t.peg_q:t.peg_q + 7] = (*((c0 + c1) / 2), *mat_to_quat(R.reshape(1, 9))[0])
    venv.sim.qvel[0] = 0.0
    venv.sim.forward(np.array([0]))
    a = np.zeros((1, 14), np.float32)
    a[0, 13] = -1.0  # close the right gripper
    for _ in range(30):
        env.step(a)
    R0, z0 = venv.sim.xmat[0, t.peg_body].reshape(3, 3).copy(), venv.sim.xpos[0, t.peg_body, 2]
    for _ in range(50):
        venv.sim.xfrc_applied[0, t.peg_body, 3:] = torque * n
        obs, r, te, tr, info = env.step(a)
        assert not te.any()
    dR = venv.sim.xmat[0, t.peg_body].reshape(3, 3) @ R0.T
    drop = z0 - venv.sim.xpos[0, t.peg_body, 2]
    env.close()
    return float(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1, 1))), float(drop)


@needs_aloha
def test_aloha_held_peg_does_not_spin_freely():
    """tasks.md 4, item 17: native torsional friction (condim 4), not friction 4.0."""
    cfg = visual_robo_bench.get_task(ALOHA).config
    assert cfg.condim == 4 and cfg.friction == (1.0, 0.05, 0.001)
    spin4, drop4 = _twist_held_peg(4)
    spin3, _ = _twist_held_peg(3)
    assert drop4 < 0.01  # held
    assert spin4 < 0.05 and spin4 < 0.7 * spin3, (spin4, spin3)


@needs_allegro
def test_decimation_is_deterministic_cached_and_keeps_inertia(tmp_path, monkeypatch):
    path = str(resolve_model("allegro_hand"))
    cfg = visual_robo_bench.get_task(ALLEGRO).config
    m0 = mujoco.MjModel.from_xml_path(path)
    models = []
    for k, cache in enumerate(("a", "a", "b")):
        monkeypatch.setenv("VRB_CACHE_DIR", str(tmp_path / cache))
        spec = mujoco.MjSpec.from_file(path)
        stats = lod.decimate_visual_meshes(spec, cfg.lod_ratio, cfg.lod_min_faces, agg=cfg.lod_agg, cell=cfg.lod_cell)
        assert stats.meshes and stats.faces_after < stats.faces_before / 5
        assert stats.cache_hits == (len(stats.meshes) if k == 1 else 0)
        models.append(spec.compile())
    assert len(list((tmp_path / "a" / "lod").glob("*.npz"))) == len(stats.meshes)
    for m in models[1:]:
        np.testing.assert_array_equal(m.mesh_vert, models[0].mesh_vert)
        np.testing.assert_array_equal(m.mesh_face, models[0].mesh_face)
    for name in ("body_mass", "body_inertia", "body_ipos", "body_iquat"):
        np.testing.assert_allclose(getattr(models[0], name), getattr(m0, name), rtol=0, atol=1e-12, err_msg=name)
