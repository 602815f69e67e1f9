"""The vector env's state API (get_state/set_state) and the checks on task hook outputs."""

from __future__ import annotations

import pickle

import mujoco
import numpy as np
import pytest

from visual_robo_bench.core.sim import BatchSim, state_columns
from visual_robo_bench.core.task import Evaluation
from visual_robo_bench.envs import VRBEnv, VRBState, VRBVectorEnv

WALKER = "VRB/Walker-v1"


def _env(task_id=WALKER, n=3, **kw):
    kw.setdefault("obs_mode", "state")
    return VRBVectorEnv(task_id, n, **kw)


def _zeros(env):
    return np.zeros(env.action_space.shape, np.float32)


def _snapshot(env):
    """Everything set_state writes, for 'the refused call changed nothing' checks."""
    st = env.get_state()
    return st, env.done, {k: v.copy() for k, v in env._vec.items()}


def _assert_unchanged(env, snap):
    st, done, vec = snap
    now = env.get_state()
    np.testing.assert_array_equal(now.physics, st.physics)
    np.testing.assert_array_equal(now.elapsed, st.elapsed)
    for k in st.task:
        np.testing.assert_array_equal(now.task[k], st.task[k])
    np.testing.assert_array_equal(env.done, done)
    for k in vec:
        np.testing.assert_array_equal(env._vec[k], vec[k])


def _qvel0(env):
    return int(state_columns(env.model, mujoco.mjtState.mjSTATE_QVEL, [0])[0])


# ---------------------------------------------------------------- 1. blown-up states
def test_set_state_refuses_non_finite_physics_rows():
    env = _env()
    env.reset(seed=0)
    env.step(_zeros(env))
    st = env.get_state([0, 1])
    st.physics[1, _qvel0(env)] = np.nan
    snap = _snapshot(env)
    with pytest.raises(ValueError, match=r"rows \[1\] \(for envs \[2\]\) contain NaN or inf"):
        env.set_state(st, [1, 2])
    _assert_unchanged(env, snap)
    st.physics[1, _qvel0(env)] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        env.set_state(st, [1, 2])
    env.close()


@pytest.mark.parametrize("read_derived", [False, True], ids=["no-forward", "forward-before-step"])
def test_diverging_written_state_is_a_physics_error_at_the_next_step(read_derived):
    """A finite state that MuJoCo finds diverging (|qvel| > mjMAXVAL) is reported at the next step, whether or not
    a derived-field read ran the lazy forward pass (which resets the row and warns) before it."""
    env = _env()
    env.reset(seed=0)
    env.step(_zeros(env))
    st = env.get_state([1])
    st.physics[0, _qvel0(env)] = 1e12
    env.set_state(st, [1])
    if read_derived:
        env.sim.xpos  # noqa: B018 - runs the pending forward pass
    first, second = env.observe(), env.observe()
    for k in first:  # observe() is a pure function of the state: it neither reports nor clears anything
        np.testing.assert_array_equal(first[k], second[k])
    _, _, terminated, truncated, info = env.step(_zeros(env))
    np.testing.assert_array_equal(info["physics_error"], [False, True, False])
    np.testing.assert_array_equal(terminated, [False, True, False])
    env.close()


def test_batch_sim_keeps_forward_warnings_for_the_next_step():
    env = _env(n=2)
    env.reset(seed=0)
    sim = BatchSim(env.model, 2, nthread=1)
    row = sim.state[0].copy()
    row[_qvel0(env)] = -1e12
    sim.set_state(row[None], [1])
    sim.flush()  # the forward pass warns (and MuJoCo resets the row)
    bad = sim.step(None, 1)
    np.testing.assert_array_equal(bad, [False, True])
    assert not sim.step(None, 1).any()  # reported once
    sim.set_state(row[None], [0])
    sim.flush()
    sim.set_state(sim.state[1:2].copy(), [0])  # overwritten before any step: the old warning is not the new state's
    assert not sim.step(None, 1).any()
    env.close()


def test_resets_and_initialize_episode_never_warn(task_id):
    """Every task's reset (its initialize_episode forward passes included) and the lazy forward after it raise no
    MuJoCo warning: one would now be a physics error at the first step."""
    env = _env(task_id, n=2)
    forward = env.sim.forward

    def checked_forward(ids):
        forward(ids)
        assert not env.sim._warning[np.asarray(ids)].any(), f"{task_id}: a forward pass warned"

    env.sim.forward = checked_forward
    env.reset(seed=0)
    env.sim.flush()
    assert not env.sim._warning.any()
    _, _, _, _, info = env.step(_zeros(env))
    assert not info["physics_error"].any()
    env.close()


