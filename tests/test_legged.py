"""Task-specific tests of the legged tasks (tasks.md 3.10-3.12 and the section 4 bug list)."""

from __future__ import annotations

import math

import mujoco
import numpy as np
from gymnasium.vector import AutoresetMode

import visual_robo_bench  # noqa: F401
from visual_robo_bench.tasks import legged
from visual_robo_bench.tasks._common import axis_angle_quat
from vrb_helpers import needs_model


needs_go2 = needs_model("unitree_go2", "Go2 model unavailable offline")
needs_g1 = needs_model("unitree_g1_23dof", "G1 model unavailable offline")

GO2, G1 = "VRB/Go2-v0", "VRB/G1Hurdle-v0"
QUIET = {"joint_noise": 0.0, "spawn_noise": 0.0, "spawn_tilt_deg": 0.0}


def _vec(task_id: str, num_envs: int = 1, **kw):
    return legged_env(task_id, num_envs, **kw)


def legged_env(task_id: str, num_envs: int, **kw):
    """A native vector env of a legged task (works whether or not the id is in the package registry yet)."""
    from visual_robo_bench.envs import VRBVectorEnv

    return VRBVectorEnv(task_id, num_envs=num_envs, **kw)


def _pose(env, env_id, pos=None, quat=None, joints=None):
    """Place env ``env_id``'s robot at rest (through the state API) and return its refreshed observation."""
    st = env.get_state([env_id])
    task = env.task
    d = mujoco.MjData(env.model)
    mujoco.mj_setState(env.model, d, st.physics[0], mujoco.mjtState.mjSTATE_INTEGRATION)
    qpos = d.qpos.copy()
    if pos is not None:
        qpos[0:3] = pos
    if quat is not None:
        qpos[3:7] = quat
    if joints is not None:
        qpos[task.qadr] = joints
    d.qpos[:] = qpos
    d.qvel[:] = 0.0
    phys = np.empty(env.sim.nstate)
    mujoco.mj_getState(env.model, d, phys, mujoco.mjtState.mjSTATE_INTEGRATION)
    st.physics[0] = phys
    env.set_state(st, [env_id])


# ============================================================================================ Go2


@needs_go2
def test_go2_stands_for_one_second_at_default_pose():
    env = _vec(GO2, 1, obs_mode="state", **QUIET)
    env.reset(seed=0)
    task = env.task
    for _ in range(50):  # 1 s at 50 Hz
        _, _, te, tr, info = env.step(np.zeros((1, 12), np.float32))
        assert not te[0] and not info["physics_error"][0]
    pos, xmat = task.base_pose(env.sim, np.array([0]))
    roll, pitch = legged.roll_pitch_of(xmat)
    assert 0.25 < pos[0, 2] < 0.33  # settles near 0.29 m
    assert abs(roll[0]) < 0.02 and abs(pitch[0]) < 0.02
    env.close()


@needs_go2
def test_go2_torque_limits_are_two_sided():
    env = _vec(GO2, 1, obs_mode="state")
    m = env.model
    task = env.task
    limits = np.asarray(env.cfg.torque_limits)
    np.testing.assert_array_equal(m.actuator_forcerange[:, 1], limits)
    np.testing.assert_array_equal(m.actuator_forcerange[:, 0], -limits)
    assert np.array_equal(limits[:3], [23.7, 23.7, 45.43])
    forces = {}
    for a in (+1.0, -1.0):
        d = mujoco.MjData(m)
        d.qpos[2] = 0.42
        d.qpos[3] = 1.0
        d.qpos[task.qadr] = task.q_default - a * 2.0  # far on the other side of the target: saturated PD
        d.ctrl[:] = task.targets(None, np.full((1, 12), a), np.array([0]))[0]
        mujoco.mj_forward(m, d)
        forces[a] = d.actuator_force.copy()
    np.testing.assert_allclose(forces[+1.0], limits)
    np.testing.assert_allclose(forces[-1.0], -limits)
    # unsaturated: kp (q* - q)
    d = mujoco.MjData(m)
    d.qpos[3] = 1.0
    d.qpos[task.qadr] = task.q_default
    d.ctrl[:] = task.targets(None, np.full((1, 12), 0.5), np.array([0]))[0]
    mujoco.mj_forward(m, d)
    np.testing.assert_allclose(d.actuator_force, 30.0 * 0.25)
    env.close()


