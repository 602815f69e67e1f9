"""Task-specific tests of VRB/Go2Terrain-v0 (tasks.md 3.11; section 4 items 5, 10, 11, 14, 21, 27)."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import visual_robo_bench  # noqa: F401
from visual_robo_bench.tasks import legged, legged_terrain
from visual_robo_bench.tasks._common import axis_angle_quat
from vrb_helpers import needs_model
from visual_robo_bench.tasks.legged_terrain import GO2_TERRAIN_ID, GridTerrain, Go2TerrainConfig


needs_go2 = needs_model("unitree_go2", "Go2 model unavailable offline")
QUIET = {"joint_noise": 0.0, "spawn_noise": 0.0, "spawn_tilt_deg": 0.0}
COL = {name: Go2TerrainConfig().terrain_types.index(name) for name in legged_terrain.TYPE_CODES if name != "flat"}


def _env(num_envs: int = 1, **kw):
    from visual_robo_bench.envs import VRBVectorEnv

    kw.setdefault("autoreset_mode", AutoresetMode.DISABLED)
    return VRBVectorEnv(GO2_TERRAIN_ID, num_envs=num_envs, **kw)


def _place(env, env_id, level, col, uv=(0.0, 0.0), clearance=0.30, quat=(1, 0, 0, 0), joints=None, z=None):
    """Put env ``env_id`` at rest in sub-terrain (level, col) at local (u, v), ``clearance`` above the ground."""
    terrain = env.task.terrain
    st = env.get_state([env_id])
    ctr = terrain.center(level, col)
    xy = ctr + np.asarray(uv, float)
    st.task["level"][0] = level
    st.task["terrain_type"][0] = col
    st.task["spawn_xy"][0] = ctr
    d = mujoco.MjData(env.model)
    mujoco.mj_setState(env.model, d, st.physics[0], mujoco.mjtState.mjSTATE_INTEGRATION)
    d.qpos[0:2] = xy
    d.qpos[2] = terrain.height(xy[None])[0] + clearance if z is None else z
    d.qpos[3:7] = quat
    d.qpos[env.task.qadr] = env.task.q_default if joints is None else joints
    d.qvel[:] = 0.0
    phys = np.empty(env.sim.nstate)
    mujoco.mj_getState(env.model, d, phys, mujoco.mjtState.mjSTATE_INTEGRATION)
    st.physics[0] = phys
    env.set_state(st, [env_id])


def _ray_heights(model, xy, groups, top=5.0):
    """Heights where vertical rays down through world points ``xy`` first hit geoms of ``groups``."""
    d = mujoco.MjData(model)
    d.qpos[:] = model.qpos0
    d.qpos[2] = 50.0  # the robot far above every ray origin
    mujoco.mj_forward(model, d)
    mask = np.zeros(6, np.uint8)
    mask[list(groups)] = 1
    out = np.empty(len(xy))
    gid = np.zeros(1, np.int32)
    for k, (x, y) in enumerate(xy):
        dist = mujoco.mj_ray(model, d, np.array([x, y, top]), np.array([0.0, 0.0, -1.0]), mask, 1, -1, gid)
        out[k] = top - dist if dist >= 0 else -np.inf
    return out


# ------------------------------------------------------------------------------------ config / terrain


def test_config_dimensions_and_limits():
    c = Go2TerrainConfig()
    assert (c.proprio_dim, c.privileged_dim, c.height_scan_dim) == (900, 48, 81)
    assert c.image_size == (58, 87) and c.camera("ego_depth").depth and c.camera("ego_depth").mode == "fixed"
    assert c.max_episode_steps == 1000 and c.domain_randomization is True
    assert (c.max_roll, c.max_pitch) == (0.8, 1.0)  # item 27
    assert c.hurdle_height[0] + c.hurdle_height[1] <= 0.20  # item 12: Go2 hurdles <= 0.20 m
    assert c.terrain_types == legged_terrain.TERRAIN_TYPES and len(c.terrain_types) == 10
    with pytest.raises(ValueError, match="0.20"):
        Go2TerrainConfig(hurdle_height=(0.05, 0.25))


def test_terrain_is_a_deterministic_function_of_terrain_seed():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = GridTerrain(Go2TerrainConfig()).pieces()
    b = GridTerrain(Go2TerrainConfig()).pieces()
    other = GridTerrain(Go2TerrainConfig(terrain_seed=1)).pieces()
    assert np.array_equal(np.random.get_state()[1], before), "terrain must not touch numpy's global RNG (item 21)"

    def blob(p):
        parts = [np.concatenate([c, h]) for c, h, _ in p.boxes] + [np.concatenate([b, t]).ravel() for b, t in p.lofts]
        parts += [h.ravel() for _, _, _, h, _ in p.hfields]
        return np.concatenate([x.ravel() for x in parts]).tobytes() + p.visual_mesh()[0].tobytes()

    assert blob(a) == blob(b)
    assert blob(a) != blob(other)
    # only the rough ground is random; its heights are +-5 cm in 5 mm steps
    hs = np.concatenate([h.ravel() for _, _, _, h, _ in a.hfields])
    assert len(a.hfields) == 10 and hs.min() >= -0.05 - 1e-12 and hs.max() <= 0.05 + 1e-12
    np.testing.assert_allclose(hs / 0.005, np.round(hs / 0.005), atol=1e-9)
    assert len(np.unique(hs)) > 15


@needs_go2
def test_compiled_terrain_is_byte_identical_across_builds_and_differs_for_another_seed():
    m1, m2 = _env(1, obs_mode="state").model, _env(1, obs_mode="state").model
    m3 = _env(1, obs_mode="state", terrain_seed=7).model
    for field in ("hfield_data", "geom_size", "geom_pos", "mesh_vert", "mesh_face"):
        assert getattr(m1, field).tobytes() == getattr(m2, field).tobytes(), field
    assert m1.hfield_data.tobytes() != m3.hfield_data.tobytes()


@needs_go2
def test_height_function_matches_collision_and_drawn_geometry_and_ground_is_everywhere():
    env = _env(1, obs_mode="state")
    model, terrain = env.model, env.task.terrain
    rng = np.random.default_rng(0)
    # random points of every sub-terrain (not on vertical faces: a step edge is ambiguous)
    pts = []
    for level in (0, 4, 9):
        for col in range(10):
            pts.append(terrain.center(level, col) + rng.uniform(-3.99, 3.99, (12, 2)))
    pts = np.concatenate(pts)
    h = terrain.height(pts)
    eps = 1e-3
    flat_nb = np.abs(terrain.height(pts + [eps, 0]) - h) + np.abs(terrain.height(pts + [0, eps]) - h)
    ok = flat_nb < 0.02  # away from vertical steps
    collision = _ray_heights(model, pts, groups=[3])
    drawn = _ray_heights(model, pts, groups=[0])
    np.testing.assert_allclose(collision[ok], h[ok], atol=2e-5)
    np.testing.assert_allclose(drawn[ok], h[ok], atol=2e-5)
    # every type is represented and the pits go below z = 0
    assert h.min() < -1.0 and h.max() > 1.0
    # ground everywhere: the border and far outside the grid
    far = np.array([[45.0, 0.0], [-60.0, 20.0], [0.0, 75.0], [100.0, -120.0]])
    hit = _ray_heights(model, far, groups=[0, 3])
    assert np.isfinite(hit).all()
    np.testing.assert_allclose(hit[:3], 0.0, atol=1e-6)
    assert hit[3] == pytest.approx(-env.cfg.base_depth)
    env.close()


@needs_go2
def test_terrain_features_follow_level_and_type():
    env = _env(1, obs_mode="state")
    t, c = env.task.terrain, env.cfg
    for level in range(10):
        d = level / 9
        ctr = t.center(level, COL["stairs_up"])
        assert t.height(ctr[None])[0] == pytest.approx(7 * (0.05 + 0.15 * d))
        ctr = t.center(level, COL["stairs_down"])
        assert t.height(ctr[None])[0] == pytest.approx(-7 * (0.05 + 0.15 * d))
        ctr = t.center(level, COL["slope_up"])
        assert t.height(ctr[None])[0] == pytest.approx(0.4 * d * 3.0)
        # slope: 0.4 d per metre along the ramp
        a, b = t.height((ctr + [[2.0, 0.0], [3.0, 0.0]]))
        assert a - b == pytest.approx(0.4 * d)
        ctr = t.center(level, COL["hurdles"])
        ring = t.height(ctr + np.array([[1.4, 0.0], [0.0, -2.2], [3.8, 3.0], [1.8, 0.0]]))
        np.testing.assert_allclose(ring[:3], 0.05 + 0.15 * d)
        assert ring[3] == 0.0
    # the central 2 x 2 m platform is flat on slopes, stairs and hurdles
    g = np.stack(np.meshgrid(np.linspace(-1, 1, 9), np.linspace(-1, 1, 9)), -1).reshape(-1, 2)
    for name in ("slope_up", "slope_down", "stairs_up", "stairs_down", "hurdles"):
        hs = t.height(t.center(9, COL[name]) + g)
        assert np.ptp(hs) < 1e-12, name
    assert c.hurdle_spacing == 0.8
    env.close()


# ------------------------------------------------------------------------------------ robot on terrain


@needs_go2
def test_spawn_on_every_type_and_short_rollout_without_physics_errors():
    env = _env(24, obs_mode="state", privileged=True)
    obs, _ = env.reset(seed=0)
    st, t = env.state, env.task.terrain
    assert len(np.unique(st["terrain_type"])) >= 7 and len(np.unique(st["level"])) >= 6
    xy = env.sim.xpos[:, env.task.base_id, :2]
    ctr = t.center(st["level"][:, 0], st["terrain_type"][:, 0])
    assert np.abs(xy - ctr).max() < 0.03
    g = np.stack(np.meshgrid(np.linspace(-0.5, 0.5, 21), np.linspace(-0.5, 0.5, 21)), -1).reshape(-1, 2)
    top = np.array([t.height(c + g).max() for c in ctr])
    np.testing.assert_allclose(env.sim.qpos[:, 2] - top, 0.42, atol=0.03)
    for _ in range(25):
        _, r, te, tr, info = env.step(np.zeros((24, 12), np.float32))
        assert not info["physics_error"].any()
        assert (r >= 0).all()
    env.close()


@needs_go2
def test_go2_stands_for_one_second_at_default_pose_on_flat_start_ground():
    env = _env(3, obs_mode="state", domain_randomization=False, **QUIET)
    env.reset(seed=0)
    # on the stair-top platform, the bottom of the valley and a hurdle field's platform
    for i, (level, col) in enumerate([(9, COL["stairs_up"]), (9, COL["slope_down"]), (5, COL["hurdles"])]):
        _place(env, i, level, col, clearance=0.42)
    ground = env.task.terrain.height(env.sim.xpos[:, env.task.base_id, :2])
    for _ in range(50):  # 1 s at 50 Hz
        _, _, te, tr, info = env.step(np.zeros((3, 12), np.float32))
        assert not te.any() and not info["physics_error"].any()
    pos, xmat = env.task.base_pose(env.sim, np.arange(3))
    roll, pitch = legged.roll_pitch_of(xmat)
    assert ((pos[:, 2] - ground > 0.25) & (pos[:, 2] - ground < 0.33)).all()
    assert (np.abs(roll) < 0.02).all() and (np.abs(pitch) < 0.02).all()
    env.close()


@needs_go2
def test_fall_terminates_with_the_calibrated_tilt_limits():
    env = _env(4, obs_mode="state", domain_randomization=False, **QUIET)
    env.reset(seed=0)
    lvl, col = 0, COL["hurdles"]
    _place(env, 0, lvl, col, quat=axis_angle_quat((1, 0, 0), 0.9), clearance=0.6)   # rolled past 0.8
    _place(env, 1, lvl, col, quat=axis_angle_quat((0, 1, 0), 1.1), clearance=0.6)   # pitched past 1.0
    _place(env, 2, lvl, col, quat=axis_angle_quat((1, 0, 0), 0.7), clearance=0.6)   # within the limits
    _place(env, 3, lvl, col, quat=axis_angle_quat((0, 1, 0), 0.9), clearance=0.6)
    _, _, te, tr, info = env.step(np.zeros((4, 12), np.float32))
    assert te.tolist() == [True, True, False, False]
    np.testing.assert_array_equal(info["metrics"]["fell"], [1, 1, 0, 0])
    assert not info["success"].any()
    # item 27: standing along the steepest stairs (mean slope atan(0.2 / 0.4) = 27 deg) is no fall,
    # although Go2-v0's 0.4 rad pitch limit would end the episode there
    _place(env, 2, 9, COL["stairs_up"], uv=(2.0, 0.0), quat=axis_angle_quat((0, 1, 0), math.atan(0.2 / 0.4)))
    assert not env.task.failure(env.sim, env.state, np.array([2]))[0]
    assert math.atan(0.2 / 0.4) > legged.Go2Config().max_pitch
    # upside down on the ground: base contact terminates
    env.reset(seed=1)
    _place(env, 0, 3, COL["stairs_down"], quat=axis_angle_quat((1, 0, 0), math.pi), clearance=0.05)
    _, _, te, *_ = env.step(np.zeros((4, 12), np.float32))
    assert te[0] and not te[1:].any()
    assert env.task.contact_norm(env.sim, np.array([0]), ["base_contact"])[0, 0] > 1.0
    env.close()


def _center_depth(env, env_id):
    """Metric depth along the ego camera's optical axis, by ray casting the drawn terrain (group 0)."""
    cid = env.model.camera("ego_depth").id
    d = env.sim.data(env_id)
    mask = np.zeros(6, np.uint8)
    mask[0] = 1
    gid = np.zeros(1, np.int32)
    fwd = -d.cam_xmat[cid].reshape(3, 3)[:, 2]
    return mujoco.mj_ray(env.model, d, d.cam_xpos[cid].copy(), fwd, mask, 1, -1, gid)


