"""Tests parametrized over the task registry: API contracts every task must meet."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from vrb_helpers import slide_task_module

import visual_robo_bench
from visual_robo_bench.envs import VRBVectorEnv



def make_vec(task_id: str, num_envs: int = 2, **kwargs):
    """A native vector env (closed by the caller)."""
    return gym.make_vec(task_id, num_envs=num_envs, **kwargs)


def rollout(env, actions):
    """Step ``env`` through ``actions``; return the per-step outputs."""
    out = []
    for a in actions:
        obs, r, te, tr, info = env.step(a)
        out.append((obs, r, te, tr, info))
    return out


def random_actions(env, steps, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [scale * rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(steps)]


def test_registry_max_episode_steps_matches_config(task_id):
    spec = gym.spec(task_id)
    entry = visual_robo_bench.get_task(task_id)
    assert spec.max_episode_steps == entry.config.max_episode_steps
    assert isinstance(entry.config.max_episode_steps, int)
    assert spec.vector_entry_point is not None


def test_registry_kwargs_hold_the_task_config(task_id):
    """conventions.md 1: the registered kwargs hold the frozen config's defaults (registry tools see the task's
    definition); gym.make with them builds exactly that config, and the spec stays JSON-serialisable."""
    spec = gym.spec(task_id)
    cfg = visual_robo_bench.get_task(task_id).config
    kw = spec.kwargs
    assert kw["task_id"] == task_id and kw["cameras"] == cfg.policy_cameras and kw["image_size"] == cfg.image_size
    assert kw["render_profile"] == dataclasses.asdict(cfg.render_profile)
    for name in ("timestep", "substeps", "frame_stack", "proprio_dim", "privileged_dim"):
        assert kw[name] == getattr(cfg, name), name
    assert json.loads(spec.to_json())["kwargs"]["task_id"] == task_id
    env = gym.make_vec(task_id, num_envs=1, obs_mode="state")
    assert env.unwrapped.cfg == cfg
    env.close()
    env = gym.make_vec(task_id, num_envs=1, obs_mode="state", frame_stack=2, render_profile={"shadows": True})
    assert (env.unwrapped.cfg.frame_stack, env.unwrapped.cfg.render_profile.shadows) == (2, True)
    env.close()


def test_gymnasium_check_env(task_id):
    env = gym.make(task_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=UserWarning)
        # Gymnasium's heuristic for unbounded vectors (its own MuJoCo envs trigger it too)
        warnings.filterwarnings("ignore", message=".*Box observation space (minimum|maximum) value is .*infinity")
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_sb3_check_env(task_id):
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    env = gym.make(task_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_checker.check_env(env, warn=True, skip_render_check=True)
    messages = [str(w.message) for w in caught if "stable_baselines3" in (w.filename or "")]
    assert not messages, messages
    env.close()


def test_pixels_shape_dtype_and_content(task_id):
    env = make_vec(task_id, num_envs=2)
    obs, _ = env.reset(seed=0)
    cfg = env.unwrapped.cfg
    h, w = cfg.image_size
    c = 1 if cfg.camera(cfg.policy_cameras[0]).depth else 3  # channels per frame: depth or RGB
    assert obs["pixels"].dtype == np.uint8
    assert obs["pixels"].shape == (2, h, w, c * cfg.frame_stack)
    assert env.observation_space["pixels"].contains(obs["pixels"])
    assert obs["proprio"].dtype == np.float32 and obs["proprio"].shape == (2, cfg.proprio_dim)
    frame = obs["pixels"][0, ..., :c]
    assert frame.std() > 5, "image is (nearly) uniform"
    assert len(np.unique(frame.reshape(-1, c), axis=0)) > 20
    # frame stack filled with the first frame on reset
    assert np.array_equal(obs["pixels"][..., :c], obs["pixels"][..., -c:])
    obs2, *_ = env.step(np.zeros(env.action_space.shape, np.float32))
    assert np.array_equal(obs2["pixels"][..., :-c], obs["pixels"][..., c:])
    env.close()


def test_reset_and_step_determinism(task_id):
    outs = []
    for _ in range(2):
        env = make_vec(task_id, num_envs=2)
        obs, _ = env.reset(seed=123)
        steps = rollout(env, random_actions(env, 15, seed=4))
        outs.append((obs, steps))
        env.close()
    (o1, s1), (o2, s2) = outs
    for k in o1:
        assert np.array_equal(o1[k], o2[k]), k
    for a, b in zip(s1, s2):
        for k in a[0]:
            assert np.array_equal(a[0][k], b[0][k]), k
        assert np.array_equal(a[1], b[1])


def assert_same_obs(single, batched, what):
    """Vectors bit-exact; images equal up to llvmpipe's viewport-offset rasterization noise.

    A batch draws env i into tile i of one framebuffer, a single env into tile 0;
    llvmpipe's rasterization differs on a handful of edge pixels between viewport
    offsets (measured: at most ~12 of 63,504 values, mostly by 1 intensity level).
    """
    for k in single:
        if k.startswith("pixels"):
            diff = np.abs(single[k].astype(int) - batched[k].astype(int))
            assert (diff > 0).mean() < 1e-3, f"{k} {what}: {(diff > 0).mean():.2e} of the values differ"
        else:
            np.testing.assert_array_equal(single[k], batched[k], err_msg=f"{k} {what}")


def test_batch_equals_single_envs(task_id):
    n, steps = 3, 10
    venv = make_vec(task_id, num_envs=n)
    vobs, _ = venv.reset(seed=7)
    actions = random_actions(venv, steps, seed=1)
    vsteps = rollout(venv, actions)
    venv.close()
    for i in range(n):
        env = gym.make(task_id)
        obs, _ = env.reset(seed=7 + i)
        assert_same_obs(obs, {k: v[i] for k, v in vobs.items()}, "at reset")
        for t in range(steps):
            obs, r, te, tr, _ = env.step(actions[t][i])
            vo, vr = vsteps[t][0], vsteps[t][1]
            assert_same_obs(obs, {k: v[i] for k, v in vo.items()}, f"at step {t}")
            assert r == vr[i]
            if te or tr:
                break
        env.close()


def test_reward_is_sum_of_terms(task_id):
    env = make_vec(task_id, num_envs=3)
    env.reset(seed=0)
    for obs, r, te, tr, info in rollout(env, random_actions(env, 5)):
        terms = info["reward_terms"]
        assert terms, "no reward terms"
        assert np.array_equal(r, sum(terms.values()))  # no "_k" masks inside: the values are the terms
        assert all(info[f"_{k}"].all() for k in info if not k.startswith("_"))  # Gymnasium's top-level masks
        assert info["success"].dtype == np.bool_
        assert info["privileged"].shape == (3, env.unwrapped.cfg.privileged_dim)
        assert not info["physics_error"].any()
    env.close()


def test_metrics_are_the_declared_metric_names(task_id):
    """``evaluate`` returns exactly the metrics ``metric_names`` documents (``Task.check_metrics``)."""
    env = make_vec(task_id, num_envs=2, obs_mode="state")
    env.reset(seed=0)
    task = env.unwrapped.task
    assert task.metric_names, f"{task_id}: declare metric_names"
    for obs, r, te, tr, info in rollout(env, random_actions(env, 2)):
        task.check_metrics(info["metrics"])
    env.close()


def test_state_roundtrip_is_noop(task_id):
    env = make_vec(task_id, num_envs=2, autoreset_mode=AutoresetMode.DISABLED)
    env.reset(seed=3)
    rollout(env, random_actions(env, 3, scale=0.3))
    ref = env.get_state()
    a = random_actions(env, 1, seed=9, scale=0.3)[0]
    o1, r1, *_ = env.step(a)
    env.set_state(ref)
    o2, r2, *_ = env.step(a)
    for k in o1:
        # set_state refills the frame stack with the restored frame: compare the newest frame
        c = o1[k].shape[-1] // env.unwrapped.cfg.frame_stack if k.startswith("pixels") else None
        a1, a2 = (o1[k][..., -c:], o2[k][..., -c:]) if c else (o1[k], o2[k])
        assert np.array_equal(a1, a2), k
    assert np.array_equal(r1, r2)
    env.close()


def test_sim_reset_equals_mujoco_reset(task_id):
    """BatchSim.reset copies a pristine row; it must equal MuJoCo's own reset after the envs moved."""
    import mujoco

    env = make_vec(task_id, num_envs=3, obs_mode="state")
    env.reset(seed=1)
    rollout(env, random_actions(env, 4, scale=0.5))
    sim = env.unwrapped.sim
    sim._batch.reset(np.array([1]), stage=int(mujoco.mjtStage.mjSTAGE_NONE))
    sim.reset(np.array([2]))
    assert np.array_equal(sim.state[1], sim.state[2])
    assert not np.array_equal(sim.state[0], sim.state[2])
    env.close()


