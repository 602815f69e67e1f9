"""Throughput benchmark: the native vector env against its ceilings and its peers.

All stages run in one process with the same task, image size and number of envs:

1. ``vrb physics-only``: the vector env with ``obs_mode="state"`` (never renders).
2. ``vrb pixels``: the visual vector env (renders every env at every step).
3. ``raw mujoco.batch (ceiling)``: ``mujoco.batch.Batch`` stepping the same model.
4. ``raw tiled render (ceiling)``: the env's own tiled renderer, rendering only.
5. ``dm_control pixels wrapper``: the matching dm_control suite task, one env.
6. ``gymnasium rgb_array``: the matching Gymnasium MuJoCo env, one env.

Each stage runs 2 warm-up iterations, then iterates for at least ``seconds``. Stages 1 and 3 alternate in
chunks of about :data:`CHUNK_S` seconds each until both have run ``seconds``: a virtual machine's speed drifts
by 20-30 % within minutes, and stages run one after the other gave physics-only / raw ratios up to 0.1 apart
between runs; alternated, both loops meet the same drift. The others run one after the other.
Peak memory is ``ru_maxrss`` read after each stage: a running maximum over the
process, so a row shows the peak reached *so far*, not that stage's own usage.

Then the same run measures VRB's envs with Gymnasium's own utilities (``gymnasium.utils.performance``, the
conventions' comparable figures; :func:`_bench_gymnasium_utils`), each for ``seconds``:

7. ``benchmark_vector_step`` on the pixel vector env and on the physics-only one (``obs_mode="state"``);
8. ``benchmark_step`` on the single env (``gym.make``, with Gymnasium's wrappers);
9. ``benchmark_render`` on the single env (``render_mode="rgb_array"``: the human view, ``render_size``).

They report env steps/s (``benchmark_vector_step`` already counts every env of a vector step, minus the envs
that are only being autoreset) and ``render()`` calls/s.

:func:`observation_nbytes` and :func:`default_observation_space` give the memory figure of a task: the bytes of
one observation of its registered default (``vrb info``, ``vrb list``, the README's task table).
"""

from __future__ import annotations

import math
import os
import platform
import resource
import time
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np
from tqdm import tqdm

from .render import gl

WARMUP = 2
#: Seconds per chunk when loops alternate (:func:`_alternate`).
CHUNK_S = 0.05

# Peer environments of each task family (matched on the task id's name).
DM_CONTROL_PEERS: dict[str, tuple[str, str] | None] = {
    "Walker": ("walker", "walk"),
    "WalkerHurdle": ("walker", "walk"),
    "Hopper": ("hopper", "hop"),
    "Humanoid": ("humanoid", "run"),
    "Ant": None,  # dm_control's suite has no ant
}
GYMNASIUM_PEERS: dict[str, str] = {
    "Walker": "Walker2d-v5",
    "WalkerHurdle": "Walker2d-v5",
    "Hopper": "Hopper-v5",
    "Ant": "Ant-v5",
    "Humanoid": "Humanoid-v5",
}