@needs_go2
def test_depth_camera_sees_the_terrain():
    env = _env(3, domain_randomization=False, **QUIET)
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (3, 58, 87, 1)  # item 11
    # flat ground (level 0 of the slope column is flat); on the border beyond the last level of a
    # hurdle field, looking back at its outer rings (0.2 m high at level 9); facing stairs up
    yaw_back = axis_angle_quat((0, 0, 1), math.pi)
    _place(env, 0, 0, COL["slope_up"], uv=(0.9, 0.0))
    _place(env, 1, 9, COL["hurdles"], uv=(4.3, 0.0), quat=yaw_back)
    _place(env, 2, 9, COL["stairs_up"], uv=(-3.9, 0.0))
    img = env._observation()["pixels"][..., 0].astype(float) * 2.0 / 255.0
    flat, hurdle, stairs = img
    # flat ground: nearer at the bottom of the image, symmetric; optical-axis depth as ray-cast
    assert flat[-1].mean() < flat[0].mean()
    np.testing.assert_allclose(flat[:, :20], flat[:, -20:][:, ::-1], atol=0.02)
    for i in range(3):
        assert abs(img[i, 28:30, 43].mean() - min(_center_depth(env, i), 2.0)) < 0.04, i
    # the hurdles and the stairs make parts of the image nearer than flat ground, never farther
    assert (hurdle < flat - 0.1).sum() > 100
    assert (stairs < flat - 0.1).sum() > 300
    assert not (hurdle > flat + 0.05).any() and not (stairs > flat + 0.05).any()
    # the camera is rigid in the base (item 10): yawed 90 degrees left (facing +y) at the same spot,
    # the rings are on the left of the image and the right half sees the flat border
    _place(env, 1, 9, COL["hurdles"], uv=(4.3, 0.0), quat=axis_angle_quat((0, 0, 1), math.pi / 2))
    img2 = env._observation()["pixels"][1, ..., 0].astype(float) * 2.0 / 255.0
    np.testing.assert_allclose(img2[:, 50:], flat[:, 50:], atol=0.02)
    assert (img2[:, :36] < flat[:, :36] - 0.1).sum() > 50
    d = env.sim.data(1)
    cid = env.model.camera("ego_depth").id
    R_local = np.zeros(9)
    mujoco.mju_quat2Mat(R_local, env.model.cam_quat[cid])
    np.testing.assert_allclose(d.cam_xmat[cid].reshape(3, 3),
                               d.xmat[env.task.base_id].reshape(3, 3) @ R_local.reshape(3, 3), atol=1e-9)
    env.close()


