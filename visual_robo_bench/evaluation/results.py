"""Results files: a versioned, documented JSON schema, written atomically.

A results file holds one agent's evaluation on one or more tasks and training
runs, with per-episode data. Aggregates in a file are informative only: every
consumer (``vrb submit``, the leaderboards) recomputes them from the episodes.

Schema (``schema_version`` "1"):

* ``schema_version``: "1".
* ``vrb_version``, ``versions`` (python, mujoco, gymnasium, numpy, torch),
  ``render`` (GL backend and renderer string).
* ``agent``: ``name``, ``description``, optional ``code_url``, ``config``,
  optional ``policy`` (file or ``module:factory``, for the verified tier).
* ``budget``: ``env_steps``, ``rendered_frames``, ``wall_clock_s``,
  ``hardware``, ``num_envs`` (training budget; ``null`` for untrained floors).
* ``runs``: list of ``{env_id, task_hash, training_seed, seed_base, episodes,
  official, env_kwargs, model_provenance}``, ``episodes`` being per-episode records
  (``seed, return, length, success_once, success_at_end, terminated``, plus
  optional ``physics_error, agent_error, reward_terms, metrics``).
* ``learning_curves``: optional, ``{env_id: [{env_steps, wall_clock_s, return}]}``.
* ``aggregates``: optional, ignored on input.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from ..fileio import atomic_open
from ..registry import get_task
from .harness import EvalResult

SCHEMA_VERSION = "1"

_EPISODE = {
    "type": "object",
    "required": ["seed", "return", "length", "success_once", "success_at_end", "terminated"],
    "properties": {
        "seed": {"type": "integer"},
        "return": {"type": "number"},
        "length": {"type": "integer", "minimum": 0},
        "success_once": {"type": "boolean"},
        "success_at_end": {"type": "boolean"},
        "terminated": {"type": "boolean"},
        "physics_error": {"type": "boolean"},
        "agent_error": {"type": ["string", "null"]},
        "reward_terms": {"type": "object", "additionalProperties": {"type": "number"}},
        "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "VRB results file",
    "type": "object",
    "required": ["schema_version", "vrb_version", "versions", "agent", "budget", "runs"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "vrb_version": {"type": "string"},
        "versions": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        "render": {"type": "object"},
        "agent": {
            "type": "object",
            "required": ["name", "description"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "description": {"type": "string"},
                "code_url": {"type": "string"},
                "config": {"type": "object"},
                "policy": {"type": "string"},
            },
        },
        "budget": {
            "type": "object",
            "required": ["env_steps", "rendered_frames", "wall_clock_s", "hardware", "num_envs"],
            "properties": {
                "env_steps": {"type": ["integer", "null"]},
                "rendered_frames": {"type": ["integer", "null"]},
                "wall_clock_s": {"type": ["number", "null"]},
                "hardware": {"type": "string"},
                "num_envs": {"type": ["integer", "null"]},
            },
        },
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["env_id", "task_hash", "training_seed", "seed_base", "episodes"],
                "properties": {
                    "env_id": {"type": "string"},
                    "task_hash": {"type": "string"},
                    "training_seed": {"type": "integer"},
                    "seed_base": {"type": "integer"},
                    "official": {"type": "boolean"},
                    "env_kwargs": {"type": "object"},
                    "model_provenance": {"type": "object"},
                    "episodes": {"type": "array", "minItems": 1, "items": _EPISODE},
                },
            },
        },
        "learning_curves": {
            "type": "object",
            "description": "optional: env_id -> list of {env_steps, wall_clock_s, return} points",
            "additionalProperties": {
                "type": "array",
                "items": {"type": "object", "required": ["env_steps", "return"],
                          "properties": {"env_steps": {"type": "number"}, "wall_clock_s": {"type": "number"},
                                         "return": {"type": "number"}}},
            },
        },
        "aggregates": {"type": "object"},
    },
}


class ResultsError(ValueError):
    """A results file is malformed or inconsistent (the message says what)."""


def task_hash(task_id: str) -> str:
    """Hash of a task's definition: its frozen config (render profile included) and id."""
    entry = get_task(task_id)
    return f"{entry.id}:{entry.config.hash()}"


