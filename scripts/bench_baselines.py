"""Train every baseline (and SDPG) on one task for the same wall-clock budget and print a Markdown table.

Usage: MUJOCO_GL=egl python scripts/bench_baselines.py [--budget 600] [--num-envs 32] [--task VRB/Walker-v0]
       [--agents sdpg ppo sac random zero] [--image-size 84] [--out-dir DIR]

Each agent runs ``vrb train`` in its own process (so peak RSS is its own) with ``time_budget_s=BUDGET`` and
the same number N of physics envs: ppo, sac, random and zero step N envs (ppo and sac render all N);
SDPG steps N = B x (M + 1) envs with M = 7 branches per nominal env, B = N / 8 of them rendered. The
budget is checked after each epoch, so a run may overshoot it by up to one epoch ("train s" is the
training time the run itself measured). SAC's replay buffer is not written to its checkpoint here
(``save_replay_buffer=false``: at 84x84 that pickle is over a gigabyte and not part of training).
Run it on a quiet machine: every figure depends on the load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AGENTS = ("sdpg", "ppo", "sac", "random", "zero")


def agent_settings(agent: str, num_envs: int) -> list[str]:
    """``--set`` items that give ``agent`` ``num_envs`` physics envs and short epochs."""
    if agent == "sdpg":
        if num_envs % 8:
            raise SystemExit("--num-envs must be a multiple of 8 (SDPG: B nominal envs x 8)")
        return [f"num_nominal={num_envs // 8}", "num_perturbations=7"]
    if agent == "ppo":
        return [f"num_envs={num_envs}", "n_steps=32", f"steps_per_epoch={32 * num_envs}"]
    if agent == "sac":
        return [f"num_envs={num_envs}", f"steps_per_epoch={16 * num_envs}", "save_replay_buffer=false"]
    return [f"num_envs={num_envs}", f"steps_per_epoch={32 * num_envs}"]


def child(args: argparse.Namespace) -> None:
    """Run one training in this process and write its figures as JSON."""
    from visual_robo_bench.agents.common import read_csv
    from visual_robo_bench.train import train

    overrides = dict(item.split("=", 1) for item in args.set)
    t0 = time.perf_counter()
    run_dir = train(agent=args.child, task=args.task, overrides=overrides, run_dir=args.run_dir, progress=False,
                    log=lambda msg: print(msg, file=sys.stderr))
    wall = time.perf_counter() - t0
    rows = read_csv(run_dir / "progress.csv")
    last = rows[-1] if rows else {}
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.result).write_text(json.dumps({
        "agent": args.child, "return": float(last.get("episode_return", "nan") or "nan"),
        "episodes": int(float(last.get("episodes", 0) or 0)), "epochs": len(rows),
        "env_steps": int(float(last.get("env_steps", 0) or 0)), "frames": int(float(last.get("frames", 0) or 0)),
        "train_s": float(last.get("wall_s", 0) or 0), "process_s": wall, "peak_rss_mb": rss_mb,
        "run_dir": str(run_dir)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="VRB/Walker-v0")
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds per agent (default 600)")
    parser.add_argument("--num-envs", type=int, default=32, help="physics envs per agent (default 32)")
    parser.add_argument("--agents", nargs="*", default=list(AGENTS), choices=AGENTS)
    parser.add_argument("--image-size", type=int, default=None, help="square image size (default: the task's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default=None, help="where the run directories go (default: a temp dir)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from visual_robo_bench.bench import machine_description

    out = Path(args.out_dir or tempfile.mkdtemp(prefix="vrb-bench-baselines-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    results = []
    for agent in args.agents:
        sets = [*agent_settings(agent, args.num_envs), f"time_budget_s={args.budget}", "max_epochs=1000000",
                f"seed={args.seed}"]
        if args.image_size:
            sets.append(f"image_size={args.image_size},{args.image_size}")
        run_dir = out / f"{agent}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = out / f"{run_dir.name}.json"
        cmd = [sys.executable, __file__, "--child", agent, "--task", args.task, "--run-dir", str(run_dir),
               "--result", str(result), *[x for s in sets for x in ("--set", s)]]
        print(f"training {agent} on {args.task} for {args.budget:g} s ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, env=env)
        if proc.returncode != 0 or not result.is_file():
            results.append({"agent": agent, "error": f"exit code {proc.returncode}"})
            continue
        results.append(json.loads(result.read_text()))

    machine = machine_description()
    print(f"\n{args.task}, N={args.num_envs} physics envs per agent, budget {args.budget:g} s of training each, "
          f"seed {args.seed}; machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
          f"{machine.get('ram', '?')}, load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| agent | final return (mean of last episodes) | episodes | epochs | env steps | rendered frames | "
          "env steps/s | train s | process s | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['agent']} | failed ({r['error']}) | | | | | | | | |")
            continue
        sps = r["env_steps"] / r["train_s"] if r["train_s"] else 0.0
        print(f"| {r['agent']} | {r['return']:.1f} | {r['episodes']:,} | {r['epochs']:,} | {r['env_steps']:,} | "
              f"{r['frames']:,} | {sps:,.0f} | {r['train_s']:.0f} | {r['process_s']:.0f} | {r['peak_rss_mb']:,.0f} |")
    print(f"\nrun directories: {out}")


if __name__ == "__main__":
    main()
