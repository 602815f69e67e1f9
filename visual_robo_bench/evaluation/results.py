"""Results files: a versioned, documented JSON schema, written atomically.

A results file holds one agent's evaluation on one or more tasks and training
runs, with per-episode data. Aggregates in a file are informative only: every
consumer (``vrb submit``, the leaderboards) recomputes them from the episodes.

Schema (``schema_version`` "1"):

* ``schema_version``: "1".
* ``vrb_version``; optional ``vrb_git_sha`` (the commit of the VRB code when it ran from a git checkout,
  else ``null``: :func:`vrb_git_sha`) and ``vrb_git_dirty`` (uncommitted changes in it: :func:`vrb_git_dirty`);
  ``versions`` (python, visual_robo_bench, mujoco, gymnasium, numpy, dm_control, torch, and the other installed
  packages of :data:`OPTIONAL_PACKAGES` that are present: :func:`versions`), ``render`` (GL backend and renderer
  string).
* ``agent``: ``name``, ``description``, optional ``code_url``, ``config`` (the full config: ``vrb evaluate``
  takes it from a VRB policy file, :func:`policy_config`, with its ``preset``: the agent's preset name and the
  settings changed from it), optional ``policy`` (file or ``module:factory``,
  for the verified tier).
* ``budget``: ``env_steps``, ``rendered_frames``, ``wall_clock_s``,
  ``hardware``, ``num_envs`` (training budget, each number >= 0; ``null`` only
  for the untrained floors: ``vrb submit`` refuses null budgets of any other entry). ``hardware`` is one
  line: CPU model and cores, RAM and GPU model when there is one (:func:`hardware`).
* ``runs``: list of ``{env_id, task_hash, training_seed, seed_base, episodes,
  official, env_kwargs, model_provenance, obs_mode}``, ``episodes`` being per-episode records
  (``seed, return, length, success_once, success_at_end, terminated``, plus
  optional ``physics_error, agent_error, reward_terms, metrics``). Optional ``obs_mode``: what the policy
  acted from, ``"visual"`` or ``"state"`` (privileged state: the leaderboards' state track); a run without it
  (files written before it was recorded) was evaluated with ``"visual"``.
* ``learning_curves``: optional, ``{env_id: [{env_steps, wall_clock_s, return, returns}]}``;
  ``return`` is the mean over the training runs, ``null`` at a point where not every run had a value yet
  (no training episode or evaluation had finished). Optional ``returns``: one value per training run, in
  the order of that task's runs in ``runs`` (their training seeds), ``null`` for a run with no value yet; the
  leaderboards draw the IQM over runs with a bootstrap CI from it. Every point of a curve then has it, with
  one length, and ``return`` is the mean of its non-null values (:func:`check_learning_curves`).
* ``aggregates``: optional, ``{env_id: {return, success_once, success_at_end, ...}}``;
  checked against the episodes on input, never trusted.

Every number must be finite: JSON has no NaN or Infinity, so :func:`read_json`
refuses those constants, :func:`validate` refuses non-finite floats and integers
too large for a float, and :func:`write_json` never writes one. An episode's
``length`` is at most its task's ``max_episode_steps`` (that of ``env_kwargs``
when the run overrides it). ``env_id`` is the canonical registered id
(``VRB/Walker-v1``, not ``visual_robo_bench:VRB/Walker-v1``).

A run's ``model_provenance`` must name the robot model files of the installed task (:func:`validate` builds
each task's scene once per process, :func:`installed_provenance`, so the models must be available): the
robot, the XML file's hash, the name of the package that ships it and the ``robot_descriptions`` commit,
never the machine-local path (:func:`provenance_mismatch`). A run without it, or with an empty one (files
written before tasks recorded it), is accepted on its task hash alone; ``vrb submit`` requires it of new runs
(:meth:`~.leaderboard.Leaderboard.check_provenance_recorded`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
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
        "vrb_git_sha": {"type": ["string", "null"], "pattern": "^[0-9a-f]{40}([0-9a-f]{24})?$",
                        "description": "optional: commit of the VRB code (null: not run from a git checkout)"},
        "vrb_git_dirty": {"type": ["boolean", "null"],
                          "description": "optional: whether tracked files of that checkout differed from the "
                                         "commit (null: unknown, not a checkout or no git program)"},
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
                    "obs_mode": {"enum": ["visual", "state"],
                                 "description": "what the policy acted from; absent: visual"},
                    "episodes": {"type": "array", "minItems": 1, "items": _EPISODE},
                },
            },
        },
        "learning_curves": {
            "type": "object",
            "description": "optional: env_id -> list of {env_steps, wall_clock_s, return, returns} points (return: "
                           "the mean over the training runs, null while not every run has a value; optional "
                           "returns: one value per training run, in the order of the task's runs, null for a run "
                           "with no value yet)",
            "additionalProperties": {
                "type": "array",
                "items": {"type": "object", "required": ["env_steps", "return"],
                          "properties": {"env_steps": {"type": "number"}, "wall_clock_s": {"type": "number"},
                                         "return": {"type": ["number", "null"]},
                                         "returns": {"type": "array", "minItems": 1,
                                                     "items": {"type": ["number", "null"]}}}},
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


#: ``model_provenance`` sources that say how the files were obtained, not which files they are (the same pinned
#: model comes from either; ``model_dir`` is left out of the task hash for the same reason).
_FETCH_SOURCES = ("model_dir", "robot_descriptions")

#: The installed tasks' provenance, by (task id, config hash, config model_dir, ``$VRB_MODEL_DIR``).
_INSTALLED_PROVENANCE: dict[tuple[str, str, str, str], dict[str, str]] = {}


def installed_provenance(task_id: str) -> dict[str, str]:
    """Where the installed task's robot model comes from: ``robot``, ``source``, ``commit``, ``path``, ``xml_sha256``.

    Builds the task's scene as :class:`~visual_robo_bench.envs.VRBVectorEnv` does (``task_cls(config)``, then
    ``build_scene()``, which resolves the model and records the task's ``provenance``), with no simulation or
    rendering. The result is cached for the life of the process per task definition and model directory, so a
    file with many runs of a task builds it once.

    Args:
        task_id: A registered task id.

    Returns:
        A copy of the task's provenance (empty when the task records none).

    Raises:
        ModelNotFoundError: The task's robot model is unavailable on this machine (the message says what to do).
    """
    from ..models import ENV_VAR

    entry = get_task(task_id)
    key = (entry.id, entry.config.hash(), str(getattr(entry.config, "model_dir", None)), os.environ.get(ENV_VAR, ""))
    if key not in _INSTALLED_PROVENANCE:
        task = entry.task_cls(entry.config)
        task.max_episode_steps = entry.config.max_episode_steps  # as the env sets it before build_scene
        task.build_scene()
        _INSTALLED_PROVENANCE[key] = {str(k): str(v) for k, v in (getattr(task, "provenance", None) or {}).items()}
    return dict(_INSTALLED_PROVENANCE[key])


def _package(source: str) -> str:
    """The distribution named by a package source (``"gymnasium-robotics 1.4.2"`` -> ``"gymnasium-robotics"``)."""
    return source.split(" ", 1)[0]


def provenance_mismatch(recorded: dict[str, Any], installed: dict[str, str]) -> str | None:
    """How a run's ``model_provenance`` differs from the installed task's in what identifies the model, or None.

    Compared, where the run records them: ``robot``; ``xml_sha256`` (the hash of the model's XML file); the
    package that ships the model (the name in ``source`` when both sides name a package; its version may differ,
    as other package versions may, when the file's hash is the same); and ``commit``: a run's
    ``robot_descriptions`` commit must be the installed one, or the commit VRB pins for the robot when the
    installed model comes from a model directory. Never compared: ``path`` (machine-local) and whether the files
    came from ``VRB_MODEL_DIR`` or ``robot_descriptions``.

    Args:
        recorded: A run's ``model_provenance``.
        installed: :func:`installed_provenance` of its task.

    Returns:
        One line naming the model file and both values (``None``: they agree).
    """
    from ..models import ROBOTS

    name = Path(str(recorded.get("path") or installed.get("path") or "")).name or "(unnamed)"
    robot = recorded.get("robot", installed.get("robot", ""))
    if "robot" in recorded and recorded["robot"] != installed.get("robot"):
        return (f"it was made with robot model {recorded['robot']!r}, but the installed task uses "
                f"{installed.get('robot') or 'no robot model file'!r}")
    if "xml_sha256" in recorded and recorded["xml_sha256"] != installed.get("xml_sha256"):
        origin = installed.get("source") or "nowhere"
        return (f"robot model file {name} ({robot}) has XML hash {recorded['xml_sha256']!r} in the results file but "
                f"{installed.get('xml_sha256')!r} in the installed models (from {origin})")
    ours, theirs = str(recorded.get("source") or ""), str(installed.get("source") or "")
    if ours and theirs and ours not in _FETCH_SOURCES and theirs not in _FETCH_SOURCES \
            and _package(ours) != _package(theirs):
        return (f"robot model file {name} ({robot}) comes from package {_package(ours)!r} in the results file but "
                f"from {_package(theirs)!r} in the installed models")
    commit = str(recorded.get("commit") or "")
    expected = installed.get("commit") or (ROBOTS[robot].commit if robot in ROBOTS else "")
    if commit and expected and commit != expected:
        pinned = "the installed models are those of" if installed.get("commit") else "VRB pins"
        return (f"robot model file {name} ({robot}) comes from commit {commit[:12]} in the results file but "
                f"{pinned} commit {expected[:12]}")
    return None


def _check_model_provenance(i: int, run: dict[str, Any]) -> None:
    """Refuse ``runs/i`` when its ``model_provenance`` names other robot model files than the installed task's.

    A run without ``model_provenance``, or with an empty one (files written before tasks recorded it, e.g. for
    the models shipped by gymnasium and dm_control), is not checked: only its task hash is. The installed
    model is built only for runs that record a provenance.

    Raises:
        ResultsError: The models differ (naming the run, the task, the file, both values and what to do), or the
            installed task's model is unavailable here.
    """
    from ..models import ModelNotFoundError

    recorded = run.get("model_provenance")
    if not recorded:
        return
    where = f"runs/{i} ({run['env_id']}, training seed {run['training_seed']})"
    try:
        installed = installed_provenance(run["env_id"])
    except ModelNotFoundError as err:
        raise ResultsError(f"{where}: cannot check the robot model the run was made with against the installed "
                           f"one, as the installed model is unavailable: {err}") from None
    problem = provenance_mismatch(recorded, installed)
    if problem is not None:
        source, commit = str(recorded.get("source") or ""), str(recorded.get("commit") or "")
        if source == "model_dir":
            how = "point VRB_MODEL_DIR at the model directory it was made with"
        elif source == "robot_descriptions":
            how = f"the robot_descriptions models at commit {commit[:12] or '(not recorded)'}"
        elif len(source.split(" ")) == 2:  # a package: its own file, unless the installed copy was edited
            force = "--force-reinstall " if source == installed.get("source") else ""
            how = "pip install {}'{}=={}'".format(force, *source.split(" "))
        else:
            how = f"source {source or '(not recorded)'}"
        raise ResultsError(
            f"{where}: {problem}; the result was made with other robot model files than the installed "
            f"{run['env_id']}, so it cannot be compared: re-evaluate the policy with the installed models "
            f"(vrb evaluate), or install the models the result was made with ({how}) and validate again")


#: Packages whose version :func:`versions` always records (``null`` when not installed).
CORE_PACKAGES = ("visual_robo_bench", "mujoco", "gymnasium", "numpy", "dm_control", "torch")

#: Other packages a result can depend on (models, agents, loaders, logging, sweeps, the warp backend): recorded
#: by :func:`versions` only when installed.
OPTIONAL_PACKAGES = ("gymnasium_robotics", "robot_descriptions", "stable_baselines3", "rliable", "imageio",
                     "imageio_ffmpeg", "fast_simplification", "tensorboard", "onnx", "onnxruntime", "ray",
                     "mujoco_warp", "warp_lang")


def versions() -> dict[str, str | None]:
    """Versions of Python and the packages a result depends on (installed distributions, never imported).

    Every package of :data:`CORE_PACKAGES` is listed (``None`` when not installed); those of
    :data:`OPTIONAL_PACKAGES` only when installed.
    """
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in CORE_PACKAGES + OPTIONAL_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            if pkg in CORE_PACKAGES:
                out[pkg] = None
    return out


def vrb_git_sha(root: str | os.PathLike | None = None) -> str | None:
    """The commit of the VRB code when it runs from a git checkout (an editable install), else None.

    Asks the local ``git`` (no network) for ``HEAD`` of the repository whose top level is ``root`` (default: the
    directory holding the ``visual_robo_bench`` package); without ``git``, reads ``.git/HEAD`` and the ref it
    names. A package installed elsewhere (site-packages, even inside another repository) gives None.

    Args:
        root: The checkout's root (tests).
    """
    root = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    git_dir = root / ".git"
    if not git_dir.exists():
        return None
    sha = None
    if shutil.which("git"):
        try:
            res = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel", "HEAD"],
                                 capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            res = None
        lines = res.stdout.split() if res is not None and res.returncode == 0 else []
        if len(lines) == 2 and Path(lines[0]).resolve() == root.resolve():
            sha = lines[1]
    elif git_dir.is_dir():
        sha = _read_head(git_dir)
    return sha if sha and re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", sha) else None


def vrb_git_dirty(root: str | os.PathLike | None = None) -> bool | None:
    """Whether the checkout :func:`vrb_git_sha` names has uncommitted changes to tracked files, so that its
    commit alone does not say what code ran (untracked files are not counted).

    Args:
        root: The checkout's root (tests).

    Returns:
        True or False; None when :func:`vrb_git_sha` finds no checkout, or the ``git`` program is missing or fails.
    """
    root = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    if vrb_git_sha(root) is None or not shutil.which("git"):
        return None
    try:
        res = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(res.stdout.strip()) if res.returncode == 0 else None


def _read_head(git_dir: Path) -> str | None:
    """The commit ``git_dir/HEAD`` names (directly, through a loose ref or ``packed-refs``), or None."""
    try:
        head = (git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:].strip()
        if (git_dir / ref).is_file():
            return (git_dir / ref).read_text().strip()
        packed = git_dir / "packed-refs"
        for line in packed.read_text().splitlines() if packed.is_file() else []:
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref:
                return parts[0]
    except OSError:
        pass
    return None


def policy_config(spec: str | os.PathLike) -> dict[str, Any] | None:
    """The config a VRB policy file (``.pt``/``.pth``, ``torch.save`` of a dict with ``agent`` and ``config``)
    carries, or None: not such a file (a TorchScript file, another format, a ``module:factory``), or torch is
    not installed.

    What ``vrb evaluate --out`` records as ``agent.config``: the full training config of the policy, and under
    ``preset`` the agent's preset it starts from and the settings it changes
    (:func:`~visual_robo_bench.train.preset_overrides`; left out when the installed VRB has no such preset).
    """
    path = Path(spec)
    if path.suffix.lower() not in (".pt", ".pth") or not path.is_file():
        return None
    try:
        import torch
    except ImportError:
        return None
    data = None
    for mmap in (True, False):  # mapping the tensors reads only what is needed; older pickles cannot be mapped
        try:
            data = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
            break
        except Exception:  # noqa: BLE001 - any unreadable file simply has no config to record
            continue
    if not isinstance(data, dict) or "agent" not in data or not isinstance(data.get("config"), dict):
        return None
    config = json.loads(json.dumps(data["config"], default=str))  # plain JSON data (tuples as lists)
    from ..train import preset_overrides

    preset = preset_overrides(str(data["agent"]), config)
    return config if preset is None else {**config, "preset": preset}


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
    """This machine in one line: CPU model and core count, total RAM and the GPU model when there is one.

    E.g. ``AMD EPYC 7B13, 2 cores, 23 GiB RAM`` or ``..., 128 GiB RAM, GPU NVIDIA H100 80GB HBM3``
    (``2x NAME`` for several of one model). See :func:`gpu_names` for how the GPU is found.
    """
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [model, f"{os.cpu_count()} cores"]
    ram = total_ram_bytes()
    if ram:
        parts.append(f"{ram / 2**30:.0f} GiB RAM")
    gpus = gpu_names()
    if gpus:
        counts = {name: gpus.count(name) for name in dict.fromkeys(gpus)}
        parts.append("GPU " + " + ".join(name if n == 1 else f"{n}x {name}" for name, n in counts.items()))
    return ", ".join(parts)


def total_ram_bytes() -> int | None:
    """Total physical memory of this machine in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def gpu_names() -> list[str]:
    """The CUDA GPUs of this machine by model name (empty when none is found).

    From torch when the process already initialized CUDA (torch is never imported here, nor CUDA initialized:
    that would cost seconds and break CUDA in processes forked later), else from ``nvidia-smi`` when it is on
    the PATH.
    """
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    try:
        if cuda is not None and cuda.is_initialized():
            return [cuda.get_device_name(i) for i in range(cuda.device_count())]
    except Exception:  # noqa: BLE001 - a broken CUDA setup: fall back to nvidia-smi
        pass
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        res = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in res.stdout.splitlines() if line.strip()] if res.returncode == 0 else []


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
        agent_config: The agent's full config (hyperparameters; :func:`policy_config` reads a policy file's).
        policy: The evaluated policy file or ``module:factory`` (the verified tier needs it).
        render: GL backend and renderer strings.
        code_url: Where the agent's code is (URL and commit).

    Returns:
        A document that passes :func:`validate`.
    """
    from .. import __version__

    budget = dict(budget or {})
    if "hardware" not in budget:  # the caller's own line (a training machine) stands; else this machine's
        budget["hardware"] = hardware()  # (may ask nvidia-smi: only when needed)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "vrb_version": __version__,
        "vrb_git_sha": vrb_git_sha(),
        "vrb_git_dirty": vrb_git_dirty(),
        "versions": versions(),
        "render": render or {},
        "agent": {"name": agent_name, "description": description, "config": agent_config or {}},
        "budget": {**dict.fromkeys(BUDGET_KEYS), "hardware": None, **budget},  # hardware after the counts
        "runs": [
            {"env_id": get_task(r.task_id).id, "task_hash": task_hash(r.task_id), "training_seed": int(seed),
             "seed_base": r.seed_base, "official": r.official, "env_kwargs": r.env_kwargs,
             "model_provenance": r.provenance, "obs_mode": r.obs_mode,
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
            for a float, unknown or non-canonical task id, task hash or robot model mismatch (a run's
            ``model_provenance`` against the installed models: :func:`provenance_mismatch`), inconsistent
            per-episode data
            such as an episode longer than its task's ``max_episode_steps``, duplicated run, a learning-curve
            point whose per-run ``returns`` disagree with its ``return``: :func:`check_learning_curves`).
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
        _check_model_provenance(i, run)
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
    check_learning_curves(doc)
    return doc


#: How far (relative and absolute, ``numpy.isclose``) a curve point's ``return`` may be from the mean of its
#: per-run ``returns`` (float rounding only).
CURVE_TOLERANCE = 1e-6


def check_learning_curves(doc: dict[str, Any], tolerance: float = CURVE_TOLERANCE) -> None:
    """Reject learning curves whose per-run ``returns`` disagree with their points' ``return``.

    A curve either has no ``returns`` at all (one mean curve, as files written before per-run values were
    recorded) or has them at every point, each list as long as the others (one value per training run). At
    every point, ``return`` is the mean of the non-null ``returns`` within ``tolerance`` (relative and
    absolute); it may be null only while some run has no value yet (the mean over every run does not exist
    yet), and must be null when no run has one.

    Args:
        doc: A results document that passed the schema.
        tolerance: Allowed difference between ``return`` and the mean of the non-null ``returns``.

    Raises:
        ResultsError: Naming the first point that breaks a rule, and what to fix.
    """
    for task, points in (doc.get("learning_curves") or {}).items():
        with_runs = [j for j, p in enumerate(points) if "returns" in p]
        if not with_runs:
            continue
        where = f"learning_curves/{task}"
        if len(with_runs) != len(points):
            j = next(j for j in range(len(points)) if j not in with_runs)
            raise ResultsError(
                f"{where}/{j}: no per-run 'returns' while other points of the curve have them (e.g. point "
                f"{with_runs[0]}); give every point of a curve one value per training run (null for a run with no "
                "value yet), or drop 'returns' from all of them")
        length = len(points[0]["returns"])
        for j, p in enumerate(points):
            values = p["returns"]
            if len(values) != length:
                raise ResultsError(
                    f"{where}/{j}: {len(values)} per-run 'returns' but point 0 has {length}; every point of a curve "
                    "holds one value per training run, in the same order (null for a run with no value yet)")
            known = [v for v in values if v is not None]
            ret = p["return"]
            if ret is None:
                if known and len(known) == len(values):
                    raise ResultsError(
                        f"{where}/{j}: 'return' is null but every run has a value in 'returns'; set 'return' to "
                        f"their mean ({float(np.mean(known)):.6g})")
                continue
            if not known:
                raise ResultsError(
                    f"{where}/{j}: 'return' is {ret} but no run has a value in 'returns' (all null); set 'return' "
                    "to null, or fill in the runs' values")
            mean = float(np.mean(known))
            if not np.isclose(ret, mean, rtol=tolerance, atol=tolerance):
                raise ResultsError(
                    f"{where}/{j}: 'return' is {ret} but the mean of the non-null per-run 'returns' {values} is "
                    f"{mean:.6g}; 'return' must be that mean: fix the point's 'return' or its 'returns'")


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
