"""Train every baseline (and SDPG) on one task for the same wall-clock budget and print a Markdown table.

Usage: MUJOCO_GL=egl python scripts/bench_baselines.py [--budget 600] [--num-envs 32] [--task VRB/Walker-v1]
       [--agents sdpg ppo sac drqv2 distill random zero] [--branches 7] [--image-size 84] [--seed 0]
       [--out-dir DIR]
       python scripts/bench_baselines.py --summarize DIR_SEED0 DIR_SEED1 ... [--target-return R] [--plot out.png]

Each agent runs ``vrb train`` in its own process (so peak RSS is its own) with ``time_budget_s=BUDGET`` and
the same number N of physics envs: ppo, sac, drqv2, random and zero step N envs (ppo, sac and drqv2 render
all N); SDPG steps N = B x (M + 1) envs with M = ``--branches`` (default 7) physics-only copies per nominal
env, B = N / (M + 1) of them rendered;
distill's PPO teacher steps N state-only envs, then its DAgger student N rendered envs. The budget is checked
after each epoch, so a run may overshoot it by up to one epoch ("train s" is the training time the run itself
measured). SAC's replay buffer is not written to its checkpoint here (``save_replay_buffer=false``: at 84x84
that pickle is over a gigabyte and not part of training); drqv2 writes its checkpoint (with the buffer) once,
at the end. After training, each final ``policy.pt`` is evaluated with the standard protocol (50 episodes,
not part of the budget; ``--no-eval`` skips it) into ``RUN_DIR/eval_results.json``, which
``scripts/results_from_runs.py`` reuses. ``--summarize`` prints one table over several ``--out-dir``
folders (one per seed) with the mean and range over seeds, the training seconds until the logged return
first reached ``--target-return``, and a plot of every run's learning curve.
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

AGENTS = ("sdpg", "ppo", "sac", "drqv2", "distill", "random", "zero")


def agent_settings(agent: str, num_envs: int, branches: int = 7) -> list[str]:
    """``--set`` items that give ``agent`` ``num_envs`` physics envs and short epochs.

    SDPG gets ``B = num_envs / (branches + 1)`` rendered nominal envs with ``branches`` physics-only copies each.
    """
    if agent == "sdpg":
        if num_envs % (branches + 1):
            raise SystemExit(f"--num-envs must be a multiple of --branches + 1 = {branches + 1} "
                             f"(SDPG: B nominal envs x (M + 1))")
        return [f"num_nominal={num_envs // (branches + 1)}", f"num_perturbations={branches}"]
    if agent == "ppo":
        return [f"num_envs={num_envs}", "n_steps=32", f"steps_per_epoch={32 * num_envs}"]
    if agent == "sac":
        return [f"num_envs={num_envs}", f"steps_per_epoch={16 * num_envs}", "save_replay_buffer=false"]
    if agent == "drqv2":  # checkpoints hold the replay buffer: write one at the end only
        return [f"num_envs={num_envs}", f"steps_per_epoch={32 * num_envs}", "checkpoint_every=1000000"]
    if agent == "distill":  # N state-only envs for the teacher, then N rendered envs for the student
        return [f"teacher_num_envs={num_envs}", f"student_num_envs={num_envs}",
                f"teacher_steps_per_epoch={128 * num_envs}", f"student_steps_per_epoch={32 * num_envs}"]
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
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # training only: read before evaluating
    rows = read_csv(run_dir / "progress.csv")
    last = rows[-1] if rows else {}
    eval_return = float("nan")
    if args.eval:  # the standard protocol on the final policy (not part of the training budget)
        from visual_robo_bench.evaluation import evaluate
        from visual_robo_bench.evaluation.results import make_results, write_json

        seed = int(json.loads((run_dir / "config.json").read_text())["config"]["seed"])
        res = evaluate(str(run_dir / "policy.pt"), args.task, progress=False)
        write_json(make_results([(res, seed)], agent_name=args.child, description="bench_baselines.py run"),
                   run_dir / "eval_results.json")
        eval_return = float(res.summary()["return"])
    seed = int(json.loads((run_dir / "config.json").read_text())["config"]["seed"])
    Path(args.result).write_text(json.dumps({
        "eval_return": eval_return, "seed": seed,
        "agent": args.child, "return": float(last.get("episode_return", "nan") or "nan"),
        "episodes": int(float(last.get("episodes", 0) or 0)), "epochs": len(rows),
        "env_steps": int(float(last.get("env_steps", 0) or 0)), "frames": int(float(last.get("frames", 0) or 0)),
        "train_s": float(last.get("wall_s", 0) or 0), "process_s": wall, "peak_rss_mb": rss_mb,
        "run_dir": str(run_dir)}))


def time_to_return(run_dir: Path, target: float) -> float:
    """Training seconds until the logged return first reached ``target`` (NaN: never)."""
    from visual_robo_bench.agents.common import read_csv

    for row in read_csv(run_dir / "progress.csv"):
        r = row.get("episode_return", "")
        if r not in ("", "nan") and float(r) >= target:
            return float(row["wall_s"])
    return float("nan")


def summarize(dirs: list[str], target: float | None, plot: str | None) -> None:
    """One Markdown table over the runs of several ``--out-dir`` folders (one per seed): mean and min-max."""
    import numpy as np

    results = [json.loads(p.read_text()) for d in dirs for p in sorted(Path(d).glob("*.json"))]
    results = [r for r in results if "agent" in r and "error" not in r]
    agents = [a for a in AGENTS if any(r["agent"] == a for r in results)]

    def cell(values: list[float], fmt: str) -> str:
        v = np.asarray([x for x in values if np.isfinite(x)], float)
        if not len(v):
            return "n/a"
        if len(v) == 1:
            return format(v[0], fmt)
        return f"{format(v.mean(), fmt)} ({format(v.min(), fmt)} to {format(v.max(), fmt)})"

    head = ["agent", "seeds", "eval return (50 protocol episodes)", "train return (last episodes)", "env steps",
            "rendered frames", "env steps/s", "peak RSS (MB)"]
    if target is not None:
        head.append(f"s to train return >= {target:g} (reached/seeds)")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for a in agents:
        rs = [r for r in results if r["agent"] == a]
        row = [a, str(len(rs)), cell([r.get("eval_return", float("nan")) for r in rs], ".2f"),
               cell([r["return"] for r in rs], ".2f"), cell([r["env_steps"] for r in rs], ",.0f"),
               cell([r.get("frames", float("nan")) for r in rs], ",.0f"),
               cell([r["env_steps"] / r["train_s"] if r["train_s"] else float("nan") for r in rs], ",.0f"),
               cell([r["peak_rss_mb"] for r in rs], ",.0f")]
        if target is not None:
            times = [time_to_return(Path(r["run_dir"]), target) for r in rs]
            reached = [t for t in times if np.isfinite(t)]
            row.append(f"{cell(reached, '.0f')} ({len(reached)}/{len(rs)})")
        print("| " + " | ".join(row) + " |")
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from visual_robo_bench.agents.common import read_csv

        # return vs wall-clock, physics env steps and rendered frames (SDPG's branches step but never render)
        axes_x = (("wall_s", "training wall-clock (min)", 1 / 60), ("env_steps", "physics env steps", 1.0),
                  ("frames", "rendered frames", 1.0))
        fig, axes = plt.subplots(1, len(axes_x), figsize=(14, 4), sharey=True)
        for i, a in enumerate(agents):
            for j, r in enumerate(r for r in results if r["agent"] == a):
                rows = [x for x in read_csv(Path(r["run_dir"]) / "progress.csv")
                        if x.get("episode_return", "") not in ("", "nan")]
                for ax, (key, _, scale) in zip(axes, axes_x):
                    ax.plot([float(x[key]) * scale for x in rows], [float(x["episode_return"]) for x in rows],
                            color=f"C{i}", lw=1.2, alpha=0.8, label=a if j == 0 else None)
        for ax, (key, label, _) in zip(axes, axes_x):
            ax.set_xlabel(label)
            if key != "wall_s":
                ax.set_xscale("log")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("training episode return")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(plot, dpi=100)
        print(f"\nwrote {plot}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="VRB/Walker-v1")
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds per agent (default 600)")
    parser.add_argument("--num-envs", type=int, default=32, help="physics envs per agent (default 32)")
    parser.add_argument("--branches", type=int, default=7,
                        help="SDPG: physics-only copies M per rendered nominal env (default 7)")
    parser.add_argument("--agents", nargs="*", default=list(AGENTS), choices=AGENTS)
    parser.add_argument("--image-size", type=int, default=None, help="square image size (default: the task's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default=None, help="where the run directories go (default: a temp dir)")
    parser.add_argument("--no-eval", dest="eval", action="store_false",
                        help="skip the standard-protocol evaluation of each final policy")
    parser.add_argument("--summarize", nargs="+", default=None, metavar="OUT_DIR",
                        help="print one table over earlier --out-dir folders (e.g. one per seed) and exit")
    parser.add_argument("--target-return", type=float, default=None,
                        help="with --summarize: also the training seconds until each run's return reached this")
    parser.add_argument("--plot", default=None, help="with --summarize: learning curves of every run (PNG)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.summarize:
        summarize(args.summarize, args.target_return, args.plot)
        return

    from visual_robo_bench.bench import machine_description

    out = Path(args.out_dir or tempfile.mkdtemp(prefix="vrb-bench-baselines-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    results = []
    for agent in args.agents:
        sets = [*agent_settings(agent, args.num_envs, args.branches), f"time_budget_s={args.budget}",
                "max_epochs=1000000", f"seed={args.seed}"]
        if args.image_size:
            sets.append(f"image_size={args.image_size},{args.image_size}")
        run_dir = out / f"{agent}-{time.strftime('%Y%m%d-%H%M%S')}"
        result = out / f"{run_dir.name}.json"
        cmd = [sys.executable, __file__, "--child", agent, "--task", args.task, "--run-dir", str(run_dir),
               "--result", str(result), *[x for s in sets for x in ("--set", s)], *([] if args.eval else ["--no-eval"])]
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
    print("| agent | eval return (protocol) | train return (last episodes) | episodes | epochs | env steps | "
          "rendered frames | env steps/s | train s | process s | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['agent']} | failed ({r['error']}) | | | | | | | | | |")
            continue
        sps = r["env_steps"] / r["train_s"] if r["train_s"] else 0.0
        print(f"| {r['agent']} | {r['eval_return']:.2f} | {r['return']:.1f} | {r['episodes']:,} | {r['epochs']:,} | "
              f"{r['env_steps']:,} | {r['frames']:,} | {sps:,.0f} | {r['train_s']:.0f} | {r['process_s']:.0f} | "
              f"{r['peak_rss_mb']:,.0f} |")
    print(f"\nrun directories: {out}")


if __name__ == "__main__":
    main()