@needs_go2
def test_history_starts_full_of_the_first_observation_and_shifts_every_step():
    env = _env(2, privileged=True)
    obs, _ = env.reset(seed=3)
    hist = obs["proprio"].reshape(2, 20, 45)
    actor = obs["privileged"][:, 3:]
    assert np.abs(actor).sum(axis=1).min() > 0.1  # item 5: not zeros
    for i in range(2):
        np.testing.assert_array_equal(hist[i], np.repeat(actor[i][None], 20, axis=0))
    np.testing.assert_array_equal(obs["proprio"], env.observe()["proprio"])
    prev = [actor]
    rng = np.random.default_rng(0)
    for k in range(3):
        a = rng.uniform(-0.3, 0.3, (2, 12)).astype(np.float32)
        obs, *_ = env.step(a)
        hist = obs["proprio"].reshape(2, 20, 45)
        actor = obs["privileged"][:, 3:]
        np.testing.assert_array_equal(hist[:, -1], actor)
        np.testing.assert_array_equal(hist[:, -1, -12:], a)  # the last action a_t
        for back, p in enumerate(reversed(prev), start=2):
            np.testing.assert_array_equal(hist[:, -back], p)
        np.testing.assert_array_equal(hist[:, 0], prev[0])
        prev.append(actor)
    env.close()


