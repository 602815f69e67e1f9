"""Task-specific rules of the dexterous tasks (tasks.md 3.6-3.9).

Robot models come from the offline copies (``VRB_MODEL_DIR``, set in conftest);
the Shadow Hand from the installed ``gymnasium-robotics`` package.
"""

from __future__ import annotations

import math

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import visual_robo_bench  # noqa: F401
from visual_robo_bench.tasks.dexterous import axis_angle_quat, quat_conj, quat_mul, rotation_angle
from vrb_helpers import box_corners, hold, make, needs_model, project, settle


# ---------------------------------------------------------------------------------- quaternions


def test_rotation_angle_helpers():
    q = axis_angle_quat([1, 0, 0], 0.7)
    assert rotation_angle(quat_mul(q, quat_conj(q))) == pytest.approx(0.0, abs=1e-12)
    assert rotation_angle(quat_mul(q, quat_conj(axis_angle_quat([1, 0, 0], 0.2)))) == pytest.approx(0.5)
    assert rotation_angle(-q) == pytest.approx(0.7)  # q and -q are the same rotation


# ----------------------------------------------------------------------------------- ShadowCube

SHADOW = "VRB/ShadowCube-v0"


def test_shadow_model_is_the_coupled_hand():
    env = make(SHADOW, obs_mode="state")
    venv = env.unwrapped
    m = venv.model
    assert env.single_action_space.shape == (20,)  # not 24 independent joints (tasks.md 4, item 28)
    assert len(venv.task.hand_joints) == 24 and m.nmocap == 1
    coupled = [m.tendon(i).name for i in range(m.ntendon) if m.tendon(i).name.endswith("J1c")]
    assert len(coupled) == 4
    assert m.opt.timestep == 0.002 and venv.cfg.substeps == 20 and venv.cfg.max_episode_steps == 250
    # the goal ghost is a non-colliding mocap body; the free-jointed target is gone (31 = 24 + 7)
    ghost = m.geom("goal_ghost").id
    assert m.geom_contype[ghost] == 0 and m.geom_conaffinity[ghost] == 0 and m.nq == 31
    assert m.mat_rgba[m.geom_matid[ghost]][3] == pytest.approx(0.4)
    # kept gains and the block
    assert m.actuator_gainprm[:2, 0].tolist() == [5.0, 5.0] and (m.actuator_gainprm[2:, 0] == 1.0).all()
    block = m.geom("object").id
    assert m.geom_size[block].tolist() == [0.025] * 3 and m.geom_condim[block] == 4
    assert m.body_mass[m.body("object").id] == pytest.approx(0.05**3 * 567, rel=1e-6)
    env.close()


def test_shadow_reset_distribution_and_goal():
    env = make(SHADOW, n=8, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=0)
    t = venv.task
    q = venv.sim.qpos
    width = t.jhi - t.jlo
    assert (np.abs(q[:, t.hq]) <= 0.1 * width + 1e-12).all() and (q[:, t.hq] >= t.jlo - 1e-12).all()
    pos, quat = t.cube_pose(venv.sim, np.arange(8))
    assert (np.abs(pos - np.array([1.0, 0.87, 0.2])) <= 0.01 + 1e-12).all()
    np.testing.assert_array_equal(quat, np.tile([1.0, 0, 0, 0], (8, 1)))
    goals = venv.state["goal_quat"]
    angles = rotation_angle(goals)
    assert (angles >= math.radians(60) - 1e-9).all() and (angles <= math.radians(90) + 1e-9).all()
    assert (np.abs(goals[:, 3]) < 1e-12).all()  # about world x or y
    assert len({tuple(np.round(g, 6)) for g in goals}) == 8  # per-env seeds
    # ghost = goal, offset +0.15 in x
    np.testing.assert_allclose(venv.sim.mocap_quat[:, 0], goals)
    np.testing.assert_allclose(venv.sim.mocap_pos[:, 0], np.tile([1.15, 0.87, 0.2], (8, 1)))
    # actuator targets match the pose; previous action = normalised targets
    lo, hi = venv.model.actuator_ctrlrange.T
    np.testing.assert_allclose(venv.sim.ctrl, np.clip(venv.sim.actuator_length, lo, hi))
    np.testing.assert_allclose(venv.state["prev_action"], (venv.sim.ctrl - (lo + hi) / 2) / ((hi - lo) / 2), atol=1e-6)
    env.close()


