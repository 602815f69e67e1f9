"""Task-specific checks that pin the upstream bugs VRB fixes (tasks.md section 4)."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import visual_robo_bench
from vrb_helpers import check_frame_stack_round_trip


def test_hopper_keeps_armature_and_damping():
    env = gym.make_vec("VRB/Hopper-v1", num_envs=1, obs_mode="state")
    m = env.unwrapped.model
    for name in ("thigh_joint", "leg_joint", "foot_joint"):
        j = m.joint(name)
        assert m.dof_armature[j.dofadr[0]] == 1.0 and m.dof_damping[j.dofadr[0]] == 1.0
    assert m.opt.timestep == 0.005
    env.close()


@pytest.mark.parametrize("task_id", ["VRB/Hopper-v1", "VRB/Hopper-v0"])
def test_hopper_height_is_measured_from_the_spawn_and_a_fall_terminates(task_id):
    """tasks.md 3.1: h = z_torso - 1.25 (privileged[0], the height term and the fall condition h < -0.45).
    The deprecated v0 measured the absolute torso height: its fallen hopper neither terminated nor lost reward."""
    from visual_robo_bench.core.sim import state_columns

    env = gym.make_vec(task_id, num_envs=2, obs_mode="state", privileged=True)
    obs, _ = env.reset(seed=0)
    venv = env.unwrapped
    z = venv.sim.xpos[:, venv.task.torso_id, 2]
    h = obs["privileged"][:, 0]
    np.testing.assert_allclose(h, z - 1.25 if task_id.endswith("v1") else z, atol=1e-6)
    state = env.get_state()
    # env 1: the torso lying at z = 0.3 (rootz's qpos is the torso z: body at 1.25, slide reference 1.25)
    state.physics[1, state_columns(venv.model, mujoco.mjtState.mjSTATE_QPOS, [venv.task.i_z])] = 0.3
    env.set_state(state.take([1]), [1])
    _, _, terminated, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
    fell = task_id.endswith("v1")
    assert terminated.tolist() == [False, fell]
    assert (info["reward_terms"]["height"][1] < 0) == fell  # d = clip(h + 0.3) < 0: -200 d^2
    env.close()


@pytest.mark.parametrize("task_id,limit", [("VRB/Ant-v1", 150.0)])
def test_symmetric_torque_limits(task_id, limit):
    forces = []
    for sign in (1.0, -1.0):
        env = gym.make_vec(task_id, num_envs=1, obs_mode="state")
        env.reset(seed=0)
        env.step(np.full(env.action_space.shape, sign, np.float32))
        venv = env.unwrapped
        # joint torque = actuator force (the ctrl) x gear
        forces.append(venv.sim.actuator_force[0] * venv.model.actuator_gear[:, 0])
        env.close()
    np.testing.assert_allclose(forces[0], -forces[1])
    np.testing.assert_allclose(np.abs(forces[0]), limit)


@pytest.mark.parametrize("task_id", ["VRB/Ant-v1", "VRB/Humanoid-v0"])
def test_up_uses_body_z_axis(task_id):
    env = gym.make_vec(task_id, num_envs=2, obs_mode="state")
    env.reset(seed=0)
    venv = env.unwrapped
    q = venv.sim.qpos
    q[0, 3:7] = [1, 0, 0, 0]
    q[1, 3:7] = [np.cos(np.pi / 4), np.sin(np.pi / 4), 0, 0]  # 90 degree roll
    venv.sim.forward(np.arange(2))
    up = venv.task.up(venv.sim, np.arange(2))
    np.testing.assert_allclose(up, [1.0, 0.0], atol=1e-9)
    env.close()


def test_walker_hurdles_are_sane_and_ground_everywhere():
    cfg = visual_robo_bench.get_task("VRB/WalkerHurdle-v1").config
    assert cfg.hurdle_heights.max() <= 0.35
    env = gym.make_vec("VRB/WalkerHurdle-v1", num_envs=1, obs_mode="state")
    m = env.unwrapped.model
    floor = m.geom("floor")
    assert m.geom_size[floor.id][0] >= 20 and m.geom_size[floor.id][1] >= 5
    env.close()


def test_walker_hurdle_height_scan_sees_hurdles():
    env = gym.make_vec("VRB/WalkerHurdle-v1", num_envs=1, obs_mode="state")
    obs, _ = env.reset(seed=0)
    scan = obs["height_scan"][0]
    cfg = env.unwrapped.cfg
    # the hurdles at x=2 and x=4 are within +5 m of the spawn, the one at x=6 is not
    assert scan.shape == (36,)
    assert np.isclose(scan.max(), cfg.hurdle_heights[:2].max(), atol=1e-6)
    env.close()


def test_ego_camera_rotates_with_torso():
    env = gym.make_vec("VRB/WalkerHurdle-v1", num_envs=2, autoreset_mode="DISABLED")
    obs, _ = env.reset(seed=0)
    venv = env.unwrapped
    st = venv.get_state([0, 0])
    pitch = venv.task.i_pitch
    venv.sim.state  # noqa: B018
    st.physics[1, 1 + pitch] += 0.5  # state row: time, then qpos
    venv.set_state(st, [0, 1])
    cam = venv.model.camera("ego").id
    xmat = venv.sim.cam_xmat[:, cam]
    assert not np.allclose(xmat[0], xmat[1])
    obs = venv._observation()
    assert not np.array_equal(obs["pixels"][0], obs["pixels"][1])
    env.close()


def test_success_predicate_fires_past_goal():
    env = gym.make_vec("VRB/Walker-v1", num_envs=2, obs_mode="state", autoreset_mode="DISABLED")
    env.reset(seed=0)
    venv = env.unwrapped
    st = venv.get_state()
    st.physics[1, 1 + venv.task.i_x] += 10.5  # teleport env 1 10.5 m forward
    venv.set_state(st)
    *_, info = env.step(np.zeros(env.action_space.shape, np.float32))
    assert not info["success"][0] and info["success"][1]
    assert info["metrics"]["distance"][1] > 10
    env.close()


def test_seeds_give_different_episodes():
    env = gym.make_vec("VRB/Walker-v1", num_envs=2, obs_mode="state")
    obs, _ = env.reset(seed=0)
    assert not np.array_equal(obs["privileged"][0], obs["privileged"][1])
    env.close()


def test_mujoco_state_spec_is_integration():
    from visual_robo_bench.core.sim import STATE_SPEC

    assert STATE_SPEC == mujoco.mjtState.mjSTATE_INTEGRATION


def test_per_env_model_parameters_change_dynamics():
    from visual_robo_bench.core.sim import BatchSim

    env = gym.make_vec("VRB/Walker-v1", num_envs=2, obs_mode="state", autoreset_mode="DISABLED")
    env.reset(seed=0)
    venv = env.unwrapped
    venv.set_state(venv.get_state([0, 0]), [0, 1])
    sim: BatchSim = venv.sim
    mass = sim.expand("body_mass")
    mass[1, venv.task.torso_id] *= 3.0
    sim.set_const([1])
    for _ in range(5):
        env.step(np.full(env.action_space.shape, 0.5, np.float32))
    q = sim.qpos
    assert not np.allclose(q[0], q[1])
    env.close()


def test_state_columns_locate_state_entries():
    from visual_robo_bench.core.sim import BatchSim, state_columns

    model = gym.make_vec("VRB/Walker-v1", num_envs=1, obs_mode="state").unwrapped.model
    sim = BatchSim(model, 3, nthread=1)
    sim.state[:] = np.random.default_rng(0).normal(size=sim.state.shape)
    for comp, field in ((mujoco.mjtState.mjSTATE_QPOS, sim.qpos), (mujoco.mjtState.mjSTATE_QVEL, sim.qvel),
                        (mujoco.mjtState.mjSTATE_CTRL, sim.ctrl)):
        idx = np.arange(field.shape[1])[::-1]
        np.testing.assert_array_equal(sim.state[:, state_columns(model, comp, idx)], field[:, idx])
    with pytest.raises(ValueError, match="one mjtState component"):
        state_columns(model, mujoco.mjtState.mjSTATE_QPOS | mujoco.mjtState.mjSTATE_QVEL, [0])
    with pytest.raises(ValueError, match="out of range"):
        state_columns(model, mujoco.mjtState.mjSTATE_QPOS, [model.nq])


def test_batchsim_flags_every_physics_error_once():
    """Each blow-up flags its own row at the step where it happens, also repeated ones and in subset steps."""
    from visual_robo_bench.core.sim import BatchSim

    model = gym.make_vec("VRB/Walker-v1", num_envs=1, obs_mode="state").unwrapped.model
    sim = BatchSim(model, 3, nthread=1)
    for ids, row in ((None, 1), (None, 1), (np.array([0, 2]), 2), (None, 0)):
        sim.qvel[row] = 1e12  # MuJoCo warns and resets that simulation
        bad = sim.step(ids, 2)
        stepped = np.arange(3) if ids is None else ids
        np.testing.assert_array_equal(bad, stepped == row)
        assert not sim.step(None, 2).any()


def test_gather_equals_fancy_indexing():
    from visual_robo_bench.core.sim import gather

    a = np.random.default_rng(0).normal(size=(7, 5))
    for rows, cols in (([6, 0, 3, 3], [4, 1]), (np.arange(7), [0, 2, 4]), ([], [1]), ([2], [])):
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        out = gather(a, rows, cols)
        np.testing.assert_array_equal(out, a[rows[:, None], cols])
        assert out.shape == (len(rows), len(cols)) and not np.shares_memory(out, a)


def test_lazy_forward_after_state_writes():
    """reset/set_state only mark rows; a derived-field read runs the forward pass, and a step without one
    is bit-identical to a step after one (a step starts from the state row alone)."""
    from visual_robo_bench.core.sim import BatchSim

    model = gym.make_vec("VRB/Walker-v1", num_envs=1, obs_mode="state").unwrapped.model
    lazy, eager = BatchSim(model, 2, nthread=1), BatchSim(model, 2, nthread=1)
    for sim in (lazy, eager):
        sim.ctrl[:] = 0.3
        sim.step(None, 5)
    row = lazy.state[0].copy()
    row[1 + 2] += 0.2  # qpos[2]: the torso pitch
    lazy.set_state(row[None], [1])
    eager.set_state(row[None], [1])
    eager.forward(np.array([1]))
    ref = mujoco.MjData(model)
    mujoco.mj_setState(model, ref, row, mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(model, ref)
    np.testing.assert_array_equal(lazy.xpos[1], ref.xpos)  # the read ran the pending forward pass
    lazy.set_state(row[None], [0])
    lazy.step(None, 3)  # no read in between: the step alone
    eager.set_state(row[None], [0])
    eager.forward(np.array([0]))
    eager.step(None, 3)
    np.testing.assert_array_equal(lazy.state, eager.state)
    np.testing.assert_array_equal(lazy.xpos, eager.xpos)


@pytest.mark.parametrize("task_id", ["VRB/Walker-v1", "VRB/Hopper-v1"])
def test_planar_reset_noise_is_uniform_per_env(task_id):
    """Env i's initial joints are qpos0 + U(-reset_noise, reset_noise) drawn from its own generator (seed + i)."""
    env = gym.make_vec(task_id, num_envs=3, obs_mode="state")
    env.reset(seed=7)
    venv = env.unwrapped
    x, m = venv.cfg.reset_noise, venv.model
    want = m.qpos0 + np.stack([np.random.default_rng(7 + i).uniform(-x, x, m.nq) for i in range(3)])
    np.testing.assert_array_equal(venv.sim.qpos, want)
    env.close()


