"""Evaluate trained runs (one per training seed) with the standard protocol and write one results file.

Usage: python scripts/results_from_runs.py --name sdpg --task VRB/Walker-v1 --out results/sdpg-walker.json \
           runs/sdpg-walker-cpu-s0 runs/sdpg-walker-cpu-s1 runs/sdpg-walker-cpu-s2

A run that holds ``eval_results.json`` (``scripts/bench_baselines.py`` writes one with the standard protocol)
is not evaluated again. The training budget recorded is the largest of the runs' (env steps, rendered frames, wall-clock) and the
learning curve is the mean over the runs of their logged returns, with each run's own at every point (``returns``,
in the order of the file's runs, when there are several: the leaderboards draw their IQM with a bootstrap CI): the
evaluation harness's (``eval_return``, when every run was trained with ``--set eval_interval=N``: conventions.md 6's
curve, e.g. 10 evenly spaced points of E = 10 episodes), else the training episodes'.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from visual_robo_bench.evaluation import evaluate
from visual_robo_bench.evaluation.results import aggregates, hardware, load, make_results, write_json
from visual_robo_bench.render.gl import renderer_info
from visual_robo_bench.train import preset_overrides


def physics_envs(cfg: dict) -> int | None:
    """Physics envs of a run's agent config (SDPG: B x (M + 1); distill: its student's rendered envs)."""
    if "num_nominal" in cfg:
        return int(cfg["num_nominal"]) * (int(cfg["num_perturbations"]) + 1)
    return cfg.get("num_envs") or cfg.get("student_num_envs")


def learning_curve(curves: list[list[tuple[float, float, float]]], every: bool = False) -> list[dict[str, Any]]:
    """A results file's learning curve from the runs' logged points.

    Point i is the runs' i-th points (up to the shortest run): their mean env steps, wall-clock and return, and,
    when there are several runs, each run's own return (``returns``, in the order of ``curves``: the leaderboards
    draw the IQM over runs with a bootstrap CI from them). A NaN return (no episode finished yet) is null; the mean
    ``return`` is null until every run has a value.

    Args:
        curves: Per run, its ``(env_steps, wall_clock_s, return)`` points, in the order of the file's runs.
        every: Keep at most about 50 points (every k-th: training episodes' returns, logged at every epoch)
            instead of every point (the periodic evaluations, already few).

    Returns:
        The points, as the schema's ``learning_curves`` holds them.
    """
    n = min(len(c) for c in curves)
    step = max(1, n // 50) if every else 1
    curve = []
    for i in range(0, n, step):
        rets = [c[i][2] for c in curves]
        ret = float(np.mean(rets))  # NaN until every seed has finished an episode
        point = {"env_steps": float(np.mean([c[i][0] for c in curves])),
                 "wall_clock_s": float(np.mean([c[i][1] for c in curves])),
                 "return": ret if np.isfinite(ret) else None}  # results files hold finite numbers or null
        if len(curves) > 1:
            point["returns"] = [float(r) if np.isfinite(r) else None for r in rets]
        curve.append(point)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--description", default="")
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    evals, budgets, curves, configs, reused = [], [], [], [], []
    seeds: list[int] = []  # each run's training seed, in the order of `curves`
    tables = {Path(run): list(csv.DictReader((Path(run) / "progress.csv").open())) for run in args.runs}
    # the harness's periodic evaluations when every run logged them, else the training episodes' returns
    evaluated = all(rows and "eval_return" in rows[0] for rows in tables.values())
    for run, rows in tables.items():
        cfg = json.loads((run / "config.json").read_text())
        last = rows[-1]
        budgets.append((int(float(last["env_steps"])), int(float(last["frames"])), float(last["wall_s"])))
        points = [r for r in rows if np.isfinite(float(r["eval_return"] or "nan"))] if evaluated else rows
        key = "eval_return" if evaluated else "episode_return"
        curves.append([(float(r["env_steps"]), float(r["wall_s"]), float(r[key])) for r in points])
        preset = preset_overrides(cfg.get("agent", ""), cfg["config"])  # the preset and the --set overrides it took
        configs.append(cfg["config"] if preset is None else {**cfg["config"], "preset": preset})
        seed = int(cfg["config"]["seed"])
        seeds.append(seed)
        reuse = run / "eval_results.json"  # written by scripts/bench_baselines.py with the same protocol
        if reuse.is_file():
            entry = load(reuse)["runs"][0]
            if entry["env_id"] != args.task or not entry["official"] or entry["training_seed"] != seed:
                raise SystemExit(f"{reuse} is not an official evaluation of seed {seed} on {args.task}")
            reused.append(entry)
            print(f"{run}: seed {seed}: reusing {reuse}", flush=True)
            continue
        res = evaluate(str(run / "policy.pt"), args.task)
        print(f"{run}: seed {seed}: return {res.summary()['return']:.2f}", flush=True)
        evals.append((res, seed))
    budget = {"env_steps": max(b[0] for b in budgets), "rendered_frames": max(b[1] for b in budgets),
              "wall_clock_s": max(b[2] for b in budgets), "hardware": hardware(), "num_envs": physics_envs(configs[0])}
    doc = make_results(evals, agent_name=args.name, description=args.description, budget=budget,
                       agent_config=configs[0], render=renderer_info())
    if reused:
        doc["runs"] = sorted(doc["runs"] + reused, key=lambda r: r["training_seed"])
        doc["aggregates"] = aggregates(doc)
    # per-run values in the order of the file's runs of the task (their training seeds), as the schema asks
    order = [seeds.index(r["training_seed"]) for r in doc["runs"] if r["env_id"] == args.task]
    doc["learning_curves"] = {args.task: learning_curve([curves[k] for k in order], every=not evaluated)}
    write_json(doc, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
