"""Recompute ``leaderboards/reference_scores.json`` from the protocol's own runs.

R_random: mean return of the accepted ``random`` submission (uniform random actions, 3 seeds x 50 episodes,
standard protocol). R_ref, in this order of preference (``conventions.md`` section 6):

1. the mean return of VRB's shipped reference policy for the task (its standard-protocol results file under
   ``leaderboards/references/``, listed in :data:`REFERENCE_RESULTS`);
2. else the documented expert level: the privileged-state PPO expert of ``scripts/reference_experts.py``
   (``references/state-ppo-<task>.json``), provided it beats both floors, random and all-zero actions (an
   "expert" that does worse than doing nothing would make every score meaningless);
3. else null (the leaderboard shows "-").

Usage: python scripts/reference_scores.py [--leaderboard-dir DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from visual_robo_bench.evaluation.leaderboard import Leaderboard, expert_reference_file
from visual_robo_bench.evaluation.results import aggregates, load, task_hash, write_json

#: Shipped reference policies: task -> results file (standard protocol) whose mean return is the reference.
#: ``references/sdpg-walker-v1.json``: ``vrb evaluate --agent policies/sdpg-walker-v1.pt --task VRB/Walker-v1``;
#: ``references/sdpg-walker-v0.json``: the same for the deprecated v0 and ``policies/sdpg-walker-v0.pt``.
REFERENCE_RESULTS: dict[str, str] = {"VRB/Walker-v1": "references/sdpg-walker-v1.json",
                                     "VRB/Walker-v0": "references/sdpg-walker-v0.json"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leaderboard-dir", default="leaderboards")
    args = parser.parse_args()
    board = Leaderboard(Path(args.leaderboard_dir))
    subs = board.submissions()
    random_agg = aggregates(subs["random"])
    zero_agg = aggregates(subs["zero"]) if "zero" in subs else {}
    tasks = {}
    for task, agg in sorted(random_agg.items()):
        ref, source = None, "no shipped policy or expert yet"
        expert = board.root / expert_reference_file(task)
        if task in REFERENCE_RESULTS:
            source = REFERENCE_RESULTS[task]
            ref = aggregates(load(board.root / source))[task]["return"]
        elif expert.exists():
            value = aggregates(load(expert))[task]["return"]
            source = str(expert.relative_to(board.root))
            floor = max(agg["return"], zero_agg.get(task, {}).get("return", -np.inf))
            if value > floor:
                ref = value
            else:
                source += f": the expert's {value:.4g} does not beat the floors (best {floor:.4g})"
        tasks[task] = {"task_hash": task_hash(task), "random": agg["return"], "reference": ref,
                       "reference_source": source}
    write_json({"version": 1, "tasks": tasks}, board.root / "reference_scores.json")
    print(json.dumps(tasks, indent=1))


if __name__ == "__main__":
    main()