@needs_go2
def test_go2_fall_terminates():
    env = _vec(GO2, 2, obs_mode="state", autoreset_mode=AutoresetMode.DISABLED, **QUIET)
    env.reset(seed=0)
    q0 = env.task.q_default
    _pose(env, 0, pos=(0, 0, 0.42), quat=axis_angle_quat((1, 0, 0), 0.6), joints=q0)  # rolled beyond 0.4 rad
    _pose(env, 1, pos=(0, 0, 0.42), joints=q0)
    _, _, te, tr, info = env.step(np.zeros((2, 12), np.float32))
    assert te[0] and not te[1]
    assert info["metrics"]["fell"][0] == 1.0 and info["metrics"]["fell"][1] == 0.0
    # upside down on the floor: base contact
    env.reset(seed=1)
    _pose(env, 0, pos=(0, 0, 0.05), quat=axis_angle_quat((1, 0, 0), math.pi), joints=q0)
    _, _, te, *_ = env.step(np.zeros((2, 12), np.float32))
    assert te[0] and not te[1]
    assert env.task.contact_norm(env.sim, np.array([0]), ["base_contact"])[0, 0] > 1.0
    env.close()


@needs_go2
def test_go2_command_sampler_zeroes_small_commands_on_the_fresh_draw():
    env = _vec(GO2, 1, obs_mode="state")
    task, c = env.task, env.cfg
    for seed in range(40):
        sched = task.sample_commands(np.random.default_rng(seed))
        r = np.random.default_rng(seed)
        vx, vy, hd = r.uniform(-1, 1, 5), r.uniform(-1, 1, 5), r.uniform(-math.pi, math.pi, 5)
        small = np.hypot(vx, vy) < c.command_zero_below
        np.testing.assert_array_equal(sched[:, 2], hd)
        np.testing.assert_array_equal(sched[small, :2], 0.0)
        np.testing.assert_array_equal(sched[~small, 0], vx[~small])
        np.testing.assert_array_equal(sched[~small, 1], vy[~small])
    env.close()