# ---------------------------------------------------------------- 2. atomic set_state
def test_refused_set_state_writes_nothing():
    env = _env()
    env.reset(seed=0)
    for _ in range(3):
        env.step(np.full(env.action_space.shape, 0.3, np.float32))
    calls = []
    env.task.on_state_set = lambda sim, state, ids: calls.append(ids)
    src = env.get_state([0])
    src.task["prev_action"][:] = 0.9  # would be visible if written
    snap = _snapshot(env)
    short = VRBState(src.physics[:, :-1].copy(), src.task, src.elapsed, src.task_id, src.config_hash)
    with pytest.raises(ValueError, match=r"shape \(1, 91\)"):
        env.set_state(short, [2])
    bad_elapsed = src.take([0])
    bad_elapsed.elapsed[:] = -1
    with pytest.raises(ValueError, match="never negative"):
        env.set_state(bad_elapsed, [2])
    _assert_unchanged(env, snap)
    assert calls == []  # on_state_set never ran for a refused call
    env.set_state(src, [2])
    assert len(calls) == 1
    np.testing.assert_array_equal(env.get_state([2]).task["prev_action"], src.task["prev_action"])
    env.close()


# ---------------------------------------------------------------- 3. foreign and malformed states
@pytest.mark.parametrize("source, target, match", [
    ("VRB/Hopper-v0", "VRB/Hopper-v1", "taken from a VRB/Hopper-v0 env, this env is VRB/Hopper-v1"),
    ("VRB/Walker-v0", "VRB/Walker-v1", "taken from a VRB/Walker-v0 env, this env is VRB/Walker-v1"),
])
def test_states_of_another_task_version_are_refused(source, target, match):
    src, dst = _env(source, n=1), _env(target, n=2)
    src.reset(seed=0)
    dst.reset(seed=0)
    assert src.sim.nstate == dst.sim.nstate  # same layout: only the label tells them apart
    snap = _snapshot(dst)
    with pytest.raises(ValueError, match=match):
        dst.set_state(src.get_state(), [1])
    _assert_unchanged(dst, snap)
    src.close()
    dst.close()


def test_states_of_another_config_are_refused():
    a, b = _env(n=1), _env(n=1, reset_noise=0.01)
    a.reset(seed=0)
    b.reset(seed=0)
    with pytest.raises(ValueError, match="another config .*overrides"):
        b.set_state(a.get_state())
    assert a.get_state().config_hash == a.cfg.hash() != b.get_state().config_hash
    a.close()
    b.close()


def _malformed(case, st):
    phys, task, el = st.physics, dict(st.task), st.elapsed
    if case == "task rows 1 for 2 ids":
        task = {k: v[:1] for k, v in task.items()}
    elif case == "elapsed rows 1 for 2 ids":
        el = el[:1]
    elif case == "task field broadcastable (2, 1)":
        task["prev_action"] = np.ones((2, 1), np.float32)
    elif case == "task field scalar":
        task["prev_action"] = np.float32(7.0)
    elif case == "task field float64":
        task["prev_action"] = task["prev_action"].astype(np.float64)
    elif case == "task field missing":
        del task["prev_action"]
    elif case == "physics float32":
        phys = phys.astype(np.float32)
    elif case == "physics 1 row for 2 ids":
        phys = phys[:1]
    elif case == "elapsed float":
        el = el.astype(np.float64)
    elif case == "elapsed -3":
        el = np.full_like(el, -3)
    elif case == "elapsed beyond max_episode_steps":
        el = np.full_like(el, 1001)
    return VRBState(phys, task, el, st.task_id, st.config_hash)


