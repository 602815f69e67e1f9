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
  ``hardware``, ``num_envs`` (training budget, each number >= 0; ``null`` only
  for the untrained floors: ``vrb submit`` refuses null budgets of any other entry).
* ``runs``: list of ``{env_id, task_hash, training_seed, seed_base, episodes,
  official, env_kwargs, model_provenance}``, ``episodes`` being per-episode records
  (``seed, return, length, success_once, success_at_end, terminated``, plus
  optional ``physics_error, agent_error, reward_terms, metrics``).
* ``learning_curves``: optional, ``{env_id: [{env_steps, wall_clock_s, return}]}``;
  ``return`` is ``null`` at a point where no training episode had finished yet.
* ``aggregates``: optional, ``{env_id: {return, success_once, success_at_end, ...}}``;
  checked against the episodes on input, never trusted.

Every number must be finite: JSON has no NaN or Infinity, so :func:`read_json`
refuses those constants, :func:`validate` refuses non-finite floats and integers
too large for a float, and :func:`write_json` never writes one. An episode's
``length`` is at most its task's ``max_episode_steps`` (that of ``env_kwargs``
when the run overrides it). ``env_id`` is the canonical registered id
(``VRB/Walker-v1``, not ``visual_robo_bench:VRB/Walker-v1``).
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from ..fileio import atomic_open
from ..registry import get_task
from .harness import EvalResult

SCHEMA_VERSION = "1"

#: The numeric fields of ``budget`` (the training budget; all ``null`` only for untrained floors).
BUDGET_KEYS = ("env_steps", "rendered_frames", "wall_clock_s", "num_envs")

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
            "required": list(BUDGET_KEYS) + ["hardware"],
            "properties": {
                "env_steps": {"type": ["integer", "null"], "minimum": 0},
                "rendered_frames": {"type": ["integer", "null"], "minimum": 0},
                "wall_clock_s": {"type": ["number", "null"], "minimum": 0},
                "hardware": {"type": "string"},
                "num_envs": {"type": ["integer", "null"], "minimum": 1},
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
            "description": "optional: env_id -> list of {env_steps, wall_clock_s, return} points (return null: "
                           "no training episode had finished yet)",
            "additionalProperties": {
                "type": "array",
                "items": {"type": "object", "required": ["env_steps", "return"],
                          "properties": {"env_steps": {"type": "number"}, "wall_clock_s": {"type": "number"},
                                         "return": {"type": ["number", "null"]}}},
            },
        },
        "aggregates": {
            "type": "object",
            "description": "optional: env_id -> per-task means (checked against the episodes, never trusted)",
            "additionalProperties": {
                "type": "object",
                "properties": {"return": {"type": "number"}, "success_once": {"type": "number"},
                               "success_at_end": {"type": "number"}, "num_runs": {"type": "integer"},
                               "runs": {"type": "array", "items": {"type": "object"}}},
            },
        },
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


#: Packages whose version can change what an episode returns: the task code and the physics.
RESULT_PACKAGES = ("visual_robo_bench", "mujoco")


def version_differences(doc: dict[str, Any]) -> list[str]:
    """Where a results file's :data:`RESULT_PACKAGES` versions differ from this installation's.

    Args:
        doc: A validated results document.

    Returns:
        ``"<package> <the file's version> (installed: <this one's>)"`` per differing package, in
        :data:`RESULT_PACKAGES` order; empty when the file was made with the installed versions.
    """
    here = versions()
    recorded = {"visual_robo_bench": doc.get("vrb_version"), **doc.get("versions", {})}
    return [f"{pkg} {recorded.get(pkg)} (installed: {here[pkg]})" for pkg in RESULT_PACKAGES
            if recorded.get(pkg) != here[pkg]]


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
    code_url: str | None = None,
) -> dict[str, Any]:
    """A results document from evaluations, each paired with its training seed.

    Args:
        evals: ``(evaluation, training seed)`` pairs, one per run.
        agent_name: The agent's name (the default submission name).
        description: One line on the agent.
        budget: The training budget (keys of :data:`BUDGET_KEYS` and ``hardware``); missing keys are
            ``null`` and a missing ``hardware`` is this machine's.
        agent_config: The agent's full config (hyperparameters).
        policy: The evaluated policy file or ``module:factory`` (the verified tier needs it).
        render: GL backend and renderer strings.
        code_url: Where the agent's code is (URL and commit).

    Returns:
        A document that passes :func:`validate`.
    """
    from .. import __version__

    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "vrb_version": __version__,
        "versions": versions(),
        "render": render or {},
        "agent": {"name": agent_name, "description": description, "config": agent_config or {}},
        "budget": {**dict.fromkeys(BUDGET_KEYS), "hardware": hardware(), **(budget or {})},
        "runs": [
            {"env_id": get_task(r.task_id).id, "task_hash": task_hash(r.task_id), "training_seed": int(seed),
             "seed_base": r.seed_base, "official": r.official, "env_kwargs": r.env_kwargs,
             "model_provenance": r.provenance,
             "episodes": [episode_record(e) for e in r.episodes]}
            for r, seed in evals
        ],
    }
    if policy:
        doc["agent"]["policy"] = policy
    if code_url:
        doc["agent"]["code_url"] = code_url
    doc["aggregates"] = aggregates(doc)
    return doc


def _leaves(doc: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, value)`` of every value in ``doc`` that is not a dict, list or tuple (``runs/0/episodes/3/return``)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, f"{where}/{k}" if where else str(k))
    elif isinstance(doc, (list, tuple)):
        for i, v in enumerate(doc):
            yield from _leaves(v, f"{where}/{i}" if where else str(i))
    else:
        yield where or "(top level)", doc