@needs_go2
def test_go2_commands_are_resampled_and_observed():
    env = _vec(GO2, 1, privileged=True, autoreset_mode=AutoresetMode.DISABLED, render_env_ids=[], **QUIET)
    obs, _ = env.reset(seed=3)
    st = env.get_state()
    sched = np.array([[0.5, -0.3, 0.0], [-0.8, 0.6, 0.0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    st.task["cmd_schedule"][0] = sched
    st.task["cmd"][0] = (0.5, -0.3, 0.0)
    env.set_state(st)
    p = env.observe()["proprio"][0]
    np.testing.assert_allclose(p[6:9], [1.0, -0.6, 0.0], atol=1e-6)  # (2 v_x*, 2 v_y*, 0.25 omega*)
    # the command changes at the segment boundary (step 200)
    st = env.get_state()
    st.task["t"][0] = 199
    env.set_state(st)
    obs, *_ = env.step(np.zeros((1, 12), np.float32))
    np.testing.assert_allclose(obs["proprio"][0, 6:8], [-1.6, 1.2], atol=1e-6)
    # yaw-rate command from the heading error, clipped to [-1, 1]
    st = env.get_state()
    st.task["cmd_schedule"][0, :, 2] = math.pi / 2  # heading* 90 deg left, robot faces +x
    env.set_state(st)
    obs, *_ = env.step(np.zeros((1, 12), np.float32))
    yaw = legged.yaw_of(env.sim.xmat[:1, env.task.base_id])[0]
    omega = np.clip(0.5 * legged.wrap_angle(math.pi / 2 - yaw), -1, 1)
    np.testing.assert_allclose(obs["proprio"][0, 8], 0.25 * omega, atol=1e-6)
    assert omega > 0.7
    env.close()


@needs_go2
def test_go2_action_buffers_and_first_observation():
    env = _vec(GO2, 1, privileged=True, render_env_ids=[], **QUIET)
    obs, _ = env.reset(seed=0)
    # bug 5: the first observation comes from the reset state
    assert np.abs(obs["proprio"]).sum() > 0.5  # gravity and command at least
    np.testing.assert_array_equal(obs["proprio"], env.observe()["proprio"])
    assert np.allclose(obs["proprio"][0, 3:6], [0, 0, -1], atol=1e-6)  # projected gravity, level base
    acts = [np.full((1, 12), v, np.float32) for v in (0.1, -0.2, 0.3)]
    for a in acts:
        obs, *_ = env.step(a)
    # bug 3: a_t in proprio, a_{t-1} in privileged, a_{t-2} kept for smoothness
    np.testing.assert_allclose(obs["proprio"][0, -12:], 0.3)
    np.testing.assert_allclose(obs["privileged"][0, -12:], -0.2)
    st = env.get_state()
    np.testing.assert_allclose(st.task["prev_action"][0], 0.3)
    np.testing.assert_allclose(st.task["prev_action2"][0], -0.2)
    # action_smoothness uses a_{t-2}: a_t - 2 a_{t-1} + a_{t-2}
    a = np.full((1, 12), 0.05, np.float32)
    *_, info = env.step(a)
    expect = -0.01 * 12 * (0.05 - 2 * 0.3 + (-0.2)) ** 2 * 0.02
    np.testing.assert_allclose(info["reward_terms"]["action_smoothness"][0], expect, rtol=1e-5)
    expect_rate = -0.01 * 12 * (0.05 - 0.3) ** 2 * 0.02
    np.testing.assert_allclose(info["reward_terms"]["action_rate"][0], expect_rate, rtol=1e-5)
    env.close()


@needs_go2
def test_go2_air_time_advances_by_dt_per_step():
    env = _vec(GO2, 1, obs_mode="state", autoreset_mode=AutoresetMode.DISABLED, **QUIET)
    env.reset(seed=0)
    _pose(env, 0, pos=(0, 0, 3.0), joints=env.task.q_default)  # in the air
    for n in range(1, 8):
        env.step(np.zeros((1, 12), np.float32))
        np.testing.assert_allclose(env.get_state().task["air_time"][0], n * 0.02, rtol=1e-12)
    env.close()


def _cam_center_depth(env, env_id, cam="ego_depth"):
    """Metric depth of the floor along the optical axis of a camera (analytic, flat floor at z = 0)."""
    cid = env.model.camera(cam).id
    d = env.sim.data(env_id)
    pos = d.cam_xpos[cid]
    fwd = -d.cam_xmat[cid].reshape(3, 3)[:, 2]
    return pos[2] / -fwd[2] if fwd[2] < 0 else np.inf


@needs_go2
def test_go2_depth_image_encoding_orientation_and_rigid_camera():
    env = _vec(GO2, 2, autoreset_mode=AutoresetMode.DISABLED, **QUIET)
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (2, 58, 87, 1)  # bug 11: 87 wide x 58 high
    q0 = env.task.q_default
    _pose(env, 0, pos=(0, 0, 0.30), joints=q0)
    _pose(env, 1, pos=(0, 0, 0.30), quat=axis_angle_quat((0, 1, 0), 0.25), joints=q0)  # pitched nose-down
    env.sim.forward(np.arange(2))
    obs = env._observation()
    img = obs["pixels"][..., 0].astype(float) * 2.0 / 255.0  # decoded metres
    # the optical axis passes between the two central rows (the principal point of the spec's crop)
    for i in range(2):
        center = img[i, 28:30, 43].mean()
        assert abs(center - _cam_center_depth(env, i)) < 0.04, (i, center, _cam_center_depth(env, i))
    # flat floor: nearer at the bottom of the image (row 0 is the top), left-right symmetric
    assert img[0, -1].mean() < img[0, 0].mean()
    np.testing.assert_allclose(img[0, :, :20], img[0, :, -20:][:, ::-1], atol=2.5 / 255 * 2)
    # pitching nose-down shows nearer ground: depth changes the observation
    assert img[1].mean() < img[0].mean() - 0.1
    # the camera is rigid in the base: its orientation follows a 90-degree yaw, and the robot itself
    # is not drawn (lifted 5 m up, everything is beyond the 2 m far limit)
    _pose(env, 0, pos=(0, 0, 5.0), quat=axis_angle_quat((0, 0, 1), math.pi / 2), joints=q0)
    d = env.sim.data(0)
    cid, bid = env.model.camera("ego_depth").id, env.task.base_id
    local = env.model.cam_quat[cid]
    R_local = np.zeros(9)
    mujoco.mju_quat2Mat(R_local, local)
    np.testing.assert_allclose(d.cam_xmat[cid].reshape(3, 3), d.xmat[bid].reshape(3, 3) @ R_local.reshape(3, 3),
                               atol=1e-9)
    assert (env._observation()["pixels"][0] == 255).all()
    env.close()


@needs_go2
def test_go2_depth_matches_the_spec_crop_and_resize_pipeline():
    """The 87 x 58 image equals 'render 106 x 60 at fovy 58, crop, bicubic resize' up to resampling."""
    from PIL import Image

    env = _vec(GO2, 1, autoreset_mode=AutoresetMode.DISABLED, **QUIET)
    env.reset(seed=0)
    _pose(env, 0, pos=(0, 0, 0.30), quat=axis_angle_quat((0.3, 1, 0), 0.2), joints=env.task.q_default)
    ours = env._observation()["pixels"][0, ..., 0].astype(float)
    spec = env.task.build_scene()
    cam = spec.camera("ego_depth")
    cam.resolution = [0, 0]
    cam.sensor_size = [0, 0]
    cam.focal_length = [0, 0]
    cam.fovy = 58.0
    spec.visual.global_.offwidth = 106
    m = spec.compile()
    d = mujoco.MjData(m)
    d.qpos[:] = env.sim.qpos[0]
    mujoco.mj_forward(m, d)
    with mujoco.Renderer(m, 60, 106) as r:
        r.enable_depth_rendering()
        opt = mujoco.MjvOption()
        opt.geomgroup[:] = 0
        opt.geomgroup[0] = 1
        r.update_scene(d, "ego_depth", scene_option=opt)
        depth = r.render()
    crop = np.clip(depth[:58, 4:102], 0.0, 2.0).astype(np.float32)
    ref = np.asarray(Image.fromarray(crop, mode="F").resize((87, 58), Image.BICUBIC))
    ref = np.round(np.clip(ref / 2.0, 0, 1) * 255.0)
    diff = np.abs(ours - ref)
    assert np.median(diff) <= 3.0, np.median(diff)
    assert diff.mean() < 6.0, diff.mean()
    env.close()


@needs_go2
def test_go2_success_only_at_the_final_step_and_metrics():
    env = _vec(GO2, 1, obs_mode="state", autoreset_mode=AutoresetMode.DISABLED, **QUIET)
    env.reset(seed=0)
    st = env.get_state()
    st.task["cmd_schedule"][0] = 0.0  # stand still, heading 0
    st.task["cmd"][0] = 0.0
    env.set_state(st)
    *_, info = env.step(np.zeros((1, 12), np.float32))
    assert not info["success"][0]
    assert set(info["metrics"]) == {"distance", "vel_tracking_error", "fell"}
    st = env.get_state()
    st.task["t"][0] = env.cfg.max_episode_steps - 1
    st.task["err_sum"][0] = 0.0
    env.set_state(st)
    *_, info = env.step(np.zeros((1, 12), np.float32))
    assert info["success"][0]
    st = env.get_state()
    st.task["t"][0] = env.cfg.max_episode_steps - 1
    st.task["err_sum"][0] = 0.5 * env.cfg.max_episode_steps  # mean tracking error 0.5 m/s > 0.3
    env.set_state(st)
    *_, info = env.step(np.zeros((1, 12), np.float32))
    assert not info["success"][0]
    assert info["metrics"]["vel_tracking_error"][0] > 0.3
    env.close()


@needs_go2
def test_go2_visual_meshes_are_decimated_and_not_seen_by_the_depth_camera():
    from visual_robo_bench.core import lod

    env = _vec(GO2, 1, obs_mode="state")
    m = env.model
    assert lod.drawn_faces(m, (0, 1, 2)) < 20_000  # from 398k
    assert lod.drawn_faces(m, env.cfg.camera("ego_depth").geomgroups) == 0
    robot_groups = {int(m.geom_group[g]) for g in range(m.ngeom) if m.geom_bodyid[g] != 0}
    assert robot_groups.isdisjoint(env.cfg.camera("ego_depth").geomgroups)
    env.close()


@needs_go2
def test_go2_has_no_domain_randomisation_and_flat_ground_is_deterministic():
    a, b = _vec(GO2, 1, obs_mode="state"), _vec(GO2, 1, obs_mode="state")
    for field in ("geom_size", "geom_pos", "geom_friction", "body_mass", "actuator_gainprm", "actuator_biasprm"):
        np.testing.assert_array_equal(getattr(a.model, field), getattr(b.model, field))
    assert not any(f.name == "domain_randomization" for f in __import__("dataclasses").fields(a.cfg))
    a.close()
    b.close()
    # nothing is randomised at reset either: two envs reset with different seeds (0 and 1), then both given env 0's
    # state, follow bit-identical trajectories (per-env model parameters drawn at reset would make them differ)
    env = _vec(GO2, 2, obs_mode="state")
    env.reset(seed=0)
    env.set_state(env.get_state([0, 0]), [0, 1])
    np.testing.assert_array_equal(env.sim.state[0], env.sim.state[1])
    rng = np.random.default_rng(0)
    for _ in range(10):
        act = rng.uniform(-1, 1, (1, 12)).astype(np.float32)
        _, _, te, _, info = env.step(np.repeat(act, 2, axis=0))
        assert not te.any() and not info["physics_error"].any()
    np.testing.assert_array_equal(env.sim.state[0], env.sim.state[1])
    env.close()


# ============================================================================================= G1


@needs_g1
def test_g1_stands_for_one_second_at_default_pose():
    env = _vec(G1, 1, obs_mode="state", **QUIET)
    env.reset(seed=0)
    for _ in range(50):
        _, _, te, _, info = env.step(np.zeros((1, 23), np.float32))
        assert not te[0] and not info["physics_error"][0]
    env.close()


@needs_g1
def test_g1_model_gains_limits_and_integrator():
    env = _vec(G1, 1, obs_mode="state")
    m, c = env.model, env.cfg
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    assert m.nu == 23 and env.single_action_space.shape == (23,)
    np.testing.assert_array_equal(m.actuator_gainprm[:, 0], c.kp)
    np.testing.assert_array_equal(m.actuator_biasprm[:, 2], -np.asarray(c.kd))
    lo, hi = m.actuator_forcerange.T
    np.testing.assert_array_equal(lo, -hi)
    assert hi[c.joints.index("left_knee")] == 139 and hi[c.joints.index("left_elbow")] == 25
    # collision meshes are never drawn, visual meshes are decimated
    from visual_robo_bench.core import lod

    for g in range(m.ngeom):
        if m.geom_bodyid[g] != 0 and (m.geom_contype[g] or m.geom_conaffinity[g]):
            assert m.geom_group[g] == 3
    assert lod.drawn_faces(m, (0, 1, 2)) < 30_000  # from 398k visual + 328k collision faces
    env.close()


@needs_g1
def test_g1_pelvis_contact_and_fall_terminate():
    # bug 23: pelvis or torso contact terminates (height limit disabled here to isolate it)
    env = _vec(G1, 2, obs_mode="state", autoreset_mode=AutoresetMode.DISABLED, min_z=-1.0, **QUIET)
    env.reset(seed=0)
    q0 = env.task.q_default
    _pose(env, 0, pos=(0.2, 0, 0.12), quat=axis_angle_quat((0, 1, 0), -math.pi / 2), joints=q0)  # on its back
    _pose(env, 1, pos=(0.2, 0, 0.8), joints=q0)
    for _ in range(25):
        _, _, te, _, info = env.step(np.zeros((2, 23), np.float32))
        if te[0]:
            break
    assert te[0] and not te[1]
    touching = env.task.contact_norm(env.sim, np.array([0]), ["pelvis_ground", "torso_link_ground"])[0]
    assert touching.max() > 0.0
    assert info["metrics"]["fell"][0] == 1.0
    env.close()
    # the default height limit: a fall below z = 0.6 terminates
    env = _vec(G1, 2, obs_mode="state", autoreset_mode=AutoresetMode.DISABLED, **QUIET)
    env.reset(seed=0)
    _pose(env, 0, pos=(0.2, 0, 0.5), joints=q0)
    _, _, te, *_ = env.step(np.zeros((2, 23), np.float32))
    assert te[0] and not te[1]
    # off the side of the course
    env.reset(seed=0)
    _pose(env, 1, pos=(0.2, 2.6, 0.8), joints=q0)
    _, _, te, *_ = env.step(np.zeros((2, 23), np.float32))
    assert te[1] and not te[0]
    env.close()


@needs_g1
def test_g1_hurdles_are_sane_deterministic_and_counted():
    c = legged.G1HurdleConfig()
    assert c.hurdle_heights.max() <= 0.30 + 1e-12 and c.hurdle_heights.min() >= 0.05 - 1e-12  # bug 12
    np.testing.assert_allclose(c.hurdle_x, np.arange(2, 21, 2))
    a, b = _vec(G1, 1, obs_mode="state"), _vec(G1, 1, obs_mode="state")
    for field in ("geom_size", "geom_pos", "geom_type"):
        np.testing.assert_array_equal(getattr(a.model, field), getattr(b.model, field))
    m = a.model
    h = np.array([m.geom(f"hurdle{i}").size[2] * 2 for i in range(10)])
    np.testing.assert_allclose(h, c.hurdle_heights)
    floor = m.geom("floor")
    assert floor.size[0] >= 25 and floor.size[1] >= 5  # ground everywhere the robot can go
    # metrics and the height scan
    a.reset(seed=0)
    _pose(a, 0, pos=(4.5, 0, 0.8), joints=a.task.q_default)
    *_, info = a.step(np.zeros((1, 23), np.float32))
    assert info["metrics"]["hurdles_cleared"][0] == 2
    _pose(a, 0, pos=(5.0, 0, 0.8), joints=a.task.q_default)
    hs = a.task.height_scan(a.sim, np.array([0]))[0].reshape(15, 9)
    # hurdle 3 (x = 6, h = 0.05 + 0.25 * 2/9) is 1.0 m ahead: scan row x = +1.0 (index 9)
    np.testing.assert_allclose(hs[9], c.hurdle_heights[2], atol=1e-12)
    assert (np.delete(hs, 9, axis=0) == 0).all()
    a.close()
    b.close()


@needs_g1
def test_g1_ego_camera_is_rigid_in_the_torso():
    env = _vec(G1, 1, autoreset_mode=AutoresetMode.DISABLED, **QUIET)
    env.reset(seed=0)
    q0 = env.task.q_default
    _pose(env, 0, pos=(1.0, 0, 0.8), joints=q0)
    ahead = env._observation()["pixels"][0, ..., -3:].astype(int)
    _pose(env, 0, pos=(1.0, 0, 0.8), quat=axis_angle_quat((0, 0, 1), math.pi / 2), joints=q0)
    side = env._observation()["pixels"][0, ..., -3:].astype(int)
    red = lambda img: ((img[..., 0] > 150) & (img[..., 1] < 80)).mean()  # noqa: E731 - hurdle pixels
    assert red(ahead) > 0.01 and red(side) < red(ahead) / 5  # the hurdle leaves the view when yawed
    d = env.sim.data(0)
    cid, tid = env.model.camera("ego").id, env.task.torso_id
    R_local = np.zeros(9)
    mujoco.mju_quat2Mat(R_local, env.model.cam_quat[cid])
    np.testing.assert_allclose(d.cam_xmat[cid].reshape(3, 3), d.xmat[tid].reshape(3, 3) @ R_local.reshape(3, 3),
                               atol=1e-9)
    env.close()