def test_frame_stack_round_trip_on_cpu():
    """get_frame_stacks/set_frame_stacks on the CPU (numpy) path: zeroing reaches the env, restoring gives the saved
    stacks back, and the restored stacks then evolve exactly as the uninterrupted ones (a twin env stepped alike)."""
    from visual_robo_bench.envs import VRBVectorEnv

    kw = dict(num_envs=2, image_size=(36, 36))
    env, twin = VRBVectorEnv("VRB/Walker-v1", **kw), VRBVectorEnv("VRB/Walker-v1", **kw)
    try:
        assert env.cfg.frame_stack > 1  # older frames are carried over by a step, so a bad restore would show
        env.reset(seed=0)
        twin.reset(seed=0)
        rng = np.random.default_rng(0)
        acts = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(4)]
        for a in acts[:3]:
            env.step(a)
            twin.step(a)
        stacks = check_frame_stack_round_trip(env, np.zeros_like, np.array_equal)
        assert all(isinstance(s, np.ndarray) for s in stacks)
        for s, t in zip(stacks, twin.get_frame_stacks(), strict=True):
            np.testing.assert_array_equal(s, t)  # the twin is a faithful reference
        obs, *_ = env.step(acts[3])
        ref, *_ = twin.step(acts[3])
        assert obs.keys() == ref.keys()
        for k in ref:
            np.testing.assert_array_equal(obs[k], ref[k], err_msg=k)
        for r, s in zip(env.get_frame_stacks(), twin.get_frame_stacks(), strict=True):
            np.testing.assert_array_equal(r, s)
    finally:
        env.close()
        twin.close()