def non_finite(doc: Any) -> Iterator[str]:
    """Paths (``runs/0/episodes/3/return``) of the NaN and infinite floats anywhere in ``doc``."""
    return (path for path, v in _leaves(doc) if isinstance(v, (float, np.floating)) and not math.isfinite(v))


def _overflows(value: Any) -> bool:
    try:
        float(value)
    except OverflowError:
        return True
    return False


def too_large(doc: Any) -> Iterator[str]:
    """Paths of the integers anywhere in ``doc`` too large to convert to a float (e.g. ``10**400``)."""
    return (path for path, v in _leaves(doc) if isinstance(v, int) and not isinstance(v, bool) and _overflows(v))


def validate(doc: Any) -> dict[str, Any]:
    """Check a results document against the schema and the installed task definitions.

    Raises:
        ResultsError: Naming the first problem (schema path, non-finite number or an integer too large
            for a float, unknown or non-canonical task id, hash mismatch, inconsistent per-episode data
            such as an episode longer than its task's ``max_episode_steps``, duplicated run).
    """
    if not isinstance(doc, dict):
        raise ResultsError("a results file must hold a JSON object")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ResultsError(f"schema_version must be {SCHEMA_VERSION!r}, got {doc.get('schema_version')!r}")
    bad = next(non_finite(doc), None)
    if bad is not None:
        raise ResultsError(f"invalid results file at {bad}: NaN and infinite numbers are not allowed (every "
                           "return, reward term, metric and budget must be a finite number); re-evaluate, or fix "
                           "the code that wrote it")
    huge = next(too_large(doc), None)
    if huge is not None:
        raise ResultsError(f"invalid results file at {huge}: an integer too large for a float (beyond about "
                           "1.8e308); every number must be a finite float: re-evaluate, or fix the code that wrote it")
    try:
        jsonschema.validate(doc, SCHEMA)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ResultsError(f"invalid results file at {where}: {err.message}") from None
    seen = set()
    for i, run in enumerate(doc["runs"]):
        try:
            entry = get_task(run["env_id"])
        except KeyError as err:
            raise ResultsError(f"runs/{i}: {err.args[0]}") from None
        if run["env_id"] != entry.id:
            raise ResultsError(f"runs/{i}: env_id {run['env_id']!r} is not a canonical task id; write {entry.id!r}")
        expected = task_hash(entry.id)
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
        overrides = run.get("env_kwargs") or {}
        max_steps = overrides.get("max_episode_steps", entry.config.max_episode_steps)
        for j, e in enumerate(run["episodes"]):
            if isinstance(max_steps, int) and e["length"] > max_steps:
                limit = "overridden in env_kwargs" if "max_episode_steps" in overrides else "of the task"
                raise ResultsError(
                    f"runs/{i}/episodes/{j}: length {e['length']} exceeds {run['env_id']}'s max_episode_steps "
                    f"({max_steps}, {limit}); no episode can last longer, so this record cannot come from an "
                    "evaluation: re-evaluate with vrb evaluate")
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
    """Reject a document whose stated aggregates disagree with its episodes (or are not per-task mappings).

    Raises:
        ResultsError: Naming the first malformed or disagreeing aggregate.
    """
    stated = doc.get("aggregates")
    if not stated:
        return
    if not isinstance(stated, dict):
        raise ResultsError(f"aggregates must map task ids to their means, got {type(stated).__name__}")
    actual = aggregates(doc)
    for task, agg in stated.items():
        if task not in actual:
            raise ResultsError(f"aggregates name task {task!r}, which has no runs")
        if not isinstance(agg, dict):
            raise ResultsError(f"aggregates/{task} must be an object of means, got {agg!r}")
        for key in ("return", "success_once", "success_at_end"):
            value = agg.get(key)
            if key in agg and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ResultsError(f"aggregates/{task}/{key} must be a number, got {value!r}")
            if key in agg and not np.isclose(agg[key], actual[task][key], rtol=tolerance, atol=tolerance):
                raise ResultsError(
                    f"aggregates/{task}/{key} = {agg[key]} but the episodes give {actual[task][key]:.6g}"
                )


def _refuse_constant(name: str) -> Any:
    raise ResultsError(f"{name} is not a JSON number (JSON has no NaN or Infinity); every number in a results "
                       "file must be finite")


def read_json(path: str | os.PathLike) -> Any:
    """Parse the JSON file at ``path``, refusing the non-standard constants ``NaN``, ``Infinity`` and ``-Infinity``.

    Raises:
        ResultsError: The file cannot be read, is not JSON, or holds one of those constants.
    """
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ResultsError(f"cannot read {path}: {err}") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as err:
        raise ResultsError(f"{path} is not valid JSON: {err}") from None
    except ResultsError as err:
        raise ResultsError(f"{path}: {err}") from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise ResultsError(f"{path} holds a number that cannot be read ({err}); every number in a results file "
                           "must be a finite float") from None


def write_json(doc: Any, path: str | os.PathLike) -> Path:
    """Write ``doc`` to ``path`` atomically (temp file + rename), as standard JSON.

    Raises:
        ResultsError: ``doc`` holds a NaN or infinite number (named by its path); nothing is written then.
    """
    bad = next(non_finite(doc), None)
    if bad is not None:
        raise ResultsError(f"not writing {path}: {bad} is not a finite number (JSON has no NaN or Infinity)")
    path = Path(path)
    with atomic_open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True, default=float, allow_nan=False)
        f.write("\n")
    return path


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a results file (its stated aggregates included).

    Raises:
        ResultsError: What is wrong with the file.
    """
    doc = read_json(path)
    validate(doc)
    check_aggregates(doc)
    return doc
