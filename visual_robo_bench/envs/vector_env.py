"""The native batched vector env: N MuJoCo worlds, pixels rendered in one batch.

Step ordering (``sdpg.md`` section 4): validate and map actions, physics
sub-steps, step counter, reward terms, termination (task condition or physics
error), truncation, task-state update, render the rendered envs and roll their
frame stacks, build observations.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv

from ..core.config import TaskConfig, check_count
from ..core.sim import BatchSim
from ..core.task import Evaluation, Task, TaskState
from ..registry import get_task, rename_notice
from ..render.pool import RenderPool
from ..render.tiled import TiledRenderer, View

ACTION_TOLERANCE = 1e-6
BACKENDS = ("cpu", "warp")


@dataclass
class VRBState:
    """A batch of cloneable env states (leading axis: the env ids it was taken from).

    What decides an env's future apart from the actions: physics, task state and step counters. Not
    included by default: the env's random generator, which draws its *next* episode at a reset or an
    autoreset (``get_state(ids, rng=True)`` adds it), and the frame stacks (``get_frame_stacks``).

    Attributes:
        physics: ``(k, nstate)`` float64 MuJoCo ``mjSTATE_INTEGRATION`` vectors.
        task: Per-env task state (goals, schedules, previous actions, ...), ``(k, *shape)`` per field.
        elapsed: ``(k,)`` integer episode step counters.
        task_id: The registered id of the env it was taken from (``None``: unlabeled, e.g. rebuilt from
            a checkpoint's arrays; ``set_state`` then checks shapes and dtypes only).
        config_hash: ``TaskConfig.hash()`` of that env's config (task overrides included), or ``None``.
        rng: With ``get_state(..., rng=True)``: each env's generator state (``bit_generator.state``
            dicts, one per row), which ``set_state`` restores; ``None`` otherwise.
    """

    physics: np.ndarray
    task: dict[str, np.ndarray]
    elapsed: np.ndarray
    task_id: str | None = None
    config_hash: str | None = None
    rng: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.physics)

    def to_dict(self) -> dict[str, Any]:
        """The arrays and labels as a plain dict (e.g. in a checkpoint); :meth:`from_dict` restores it."""
        d = {"physics": self.physics, "task": self.task, "elapsed": self.elapsed, "task_id": self.task_id,
             "config_hash": self.config_hash}
        if self.rng is not None:
            d["rng"] = self.rng
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VRBState":
        """A state from :meth:`to_dict`'s dict (other keys are ignored; a dict without labels, as older
        checkpoints hold, gives an unlabeled state, whose shapes and dtypes ``set_state`` still checks)."""
        return cls(d["physics"], d["task"], d["elapsed"], d.get("task_id"), d.get("config_hash"), d.get("rng"))

    def take(self, rows: Any) -> "VRBState":
        """The states at ``rows`` (repeats allowed, e.g. to clone one env into many).

        Args:
            rows: 1-D integer row indices, or a bool mask with one entry per row.

        Raises:
            ValueError: ``rows`` is not 1-D, not integer or bool, out of range, or a mask of another length.
        """
        rows = np.asarray(rows)
        n = len(self)
        if rows.ndim == 1 and rows.dtype == np.bool_:
            if len(rows) != n:
                raise ValueError(f"a bool mask for take() needs one entry per row ({n}), got {len(rows)}")
            rows = np.flatnonzero(rows)
        elif rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise ValueError(f"take() needs 1-D integer row indices or a bool mask of length {n}, got {_describe(rows)}")
        rows = rows.astype(np.int64, copy=False)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise ValueError(f"row indices for take() must lie in [0, {n}), got {rows.tolist()}")
        rng = None if self.rng is None else [self.rng[int(r)] for r in rows.reshape(-1)]
        return VRBState(self.physics[rows].copy(), {k: v[rows].copy() for k, v in self.task.items()},
                        self.elapsed[rows].copy(), self.task_id, self.config_hash, rng)


def _describe(value: Any) -> str:
    """``value``'s type, dtype and shape for error messages."""
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return f"{type(value).__name__} {value!r}"[:120]


