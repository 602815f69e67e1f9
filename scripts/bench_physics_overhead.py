"""Physics-only env vs a bare ``mujoco.batch`` loop, interleaved, and where the difference goes.

Usage: python scripts/bench_physics_overhead.py [--tasks VRB/Walker-v1 VRB/Walker-v0] [--num-envs 64 256]
       [--rounds 30] [--steps 100] [--hollow] [--gaps 25 50 100 200 [--spinner]] [--cold]

Alternates short chunks of the two loops (``--steps`` steps each, ``--rounds`` times) in one process and prints
medians, so that drifts of a shared or virtual machine's speed hit both alike (``vrb bench`` runs its stages one
after the other and is exposed to them). Both loops use the same model, N, threads and sub-steps; the env runs
``obs_mode="state"`` with random actions and autoreset, the bare loop writes random controls and never resets.
The env's step time is split into its physics call (``BatchSim.step``) and everything else (Python: action
check, task hooks, autoreset, info). ``--hollow`` adds a row per env whose task hooks except ``apply_action``
return constants (no task cost and no resets: a bound for compiled task code with this env step).

``--gaps`` prints a calibration table per task and N, again in alternating chunks: the bare loop against the same
loop stepped through ``BatchSim.step`` (VRB's simulation layer with its physics-error checks, no env) and against
the bare loop with G us of busy Python (a spin on ``time.perf_counter``, no numpy) after every physics call. Those
rows bound what any env that spends G us per step outside its physics call can reach on this machine.
``--spinner`` repeats the bare and gap rows with an idle-priority process spinning during their chunks (it runs
only where a core would idle): if the gaps then cost less, their extra cost is cores waking from idle.

``--cold`` prints how long the env's own Python takes depending on what ran just before it: the env steps with its
physics call replaced by a stand-in (the env's state does not move, so every row runs the same Python work), and
the time outside the stand-in is the Python's. Stand-ins: nothing (a hot loop, the cost of the Python alone), a
1 ms busy spin, a 1 ms sleep, a 32 MB memory copy, and the bare loop's physics call on 1 and on 2 threads. The
difference between the first row and the physics rows is what running after physics adds to the same Python.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from typing import Any

import gymnasium as gym
import mujoco
import mujoco.batch
import numpy as np

import visual_robo_bench  # noqa: F401  (registers the tasks)
from visual_robo_bench.core.task import Evaluation


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _raw_loop(model: mujoco.MjModel, n: int, nthread: int, substeps: int, gap: float = 0.0, layer: bool = False):
    """A bare batch with random controls (the same sequence for every loop); returns ``run(steps) -> seconds per step``.

    Args:
        gap: Seconds of busy Python (a spin, no numpy) after every physics call.
        layer: Step through VRB's simulation layer (``BatchSim.step``, with its physics-error checks) instead.
    """
    if layer:
        from visual_robo_bench.core.sim import BatchSim

        sim = BatchSim(model, n, nthread)
        ctrl = sim.ctrl

        def physics() -> None:
            sim.step(None, substeps)
    else:
        batch = mujoco.batch.Batch(model, nsim=n, nthread=nthread, persistent=True)
        ctrl = batch.bind("ctrl")

        def physics() -> None:
            try:
                batch.step(None, nstep=substeps)
            except mujoco.batch.SimulationError:
                pass  # MuJoCo resets a diverging sim; irrelevant for throughput

    lo, hi = model.actuator_ctrlrange.T
    rng = np.random.default_rng(0)
    ctrls = [rng.uniform(lo, hi, size=(n, model.nu)) for _ in range(16)]

    def run(steps: int) -> float:
        start = time.perf_counter()
        for i in range(steps):
            ctrl[:] = ctrls[i % 16]
            physics()
            if gap:
                _spin(gap)
        return (time.perf_counter() - start) / steps

    return run


def hollow_out(venv: Any) -> None:
    """Replace the task hooks of ``venv`` except ``apply_action`` by constant-output stand-ins: no task cost,
    no termination (the actions still drive the robot, so its physics stays comparable with the bare loop's).

    A diagnostic bound, not a task: what the env costs with free task code (e.g. compiled kernels).
    """
    n, task, cfg = venv.num_envs, venv.task, venv.cfg
    zeros, never = np.zeros(n), np.zeros(n, dtype=bool)
    no_action = np.zeros(venv.action_space.shape, np.float32)
    terms = {k: zeros for k in task.reward_terms(venv.sim, venv.state, no_action, np.arange(n))}
    obs = {k: np.zeros((n, d)) for k, d in (("proprio", cfg.proprio_dim), ("privileged", cfg.privileged_dim),
                                             ("height_scan", cfg.height_scan_dim)) if d}
    task.after_step = lambda sim, state, action, ids: None
    task.reward_terms = lambda sim, state, action, ids: terms
    task.evaluate = lambda sim, state, ids: Evaluation(never, never, {m: zeros for m in task.metric_names})
    task.observe = lambda sim, state, ids: obs


def interleaved(task: str, n: int, rounds: int, steps: int, hollow: bool = False) -> dict[str, float]:
    """Medians of the env's step (total and physics call) and the bare loop's, in alternating chunks (seconds)."""
    env = gym.make_vec(task, num_envs=n, obs_mode="state")
    env.reset(seed=0)
    venv = env.unwrapped
    if hollow:
        hollow_out(venv)
    physics = [0.0]
    sim_step = venv.sim.step

    def timed_step(env_ids, nstep):
        start = time.perf_counter()
        out = sim_step(env_ids, nstep)
        physics[0] += time.perf_counter() - start
        return out

    venv.sim.step = timed_step
    rng = np.random.default_rng(1)
    actions = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(16)]
    resets = [0]

    def env_run(k: int) -> tuple[float, float]:
        physics[0] = 0.0
        start = time.perf_counter()
        for i in range(k):
            _, _, term, trunc, _ = env.step(actions[i % 16])
            resets[0] += int((term | trunc).sum())
        return (time.perf_counter() - start) / k, physics[0] / k

    raw_run = _raw_loop(venv.model, n, venv.sim.nthread, venv.cfg.substeps)
    env_run(steps), raw_run(steps)  # warm-up
    resets[0] = 0
    e, p, r = [], [], []
    for _ in range(rounds):
        total, phys = env_run(steps)
        e.append(total)
        p.append(phys)
        r.append(raw_run(steps))
    env.close()
    e, p, r = np.array(e), np.array(p), np.array(r)
    return {"env": float(np.median(e)), "physics": float(np.median(p)), "python": float(np.median(e - p)),
            "raw": float(np.median(r)), "ratio": float(np.median(r / e)),
            "q25": float(np.quantile(r / e, 0.25)), "q75": float(np.quantile(r / e, 0.75)),
            "resets_per_step": resets[0] / (rounds * steps)}


def _idle_spinner() -> subprocess.Popen:
    """A stopped child process that, once continued, spins at ``SCHED_IDLE`` priority (Linux).

    It runs only when a core would otherwise idle, so it keeps the machine's cores from halting between physics
    calls; any other thread that wakes up preempts it.
    """
    code = "import os\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\nwhile True:\n    pass\n"
    proc = subprocess.Popen([sys.executable, "-c", code])
    proc.send_signal(signal.SIGSTOP)
    return proc


def calibrate(task: str, n: int, rounds: int, steps: int, gaps_us: list[float],
              spinner: bool = False) -> list[tuple[str, float, float]]:
    """Bare loop vs ``BatchSim.step`` and vs the bare loop plus busy gaps, alternating chunks.

    ``spinner`` adds the bare loop and the gap rows again with :func:`_idle_spinner` running during their chunks.

    Returns:
        ``(row name, us per step, bare / row median)`` per row, the bare loop first.
    """
    env = gym.make_vec(task, num_envs=n, obs_mode="state")
    venv = env.unwrapped
    model, substeps, nthread = venv.model, venv.cfg.substeps, venv.sim.nthread
    env.close()
    rows = [("bare `mujoco.batch` loop", _raw_loop(model, n, nthread, substeps), False),
            ("`BatchSim.step` (simulation layer)", _raw_loop(model, n, nthread, substeps, layer=True), False)]
    rows += [(f"bare loop + {g:g} us of Python per step", _raw_loop(model, n, nthread, substeps, g * 1e-6), False)
             for g in gaps_us]
    if spinner:
        rows += [(f"{name}, idle-priority spinner running", _raw_loop(model, n, nthread, substeps, g * 1e-6), True)
                 for name, g in [("bare loop", 0.0)] + [(f"bare loop + {g:g} us", g) for g in gaps_us]]
    proc = _idle_spinner() if spinner else None
    try:
        def chunk(run, spin: bool) -> float:
            if spin:
                proc.send_signal(signal.SIGCONT)
            try:
                return run(steps)
            finally:
                if spin:
                    proc.send_signal(signal.SIGSTOP)

        for _, run, spin in rows:
            chunk(run, spin)  # warm-up
        times: list[list[float]] = [[] for _ in rows]
        for _ in range(rounds):
            for t, (_, run, spin) in zip(times, rows):
                t.append(chunk(run, spin))
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
    bare = np.array(times[0])
    return [(name, float(np.median(t)), float(np.median(bare / np.array(t)))) for (name, _, _), t in zip(rows, times)]


def cold_python(task: str, n: int, rounds: int, steps: int) -> list[tuple[str, float]]:
    """The env's Python per step after each stand-in for its physics call (see ``--cold``), alternating chunks.

    Returns:
        ``(stand-in, median us of Python per step)`` per row.
    """
    env = gym.make_vec(task, num_envs=n, obs_mode="state")
    env.reset(seed=0)
    venv = env.unwrapped
    model, substeps, nthread = venv.model, venv.cfg.substeps, venv.sim.nthread
    src, dst = np.ones(2_000_000), np.empty(2_000_000)  # 16 MB each
    batches = {k: mujoco.batch.Batch(model, nsim=n, nthread=k, persistent=True) for k in (1, nthread)}

    def physics(k: int):
        def run() -> None:
            try:
                batches[k].step(None, nstep=substeps)
            except mujoco.batch.SimulationError:
                pass
        return run

    stand_ins = {"nothing": lambda: None, "a 1 ms busy spin": lambda: _spin(1e-3),
                 "a 1 ms sleep": lambda: time.sleep(1e-3), "a 32 MB memory copy": lambda: np.copyto(dst, src)}
    for k in sorted(batches):
        stand_ins[f"bare physics call, {k} thread{'s' if k > 1 else ''}"] = physics(k)
    no_error = np.zeros(n, dtype=bool)
    outside = [0.0]

    def stand_in_step(run):
        def step(env_ids, nstep) -> np.ndarray:
            start = time.perf_counter()
            run()
            outside[0] += time.perf_counter() - start
            return no_error.copy()
        return step

    rng = np.random.default_rng(1)
    actions = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(16)]

    def chunk(run) -> float:
        venv.sim.step = stand_in_step(run)
        outside[0] = 0.0
        start = time.perf_counter()
        for i in range(steps):
            env.step(actions[i % 16])
        return (time.perf_counter() - start - outside[0]) / steps

    for run in stand_ins.values():
        chunk(run)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in stand_ins}
    for _ in range(rounds):
        for name, run in stand_ins.items():
            times[name].append(chunk(run))
    env.close()
    return [(name, float(np.median(t))) for name, t in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["VRB/Walker-v1", "VRB/Walker-v0"])
    parser.add_argument("--num-envs", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--steps", type=int, default=100, help="steps per chunk at N=64 (scaled by 64/N)")
    parser.add_argument("--hollow", action="store_true",
                        help="also time each env with constant-output task hooks (no task cost, no resets)")
    parser.add_argument("--gaps", nargs="*", type=float, default=None, metavar="US",
                        help="also print the calibration table: the simulation layer and the bare loop with these "
                             "busy gaps (microseconds) after every physics call")
    parser.add_argument("--spinner", action="store_true",
                        help="with --gaps: repeat the bare and gap rows with an idle-priority spinning process that "
                             "keeps the cores from halting between physics calls (a diagnostic, Linux only)")
    parser.add_argument("--cold", action="store_true",
                        help="also print the env's Python per step after each stand-in for its physics call")
    args = parser.parse_args()

    print("| task | N | env us/step | of which physics call | of which the rest (Python) | bare `mujoco.batch` "
          "us/step | bare / env (median) | interquartile | env resets per step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for task in args.tasks:
        for n in args.num_envs:
            for hollow in (False, True) if args.hollow else (False,):
                s = interleaved(task, n, args.rounds, max(10, args.steps * 64 // n), hollow)
                name = f"{task} (hollow task hooks)" if hollow else task
                print(f"| {name} | {n} | {s['env'] * 1e6:,.0f} | {s['physics'] * 1e6:,.0f} | "
                      f"{s['python'] * 1e6:,.0f} | {s['raw'] * 1e6:,.0f} | {s['ratio']:.2f}x | "
                      f"{s['q25']:.2f}-{s['q75']:.2f} | {s['resets_per_step']:.2f} |", flush=True)
    if args.cold:
        print("\n| task | N | what ran before the env's Python | env Python us/step |")
        print("|---|---|---|---|")
        for task in args.tasks:
            for n in args.num_envs:
                for name, sec in cold_python(task, n, args.rounds, max(10, args.steps * 64 // n)):
                    print(f"| {task} | {n} | {name} | {sec * 1e6:,.0f} |", flush=True)
    if args.gaps is None:
        return
    print("\n| task | N | loop | us/step | bare / loop (median) |")
    print("|---|---|---|---|---|")
    for task in args.tasks:
        for n in args.num_envs:
            for name, us, ratio in calibrate(task, n, args.rounds, max(10, args.steps * 64 // n), args.gaps,
                                             args.spinner):
                print(f"| {task} | {n} | {name} | {us * 1e6:,.0f} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