def test_step_after_a_state_write_needs_no_forward(task_id):
    """The forward pass after reset/set_state is lazy: a step from a freshly written state row (qvel only,
    qpos only, a whole row) must be bit-identical to a step after an explicit forward pass."""
    from visual_robo_bench.core.sim import BatchSim

    env = make_vec(task_id, num_envs=1, obs_mode="state")
    model = env.unwrapped.model
    env.close()
    lazy, eager = BatchSim(model, 2, nthread=1), BatchSim(model, 2, nthread=1)
    for sim in (lazy, eager):
        sim.ctrl[:] = 0.1
        sim.step(None, 5)
    q0, v0 = 1, 1 + model.nq  # mjSTATE_INTEGRATION: time, qpos, qvel, ...
    for kind in ("qvel", "qpos", "row"):
        row = lazy.state[1].copy() if kind == "row" else lazy.state[0].copy()
        if kind == "qvel":
            row[v0:v0 + model.nv] += 0.1
        elif kind == "qpos":
            row[q0 + model.nq - 1] += 0.05
        for sim in (lazy, eager):
            sim.state[0] = row
        eager.forward(np.arange(2))
        lazy.step(None, 2)
        eager.step(None, 2)
        assert np.array_equal(lazy.state, eager.state), kind


def test_clone_one_env_into_many_is_bit_identical(task_id):
    k = 4
    env = make_vec(task_id, num_envs=k, autoreset_mode=AutoresetMode.DISABLED, render_env_ids=[0])
    env.reset(seed=5)
    rollout(env, random_actions(env, 2, scale=0.3))
    src = env.get_state([0])
    env.set_state(src.take(np.zeros(k, dtype=int)), np.arange(k))
    assert np.array_equal(env.get_state().physics, np.repeat(src.physics, k, axis=0))
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = np.repeat(rng.uniform(-0.3, 0.3, (1, env.single_action_space.shape[0])).astype(np.float32), k, 0)
        obs, r, te, tr, _ = env.step(a)
        assert (r == r[0]).all()
        assert (obs["proprio"] == obs["proprio"][0]).all()
        if te.any() or tr.any():
            assert te.all() == te.any() and tr.all() == tr.any()
            break
    st = env.get_state()
    assert (st.physics == st.physics[0]).all()
    env.close()


