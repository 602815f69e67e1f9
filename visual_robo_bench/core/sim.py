"""Batched simulation layer: one ``MjModel``, N simulations.

Built on ``mujoco.batch.Batch``: each simulation is its ``mjSTATE_INTEGRATION``
row (time, qpos, qvel, act, warm-start, ctrl, applied forces, mocap, ...) and a
step runs on MuJoCo's own thread pool (the GIL is released). Stepping uses
``stage=mjSTAGE_VEL`` so that position- and velocity-dependent fields (``xpos``,
``site_xpos``, sensors, ...) describe the state *after* the step, the way
``mj_step1`` leaves them, at no extra cost in a persistent batch.

The cloneable physics state of env i is ``state[i]``; a clone is a row copy,
which keeps the solver warm-start and therefore gives bit-identical branches.

Derived fields are refreshed lazily after whole-row writes: :meth:`reset`,
:meth:`set_state` and :meth:`invalidate` only mark the rows, and the first read
of a derived field (``sim.xpos``, ``sim.sensordata``, :meth:`data`, ...) runs one
forward pass over every marked row. A step needs no forward first (it starts from
the state row alone), so a task whose observations read only state fields
(``qpos``, ``qvel``, ...) never pays for a forward pass after a reset.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import mujoco
import mujoco.batch
import numpy as np

STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION
_STAGE_VEL = int(mujoco.mjtStage.mjSTAGE_VEL)


def state_columns(model: mujoco.MjModel, component: mujoco.mjtState, index: Sequence[int] | np.ndarray) -> np.ndarray:
    """Columns of a state row (``BatchSim.state``) holding entries ``index`` of one state component.

    For example ``state_columns(model, mjSTATE_QVEL, [0, 2])`` locates ``qvel[0]`` and ``qvel[2]``,
    so that ``gather(sim.state, ids, cols)`` collects state entries of several components in one
    operation (task observations do this on the hot path).

    Args:
        model: The model.
        component: One ``mjtState`` component of ``mjSTATE_INTEGRATION`` (``mjSTATE_QPOS``, ...).
        index: Entries of that component.

    Returns:
        ``int64`` column indices, one per entry of ``index``.
    """
    bit = int(component)
    if bit & (bit - 1) or not STATE_SPEC & bit:
        raise ValueError(f"component must be one mjtState component of mjSTATE_INTEGRATION, got {component!r}")
    idx = np.asarray(index, dtype=np.int64)
    size = mujoco.mj_stateSize(model, bit)
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(f"index {idx.tolist()} out of range for a component of size {size}")
    # MuJoCo lays the components out in the order of their bits
    return mujoco.mj_stateSize(model, int(STATE_SPEC) & (bit - 1)) + idx


def gather(array: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``array[rows[:, None], cols]`` as a new array, by two ``ndarray.take`` calls (2-3x faster at N=64).

    Args:
        array: A 2-D array, e.g. ``sim.state``.
        rows: Row indices (env ids).
        cols: Column indices, e.g. from :func:`state_columns`.
    """
    return array.take(rows, axis=0).take(cols, axis=1)