@needs_go2
def test_height_scan_is_the_rotated_grid_of_terrain_heights():
    env = _env(1, obs_mode="state", privileged=True)
    env.reset(seed=0)
    yaw = 0.6
    _place(env, 0, 9, COL["hurdles"], uv=(1.0, 0.3), quat=axis_angle_quat((0, 0, 1), yaw))
    scan = env.observe()["height_scan"][0]
    pos = env.sim.xpos[0, env.task.base_id]
    g = (np.arange(9) - 4) * 0.1
    lx, ly = np.meshgrid(g, g, indexing="ij")
    wx = pos[0] + math.cos(yaw) * lx - math.sin(yaw) * ly
    wy = pos[1] + math.sin(yaw) * lx + math.cos(yaw) * ly
    h = _ray_heights(env.model, np.stack([wx.ravel(), wy.ravel()], 1), groups=[3])
    expected = np.clip(pos[2] - 0.5 - h, -1.0, 1.0) * 5.0
    np.testing.assert_allclose(scan, expected, atol=1e-4)
    assert np.ptp(h) > 0.15  # the scan sees the 0.2 m ring
    env.close()


# ------------------------------------------------------------------------------------ reward / success


@needs_go2
def test_reward_terms_are_the_terrain_table_and_clipped_at_zero():
    env = _env(4)
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    seen_negative_sum = False
    for _ in range(15):
        _, r, te, tr, info = env.step(rng.uniform(-1, 1, (4, 12)).astype(np.float32))
        terms = info["reward_terms"]
        assert "base_height" not in terms and "hip_pos" in terms and "clip_negative" in terms
        np.testing.assert_array_equal(r, sum(terms.values()))
        assert (r >= -1e-12).all()
        raw = r - terms["clip_negative"]
        seen_negative_sum |= bool((raw < 0).any())
        assert (terms["hip_pos"] <= 0).all()
    assert seen_negative_sum  # random actions do produce negative sums, and they are clipped
    env.close()


