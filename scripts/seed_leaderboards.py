"""Evaluate the reference floors (random, zero) with the standard protocol and submit them.

Usage: python scripts/seed_leaderboards.py [--out-dir results/] [--leaderboard-dir leaderboards/] [--seeds 3]
       [--floors random zero] [--no-submit]

Every task of every track in ``leaderboards/config.json`` is covered with ``--seeds`` agent seeds. Runs the
current ``random``/``zero`` submissions already hold (same task hash, same seed) are kept, so adding a
track evaluates only its new tasks; the submission is then replaced by the completed one (validated in
full before the old file is removed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from visual_robo_bench.evaluation import AgentContext, RandomAgent, ZeroAgent, evaluate
from visual_robo_bench.evaluation.leaderboard import DEFAULT_CONFIG, Leaderboard
from visual_robo_bench.evaluation.results import aggregates, hardware, make_results, task_hash, validate, write_json
from visual_robo_bench.render.gl import renderer_info

FLOORS = {
    "random": (lambda ctx, s: RandomAgent(ctx, seed=s), "uniform random actions in [-1, 1] (agent seeds 0..2)"),
    "zero": (lambda ctx, s: ZeroAgent(ctx), "all-zero actions (deterministic: its runs are identical)"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out-dir", default="results")
    parser.add_argument("--leaderboard-dir", default="leaderboards")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--floors", nargs="+", default=list(FLOORS), choices=list(FLOORS),
                        help="which floors (run one process per floor to use several cores)")
    parser.add_argument("--no-submit", dest="submit", action="store_false",
                        help="only write the results files (submit them later, e.g. after parallel runs)")
    args = parser.parse_args()
    board = Leaderboard(Path(args.leaderboard_dir))
    tasks = [t for track in board.config["tracks"].values() for t in track]
    for name in args.floors:
        make, desc = FLOORS[name]
        old = board.submissions().get(name)
        kept = {(r["env_id"], r["training_seed"]): r for r in (old or {}).get("runs", [])
                if r["task_hash"] == task_hash(r["env_id"])}
        evals = []
        t0 = time.perf_counter()
        for task in tasks:
            for seed in range(args.seeds):
                if (task, seed) in kept:
                    continue
                agent = make(AgentContext.for_task(task), seed)
                evals.append((evaluate(agent, task, episodes=DEFAULT_CONFIG["episodes"], progress=False), seed))
                print(f"{name} {task} seed {seed}: {evals[-1][0].summary()['return']:.2f}", flush=True)
        if not evals and old is not None:
            print(f"{name}: every task and seed is already on the board")
            continue
        doc = make_results(evals, agent_name=name, description=desc, render=renderer_info(),
                           budget={"env_steps": None, "rendered_frames": None, "wall_clock_s": None,
                                   "hardware": hardware(), "num_envs": None})
        order = {t: i for i, t in enumerate(tasks)}
        doc["runs"] = sorted([*kept.values(), *doc["runs"]], key=lambda r: (order.get(r["env_id"], 99), r["training_seed"]))
        doc["aggregates"] = aggregates(doc)
        validate(doc)
        path = write_json(doc, Path(args.out_dir) / f"{name}.json")
        print(f"{name}: evaluated {len(evals)} runs in {time.perf_counter() - t0:.0f} s -> {path}", flush=True)
        if not args.submit:
            continue
        if old is not None:
            (board.root / "submissions" / f"{name}.json").unlink()
        board.submit(path, carried_runs=list(kept.values()))  # kept runs may be on deprecated versions
    if args.submit:
        board.build()


if __name__ == "__main__":
    main()
