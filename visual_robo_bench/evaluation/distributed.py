"""Distributed evaluation sweeps and rollout collection, on a Ray cluster or in this process.

Evaluation sweeps
-----------------
:func:`evaluate_sweep` evaluates every *cell* ``(agent spec, task, seed)`` of a grid with the
standard protocol (:func:`~visual_robo_bench.evaluation.harness.evaluate`). A cell's seed is the
training seed the agent stands for (the results file's ``training_seed``); the evaluation episodes
of every cell use the protocol's fixed seeds (episode k: ``seed_base + k``). An agent spec may hold
the placeholders ``{seed}`` and ``{task}`` (the task id after its last ``/``, e.g. ``Walker-v1``) to
name one policy file per training seed and task, e.g. ``"policies/sdpg-{task}-s{seed}.pt"``.

One function, :func:`run_cell`, evaluates a cell; it runs in this process when ``address`` is
``None`` and as a Ray task (``@ray.remote``, ``num_cpus`` per task) otherwise, so a cell gives the
same numbers either way, and the same as ``evaluate()`` called with the same arguments.

The sweep file (JSON, ``sweep_version`` "1") is rewritten atomically each time a cell finishes:

* ``sweep_version``: "1"; ``vrb_version``;
* ``settings``: ``episodes``, ``seed_base``, ``num_envs``, ``env_kwargs``, ``isolate``,
  ``act_timeout``, ``description`` (those of the run that created the file);
* ``cells``: one entry per cell, sorted by ``(agent, task, seed)``, never two for one cell:
  ``agent`` (the spec as given, placeholders included), ``task``, ``seed``,
  ``status`` (``"ok"`` or ``"error"``), ``error`` and ``traceback`` (why the cell could not be
  evaluated: a bad agent spec, an import error, a worker lost more often than ``max_retries``;
  ``null`` when ok), ``agent_error`` (an ok cell whose agent failed during some episodes: those are
  scored as failures, as in ``evaluate()``), ``results`` (a schema-valid results document, as
  :func:`~visual_robo_bench.evaluation.results.make_results` gives, with one run; ``null`` for an
  error), ``wall_clock_s`` and ``worker`` (``host``, ``pid``).

Resume: a sweep re-run with the same ``out`` skips the cells the file already holds (error cells
too, unless ``retry_errors``) and refuses to continue a file whose ``episodes``, ``seed_base`` or
``env_kwargs`` differ (its numbers would not be comparable). Cells of the file outside the new grid
are kept. A lock file beside ``out`` stops two sweeps from writing one file at a time.

Faults: a Ray worker that dies (killed, out of memory, node lost) is retried by Ray up to
``max_retries`` times; a cell still lost after that is recorded as an error with Ray's message. A
cell that fails deterministically (bad agent spec) is recorded as an error at its first attempt
and the sweep goes on. :func:`agent_results` merges one agent's ok cells into one results document
for ``vrb submit``.

Rollouts
--------
:func:`collect_rollouts` runs an agent for N episodes on a task and returns (and saves as ``.npz``)
every step's observation, action, reward and done flags, e.g. as a distillation data set. The
episodes are split into fixed chunks of ``episodes_per_chunk`` (one chunk per Ray task); the data
are concatenated in episode order, so a collection on Ray equals the local one array for array.

Workers
-------
Ray workers get the driver's ``VRB_*``, ``MUJOCO_GL``, ``PYOPENGL_PLATFORM``,
``MUJOCO_EGL_DEVICE_ID`` and ``ROBOT_DESCRIPTIONS_CACHE`` variables through
``runtime_env={"env_vars": ...}``, and the driver's working directory and ``PYTHONPATH`` entries on
their ``sys.path`` (so ``module:factory`` agents import as they do locally; on a cluster without a
shared file system, install the module there or pass ``runtime_env`` ``py_modules`` in
``ray_init_kwargs``).

Addresses: ``None`` (no Ray: a plain loop in this process), ``"local"`` (start a Ray instance on
this machine for the call), ``"auto"`` (connect to the running cluster ``ray start`` made, or
``RAY_ADDRESS``), ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` (Ray Client). If this process is
already connected (``ray.is_initialized()``), that connection is used and left open.

Example::

    from visual_robo_bench.evaluation.distributed import evaluate_sweep

    doc = evaluate_sweep(["random", "zero"], ["VRB/Walker-v1", "VRB/Hopper-v0"], seeds=[0, 1],
                         address="auto", out="sweep.json")
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode

from ..fileio import atomic_open
from .harness import DEFAULT_EPISODES, PUBLIC_SEED_BASE

SWEEP_VERSION = "1"
ROLLOUT_VERSION = "1"
RAY_INSTALL_HINT = "pip install 'visual_robo_bench[ray]'"
#: Driver environment variables every Ray worker gets (besides all ``VRB_*`` ones).
WORKER_ENV_VARS = ("MUJOCO_GL", "PYOPENGL_PLATFORM", "MUJOCO_EGL_DEVICE_ID", "ROBOT_DESCRIPTIONS_CACHE")
_COMPARABLE = ("episodes", "seed_base", "env_kwargs")
_MAX_TEXT = 4000


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or the cluster address cannot be reached (the message says what to do)."""


