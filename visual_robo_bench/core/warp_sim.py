"""Batched simulation on MuJoCo Warp: the :class:`~visual_robo_bench.core.sim.BatchSim` interface on a device.

``WarpSim`` runs the N simulations as the N worlds of one ``mujoco_warp`` model
(``pip install 'visual_robo_bench[gpu]'``) on a CUDA GPU, or on Warp's CPU
device for development (``VRB_WARP_DEVICE=cpu``; kernels are compiled once per
machine and cached in ``~/.cache/warp``).

Tasks see the same host numpy arrays as with ``BatchSim``:

* ``state`` is a live ``(N, nstate)`` float64 array of ``mjSTATE_INTEGRATION``
  rows, the same layout as MuJoCo's, and state fields (``qpos``, ``qvel``,
  ``ctrl``, ``mocap_pos``, ...) are writable views into it. The host rows are the
  truth: every :meth:`step` / :meth:`forward` uploads them first, so whatever a
  task wrote goes to the device, and downloads the new rows of the stepped envs.
* Derived fields (``xpos``, ``xmat``, ``site_xpos``, ``sensordata``, ...) are
  read-only host copies, refreshed for the envs that were stepped or forwarded.

Differences from the CPU path, by construction of MuJoCo Warp: physics runs in
float32 (the host state holds float32-representable values), contacts and
constraints have fixed per-world capacities (``nconmax``, ``njmax``; an env
that overflows them is reported as a physics error), and a diverging env is
not reset by the engine but reported through its non-finite state.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import mujoco
import numpy as np

from .sim import STATE_SPEC

BACKEND = "warp"
INSTALL_HINT = "pip install 'visual_robo_bench[gpu]'"

# mjSTATE_INTEGRATION components in MuJoCo's order: (state bit, MjData field name).
_STATE_COMPONENTS: tuple[tuple[int, str], ...] = (
    (int(mujoco.mjtState.mjSTATE_TIME), "time"),
    (int(mujoco.mjtState.mjSTATE_QPOS), "qpos"),
    (int(mujoco.mjtState.mjSTATE_QVEL), "qvel"),
    (int(mujoco.mjtState.mjSTATE_ACT), "act"),
    (int(mujoco.mjtState.mjSTATE_HISTORY), "history"),
    (int(mujoco.mjtState.mjSTATE_WARMSTART), "qacc_warmstart"),
    (int(mujoco.mjtState.mjSTATE_CTRL), "ctrl"),
    (int(mujoco.mjtState.mjSTATE_QFRC_APPLIED), "qfrc_applied"),
    (int(mujoco.mjtState.mjSTATE_XFRC_APPLIED), "xfrc_applied"),
    (int(mujoco.mjtState.mjSTATE_EQ_ACTIVE), "eq_active"),
    (int(mujoco.mjtState.mjSTATE_MOCAP_POS), "mocap_pos"),
    (int(mujoco.mjtState.mjSTATE_MOCAP_QUAT), "mocap_quat"),
    (int(mujoco.mjtState.mjSTATE_USERDATA), "userdata"),
    (int(mujoco.mjtState.mjSTATE_PLUGIN), "plugin_state"),
)

# Overflow bits that mean the physics of a world is wrong (dropped contacts or
# constraints). Solver/linesearch iteration limits are normal and not errors.
_FATAL_OVERFLOW_NAMES = ("NEFC", "NJMAX_NNZ", "BROADPHASE", "NARROWPHASE", "CCD", "HFIELD", "NVMAX", "EPA_HORIZON")


def import_warp() -> tuple[Any, Any]:
    """``(warp, mujoco_warp)``, or an ImportError that says how to install them.

    Warp's informational messages are turned off first (see :func:`quiet_warp`).
    """
    try:
        import warp as wp

        quiet_warp(wp)  # before mujoco_warp or anything else can initialize Warp
        import mujoco_warp as mjw
    except ImportError as err:
        raise ImportError(
            f"backend='warp' needs MuJoCo Warp, which is not installed ({err}); {INSTALL_HINT}"
        ) from err
    return wp, mjw


_QUIETED: Any = None  # the warp module quiet_warp configured (once per process)


def quiet_warp(wp: Any) -> None:
    """Turn off Warp's informational messages, once per process, unless the user configured them first.

    Warp prints an initialization banner and a line per kernel module it loads or compiles to stdout, which
    would interleave with training logs and ``vrb`` output. Warnings and errors still show (errors are
    exceptions either way). Where Warp has ``warp.config.log_level`` (newer versions, which deprecate
    ``quiet``), it is raised from its default ``LOG_INFO`` to ``LOG_WARNING``; otherwise
    ``warp.config.quiet`` is set, unless ``warp.config.verbose`` was turned on. Where VRB is the first to use
    Warp, this runs before ``wp.init()``, so the banner is suppressed too. To see the messages, set Warp's own
    setting back after the first env is made: ``warp.config.log_level = warp.LOG_INFO`` (or
    ``warp.config.quiet = False``).

    Args:
        wp: The imported ``warp`` module.
    """
    global _QUIETED
    if _QUIETED is wp:
        return
    _QUIETED = wp
    config = wp.config
    if hasattr(wp, "LOG_WARNING") and hasattr(config, "log_level"):  # `quiet` is deprecated: it would warn
        if config.log_level == getattr(wp, "LOG_INFO", config.log_level):  # Warp's default, not the user's
            config.log_level = wp.LOG_WARNING
    elif not getattr(config, "verbose", False):
        config.quiet = True


def default_device() -> str:
    """Warp device: ``VRB_WARP_DEVICE`` if set, else ``cuda:0`` when CUDA is usable, else ``cpu``."""
    wp, _ = import_warp()
    env = os.environ.get("VRB_WARP_DEVICE")
    if env:
        return env
    return "cuda:0" if wp.is_cuda_available() else "cpu"


def _state_layout(model: mujoco.MjModel) -> dict[str, tuple[int, int]]:
    """``{field: (offset, size)}`` of each component inside one ``mjSTATE_INTEGRATION`` row."""
    layout, offset = {}, 0
    for bit, name in _STATE_COMPONENTS:
        if not STATE_SPEC & bit:
            continue
        size = mujoco.mj_stateSize(model, bit)
        layout[name] = (offset, size)
        offset += size
    if offset != mujoco.mj_stateSize(model, STATE_SPEC):  # pragma: no cover - MuJoCo added a component
        raise RuntimeError("mjSTATE_INTEGRATION layout changed; update warp_sim._STATE_COMPONENTS")
    return layout


def _unsupported(feature: str, hint: str = "") -> NotImplementedError:
    return NotImplementedError(f"{feature} is not supported by the {BACKEND!r} backend (MuJoCo Warp)"
                               + (f"; {hint}" if hint else "; use backend='cpu'"))


class WarpSim:
    """N simulations of one model as the N worlds of a MuJoCo Warp model.

    Args:
        model: The compiled model (shared, read-only after construction).
        num_envs: Number of simulations.
        device: Warp device (default: :func:`default_device`).
        nconmax: Contacts per world (default: MuJoCo Warp's heuristic, at least 4 per geom pair
            in contact at the model's initial state and at least 64).
        njmax: Constraint rows per world (default: MuJoCo Warp's heuristic, at least 256).

    Attributes:
        model: The model.
        num_envs: N.
        device: The Warp device the worlds live on.
        state: Live ``(N, nstate)`` float64 array of integration states (host).
        mjw_model: The ``mujoco_warp.Model`` (device).
        mjw_data: The ``mujoco_warp.Data`` with N worlds (device).
    """

    def __init__(self, model: mujoco.MjModel, num_envs: int, device: str | None = None,
                 nconmax: int | None = None, njmax: int | None = None) -> None:
        wp, mjw = import_warp()
        self._wp, self._mjw = wp, mjw
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if model.nplugin:
            raise _unsupported("models with engine plugins (mjSTATE_PLUGIN state)")
        self.model = model
        self.num_envs = int(num_envs)
        self.device = wp.get_device(device or default_device())
        self._layout = _state_layout(model)
        self.nstate_ = mujoco.mj_stateSize(model, STATE_SPEC)
        data0 = self._host_data = mujoco.MjData(model)
        self._default_row = np.empty(self.nstate_, dtype=np.float64)
        mujoco.mj_resetData(model, data0)
        mujoco.mj_getState(model, data0, self._default_row, STATE_SPEC)
        with wp.ScopedDevice(self.device):
            try:
                self.mjw_model = mjw.put_model(model)
            except NotImplementedError as err:
                raise _unsupported(f"a model feature ({err})") from err
            self.mjw_data = mjw.make_data(
                model, nworld=self.num_envs,
                nconmax=nconmax or max(64, mjw._src.io._default_nconmax(model)),
                njmax=njmax or max(256, mjw._src.io._default_njmax(model)),
            )
            self._state_dev = wp.zeros((self.num_envs, self.nstate_), dtype=wp.float32)
        self.state = np.tile(self._default_row, (self.num_envs, 1))
        self._fields: dict[str, np.ndarray] = {}
        self._derived: dict[str, np.ndarray] = {}
        self._expanded: dict[str, tuple[np.ndarray, Any]] = {}
        overflow = mjw.OverflowType if hasattr(mjw, "OverflowType") else mjw._src.types.OverflowType
        self._fatal_overflow = int(sum(int(getattr(overflow, n)) for n in _FATAL_OVERFLOW_NAMES
                                       if hasattr(overflow, n)))
        self._overflow_warned = False
        self._scratch: mujoco.MjData | None = None
        self._upload()
        self._forward_device()  # derived fields of the default state, like a fresh MjData after forward

    # ------------------------------------------------------------------ fields
    def field(self, name: str) -> np.ndarray:
        """Host ``(N, ...)`` array of an ``MjData`` field: writable view for state fields, else read-only copy."""
        arr = self._fields.get(name)
        if arr is not None:
            return arr
        if name in self._layout:
            off, size = self._layout[name]
            arr = self.state[:, off:off + size]
            per = getattr(self._host_data, name).shape if name != "time" else ()
            arr = arr.reshape(self.num_envs, *per) if name != "time" else arr[:, 0]
        else:
            if not hasattr(self.mjw_data, name) or not isinstance(getattr(self.mjw_data, name), self._wp.array):
                raise _unsupported(f"MjData field {name!r}", "read it on backend='cpu'")
            host_shape = getattr(self._host_data, name).shape
            dev = getattr(self.mjw_data, name)
            if dev.shape[0] != self.num_envs:
                raise _unsupported(f"MjData field {name!r} (not stored per world)")
            arr = np.zeros((self.num_envs, *host_shape), dtype=np.float64)
            self._derived[name] = arr
            self._pull_derived(name, None)
            arr.flags.writeable = False
        self._fields[name] = arr
        return arr

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_"):
            raise AttributeError(name)
        import mujoco.batch

        if name in mujoco.batch.DATA_FIELDS:
            return self.field(name)
        raise AttributeError(f"WarpSim has no attribute {name!r}")

    def _pull_derived(self, name: str, ids: np.ndarray | None) -> None:
        arr = self._derived[name]
        host = getattr(self.mjw_data, name).numpy().reshape(arr.shape)
        arr.flags.writeable = True
        if ids is None:
            arr[...] = host
        else:
            arr[ids] = host[ids]
        arr.flags.writeable = False

    # ------------------------------------------------- per-env model parameters
    def expand(self, name: str) -> np.ndarray:
        """Give model field ``name`` per-env values; returns the live host ``(N, ...)`` array.

        Supported for the fields MuJoCo Warp stores per world (``geom_friction``,
        ``body_mass``, ``actuator_gainprm``, ...); the values are uploaded before
        every step/forward. Other fields raise NotImplementedError.
        """
        if name in self._expanded:
            return self._expanded[name][0]
        dev = getattr(self.mjw_model, name, None)
        spec = self._model_field_spec(name)
        if dev is None or spec is None or not spec or spec[0] != "*":
            raise _unsupported(f"per-env values of model field {name!r}",
                               "MuJoCo Warp stores only its '*'-batched model fields per world")
        base = np.asarray(getattr(self.model, name), dtype=np.float64)
        host = np.tile(base[None], (self.num_envs,) + (1,) * base.ndim)
        self._batch_model_field(name)
        self._expanded[name] = (host, getattr(self.mjw_model, name))
        return host

    def _model_field_spec(self, name: str) -> tuple | None:
        import dataclasses

        for f in dataclasses.fields(self._mjw.Model):
            if f.name == name:
                return tuple(getattr(f.type, "shape", ()) or ())
        return None

    def _batch_model_field(self, name: str) -> None:
        """Replace device model field ``name`` by an ``(N, ...)`` array of its current values."""
        wp = self._wp
        dev = getattr(self.mjw_model, name)
        if dev.shape[0] == self.num_envs:
            return
        host = dev.numpy()
        tiled = np.repeat(host[:1], self.num_envs, axis=0)
        new = wp.array(tiled, dtype=dev.dtype, device=self.device)
        new._is_batched = True
        setattr(self.mjw_model, name, new)

    def _upload_expanded(self) -> None:
        wp = self._wp
        for name, (host, _) in self._expanded.items():
            dev = getattr(self.mjw_model, name)
            scalar = wp.dtype_to_numpy(getattr(dev.dtype, "_wp_scalar_type_", dev.dtype))
            dev.assign(wp.array(host.astype(scalar), dtype=dev.dtype, device="cpu"))

    def set_const(self, env_ids: np.ndarray | None = None) -> None:
        """Recompute the constants derived from per-env model fields (all envs; ``env_ids`` is accepted for parity).

        The derived fields ``mujoco_warp.set_const`` writes are made per-world first, so each env's
        constants come from its own parameters.
        """
        mjw = self._mjw
        for name in ("body_subtreemass", "geom_aabb", "geom_rbound", "tendon_length0", "dof_invweight0",
                     "body_invweight0", "tendon_invweight0", "cam_pos0", "cam_poscom0", "cam_mat0", "light_pos0",
                     "light_poscom0", "light_dir0", "actuator_acc0", "eq_data", "geom_size", "dof_A_diag"):
            spec = self._model_field_spec(name)
            if spec and spec[0] == "*" and getattr(self.mjw_model, name, None) is not None:
                self._batch_model_field(name)
        self._upload_expanded()
        with self._wp.ScopedDevice(self.device):
            mjw.set_const(self.mjw_model, self.mjw_data, restore=False)
        self._upload()  # set_const overwrote qpos with qpos0 on the device

    # ---------------------------------------------------------------- stepping
    def _upload(self) -> None:
        """Host state rows -> device worlds (all worlds: the host is the truth)."""
        wp = self._wp
        self._state_dev.assign(self.state.astype(np.float32))
        with wp.ScopedDevice(self.device):
            self._mjw.set_state(self.mjw_model, self.mjw_data, self._state_dev, int(STATE_SPEC))

    def _forward_device(self, ids: np.ndarray | None = None) -> None:
        """Position- and velocity-dependent fields (``mjSTAGE_VEL``), then pull them for ``ids``."""
        mjw = self._mjw
        with self._wp.ScopedDevice(self.device):
            mjw.fwd_position(self.mjw_model, self.mjw_data)
            mjw.sensor_pos(self.mjw_model, self.mjw_data)
            mjw.fwd_velocity(self.mjw_model, self.mjw_data)
            mjw.sensor_vel(self.mjw_model, self.mjw_data)
        for name in self._derived:
            self._pull_derived(name, ids)

    def step(self, env_ids: np.ndarray | None, nstep: int) -> np.ndarray:
        """Advance ``env_ids`` (all when ``None``) by ``nstep`` substeps.

        All worlds are stepped on the device; only the rows of ``env_ids`` are
        taken back, so the other envs keep their state exactly.

        Returns:
            Boolean ``(len(env_ids),)`` mask of simulations with a physics error:
            a non-finite state or a contact/constraint capacity overflow.
        """
        wp, mjw = self._wp, self._mjw
        ids = np.arange(self.num_envs) if env_ids is None else np.asarray(env_ids)
        self._upload_expanded()
        self._upload()
        self.mjw_data.overflow.zero_()
        with wp.ScopedDevice(self.device):
            for _ in range(int(nstep)):
                mjw.step(self.mjw_model, self.mjw_data)
            mjw.get_state(self.mjw_model, self.mjw_data, self._state_dev, int(STATE_SPEC))
        new = self._state_dev.numpy()
        self.state[ids] = new[ids]
        self._forward_device(ids)
        overflow = self.mjw_data.overflow.numpy()[ids]
        bad = (overflow & self._fatal_overflow) != 0
        if bad.any() and not self._overflow_warned:
            self._overflow_warned = True
            warnings.warn(f"MuJoCo Warp contact/constraint capacity overflow in envs {ids[bad].tolist()} "
                          f"(nconmax={self.mjw_data.naconmax // self.num_envs}, njmax={self.mjw_data.njmax}); "
                          "these envs are reported as physics errors. Pass larger nconmax/njmax to WarpSim.",
                          RuntimeWarning, stacklevel=2)
        bad |= ~np.isfinite(self.state[ids]).all(axis=1)
        return bad

    def forward(self, env_ids: np.ndarray) -> None:
        """Recompute position/velocity-dependent fields of ``env_ids`` from their state."""
        ids = np.asarray(env_ids)
        if len(ids):
            self._upload_expanded()
            self._upload()
            self._forward_device(ids)

    def invalidate(self, env_ids: np.ndarray) -> None:
        """Derived fields of ``env_ids`` after their state rows were written: recomputed now (the
        device pass is one batched call, so nothing is gained by deferring it as ``BatchSim`` does)."""
        self.forward(env_ids)

    def flush(self) -> None:
        """Nothing to do: :meth:`invalidate` is eager here."""

    def reset(self, env_ids: np.ndarray) -> None:
        """Reset ``env_ids`` to the model defaults (``qpos0``), without forward."""
        ids = np.asarray(env_ids)
        if len(ids):
            self.state[ids] = self._default_row

    # ------------------------------------------------------------------ state
    def get_state(self, env_ids: Sequence[int]) -> np.ndarray:
        """Copies of the integration states of ``env_ids``, ``(k, nstate)``."""
        return self.state[np.asarray(env_ids)].copy()

    def set_state(self, states: np.ndarray, env_ids: Sequence[int]) -> None:
        """Write ``states`` (row i into ``env_ids[i]``) and refresh derived fields."""
        ids = np.asarray(env_ids)
        self.state[ids] = states
        self.forward(ids)

    def data(self, env_id: int, out: mujoco.MjData | None = None) -> mujoco.MjData:
        """A host ``MjData`` of one simulation: its state, forwarded on the CPU (for rendering or any ``mj_`` call)."""
        out = out if out is not None else mujoco.MjData(self.model)
        mujoco.mj_setState(self.model, out, self.state[int(env_id)], STATE_SPEC)
        mujoco.mj_forward(self.model, out)
        return out

    @property
    def nstate(self) -> int:
        """Length of one integration-state row."""
        return self.nstate_