def test_observe_is_pure(task_id):
    env = make_vec(task_id, num_envs=2)
    obs, _ = env.reset(seed=0)
    before = env.get_state()
    again = env.unwrapped.observe()
    after = env.get_state()
    np.testing.assert_array_equal(again["proprio"], obs["proprio"])
    np.testing.assert_array_equal(after.physics, before.physics)
    np.testing.assert_array_equal(after.elapsed, before.elapsed)
    assert after.task.keys() == before.task.keys()
    for k in before.task:
        np.testing.assert_array_equal(after.task[k], before.task[k], err_msg=k)
    env.close()


def test_truncation_and_next_step_autoreset(task_id):
    env = make_vec(task_id, num_envs=2, max_episode_steps=3)
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    for t in range(3):
        obs, r, te, tr, info = env.step(zero)
    assert (tr | te).all()
    assert not (tr & te).any()
    obs, r, te, tr, info = env.step(zero)  # NEXT_STEP: this step resets
    assert (r == 0).all() and not te.any() and not tr.any()
    assert (info["elapsed_steps"] == 0).all()
    env.close()


def test_autoreset_step_equals_an_explicit_reset(task_id):
    """A NEXT_STEP autoreset steps the ended envs with the rest and then resets them: nothing of that
    discarded step (physics, task state, counters) may leak into the new episode, and its observation
    must come from current derived fields (the forward pass after a reset is lazy)."""
    auto = make_vec(task_id, num_envs=2, max_episode_steps=2, image_size=(24, 24))
    manual = make_vec(task_id, num_envs=2, max_episode_steps=2, image_size=(24, 24),
                      autoreset_mode=AutoresetMode.DISABLED)
    actions = random_actions(auto, 3, seed=3, scale=0.5)
    for env in (auto, manual):
        env.reset(seed=4)
        rollout(env, actions[:2])
    obs_a, r, te, tr, info = auto.step(actions[2])  # both envs restart here
    assert (r == 0).all() and not (te | tr).any() and (info["elapsed_steps"] == 0).all()
    obs_m, _ = manual.reset(options={"reset_mask": np.array([True, True])})
    for k in obs_m:
        np.testing.assert_array_equal(obs_a[k], obs_m[k], err_msg=k)
    sa, sm = auto.unwrapped.get_state(), manual.unwrapped.get_state()
    np.testing.assert_array_equal(sa.physics, sm.physics)
    for k in sm.task:
        np.testing.assert_array_equal(sa.task[k], sm.task[k], err_msg=k)
    venv = auto.unwrapped
    venv.sim.forward(np.arange(2))  # eager forward pass: the observation must not change
    again = venv.observe()
    for k in again:
        np.testing.assert_array_equal(again[k], venv._vec[k], err_msg=k)
    for env in (auto, manual):
        env.close()


def test_after_step_skips_the_restarting_envs():
    """The restarting envs' step is discarded: after_step (the hook that may keep bookkeeping across
    episodes, e.g. Go2Terrain's curriculum) never sees it."""
    env = make_vec("VRB/Walker-v1", num_envs=3, max_episode_steps=2, obs_mode="state")
    venv = env.unwrapped
    seen = []
    original = venv.task.after_step
    venv.task.after_step = lambda sim, state, action, ids: (seen.append(np.array(ids)), original(sim, state, action, ids))
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    env.step(zero)
    env.reset(options={"reset_mask": np.array([False, True, False])})  # env 1 runs one step behind
    env.step(zero)  # envs 0 and 2 truncate
    seen.clear()
    env.step(zero)  # envs 0 and 2 restart, env 1 truncates
    assert [ids.tolist() for ids in seen] == [[1]]
    env.close()


def test_autoreset_step_refills_only_the_new_episodes_frame_stacks():
    """One render pass serves stepped and reset envs: a reset env's stack holds K copies of its first frame,
    a stepped env's stack drops its oldest frame and gains the new one."""
    env = make_vec("VRB/Walker-v1", num_envs=3, max_episode_steps=3, image_size=(32, 32))
    obs, _ = env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    env.step(zero)
    env.reset(options={"reset_mask": np.array([False, True, False])})  # env 1 runs one step behind
    for _ in range(2):
        before, r, te, tr, _ = env.step(zero)
    assert list(te | tr) == [True, False, True]
    obs, r, te, tr, info = env.step(zero)  # envs 0 and 2 reset, env 1 steps
    c = 3
    assert list(info["elapsed_steps"]) == [0, 3, 0]
    for i in (0, 2):
        frames = np.split(obs["pixels"][i], env.unwrapped.cfg.frame_stack, axis=-1)
        assert all(np.array_equal(f, frames[-1]) for f in frames), i
    assert np.array_equal(obs["pixels"][1][..., :-c], before["pixels"][1][..., c:])
    assert not np.array_equal(obs["pixels"][1][..., -c:], before["pixels"][1][..., -c:])
    env.close()