class SweepError(ValueError):
    """Bad sweep input, or an ``out`` file that cannot be resumed (the message says what to do)."""


class RolloutError(RuntimeError):
    """The agent failed while collecting rollouts (bad actions, an exception)."""


# ----------------------------------------------------------------------------- Ray connection


def import_ray() -> Any:
    """The ``ray`` module, or :class:`RayUnavailableError` with the install command."""
    try:
        import ray
    except ImportError as err:
        raise RayUnavailableError(f"distributed evaluation needs Ray, which is not installed: {RAY_INSTALL_HINT}"
                                  ) from err
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT`` / ``ray://HOST:PORT``, ``None`` for ``auto``/``local``."""
    if not isinstance(address, str):
        raise RayUnavailableError(f"a Ray address must be a string ('auto', 'local', HOST:PORT or "
                                  f"ray://HOST:PORT), got {address!r}")
    if address in ("auto", "local"):
        return None
    rest = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RayUnavailableError(
            f"Ray address {address!r} is not 'auto', 'local', HOST:PORT or ray://HOST:PORT"
        )
    return host.strip("[]"), int(port)


def _auto_address() -> tuple[str, int] | None:
    """Where ``ray.init(address="auto")`` would connect (best effort; ``None`` if unknown)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address  # not public: used only to check early

        addr = canonicalize_bootstrap_address("auto")
    except Exception:  # noqa: BLE001 - ray.init itself reports what is wrong
        return None
    if not addr:
        return None
    host, _, port = addr.rpartition(":")
    return (host, int(port)) if port.isdigit() else None


def _check_reachable(address: str, host_port: tuple[str, int], timeout: float) -> None:
    try:
        with socket.create_connection(host_port, timeout=timeout):
            pass
    except OSError as err:
        raise RayUnavailableError(
            f"cannot reach a Ray cluster at {address!r} ({host_port[0]}:{host_port[1]}: {err}); start one with "
            f"`ray start --head`, check the address and port, or use 'local' to start one on this machine"
        ) from None


@contextmanager
def ray_session(address: str, *, connect_timeout: float = 10.0, **init_kwargs: Any) -> Iterator[Any]:
    """Connect to (or start) Ray for the duration of a ``with`` block; yields the ``ray`` module.

    Args:
        address: ``"local"`` (start an instance here; ``init_kwargs`` such as ``num_cpus`` apply),
            ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"``.
        connect_timeout: Seconds to wait for the address to accept a TCP connection (checked before
            ``ray.init``, which would otherwise retry for minutes).
        **init_kwargs: More ``ray.init`` keywords.

    Raises:
        RayUnavailableError: Ray missing, a malformed address or one that cannot be reached.
    """
    ray = import_ray()
    host_port = _host_port(address)
    if host_port is not None:
        _check_reachable(address, host_port, connect_timeout)
    if ray.is_initialized():  # the caller's connection: use it as it is and leave it open
        yield ray
        return
    if address == "auto":
        found = _auto_address()
        if found is not None:
            _check_reachable(address, found, connect_timeout)
    kwargs = dict(init_kwargs, address=address)  # "local" makes a new instance even if one runs here
    if address == "local":
        kwargs.setdefault("include_dashboard", False)
    try:
        ray.init(**kwargs)
    except ConnectionError as err:
        raise RayUnavailableError(
            f"cannot connect to a Ray cluster at {address!r}: {err} (start one with `ray start --head`, or use "
            f"'local' to start one on this machine)"
        ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def worker_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment variables passed to Ray workers: all ``VRB_*`` plus :data:`WORKER_ENV_VARS`."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in sorted(env.items()) if k.startswith("VRB_") or k in WORKER_ENV_VARS}


def _driver_sys_path() -> list[str]:
    paths = [os.getcwd(), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    return list(dict.fromkeys(os.path.abspath(p) for p in paths))


def _extend_sys_path(paths: Sequence[str]) -> None:
    import sys

    for p in reversed(paths):
        if p not in sys.path and os.path.isdir(p):
            sys.path.insert(0, p)


def _remote_options(num_cpus: float, max_retries: int) -> dict[str, Any]:
    if not num_cpus > 0:
        raise SweepError(f"num_cpus per task must be > 0, got {num_cpus}")
    if int(max_retries) < 0:
        raise SweepError(f"max_retries must be >= 0, got {max_retries}")
    return {"num_cpus": float(num_cpus), "max_retries": int(max_retries), "retry_exceptions": False,
            "runtime_env": {"env_vars": worker_env()}}


def _text(err: BaseException) -> str:
    msg = f"{type(err).__name__}: {err}"
    return msg if len(msg) <= _MAX_TEXT else msg[:_MAX_TEXT] + " [...]"


def _jsonable(x: Any) -> Any:
    """``x`` as it reads back from JSON (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(x, sort_keys=True, default=float))