def _bit_generator_of(state: Any) -> np.random.BitGenerator:
    """A new bit generator in ``state`` (a ``bit_generator.state`` dict); raises ValueError if it is none."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    cls = getattr(np.random, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, np.random.BitGenerator)):
        raise ValueError(f"not a numpy bit_generator.state dict: {str(state)[:120]}")
    bg = cls()
    bg.state = state  # raises on a malformed state
    return bg


def _resolve_config(cfg: TaskConfig, overrides: dict[str, Any]) -> TaskConfig:
    """``cfg`` with the keyword overrides (the registry passes every field: see ``registry.config_kwargs``)."""
    changes = dict(overrides)
    if "cameras" in changes and "policy_cameras" in changes:
        # gym.make passes the registered ``cameras`` keyword with every call: a user's policy_cameras wins over
        # it, but not over cameras=... given by the user too (a registered value that differs from the default)
        cameras, chosen = tuple(changes.pop("cameras")), changes["policy_cameras"]
        if cameras not in (tuple(cfg.policy_cameras), tuple(chosen) if isinstance(chosen, (list, tuple)) else ()):
            raise ValueError(f"cameras={cameras!r} and policy_cameras={chosen!r} both choose the policy cameras: "
                             "pass one of them (cameras= is gym.make's keyword for policy_cameras)")
    if "cameras" in changes:  # user-facing name of the policy cameras
        cameras = changes.pop("cameras")
        if isinstance(cameras, str) or not all(isinstance(c, str) for c in cameras) or not len(cameras):
            raise ValueError(f"cameras must be a non-empty sequence of camera names, primary first, e.g. "
                             f"{cfg.policy_cameras!r}; got {cameras!r} (obs_mode='state' renders no camera)")
        changes["policy_cameras"] = tuple(cameras)
    for name in ("image_size", "render_size"):  # JSON (gym.spec kwargs) gives lists
        if isinstance(changes.get(name), list):
            changes[name] = tuple(changes[name])
    for name, value in changes.items():  # a nested config (the render profile) given as a dict
        default = getattr(cfg, name, None)
        if isinstance(value, dict) and dataclasses.is_dataclass(default):
            changes[name] = dataclasses.replace(default, **value)
    # every value goes through the config's checks, also one equal to its default (True == 1.0, 6.0 == 6)
    return cfg.replace(**changes) if changes else cfg


def _autoreset_mode(value: AutoresetMode | str) -> AutoresetMode:
    if isinstance(value, AutoresetMode):
        return value
    for mode in AutoresetMode:
        if str(value).upper().replace("_", "") in (mode.name.replace("_", ""), mode.value.upper()):
            return mode
    raise ValueError(f"autoreset_mode must be one of {[m.name for m in AutoresetMode]}, got {value!r}")


_REAL_SCALARS = (int, float, np.integer, np.floating)
_NDARRAY = np.ndarray  # a module global: one lookup instead of two on the hot path
_ACTION_DTYPES = (np.float32, np.float64)


def _action_dtype_ok(dtype: np.dtype) -> bool:
    """Actions of ``dtype`` are taken: float64, or a real dtype that casts to float32 exactly (as the action
    space's ``contains`` accepts them: float16, int8, uint16, ...; not bool)."""
    return dtype == np.float64 or (dtype.kind in "fiu" and np.can_cast(dtype, np.float32))


def _column_error(value: Any, n: int, kinds: str = "fiu") -> str | None:
    """``None`` if ``value`` is a real scalar or an ``(n,)`` array of a dtype kind in ``kinds``, else what it is."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in kinds and (value.shape == (n,) or value.shape == ()):
            return None
    elif isinstance(value, _REAL_SCALARS) and not isinstance(value, bool):
        return None
    return _describe(value)


def _column(values: Any, n: int) -> np.ndarray:
    """A new float64 ``(n,)`` array of ``values`` (an ``(n,)`` array or a scalar, broadcast)."""
    out = np.empty(n)
    out[...] = values
    return out


class VRBVectorEnv(VectorEnv):
    """N environments of one task, batched natively.

    Args:
        task_id: Registered task id, e.g. ``"VRB/Walker-v1"``.
        num_envs: Number of environments N.
        max_episode_steps: Episode length (default: the task's).
        truncation: Truncate at ``max_episode_steps``; False only for the single env, whose truncation is
            Gymnasium's ``TimeLimit`` (the task still uses ``max_episode_steps`` for its own rules).
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default) or ``DISABLED``.
        obs_mode: ``"visual"`` (images + ``proprio``) or ``"state"`` (privileged
            vectors only; never renders).
        privileged: Add ``privileged`` (and ``height_scan``) observation keys.
        render_env_ids: Envs whose policy images are rendered (default: all). Image
            keys then have this leading size; other envs never touch the policy renderer
            (``render()``, the human view, still draws every env). Visual mode only.
        pixel_layout: ``"HWC"`` (default) or ``"CHW"``.
        action_bounds: ``"raise"`` (default) on actions outside [-1, 1], or
            ``"clip"`` (the clipped fraction is in ``info``).
        render_mode: ``"rgb_array"``/``"depth_array"`` for :meth:`render` (one image per env) and
            :meth:`render_envs`, or None.
        nthread: Physics threads (default: the usable cores).
        render_workers: Render worker processes, e.g. one per core (default 0: render in
            this process). Workers are spawned, so a script using them needs the usual
            ``if __name__ == "__main__":`` guard.
        backend: ``"cpu"`` (default: MuJoCo batch physics, OpenGL rendering) or ``"warp"``
            (MuJoCo Warp physics and batch ray-traced rendering on a CUDA GPU, or on Warp's
            CPU device when ``VRB_WARP_DEVICE=cpu`` or no GPU is present; needs
            ``pip install 'visual_robo_bench[gpu]'``). Same tasks, spaces and state layout.
        torch_pixels: With ``backend="warp"``: frame stacks live on the Warp device and the
            pixel observations come back as torch ``uint8`` tensors there (same shapes as the
            space's), so images never round-trip through host memory; vectors stay numpy.
        **overrides: Task config fields (``image_size``, ``cameras``,
            ``frame_stack``, ...). A non-default value makes results unofficial.
    """

    metadata = {"render_modes": ["rgb_array", "depth_array"], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        task_id: str,
        num_envs: int = 1,
        *,
        max_episode_steps: int | None = None,
        truncation: bool = True,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        obs_mode: str = "visual",
        privileged: bool = False,
        render_env_ids: Any = None,
        pixel_layout: str = "HWC",
        action_bounds: str = "raise",
        render_mode: str | None = None,
        nthread: int | None = None,
        render_workers: int | None = None,
        backend: str = "cpu",
        torch_pixels: bool = False,
        **overrides: Any,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        if backend == "warp" and render_workers is not None and int(render_workers) > 1:
            raise NotImplementedError("render_workers (OpenGL render worker processes) is not supported by the "
                                      "'warp' backend, which renders all envs in one batch on its device; "
                                      "leave render_workers unset")
        if backend == "warp" and nthread is not None:
            raise NotImplementedError("nthread (MuJoCo CPU physics threads) is not supported by the 'warp' backend, "
                                      "which steps all envs on its device; leave nthread unset")
        if torch_pixels and backend != "warp":
            raise ValueError("torch_pixels=True needs backend='warp' (the CPU backend renders into host memory; "
                             "use torch.from_numpy on its observations instead)")
        self.backend, self.torch_pixels = backend, bool(torch_pixels)
        entry = get_task(task_id)
        notice = rename_notice(entry)
        if notice:
            gym.logger.deprecation(notice)
        self.task_id = entry.id
        self.cfg = _resolve_config(entry.config, overrides)
        self._config_hash = self.cfg.hash()  # labels states (VRBState.config_hash)
        self.num_envs = check_count("num_envs", num_envs)
        for name, value, minimum in (("nthread", nthread, 1), ("render_workers", render_workers, 0),
                                     ("max_episode_steps", max_episode_steps, 1)):
            if value is not None:
                check_count(name, value, minimum)
        for name, value in (("privileged", privileged), ("truncation", truncation), ("torch_pixels", torch_pixels)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        mode = _autoreset_mode(autoreset_mode)
        if mode is AutoresetMode.SAME_STEP:
            raise ValueError("autoreset_mode SAME_STEP is not supported by the native env; use NEXT_STEP or "
                             "DISABLED (the stable-baselines3 adapter translates to SAME_STEP itself)")
        self.autoreset_mode = mode
        self.metadata = {**self.metadata, "autoreset_mode": mode, "render_fps": int(round(1 / self.cfg.control_dt))}
        if obs_mode not in ("visual", "state"):
            raise ValueError(f"obs_mode must be 'visual' or 'state', got {obs_mode!r}")
        if pixel_layout not in ("HWC", "CHW"):
            raise ValueError(f"pixel_layout must be 'HWC' or 'CHW', got {pixel_layout!r}")
        if action_bounds not in ("raise", "clip"):
            raise ValueError(f"action_bounds must be 'raise' or 'clip', got {action_bounds!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.obs_mode, self.privileged = obs_mode, bool(privileged) or obs_mode == "state"
        if self.privileged and not self.cfg.privileged_dim:
            what = "obs_mode='state' observes" if obs_mode == "state" else "privileged=True adds"
            raise ValueError(f"{what} the privileged state, which {entry.id} does not declare (privileged_dim=0): "
                             f"use {'obs_mode=' + repr('visual') if obs_mode == 'state' else 'privileged=False'}")
        self.pixel_layout, self.action_bounds, self.render_mode = pixel_layout, action_bounds, render_mode
        self.max_episode_steps = int(max_episode_steps or self.cfg.max_episode_steps)
        self.truncation = bool(truncation)

        self.task: Task = entry.task_cls(self.cfg)
        self.task.max_episode_steps = self.max_episode_steps
        self._metric_names = frozenset(self.task.metric_names)
        spec = self.task.build_scene()
        if not isinstance(spec, mujoco.MjSpec):
            raise TypeError(f"{type(self.task).__name__}.build_scene must return the scene's mujoco.MjSpec (VRB "
                            f"compiles it), got {type(spec).__name__}")
        #: Where the robot model came from (source, commit, XML hash), for results files.
        self.provenance: dict[str, str] = dict(getattr(self.task, "provenance", None) or {})
        spec.option.timestep = self.cfg.timestep
        self.model = spec.compile()
        self.task.setup(self.model)
        if backend == "warp":
            from ..core.warp_sim import WarpSim  # raises ImportError with the install hint

            self.sim = WarpSim(self.model, self.num_envs)
        else:
            self.sim = BatchSim(self.model, self.num_envs, nthread)
        self._state_spec = {k: (tuple(shape), np.dtype(dtype)) for k, (shape, dtype) in self.task.state_spec().items()}
        self.state = TaskState(self.num_envs, self._state_spec)
        carried = tuple(self.task.carried_state)
        unknown = sorted(set(carried) - set(self._state_spec))
        if unknown:
            raise ValueError(f"{type(self.task).__name__}.carried_state names {unknown}, which state_spec() does not "
                             f"declare (it declares {sorted(self._state_spec)})")
        self._zeroed_at_reset = [k for k in self._state_spec if k not in carried]  # the rest carries over
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self._all_ids = np.arange(self.num_envs)
        self._done = np.zeros(self.num_envs, dtype=bool)
        self._started = np.zeros(self.num_envs, dtype=bool)
        self._all_started = False
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs

        # --- rendering: only the policy cameras of the rendered envs
        if obs_mode == "visual":
            ids = self._env_ids(render_env_ids, "render_env_ids", distinct=True)
        elif render_env_ids is not None and len(np.asarray(render_env_ids).reshape(-1)):
            raise ValueError(f"render_env_ids={render_env_ids!r} chooses the envs whose policy images are rendered, "
                             "and obs_mode='state' renders none: leave render_env_ids unset (render() draws every "
                             "env with render_mode='rgb_array')")
        else:
            ids = np.zeros(0, dtype=np.int64)
        self.render_env_ids = ids
        self._slot = np.full(self.num_envs, -1, dtype=np.int64)
        self._slot[ids] = np.arange(len(ids))
        self._views = [self._policy_view(name) for name in self.cfg.policy_cameras] if obs_mode == "visual" else []
        self.render_workers = int(render_workers or 0) if len(ids) > 1 else 0
        self._renderer: TiledRenderer | RenderPool | None = None
        self._viewer: TiledRenderer | None = None
        #: Policy observations rendered so far, one per env per render (all its cameras): steps, resets and
        #: ``set_state`` of rendered envs. Learners report their budget's "rendered frames" from it.
        self.frames_rendered = 0
        #: Wall-clock seconds spent rendering those observations: what an agent reports as its render time,
        #: the rest of its env time being physics and task code.
        self.render_seconds = 0.0
        K = self.cfg.frame_stack
        # frame stacks kept in the observation layout (R, H, W, K*C), oldest frame first along channels
        self._frames = [np.zeros((len(ids), v.height, v.width, K * (1 if v.depth else 3)), np.uint8)
                        for v in self._views]
        if self.torch_pixels:
            import torch

            from ..core.warp_sim import default_device

            self._torch_device = torch.device(default_device())
            self._frames = [torch.zeros(f.shape, dtype=torch.uint8, device=self._torch_device) for f in self._frames]

        self._build_spaces()
        # every vector the task computes (observation keys or info), for all envs
        self._obs_dims = {k: d for k, d in (("proprio", self.cfg.proprio_dim), ("privileged", self.cfg.privileged_dim),
                                             ("height_scan", self.cfg.height_scan_dim)) if d}
        self._vec: dict[str, np.ndarray] = {k: np.zeros((self.num_envs, d), np.float32)
                                            for k, d in self._obs_dims.items()}

    # ------------------------------------------------------------ spaces
    def _policy_view(self, name: str) -> View:
        cam = self.cfg.camera(name)
        h, w = self.cfg.image_size
        return View(name, h, w, depth=cam.depth, geomgroups=cam.geomgroups)

    def image_key(self, index: int) -> str:
        """Observation key of the ``index``-th policy camera."""
        return "pixels" if index == 0 else f"pixels_{self.cfg.policy_cameras[index]}"

    def _build_spaces(self) -> None:
        K = self.cfg.frame_stack
        single: dict[str, spaces.Space] = {}
        batched: dict[str, spaces.Space] = {}
        R = len(self.render_env_ids)
        for i, v in enumerate(self._views):
            c = K * (1 if v.depth else 3)
            shape = (v.height, v.width, c) if self.pixel_layout == "HWC" else (c, v.height, v.width)
            single[self.image_key(i)] = spaces.Box(0, 255, shape, np.uint8)
            batched[self.image_key(i)] = spaces.Box(0, 255, (R, *shape), np.uint8)
        dims = {"proprio": self.cfg.proprio_dim}
        if self.obs_mode == "state":
            dims = {}
        if self.privileged:
            dims["privileged"] = self.cfg.privileged_dim
            if self.cfg.height_scan_dim:
                dims["height_scan"] = self.cfg.height_scan_dim
        for k, d in dims.items():
            single[k] = spaces.Box(-np.inf, np.inf, (d,), np.float32)
            batched[k] = spaces.Box(-np.inf, np.inf, (self.num_envs, d), np.float32)
        self.single_observation_space = spaces.Dict(single)
        self.observation_space = spaces.Dict(batched)
        A = self.task.action_dim
        self.single_action_space = spaces.Box(-1.0, 1.0, (A,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (self.num_envs, A), np.float32)
        self._action_shape = self.action_space.shape

    # ------------------------------------------------------------ seeding / reset
    def _seed(self, seed: int | list | None, ids: np.ndarray) -> None:
        if seed is None:
            for i in ids:
                if self._rngs[i] is None:
                    self._rngs[i] = np.random.default_rng()
            return
        if isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + int(i) for i in ids]
        else:
            seeds = list(seed)
            if len(seeds) == self.num_envs and len(ids) != self.num_envs:
                seeds = [seeds[i] for i in ids]
            if len(seeds) != len(ids):
                raise ValueError(f"seed list has {len(seeds)} entries for {len(ids)} envs to reset")
        for i, s in zip(ids, seeds):
            self._rngs[i] = np.random.default_rng(s) if s is not None else (self._rngs[i] or np.random.default_rng())

    def set_rng(self, env_id: int, rng: np.random.Generator) -> None:
        """Use ``rng`` as env ``env_id``'s generator (the single env shares its ``np_random``)."""
        self._rngs[env_id] = rng

    def get_rng(self, env_id: int) -> np.random.Generator | None:
        """Env ``env_id``'s generator (``None`` before its first reset): checkpoint its ``bit_generator.state``."""
        return self._rngs[env_id]

    def reset(self, *, seed: int | list | None = None, options: dict | None = None):
        """Reset all envs, or those in ``options["reset_mask"]`` (others keep their state).

        Env i is seeded with ``seed + i``; later resets continue each env's stream.

        Raises:
            ValueError: An option other than ``reset_mask``, or a malformed mask.
        """
        self._check_open()
        options = options or {}
        unknown = sorted(set(options) - {"reset_mask"})
        if unknown:
            raise ValueError(f"unknown reset options {unknown}; the vector env takes only 'reset_mask' (a bool array "
                             f"of shape ({self.num_envs},)); start states are set with set_state()")
        mask = options.get("reset_mask")
        if mask is None:
            ids = np.arange(self.num_envs)
        else:
            mask = np.asarray(mask)
            if mask.dtype != np.bool_ or mask.shape != (self.num_envs,) or not mask.any():
                raise ValueError(f"reset_mask must be a bool array of shape ({self.num_envs},) with at least one True")
            ids = np.flatnonzero(mask)
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):  # np_random(_seed), as Gymnasium's
            self._np_random, self._np_random_seed = seeding.np_random(int(seed))
        self._seed(seed, ids)
        self._reset_ids(ids)
        # Gymnasium's masks after a partial reset: the values are those of the envs that were reset
        info = self._info(terms=None, evaluation=None, bad=None, mask=mask)
        return self._observation(), info

    def _check_open(self) -> None:
        if self.closed:
            raise gym.error.ClosedEnvironmentError(
                f"this {self.task_id} env was closed; make a new one (gym.make or gym.make_vec)")

    @property
    def done(self) -> np.ndarray:
        """A copy of the flags of the envs whose episode ended at the last step: with ``NEXT_STEP`` they restart
        at the next step, with ``DISABLED`` they wait for a reset (or ``set_state``)."""
        return self._done.copy()

    def _reset_ids(self, ids: np.ndarray, refresh: bool = True) -> None:
        """Start new episodes in ``ids``; ``refresh=False`` leaves observing them to the caller."""
        self.sim.reset(ids)
        for k in self._zeroed_at_reset:
            self.state[k][ids] = 0
        self.task.initialize_episode(self.sim, self.state, ids, [self._rngs[i] for i in ids])
        self.task.on_state_set(self.sim, self.state, ids)
        self.sim.invalidate(ids)  # initialize_episode wrote the state rows
        self._elapsed[ids] = 0
        self._done[ids] = False
        self._started[ids] = True
        if refresh:
            self._refresh(ids, fill_stack=True)

    def __reduce_ex__(self, protocol: Any):
        """``copy.deepcopy`` and ``pickle`` come here (also for a single env, through the batch it wraps)."""
        raise TypeError(
            f"{type(self).__name__} ({self.task_id}) cannot be copied or "
            "pickled: it holds MuJoCo's batched simulation and GL renderers. Copy an env's state with "
            "env.unwrapped.get_state() and set_state() (bit-identical branches), and make another env with "
            "gym.make(env.spec) or gym.make_vec(...)"
        )

    # ------------------------------------------------------------ state API (SDPG)
    def _env_ids(self, env_ids: Any, name: str = "env_ids", distinct: bool = False) -> np.ndarray:
        """``env_ids`` (``None``: every env) as ``int64`` indices, checked: a bool mask, a float, a negative or
        out-of-range index (or, with ``distinct``, a repeated one) raises instead of being reinterpreted."""
        if env_ids is None:
            return np.arange(self.num_envs)
        ids = np.asarray(env_ids)
        if ids.ndim == 1 and ids.size == 0:
            return np.zeros(0, dtype=np.int64)
        if (ids.ndim != 1 or ids.dtype == np.bool_ or not np.issubdtype(ids.dtype, np.integer)
                or ids.min() < 0 or ids.max() >= self.num_envs or (distinct and len(np.unique(ids)) != len(ids))):
            raise ValueError(
                f"{name} must be a 1-D sequence of {'distinct ' if distinct else ''}env indices in "
                f"[0, {self.num_envs}), got {env_ids!r} (for a bool mask pass np.flatnonzero(mask))"
            )
        return ids.astype(np.int64, copy=False)

    def get_state(self, env_ids: Any = None, *, rng: bool = False) -> VRBState:
        """Copies of the cloneable state of ``env_ids`` (default: all), labeled with the task id and config hash.

        A clone or a restore from it continues bit-identically (physics, rewards, task state) until the
        env's next episode. That episode is drawn by the env's random generator, which is not part of the
        state unless ``rng=True``: then ``state.rng`` holds each env's ``bit_generator.state`` and
        :meth:`set_state` restores it, so later (auto)resets repeat as well (clones then draw identical
        next episodes). Frame stacks are not included (:meth:`get_frame_stacks`).

        Raises:
            ValueError: ``env_ids`` malformed, or ``rng=True`` for an env that was never reset.
        """
        ids = self._env_ids(env_ids)
        rngs = None
        if rng:
            missing = [int(i) for i in ids if self._rngs[i] is None]
            if missing:
                raise ValueError(f"envs {missing} have no random generator yet (never reset): call "
                                 "reset(seed=...) first, or get_state(ids) without rng=True")
            rngs = [self._rngs[i].bit_generator.state for i in ids]
        return VRBState(self.sim.get_state(ids), self.state.get(ids), self._elapsed[ids].copy(),
                        self.task_id, self._config_hash, rngs)

    def _check_state(self, state: Any, ids: np.ndarray) -> list[np.random.BitGenerator] | None:
        """Refuse (ValueError) anything :meth:`set_state` could not write whole; returns the new bit generators
        of ``state.rng`` (checked), if any. Writes nothing."""
        if not isinstance(state, VRBState):
            raise TypeError(f"set_state takes a VRBState (from get_state), got {type(state).__name__}; rebuild saved "
                            "arrays with VRBState(physics, task, elapsed)")
        k = len(ids)
        redo = "take it with get_state() of an env made with the same task id and config"
        if state.task_id is not None and state.task_id != self.task_id:
            raise ValueError(f"state was taken from a {state.task_id} env, this env is {self.task_id}: states "
                             f"only move between envs of one task id ({redo})")
        if state.config_hash is not None and state.config_hash != self._config_hash:
            raise ValueError(f"state was taken from a {self.task_id} env with another config (hash "
                             f"{state.config_hash}, this env's is {self._config_hash}): the task overrides given "
                             f"to gym.make/make_vec differ (e.g. domain_randomization); {redo}")
        phys, nstate = state.physics, self.sim.nstate
        if isinstance(phys, np.ndarray) and phys.ndim == 2 and len(phys) != k:
            raise ValueError(f"state has {len(phys)} rows for {k} env ids")
        if not (isinstance(phys, np.ndarray) and phys.dtype == np.float64 and phys.shape == (k, nstate)):
            raise ValueError(f"state.physics must be a float64 array of shape ({k}, {nstate}) (one "
                             f"mjSTATE_INTEGRATION row of {self.task_id} per env id), got {_describe(phys)}; {redo}")
        if not np.isfinite(phys.sum()):  # one pass; the per-row check only when something is off
            bad = ~np.isfinite(phys).all(axis=1)
            if bad.any():
                raise ValueError(f"state.physics rows {np.flatnonzero(bad).tolist()} (for envs "
                                 f"{ids[bad].tolist()}) contain NaN or inf: a blown-up state cannot be restored; "
                                 "use a state taken before the physics error")
        task = state.task
        if not isinstance(task, dict) or task.keys() != self._state_spec.keys():
            got = sorted(task) if isinstance(task, dict) else type(task).__name__
            raise ValueError(f"state.task must hold the fields {sorted(self._state_spec)} of {self.task_id}'s task "
                             f"state, got {got}; {redo}")
        for name, (shape, dtype) in self._state_spec.items():
            v = task[name]
            if not (isinstance(v, np.ndarray) and v.dtype == dtype and v.shape == (k, *shape)):
                raise ValueError(f"state.task[{name!r}] must be a {dtype} array of shape {(k, *shape)}, got "
                                 f"{_describe(v)}; {redo}")
        el = state.elapsed
        if not (isinstance(el, np.ndarray) and el.dtype.kind in "iu" and el.shape == (k,)):
            raise ValueError(f"state.elapsed must be an integer array of shape ({k},) (step counters), got "
                             f"{_describe(el)}")
        if k and (el.min() < 0 or (self.truncation and el.max() > self.max_episode_steps)):
            top = f"{self.max_episode_steps} (max_episode_steps)" if self.truncation else "no limit"
            why = ("step counters are never negative" if el.min() < 0 else
                   "a state from an env with a longer max_episode_steps cannot be restored here")
            raise ValueError(f"state.elapsed must lie in [0, {top}], got {el.tolist()}: {why}")
        if state.rng is None:
            never = ~self._started[ids]
            if never.any() and self.autoreset_mode is AutoresetMode.NEXT_STEP:
                raise ValueError(
                    f"envs {ids[never].tolist()} were never reset: call reset(seed=...) first (their next "
                    "episode, started by the autoreset inside step(), draws from the generator that reset "
                    "seeds), or pass a state taken with get_state(ids, rng=True)")
            return None
        if not isinstance(state.rng, (list, tuple)) or len(state.rng) != k:
            raise ValueError(f"state.rng must be a list of {k} bit_generator.state dicts (get_state(ids, rng=True)), "
                             f"got {_describe(state.rng)}")
        return [_bit_generator_of(g) for g in state.rng]

    def set_state(self, state: VRBState, env_ids: Any = None) -> None:
        """Write ``state`` row i into ``env_ids[i]`` (repeated rows clone one env into many).

        Everything is checked before anything is written (a refused call leaves the env untouched).
        Clears the done flags of those envs; rendered envs refill their frame stacks. With a state taken
        with ``rng=True``, the envs' generators continue from the saved ones (each env keeps its own
        ``Generator`` object where the bit generator type matches, so shared references follow).

        Raises:
            TypeError: ``state`` is not a :class:`VRBState`.
            ValueError: ``env_ids`` not distinct env indices; a state of another task id or config
                (``state.task_id``/``config_hash``, when set); physics rows not float64 ``(k, nstate)`` or
                not finite; task fields or ``elapsed`` not of the exact shapes and dtypes, or ``elapsed``
                outside ``[0, max_episode_steps]``; envs never reset (with ``NEXT_STEP`` autoreset, unless
                the state carries generators).
        """
        ids = self._env_ids(env_ids, distinct=True)
        generators = self._check_state(state, ids)
        self.state.set(state.task, ids)
        self.task.on_state_set(self.sim, self.state, ids)  # per-env model parameters follow the state
        self.sim.set_state(state.physics, ids)
        self._elapsed[ids] = state.elapsed
        self._done[ids] = False
        self._started[ids] = True
        if generators is not None:
            for i, bg in zip(ids, generators):
                g = self._rngs[i]
                if g is not None and type(g.bit_generator) is type(bg):
                    g.bit_generator.state = bg.state  # in place: the single env's np_random, agents' references
                else:
                    self._rngs[i] = np.random.Generator(bg)
        self._refresh(ids, fill_stack=True)

    def get_frame_stacks(self) -> list[np.ndarray]:
        """Copies of the frame stacks of the rendered envs, one ``(R, H, W, K*C)`` array per policy camera.

        Not part of :class:`VRBState` (branches never need images); an agent that
        checkpoints its rollout exactly saves them next to the state.
        """
        return [f.clone() if self.torch_pixels else f.copy() for f in self._frames]

    def set_frame_stacks(self, stacks: list[np.ndarray]) -> None:
        """Restore frame stacks from :meth:`get_frame_stacks` (after ``set_state``, which refills them)."""
        if len(stacks) != len(self._frames) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(stacks, self._frames)):
            raise ValueError(f"frame stacks of shapes {[tuple(a.shape) for a in stacks]} do not match the env's "
                             f"{[tuple(b.shape) for b in self._frames]}")
        dtypes = [str(a.dtype).replace("torch.", "") for a in stacks]
        if any(d != "uint8" for d in dtypes):
            raise ValueError(f"frame stacks must be uint8 images, as get_frame_stacks() returns them, got dtypes "
                             f"{dtypes} (a cast would wrap values outside 0-255)")
        for dst, src in zip(self._frames, stacks):
            if self.torch_pixels:
                import torch

                dst.copy_(torch.as_tensor(src))
            else:
                dst[...] = src

    def observe(self, env_ids: Any = None) -> dict[str, np.ndarray]:
        """Vector observations of ``env_ids`` recomputed from the current state (no step)."""
        ids = self._env_ids(env_ids)
        return {k: v.copy() for k, v in self._task_obs(ids).items()}  # never a view of task state

    def _task_obs(self, ids: np.ndarray, cast: bool = True) -> dict[str, np.ndarray]:
        obs = self.task.observe(self.sim, self.state, ids)
        dims, n, nd = self._obs_dims, len(ids), _NDARRAY
        if type(obs) is not dict or len(obs) != len(dims):
            self._bad_obs(obs, n)
        for k, d in dims.items():
            v = obs.get(k)
            if type(v) is not nd or v.shape != (n, d) or v.dtype.kind != "f":
                self._bad_obs(obs, n)
        return {k: v.astype(np.float32, copy=False) for k, v in obs.items()} if cast else obs

    def _bad_obs(self, obs: Any, n: int) -> None:
        """Raise the error that says what is wrong with ``Task.observe``'s output (after the cheap check failed)."""
        where = f"{type(self.task).__name__}.observe"
        if not isinstance(obs, dict):
            raise RuntimeError(f"{where} must return a dict of float arrays {sorted(self._obs_dims)}, got "
                               f"{_describe(obs)}")
        extra = sorted(set(obs) - set(self._obs_dims))
        if extra:
            raise RuntimeError(f"{where} returned undeclared keys {extra}: it returns exactly "
                               f"{sorted(self._obs_dims)} (the config's nonzero proprio_dim, privileged_dim, "
                               "height_scan_dim)")
        for k, d in self._obs_dims.items():
            v = obs.get(k)
            if not (isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.shape == (n, d)):
                raise RuntimeError(f"{where} returned {k!r} as "
                                   f"{'nothing' if k not in obs else _describe(v)}, expected a float array of "
                                   f"shape ({n}, {d}) (declared ({n}, {d}))")

    def _check_hook_outputs(self, raw: Any, ev: Any, n: int) -> None:
        """Cheap checks of ``reward_terms`` and ``evaluate`` outputs (a few attribute and shape comparisons per
        term, no per-element work); :meth:`_bad_hook_output` says what is wrong."""
        shape, nd = (n,), _NDARRAY
        if type(raw) is not dict or not isinstance(ev, Evaluation) or type(ev.metrics) is not dict:
            self._bad_hook_output(raw, ev, n)
        for v in raw.values():
            if (type(v) is not nd or v.shape != shape or v.dtype.kind not in "fiu") and _column_error(v, n):
                self._bad_hook_output(raw, ev, n)
        for v in ev.metrics.values():
            if (type(v) is not nd or v.shape != shape or v.dtype.kind not in "fiub") and _column_error(v, n, "fiub"):
                self._bad_hook_output(raw, ev, n)
        if ev.metrics.keys() != self._metric_names:
            self.task.check_metrics(ev.metrics)  # raises: the metrics are not the declared metric_names
        s, f = ev.success, ev.failure
        if (type(s) is not nd or type(f) is not nd or s.shape != shape or f.shape != shape
                or s.dtype.kind != "b" or f.dtype.kind != "b"):
            self._bad_hook_output(raw, ev, n)

    def _bad_hook_output(self, raw: Any, ev: Any, n: int) -> None:
        """Raise the error naming the task class, the hook, the term and what was expected."""
        name = type(self.task).__name__
        if not isinstance(raw, dict):
            raise RuntimeError(f"{name}.reward_terms must return a dict of named terms, got {_describe(raw)}")
        for k, v in raw.items():
            if _column_error(v, n):
                raise RuntimeError(f"{name}.reward_terms term {k!r} is {_column_error(v, n)}: expected a real "
                                   f"scalar or a float/int array of shape ({n},)")
        if not isinstance(ev, Evaluation):
            raise RuntimeError(f"{name}.evaluate must return an Evaluation, got {_describe(ev)}")
        for k in ("success", "failure"):
            v = getattr(ev, k)
            if not (isinstance(v, np.ndarray) and v.dtype.kind == "b" and v.shape == (n,)):
                raise RuntimeError(f"{name}.evaluate Evaluation.{k} is {_describe(v)}: expected a bool array of "
                                   f"shape ({n},)")
        if not isinstance(ev.metrics, dict):
            raise RuntimeError(f"{name}.evaluate Evaluation.metrics must be a dict, got {_describe(ev.metrics)}")
        for k, v in ev.metrics.items():
            if _column_error(v, n, "fiub"):
                raise RuntimeError(f"{name}.evaluate metric {k!r} is {_column_error(v, n, 'fiub')}: expected a "
                                   f"real scalar or a float/int/bool array of shape ({n},)")

    # ------------------------------------------------------------ step
    def _check_actions(self, actions: Any) -> tuple[np.ndarray, np.ndarray | None]:
        a = np.asarray(actions)
        expected = self._action_shape
        if a.dtype not in _ACTION_DTYPES and not _action_dtype_ok(a.dtype):
            raise ValueError(f"actions must be a real array of shape {expected}: float32, float64 or a dtype that "
                             f"casts to float32 exactly (float16, int8, ...), got dtype {a.dtype}")
        if a.shape != expected:
            raise ValueError(f"actions must have shape {expected} (num_envs, action_dim), got {a.shape}")
        a = a.astype(np.float32)  # a copy: the caller's array is never aliased by the task state
        clipped = np.zeros(self.num_envs) if self.action_bounds == "clip" else None
        if a.size == 0 or (-1.0 <= a.min() and a.max() <= 1.0):  # False for NaN, which min and max propagate
            return a, clipped
        if not np.isfinite(a).all():
            bad = sorted(set(np.argwhere(~np.isfinite(a))[:, 0].tolist()))
            raise ValueError(f"actions contain NaN or inf (envs {bad}); actions must be finite values in [-1, 1]")
        outside = np.abs(a) > 1.0 + ACTION_TOLERANCE
        if outside.any():
            if self.action_bounds == "raise":
                raise ValueError(
                    f"actions must lie in [-1, 1] (tolerance {ACTION_TOLERANCE:g}); got values in "
                    f"[{float(a.min()):.9g}, {float(a.max()):.9g}] "
                    f"(envs {sorted(set(np.argwhere(outside)[:, 0].tolist()))}). Pass action_bounds='clip' to clip."
                )
            clipped = outside.mean(axis=1)
        return np.clip(a, -1.0, 1.0, out=a), clipped

    def step(self, actions: Any):
        """Step every env; see the class docstring for the autoreset modes.

        With ``NEXT_STEP``, the envs that ended at the previous step start their new episode here and
        report its first observation, reward 0 and no termination. They are stepped with the rest (one
        physics call over all envs costs less than a call over a subset), then reset, which discards
        that step: their results are exactly those of a reset alone (``after_step`` skips them).
        """
        self._check_open()
        a, clipped = self._check_actions(actions)
        if not self._all_started:
            if not self._started.all():
                raise RuntimeError("call reset() before step()")
            self._all_started = True  # an env never becomes un-started
        any_restart = self._done.any()
        restarted = self._done.copy() if any_restart else self._done
        if any_restart and self.autoreset_mode is AutoresetMode.DISABLED:
            raise RuntimeError(
                f"envs {np.flatnonzero(restarted).tolist()} are done; with autoreset_mode=DISABLED reset them "
                "with reset(options={'reset_mask': mask}) or set_state() before stepping again"
            )
        ids, N = self._all_ids, self.num_envs
        self.task.apply_action(self.sim, self.state, a, ids)
        bad = self.sim.step(None, self.cfg.substeps)
        self._elapsed += 1
        raw = self.task.reward_terms(self.sim, self.state, a, ids)
        ev = self.task.evaluate(self.sim, self.state, ids)
        self._check_hook_outputs(raw, ev, N)
        if bad.any():
            raw = {k: np.where(bad, 0.0, v) for k, v in raw.items()}
        # new float64 (N,) arrays: never a view of task or physics state (restarted rows are zeroed below)
        terms = {k: _column(v, N) for k, v in raw.items()}
        # the float64 terms' sum in their order: exactly sum(info["reward_terms"].values()), float32 terms too
        rewards = _column(sum(terms.values()), N)
        metrics = {k: _column(v, N) for k, v in ev.metrics.items()}
        terminated = ev.failure | bad
        truncated = (self._elapsed >= self.max_episode_steps) & ~terminated if self.truncation else np.zeros(N, bool)
        success = ev.success & ~bad
        if any_restart:  # after_step only where the step counts (it may keep bookkeeping across episodes)
            live = np.flatnonzero(~restarted)
            if len(live):
                self.task.after_step(self.sim, self.state, a[live], live)
            reset_ids = np.flatnonzero(restarted)
            self._reset_ids(reset_ids, refresh=False)
            for arr in (rewards, *terms.values(), *metrics.values()):
                arr[reset_ids] = 0.0
            for flags in (terminated, truncated, success, bad):
                flags[reset_ids] = False
        else:
            self.task.after_step(self.sim, self.state, a, ids)
        # One observation pass (and one render call) for the stepped and the restarted envs together.
        self._refresh(ids, fill_stack=restarted)
        self._done = terminated | truncated
        info = self._info(terms, {"success": success, "metrics": metrics}, bad,
                          extra=None if clipped is None else {"action_clipped_fraction": clipped})
        return self._observation(), rewards, terminated, truncated, info

    # ------------------------------------------------------------ observations
    def _ensure_renderer(self) -> TiledRenderer | RenderPool:
        if self._renderer is None:
            n = max(1, len(self.render_env_ids))
            if self.backend == "warp":
                from ..render.warp_render import WarpRenderer

                self._renderer = WarpRenderer(self.model, self._views, n, self.cfg.render_profile,
                                              output="torch" if self.torch_pixels else "numpy")
            elif self.render_workers > 1:
                self._renderer = RenderPool(self.model, self._views, n, self.cfg.render_profile,
                                            workers=self.render_workers)
            else:
                self._renderer = TiledRenderer(self.model, self._views, n, self.cfg.render_profile)
        return self._renderer

    @property
    def renderer(self) -> TiledRenderer | RenderPool | None:
        """The policy-image renderer (``None`` until something is rendered)."""
        return self._renderer

    def _refresh(self, ids: np.ndarray, fill_stack: bool | np.ndarray) -> None:
        """Recompute vector observations of ``ids`` and render the rendered ones.

        ``fill_stack`` (one flag, or one per id): fill the frame stack with the new frame (a new
        episode) instead of dropping its oldest frame.
        """
        if len(ids) == 0:
            return
        obs = self._task_obs(ids, cast=False)
        rows = slice(None) if ids is self._all_ids else ids
        for k in self._vec:
            self._vec[k][rows] = obs[k]  # cast to float32 on assignment
        if not self._views:
            return
        rendered = self._slot[ids] >= 0
        rids = ids[rendered]
        if len(rids) == 0:
            return
        fill = np.broadcast_to(np.asarray(fill_stack, dtype=bool), ids.shape)[rendered]
        slot_ids = self._slot[rids]
        slots: slice | np.ndarray = slot_ids
        if len(slot_ids) == len(self.render_env_ids) and (np.diff(slot_ids) == 1).all():
            slots = slice(int(slot_ids[0]), int(slot_ids[-1]) + 1)  # all rendered envs in order: no fancy indexing
        renderer, start = self._ensure_renderer(), time.perf_counter()
        images = renderer.render(self.sim.state[rids])
        self.render_seconds += time.perf_counter() - start
        self.frames_rendered += len(rids)
        if self.torch_pixels:
            self._update_stacks_torch(images, slot_ids, fill)
            return
        for i, (v, img) in enumerate(zip(self._views, images)):
            if v.depth:
                far = self.cfg.camera(v.camera).depth_far
                img = np.round(np.clip(img / far, 0.0, 1.0) * 255.0).astype(np.uint8)[..., None]
            stack, c = self._frames[i], img.shape[-1]
            if fill.all():
                stack[slots] = np.tile(img, (1, 1, 1, self.cfg.frame_stack))
                continue
            if isinstance(slots, slice) and slots == slice(0, len(stack)):
                # Whole stack: one contiguous memmove by c bytes drops every pixel's oldest frame
                # (the byte that spills into the next pixel's newest slot is overwritten below),
                # then the new frame goes in as c-byte items (fast strided copy).
                flat = stack.reshape(-1)
                flat[:-c] = flat[c:]
                dtype = np.dtype((np.void, c))
                stack.view(dtype)[..., -1] = np.ascontiguousarray(img).view(dtype)[..., 0]
            else:
                stack[slots, :, :, :-c] = stack[slots, :, :, c:]  # drop the oldest frame
                stack[slots, :, :, -c:] = img
            if fill.any():  # new episodes among them: their stacks (shifted above) are refilled whole
                stack[slot_ids[fill]] = np.tile(img[fill], (1, 1, 1, self.cfg.frame_stack))

    def _update_stacks_torch(self, images: list[Any], slot_ids: np.ndarray, fill: np.ndarray) -> None:
        """:meth:`_refresh`'s frame-stack update on the device (``torch_pixels``): same layout and order."""
        import torch

        slots = torch.as_tensor(slot_ids, device=self._torch_device)
        fill_t = torch.as_tensor(fill, device=self._torch_device)
        K = self.cfg.frame_stack
        for i, (v, img) in enumerate(zip(self._views, images)):
            if v.depth:
                far = self.cfg.camera(v.camera).depth_far
                img = torch.round(torch.clamp(img / far, 0.0, 1.0) * 255.0).to(torch.uint8)[..., None]
            stack, c = self._frames[i], img.shape[-1]
            shifted = torch.cat([stack[slots][..., c:], img], dim=-1)  # drop the oldest frame, append the new one
            filled = img.repeat(1, 1, 1, K)  # a new episode: K copies of its first frame
            stack[slots] = torch.where(fill_t[:, None, None, None], filled, shifted)

    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {}
        for i, stack in enumerate(self._frames):
            if self.torch_pixels:
                obs[self.image_key(i)] = (stack.permute(0, 3, 1, 2).contiguous() if self.pixel_layout == "CHW"
                                          else stack.clone())
                continue
            obs[self.image_key(i)] = (np.ascontiguousarray(stack.transpose(0, 3, 1, 2)) if self.pixel_layout == "CHW"
                                      else stack.copy())
        for k, v in self._vec.items():
            if k in self.single_observation_space.spaces:
                obs[k] = v.copy()
        return obs

    def _info(self, terms, evaluation, bad, mask: np.ndarray | None = None,
              extra: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        """The step's ``info``: every top-level key ``k`` (``extra`` ones included) with its mask ``_k``, as
        Gymnasium's vector envs write them: ``mask`` (default: every env). ``reward_terms`` and ``metrics`` hold a
        value for every env at every step and no ``_k`` masks (Gymnasium would nest them), so that
        ``sum(info["reward_terms"].values())`` is the reward."""
        N = self.num_envs
        info: dict[str, Any] = {
            "elapsed_steps": self._elapsed.copy(),
            "success": np.zeros(N, bool) if evaluation is None else evaluation["success"],
            "physics_error": np.zeros(N, bool) if bad is None else bad,
        }
        info["is_success"] = info["success"].copy()
        for k in ("privileged", "height_scan"):  # a task may declare neither (privileged_dim 0)
            if k in self._vec:
                info[k] = self._vec[k].copy()
        if terms is not None:
            info["reward_terms"] = terms
        if evaluation is not None and evaluation["metrics"]:
            info["metrics"] = evaluation["metrics"]
        info.update(extra or {})
        keys = list(info)
        rows = np.ones((len(keys), N), dtype=bool) if mask is None else np.tile(mask, (len(keys), 1))
        for k, row in zip(keys, rows):  # one allocation, a row per key
            info[f"_{k}"] = row
        return info

    # ------------------------------------------------------------ human view
    def render(self) -> tuple[np.ndarray, ...] | None:
        """Human-facing images, one per env as Gymnasium's vector envs return them (so its vector wrappers, e.g.
        ``RecordVideo``, work): a tuple of ``num_envs`` ``(H, W, 3)`` uint8 images at ``render_size`` from the
        ``render_camera`` (depth ``(H, W)`` float32 metres with ``render_mode="depth_array"``).

        Every env is drawn, whatever ``render_env_ids`` (which chooses the policy images only), in one batched
        call; :meth:`render_envs` draws a subset.
        """
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array' to gym.make")
            return None
        return tuple(self.render_envs(None))

    def render_envs(self, env_ids: Any = None) -> np.ndarray | None:
        """Human-facing images of ``env_ids`` (default: every env) as one array, ``(k, H, W, 3)`` (depth
        ``(k, H, W)``), e.g. a video of env 0 alone: ``env.render_envs([0])[0]``.

        Raises:
            ValueError: ``env_ids`` not distinct env indices.
        """
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array' to gym.make")
            return None
        self._check_open()
        ids = self._env_ids(env_ids, "env_ids", distinct=True)
        if self._viewer is None:  # built for every env: any subset renders in one call
            h, w = self.cfg.render_size
            view = View(self.cfg.render_camera or self.cfg.policy_cameras[0], h, w, depth=self.render_mode == "depth_array")
            if self.backend == "warp":
                from ..render.warp_render import WarpRenderer

                self._viewer = WarpRenderer(self.model, [view], self.num_envs, self.cfg.render_profile)
            else:
                self._viewer = TiledRenderer(self.model, [view], self.num_envs, self.cfg.render_profile)
        return self._viewer.render(self.sim.state[ids])[0]

    def close_extras(self, **kwargs: Any) -> None:
        """Free GL resources."""
        for r in (self._renderer, self._viewer):
            if r is not None:
                r.close()
        self._renderer = self._viewer = None