MALFORMED = {
    "task rows 1 for 2 ids": r"state.task\['prev_action'\] must be a float32 array of shape \(2, 6\)",
    "elapsed rows 1 for 2 ids": r"state.elapsed must be an integer array of shape \(2,\)",
    "task field broadcastable (2, 1)": r"shape \(2, 6\), got an array of dtype float32 and shape \(2, 1\)",
    "task field scalar": r"state.task\['prev_action'\] must be",
    "task field float64": r"must be a float32 array",
    "task field missing": "must hold the fields",
    "physics float32": r"state.physics must be a float64 array of shape \(2, 91\)",
    "physics 1 row for 2 ids": "state has 1 rows for 2 env ids",
    "elapsed float": "integer array",
    "elapsed -3": r"must lie in \[0, 1000 \(max_episode_steps\)\]",
    "elapsed beyond max_episode_steps": r"must lie in \[0, 1000 \(max_episode_steps\)\], got \[1001, 1001\]",
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_states_are_refused_and_change_nothing(case):
    env = _env(n=4)
    env.reset(seed=0)
    env.step(_zeros(env))
    assert env.max_episode_steps == 1000
    bad = _malformed(case, env.get_state([0, 1]))
    snap = _snapshot(env)
    with pytest.raises(ValueError, match=MALFORMED[case]):
        env.set_state(bad, [2, 3])
    _assert_unchanged(env, snap)
    with pytest.raises(TypeError, match="takes a VRBState"):
        env.set_state({"physics": env.get_state([0]).physics}, [2])
    env.close()


def test_labels_travel_with_take_pickle_and_unlabeled_states_still_load():
    env = _env()
    env.reset(seed=0)
    env.step(_zeros(env))
    st = env.get_state([0])
    assert (st.task_id, st.config_hash, st.rng) == (WALKER, env.cfg.hash(), None)
    clones = st.take([0, 0])
    assert (clones.task_id, clones.config_hash) == (st.task_id, st.config_hash)
    env.set_state(pickle.loads(pickle.dumps(clones)), [1, 2])
    np.testing.assert_array_equal(env.get_state().physics, np.repeat(st.physics, 3, axis=0))
    # checkpoints keep the labels (to_dict / from_dict); older ones without labels still load, checked for
    # shapes and dtypes only
    saved = pickle.loads(pickle.dumps(st.to_dict()))
    assert (saved["task_id"], saved["config_hash"]) == (WALKER, env.cfg.hash()) and "rng" not in saved
    env.set_state(VRBState.from_dict(saved), [1])
    other = VRBState.from_dict({**saved, "config_hash": "0" * 16})
    with pytest.raises(ValueError, match="another config"):
        env.set_state(other, [1])
    old = {k: saved[k] for k in ("physics", "task", "elapsed")}
    assert VRBState.from_dict(old).task_id is None
    env.set_state(VRBState.from_dict(old), [1])
    with pytest.raises(ValueError, match="float64"):
        env.set_state(VRBState(st.physics.astype(np.float32), st.task, st.elapsed), [1])
    with_rng = env.get_state([0], rng=True)
    assert VRBState.from_dict(with_rng.to_dict()).rng == with_rng.rng
    env.close()


def test_elapsed_bound_follows_the_env_and_the_single_env_has_no_upper_bound():
    short = _env(n=2, max_episode_steps=10)
    short.reset(seed=0)
    st = short.get_state([0])
    st.elapsed[:] = 10  # at the limit: allowed (the state of an env that just truncated)
    short.set_state(st, [1])
    st.elapsed[:] = 11
    with pytest.raises(ValueError, match=r"\[0, 10 \(max_episode_steps\)\]"):
        short.set_state(st, [1])
    short.close()
    single = VRBEnv(WALKER, obs_mode="state")  # truncation is gymnasium's TimeLimit, whose limit may be longer
    single.reset(seed=0)
    st = single.get_state()
    st.elapsed[:] = 5000
    single.set_state(st)
    single.close()


# ---------------------------------------------------------------- 4. never-reset envs
def test_set_state_on_never_reset_envs_is_refused():
    src = _env("VRB/Hopper-v1", n=2, max_episode_steps=5)
    src.reset(seed=0)
    fresh = _env("VRB/Hopper-v1", n=2, max_episode_steps=5)
    with pytest.raises(ValueError, match=r"envs \[0, 1\] were never reset: call reset\(seed=...\) first"):
        fresh.set_state(src.get_state())
    with pytest.raises(RuntimeError, match="call reset"):
        fresh.step(_zeros(fresh))  # still un-started: the refused call marked nothing
    # a state carrying the generators can start the envs: the autoreset then draws from them
    fresh.set_state(src.get_state(rng=True))
    for _ in range(7):
        fresh.step(_zeros(fresh))
    # with autoreset DISABLED (SB3 adapter, single env) the next episode starts with reset(), which seeds
    disabled = _env("VRB/Hopper-v1", n=2, max_episode_steps=5, autoreset_mode="DISABLED")
    disabled.set_state(src.get_state())
    src.close()
    fresh.close()
    disabled.close()


# ---------------------------------------------------------------- 6. generators (opt-in)
def _episode_starts(env, steps):
    out = []
    for _ in range(steps):
        obs, _, _, _, info = env.step(_zeros(env))
        out.append(obs["privileged"].copy())
    return np.stack(out)


def test_rng_opt_in_restores_the_next_episodes_and_default_is_unchanged():
    env = _env(n=2, max_episode_steps=3)
    env.reset(seed=0)
    env.step(_zeros(env))
    gens = [env.get_rng(i) for i in range(2)]
    plain, full = env.get_state(), env.get_state(rng=True)
    assert plain.rng is None and len(full.rng) == 2
    ref = _episode_starts(env, 6)  # crosses two autoresets
    env.set_state(plain)
    diverged = _episode_starts(env, 6)
    assert np.array_equal(diverged[:2], ref[:2]) and not np.array_equal(diverged, ref)  # the generators moved on
    env.set_state(full)
    np.testing.assert_array_equal(_episode_starts(env, 6), ref)
    assert all(env.get_rng(i) is g for i, g in enumerate(gens))  # restored in place
    # clones with the generator: identical next episodes too
    env.set_state(full.take([0, 0]), [0, 1])
    out = _episode_starts(env, 6)
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    bad = env.get_state(rng=True)
    bad.rng = [{"bit_generator": "NoSuchGenerator"}, bad.rng[1]]
    snap = _snapshot(env)
    with pytest.raises(ValueError, match="bit_generator"):
        env.set_state(bad)
    _assert_unchanged(env, snap)
    with pytest.raises(ValueError, match="never reset"):
        _env(n=1).get_state(rng=True)
    env.close()


# ---------------------------------------------------------------- 7. task hook outputs
def _patch(env, hook, change):
    original = getattr(env.task, hook)

    def patched(*args):
        return change(original(*args))

    setattr(env.task, hook, patched)


def _terms(fn):
    return lambda terms: {**terms, "extra": fn(next(iter(terms.values())))}


def _with(**kw):
    def change(ev):
        fields = {"success": ev.success, "failure": ev.failure, **kw}
        fields["metrics"] = {**ev.metrics, **kw.get("metrics", {})}
        return Evaluation(**fields)
    return change


BAD_HOOKS = {
    "term (1,)": ("reward_terms", _terms(lambda v: np.zeros(1)), r"reward_terms term 'extra' .*shape \(3,\)"),
    "term (3, 1)": ("reward_terms", _terms(lambda v: np.zeros((3, 1))), r"term 'extra' is an array of dtype float64 "
                    r"and shape \(3, 1\): expected a real scalar or a float/int array of shape \(3,\)"),
    "term bool": ("reward_terms", _terms(lambda v: np.zeros(3, bool)), "term 'extra' is an array of dtype bool"),
    "term complex": ("reward_terms", _terms(lambda v: np.zeros(3, complex)), "term 'extra'"),
    "term list": ("reward_terms", _terms(lambda v: [0.0, 0.0, 0.0]), "term 'extra' is list"),
    "term None": ("reward_terms", _terms(lambda v: None), "term 'extra' is NoneType"),
    "success float": ("evaluate", _with(success=np.zeros(3)), r"Evaluation.success .*bool array of shape \(3,\)"),
    "failure (1,)": ("evaluate", _with(failure=np.zeros(1, bool)), r"Evaluation.failure .*shape \(1,\)"),
    "metric (3, 2)": ("evaluate", _with(metrics={"m": np.zeros((3, 2))}), r"metric 'm' .*shape \(3,\)"),
    "not an Evaluation": ("evaluate", lambda ev: {"success": ev.success}, "must return an Evaluation"),
    "observe extra key": ("observe", lambda o: {**o, "junk": o["proprio"]}, r"undeclared keys \['junk'\]"),
    "observe int": ("observe", lambda o: {**o, "proprio": o["proprio"].astype(np.int32)},
                    r"'proprio' as an array of dtype int32 .*expected a float array of shape"),
    "observe missing": ("observe", lambda o: {k: v for k, v in o.items() if k != "proprio"}, "'proprio' as nothing"),
    "observe shape": ("observe", lambda o: {**o, "proprio": o["proprio"][:, :1]}, r"expected a float array of shape"),
}


@pytest.mark.parametrize("case", list(BAD_HOOKS))
def test_bad_task_hook_outputs_are_named(case):
    env = _env()
    env.reset(seed=0)
    hook, change, match = BAD_HOOKS[case]
    _patch(env, hook, change)
    with pytest.raises(RuntimeError, match=match) as err:
        env.step(_zeros(env))
    assert str(err.value).startswith(f"{type(env.task).__name__}.{hook}")  # names the task class and the hook
    env.close()


def test_good_task_hook_outputs_pass():
    """Real scalars and int arrays are valid terms and metrics; the reward is still the terms' sum."""
    env = _env()
    env.reset(seed=0)
    _patch(env, "reward_terms", lambda t: {**t, "a": 1, "b": np.float32(0.5), "c": np.arange(3), "d": np.float64(2)})
    _patch(env, "evaluate", _with(metrics={"distance": 3.0, "fell": np.arange(3)}))  # Walker's metric_names
    _, reward, _, _, info = env.step(_zeros(env))
    np.testing.assert_allclose(reward, sum(info["reward_terms"].values()))
    np.testing.assert_array_equal(info["metrics"]["fell"], [0, 1, 2])
    env.close()


def test_single_env_rng_state_restores_np_random_in_place():
    env = VRBEnv(WALKER, obs_mode="state")
    env.reset(seed=1)
    g = env.np_random
    st = env.get_state(rng=True)
    first = env.reset()[0]["privileged"]
    env.set_state(st)
    assert env.np_random is g and env.vector_env.get_rng(0) is g
    np.testing.assert_array_equal(env.reset()[0]["privileged"], first)
    env.close()