def test_disabled_autoreset_requires_reset(task_id):
    env = make_vec(task_id, num_envs=2, max_episode_steps=2, autoreset_mode=AutoresetMode.DISABLED)
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, np.float32)
    env.step(zero)
    env.step(zero)
    with pytest.raises(RuntimeError, match="done"):
        env.step(zero)
    env.reset(options={"reset_mask": np.array([True, True])})
    env.step(zero)
    env.close()


def test_partial_reset_keeps_other_envs(task_id):
    env = make_vec(task_id, num_envs=3, autoreset_mode=AutoresetMode.DISABLED)
    env.reset(seed=0)
    rollout(env, random_actions(env, 2, scale=0.3))
    before = env.get_state()
    obs, _ = env.reset(seed=50, options={"reset_mask": np.array([False, True, False])})
    after = env.get_state()
    assert np.array_equal(before.physics[[0, 2]], after.physics[[0, 2]])
    assert not np.array_equal(before.physics[1], after.physics[1])
    assert list(after.elapsed) == [2, 0, 2]
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.zeros(3, bool)})
    env.close()


def test_copying_or_pickling_an_env_says_what_to_do_instead():
    import copy
    import pickle

    venv = gym.make_vec("VRB/Hopper-v1", num_envs=2, obs_mode="state")
    env = gym.make("VRB/Hopper-v1", obs_mode="state")
    for obj in (venv, env, env.unwrapped):
        for copier in (copy.deepcopy, pickle.dumps):  # (a shallow copy shares the env, as in Python)
            with pytest.raises(TypeError, match=r"VRB/Hopper-v1\) cannot be copied or pickled.*get_state\(\)"):
                copier(obj)
    venv.close()
    env.close()


def test_env_ids_must_be_indices():
    """A bool mask was read as indices 0/1 (set_state wrote into the wrong envs), -1 wrapped, 1.7 was truncated."""
    venv = gym.make_vec("VRB/Hopper-v1", num_envs=3, obs_mode="state")
    venv.reset(seed=0)
    u, mask = venv.unwrapped, np.array([False, False, True])
    full = u.get_state()
    for call in (lambda: u.get_state(mask), lambda: u.observe(mask), lambda: u.set_state(full.take([2]), [-1]),
                 lambda: u.set_state(full.take([0, 1]), [1, 1]), lambda: u.get_state([1.0])):
        with pytest.raises(ValueError, match=r"env_ids must be a 1-D sequence of .*env indices in \[0, 3\)"):
            call()
    np.testing.assert_array_equal(u.get_state(np.flatnonzero(mask)).physics, full.physics[[2]])
    u.set_state(full.take([2, 2]), [0, 1])  # repeated rows clone env 2 into envs 0 and 1
    np.testing.assert_array_equal(u.get_state().physics, full.physics[[2, 2, 2]])
    for ids in ([True, False, True], [1.7], [0, 0], [3]):
        with pytest.raises(ValueError, match="render_env_ids must be a 1-D sequence of distinct env indices"):
            gym.make_vec("VRB/Hopper-v1", num_envs=3, image_size=(16, 16), render_env_ids=ids)
    venv.close()


def test_single_env_step_after_termination_says_to_reset():
    env = gym.make("VRB/Hopper-v1", obs_mode="state")
    env.reset(seed=0)
    env.action_space.seed(0)
    while not env.step(env.action_space.sample())[2]:  # random hopping falls within 100 steps
        pass
    with pytest.raises(RuntimeError, match=r"the episode has ended \(terminated\); call reset\(\) before step"):
        env.step(np.zeros(3, np.float32))
    env.reset()
    env.step(np.zeros(3, np.float32))
    env.close()


def test_make_max_episode_steps_reaches_the_task_only_through_make_vec():
    """gym.make gives max_episode_steps to TimeLimit only (documented); make_vec gives it to the task too."""
    env = gym.make("VRB/Go2-v0", obs_mode="state", max_episode_steps=7)
    env.reset(seed=0)
    assert env.unwrapped.task.max_episode_steps == 1000 and env.spec.max_episode_steps == 7
    vec = gym.make_vec("VRB/Go2-v0", num_envs=1, obs_mode="state", max_episode_steps=7)
    assert vec.unwrapped.task.max_episode_steps == 7
    for e in (env, vec):
        e.close()


def test_closed_envs_refuse_to_step():
    """Stepping a closed env silently re-created its renderer (and render worker processes)."""
    venv = gym.make_vec("VRB/Hopper-v1", num_envs=2, image_size=(16, 16))
    env = gym.make("VRB/Hopper-v1", image_size=(16, 16))
    for e in (venv, env):
        e.reset(seed=0)
        e.close()
        e.close()  # twice is fine
        with pytest.raises(gym.error.ClosedEnvironmentError, match="was closed; make a new one"):
            e.step(e.action_space.sample())
        with pytest.raises(gym.error.ClosedEnvironmentError):
            e.reset(seed=0)


