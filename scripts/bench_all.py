"""Run ``vrb bench`` on every registered task and print the README's bench tables (Markdown).

Usage: MUJOCO_GL=egl python scripts/bench_all.py [--num-envs 64] [--seconds 3] [--tasks VRB/Walker-v1 ...]
       [--no-gymnasium-utils]
Run it on a quiet machine: every figure is a throughput.

Two tables: VRB's own loops against the ceilings and peers, then the same envs measured by Gymnasium's
``gymnasium.utils.performance`` functions (``benchmark_vector_step`` on the pixel and the physics-only vector
env, ``benchmark_step`` and ``benchmark_render`` on the single env; figures comparable with any Gymnasium env's).
"""

from __future__ import annotations

import argparse
import os

import visual_robo_bench
from visual_robo_bench.bench import GYMNASIUM_UTILS_ROWS, SOURCE_GYMNASIUM_UTILS, machine_description, run_bench


def _fmt(x) -> str:
    return "-" if x is None else f"{x:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--no-gymnasium-utils", action="store_true",
                        help="skip the gymnasium.utils.performance stages (4 x --seconds per task)")
    args = parser.parse_args()
    tasks = args.tasks or visual_robo_bench.list_tasks()
    gym_lines = ["| task | `benchmark_vector_step` pixels (env steps/s) | `benchmark_vector_step` physics-only "
                 "(env steps/s) | `benchmark_step` single env (env steps/s) | `benchmark_render` single env "
                 "(`render()` calls/s) |", "|---|---|---|---|---|"]
    lines = ["| task | vrb physics-only steps/s | raw `mujoco.batch` steps/s | physics-only / raw | vrb pixels frames/s | "
             "raw tiled render frames/s | dm_control pixels | Gymnasium `rgb_array` | vrb pixels / dm_control | "
             "peak RSS (MB) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for task in tasks:
        rows = {r["name"]: r for r in run_bench(task, num_envs=args.num_envs, seconds=args.seconds,
                                                 gymnasium_utils=not args.no_gymnasium_utils)}
        get = lambda key, field: rows.get(key, {}).get(field)  # noqa: E731
        pix = get("vrb pixels", "frames_per_s")
        dmc = get("dm_control pixels wrapper", "frames_per_s")
        phys, raw = get("vrb physics-only", "env_steps_per_s"), get("raw mujoco.batch (ceiling)", "env_steps_per_s")
        lines.append(
            f"| {task} | {_fmt(phys)} | {_fmt(raw)} | {'-' if not (phys and raw) else f'{phys / raw:.2f}x'} | "
            f"{_fmt(pix)} | "
            f"{_fmt(get('raw tiled render (ceiling)', 'frames_per_s'))} | {_fmt(dmc)} | "
            f"{_fmt(get('gymnasium rgb_array', 'frames_per_s'))} | "
            f"{'-' if not (pix and dmc) else f'{pix / dmc:.0f}x'} | "
            f"{_fmt(max(r['peak_rss_mb'] for r in rows.values() if r['source'] != SOURCE_GYMNASIUM_UTILS))} |")
        print(lines[-1], flush=True)
        if not args.no_gymnasium_utils:
            vec_pix, vec_phys, step, render = GYMNASIUM_UTILS_ROWS
            gym_lines.append(f"| {task} | {_fmt(get(vec_pix, 'env_steps_per_s'))} | "
                             f"{_fmt(get(vec_phys, 'env_steps_per_s'))} | {_fmt(get(step, 'env_steps_per_s'))} | "
                             f"{_fmt(get(render, 'frames_per_s'))} |")
            print(gym_lines[-1], flush=True)
    m = machine_description()
    print(f"\nmachine: {m}; load average at the end: {os.getloadavg()}\n")
    print("\n".join(lines))
    if not args.no_gymnasium_utils:
        print(f"\n`gymnasium.utils.performance` on the same envs (N={args.num_envs}; {args.seconds:g} s each):\n")
        print("\n".join(gym_lines))


if __name__ == "__main__":
    main()