@pytest.mark.parametrize("limit", [None, 5, 260])
def test_single_env_truncates_where_gymnasiums_time_limit_says(limit):
    """gym.make(id, max_episode_steps=N) truncates at N, also beyond the task's 250 steps (the single env leaves
    truncation to the TimeLimit wrapper, as a batch of one with max_episode_steps=N would truncate at N)."""
    kwargs = {} if limit is None else {"max_episode_steps": limit}
    env = gym.make("VRB/AlohaInsertion-v0", obs_mode="state", **kwargs)
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(zero)
        steps += 1
    assert (steps, terminated, truncated) == (limit or 250, False, True)
    env.close()


def test_single_env_action_errors_name_the_single_shape():
    env = gym.make("VRB/Walker-v1", obs_mode="state")
    env.reset(seed=0)
    for bad in (np.zeros(6, np.int64), np.zeros((1, 6), np.float32)):
        with pytest.raises(ValueError, match=r"real array of shape \(6,\) \(float32, float64"):
            env.step(bad)
    env.close()


def test_render_with_no_policy_images_shows_every_env():
    env = gym.make_vec("VRB/Walker-v1", num_envs=3, render_env_ids=[], render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape[0] == 0  # nothing is rendered for the policy
    frames = env.render()
    assert type(frames) is tuple and len(frames) == 3  # one per env, as Gymnasium's vector envs
    assert all(f.shape == (*env.unwrapped.cfg.render_size, 3) and f.std() > 1 for f in frames)
    env.close()


@pytest.mark.parametrize("task_id, rgba", [("VRB/Hopper-v1", (0.8, 0.6, 0.4, 1.0)), ("VRB/Ant-v1", (0.8, 0.6, 0.4, 1.0)),
                                           ("VRB/Walker-v1", (0.5, 0.5, 0.5, 1.0)),
                                           ("VRB/Humanoid-v0", (0.5, 0.5, 0.5, 1.0))])
def test_floor_colour_of_released_ids_is_pinned(task_id, rgba):
    """Pixels are part of a version: Hopper's and Ant's floors keep the tint their robot file's default geom
    colour gives them (as their docstrings say); the others show the checker material's own colours."""
    env = gym.make_vec(task_id, num_envs=1, obs_mode="state")
    model = env.unwrapped.model
    np.testing.assert_allclose(model.geom("floor").rgba, rgba)
    assert ("tinted" in (env.unwrapped.task.__doc__ or "")) == (rgba[0] == 0.8)
    env.close()
