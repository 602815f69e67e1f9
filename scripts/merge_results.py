"""Merge results files of one agent on different tasks into one (e.g. one leaderboard entry over tasks).

Usage: python scripts/merge_results.py results/sdpg-walker.json results/sdpg-hopper.json --out results/sdpg.json

The runs are concatenated (a task and training seed may appear in only one input), learning curves are
merged by task, the budget keeps the largest of each figure, and the aggregates are recomputed from the
per-episode data; the output is validated against the schema before it is written (atomically).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from visual_robo_bench.evaluation.results import ResultsError, aggregates, load, validate, write_json


def merge(docs: list[dict]) -> dict:
    """One results document holding the runs of ``docs`` (same agent name)."""
    names = {d["agent"]["name"] for d in docs}
    if len(names) != 1:
        raise ResultsError(f"the files are of different agents: {sorted(names)}")
    out = dict(docs[0])
    runs, seen = [], set()
    for d in docs:
        for r in d["runs"]:
            key = (r["env_id"], r["training_seed"])
            if key in seen:
                raise ResultsError(f"{key[0]} seed {key[1]} is in more than one file")
            seen.add(key)
            runs.append(r)
    out["runs"] = runs
    curves = {}
    for d in docs:
        curves.update(d.get("learning_curves") or {})
    if curves:
        out["learning_curves"] = curves
    budget = dict(docs[0]["budget"])
    for d in docs[1:]:
        for k, v in d["budget"].items():
            if isinstance(v, (int, float)) and isinstance(budget.get(k), (int, float)):
                budget[k] = max(budget[k], v)
    out["budget"] = budget
    out["aggregates"] = aggregates(out)
    validate(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    doc = merge([load(Path(f)) for f in args.files])
    write_json(doc, args.out)
    print(f"wrote {args.out}: {len(doc['runs'])} runs on {sorted({r['env_id'] for r in doc['runs']})}")


if __name__ == "__main__":
    main()