def test_vector_reset_seeds_np_random_and_masks_the_reset_envs():
    venv = gym.make_vec("VRB/Hopper-v1", num_envs=3, obs_mode="state", action_bounds="clip")
    venv.reset(seed=7)
    assert venv.np_random_seed == 7
    _, info = venv.reset(options={"reset_mask": np.array([False, True, False])})
    for k in ("elapsed_steps", "success", "privileged"):  # Gymnasium's masks: only env 1 was reset
        assert info[f"_{k}"].tolist() == [False, True, False]
    *_, info = venv.step(np.full((3, 3), 2.0, np.float32))
    assert info["action_clipped_fraction"].tolist() == [1.0, 1.0, 1.0] and info["_action_clipped_fraction"].all()
    venv.close()


def test_unknown_reset_options_are_refused():
    """Options the env does not read raise (they were dropped silently); ``reset_mask`` is the vector env's only one."""
    venv = gym.make_vec("VRB/Hopper-v1", num_envs=2, obs_mode="state")
    with pytest.raises(ValueError, match=r"unknown reset options \['init_qpos'\].*only 'reset_mask'"):
        venv.reset(seed=0, options={"init_qpos": [0.0]})
    venv.reset(seed=0, options={})  # empty options are no options
    env = gym.make("VRB/Hopper-v1", obs_mode="state")
    for options in ({"init_qpos": [0.0]}, {"reset_mask": np.array([True])}):
        with pytest.raises(ValueError, match="the single env takes none"):
            env.reset(seed=0, options=options)
    env.reset(seed=0, options={})
    venv.close()
    env.close()


def test_render_subset_only(task_id):
    env = make_vec(task_id, num_envs=3, render_env_ids=[2])
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape[0] == 1
    assert env.observation_space["pixels"].shape[0] == 1
    assert obs["proprio"].shape[0] == 3
    r = env.unwrapped.renderer
    frames = r.frames
    env.step(np.zeros(env.action_space.shape, np.float32))
    assert r.frames - frames == len(env.unwrapped.cfg.policy_cameras)  # one env rendered
    env.close()
    state_env = make_vec(task_id, num_envs=2, obs_mode="state")
    obs, _ = state_env.reset(seed=0)
    assert set(obs) == {"privileged", *(["height_scan"] if state_env.unwrapped.cfg.height_scan_dim else [])}
    state_env.step(np.zeros(state_env.action_space.shape, np.float32))
    assert state_env.unwrapped.renderer is None  # never rendered
    state_env.close()