@needs_go2
def test_success_when_walked_four_metres_and_not_fallen():
    env = _env(3, obs_mode="state", domain_randomization=False, **QUIET)
    env.reset(seed=0)
    level, col = 9, COL["hurdles"]
    _place(env, 0, level, col, uv=(0.0, 0.0))
    ctr = env.task.terrain.center(level, col)
    for i, quat in ((1, (1, 0, 0, 0)), (2, axis_angle_quat((1, 0, 0), math.pi))):
        _place(env, i, level, col, uv=(4.5, 0.0), quat=quat, clearance=0.30 if i == 1 else 0.05)
    st = env.state
    np.testing.assert_allclose(st["spawn_xy"], np.repeat(ctr[None], 3, 0))
    _, _, te, tr, info = env.step(np.zeros((3, 12), np.float32))
    m = info["metrics"]
    assert info["success"].tolist() == [False, True, False]
    assert te.tolist() == [False, False, True]
    assert m["distance"][1] == pytest.approx(4.5, abs=0.05)
    assert m["hurdles_cleared"].tolist() == [0.0, 4.0, 4.0]  # all four rings crossed
    env.close()


# ------------------------------------------------------------------------------------ randomisation


DR_FIELDS = {
    "friction_scale": lambda v: v * 0 + 0.2,
    "added_mass": lambda v: v * 0 + 3.0,
    "com_offset": lambda v: v * 0 + 0.01,
    "kp_scale": lambda v: v * 0 + 0.8,
    "kd_scale": lambda v: v * 0 + 1.2,
    "motor_offset": lambda v: v * 0 + 0.02,
}


