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
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import gymnasium as gym

if TYPE_CHECKING:  # pragma: no cover
    from .core.config import TaskConfig

ENTRY_POINT = "visual_robo_bench.envs.single_env:VRBEnv"
VECTOR_ENTRY_POINT = "visual_robo_bench.envs.vector_env:VRBVectorEnv"

T = TypeVar("T")

#: A task id: ``Namespace/Name-vN`` (letters, digits, ``_``, ``.``, ``-``; each part starts with a letter).
TASK_ID_RE = re.compile(r"^([A-Za-z][\w.-]*/[A-Za-z][\w.-]*)-v(\d+)$", re.ASCII)


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
            replaces it (leaderboards mark the old one; making the env warns that it is out of date:
            Gymnasium's version check for a higher version of the same name, VRB's own warning for a renamed
            task, see :func:`rename_notice`). It must
            not be deprecated itself (point at the current version), and when it has the same
            ``Namespace/Name`` its version must be higher (``-v0`` is replaced by ``-v1``, never the reverse);
            another name is allowed (a renamed task).
        reason: With ``deprecated_by``: why, as ``(summary, detail)``. The class's docstring becomes
            ``"Deprecated: <summary>; use <deprecated_by>."`` (the line ``vrb list`` shows), the detail,
            then the docstring it inherits (the current version's).

    Raises:
        ValueError: When the id is not ``Namespace/Name-vN`` or is already registered (by VRB or by another
            Gymnasium package), ``deprecated_by`` is not a registered current id of a higher version (see
            above), exactly one of ``deprecated_by`` and ``reason`` is given, ``reason`` is not a pair, a
            config field has the wrong type, or the config defines no policy camera.
        TypeError: When the decorated object is not a :class:`~visual_robo_bench.Task` subclass, or its config
            class is not a frozen dataclass subclass of ``TaskConfig`` (see
            :func:`~visual_robo_bench.core.config.check_config_class`), or ``config`` is not an instance of it.
    """
    if not isinstance(task_id, str):
        raise TypeError(f"task id must be a str such as 'MyLab/Reach-v0', got {task_id!r}")
    if ":" in task_id:
        module, _, rest = task_id.rpartition(":")
        raise ValueError(f"task id {task_id!r} must not contain ':': 'module:id' is how gym.make imports a module "
                         f"first. Register {rest!r} in {module!r}; users then call gym.make({task_id!r})")
    if not TASK_ID_RE.match(task_id):
        raise ValueError(f"task id {task_id!r} must be versioned and namespaced, 'Namespace/Name-vN' with N a "
                         "number, e.g. 'VRB/Walker-v1' (letters, digits, '_', '.' and '-'; each part starts with "
                         "a letter)")
    if deprecated_by is not None:
        _check_replacement(task_id, deprecated_by)
    if (deprecated_by is None) != (reason is None):
        raise ValueError(f"{task_id!r}: pass deprecated_by and reason=(summary, detail) together "
                         "(a deprecated version says what replaces it and why)")
    if reason is not None and not (isinstance(reason, (tuple, list)) and len(reason) == 2
                                   and all(isinstance(r, str) for r in reason)):
        raise ValueError(f"{task_id!r}: reason must be a pair of strings (summary, detail), e.g. "
                         f"('the goal marker stays at the origin', 'In v0 ...'); got {reason!r}")

    def decorator(task_cls: T) -> T:
        from .core.config import TaskConfig, check_config, check_config_class
        from .core.task import Task

        if task_id in _TASKS:
            raise ValueError(f"task id {task_id!r} is already registered (by {_TASKS[task_id].task_cls.__name__})")
        if task_id in gym.registry:
            raise ValueError(f"task id {task_id!r} is already registered with Gymnasium by another package "
                             f"(entry point {gym.registry[task_id].entry_point!r}); registering it again would "
                             "replace that environment: choose another namespace or name")
        if not (isinstance(task_cls, type) and issubclass(task_cls, Task)):
            what = f"class {task_cls.__name__}" if isinstance(task_cls, type) else repr(task_cls)
            raise TypeError(f"@register_task({task_id!r}) decorates a subclass of visual_robo_bench.Task; "
                            f"{what} is not one")
        owner = f"{task_cls.__name__}.config_cls"
        check_config_class(task_cls.config_cls, owner)
        if config is None:
            cfg = task_cls.config_cls()
        elif not isinstance(config, task_cls.config_cls):
            raise TypeError(f"{task_id!r}: config must be a {task_cls.config_cls.__name__} ({owner}), "
                            f"got {type(config).__name__}")
        else:
            check_config_class(type(config), f"the config of {task_id!r}")
            cfg = config
        check_config(cfg)  # also where the config class's own __init__ or __post_init__ got around the checks
        if not cfg.policy_cameras:
            if type(cfg) is TaskConfig:
                hint = (f"{owner} is the base TaskConfig: set config_cls = YourConfig, a @dataclass(frozen=True) "
                        "subclass of TaskConfig with cameras and policy_cameras")
            else:
                hint = (f"give {type(cfg).__name__} policy_cameras=('name', ...), naming cameras of its `cameras`, "
                        "primary first")
            raise ValueError(f"{task_id!r} defines no policy camera (policy_cameras is empty): {hint}")
        if reason is not None:
            summary, detail = reason
            current = inspect.getdoc(task_cls) or ""  # the inherited docstring of the replacement
            task_cls.__doc__ = f"Deprecated: {summary}; use {deprecated_by}.\n\n{detail}.\n\n{current}\n"
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


def _check_replacement(task_id: str, deprecated_by: Any) -> None:
    """Refuse a ``deprecated_by`` that would not send users to the current version of ``task_id``.

    Raises:
        ValueError: ``deprecated_by`` is ``task_id`` itself, is not registered, is deprecated itself, or is an
            older or equal version of the same ``Namespace/Name``; the message says what to pass instead.
    """
    if not isinstance(deprecated_by, str):
        raise ValueError(f"{task_id!r}: deprecated_by must be the registered id that replaces it, e.g. "
                         f"'MyLab/Reach-v1'; got {deprecated_by!r}")
    match, target = TASK_ID_RE.match(task_id), TASK_ID_RE.match(deprecated_by)
    name, version = match.group(1), int(match.group(2))  # task_id is well formed: checked first
    same_name = [int(m.group(2)) for t in (*_TASKS, task_id) if (m := TASK_ID_RE.match(t)) and m.group(1) == name]
    new_version = f"{name}-v{max(same_name) + 1}"
    if deprecated_by == task_id:
        raise ValueError(f"{task_id!r} cannot be deprecated by itself: pass deprecated_by= the registered id "
                         f"that replaces it, e.g. {new_version!r} (register that first)")
    if deprecated_by not in _TASKS:
        raise ValueError(f"{task_id!r} is deprecated by {deprecated_by!r}, which is not registered: "
                         "register the replacement first")
    if target is not None and target.group(1) == name and int(target.group(2)) <= version:
        raise ValueError(f"{task_id!r} cannot be deprecated by {deprecated_by!r}, which is not a newer version: "
                         f"a version is replaced by a higher one. If {deprecated_by!r} is the behaviour to keep, "
                         f"register it again as {new_version!r} and pass deprecated_by={new_version!r}; if "
                         f"{task_id!r} is the current version, register it without deprecated_by, before "
                         f"{deprecated_by!r}, which then passes deprecated_by={task_id!r}")
    current, seen = deprecated_by, {task_id}
    while _TASKS[current].deprecated_by is not None and current not in seen:  # the end of the chain
        seen.add(current)
        current = _TASKS[current].deprecated_by
    if current != deprecated_by:
        raise ValueError(f"{task_id!r} cannot be deprecated by {deprecated_by!r}, which is deprecated itself "
                         f"(by {_TASKS[deprecated_by].deprecated_by!r}): pass deprecated_by={current!r}, the "
                         "current version, so that users are sent to it directly")


def rename_notice(entry: TaskEntry) -> str | None:
    """The deprecation warning for a deprecated id replaced by another *name*, or ``None``.

    Gymnasium's ``gym.make`` warns by itself when a higher version of the same ``Namespace/Name`` is registered;
    it cannot know a renamed task's successor, so the env says it (``VRBVectorEnv`` warns with this text).
    """
    if entry.deprecated_by is None:
        return None
    old, new = TASK_ID_RE.match(entry.id), TASK_ID_RE.match(entry.deprecated_by)
    if old and new and old.group(1) == new.group(1):
        return None
    return (f"{entry.id} is deprecated and kept only to reproduce old results: use {entry.deprecated_by} "
            f"(`vrb info {entry.id}` says why)")


def get_task(task_id: str) -> TaskEntry:
    """The entry of ``task_id``; an unknown id raises a ``KeyError`` naming the closest ids.

    ``"module:Namespace/Name-vN"`` first imports ``module`` (which registers its tasks), as ``gym.make`` does,
    so that a third-party package's tasks work with every ``vrb`` command.
    """
    module = None
    if ":" in task_id:
        module, task_id = task_id.split(":", 1)
        import_task_module(module, f"to find task {task_id!r}")
    try:
        return _TASKS[task_id]
    except KeyError:
        pass
    namespace = task_id.split("/", 1)[0] if "/" in task_id else None
    same_namespace = [t for t in _TASKS if namespace is not None and t.startswith(namespace + "/")]
    # a third-party namespace: suggest only its own ids (a VRB id is no answer to 'MyLab/Reach-v1')
    candidates = same_namespace if namespace not in (None, "VRB") else list(_TASKS)
    close = difflib.get_close_matches(task_id, candidates, n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    if module is not None:
        hint += f" (module {module!r} was imported but registers no task {task_id!r}.)"
    elif namespace not in (None, "VRB"):
        hint += (f" Tasks of namespace {namespace!r} are registered by their package: import its package first: "
                 f"use 'their_module:{task_id}' (as gym.make does), e.g. `vrb info their_module:{task_id}`; "
                 "`vrb list` and `vrb doctor` take --module their_module.")
    raise KeyError(
        f"unknown task id {task_id!r}.{hint} Registered: {', '.join(sorted(_TASKS))} (see `vrb list`)."
    ) from None


def import_task_module(module: str, why: str = "") -> None:
    """Import ``module`` (which registers its tasks), as ``gym.make("module:Namespace/Name-vN")`` does.

    Raises:
        KeyError: The module cannot be imported (the message says which and why).
    """
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise KeyError(f"cannot import {module!r}{' ' + why if why else ''}: {err}") from None


def list_tasks() -> list[str]:
    """Registered task ids, sorted."""
    return sorted(_TASKS)
