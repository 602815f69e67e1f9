"""Would a compiled env step reach the physics-only goal? Walker's whole step in numba kernels, timed in place.

Usage: python scripts/bench_compiled_step.py [--tasks VRB/Walker-v1 VRB/Walker-v0] [--num-envs 64]
       [--rounds 20] [--steps 100] [--check-steps 300]

Needs ``numba`` (``pip install numba``; not a dependency of VRB). An experiment, not a second implementation of
the task: it answers whether the 0.9x ``mujoco.batch`` goal of the physics-only env at N=64 is out of reach of
the numpy task code only or of any env with a Python step. The env's step for the Walker tasks is replaced by two
numba kernels around the bare ``mujoco.batch`` call: one checks the actions and writes the controls, one does the
physics-error checks, reward terms, termination, truncation, success, metrics, the action history and the vector
observations in one pass over the batch, straight from the state rows into preallocated arrays. Python is left
with the physics call, the autoreset of the envs that ended (the env's own ``_reset_ids``, with its per-env
generators) and the Gymnasium return values (observation and ``info`` dicts with their ``_k`` masks).

First the compiled step is checked against the env's own step: two envs with the same seed take the same
``--check-steps`` random actions, and every returned value must agree (the metric ``distance`` to 1e-9, since the
kernel reads the torso x from ``qpos`` instead of ``xpos``; everything else exactly). Then it alternates chunks
of the env's step, the compiled step and the bare loop (as ``bench_physics_overhead.py``) and prints medians:
per step, the time in the physics call and outside it, the bare loop's time and bare / loop. The last column is
the same compiled Python timed in a hot loop with the physics call replaced by nothing (no resets happen there),
to compare with the time it takes in place, right after a physics call.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import mujoco
import mujoco.batch
import numpy as np

import visual_robo_bench  # noqa: F401  (registers the tasks)
from visual_robo_bench.core.sim import state_columns

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_physics_overhead import _raw_loop  # noqa: E402

try:
    import numba
except ImportError:  # pragma: no cover - an optional experiment
    sys.exit("bench_compiled_step.py needs numba: pip install numba")

_QPOS, _QVEL, _CTRL = mujoco.mjtState.mjSTATE_QPOS, mujoco.mjtState.mjSTATE_QVEL, mujoco.mjtState.mjSTATE_CTRL
_STAGE_VEL = int(mujoco.mjtStage.mjSTAGE_VEL)
BARE = "bare `mujoco.batch` loop"


@numba.njit
def _apply_action(a, state, ctrl_cols, mid, half):  # pragma: no cover - compiled
    """Controls from actions in [-1, 1] (the default ``apply_action``); the first env with a value outside, or -1."""
    n, m = a.shape
    for i in range(n):
        for j in range(m):
            v = a[i, j]
            if not (-1.0 <= v <= 1.0):  # NaN fails too
                return i
    for i in range(n):
        for j in range(m):
            state[i, ctrl_cols[j]] = mid[j] + a[i, j] * half[j]
    return -1


@numba.njit
def _walker_step(a, state, warning, raised, restarted, cols, weights, x0, elapsed, max_steps, prev, prev2,
                 fout, bout):  # pragma: no cover - compiled
    """Everything of ``VRBVectorEnv.step`` for the Walker tasks after the physics call, envs that restart aside.

    ``cols``: [v_x, x, h, pitch, then every qvel] state columns; ``weights``: [forward, alive, action, torso x
    offset, success distance]. Writes ``fout`` rows [reward, forward, alive, action, distance, fell] and ``bout``
    rows [terminated, truncated, success, physics error].
    """
    n, m = a.shape
    w_act = np.float32(weights[2])
    for i in range(n):
        bad = raised[i]
        for k in range(warning.shape[1]):
            if warning[i, k, 1] != 0:
                bad = True
        total = 0.0
        for c in range(state.shape[1]):
            total += state[i, c]
        if not np.isfinite(total):
            bad = True
        sq = np.float32(0.0)  # np.sum(action**2, axis=1) of float32 actions: float32, in order for 6 values
        for j in range(m):
            sq += a[i, j] * a[i, j]
        forward, alive, action = weights[0] * state[i, cols[0]], weights[1], float(w_act * sq)
        if bad:
            forward, alive, action = 0.0, 0.0, 0.0
        h, pitch = state[i, cols[2]], state[i, cols[3]]
        fail = h < -0.5 or h > 0.7 or abs(pitch) > 1.0
        for c in range(4, cols.shape[0]):
            if abs(state[i, cols[c]]) > 100.0:
                fail = True
        distance = weights[3] + state[i, cols[1]] - x0[i]
        elapsed[i] += 1
        terminated = fail or bad
        fout[0, i] = forward + alive + action
        fout[1, i], fout[2, i], fout[3, i] = forward, alive, action
        fout[4, i], fout[5, i] = distance, 1.0 if fail else 0.0
        bout[0, i] = terminated
        bout[1, i] = elapsed[i] >= max_steps and not terminated
        bout[2, i] = distance >= weights[4] and not fail and not bad
        bout[3, i] = bad
        if not restarted[i]:  # after_step: the action history
            for j in range(m):
                prev2[i, j] = prev[i, j]
                prev[i, j] = a[i, j]
    warning[:] = 0


@numba.njit
def _observe(state, proprio_cols, privileged_cols, proprio, privileged):  # pragma: no cover - compiled
    for i in range(state.shape[0]):
        for c in range(proprio_cols.shape[0]):
            proprio[i, c] = state[i, proprio_cols[c]]
        for c in range(privileged_cols.shape[0]):
            privileged[i, c] = state[i, privileged_cols[c]]


def compiled_step(env: Any) -> Callable[..., tuple]:
    """``env.step`` for a Walker env (``obs_mode="state"``, default settings) with its work in the kernels above.

    Returns:
        ``step(actions, physics=None)``: the same return values as ``env.step``; ``physics`` replaces the physics
        call (the hot-loop timing).
    """
    venv = env.unwrapped
    task, sim, cfg, n = venv.task, venv.sim, venv.cfg, venv.num_envs
    model, batch, state = venv.model, sim._batch, sim.state
    ctrl_cols = state_columns(model, _CTRL, np.arange(model.nu))
    mid, half = np.asarray(task._ctrl_mid, np.float64), np.asarray(task._ctrl_half, np.float64)
    cols = np.r_[state_columns(model, _QVEL, [task.v_x]), state_columns(model, _QPOS, [task.root_x_adr]),
                 task.failure_cols]
    weights = np.array([cfg.w_forward, cfg.w_alive, cfg.w_action, task.torso_x_offset, cfg.success_distance])
    x0, prev, prev2 = venv.state["x0"][:, 0], venv.state["prev_action"], venv.state["prev_action2"]
    proprio, privileged = venv._vec["proprio"], venv._vec["privileged"]
    obs_keys = [k for k in venv._vec if k in venv.single_observation_space.spaces]  # "privileged" in state mode
    raised = np.zeros(n, dtype=bool)
    keys = ("elapsed_steps", "success", "physics_error", "is_success", "privileged", "reward_terms", "metrics")

    def step(actions: Any, physics: Callable[[], None] | None = None) -> tuple:
        a = np.asarray(actions)
        if a.dtype != np.float32 or a.shape != (n, task.action_dim):
            raise ValueError(f"actions must be float32 of shape {(n, task.action_dim)}")
        restarted = venv._done.copy()
        first_bad = _apply_action(a, state, ctrl_cols, mid, half)
        if first_bad >= 0:
            raise ValueError(f"actions of env {first_bad} are not finite values in [-1, 1]")
        raised[:] = False
        if physics is None:
            try:
                batch.step(None, nstep=cfg.substeps, stage=_STAGE_VEL)
            except mujoco.batch.SimulationError as err:
                raised[np.asarray(err.ids)] = True
        else:
            physics()
        if sim._any_stale:  # as BatchSim.step: a step leaves the derived fields of every row current
            sim._stale[:] = False
            sim._any_stale = False
        fout, bout = np.empty((6, n)), np.empty((4, n), dtype=bool)
        _walker_step(a, state, sim._warning, raised, restarted, cols, weights, x0, venv._elapsed,
                     venv.max_episode_steps, prev, prev2, fout, bout)
        if restarted.any():
            ids = np.flatnonzero(restarted)
            venv._reset_ids(ids, refresh=False)
            fout[:, ids] = 0.0
            bout[:, ids] = False
        _observe(state, task.legs_cols, task.planar_cols, proprio, privileged)
        venv._done = bout[0] | bout[1]
        info = {"elapsed_steps": venv._elapsed.copy(), "success": bout[2], "physics_error": bout[3],
                "is_success": bout[2].copy(), "privileged": privileged.copy(),
                "reward_terms": {"forward": fout[1], "alive": fout[2], "action": fout[3]},
                "metrics": {"distance": fout[4], "fell": fout[5]}}
        for k, row in zip(keys, np.ones((len(keys), n), dtype=bool)):
            info[f"_{k}"] = row
        return {k: venv._vec[k].copy() for k in obs_keys}, fout[0], bout[0], bout[1], info

    return step


def _flat(x: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """``{"obs/privileged": ..., "info/reward_terms/alive": ...}`` for a step's return values."""
    if isinstance(x, tuple):
        x = dict(zip(("obs", "reward", "terminated", "truncated", "info"), x))
    if isinstance(x, dict):
        return {k: v for key, val in x.items() for k, v in _flat(val, f"{prefix}{key}/").items()}
    return {prefix.rstrip("/"): np.asarray(x)}