def test_render_rgb_array(task_id):
    env = gym.make(task_id, render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    h, w = env.unwrapped.vector_env.cfg.render_size
    assert img.shape == (h, w, 3) and img.dtype == np.uint8 and img.std() > 5
    env.close()


def test_bad_actions_raise(task_id):
    env = make_vec(task_id, num_envs=2)
    env.reset(seed=0)
    A = env.single_action_space.shape[0]
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((2, A + 1), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        env.step(np.zeros((2, A), np.int64))
    bad = np.zeros((2, A), np.float32)
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        env.step(bad)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        env.step(np.full((2, A), 1.5, np.float32))
    with pytest.raises(ValueError, match=r"got values in \[1.0000\d*, 1.0000\d*\]"):  # not "[1, 1]"
        env.step(np.full((2, A), 1.00001, np.float32))
    env.close()
    clip = make_vec(task_id, num_envs=2, action_bounds="clip")
    clip.reset(seed=0)
    *_, info = clip.step(np.full((2, A), 1.5, np.float32))
    assert np.allclose(info["action_clipped_fraction"], 1.0)
    clip.close()


def test_physics_blowup_terminates_only_that_env(task_id):
    env = make_vec(task_id, num_envs=2, render_env_ids=[])
    env.reset(seed=0)
    venv: VRBVectorEnv = env.unwrapped
    zeros = np.zeros(env.action_space.shape, np.float32)
    for _ in range(2):  # the same env again after its autoreset: flagged again
        venv.sim.qvel[1] = 1e12
        obs, r, te, tr, info = env.step(zeros)
        assert info["physics_error"][1] and te[1] and r[1] == 0
        assert not info["physics_error"][0]
        obs, r, te, tr, info = env.step(zeros)  # env 1 restarts
        assert not info["physics_error"].any() and not te[1]
    env.close()


def test_string_entry_point_without_import():
    code = (
        "import gymnasium as gym; env = gym.make('visual_robo_bench:VRB/Walker-v1', obs_mode='state');"
        "env.reset(seed=0); venv = gym.make_vec('visual_robo_bench:VRB/Walker-v1', num_envs=2, obs_mode='state');"
        "venv.reset(seed=0); print('ok')"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


THIRD_PARTY_TASK = slide_task_module("MyLab/Reach-v0", privileged_dim=0)  # no privileged state


def test_third_party_package_registers_its_own_task(tmp_path):
    """A task registered by another package (here one with no privileged state) works through the string entry
    point, passes Gymnasium's checker and runs batched, in a fresh interpreter."""
    (tmp_path / "mylab").mkdir()
    (tmp_path / "mylab" / "__init__.py").write_text(THIRD_PARTY_TASK)
    code = (
        "import gymnasium as gym, numpy as np\n"
        "from gymnasium.utils.env_checker import check_env\n"
        "env = gym.make('mylab:MyLab/Reach-v0', image_size=(32, 32))\n"
        "check_env(env.unwrapped, skip_render_check=True)\n"
        "venv = gym.make_vec('mylab:MyLab/Reach-v0', num_envs=2, image_size=(32, 32))\n"
        "obs, info = venv.reset(seed=0)\n"
        "obs, r, te, tr, info = venv.step(np.ones((2, 1), np.float32))\n"
        "assert obs['pixels'].shape == (2, 32, 32, 9) and 'privileged' not in info, sorted(info)\n"
        "from visual_robo_bench.cli import main\n"  # every vrb command finds it by module:id too
        "assert main(['info', 'mylab:MyLab/Reach-v0']) == 0\n"
        "print('ok', sorted(obs), r.shape)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ok ['pixels', 'proprio'] (2,)" in out.stdout


def test_unknown_task_lists_close_ids():
    with pytest.raises(KeyError, match="Did you mean 'VRB/Walker-v0', 'VRB/Walker-v1'"):
        visual_robo_bench.get_task("VRB/Walkr-v0")
    with pytest.raises(KeyError, match="Did you mean 'VRB/Walker-v0'"):
        VRBVectorEnv("VRB/Walkr-v0")


def test_register_task_rejects_bad_ids_and_unknown_successors():
    """The registration errors say what to do; nothing registered is overwritten."""
    with pytest.raises(ValueError, match="must be versioned"):
        visual_robo_bench.register_task("MyLab/Reach")
    with pytest.raises(ValueError, match="must be versioned"):  # '"-v" in name' let these through
        visual_robo_bench.register_task("MyLab/Pre-view")
    with pytest.raises(ValueError, match="must be versioned"):
        visual_robo_bench.register_task("MyLab/Reach-vfoo")
    with pytest.raises(ValueError, match="already registered"):
        other = type("Other", (), {"config_cls": visual_robo_bench.TaskConfig})
        visual_robo_bench.register_task("VRB/Walker-v1")(other)
    with pytest.raises(ValueError, match="register the replacement first"):
        visual_robo_bench.register_task("MyLab/Reach-v0", deprecated_by="MyLab/Reach-v1", reason=("x", "y"))
    with pytest.raises(ValueError, match="together"):
        visual_robo_bench.register_task("MyLab/Reach-v0", deprecated_by="VRB/Walker-v1")
    with pytest.raises(ValueError, match="together"):
        visual_robo_bench.register_task("MyLab/Reach-v0", reason=("x", "y"))
    assert visual_robo_bench.get_task("VRB/Walker-v1").task_cls.__name__ == "Walker"
    assert "MyLab/Reach-v0" not in visual_robo_bench.list_tasks()


def test_unknown_config_key_is_rejected():
    with pytest.raises(TypeError, match="valid fields"):
        gym.make_vec("VRB/Walker-v1", num_envs=1, not_a_field=3)


@pytest.mark.parametrize("kwargs,message", [
    (dict(image_size=32), r"image_size must be \(H, W\) with two ints >= 8, e.g. \(84, 84\); got 32"),
    (dict(image_size=(32.5, 32)), r"image_size must be .* got \(32.5, 32\)"),  # was truncated to 32 silently
    (dict(render_size=(0, 10)), r"render_size must be \(H, W\)"),
    (dict(frame_stack=2.5), r"frame_stack must be an int >= 1, got 2.5"),
    (dict(substeps=True), r"substeps must be an int >= 1, got True"),
    (dict(timestep=-1.0), r"timestep must be a positive number of seconds, got -1.0"),
    (dict(timestep=float("nan")), r"timestep must be a positive number"),
    (dict(cameras="track"), r"cameras must be a non-empty sequence of camera names.*got 'track'"),
    (dict(cameras=()), r"cameras must be a non-empty sequence.*obs_mode='state'"),
    (dict(privileged="yes"), r"privileged must be True or False, got 'yes'"),
    (dict(num_envs=2.5), r"num_envs must be an int >= 1, got 2.5"),
    (dict(nthread=0), r"nthread must be an int >= 1, got 0"),
    (dict(render_workers=-1), r"render_workers must be an int >= 0, got -1"),
])
def test_bad_env_keywords_raise_clear_errors(kwargs, message):
    """Malformed keywords are refused with what was expected (floats were truncated, strings split into letters,
    a negative timestep simulated)."""
    kwargs = {"num_envs": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        gym.make_vec("VRB/Hopper-v1", **kwargs)


def test_env_keywords_accept_numpy_ints_and_json_lists():
    env = gym.make_vec("VRB/Hopper-v1", num_envs=np.int64(2), image_size=[np.int64(16), 24], frame_stack=np.int32(2))
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (2, 16, 24, 6)
    plain = gym.make_vec("VRB/Hopper-v1", num_envs=2, image_size=(16, 24), frame_stack=2)
    assert env.unwrapped.cfg == plain.unwrapped.cfg and env.unwrapped.cfg.hash() == plain.unwrapped.cfg.hash()
    env.close()
    plain.close()


def test_image_options_and_chw_layout():
    env = gym.make_vec("VRB/Walker-v1", num_envs=2, image_size=(64, 48), frame_stack=2, pixel_layout="CHW")
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (2, 6, 64, 48)
    env.close()


def test_image_orientation_row0_is_top():
    # Walker at spawn seen from the side: sky (black, no skybox) on top, floor at the bottom.
    env = gym.make_vec("VRB/Walker-v1", num_envs=1)
    obs, _ = env.reset(seed=0)
    img = obs["pixels"][0, ..., :3].astype(int)
    assert img[:5].sum(axis=-1).mean() < 10, "top rows should be empty sky"
    assert img[-5:].sum(axis=-1).mean() > 100, "bottom rows should be the lit floor"
    env.close()


def test_render_worker_processes_match_in_process():
    kw = dict(num_envs=4, autoreset_mode=AutoresetMode.DISABLED)
    pooled = gym.make_vec("VRB/Walker-v1", render_workers=2, **kw)
    local = gym.make_vec("VRB/Walker-v1", **kw)
    o1, _ = pooled.reset(seed=0)
    o2, _ = local.reset(seed=0)
    for _ in range(3):
        a = np.full(pooled.action_space.shape, 0.3, np.float32)
        o1, *_ = pooled.step(a)
        o2, *_ = local.step(a)
    assert type(pooled.unwrapped.renderer).__name__ == "RenderPool"
    diff = np.abs(o1["pixels"].astype(int) - o2["pixels"].astype(int))
    assert (diff > 0).mean() < 1e-3  # tile offsets differ between the layouts (llvmpipe edge pixels)
    np.testing.assert_array_equal(o1["proprio"], o2["proprio"])
    pooled.close()
    local.close()


_FORK_AFTER_RENDERING = """
import os, gymnasium as gym, visual_robo_bench
from visual_robo_bench.render.gl import RenderBackendError
kw = dict(image_size=(16, 16))
pid = os.fork()  # before anything rendered: the child renders
if pid == 0:
    env = gym.make("VRB/Hopper-v1", **kw)
    env.reset(seed=0)
    os._exit(0)
assert os.waitpid(pid, 0)[1] == 0, "a child forked before any rendering failed"
gym.make("VRB/Hopper-v1", **kw).reset(seed=0)  # now this process has rendered (Mesa's threads run)
state = gym.make_vec("VRB/Hopper-v1", num_envs=1, vectorization_mode="async", obs_mode="state")
state.reset(seed=0)  # a forked child that does not render is fine
state.close()
pixels = gym.make_vec("VRB/Hopper-v1", num_envs=1, vectorization_mode="async", **kw)
try:
    pixels.reset(seed=0)
except RenderBackendError as err:
    print("REFUSED:", err)
pixels.close(terminate=True)
"""


def test_a_child_forked_after_rendering_raises_instead_of_hanging():
    """Mesa's renderer hangs in a child forked after its threads started (Gymnasium's async envs fork on Linux):
    the child raises an error that names the 'spawn' start method instead (a hang fails by the timeout)."""
    res = subprocess.run([sys.executable, "-c", _FORK_AFTER_RENDERING], capture_output=True, text=True,
                         timeout=300, env={k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "REFUSED: cannot render in process" in res.stdout and "vector_kwargs={'context': 'spawn'}" in res.stdout


def test_first_gl_context_logs_the_renderer_strings_once(caplog, monkeypatch):
    """The first GL context of a process logs GL_VENDOR, GL_RENDERER and GL_VERSION (llvmpipe vs a GPU) at INFO
    on the package's logger; later contexts do not log them again."""
    from visual_robo_bench.render import gl

    monkeypatch.setattr(gl, "_renderer_logged", False, raising=False)  # as in a fresh process
    caplog.set_level(logging.INFO, logger="visual_robo_bench")

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "visual_robo_bench" and "GL_RENDERER=" in r.getMessage()]

    first = gym.make("VRB/Hopper-v1", image_size=(16, 16))
    first.reset(seed=0)
    (record,) = logged()
    assert record.levelno == logging.INFO
    assert all(f"{name}=" in record.getMessage() for name in ("GL_VENDOR", "GL_RENDERER", "GL_VERSION")), record
    second = gym.make("VRB/Hopper-v1", image_size=(16, 16))
    second.reset(seed=0)
    assert len(logged()) == 1
    first.close()
    second.close()


_CONFLICTING_PLATFORM = """
import os
import gymnasium as gym, visual_robo_bench
from visual_robo_bench.render.gl import RenderBackendError, select_backend
env = gym.make("VRB/Hopper-v1", image_size=(16, 16))
try:
    env.reset(seed=0)
except RenderBackendError as err:
    print("REFUSED:", err)
os.environ.update(MUJOCO_GL="osmesa", PYOPENGL_PLATFORM="egl")  # the other way round (nothing was imported yet)
select_backend.cache_clear()
try:
    select_backend()
except RenderBackendError as err:
    print("REFUSED:", err)
"""


def test_a_pyopengl_platform_that_disagrees_with_mujoco_gl_is_named():
    """MUJOCO_GL=egl with PYOPENGL_PLATFORM=osmesa (or the reverse) cannot work (mujoco.egl refuses the platform on
    import): the error says that the two disagree and how to fix it, not to install packages and set MUJOCO_GL."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(MUJOCO_GL="egl", PYOPENGL_PLATFORM="osmesa")
    res = subprocess.run([sys.executable, "-c", _CONFLICTING_PLATFORM], capture_output=True, text=True, timeout=300,
                         env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    refusals = [line for line in res.stdout.splitlines() if line.startswith("REFUSED:")]
    assert len(refusals) == 2, res.stdout
    for line, (gl, platform) in zip(refusals, [("egl", "osmesa"), ("osmesa", "egl")]):
        assert f"MUJOCO_GL={gl} and PYOPENGL_PLATFORM={platform} disagree" in line, line
        assert "Unset PYOPENGL_PLATFORM" in line and f"PYOPENGL_PLATFORM={gl}" in line, line
        assert "apt-get" not in line, line


def test_task_docstring_follows_the_template(task_id):
    from visual_robo_bench.checks import docstring_problems

    assert docstring_problems(task_id, visual_robo_bench.get_task(task_id).task_cls.__doc__) == []


def _collides(m, a, b) -> bool:
    return bool((m.geom_contype[a] & m.geom_conaffinity[b]) or (m.geom_contype[b] & m.geom_conaffinity[a]))


def test_robot_collides_with_the_floor_and_obstacles(task_id):
    """The floor and the world's obstacles (hurdles) collide with the robot, except in the deprecated v0 of
    Walker, WalkerHurdle and Ant, whose floor inherited the robot file's ``conaffinity=0``."""
    entry = visual_robo_bench.get_task(task_id)
    env = make_vec(task_id, num_envs=1, obs_mode="state")
    m = env.unwrapped.model
    env.close()
    world = [g for g in range(m.ngeom) if m.geom_bodyid[g] == 0 and (m.geom(g).name == "floor"
                                                                       or m.geom(g).name.startswith("hurdle"))]
    if not world:
        pytest.skip("no floor or hurdles in this scene (a table-top task)")
    robot = [g for g in range(m.ngeom) if m.geom_bodyid[g] != 0]
    expected = getattr(entry.task_cls, "world_contact", True)
    for g in world:
        assert any(_collides(m, g, r) for r in robot) == expected, m.geom(g).name
    if not expected:  # only a deprecated version may keep a floor that nothing touches
        assert entry.deprecated_by is not None
    if entry.deprecated_by is not None:
        assert entry.task_cls.__doc__.startswith("Deprecated: ") and entry.deprecated_by in entry.summary
        # the rest is the current version's documentation, written once (by register_task)
        current = inspect.getdoc(visual_robo_bench.get_task(entry.deprecated_by).task_cls)
        assert inspect.cleandoc(entry.task_cls.__doc__).endswith(current)
        with pytest.warns(Warning, match="out of date"):
            gym.make(task_id).close()


def test_walker_stands_on_the_floor_and_ant_rests_on_its_legs():
    """Physics check of the v1 fix: zero torques, the robot is held by the floor, not at z < 0."""
    for task_id, steps in (("VRB/Walker-v1", 40), ("VRB/Ant-v1", 200)):
        env = make_vec(task_id, num_envs=1, obs_mode="state", autoreset_mode="DISABLED")
        env.reset(seed=0)
        for _ in range(steps):
            *_, term, trunc, _ = env.step(np.zeros(env.action_space.shape, np.float32))
            assert not (term[0] or trunc[0]), f"{task_id} ended within {steps} steps of zero torques"
        data = env.unwrapped.sim.data(0)
        assert data.ncon > 0
        torso = env.unwrapped.model.body("torso").id
        assert data.xpos[torso, 2] > 0.25
        env.close()


def test_readme_task_table_matches_the_registry():
    """The README's task table is written by hand: every current id is in it, with the sizes, rates and lengths
    its config and spaces give (conventions.md 1: one source of truth, checked), and the bytes of one default
    observation (the sum of the observation space's ``nbytes``) with 1M of them in GB (conventions.md 8, #9)."""
    import re
    from pathlib import Path

    from visual_robo_bench.registry import get_task, list_tasks

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `(VRB/[\w.-]+-v\d+)` \|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    current = [t for t in list_tasks() if t.startswith("VRB/") and get_task(t).deprecated_by is None]
    assert sorted(rows) == sorted(current)
    for task_id, (_, action, _, pixels, proprio, obs_bytes, privileged, hz, steps) in rows.items():
        cfg = get_task(task_id).config
        env = gym.make_vec(task_id, num_envs=1)  # the registered default (building it renders nothing)
        try:
            assert int(re.match(r"\d+", action).group()) == env.single_action_space.shape[0], task_id
            space = env.single_observation_space
        finally:
            env.close()
        nbytes = sum(int(np.prod(s.shape)) * np.dtype(s.dtype).itemsize for s in space.spaces.values())
        assert obs_bytes == f"{nbytes:,} ({nbytes * 1e6 / 1e9:.1f} GB)", task_id
        h, w, c = map(int, re.match(r"(\d+)x(\d+)x(\d+)", pixels).groups())
        cams = int(m.group(1)) if (m := re.search(r"\(x(\d+)\)", pixels)) else 1
        depth = cfg.camera(cfg.policy_cameras[0]).depth
        assert ((h, w), c, cams) == (tuple(cfg.image_size), cfg.frame_stack * (1 if depth else 3),
                                     len(cfg.policy_cameras)), task_id
        assert int(re.match(r"\d+", proprio).group()) == cfg.proprio_dim, task_id
        dims = [int(x) for x in re.findall(r"\d+", privileged)]
        assert dims == [cfg.privileged_dim] + ([cfg.height_scan_dim] if cfg.height_scan_dim else []), task_id
        assert float(hz) == round(1.0 / (cfg.timestep * cfg.substeps), 1), task_id
        assert int(steps) == cfg.max_episode_steps, task_id
