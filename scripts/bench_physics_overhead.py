"""Physics-only env vs a bare ``mujoco.batch`` loop, interleaved, and where the difference goes.

Usage: python scripts/bench_physics_overhead.py [--tasks VRB/Walker-v1 VRB/Walker-v0] [--num-envs 64 256]
       [--rounds 40] [--steps 100] [--gaps 0 50 100 200]

Part 1 alternates short chunks of the two loops (``--steps`` steps each, ``--rounds`` times) in one process and
prints medians, so that drifts of a shared or virtual machine's speed hit both alike (``vrb bench`` runs its
stages one after the other and is exposed to them). Both loops use the same model, N, threads and sub-steps; the
env runs ``obs_mode="state"`` with random actions and autoreset, the bare loop writes random controls and never
resets. Part 2 times the bare loop's ``Batch.step`` call alone after a busy gap of G microseconds between calls
(standing in for any per-step work: an env's Python, a policy): how much a call slows down when the thread
pool waits between calls.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import mujoco
import mujoco.batch
import numpy as np

import visual_robo_bench  # noqa: F401  (registers the tasks)


def _raw_loop(model: mujoco.MjModel, n: int, nthread: int, substeps: int):
    """A bare batch with random controls; returns ``run(steps) -> seconds per step`` and the batch."""
    batch = mujoco.batch.Batch(model, nsim=n, nthread=nthread, persistent=True)
    ctrl = batch.bind("ctrl")
    lo, hi = model.actuator_ctrlrange.T
    rng = np.random.default_rng(0)
    ctrls = [rng.uniform(lo, hi, size=(n, model.nu)) for _ in range(16)]

    def run(steps: int) -> float:
        start = time.perf_counter()
        for i in range(steps):
            ctrl[:] = ctrls[i % 16]
            try:
                batch.step(None, nstep=substeps)
            except mujoco.batch.SimulationError:
                pass  # MuJoCo resets a diverging sim; irrelevant for throughput
        return (time.perf_counter() - start) / steps

    return run, batch


def interleaved(task: str, n: int, rounds: int, steps: int) -> dict[str, float]:
    """Median seconds per step of the physics-only env and the bare loop, measured in alternating chunks."""
    env = gym.make_vec(task, num_envs=n, obs_mode="state")
    env.reset(seed=0)
    venv = env.unwrapped
    rng = np.random.default_rng(1)
    actions = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(16)]
    resets = [0]

    def env_run(k: int) -> float:
        start = time.perf_counter()
        for i in range(k):
            _, _, term, trunc, _ = env.step(actions[i % 16])
            resets[0] += int((term | trunc).sum())
        return (time.perf_counter() - start) / k

    raw_run, _batch = _raw_loop(venv.model, n, venv.sim.nthread, venv.cfg.substeps)
    env_run(steps), raw_run(steps)  # warm-up
    resets[0] = 0
    e, r = [], []
    for _ in range(rounds):
        e.append(env_run(steps))
        r.append(raw_run(steps))
    env.close()
    e, r = np.array(e), np.array(r)
    return {"env": float(np.median(e)), "raw": float(np.median(r)), "ratio": float(np.median(r / e)),
            "q25": float(np.quantile(r / e, 0.25)), "q75": float(np.quantile(r / e, 0.75)),
            "resets_per_step": resets[0] / (rounds * steps)}


def gap_penalty(task: str, n: int, gaps: list[float], rounds: int, steps: int) -> dict[float, float]:
    """Median seconds of one ``Batch.step`` call after a busy gap of each length (microseconds)."""
    env = gym.make_vec(task, num_envs=n, obs_mode="state")
    venv = env.unwrapped
    batch = mujoco.batch.Batch(venv.model, nsim=n, nthread=venv.sim.nthread, persistent=True)
    substeps = venv.cfg.substeps
    env.close()

    def run(gap_us: float) -> float:
        total = 0.0
        for _ in range(steps):
            until = time.perf_counter() + gap_us * 1e-6
            while time.perf_counter() < until:
                pass
            start = time.perf_counter()
            batch.step(None, nstep=substeps)
            total += time.perf_counter() - start
        return total / steps

    run(0.0)
    out: dict[float, list[float]] = {g: [] for g in gaps}
    for _ in range(rounds):
        for g in gaps:
            out[g].append(run(g))
    return {g: float(np.median(v)) for g, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["VRB/Walker-v1", "VRB/Walker-v0"])
    parser.add_argument("--num-envs", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--steps", type=int, default=100, help="steps per chunk (divided by N/64 for larger N)")
    parser.add_argument("--gaps", nargs="+", type=float, default=[0, 50, 100, 200])
    args = parser.parse_args()

    print("| task | N | physics-only env us/step | bare mujoco.batch us/step | env / bare (median) | "
          "interquartile | env resets per step |")
    print("|---|---|---|---|---|---|---|")
    for task in args.tasks:
        for n in args.num_envs:
            s = interleaved(task, n, args.rounds, max(10, args.steps * 64 // n))
            print(f"| {task} | {n} | {s['env'] * 1e6:,.0f} | {s['raw'] * 1e6:,.0f} | {s['ratio']:.2f}x | "
                  f"{s['q25']:.2f}-{s['q75']:.2f} | {s['resets_per_step']:.2f} |", flush=True)
    task, n = args.tasks[0], args.num_envs[0]
    pen = gap_penalty(task, n, args.gaps, max(4, args.rounds // 4), 200)
    print(f"\n{task}, N={n}: one bare Batch.step call after a busy gap of G us between calls")
    print("| gap G (us) | call (us) | slower than G=0 by (us) |")
    print("|---|---|---|")
    base = pen[args.gaps[0]]
    for g, t in pen.items():
        print(f"| {g:.0f} | {t * 1e6:,.0f} | {(t - base) * 1e6:+,.0f} |")


if __name__ == "__main__":
    main()