def check(task: str, n: int, steps: int) -> None:
    """Raise unless the compiled step returns what the env's step returns, step by step from the same seed."""
    envs = [gym.make_vec(task, num_envs=n, obs_mode="state") for _ in range(2)]
    for e in envs:
        e.reset(seed=0)
    fast = compiled_step(envs[1])
    rng = np.random.default_rng(2)
    ended = 0
    for t in range(steps):
        a = rng.uniform(-1, 1, envs[0].action_space.shape).astype(np.float32)
        ref, got = _flat(envs[0].step(a)), _flat(fast(a))
        if ref.keys() != got.keys():
            raise AssertionError(f"{task}: keys differ: {sorted(ref.keys() ^ got.keys())}")
        for k in ref:
            same = (np.allclose(ref[k], got[k], rtol=0, atol=1e-9) if k == "info/metrics/distance"
                    else ref[k].dtype == got[k].dtype and np.array_equal(ref[k], got[k]))
            if not same:
                raise AssertionError(f"{task}: step {t}: {k} differs: {ref[k]} vs {got[k]}")
        ended += int((ref["terminated"] | ref["truncated"]).sum())
    for e in envs:
        e.close()
    print(f"{task}: the compiled step returned the env's values for {steps} steps ({ended} episode ends)")


def compare(task: str, n: int, rounds: int, steps: int) -> list[tuple[str, float, float, float, float]]:
    """Alternating chunks of the env's step, the compiled step and the bare loop; medians (us per step)."""
    envs = [gym.make_vec(task, num_envs=n, obs_mode="state") for _ in range(2)]
    for e in envs:
        e.reset(seed=0)
    fast = compiled_step(envs[1])
    rng = np.random.default_rng(1)
    actions = [rng.uniform(-1, 1, envs[0].action_space.shape).astype(np.float32) for _ in range(16)]
    physics = [0.0]

    def timed(call: Callable[[], Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                physics[0] += time.perf_counter() - start
        return wrapped

    envs[0].unwrapped.sim.step = timed(envs[0].unwrapped.sim.step)
    batch = envs[1].unwrapped.sim._batch
    batch_step = batch.step
    batch.step = timed(batch_step)  # an instance attribute shadows the method

    def loop(step: Callable[..., Any]) -> Callable[[int], tuple[float, float]]:
        def run(k: int) -> tuple[float, float]:
            physics[0] = 0.0
            start = time.perf_counter()
            for i in range(k):
                step(actions[i % 16])
            return (time.perf_counter() - start) / k, physics[0] / k
        return run

    venv = envs[0].unwrapped
    raw = _raw_loop(venv.model, n, venv.sim.nthread, venv.cfg.substeps)
    runs = {"env step (numpy task code)": loop(envs[0].step), "compiled step (numba kernels)": loop(fast),
            BARE: lambda k: (raw(k), float("nan"))}
    for run in runs.values():
        run(steps)  # warm-up (and the kernels' compilation)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(run(steps))
    hot = [loop(lambda a: fast(a, physics=lambda: None))(steps)[0] for _ in range(5)]
    for e in envs:
        e.close()
    bare = np.array([t for t, _ in times[BARE]])
    rows = []
    for name, ts in times.items():
        total, phys = np.array(ts).T  # phys: NaN for the bare loop, which has no "rest"
        rows.append((name, float(np.median(total)), float(np.median(phys)), float(np.median(total - phys)),
                     float(np.median(bare / total))))
    rows.append(("compiled step, hot loop without physics", float(np.median(hot)), 0.0, float(np.median(hot)),
                 float("nan")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["VRB/Walker-v1", "VRB/Walker-v0"])
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--check-steps", type=int, default=300)
    args = parser.parse_args()
    for task in args.tasks:
        if not task.startswith("VRB/Walker-"):
            sys.exit(f"{task}: the kernels here are Walker's (VRB/Walker-v1, VRB/Walker-v0)")
        check(task, args.num_envs, args.check_steps)
    print("\n| task | N | loop | us/step | of which physics call | of which the rest | bare / loop (median) |")
    print("|---|---|---|---|---|---|---|")
    fmt = lambda x: "-" if x != x else f"{x * 1e6:,.0f}"  # noqa: E731
    for task in args.tasks:
        for name, total, phys, rest, ratio in compare(task, args.num_envs, args.rounds, args.steps):
            print(f"| {task} | {args.num_envs} | {name} | {fmt(total)} | {fmt(phys)} | {fmt(rest)} | "
                  f"{'-' if ratio != ratio else f'{ratio:.2f}x'} |")


if __name__ == "__main__":
    main()
