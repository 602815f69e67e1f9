"""Evaluate the reference floors (random, zero) with the standard protocol and submit them.

Usage: python scripts/seed_leaderboards.py [--out-dir results/] [--leaderboard-dir leaderboards/]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from visual_robo_bench.evaluation import RandomAgent, ZeroAgent, evaluate
from visual_robo_bench.evaluation.leaderboard import DEFAULT_CONFIG, Leaderboard
from visual_robo_bench.evaluation.results import hardware, make_results, write_json
from visual_robo_bench.render.gl import renderer_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out-dir", default="results")
    parser.add_argument("--leaderboard-dir", default="leaderboards")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    board = Leaderboard(Path(args.leaderboard_dir))
    tasks = board.config["tracks"]["visual"]
    for name, make in (("random", lambda ctx, s: RandomAgent(ctx, seed=s)), ("zero", lambda ctx, s: ZeroAgent(ctx))):
        evals = []
        t0 = time.perf_counter()
        for task in tasks:
            for seed in range(args.seeds):
                from visual_robo_bench.evaluation import AgentContext

                agent = make(AgentContext.for_task(task), seed)
                evals.append((evaluate(agent, task, episodes=DEFAULT_CONFIG["episodes"]), seed))
                print(f"{name} {task} seed {seed}: {evals[-1][0].summary()['return']:.2f}", flush=True)
        desc = ("uniform random actions in [-1, 1] (agent seeds 0..2)" if name == "random"
                else "all-zero actions (deterministic: its runs are identical)")
        doc = make_results(evals, agent_name=name, description=desc, render=renderer_info(),
                           budget={"env_steps": None, "rendered_frames": None, "wall_clock_s": None,
                                   "hardware": hardware(), "num_envs": None})
        path = write_json(doc, Path(args.out_dir) / f"{name}.json")
        print(f"{name}: evaluated in {time.perf_counter() - t0:.0f} s -> {path}", flush=True)
        board.submit(path)
    board.build()


if __name__ == "__main__":
    main()