@needs_go2
def test_domain_randomisation_is_drawn_stored_and_applied():
    env = _env(4, obs_mode="state")
    env.reset(seed=0)
    st, c, task = env.state, env.cfg, env.task
    for name, (lo, hi) in (("friction_scale", c.friction_scale), ("added_mass", c.added_base_mass),
                           ("kp_scale", c.kp_scale), ("kd_scale", c.kd_scale)):
        v = st[name][:, 0]
        assert (v >= lo).all() and (v <= hi).all() and len(np.unique(v)) == 4, name
    assert np.abs(st["com_offset"]).max() <= 0.01 and np.abs(st["motor_offset"]).max() <= 0.02
    assert np.abs(st["push_schedule"]).max() <= 1.0 and np.abs(st["push_schedule"]).min() > 0
    # the model arrays of each env hold its parameters
    sim, b = env.sim, task.base_id
    np.testing.assert_allclose(sim.expand("body_mass")[:, b], task.nominal_mass + st["added_mass"][:, 0])
    np.testing.assert_allclose(sim.expand("body_ipos")[:, b], task.nominal_ipos + st["com_offset"])
    full = (4, 12)
    np.testing.assert_allclose(sim.expand("actuator_gainprm")[:, :, 0], np.broadcast_to(30.0 * st["kp_scale"], full))
    np.testing.assert_allclose(sim.expand("actuator_biasprm")[:, :, 1], np.broadcast_to(-30.0 * st["kp_scale"], full))
    np.testing.assert_allclose(sim.expand("actuator_biasprm")[:, :, 2], np.broadcast_to(-1.5 * st["kd_scale"], full))
    foot = env.model.geom("FL").id
    np.testing.assert_allclose(sim.expand("geom_friction")[:, foot, 0], 0.8 * st["friction_scale"][:, 0])
    assert (env.model.geom_friction[foot, 0] == 0.8)  # the shared model keeps the nominal value
    # targets include the motor offsets
    a = np.full((4, 12), 0.2, np.float32)
    env.step(a)
    np.testing.assert_allclose(sim.ctrl, task.q_default + 0.5 * 0.2 + st["motor_offset"], rtol=0, atol=1e-6)
    env.close()