# ----------------------------------------------------------------------------- sweep cells


@dataclass(frozen=True, order=True)
class SweepCell:
    """One cell of a sweep.

    Attributes:
        agent: Agent spec as given (may hold ``{seed}`` and ``{task}``).
        task: Task id.
        seed: Training seed the agent stands for (the results' ``training_seed``).
    """

    agent: str
    task: str
    seed: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.agent, self.task, self.seed)

    def agent_spec(self) -> str:
        """The spec with ``{seed}`` and ``{task}`` filled in."""
        if "{" not in self.agent:
            return self.agent
        return self.agent.format(seed=self.seed, task=self.task.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class SweepSettings:
    """The evaluation settings shared by every cell of a sweep.

    Attributes:
        episodes: Episodes per cell.
        seed_base: Seed of episode 0.
        num_envs: Envs side by side per cell (``None``: the protocol's; never changes a result).
        env_kwargs: Extra env keywords (any makes the results unofficial).
        isolate: Run each agent in its own process with ``act_timeout`` (see ``evaluate``).
        act_timeout: Seconds per ``act()`` when isolated.
        description: Agent description in the results documents.
    """

    episodes: int = DEFAULT_EPISODES
    seed_base: int = PUBLIC_SEED_BASE
    num_envs: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    isolate: bool = False
    act_timeout: float = 60.0
    description: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.episodes, bool) or not isinstance(self.episodes, int) or self.episodes < 1:
            raise SweepError(f"episodes must be an integer >= 1, got {self.episodes!r}")
        if isinstance(self.seed_base, bool) or not isinstance(self.seed_base, int):
            raise SweepError(f"seed_base must be an integer, got {self.seed_base!r}")
        if self.num_envs is not None and (not isinstance(self.num_envs, int) or self.num_envs < 1):
            raise SweepError(f"num_envs must be None or an integer >= 1, got {self.num_envs!r}")
        if not isinstance(self.env_kwargs, dict):
            raise SweepError(f"env_kwargs must be a dict, got {type(self.env_kwargs).__name__}")
        if not self.act_timeout > 0:
            raise SweepError(f"act_timeout must be > 0, got {self.act_timeout!r}")

    def to_dict(self) -> dict[str, Any]:
        return _jsonable({"episodes": self.episodes, "seed_base": self.seed_base, "num_envs": self.num_envs,
                          "env_kwargs": self.env_kwargs, "isolate": self.isolate, "act_timeout": self.act_timeout,
                          "description": self.description})


def run_cell(cell: SweepCell, settings: SweepSettings) -> dict[str, Any]:
    """Evaluate one cell: the single code path of local and Ray sweeps.

    Returns:
        The cell's sweep-file entry (see the module docstring). It never raises for a failing cell
        (``Exception``): the entry has ``status`` ``"error"`` and the message.
    """
    from ..render.gl import renderer_info
    from .harness import evaluate
    from .results import make_results, policy_config, validate

    t0 = time.perf_counter()
    entry: dict[str, Any] = {"agent": cell.agent, "task": cell.task, "seed": cell.seed, "status": "ok",
                             "error": None, "traceback": None, "agent_error": None, "results": None}
    try:
        spec = cell.agent_spec()
        res = evaluate(spec, cell.task, episodes=settings.episodes, seed_base=settings.seed_base,
                       num_envs=settings.num_envs, env_kwargs=dict(settings.env_kwargs) or None,
                       isolate=settings.isolate, act_timeout=settings.act_timeout, progress=False)
        doc = make_results([(res, cell.seed)], agent_name=res.agent, description=settings.description,
                           render=renderer_info(), policy=spec if Path(spec).exists() else None,
                           agent_config=policy_config(spec) or {})  # a VRB policy file's own config
        entry["results"] = _jsonable(validate(doc))
        entry["agent_error"] = res.error
    except Exception as err:  # noqa: BLE001 - a failing cell is recorded, the sweep goes on
        entry.update(status="error", error=_text(err), traceback=traceback.format_exc()[-_MAX_TEXT:])
    entry["wall_clock_s"] = time.perf_counter() - t0
    entry["worker"] = {"host": socket.gethostname(), "pid": os.getpid()}
    return entry


