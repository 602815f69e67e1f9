"""Train and score the privileged-state expert of each task: the reference level where no pixel policy is shipped.

``conventions.md`` section 6: the normalised return is (R - R_random) / (R_ref - R_random), where R_ref is the
mean return of VRB's shipped reference policy for the task or, where none is shipped yet, "a documented scripted
or expert level" that the project can reproduce on its own machine. This script makes that expert level:

1. **Train** (skipped when ``RUN_DIR/teacher.zip`` exists): phase 1 of the distillation agent
   (``vrb train --agent distill``), i.e. stable-baselines3 PPO with ``VecNormalize`` on the task's
   *privileged* state in state-only envs (never rendered), for ``--minutes`` of training time, seed 0,
   one physics thread and one torch thread (so two tasks can train side by side on a 2-core machine).
2. **Score**: the harness's standard protocol (50 episodes, the public evaluation seeds, no autoreset,
   deterministic actions) with ``obs_mode="state"`` so that the expert sees what it was trained on; the
   episodes are the same episodes a pixel agent is scored on (the observation mode changes no dynamics).
3. **Write** ``leaderboards/references/state-ppo-<task>.json`` (a results file, marked unofficial because of
   ``obs_mode``). ``scripts/reference_scores.py`` then turns it into the task's R_ref, provided the expert
   beats the random floor.

Usage::

    python scripts/reference_experts.py VRB/Hopper-v1 VRB/Ant-v1 --minutes 8 --run-root runs/experts

Run ``python scripts/reference_scores.py`` and ``vrb leaderboard build`` afterwards.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

AGENT_NAME = "state-ppo-expert"


def train_expert(task: str, run_dir: Path, minutes: float, seed: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Phase 1 of ``distill`` for ``minutes`` of training time; returns the run's budget."""
    from visual_robo_bench.train import train

    if not (run_dir / "teacher.zip").exists():
        overrides = {"teacher_epochs": 100_000, "max_epochs": 100_001, "time_budget_s": 60.0 * minutes,
                     "nthread": 1, "torch_threads": 1, "checkpoint_every": 5, **changes}
        train("distill", task, overrides=overrides, run_dir=run_dir, seed=seed, progress=False,
              argv=["scripts/reference_experts.py", task, "--minutes", str(minutes),
                    *(f"--set={k}={v}" for k, v in changes.items())])
    with open(run_dir / "progress.csv", newline="") as f:
        last = list(csv.DictReader(f))[-1]
    return {"env_steps": int(float(last["env_steps"])), "rendered_frames": 0,
            "wall_clock_s": float(last["wall_s"]),
            "num_envs": json.loads((run_dir / "config.json").read_text())["config"]["teacher_num_envs"]}


def main() -> None:
    import torch

    from visual_robo_bench.agents.distill import TeacherPolicy
    from visual_robo_bench.evaluation import evaluate
    from visual_robo_bench.evaluation.leaderboard import expert_reference_file
    from visual_robo_bench.evaluation.results import hardware, make_results, write_json
    from visual_robo_bench.render.gl import renderer_info
    from visual_robo_bench.agents.common import parse_set_args

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tasks", nargs="+", help="task ids")
    parser.add_argument("--minutes", type=float, default=8.0, help="training time per task (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-root", default="runs/experts", help="where the expert runs go")
    parser.add_argument("--leaderboard-dir", default="leaderboards")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="distill config change for the expert (repeatable), e.g. --set teacher_log_std_init=-1")
    args = parser.parse_args()
    changes = parse_set_args(args.set)
    # One torch thread, as in training (torch_threads=1): the scores are then the same whether the expert was
    # just trained or an existing run is re-scored (more threads change float sums and, over 1,000 chaotic
    # steps, the returns: Hopper 4,383.33 with one thread, 4,376.96 with two).
    torch.set_num_threads(1)
    for task in args.tasks:
        run_dir = Path(args.run_root) / task.split("/")[-1].lower()
        t0 = time.perf_counter()
        budget = train_expert(task, run_dir, args.minutes, args.seed, changes)
        res = evaluate(TeacherPolicy(run_dir), task, env_kwargs={"obs_mode": "state"}, progress=False)
        budget["hardware"] = hardware()
        extra = "".join(f", {k}={v}" for k, v in changes.items())
        description = (f"Reference level, not a leaderboard entry: SB3 PPO on the privileged state (phase 1 of "
                       f"`vrb train --agent distill`, {args.minutes:g} training minutes, seed {args.seed}, one "
                       f"physics and one torch thread{extra}), scored with the standard protocol in "
                       f"obs_mode='state'. Made by scripts/reference_experts.py.")
        doc = make_results([(res, args.seed)], agent_name=AGENT_NAME, description=description, budget=budget,
                           render=renderer_info())
        path = write_json(doc, Path(args.leaderboard_dir) / expert_reference_file(task))
        s = res.summary()
        print(f"{task}: return {s['return']:.2f}, success_once {s['success_once']:.2f}, "
              f"{budget['env_steps']:,} env steps, {time.perf_counter() - t0:.0f} s -> {path}", flush=True)


if __name__ == "__main__":
    main()