@needs_go2
@pytest.mark.parametrize("field", sorted(DR_FIELDS) + ["push_schedule"])
def test_each_randomised_field_changes_the_dynamics(field):
    env = _env(2, obs_mode="state")
    env.reset(seed=0)
    _place(env, 0, 0, COL["slope_up"])  # flat ground
    env.set_state(env.get_state([0, 0]), [0, 1])  # two identical envs
    st = env.get_state([1])
    if field == "push_schedule":
        both = env.get_state([0, 1])
        both.task["t"][:] = env.cfg.push_interval  # the first push is due at the next step
        both.task["push_schedule"][1] = -both.task["push_schedule"][0]
        env.set_state(both, [0, 1])
    else:
        st.task[field][0] = DR_FIELDS[field](st.task[field][0])
        env.set_state(st, [1])
        assert not np.array_equal(env.state[field][0], env.state[field][1])
    rng = np.random.default_rng(0)
    for _ in range(10):
        a = rng.uniform(-1, 1, (1, 12)).astype(np.float32)
        env.step(np.repeat(a, 2, axis=0))
    assert np.abs(env.sim.qpos[0] - env.sim.qpos[1]).max() > 1e-4, field
    env.close()


@needs_go2
def test_identical_parameters_give_identical_dynamics_and_dr_off_is_nominal():
    env = _env(2, obs_mode="state")
    env.reset(seed=0)
    env.set_state(env.get_state([1, 1]), [0, 1])  # clone env 1 (its own DR values) into env 0
    rng = np.random.default_rng(0)
    for _ in range(10):
        a = rng.uniform(-1, 1, (1, 12)).astype(np.float32)
        env.step(np.repeat(a, 2, axis=0))
    np.testing.assert_array_equal(env.sim.state[0], env.sim.state[1])
    env.close()

    off = _env(2, obs_mode="state", domain_randomization=False)
    off.reset(seed=0)
    st = off.state
    np.testing.assert_array_equal(st["friction_scale"], 1.0)
    np.testing.assert_array_equal(st["kp_scale"], 1.0)
    np.testing.assert_array_equal(st["kd_scale"], 1.0)
    for name in ("added_mass", "com_offset", "motor_offset", "push_schedule"):
        np.testing.assert_array_equal(st[name], 0.0)
    a = np.full((2, 12), 0.2, np.float32)
    both = off.get_state([0, 1])
    both.task["t"][:] = off.cfg.push_interval
    off.set_state(both, [0, 1])
    qvel = off.sim.qvel.copy()
    off.task.apply_action(off.sim, off.state, a, np.arange(2))
    np.testing.assert_array_equal(off.sim.qvel, qvel)  # no push
    np.testing.assert_allclose(off.sim.ctrl, np.broadcast_to(off.task.q_default + 0.1, (2, 12)), rtol=0, atol=1e-6)
    m = off.model
    assert m.body_mass[off.task.base_id] == off.task.nominal_mass
    np.testing.assert_array_equal(m.actuator_gainprm[:, 0], 30.0)
    off.close()


@needs_go2
def test_partial_reset_keeps_the_other_envs_parameters():
    env = _env(3, obs_mode="state")
    env.reset(seed=0)
    mass = env.sim.expand("body_mass")[:, env.task.base_id].copy()
    old = env.state["added_mass"][:, 0].copy()
    env.reset(options={"reset_mask": np.array([True, False, False])})
    new = env.sim.expand("body_mass")[:, env.task.base_id]
    assert new[0] != mass[0] and env.state["added_mass"][0, 0] != old[0]
    np.testing.assert_array_equal(new[1:], mass[1:])
    np.testing.assert_allclose(new, env.task.nominal_mass + env.state["added_mass"][:, 0])
    env.close()