def test_shadow_success_when_goal_is_reached_and_not_otherwise():
    env = make(SHADOW, n=2, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=1)
    settle(venv, env)
    ids = np.arange(2)
    _, quat = venv.task.cube_pose(venv.sim, ids)
    # env 0: the goal is the block's current orientation (solved); env 1: 80 degrees away (failed)
    goals = np.stack([quat[0], quat_mul(axis_angle_quat([1, 0, 0], math.radians(80)), quat[1])])
    venv.task.set_goal(venv.sim, venv.state, ids, goals)
    venv.sim.forward(ids)
    obs, r, te, tr, info = env.step(hold(venv))
    theta = info["metrics"]["orientation_error"]
    assert theta[0] < 0.1 and theta[1] > 1.2
    assert info["success"].tolist() == [True, False] and not te.any()
    assert r[0] > r[1]  # the orientation term rewards the solved env
    env.close()


def test_shadow_drop_terminates():
    env = make(SHADOW, n=2, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=2)
    t = venv.task
    venv.sim.qpos[1, t.cube_q:t.cube_q + 3] = (1.0, 0.87, 0.026)  # on the floor, 17 cm below the goal
    venv.sim.forward(np.array([1]))
    obs, r, te, tr, info = env.step(hold(venv))
    assert te.tolist() == [False, True]
    assert not info["success"][1] and info["metrics"]["dropped"].tolist() == [0.0, 1.0]
    env.close()


def test_shadow_previous_action_is_observed_and_updated():
    env = make(SHADOW, privileged=True, obs_mode="state")
    env.reset(seed=0)
    a1 = np.full((1, 20), 0.3, np.float32)
    a2 = np.linspace(-0.5, 0.5, 20, dtype=np.float32)[None]
    obs, *_ = env.step(a1)
    np.testing.assert_allclose(obs["privileged"][0, -20:], a1[0])
    obs, *_ = env.step(a2)
    np.testing.assert_allclose(obs["privileged"][0, -20:], a2[0])
    env.close()
    env = make(SHADOW)
    env.reset(seed=0)
    obs, *_ = env.step(a2)
    np.testing.assert_allclose(obs["proprio"][0, -20:], a2[0])
    env.close()


def test_shadow_camera_sees_block_and_ghost_and_goal_changes_pixels():
    env = make(SHADOW, n=2)
    venv = env.unwrapped
    obs, _ = env.reset(seed=[0, 0])  # two identical envs
    t = venv.task
    ids = np.arange(2)
    pos, quat = t.cube_pose(venv.sim, ids)
    block = project(venv, "fixed", box_corners(pos[0], quat[0], 0.025))
    ghost = project(venv, "fixed", box_corners(venv.sim.mocap_pos[0, 0], venv.sim.mocap_quat[0, 0], 0.025))
    assert (ghost >= 0).all() and (ghost < 84).all(), ghost
    assert (block >= 0).all() and (block < 84).all()
    assert np.ptp(block[:, 0]) >= 12, f"block only {np.ptp(block[:, 0]):.1f} px wide"
    for tip in t.tips:
        uv = project(venv, "fixed", venv.sim.site_xpos[0, tip][None])
        assert (uv >= 0).all() and (uv < 84).all()
    # a different goal in env 1 changes the image at the ghost only, and the goal in proprio
    venv.task.set_goal(venv.sim, venv.state, np.array([1]), axis_angle_quat([0, 1, 0], 1.5)[None])
    venv.sim.forward(np.array([1]))
    obs, *_ = env.step(np.repeat(hold(venv)[:1], 2, axis=0))
    changed = np.abs(obs["pixels"][0, ..., -3:].astype(int) - obs["pixels"][1, ..., -3:].astype(int)).sum(-1) > 30
    rows, cols = np.nonzero(changed)
    assert changed.sum() > 20
    assert cols.min() >= ghost[:, 0].min() - 8 and cols.max() <= ghost[:, 0].max() + 8
    assert not np.allclose(obs["proprio"][0, 51:55], obs["proprio"][1, 51:55])  # q_goal in proprio
    np.testing.assert_array_equal(obs["proprio"][0, :48], obs["proprio"][1, :48])  # same hand state
    env.close()


def test_model_dir_is_not_part_of_the_definition(tmp_path):
    from visual_robo_bench import get_task

    cfg = get_task(SHADOW).config
    assert "model_dir" not in cfg.to_dict()
    assert cfg.replace(model_dir=str(tmp_path)).hash() == cfg.hash()