def _ray_cell(cell: SweepCell, settings: SweepSettings, sys_path: list[str]) -> dict[str, Any]:
    """:func:`run_cell` in a Ray worker (with the driver's import paths)."""
    _extend_sys_path(sys_path)
    return run_cell(cell, settings)


def _lost_cell(cell: SweepCell, err: BaseException, max_retries: int) -> dict[str, Any]:
    return {"agent": cell.agent, "task": cell.task, "seed": cell.seed, "status": "error",
            "error": f"the cell failed on Ray (a lost worker is retried up to {max_retries} times): {_text(err)}",
            "traceback": None, "agent_error": None, "results": None, "wall_clock_s": None, "worker": None}


def make_grid(agents: Sequence[str], tasks: Sequence[str], seeds: Sequence[int]) -> list[SweepCell]:
    """The cells of ``agents x tasks x seeds``, checked (strings, registered tasks, no repeats)."""
    from ..registry import get_task

    def _list(name: str, values: Any) -> list:
        if isinstance(values, (str, int)):
            values = [values]
        values = list(values)
        if not values:
            raise SweepError(f"a sweep needs at least one {name}")
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise SweepError(f"{name} values repeat: {', '.join(repeated)} (give each once)")
        return values

    agents, tasks, seeds = _list("agent", agents), _list("task", tasks), _list("seed", seeds)
    for a in agents:
        if not isinstance(a, str) or not a:
            raise SweepError(f"sweep agents must be specs given as strings ('random', 'zero', module:factory or a "
                             f"file), got {a!r}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise SweepError(f"sweep seeds must be integers, got {s!r}")
    resolved = []
    for t in tasks:
        try:
            resolved.append(get_task(t).id)
        except KeyError as err:
            raise SweepError(f"unknown task {t!r}: {err.args[0] if err.args else ''}") from None
    cells = [SweepCell(a, t, int(s)) for a in agents for t in resolved for s in seeds]
    for c in cells:
        try:
            c.agent_spec()
        except (KeyError, IndexError, ValueError) as err:
            raise SweepError(f"agent spec {c.agent!r}: only the placeholders {{seed}} and {{task}} are allowed "
                             f"({type(err).__name__}: {err})") from None
    return cells


# ----------------------------------------------------------------------------- sweep file


def _entry_key(entry: dict[str, Any]) -> tuple[str, str, int]:
    return (entry["agent"], entry["task"], int(entry["seed"]))


def load_sweep(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a sweep file.

    Raises:
        SweepError: Not a sweep file, a repeated cell, or a cell whose results document is invalid
            or belongs to another task or seed.
    """
    from .results import ResultsError, validate

    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SweepError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(doc, dict) or doc.get("sweep_version") != SWEEP_VERSION:
        raise SweepError(f"{path} is not a sweep file (no sweep_version {SWEEP_VERSION!r}); pass another out path")
    if not isinstance(doc.get("settings"), dict) or not isinstance(doc.get("cells"), list):
        raise SweepError(f"{path}: a sweep file needs 'settings' (object) and 'cells' (list)")
    seen = set()
    for i, e in enumerate(doc["cells"]):
        if not isinstance(e, dict) or not {"agent", "task", "seed", "status", "results"} <= set(e):
            raise SweepError(f"{path}: cells/{i} needs agent, task, seed, status and results")
        key = _entry_key(e)
        if key in seen:
            raise SweepError(f"{path}: cells/{i} repeats the cell {key}")
        seen.add(key)
        if e["status"] == "ok":
            try:
                validate(e["results"])
            except ResultsError as err:
                raise SweepError(f"{path}: cells/{i} {key}: {err}") from None
            runs = e["results"]["runs"]
            if len(runs) != 1 or runs[0]["env_id"] != e["task"] or runs[0]["training_seed"] != e["seed"]:
                raise SweepError(f"{path}: cells/{i} {key}: its results are not one run of {e['task']} with "
                                 f"training seed {e['seed']}")
        elif e["status"] == "error":
            if not isinstance(e.get("error"), str):
                raise SweepError(f"{path}: cells/{i} {key}: an error cell needs an 'error' message")
        else:
            raise SweepError(f"{path}: cells/{i} {key}: status must be 'ok' or 'error', got {e['status']!r}")
    return doc


class _SweepFile:
    """The sweep file being written: existing cells (resume), one entry per cell, atomic rewrites."""

    def __init__(self, path: Path, settings: SweepSettings) -> None:
        from .. import __version__

        self.path = path
        self.settings = settings.to_dict()
        self.vrb_version = __version__
        self.cells: dict[tuple[str, str, int], dict[str, Any]] = {}
        if path.exists():
            doc = load_sweep(path)
            old = {k: doc["settings"].get(k) for k in _COMPARABLE}
            new = {k: self.settings[k] for k in _COMPARABLE}
            if old != new:
                raise SweepError(
                    f"{path} holds a sweep with {old}, this one has {new}; their numbers are not comparable: "
                    f"use another out path, or delete {path} to start over"
                )
            self.settings = doc["settings"]
            self.cells = {_entry_key(e): e for e in doc["cells"]}

    def has(self, cell: SweepCell, retry_errors: bool) -> bool:
        entry = self.cells.get(cell.key)
        return entry is not None and not (retry_errors and entry["status"] == "error")

    def document(self) -> dict[str, Any]:
        return {"sweep_version": SWEEP_VERSION, "vrb_version": self.vrb_version, "settings": self.settings,
                "cells": [self.cells[k] for k in sorted(self.cells)]}

    def add(self, entry: dict[str, Any]) -> None:
        from .results import write_json

        self.cells[_entry_key(entry)] = entry
        write_json(self.document(), self.path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold ``.NAME.lock`` beside ``path`` (removed at the end); fail at once if another sweep holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not lock.exists() or os.stat(lock).st_ino != os.fstat(f.fileno()).st_ino:
                raise BlockingIOError  # its holder removed it meanwhile and another sweep may hold a new one
        except BlockingIOError:
            raise SweepError(f"another sweep is writing {path} (it holds {lock}); wait for it to end or use "
                             f"another out path") from None
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)
            fcntl.flock(f, fcntl.LOCK_UN)


def evaluate_sweep(
    agents: Sequence[str],
    tasks: Sequence[str],
    seeds: Sequence[int] = (0,),
    *,
    out: str | os.PathLike,
    address: str | None = None,
    episodes: int | None = None,
    seed_base: int | None = None,
    num_envs: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    isolate: bool = False,
    act_timeout: float = 60.0,
    description: str = "",
    num_cpus: float = 1.0,
    max_retries: int = 3,
    retry_errors: bool = False,
    on_cell: Callable[[dict[str, Any]], None] | None = None,
    ray_init_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate every ``(agent, task, seed)`` cell, on Ray or in this process, into one sweep file.

    Args:
        agents: Agent specs (strings: ``"random"``, ``"zero"``, ``module:factory`` or a file; may hold
            ``{seed}`` and ``{task}``).
        tasks: Task ids.
        seeds: Training seeds the agents stand for (the results' ``training_seed``).
        out: The sweep file (JSON). Written after every finished cell; an existing one is resumed.
        address: ``None`` (no Ray), ``"local"``, ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"``.
        episodes: Episodes per cell (default: the protocol's, 50).
        seed_base: Seed of episode 0 (default: the public base).
        num_envs: Envs side by side in a cell (default: the protocol's; results do not depend on it).
        env_kwargs: Extra env keywords (any makes the results unofficial).
        isolate: Run each agent in its own process (see ``evaluate``).
        act_timeout: Seconds per ``act()`` when isolated.
        description: Agent description in every results document.
        num_cpus: CPUs Ray reserves per cell.
        max_retries: Times Ray re-runs a cell whose worker died.
        retry_errors: Re-run the cells the file holds as errors (replacing their entries).
        on_cell: Called with each new entry as soon as it is written.
        ray_init_kwargs: More ``ray.init`` keywords (``num_cpus`` etc. for ``"local"``).

    Returns:
        The sweep document as written to ``out``.

    Raises:
        SweepError: Bad input, or an ``out`` that holds something else or another protocol.
        RayUnavailableError: Ray missing or the address unreachable.
    """
    settings = SweepSettings(episodes=DEFAULT_EPISODES if episodes is None else episodes,
                             seed_base=PUBLIC_SEED_BASE if seed_base is None else seed_base,
                             num_envs=num_envs, env_kwargs=dict(env_kwargs or {}),
                             isolate=bool(isolate), act_timeout=float(act_timeout), description=str(description))
    cells = make_grid(agents, tasks, seeds)
    options = _remote_options(num_cpus, max_retries) if address is not None else {}
    out = Path(out)
    with _locked(out):
        store = _SweepFile(out, settings)
        todo = [c for c in cells if not store.has(c, retry_errors)]

        def record(entry: dict[str, Any]) -> None:
            store.add(entry)
            if on_cell is not None:
                on_cell(entry)

        if todo and address is None:
            for cell in todo:
                record(run_cell(cell, settings))
        elif todo:
            with ray_session(address, **(ray_init_kwargs or {})) as ray:
                _sweep_on_ray(ray, todo, settings, options, record)
        return store.document()


def _sweep_on_ray(ray: Any, todo: list[SweepCell], settings: SweepSettings, options: dict[str, Any],
                  record: Callable[[dict[str, Any]], None]) -> None:
    remote = ray.remote(_ray_cell).options(**options)
    sys_path = _driver_sys_path()
    pending = {remote.remote(cell, settings, sys_path): cell for cell in todo}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                cell = pending.pop(ref)
                try:
                    entry = ray.get(ref)
                except ray.exceptions.RayError as err:  # retries used up, or not retryable
                    entry = _lost_cell(cell, err, options["max_retries"])
                record(entry)
    except BaseException:  # interrupted: stop the rest; finished cells are in the file
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort
                pass
        raise


def agent_results(sweep: dict[str, Any] | str | os.PathLike, agent: str, name: str | None = None,
                  description: str | None = None, budget: dict[str, Any] | None = None,
                  code_url: str | None = None) -> dict[str, Any]:
    """One results document with every ok cell of ``agent`` (all its tasks and seeds), e.g. for ``vrb submit``.

    Args:
        sweep: A sweep document or the path of a sweep file.
        agent: The agent spec as given to the sweep (placeholders included).
        name: Agent name in the document (default: the first cell's).
        description: Agent description (default: the sweep's).
        budget: The training budget (``env_steps``, ``rendered_frames``, ``wall_clock_s``, ``num_envs``,
            ``hardware``), replacing the sweep's nulls; ``vrb submit`` requires it for all but the floors.
        code_url: Where the agent's code is (URL and commit).

    Raises:
        SweepError: The agent has no ok cell in the sweep.
        ResultsError: The merged document is invalid (e.g. a negative budget).
    """
    from .results import aggregates, validate

    doc = sweep if isinstance(sweep, dict) else load_sweep(sweep)
    entries = [e for e in doc["cells"] if e["agent"] == agent and e["status"] == "ok"]
    if not entries:
        raise SweepError(f"the sweep has no successful cell of agent {agent!r}")
    merged = json.loads(json.dumps(entries[0]["results"]))
    merged["runs"] = [run for e in entries for run in e["results"]["runs"]]
    first = entries[0]
    if "{" in agent:  # a template stands for every cell's policy: it replaces the first cell's file name
        spec = (agent.format(seed=first["seed"], task=first["task"].rsplit("/", 1)[-1])
                if {"seed", "task"} <= first.keys() else None)
        if merged["agent"]["name"] == spec:  # (an agent's own name is kept)
            merged["agent"]["name"] = agent
        if merged["agent"].get("policy") == spec:
            merged["agent"]["policy"] = agent
    if name is not None:
        merged["agent"]["name"] = name
    if description is not None:
        merged["agent"]["description"] = description
    if budget:
        merged["budget"].update(budget)
    if code_url:
        merged["agent"]["code_url"] = code_url
    merged["aggregates"] = aggregates(merged)
    return validate(merged)


# ----------------------------------------------------------------------------- rollouts


def _checked_actions(actions: Any, n: int, A: int, spec: str) -> np.ndarray:
    actions = np.asarray(actions)
    if actions.shape != (n, A) or not np.issubdtype(actions.dtype, np.floating):
        raise RolloutError(f"agent {spec!r} returned actions of shape {actions.shape} and dtype {actions.dtype}, "
                           f"expected ({n}, {A}) floats")
    if not np.isfinite(actions).all():
        raise RolloutError(f"agent {spec!r} returned NaN or inf actions")
    if (np.abs(actions) > 1 + 1e-6).any():
        raise RolloutError(f"agent {spec!r} returned actions outside [-1, 1]")
    return actions.astype(np.float32)


def collect_chunk(agent: str, task: str, first: int, count: int, *, seed_base: int = 0, num_envs: int | None = None,
                  env_kwargs: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Run episodes ``first .. first+count-1`` (episode k seeded ``seed_base + k``) and record every step.

    The one code path of local and Ray collections (one Ray task per chunk). Each env runs one
    episode at a time (``autoreset_mode=DISABLED``) and is reset with the next episode's seed when
    its episode ends; envs left without an episode keep stepping with seeds past the chunk and
    their steps are not recorded.

    Returns:
        Arrays in episode order, then step order: ``obs.<key>`` (the observation the action was
        chosen on; pixels stay uint8), ``action`` (float32), ``reward``, ``terminated``,
        ``truncated``, ``done``, ``episode`` (episode index), ``step`` (step in the episode), and per
        episode ``seeds`` and ``lengths``.

    Raises:
        RolloutError: The agent returned bad actions or raised.
    """
    from ..envs.vector_env import VRBVectorEnv
    from .protocol import AgentContext, load_agent

    n = max(1, min(int(num_envs or count), count))
    env = VRBVectorEnv(task, num_envs=n, autoreset_mode=AutoresetMode.DISABLED, **dict(env_kwargs or {}))
    try:
        policy = load_agent(agent, AgentContext.of_env(env))
        A = env.single_action_space.shape[0]
        keys = list(env.single_observation_space.spaces)
        episode_of = np.arange(n)  # chunk-local episode run by each env; -1 = idle
        next_ep = n
        records: dict[int, list[tuple]] = {k: [] for k in range(count)}
        obs, _ = env.reset(seed=[seed_base + first + i for i in range(n)])
        if hasattr(policy, "reset"):
            policy.reset(np.ones(n, bool))
        while (episode_of >= 0).any():
            try:
                actions = _checked_actions(policy.act(obs), n, A, agent)
            except RolloutError:
                raise
            except Exception as err:
                raise RolloutError(f"agent {agent!r} raised while acting: {_text(err)}") from err
            new_obs, r, term, trunc, _ = env.step(actions)
            for i in np.flatnonzero(episode_of >= 0):
                records[int(episode_of[i])].append(({k: obs[k][i].copy() for k in keys}, actions[i].copy(),
                                                    r[i], bool(term[i]), bool(trunc[i])))
            obs = new_obs
            done = term | trunc
            if not done.any():
                continue
            new_seeds = []
            for i in np.flatnonzero(done):
                if next_ep < count:
                    episode_of[i], next_ep = next_ep, next_ep + 1
                    new_seeds.append(seed_base + first + int(episode_of[i]))
                else:
                    episode_of[i] = -1
                    new_seeds.append(seed_base + first + count + int(i))
            if not (episode_of >= 0).any():
                break
            obs, _ = env.reset(seed=new_seeds, options={"reset_mask": done})
            if hasattr(policy, "reset"):
                policy.reset(done & (episode_of >= 0))
    finally:
        env.close()
    steps = [s for k in range(count) for s in records[k]]
    data = {f"obs.{k}": np.stack([s[0][k] for s in steps]) for k in keys}
    data["action"] = np.stack([s[1] for s in steps])
    data["reward"] = np.asarray([s[2] for s in steps])
    data["terminated"] = np.asarray([s[3] for s in steps], bool)
    data["truncated"] = np.asarray([s[4] for s in steps], bool)
    data["done"] = data["terminated"] | data["truncated"]
    data["episode"] = np.concatenate([np.full(len(records[k]), first + k, np.int64) for k in range(count)])
    data["step"] = np.concatenate([np.arange(len(records[k]), dtype=np.int64) for k in range(count)])
    data["seeds"] = seed_base + first + np.arange(count, dtype=np.int64)
    data["lengths"] = np.asarray([len(records[k]) for k in range(count)], np.int64)
    return data


def _ray_chunk(agent: str, task: str, first: int, count: int, kwargs: dict[str, Any],
               sys_path: list[str]) -> dict[str, np.ndarray]:
    _extend_sys_path(sys_path)
    return collect_chunk(agent, task, first, count, **kwargs)


def collect_rollouts(
    agent: str,
    task: str,
    episodes: int,
    *,
    out: str | os.PathLike | None = None,
    address: str | None = None,
    seed_base: int = 0,
    episodes_per_chunk: int = 10,
    num_envs: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    num_cpus: float = 1.0,
    max_retries: int = 3,
    allow_eval_seeds: bool = False,
    ray_init_kwargs: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Collect every step of ``episodes`` episodes of ``agent`` on ``task``, on Ray or in this process.

    Episode k is seeded ``seed_base + k`` and runs in the task's own env settings (plus
    ``env_kwargs``; unlike evaluation, domain randomization stays as the task defines it). The
    episodes are split into chunks of ``episodes_per_chunk``, one per Ray task, each with
    ``num_envs`` envs side by side and a freshly loaded agent; the result does not depend on where
    the chunks run. It does depend on the chunking for agents with their own random state (e.g.
    ``random``), and pixel values may differ by one level with another ``num_envs`` (the envs of a
    chunk are rendered as tiles of one image); physics, rewards and flags do not.

    Args:
        agent: Agent spec (string, see :func:`~visual_robo_bench.evaluation.protocol.load_agent`).
        task: Task id.
        episodes: Number of episodes.
        out: Write the arrays here as ``.npz`` (compressed, atomically).
        address: ``None`` (no Ray) or a Ray address as for :func:`evaluate_sweep`.
        seed_base: Seed of episode 0; seeds from the public evaluation base (1,000,000) on are
            refused unless ``allow_eval_seeds`` (training data must not see evaluation episodes).
        episodes_per_chunk: Episodes per chunk.
        num_envs: Envs side by side per chunk (default: ``episodes_per_chunk``).
        env_kwargs: Env keywords (``image_size``, ``max_episode_steps``, ...).
        num_cpus: CPUs Ray reserves per chunk.
        max_retries: Times Ray re-runs a chunk whose worker died.
        allow_eval_seeds: Allow seeds of the evaluation range.
        ray_init_kwargs: More ``ray.init`` keywords.

    Returns:
        The arrays of :func:`collect_chunk`, concatenated over the chunks, plus ``meta`` (a 0-d
        string array holding JSON: agent, task, seed_base, episodes, env_kwargs, task hash, versions).

    Raises:
        ValueError: Bad arguments.
        AgentLoadError: The agent spec cannot be loaded.
        RolloutError: The agent failed, or a chunk was lost on Ray more often than ``max_retries``.
        RayUnavailableError: As for sweeps.
    """
    from .. import __version__
    from .results import task_hash

    if not isinstance(agent, str):
        raise ValueError("collect_rollouts needs the agent as a spec string ('random', module:factory, a file), "
                         "so that every chunk loads a fresh copy of it")
    for name, value in (("episodes", episodes), ("episodes_per_chunk", episodes_per_chunk)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if num_envs is not None and int(num_envs) < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if not allow_eval_seeds and int(seed_base) + int(episodes) > PUBLIC_SEED_BASE:
        raise ValueError(f"rollout seeds {seed_base}..{int(seed_base) + int(episodes) - 1} reach the evaluation "
                         f"seeds (from {PUBLIC_SEED_BASE}); use a smaller seed_base, or allow_eval_seeds=True")
    task_id = _registered(task)
    kwargs = {"seed_base": int(seed_base), "num_envs": None if num_envs is None else int(num_envs),
              "env_kwargs": dict(env_kwargs or {})}
    chunks = [(first, min(int(episodes_per_chunk), int(episodes) - first))
              for first in range(0, int(episodes), int(episodes_per_chunk))]
    if address is None:
        parts = [collect_chunk(agent, task_id, first, count, **kwargs) for first, count in chunks]
    else:
        options = _remote_options(num_cpus, max_retries)
        with ray_session(address, **(ray_init_kwargs or {})) as ray:
            remote = ray.remote(_ray_chunk).options(**options)
            sys_path = _driver_sys_path()
            refs = [remote.remote(agent, task_id, first, count, kwargs, sys_path) for first, count in chunks]
            try:
                parts = ray.get(refs)
            except BaseException as err:  # one chunk failed or the driver was interrupted: stop the others
                for ref in refs:
                    try:
                        ray.cancel(ref, force=True)
                    except Exception:  # noqa: BLE001 - best effort
                        pass
                cause = getattr(err, "cause", None)
                if isinstance(err, ray.exceptions.RayTaskError) and isinstance(cause, Exception):
                    raise cause from None  # what the chunk raised, as a local collection raises it
                if isinstance(err, ray.exceptions.RayError):
                    raise RolloutError(f"collecting rollouts of {agent!r} on {task_id} failed: {err}") from None
                raise
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    meta = {"rollout_version": ROLLOUT_VERSION, "vrb_version": __version__, "agent": agent, "task": task_id,
            "task_hash": task_hash(task_id), "episodes": int(episodes), "seed_base": int(seed_base),
            "env_kwargs": _jsonable(kwargs["env_kwargs"]), "steps": int(len(data["action"]))}
    data["meta"] = np.array(json.dumps(meta, sort_keys=True))
    if out is not None:
        save_rollouts(data, out)
    return data


def _registered(task: str) -> str:
    from ..registry import get_task

    try:
        return get_task(task).id
    except KeyError as err:
        raise ValueError(f"unknown task {task!r}: {err.args[0] if err.args else ''}") from None


def save_rollouts(data: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Write rollout arrays to ``path`` (``.npz``, compressed) through a temporary file and a rename."""
    path = Path(path)
    with atomic_open(path) as f:
        np.savez_compressed(f, **data)
    return path


def load_rollouts(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a rollout file (``json.loads(str(data["meta"]))`` gives its metadata)."""
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    if "meta" not in data or json.loads(str(data["meta"])).get("rollout_version") != ROLLOUT_VERSION:
        raise ValueError(f"{path} is not a VRB rollout file (rollout_version {ROLLOUT_VERSION!r})")
    return data


def summarize_cell(entry: dict[str, Any]) -> dict[str, float]:
    """Mean return, success and length of a sweep entry's episodes (NaN for an error cell)."""
    if entry["status"] != "ok":
        return {"return": math.nan, "success_once": math.nan, "success_at_end": math.nan, "length": math.nan}
    eps = entry["results"]["runs"][0]["episodes"]
    return {"return": float(np.mean([e["return"] for e in eps])),
            "success_once": float(np.mean([e["success_once"] for e in eps])),
            "success_at_end": float(np.mean([e["success_at_end"] for e in eps])),
            "length": float(np.mean([e["length"] for e in eps]))}
