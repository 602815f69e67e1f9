"""Evaluate trained runs (one per training seed) with the standard protocol and write one results file.

Usage: python scripts/results_from_runs.py --name sdpg --task VRB/Walker-v0 --out results/sdpg-walker.json \
           runs/sdpg-walker-cpu-s0 runs/sdpg-walker-cpu-s1 runs/sdpg-walker-cpu-s2

The training budget recorded is the largest of the runs' (env steps, rendered frames, wall-clock) and the
learning curve is the mean over the runs of their logged returns.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from visual_robo_bench.evaluation import evaluate
from visual_robo_bench.evaluation.results import hardware, make_results, write_json
from visual_robo_bench.render.gl import renderer_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--description", default="")
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    evals, budgets, curves, configs = [], [], [], []
    for run in map(Path, args.runs):
        cfg = json.loads((run / "config.json").read_text())
        rows = list(csv.DictReader((run / "progress.csv").open()))
        last = rows[-1]
        budgets.append((int(float(last["env_steps"])), int(float(last["frames"])), float(last["wall_s"])))
        curves.append([(float(r["env_steps"]), float(r["wall_s"]), float(r["episode_return"])) for r in rows])
        configs.append(cfg["config"])
        res = evaluate(str(run / "policy.pt"), args.task)
        print(f"{run}: seed {cfg['config']['seed']}: return {res.summary()['return']:.2f}", flush=True)
        evals.append((res, int(cfg["config"]["seed"])))
    n = min(len(c) for c in curves)
    step = max(1, n // 50)
    curve = [{"env_steps": float(np.mean([c[i][0] for c in curves])), "wall_clock_s": float(np.mean([c[i][1] for c in curves])),
              "return": float(np.mean([c[i][2] for c in curves]))} for i in range(0, n, step)]
    budget = {"env_steps": max(b[0] for b in budgets), "rendered_frames": max(b[1] for b in budgets),
              "wall_clock_s": max(b[2] for b in budgets), "hardware": hardware(), "num_envs": configs[0].get("num_nominal", 0) * (configs[0].get("num_perturbations", 0) + 1) or None}
    doc = make_results(evals, agent_name=args.name, description=args.description, budget=budget,
                       agent_config=configs[0], render=renderer_info())
    doc["learning_curves"] = {args.task: curve}
    write_json(doc, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