@needs_go2
def test_the_curriculum_record_is_task_state_and_moves_with_a_clone():
    """tasks.md 2.4: everything a reset depends on is cloneable state. The curriculum's record of the last
    episode (read by the next reset) is a task-state field kept across resets, so a clone continues with its
    source's record, and set_state followed by reset() picks the source's next level."""
    env = _env(2, obs_mode="state", domain_randomization=False, curriculum=True, **QUIET)
    assert env.task.carried_state == ("last_episode",)
    env.reset(seed=0)
    for i, (level, uv) in enumerate(((5, (0.1, 0.0)), (1, (4.5, 0.0)))):  # env 0 barely moves, env 1 walks 4.5 m
        _place(env, i, level, 0, uv=uv, clearance=0.6 if uv[0] > 1 else 0.35)
    env.step(np.zeros((2, 12), np.float32))
    record = env.state["last_episode"].copy()
    assert record[:, 0].tolist() == [1.0, 1.0] and record[:, 1].tolist() == [5.0, 1.0]
    env.set_state(env.get_state([1]), [0])  # env 0 becomes a clone of env 1, record included
    np.testing.assert_array_equal(env.state["last_episode"][0], record[1])
    env.reset(options={"reset_mask": np.array([True, False])})
    assert env.state["level"][0, 0] == 2  # env 1's record (level 1, walked 4.5 m): one level up, not 5 - 1
    np.testing.assert_array_equal(env.state["last_episode"][0], record[1])  # carried across the reset
    env.close()


@needs_go2
def test_curriculum_moves_levels_up_and_down():
    env = _env(2, obs_mode="state", domain_randomization=False, curriculum=True, **QUIET)
    env.reset(seed=0)
    start = env.state["level"][:, 0].copy()
    assert set(start.tolist()) <= {0, 1}
    c, episode_s = env.task.cfg, env.task.max_episode_steps * env.task.cfg.control_dt
    for r in range(3):
        level = env.state["level"][:, 0].copy()
        col = env.state["terrain_type"][:, 0].copy()
        if r == 0:
            level[1] = 3  # env 1 starts high enough to drop a level every round (3 -> 2 -> 1 -> 0): the "down" branch
        assert level[1] >= 1  # a drop from level 0 would be invisible
        # barely moving is below the "down" threshold (a fraction of the distance the commands asked for)
        assert 0.1 < c.curriculum_down_fraction * env.state["cmd_schedule"][1, :, 0].mean() * episode_s
        _place(env, 0, level[0], col[0], uv=(4.5, 0.0), clearance=0.6)  # walked 4.5 m
        _place(env, 1, level[1], col[1], uv=(0.1, 0.0), clearance=0.35)  # barely moved
        assert env.state["level"][1, 0] == level[1]  # the placement set the level the curriculum reads
        env.step(np.zeros((2, 12), np.float32))
        env.reset()
        assert env.state["level"][0, 0] == level[0] + 1
        assert env.state["level"][1, 0] == max(level[1] - 1, 0)
        assert env.state["level"][1, 0] == level[1] - 1  # exactly one level down
    assert env.state["level"][1, 0] == 0
    # the default (and the evaluation protocol) draws levels uniformly
    from visual_robo_bench.evaluation.harness import protocol_for

    assert protocol_for(GO2_TERRAIN_ID).env_kwargs == {"domain_randomization": False, "curriculum": False}
    assert "last_episode" not in env.state.keys() or env.task.cfg.curriculum
    plain = _env(40, obs_mode="state")
    plain.reset(seed=0)
    assert plain.state["level"].max() >= 7
    plain.close()
    env.close()