# ----------------------------------------------------------------------------------- FrankaPick

FRANKA = "VRB/FrankaPick-v0"


pytestmark_franka = needs_model("franka_emika_panda", "Panda model unavailable offline (VRB_MODEL_DIR)")


class PickController:
    """Scripted pick-and-lift from the simulator state: damped-least-squares IK on the gripper point.

    Phases per env: above the cube (open), descend, close, carry the cube to the target.
    """

    def __init__(self, venv):
        self.venv, self.task, self.m = venv, venv.task, venv.model
        self.phase = np.zeros(venv.num_envs, int)
        self.count = np.zeros(venv.num_envs, int)
        self.data = mujoco.MjData(self.m)
        home = mujoco.MjData(self.m)
        home.qpos[self.task.arm_q] = self.task.cfg.home
        mujoco.mj_kinematics(self.m, home)
        self.R_home = home.xmat[self.task.hand].reshape(3, 3).copy()

    def ik_action(self, i, goal, cap=0.03):
        m, d, t = self.m, self.data, self.task
        self.venv.sim.data(i, d)
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        R = d.xmat[t.hand].reshape(3, 3)
        gp = d.xpos[t.fingers].mean(0) + t.cfg.grip_offset * R[:, 2]
        err = goal - gp
        if np.linalg.norm(err) > cap:
            err *= cap / np.linalg.norm(err)
        q = np.zeros(4)
        mujoco.mju_mat2Quat(q, (self.R_home @ R.T).ravel())
        rot = np.zeros(3)
        mujoco.mju_quat2Vel(rot, q, 1.0)
        jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        mujoco.mj_jac(m, d, jacp, jacr, gp, t.hand)
        J = np.vstack([jacp, jacr])[:, t.arm_v]
        dq = J.T @ np.linalg.solve(J @ J.T + 1e-4 * np.eye(6), np.concatenate([err, 0.5 * rot]))
        return np.clip((d.qpos[t.arm_q] + dq - d.ctrl[t.arm_act]) / t.cfg.arm_delta, -1, 1)

    def act(self):
        venv, t = self.venv, self.task
        x = t.quantities(venv.sim, venv.state, np.arange(venv.num_envs))
        A = np.zeros((venv.num_envs, 8), np.float32)
        for i in range(venv.num_envs):
            cube, gp, target = x["cube"][i], x["grip"][i], x["target"][i]
            if self.phase[i] == 0:
                goal, grip = cube + (0, 0, 0.08), 1.0
                if np.linalg.norm(gp - goal) < 0.01:
                    self.phase[i] = 1
            elif self.phase[i] == 1:
                goal, grip = cube.copy(), 1.0
                if np.linalg.norm(gp - goal) < 0.008:
                    self.phase[i] = 2
            elif self.phase[i] == 2:
                goal, grip = cube.copy(), -1.0
                self.count[i] += 1
                if self.count[i] > 15:
                    self.phase[i] = 3
            else:
                goal, grip = gp + (target - cube), -1.0
            A[i, :7] = self.ik_action(i, goal)
            A[i, 7] = grip
        return A


@pytestmark_franka
def test_franka_scripted_pick_succeeds_in_most_episodes():
    n = 8
    env = gym.make_vec(FRANKA, num_envs=n, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=0)
    ctl = PickController(venv)
    success = np.zeros(n, bool)
    lifted = np.zeros(n, bool)
    done = np.zeros(n, bool)
    for _ in range(venv.cfg.max_episode_steps):
        obs, r, te, tr, info = env.step(ctl.act())
        success |= info["success"] & ~done
        lifted |= info["metrics"]["lifted"].astype(bool) & ~done
        assert not (te & ~done).any(), "the scripted controller must not touch the table or lose the cube"
        done |= te | tr
        if done.all():
            break
    assert success.sum() >= 6, f"only {success.sum()} of {n} seeded episodes succeeded"
    assert lifted.sum() >= success.sum()
    env.close()