def versions() -> dict[str, str | None]:
    """Versions of Python and the packages a result depends on."""
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("visual_robo_bench", "mujoco", "gymnasium", "numpy", "dm_control", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def hardware() -> str:
    """CPU model and core count of this machine."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def episode_record(e) -> dict[str, Any]:
    """The schema's record of an :class:`~visual_robo_bench.evaluation.harness.EpisodeResult`."""
    return {
        "seed": e.seed, "return": e.ret, "length": e.length, "success_once": e.success_once,
        "success_at_end": e.success_at_end, "terminated": e.terminated, "physics_error": e.physics_error,
        "agent_error": e.agent_error, "reward_terms": e.reward_terms, "metrics": e.metrics,
    }


def make_results(
    evals: list[tuple[EvalResult, int]],
    agent_name: str,
    description: str,
    budget: dict[str, Any] | None = None,
    agent_config: dict[str, Any] | None = None,
    policy: str | None = None,
    render: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A results document from evaluations, each paired with its training seed."""
    from .. import __version__

    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "vrb_version": __version__,
        "versions": versions(),
        "render": render or {},
        "agent": {"name": agent_name, "description": description, "config": agent_config or {}},
        "budget": budget or {"env_steps": None, "rendered_frames": None, "wall_clock_s": None,
                             "hardware": hardware(), "num_envs": None},
        "runs": [
            {"env_id": r.task_id, "task_hash": task_hash(r.task_id), "training_seed": int(seed),
             "seed_base": r.seed_base, "official": r.official, "env_kwargs": r.env_kwargs,
             "model_provenance": r.provenance,
             "episodes": [episode_record(e) for e in r.episodes]}
            for r, seed in evals
        ],
    }
    if policy:
        doc["agent"]["policy"] = policy
    doc["aggregates"] = aggregates(doc)
    return doc


def validate(doc: Any) -> dict[str, Any]:
    """Check a results document against the schema and the installed task definitions.

    Raises:
        ResultsError: Naming the first problem (schema path, unknown task, hash
            mismatch, inconsistent per-episode data, duplicated run).
    """
    if not isinstance(doc, dict):
        raise ResultsError("a results file must hold a JSON object")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ResultsError(f"schema_version must be {SCHEMA_VERSION!r}, got {doc.get('schema_version')!r}")
    try:
        jsonschema.validate(doc, SCHEMA)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ResultsError(f"invalid results file at {where}: {err.message}") from None
    seen = set()
    for i, run in enumerate(doc["runs"]):
        try:
            expected = task_hash(run["env_id"])
        except KeyError as err:
            raise ResultsError(f"runs/{i}: {err.args[0]}") from None
        if run["task_hash"] != expected:
            raise ResultsError(
                f"runs/{i}: task hash {run['task_hash']!r} does not match the installed definition of "
                f"{run['env_id']} ({expected!r}); results of a changed task cannot be compared"
            )
        key = (run["env_id"], run["training_seed"])
        if key in seen:
            raise ResultsError(f"runs/{i}: a second run of {run['env_id']} with training seed {run['training_seed']}")
        seen.add(key)
        seeds = [e["seed"] for e in run["episodes"]]
        if len(set(seeds)) != len(seeds):
            raise ResultsError(f"runs/{i}: episode seeds repeat")
        for j, e in enumerate(run["episodes"]):
            if e["success_at_end"] and not e["success_once"]:
                raise ResultsError(f"runs/{i}/episodes/{j}: success_at_end without success_once")
            if e.get("reward_terms") and not np.isclose(sum(e["reward_terms"].values()), e["return"],
                                                        rtol=1e-6, atol=1e-6):
                raise ResultsError(f"runs/{i}/episodes/{j}: return {e['return']} is not the sum of its reward terms")
    return doc


def aggregates(doc: dict[str, Any]) -> dict[str, Any]:
    """Per-run and per-task means, recomputed from the per-episode data."""
    per_task: dict[str, list[dict[str, float]]] = {}
    for run in doc["runs"]:
        eps = run["episodes"]
        per_task.setdefault(run["env_id"], []).append({
            "training_seed": run["training_seed"],
            "return": float(np.mean([e["return"] for e in eps])),
            "success_once": float(np.mean([e["success_once"] for e in eps])),
            "success_at_end": float(np.mean([e["success_at_end"] for e in eps])),
            "length": float(np.mean([e["length"] for e in eps])),
            "episodes": len(eps),
        })
    out = {}
    for task, runs in per_task.items():
        out[task] = {
            "runs": runs,
            "return": float(np.mean([r["return"] for r in runs])),
            "success_once": float(np.mean([r["success_once"] for r in runs])),
            "success_at_end": float(np.mean([r["success_at_end"] for r in runs])),
            "num_runs": len(runs),
        }
    return out


def check_aggregates(doc: dict[str, Any], tolerance: float = 1e-6) -> None:
    """Reject a document whose stated aggregates disagree with its episodes."""
    stated = doc.get("aggregates")
    if not stated:
        return
    actual = aggregates(doc)
    for task, agg in stated.items():
        if task not in actual:
            raise ResultsError(f"aggregates name task {task!r}, which has no runs")
        for key in ("return", "success_once", "success_at_end"):
            if key in agg and not np.isclose(agg[key], actual[task][key], rtol=tolerance, atol=tolerance):
                raise ResultsError(
                    f"aggregates/{task}/{key} = {agg[key]} but the episodes give {actual[task][key]:.6g}"
                )


def write_json(doc: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``doc`` to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    with atomic_open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True, default=float)
        f.write("\n")
    return path


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a results file."""
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ResultsError(f"{path} is not valid JSON: {err}") from None
    validate(doc)
    check_aggregates(doc)
    return doc
