"""Run ``vrb bench`` on every registered task and print the README's bench table (Markdown).

Usage: MUJOCO_GL=egl python scripts/bench_all.py [--num-envs 64] [--seconds 3] [--tasks VRB/Walker-v1 ...]
Run it on a quiet machine: every figure is a throughput.
"""

from __future__ import annotations

import argparse
import os

import visual_robo_bench
from visual_robo_bench.bench import machine_description, run_bench


def _fmt(x) -> str:
    return "-" if x is None else f"{x:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tasks", nargs="*", default=None)
    args = parser.parse_args()
    tasks = args.tasks or visual_robo_bench.list_tasks()
    lines = ["| task | vrb physics-only steps/s | raw `mujoco.batch` steps/s | physics-only / raw | vrb pixels frames/s | "
             "raw tiled render frames/s | dm_control pixels | Gymnasium `rgb_array` | vrb pixels / dm_control | "
             "peak RSS (MB) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for task in tasks:
        rows = {r["name"]: r for r in run_bench(task, num_envs=args.num_envs, seconds=args.seconds)}
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
            f"{_fmt(max(r['peak_rss_mb'] for r in rows.values()))} |")
        print(lines[-1], flush=True)
    m = machine_description()
    print(f"\nmachine: {m}; load average at the end: {os.getloadavg()}\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