@pytestmark_franka
def test_franka_success_at_target_and_not_on_the_table():
    env = make(FRANKA, n=2, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=3)
    t = venv.task
    obs, r, te, tr, info = env.step(np.zeros((2, 8), np.float32))
    assert not info["success"].any()  # the target is >= 20 cm above the resting cube
    assert (info["metrics"]["cube_target_distance"] >= 0.19).all()
    venv.sim.qpos[0, t.cube_q:t.cube_q + 3] = venv.state["target"][0]  # cube placed at the target
    venv.sim.forward(np.array([0]))
    obs, r, te, tr, info = env.step(np.zeros((2, 8), np.float32))
    assert info["success"].tolist() == [True, False]
    assert info["reward_terms"]["lifted"][0] == 3.0 and info["reward_terms"]["lifted"][1] == 0.0
    env.close()


@pytestmark_franka
def test_franka_cube_fits_and_rests_on_the_table():
    cfg = visual_robo_bench.get_task(FRANKA).config
    assert 2 * cfg.cube_half == 0.04 < 2 * cfg.finger_max  # tasks.md 4, item 7
    env = make(FRANKA, n=4, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=0)
    m = venv.model
    cube_geom = m.geom("cube").id
    for i in range(4):
        d = venv.sim.data(i)
        mujoco.mj_forward(m, d)
        z = d.xpos[venv.task.cube_body, 2]
        assert z == pytest.approx(0.02)
        dists = [d.contact[k].dist for k in range(d.ncon) if cube_geom in (d.contact[k].geom1, d.contact[k].geom2)]
        assert dists and min(dists) >= -1e-4  # resting, not inside the table (item 8)
    env.close()


@pytestmark_franka
def test_franka_target_is_observed_and_drawn():
    env = make(FRANKA, n=2)
    venv = env.unwrapped
    obs, _ = env.reset(seed=[5, 5])
    np.testing.assert_array_equal(obs["proprio"][:, -3:], venv.state["target"].astype(np.float32))
    new = venv.state["target"][1] + (0.0, 0.12, -0.1)
    venv.state["target"][1] = new
    venv.sim.mocap_pos[1, venv.task.target_mocap] = new
    venv.sim.forward(np.array([1]))
    obs, *_ = env.step(np.zeros((2, 8), np.float32))
    np.testing.assert_allclose(obs["proprio"][1, -3:], new, atol=1e-6)
    assert not np.array_equal(obs["proprio"][0, -3:], obs["proprio"][1, -3:])
    front = np.abs(obs["pixels_front"][0].astype(int) - obs["pixels_front"][1].astype(int)).sum(-1)
    assert (front > 30).sum() >= 4, "the target marker must show in the fixed camera"
    # the marker is green where it is drawn now
    uv = project(venv, "front", new[None])[0].round().astype(int)
    patch = obs["pixels_front"][1, max(uv[1] - 2, 0):uv[1] + 3, max(uv[0] - 2, 0):uv[0] + 3].reshape(-1, 3).astype(int)
    assert (patch[:, 1] > patch[:, 0] + 20).any()
    env.close()


@pytestmark_franka
def test_franka_gripper_has_no_hidden_override():
    env = make(FRANKA, n=2, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=[1, 1])
    venv.state["reached"][0] = 1.0  # same state otherwise
    a = np.zeros((2, 8), np.float32)
    a[:, 7] = -0.5
    env.step(a)
    np.testing.assert_array_equal(venv.sim.ctrl[0], venv.sim.ctrl[1])
    assert venv.sim.ctrl[0, venv.task.grip_act] == pytest.approx((0.04 - 0.02) * 255 / 0.04)
    a[:, 7] = 1.0
    env.step(a)
    assert venv.sim.ctrl[0, venv.task.grip_act] == pytest.approx(255.0)  # clipped at fully open
    env.close()


@pytestmark_franka
def test_franka_floor_contact_terminates():
    env = make(FRANKA, n=2, obs_mode="state")
    venv = env.unwrapped
    env.reset(seed=0)
    t = venv.task
    hand_z = venv.sim.xpos[1, t.hand, 2]
    assert venv.sim.sensordata[:, t.contact_adr].sum() == 0
    # bend the arm down until the hand meets the table
    venv.sim.qpos[1, t.arm_q[1]] = 1.3
    venv.sim.qpos[1, t.arm_q[3]] = -0.8
    venv.sim.forward(np.array([1]))
    assert venv.sim.xpos[1, t.hand, 2] < hand_z
    obs, r, te, tr, info = env.step(np.zeros((2, 8), np.float32))
    assert te.tolist() == [False, True]
    assert info["reward_terms"]["no_floor_contact"].tolist() == [0.25, 0.0]
    env.close()