def default_nthread() -> int:
    """Physics threads: ``VRB_NTHREAD`` or the number of usable cores."""
    env = os.environ.get("VRB_NTHREAD")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class BatchSim:
    """N simulations of one model, stepped together or by index subset.

    Args:
        model: The compiled model (shared, read-only after construction).
        num_envs: Number of simulations.
        nthread: Physics threads (default: :func:`default_nthread`).

    Attributes:
        model: The model.
        num_envs: N.
        state: Live ``(N, nstate)`` float64 array of integration states.
    """

    def __init__(self, model: mujoco.MjModel, num_envs: int, nthread: int | None = None) -> None:
        self.model = model
        self.num_envs = int(num_envs)
        self.nthread = min(nthread or default_nthread(), self.num_envs)
        self._batch = mujoco.batch.Batch(model, nsim=self.num_envs, nthread=self.nthread, persistent=True)
        self.state = self._batch.state
        # A fresh batch holds every simulation in its reset state (mj_resetData): a reset is a row copy of it.
        self._reset_state = self.state[0].copy()
        self._all = np.arange(self.num_envs)
        self._fields: dict[str, np.ndarray] = {}
        # MuJoCo's per-simulation warning counters, (N, mjNWARNING, 2) [lastinfo, number]. A step reports and
        # clears them, so that a nonzero entry means "warned since the row's last step". A row rewritten whole
        # (reset, set_state) starts with cleared counters; a forward pass after it (lazy, or a task's own in
        # initialize_episode) keeps what it raises (a diverging written state, which MuJoCo replaces by its
        # reset state), so the next step reports it as a physics error. (A diverging simulation's automatic
        # reset clears them itself and counts the warning again, so counts compared across calls stay at 1 and
        # would miss a second blow-up of the same simulation: hence clearing, not comparing.)
        self._warning = self._batch.warning
        self._stale = np.zeros(self.num_envs, dtype=bool)  # rows whose derived fields predate their state
        self._any_stale = False

    # ------------------------------------------------------------------ fields
    def field(self, name: str) -> np.ndarray:
        """Live ``(N, ...)`` array of an ``MjData`` field (state or derived).

        Reading a derived field first recomputes the rows marked by :meth:`invalidate`.
        """
        arr = self._fields.get(name)
        if arr is None:
            arr = self._batch.bind(name)
            self._fields[name] = arr
            if np.shares_memory(arr, self.state):
                setattr(self, name, arr)  # a state field: later ``sim.qpos`` is a plain attribute lookup
        if self._any_stale and name not in self.__dict__:
            self.flush()
        return arr

    def __getattr__(self, name: str) -> np.ndarray:
        # qpos, qvel, ctrl, xpos, xquat, xmat, site_xpos, sensordata, ... as (N, ...)
        if name.startswith("_"):
            raise AttributeError(name)
        if name in mujoco.batch.DATA_FIELDS:
            return self.field(name)
        raise AttributeError(f"BatchSim has no attribute {name!r}")

    # ------------------------------------------------- per-env model parameters
    def expand(self, name: str) -> np.ndarray:
        """Give model field ``name`` per-env values; returns the live ``(N, ...)`` array.

        Used for domain randomization (``geom_friction``, ``body_mass``,
        ``actuator_gainprm``, ...). After writing a field that ``mj_setConst``
        reads (masses, inertias), call :meth:`set_const` for those envs.
        """
        return self._batch.expand(name)

    def set_const(self, env_ids: np.ndarray | None = None) -> None:
        """Recompute the constants derived from per-env model fields of ``env_ids``."""
        self._batch.set_const(None if env_ids is None else np.asarray(env_ids))

    # ---------------------------------------------------------------- stepping
    def step(self, env_ids: np.ndarray | None, nstep: int) -> np.ndarray:
        """Advance ``env_ids`` (all when ``None``) by ``nstep`` substeps.

        Returns:
            Boolean ``(len(env_ids),)`` mask of simulations with a physics error:
            MuJoCo raised, MuJoCo warned during this step or during the forward
            pass of a state written since the last step (it resets a diverging
            simulation and warns) or the state is not finite.
        """
        # all envs: slices instead of fancy indexing (no copies on the hot path)
        ids = self._all if env_ids is None else np.asarray(env_ids)
        rows: slice | np.ndarray = slice(None) if env_ids is None else ids
        bad = np.zeros(len(ids), dtype=bool)
        try:
            self._batch.step(None if env_ids is None else ids, nstep=nstep, stage=_STAGE_VEL)
        except mujoco.batch.SimulationError as err:
            bad |= np.isin(ids, err.ids)
        if self._any_stale:  # a step leaves the derived fields of the stepped rows current
            self._stale[rows] = False
            self._any_stale = env_ids is not None and bool(self._stale.any())
        # whole-batch checks first: the per-row checks run only when something happened
        if self._warning.any():
            bad |= self._warning[rows, :, 1].any(axis=1)
            self._warning[rows] = 0
        if not np.isfinite(self.state[rows].sum()):  # a NaN or inf somewhere: find the rows
            bad |= ~np.isfinite(self.state[rows]).all(axis=1)
        return bad

    def forward(self, env_ids: np.ndarray) -> None:
        """Recompute position/velocity-dependent fields of ``env_ids`` from their state now.

        A warning it raises (a diverging state, which MuJoCo replaces by its reset state) stays in the
        counters and is reported as a physics error by the next :meth:`step` of those rows.
        """
        ids = np.asarray(env_ids)
        if len(ids):
            self._batch.forward(ids, stage=_STAGE_VEL)
            self._stale[ids] = False

    def invalidate(self, env_ids: np.ndarray) -> None:
        """Mark the derived fields of ``env_ids`` out of date after their state rows were written.

        The forward pass runs at the first read of a derived field (:meth:`flush`), once for
        all marked rows, or never if the next step comes first. Warnings already raised since
        the rows' last step are kept (:meth:`reset` and :meth:`set_state` clear them).
        """
        ids = np.asarray(env_ids)
        if len(ids):
            self._stale[ids] = True
            self._any_stale = True

    def flush(self) -> None:
        """Run the forward pass of the rows marked by :meth:`invalidate` (nothing if none is)."""
        if self._any_stale:
            self._any_stale = False
            self.forward(np.flatnonzero(self._stale))

    def reset(self, env_ids: np.ndarray) -> None:
        """Reset ``env_ids`` to the model defaults (``qpos0``); derived fields follow lazily.

        The integration state is the whole of what ``mj_resetData`` restores that a step reads, so
        the reset is a copy of a pristine row (cheaper than a ``Batch.reset`` call per episode).
        """
        ids = np.asarray(env_ids)
        if len(ids):
            self.state[ids] = self._reset_state
            self._warning[ids] = 0  # a new state: earlier warnings are not its own
            self.invalidate(ids)

    # ------------------------------------------------------------------ state
    def get_state(self, env_ids: Sequence[int]) -> np.ndarray:
        """Copies of the integration states of ``env_ids``, ``(k, nstate)``."""
        return self.state[np.asarray(env_ids)].copy()

    def set_state(self, states: np.ndarray, env_ids: Sequence[int]) -> None:
        """Write ``states`` (row i into ``env_ids[i]``); derived fields follow lazily.

        The rows' warning counters are cleared (earlier warnings belong to the overwritten state); the
        forward pass that follows keeps its own, which the next :meth:`step` reports.
        """
        ids = np.asarray(env_ids)
        self.state[ids] = states
        self._warning[ids] = 0
        self.invalidate(ids)

    def data(self, env_id: int, out: mujoco.MjData | None = None) -> mujoco.MjData:
        """The whole ``MjData`` of one simulation (for rendering or any ``mj_`` call)."""
        self.flush()
        return self._batch.get_data(int(env_id), out)

    @property
    def nstate(self) -> int:
        """Length of one integration-state row."""
        return self._batch.nstate