def _family(task_id: str) -> str:
    """``"VRB/WalkerHurdle-v0"`` -> ``"WalkerHurdle"``."""
    return task_id.rsplit("/", 1)[-1].rsplit("-v", 1)[0]


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (``ru_maxrss`` is KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _time_loop(fn: Callable[[], Any], seconds: float, desc: str) -> tuple[int, float]:
    """Call ``fn`` twice to warm up, then repeatedly for at least ``seconds``.

    Args:
        fn: One iteration.
        seconds: Minimum measured duration.
        desc: Progress bar label.

    Returns:
        ``(iterations, elapsed_seconds)`` of the measured part.
    """
    return _alternate({desc: fn}, seconds, desc)[desc]


def _alternate(loops: dict[str, Callable[[], Any]], seconds: float, desc: str) -> dict[str, tuple[int, float]]:
    """Warm each loop up (2 calls), then run them in turn, in chunks of ~``CHUNK_S`` s, until each ran ``seconds``.

    Args:
        loops: One iteration of each loop, by name.
        seconds: Minimum measured duration of each loop.
        desc: Progress bar label.

    Returns:
        ``(iterations, elapsed_seconds)`` of each loop's measured part, by name.
    """
    chunks = {}
    for name, fn in loops.items():
        for _ in range(WARMUP - 1):
            fn()
        start = time.perf_counter()
        fn()  # the last warm-up call sizes the chunks
        chunks[name] = max(1, int(CHUNK_S / max(time.perf_counter() - start, 1e-9)))
    done = {name: (0, 0.0) for name in loops}
    bar = tqdm(total=round(seconds, 1), desc=desc, unit="s", leave=False,
               bar_format="{desc}: {bar}| {n:.1f}/{total:.1f}s {postfix}")
    while min(elapsed for _, elapsed in done.values()) < seconds:
        for name, fn in loops.items():
            iters, elapsed = done[name]
            start = time.perf_counter()
            for _ in range(chunks[name]):
                fn()
            done[name] = (iters + chunks[name], elapsed + time.perf_counter() - start)
        least = min(elapsed for _, elapsed in done.values())
        bar.update(min(least, seconds) - bar.n)
        bar.set_postfix_str(" | ".join(f"{iters / elapsed:.1f} it/s" for iters, elapsed in done.values()),
                            refresh=False)
    bar.close()
    return done


#: ``source`` of the rows timed by this module's own loops, and of those measured by Gymnasium's utilities.
SOURCE_VRB = "vrb"
SOURCE_GYMNASIUM_UTILS = "gymnasium.utils.performance"

#: Names of the rows measured with ``gymnasium.utils.performance`` (:func:`_bench_gymnasium_utils`), in order.
GYMNASIUM_UTILS_ROWS = (
    "benchmark_vector_step, pixels",
    "benchmark_vector_step, physics-only",
    "benchmark_step, single env",
    "benchmark_render, single env",
)


def _row(name: str, env_steps_per_s: float | None, frames_per_s: float | None, note: str = "",
         source: str = SOURCE_VRB) -> dict[str, Any]:
    return {
        "name": name,
        "env_steps_per_s": env_steps_per_s,
        "frames_per_s": frames_per_s,
        "peak_rss_mb": _peak_rss_mb(),
        "ratio_vs_raw": None,
        "ratio_vs_dm_control": None,
        "ratio_vs_gymnasium": None,
        "note": note,
        "source": source,
    }


def _random_actions(space_shape: tuple[int, ...], seed: int = 0, count: int = 16) -> list[np.ndarray]:
    """A few pre-drawn uniform [-1, 1] action batches (so sampling is not timed)."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.0, 1.0, size=space_shape).astype(np.float32) for _ in range(count)]


def _env_loop(env: Any) -> Callable[[], None]:
    """One step of a reset ``VRBVectorEnv`` with pre-drawn random actions per call."""
    actions = _random_actions(env.action_space.shape)
    i = [0]

    def step() -> None:
        env.step(actions[i[0] % len(actions)])
        i[0] += 1

    return step


def _bench_vector_env(task_id: str, num_envs: int, seconds: float, name: str, **kwargs: Any) -> tuple[dict, Any]:
    """Step a ``VRBVectorEnv`` with random actions; returns its row and the (open) env."""
    import gymnasium as gym

    env = gym.make_vec(task_id, num_envs=num_envs, **kwargs)
    env.reset(seed=0)
    iters, elapsed = _time_loop(_env_loop(env), seconds, name)
    steps = iters * num_envs / elapsed
    frames = steps * len(env.cfg.policy_cameras) if kwargs.get("obs_mode", "visual") == "visual" else None
    return _row(name, steps, frames), env


def _raw_batch_loop(env: Any) -> tuple[Callable[[], None], Any]:
    """``mujoco.batch.Batch`` of the env's model, ``cfg.substeps`` sub-steps per call, random ctrl.

    Returns:
        ``(step, batch)``: one call of the loop, and the batch (delete it when done: it holds threads).
    """
    import mujoco
    import mujoco.batch

    n, nthread = env.num_envs, env.sim.nthread
    batch = mujoco.batch.Batch(env.model, nsim=n, nthread=nthread, persistent=True)
    ctrl = batch.bind("ctrl")
    lo, hi = env.model.actuator_ctrlrange[:, 0], env.model.actuator_ctrlrange[:, 1]
    rng = np.random.default_rng(0)
    ctrls = [rng.uniform(lo, hi, size=(n, env.model.nu)) for _ in range(16)]
    i = [0]
    substeps = env.cfg.substeps

    def step() -> None:
        ctrl[:] = ctrls[i[0] % len(ctrls)]
        try:
            batch.step(None, nstep=substeps)
        except mujoco.batch.SimulationError:
            pass  # a diverging sim is reset by MuJoCo; irrelevant for throughput
        i[0] += 1

    return step, batch


def _bench_physics(task_id: str, num_envs: int, seconds: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The physics-only env and the raw ``mujoco.batch`` loop on its model, alternating (:func:`_alternate`).

    Returns:
        The ``vrb physics-only`` row and the ``raw mujoco.batch (ceiling)`` row.
    """
    import gymnasium as gym

    env = gym.make_vec(task_id, num_envs=num_envs, obs_mode="state")
    env.reset(seed=0)
    raw_step, batch = _raw_batch_loop(env)
    names = ("vrb physics-only", "raw mujoco.batch (ceiling)")
    done = _alternate(dict(zip(names, (_env_loop(env), raw_step))), seconds, " | ".join(names))
    note = f"nthread={env.sim.nthread}, nstep={env.cfg.substeps}"
    env.close()
    del batch
    (env_iters, env_s), (raw_iters, raw_s) = done[names[0]], done[names[1]]
    return (_row(names[0], env_iters * num_envs / env_s, None, note="alternated with the raw loop"),
            _row(names[1], raw_iters * num_envs / raw_s, None, note=note))


def _bench_raw_render(env: Any, seconds: float) -> dict[str, Any]:
    """The env's ``TiledRenderer`` rendering the current states only."""
    renderer = env.renderer
    name = "raw tiled render (ceiling)"
    if renderer is None:
        return _row(name, None, None, note="no renderer")
    states = env.sim.state
    iters, elapsed = _time_loop(lambda: renderer.render(states), seconds, name)
    frames = iters * len(states) * len(renderer.views) / elapsed
    return _row(name, None, frames, note="render only")


def _bench_dm_control(task_id: str, size: tuple[int, int], seconds: float) -> dict[str, Any]:
    """dm_control's pixel wrapper on the matching suite task (one sequential env)."""
    name = "dm_control pixels wrapper"
    peer = DM_CONTROL_PEERS.get(_family(task_id))
    if peer is None:
        return _row(name, None, None, note="no dm_control peer")
    from dm_control import suite
    from dm_control.suite.wrappers import pixels

    domain, task = peer
    h, w = size
    env = pixels.Wrapper(suite.load(domain, task, task_kwargs={"random": 0}), pixels_only=False,
                         render_kwargs={"height": h, "width": w, "camera_id": 0})
    spec = env.action_spec()
    rng = np.random.default_rng(0)
    env.reset()

    def step() -> None:
        ts = env.step(rng.uniform(spec.minimum, spec.maximum, size=spec.shape))
        if ts.last():
            env.reset()

    iters, elapsed = _time_loop(step, seconds, name)
    env.close()
    rate = iters / elapsed
    return _row(name, rate, rate, note=f"{domain}-{task}, 1 env")


def _bench_gymnasium(task_id: str, size: tuple[int, int], seconds: float) -> dict[str, Any]:
    """Gymnasium's MuJoCo env of the same robot: ``step`` + ``render()`` (one env)."""
    import gymnasium as gym

    name = "gymnasium rgb_array"
    env_id = GYMNASIUM_PEERS.get(_family(task_id))
    if env_id is None:
        return _row(name, None, None, note="no gymnasium peer")
    h, w = size
    env = gym.make(env_id, render_mode="rgb_array", width=w, height=h)
    env.reset(seed=0)
    env.action_space.seed(0)

    def step() -> None:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        env.render()
        if term or trunc:
            env.reset()

    iters, elapsed = _time_loop(step, seconds, name)
    env.close()
    rate = iters / elapsed
    return _row(name, rate, rate, note=f"{env_id}, 1 env")


@contextmanager
def _stage(desc: str, seconds: float) -> Iterator[None]:
    """A progress line for a stage timed by someone else's loop (shown while it runs, removed after)."""
    bar = tqdm(total=1, desc=desc, leave=False, bar_format=f"{{desc}}: ~{seconds:g} s (gymnasium.utils.performance)")
    try:
        yield
    finally:
        bar.close()


def _bench_gymnasium_utils(task_id: str, num_envs: int, seconds: float,
                           overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """VRB's envs measured by Gymnasium's own utilities (``gymnasium.utils.performance``), ``seconds`` each.

    The utilities' own loops, as any Gymnasium env would be measured (comparable figures, conventions.md 4):

    - ``benchmark_vector_step(env, seconds, seed=0)`` on ``gym.make_vec(task_id, num_envs)`` (pixels, with
      ``overrides``) and on the physics-only ``obs_mode="state"`` env. It seeds the action space and resets with
      seed 0, steps once and resets again outside the timing, then samples a batched action and steps until
      ``seconds`` have passed (``time.time``). It returns **env steps/s**: ``num_envs`` per vector step, less
      the envs whose step was only an autoreset (``NEXT_STEP``, VRB's default), so no conversion is needed.
      Action sampling is inside its timing (VRB's own loop pre-draws the actions).
    - ``benchmark_step(env, seconds, seed=0)`` on ``gym.make(task_id, render_mode="rgb_array")``: the single env
      with the wrappers ``gym.make`` adds (``TimeLimit``, order enforcing, passive checker). It resets with seed
      0 outside the timing (it does not seed the action space: done here), then samples, steps, and resets
      inside the timing when an episode ends. Env steps/s (one env: calls/s); each step renders the policy
      cameras, as the pixel vector env does.
    - ``benchmark_render(env, seconds)`` on the same single env after ``reset(seed=0)`` and one warm-up
      ``render()`` (the first builds the renderer): ``render()`` calls/s of the same state, each one
      ``render_size`` image from the ``render_camera`` (the human view, not the policy cameras). Shown as
      frames/s.

    Args:
        task_id: Registered task id.
        num_envs: Envs of the vector envs.
        seconds: ``target_duration`` of each utility.
        overrides: Task config overrides of the pixel envs (``image_size``).

    Returns:
        The rows named :data:`GYMNASIUM_UTILS_ROWS`, with ``source`` :data:`SOURCE_GYMNASIUM_UTILS`; ratios
        are ``None``.
    """
    import gymnasium as gym
    from gymnasium.utils.performance import benchmark_render, benchmark_step, benchmark_vector_step

    names = dict(zip(("vector pixels", "vector state", "step", "render"), GYMNASIUM_UTILS_ROWS))
    rows = []
    for key, kwargs, mode in (("vector pixels", overrides, ""),
                              ("vector state", {"obs_mode": "state"}, ", obs_mode='state'")):
        env = gym.make_vec(task_id, num_envs=num_envs, **kwargs)
        try:
            with _stage(names[key], seconds):
                rate = benchmark_vector_step(env, target_duration=seconds, seed=0)
        finally:
            env.close()
        rows.append(_row(names[key], rate, None, source=SOURCE_GYMNASIUM_UTILS,
                         note=f"gym.make_vec, N={num_envs}{mode}; autoreset steps not counted"))
    env = gym.make(task_id, render_mode="rgb_array", **overrides)
    try:
        env.action_space.seed(0)
        with _stage(names["step"], seconds):
            rate = benchmark_step(env, target_duration=seconds, seed=0)
        rows.append(_row(names["step"], rate, None, source=SOURCE_GYMNASIUM_UTILS,
                         note="gym.make (with its wrappers), 1 env; resets inside the timing"))
        env.reset(seed=0)
        frame = env.render()  # warm-up: the first render() builds the renderer
        with _stage(names["render"], seconds):
            rate = benchmark_render(env, target_duration=seconds)
        cfg = env.unwrapped.vector_env.cfg
        camera = cfg.render_camera or cfg.policy_cameras[0]
        rows.append(_row(names["render"], None, rate, source=SOURCE_GYMNASIUM_UTILS,
                         note=f"same env, render_mode='rgb_array': one {frame.shape[0]}x{frame.shape[1]} image of "
                              f"camera {camera!r}"))
    finally:
        env.close()
    return rows


def run_bench(task_id: str, num_envs: int = 64, seconds: float = 3.0,
              image_size: int | tuple[int, int] | None = None, gymnasium_utils: bool = True) -> list[dict[str, Any]]:
    """Measure env steps/s and frames/s of ``task_id`` and its ceilings and peers.

    Args:
        task_id: Registered task id, e.g. ``"VRB/Walker-v1"``.
        num_envs: Number of envs N of the batched stages (peers run one env).
        seconds: Minimum measured duration of each stage (after 2 warm-ups).
        image_size: Policy image size (an int for square images, or ``(H, W)``);
            default: the task's. Peers render at the same size.
        gymnasium_utils: Also measure the envs with ``gymnasium.utils.performance`` (4 more stages of
            ``seconds`` each, :func:`_bench_gymnasium_utils`).

    Returns:
        One dict per stage with ``name``, ``env_steps_per_s``, ``frames_per_s``,
        ``peak_rss_mb`` (running maximum of the process), ``ratio_vs_raw`` (the ceiling: vrb
        physics-only steps/s over the raw ``mujoco.batch`` loop's, vrb pixels frames/s over the raw
        tiled render's), ``ratio_vs_dm_control`` and ``ratio_vs_gymnasium`` (``frames_per_s`` over the
        peer's, where both exist), ``note`` and ``source`` (:data:`SOURCE_VRB`, or
        :data:`SOURCE_GYMNASIUM_UTILS` for the rows :data:`GYMNASIUM_UTILS_ROWS`, which come last and have
        no ratios). Values that do not apply are ``None``.

    Raises:
        KeyError: Unknown task id.
        ValueError: Bad ``num_envs``, ``seconds`` or ``image_size``.
    """
    gl.select_backend()  # exports MUJOCO_GL before dm_control / gymnasium rendering is imported
    from .registry import get_task

    entry = get_task(task_id)
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be a finite number > 0, got {seconds}")
    overrides: dict[str, Any] = {}
    if image_size is not None:
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        overrides["image_size"] = size
    else:
        size = tuple(entry.config.image_size)

    physics, raw_batch = _bench_physics(entry.id, num_envs, seconds)
    pixels, env = _bench_vector_env(entry.id, num_envs, seconds, "vrb pixels", **overrides)
    raw_render = _bench_raw_render(env, seconds)
    env.close()
    dm_control = _bench_dm_control(entry.id, size, seconds)
    gymnasium = _bench_gymnasium(entry.id, size, seconds)
    rows = [physics, pixels, raw_batch, raw_render, dm_control, gymnasium]

    def ratio(value: float | None, reference: float | None) -> float | None:
        return value / reference if value is not None and reference else None

    physics["ratio_vs_raw"] = ratio(physics["env_steps_per_s"], raw_batch["env_steps_per_s"])
    pixels["ratio_vs_raw"] = ratio(pixels["frames_per_s"], raw_render["frames_per_s"])
    for r in rows:
        r["ratio_vs_dm_control"] = ratio(r["frames_per_s"], dm_control["frames_per_s"])
        r["ratio_vs_gymnasium"] = ratio(r["frames_per_s"], gymnasium["frames_per_s"])
    if gymnasium_utils:
        rows += _bench_gymnasium_utils(entry.id, num_envs, seconds, overrides)
    return rows


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return None


def gl_renderer_string() -> str:
    """``"<renderer> (<backend>)"`` of a fresh offscreen context, or the error."""
    try:
        ctx = gl.make_context(16, 16)
    except Exception as err:  # noqa: BLE001 - informational only
        return f"unavailable ({err})"
    try:
        info = gl.renderer_info()
    finally:
        ctx.free()
    if "error" in info:
        return f"unknown ({info['error']})"
    return f"{info['renderer']} ({info['backend']}, OpenGL {info['version']})"


def _gpus() -> str:
    """The CUDA GPU models of this machine (``"none"`` when none is found; torch is not imported for it)."""
    try:
        from .evaluation.results import gpu_names

        names = gpu_names()
    except Exception as err:  # noqa: BLE001 - informational only
        return f"unknown ({err})"
    return ", ".join(names) if names else "none"


def machine_description() -> dict[str, Any]:
    """CPU model, cores, RAM, GPU, Python, MuJoCo, Gymnasium and NumPy versions and GL renderer of this machine
    (what conventions.md 4 asks every performance figure to state)."""
    import gymnasium
    import mujoco

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        usable = os.cpu_count()
    ram = _ram_gb()
    return {
        "cpu": _cpu_model(),
        "cores": f"{usable} usable / {os.cpu_count()} total",
        "ram": f"{ram:.1f} GB" if ram else "unknown",
        "gpu": _gpus(),
        "python": platform.python_version(),
        "mujoco": mujoco.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
        "gl_renderer": gl_renderer_string(),
    }


# ------------------------------------------------------------------------- observation memory
#: Observations in the replay-buffer figure (:func:`buffer_gb`): SB3's default ``buffer_size``.
BUFFER_OBSERVATIONS = 1_000_000


def observation_nbytes(space: Any) -> int:
    """Bytes of one sample of ``space``: the sum over its leaves of (number of elements) x (dtype itemsize).

    Args:
        space: A ``gymnasium.spaces`` space of fixed shape and dtype (``Box``, ``Discrete``, ...), or a ``Dict``
            or ``Tuple`` of them.

    Returns:
        The bytes one observation drawn from ``space`` holds (numpy ``nbytes``).

    Raises:
        TypeError: A space without a fixed shape and dtype (``Text``, ``Graph``, ``Sequence``).
    """
    from gymnasium import spaces

    if isinstance(space, spaces.Dict):
        return sum(observation_nbytes(s) for s in space.spaces.values())
    if isinstance(space, spaces.Tuple):
        return sum(observation_nbytes(s) for s in space.spaces)
    shape, dtype = getattr(space, "shape", None), getattr(space, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(f"{type(space).__name__} has no fixed shape and dtype, so its observations have no fixed "
                        "size in bytes")
    return math.prod(shape) * np.dtype(dtype).itemsize


def default_spaces(task_id: str) -> tuple[Any, Any]:
    """The observation and action spaces of one env of ``task_id``'s registered default (``gym.make(task_id)``'s).

    The default is the visual mode with the task's image size, frame stack and policy cameras and
    ``privileged=False``: ``pixels`` (and ``pixels_<camera>``) uint8 frame stacks plus ``proprio`` float32. The
    ``privileged`` and ``height_scan`` keys (``privileged=True`` or ``obs_mode="state"``) and ``info`` are not
    observations of the default. The env is built without rendering anything (no GL context) and closed.

    Args:
        task_id: Registered task id.

    Returns:
        ``(observation_space, action_space)``: a ``gymnasium.spaces.Dict`` and a ``Box``.

    Raises:
        KeyError: Unknown task id.
        visual_robo_bench.models.ModelNotFoundError: The task's robot model is not available here.
    """
    from .envs import VRBVectorEnv

    with warnings.catch_warnings():  # a deprecated id's notice: its spaces are asked for, not its env
        warnings.simplefilter("ignore")
        env = VRBVectorEnv(task_id, num_envs=1, nthread=1)
    try:
        return env.single_observation_space, env.single_action_space
    finally:
        env.close()


def default_observation_space(task_id: str) -> Any:
    """The observation space of one env of ``task_id``'s registered default (see :func:`default_spaces`).

    Raises:
        KeyError: Unknown task id.
        visual_robo_bench.models.ModelNotFoundError: The task's robot model is not available here.
    """
    return default_spaces(task_id)[0]


def buffer_gb(nbytes: int, observations: int = BUFFER_OBSERVATIONS) -> float:
    """Decimal gigabytes (1e9 bytes) that ``observations`` observations of ``nbytes`` bytes each take."""
    return nbytes * observations / 1e9
