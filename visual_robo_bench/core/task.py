"""The task layer: a small, fixed set of batched hooks.

A task never knows whether anything is rendered. It builds its scene, draws
episode initial conditions for an index set, maps actions to controls, computes
vector observations, named reward terms and success/failure, all as arrays with
a leading batch axis over the env ids it is given. Physics is reached through
:class:`~visual_robo_bench.core.sim.BatchSim` fields (``sim.qpos[ids]`` ...),
the task's own per-env state through :class:`TaskState`.

A step calls ``apply_action``, ``reward_terms`` and ``evaluate`` for every env,
including those that ended at the previous step and restart now: their step is
discarded by the reset that follows (``initialize_episode`` rewrites their state
rows and task state), so ``apply_action`` writes nothing but state rows (``ctrl``,
``qvel``, ...) and the other two are pure. ``after_step`` runs only for the envs
whose step counts, so it may also keep bookkeeping across episodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import mujoco
import numpy as np

from .config import TaskConfig
from .sim import BatchSim


class TaskStateKeyError(KeyError):
    """A task-state field that ``state_spec()`` did not declare (a ``KeyError`` with a readable message)."""

    def __init__(self, key: str, fields: list[str]) -> None:
        super().__init__(key)
        self.key, self.fields = key, fields

    def __str__(self) -> str:
        hint = ""
        if self.key in ("prev_action", "prev_action2"):
            hint = (" (the base Task keeps the action history there: a task's state_spec() must extend "
                    "super().state_spec(), e.g. return {**super().state_spec(), 'goal': ((2,), np.float64)})")
        return f"no task-state field {self.key!r}; state_spec() declares {self.fields}{hint}"


class TaskState:
    """Per-env task state: named arrays with a leading ``num_envs`` axis.

    Everything here is part of the cloneable env state (goals, schedules,
    previous actions, spawn positions, timers, ...).
    """

    def __init__(self, num_envs: int, spec: dict[str, tuple[tuple[int, ...], Any]]) -> None:
        self.num_envs = num_envs
        self._arrays = {k: np.zeros((num_envs, *shape), dtype=dtype) for k, (shape, dtype) in spec.items()}

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self._arrays[key]
        except KeyError:
            raise TaskStateKeyError(key, sorted(self._arrays)) from None

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        self[key][...] = value  # an undeclared key raises TaskStateKeyError, as reading it does

    def keys(self):
        return self._arrays.keys()

    def get(self, env_ids: np.ndarray) -> dict[str, np.ndarray]:
        """Copies of the rows of ``env_ids``."""
        return {k: v[env_ids].copy() for k, v in self._arrays.items()}

    def set(self, values: dict[str, np.ndarray], env_ids: np.ndarray) -> None:
        """Write rows (row i into ``env_ids[i]``)."""
        missing = set(self._arrays) - set(values)
        if missing:
            raise ValueError(f"task state is missing fields {sorted(missing)}")
        for k, v in values.items():
            if k not in self._arrays:
                raise ValueError(f"unknown task state field {k!r}; fields: {sorted(self._arrays)}")
            self._arrays[k][env_ids] = v


@dataclass
class Evaluation:
    """What :meth:`Task.evaluate` returns for an index set.

    Attributes:
        success: ``(k,)`` bool, the task's success predicate.
        failure: ``(k,)`` bool, the task's termination condition.
        metrics: Named ``(k,)`` float arrays (progress metrics).
    """

    success: np.ndarray
    failure: np.ndarray
    metrics: dict[str, np.ndarray] = field(default_factory=dict)


class Task:
    """Base class of every VRB task.

    Subclasses set ``config_cls`` and override the hooks. The docstring of a
    task class follows the template in CONTRIBUTING.md and is what ``vrb info``
    prints.

    Args:
        config: The frozen task config.
    """

    config_cls: ClassVar[type[TaskConfig]] = TaskConfig
    #: Names of the progress metrics in ``info["metrics"]``.
    metric_names: ClassVar[tuple[str, ...]] = ()
    #: Task-state fields kept across a reset: bookkeeping that spans episodes (e.g. a curriculum's record of the
    #: last episode, which the next ``initialize_episode`` reads). Every other field is zeroed before
    #: ``initialize_episode``. Being task state, they are cloned and restored with it (``get_state``/``set_state``).
    carried_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: TaskConfig) -> None:
        if not isinstance(config, self.config_cls):
            raise TypeError(f"{type(self).__name__} needs a {self.config_cls.__name__}, got {type(config).__name__}")
        self.cfg = config
        self.model: mujoco.MjModel | None = None
        #: Episode length in force (the env's ``max_episode_steps``, default the config's).
        self.max_episode_steps: int = config.max_episode_steps

    # ------------------------------------------------------------------ hooks
    def build_scene(self) -> mujoco.MjSpec:
        """Compose robot, objects, floor, lights and cameras into an ``MjSpec``."""
        raise NotImplementedError

    def setup(self, model: mujoco.MjModel) -> None:
        """Cache ids and constants of the compiled model (called once)."""
        self.model = model
        lo, hi = model.actuator_ctrlrange.T
        self._ctrl_mid, self._ctrl_half = (lo + hi) / 2, (hi - lo) / 2
        if type(self).apply_action is Task.apply_action:
            unlimited = [model.actuator(i).name or f"#{i}" for i in range(model.nu)
                         if not model.actuator_ctrllimited[i] or hi[i] <= lo[i]]
            if unlimited:
                raise ValueError(
                    f"{type(self).__name__}: actuators {unlimited} have no control range, and Task.apply_action maps "
                    "actions in [-1, 1] onto each actuator's ctrlrange (it would write 0): give them one "
                    "(ctrlrange='-1 1' in the MJCF, or spec.actuators[i].ctrlrange) or override apply_action")

    def _require_setup(self) -> mujoco.MjModel:
        """The model :meth:`setup` cached; a task whose ``setup`` skipped the base one is told how to fix it."""
        if self.model is None or not hasattr(self, "_ctrl_mid"):
            raise RuntimeError(f"{type(self).__name__}.setup(model) did not run Task.setup: call "
                               "super().setup(model) first in your setup() (it caches the model and the actuator "
                               "ranges that action_dim and apply_action use)")
        return self.model

    @property
    def action_dim(self) -> int:
        """Length of the action vector (default: one per actuator)."""
        return self._require_setup().nu

    def state_spec(self) -> dict[str, tuple[tuple[int, ...], Any]]:
        """Per-env task-state fields: name -> (shape, dtype).

        The default holds the previous two actions (``prev_action`` = a_{t-1},
        ``prev_action2`` = a_{t-2}).
        """
        return {"prev_action": ((self.action_dim,), np.float32), "prev_action2": ((self.action_dim,), np.float32)}

    def initialize_episode(self, sim: BatchSim, state: TaskState, env_ids: np.ndarray,
                           rngs: list[np.random.Generator]) -> None:
        """Draw every random quantity of the new episodes of ``env_ids``.

        ``sim`` has already been reset to the model defaults for these ids; write
        ``sim.qpos``/``sim.qvel``/... and the task state. ``rngs[i]`` is env
        ``env_ids[i]``'s generator. No randomness may be drawn anywhere else.

        Derived fields (``sim.xpos``, ``sim.sensordata``, ...) describe the state as it was before
        this hook's own writes: after writing ``qpos``/``qvel``, call ``sim.forward(env_ids)``
        before reading a derived field (VRB runs the forward pass for its own writes, lazily).
        """
        raise NotImplementedError

    def apply_action(self, sim: BatchSim, state: TaskState, action: np.ndarray, env_ids: np.ndarray) -> None:
        """Write controls for ``action`` (``(k, A)`` in [-1, 1]).

        The default maps [-1, 1] onto each actuator's ``ctrlrange``.
        """
        sim.ctrl[env_ids] = self._ctrl_mid + action * self._ctrl_half

    def observe(self, sim: BatchSim, state: TaskState, env_ids: np.ndarray) -> dict[str, np.ndarray]:
        """Vector observations ``proprio``, ``privileged`` (and ``height_scan``).

        A pure function of the current state: no physics step, no randomness.
        """
        raise NotImplementedError

    def reward_terms(self, sim: BatchSim, state: TaskState, action: np.ndarray,
                     env_ids: np.ndarray) -> dict[str, np.ndarray]:
        """Weighted reward terms; the reward is exactly their sum."""
        raise NotImplementedError

    def evaluate(self, sim: BatchSim, state: TaskState, env_ids: np.ndarray) -> Evaluation:
        """Success, failure (termination) and progress metrics."""
        raise NotImplementedError

    def on_state_set(self, sim: BatchSim, state: TaskState, env_ids: np.ndarray) -> None:
        """Called after the env state of ``env_ids`` was written (reset, ``set_state``, clones).

        Tasks that keep per-env model parameters (domain randomization) in their
        task state write them back into ``sim.expand(...)`` arrays here, so that
        a clone simulates with its source's parameters. The default does nothing.
        """

    def after_step(self, sim: BatchSim, state: TaskState, action: np.ndarray, env_ids: np.ndarray) -> None:
        """Update the task state once per control step, after the reward.

        The default shifts the action history: a_{t-2} <- a_{t-1} <- a_t. A hook that writes physics
        state here (unusual) calls ``sim.forward(env_ids)`` afterwards, so that the observation read
        next sees derived fields of the new state.
        """
        state["prev_action2"][env_ids] = state["prev_action"][env_ids]
        state["prev_action"][env_ids] = action

    def check_metrics(self, metrics: Any) -> None:
        """Check that ``evaluate``'s metrics are exactly the declared :attr:`metric_names`.

        Cheap (a set comparison): meant for the env's step-output checks, on the ``metrics`` dict of an
        :class:`Evaluation` (or any iterable of names).

        Raises:
            ValueError: Names that ``evaluate`` returns but ``metric_names`` does not declare, or the reverse.
        """
        names = set(metrics)
        declared = set(self.metric_names)
        if names == declared:
            return
        extra, missing = sorted(names - declared), sorted(declared - names)
        parts = []
        if extra:
            parts.append(f"returns metrics {extra} that {type(self).__name__}.metric_names does not declare")
        if missing:
            parts.append(f"does not return the declared metrics {missing}")
        raise ValueError(f"{type(self).__name__}.evaluate() {' and '.join(parts)}; metric_names = "
                         f"{tuple(self.metric_names)!r} must name exactly the keys of Evaluation.metrics")
