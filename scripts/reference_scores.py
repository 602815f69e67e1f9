"""Recompute ``leaderboards/reference_scores.json`` from the protocol's own runs.

R_random: mean return of the accepted ``random`` submission (uniform random actions, 3 seeds x 50 episodes,
standard protocol). R_ref, in this order of preference (``conventions.md`` section 6):

1. the mean return of VRB's shipped reference policy for the task (its standard-protocol results file under
   ``leaderboards/references/``, listed in :data:`REFERENCE_RESULTS`);
2. else the better of the documented levels that beat both floors, random and all-zero actions (a level
   that does worse than doing nothing would make every score meaningless): the privileged-state PPO expert
   of ``scripts/reference_experts.py`` (``references/state-ppo-<task>.json``) and a scripted controller
   listed in :data:`SCRIPTED_RESULTS`;
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
#: Scripted controllers: task -> results file (standard protocol). ``references/scripted-go2-v0.json``:
#: ``vrb evaluate --agent visual_robo_bench.agents.scripted:Go2Trot --task VRB/Go2-v0`` (gains from
#: ``scripts/tune_go2_trot.py``).
SCRIPTED_RESULTS: dict[str, str] = {"VRB/Go2-v0": "references/scripted-go2-v0.json"}


def reference_levels(board: Leaderboard, shipped: dict[str, str] = REFERENCE_RESULTS,
                     scripted: dict[str, str] = SCRIPTED_RESULTS) -> dict[str, dict]:
    """Per task of the ``random`` submission: its task hash, R_random, R_ref (or None) and R_ref's source."""
    subs = board.submissions()
    random_agg = aggregates(subs["random"])
    zero_agg = aggregates(subs["zero"]) if "zero" in subs else {}
    tasks = {}
    for task, agg in sorted(random_agg.items()):
        ref, source = None, "no shipped policy, expert or scripted controller yet"
        if task in shipped:
            source = shipped[task]
            ref = aggregates(load(board.root / source))[task]["return"]
        else:
            floor = max(agg["return"], zero_agg.get(task, {}).get("return", -np.inf))
            candidates = [(kind, board.root / rel) for kind, rel in
                          (("expert", expert_reference_file(task)), ("scripted controller", scripted.get(task)))
                          if rel is not None and (board.root / rel).exists()]
            rejected = []
            for kind, path in candidates:
                value = aggregates(load(path))[task]["return"]
                if value > floor and (ref is None or value > ref):
                    ref, source = value, str(path.relative_to(board.root))
                elif value <= floor:
                    rejected.append(f"{path.relative_to(board.root)}: the {kind}'s {value:.4g} does not beat the "
                                    f"floors (best {floor:.4g})")
            if ref is None and rejected:
                source = "; ".join(rejected)
        tasks[task] = {"task_hash": task_hash(task), "random": agg["return"], "reference": ref,
                       "reference_source": source}
    return tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leaderboard-dir", default="leaderboards")
    args = parser.parse_args()
    board = Leaderboard(Path(args.leaderboard_dir))
    tasks = reference_levels(board)
    write_json({"version": 1, "tasks": tasks}, board.root / "reference_scores.json")
    print(json.dumps(tasks, indent=1))


if __name__ == "__main__":
    main()
