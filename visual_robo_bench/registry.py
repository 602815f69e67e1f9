"""Task registry: one decorator registers a versioned id for ``gym.make`` and ``gym.make_vec``.

``import visual_robo_bench`` registers every built-in task. Third-party packages
register their own tasks the same way::

    from visual_robo_bench import register_task, Task, TaskConfig

    @register_task("MyLab/Reach-v0")
    class Reach(Task):
        ...

after which ``gym.make("my_package:MyLab/Reach-v0")`` works.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import gymnasium as gym

if TYPE_CHECKING:  # pragma: no cover
    from .core.config import TaskConfig
    from .core.task import Task

ENTRY_POINT = "visual_robo_bench.envs.single_env:VRBEnv"
VECTOR_ENTRY_POINT = "visual_robo_bench.envs.vector_env:VRBVectorEnv"

T = TypeVar("T")


@dataclass(frozen=True)
class TaskEntry:
    """A registered task: its id, class, frozen default config and, for a deprecated version, its successor."""

    id: str
    task_cls: type
    config: "TaskConfig"
    deprecated_by: str | None = None

    @property
    def summary(self) -> str:
        """First line of the task's docstring."""
        return (self.task_cls.__doc__ or "").strip().splitlines()[0] if self.task_cls.__doc__ else ""


_TASKS: dict[str, TaskEntry] = {}


def config_kwargs(config: "TaskConfig") -> dict[str, Any]:
    """A task config's values as ``gym.make`` keywords: what ``gym.spec(id).kwargs`` shows.

    ``config.to_dict()`` (plain data: the render profile as a dict) but the camera definitions
    (``policy_cameras`` is the keyword ``cameras``) and ``max_episode_steps`` (registered on its own).
    """
    out = config.to_dict()
    del out["cameras"], out["max_episode_steps"]
    out["cameras"] = out.pop("policy_cameras")
    return out


def register_task(task_id: str, config: "TaskConfig | None" = None, *,
                  deprecated_by: str | None = None, reason: tuple[str, str] | None = None) -> Callable[[T], T]:
    """Class decorator registering ``task_id`` for both entry points.

    Args:
        task_id: Versioned id, ``Namespace/Name-vN``.
        config: The frozen config of this id (default: the task's ``config_cls()``).
        deprecated_by: For a version kept only so old results stay reproducible: the registered id that
            replaces it (leaderboards mark the old one; ``gym.make`` warns that it is out of date).
        reason: With ``deprecated_by``: why, as ``(summary, detail)``. The class's docstring becomes
            ``"Deprecated: <summary>; use <deprecated_by>."`` (the line ``vrb list`` shows), the detail,
            then the docstring it inherits (the current version's).

    Raises:
        ValueError: When the id is not versioned or already registered, ``deprecated_by`` is not registered,
            or exactly one of ``deprecated_by`` and ``reason`` is given.
    """
    if "-v" not in task_id.rsplit("/", 1)[-1]:
        raise ValueError(f"task id {task_id!r} must be versioned, e.g. 'VRB/Walker-v1'")
    if deprecated_by is not None and deprecated_by not in _TASKS:
        raise ValueError(f"{task_id!r} is deprecated by {deprecated_by!r}, which is not registered: "
                         "register the replacement first")
    if (deprecated_by is None) != (reason is None):
        raise ValueError(f"{task_id!r}: pass deprecated_by and reason=(summary, detail) together "
                         "(a deprecated version says what replaces it and why)")

    def decorator(task_cls: T) -> T:
        if task_id in _TASKS:
            raise ValueError(f"task id {task_id!r} is already registered (by {_TASKS[task_id].task_cls.__name__})")
        if reason is not None:
            summary, detail = reason
            current = inspect.getdoc(task_cls) or ""  # the inherited docstring of the replacement
            task_cls.__doc__ = f"Deprecated: {summary}; use {deprecated_by}.\n\n{detail}.\n\n{current}\n"
        cfg = config if config is not None else task_cls.config_cls()  # type: ignore[attr-defined]
        _TASKS[task_id] = TaskEntry(task_id, task_cls, cfg, deprecated_by)  # type: ignore[arg-type]
        gym.register(
            id=task_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            max_episode_steps=cfg.max_episode_steps,
            kwargs={"task_id": task_id, **config_kwargs(cfg)},  # the task's definition, visible to registry tools
        )
        return task_cls

    return decorator


def get_task(task_id: str) -> TaskEntry:
    """The entry of ``task_id``; an unknown id raises a ``KeyError`` naming the closest ids.

    ``"module:Namespace/Name-vN"`` first imports ``module`` (which registers its tasks), as ``gym.make`` does,
    so that a third-party package's tasks work with every ``vrb`` command.
    """
    if ":" in task_id:
        module, task_id = task_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise KeyError(f"cannot import {module!r} to find task {task_id!r}: {err}") from None
    try:
        return _TASKS[task_id]
    except KeyError:
        close = difflib.get_close_matches(task_id, list(_TASKS), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise KeyError(
            f"unknown task id {task_id!r}.{hint} Registered: {', '.join(sorted(_TASKS))} (see `vrb list`)."
        ) from None


def list_tasks() -> list[str]:
    """Registered task ids, sorted."""
    return sorted(_TASKS)
