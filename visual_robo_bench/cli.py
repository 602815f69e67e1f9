"""The ``vrb`` command line: list, inspect, render, benchmark and check tasks.

Examples::

    vrb list
    vrb info VRB/Walker-v1
    vrb render VRB/Walker-v1 --out walker.mp4 --steps 200
    vrb bench VRB/Walker-v1 --num-envs 64
    vrb doctor
    vrb list --module their_module     # also a third-party package's tasks (as does their_module:Lab/Task-v0)
    vrb train --agent sdpg --task VRB/Walker-v1 --set num_nominal=4
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

def _console(stderr: bool = False) -> Console:
    """A rich console; output that is not a terminal is laid out 120 columns wide (unless $COLUMNS)."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if os.environ.get("COLUMNS") or stream.isatty() else 120
    return Console(stderr=stderr, width=width)


console = _console()
err_console = _console(stderr=True)

#: Video files ``vrb render --out`` and ``vrb evaluate --video`` write (both writers handle these).
VIDEO_SUFFIXES = (".mp4", ".gif")
IMAGE_SUFFIXES = (".png",)


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit code 2 (bad input) or 1."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------- helpers
def _cwd_importable() -> None:
    """Make modules in the working directory importable, as ``python -m`` does (a third-party task package, a
    ``--policy`` module): every command that imports a user's module by name goes through here."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def _entry(task_id: str):
    """The registry entry of ``task_id``; unknown ids become a :class:`CLIError` (exit 2).

    ``their_module:Lab/Task-v0`` imports ``their_module`` first, from the working directory too (as ``vrb list
    --module their_module`` does).
    """
    from .registry import get_task

    if ":" in task_id:
        _cwd_importable()
    try:
        return get_task(task_id)
    except KeyError as err:
        raise CLIError(str(err.args[0]) if err.args else str(err), code=2) from None


def _import_modules(modules: Sequence[str] | None) -> None:
    """Import the ``--module`` packages (which register their tasks); failures become a :class:`CLIError` (exit 2).

    ``their_module:Lab/Task-v0`` is accepted too (the module part is imported), like the task argument of
    the other commands; modules in the working directory are importable, as with ``python -m``.
    """
    from .registry import import_task_module

    if modules:
        _cwd_importable()
    for module in modules or ():
        name = module.split(":", 1)[0]
        if not name:
            raise CLIError(f"--module needs a module name, got {module!r}", code=2)
        try:
            import_task_module(name, "(--module)")
        except KeyError as err:
            raise CLIError(str(err.args[0]), code=2) from None


def _or_list(items: Sequence[str]) -> str:
    """``".png, .mp4 or .gif"``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _check_suffix(path: str, flag: str, suffixes: Sequence[str]) -> str:
    """The lower-case suffix of an output file, which must be one of ``suffixes`` (the file type comes from it).

    Raises:
        CLIError: (exit 2) Another suffix, or none.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in suffixes:
        raise CLIError(f"{flag} must end in {_or_list(suffixes)} (the file type comes from it), got "
                       f"{Path(path).name!r}", code=2)
    return suffix


def _check_writable(path: str, flag: str) -> Path:
    """Refuse an output file that cannot be written, before any long work (rollouts, evaluations).

    The file must not be a directory, and its nearest existing ancestor directory must take a new file (the
    missing directories between are created when the file is written): a probe file is made there and removed
    at once, so nothing is left behind.

    Args:
        path: The output file.
        flag: Its option (``--out``), for the message.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        CLIError: (exit 2) The file cannot be written there; says what to do.
    """
    import tempfile

    out = Path(path)
    fix = "choose a file in a directory you can write to"
    existing = out.absolute().parent
    try:
        if out.is_dir():
            raise CLIError(f"{flag} {path} is a directory; name a file in it", code=2)
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise CLIError(f"{flag} {path} cannot be written: {existing} is a file, not a directory; {fix}", code=2)
        with tempfile.TemporaryFile(dir=existing, prefix=".vrb-write-check-"):
            pass
    except OSError as err:
        raise CLIError(f"{flag} {path} cannot be written: no file can be created in {existing} "
                       f"({err.strerror or err}); {fix}", code=2) from None
    return out


def _control_hz(cfg: Any) -> float:
    return 1.0 / (cfg.timestep * cfg.substeps)


def _fmt(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def _space_figures(entry: Any) -> tuple[int | None, int | None]:
    """Action dimension and bytes per observation of the registered default, from one env's spaces (the model
    is compiled; nothing is simulated or rendered). ``(None, None)`` when the env cannot be built."""
    from .bench import default_spaces, observation_nbytes

    try:
        obs_space, action_space = default_spaces(entry.id)
        return int(action_space.shape[0]), observation_nbytes(obs_space)
    except Exception:  # noqa: BLE001 - a broken third-party task (or a missing model) must not break `vrb list`
        return None, None


def _observation_rows(task_id: str) -> list[tuple[str, str]]:
    """``vrb info``'s rows on observation memory: the bytes of one default observation, key by key, and what
    a replay buffer of :data:`~visual_robo_bench.bench.BUFFER_OBSERVATIONS` of them takes (conventions.md 3.2).

    Raises:
        visual_robo_bench.models.ModelNotFoundError: The task's robot model is not available here.
    """
    from .bench import BUFFER_OBSERVATIONS, buffer_gb, default_observation_space, observation_nbytes

    space = default_observation_space(task_id)
    total = observation_nbytes(space)
    parts = " + ".join(f"{key} {'x'.join(map(str, s.shape))} {s.dtype} {observation_nbytes(s):,}"
                       for key, s in space.spaces.items())
    million = f"{BUFFER_OBSERVATIONS / 1e6:g}M"
    return [
        ("bytes / observation", f"{total:,} = {parts} (the default: privileged=False; the privileged and "
                                f"height_scan keys and info are not observations, not counted)"),
        (f"{million} observations", f"{buffer_gb(total):.1f} GB (1 GB = 1e9 bytes); stable-baselines3's "
                                    f"DictReplayBuffer stores obs and next_obs (optimize_memory_usage is not "
                                    f"available for Dict observations): {buffer_gb(2 * total):.1f} GB for "
                                    f"{million} transitions, before actions and rewards"),
    ]


# ------------------------------------------------------------------------- list / info
def cmd_list(args: argparse.Namespace) -> int:
    """Print a table of every registered task (with ``--module``: also those its packages register)."""
    from .registry import get_task, list_tasks

    _import_modules(getattr(args, "module", None))

    table = Table(title="Registered tasks", caption="actions: action dim; stack: frame stack; "
                  "steps: max episode steps; Hz: control rate; cameras: policy cameras; obs bytes: one observation "
                  "of the default (uint8 pixels of every policy camera + float32 proprio; privileged keys and info "
                  "not counted); 1M observations take obs bytes x 1e6 (vrb info TASK)")
    table.add_column("id", no_wrap=True)
    for col in ("actions", "image", "stack", "steps", "Hz", "cameras", "obs bytes"):
        table.add_column(col, justify="left" if col == "cameras" else "right", no_wrap=True)
    table.add_column("summary", overflow="fold", ratio=1)
    for task_id in list_tasks():
        entry = get_task(task_id)
        cfg = entry.config
        adim, nbytes = (None, None) if args.no_model else _space_figures(entry)
        table.add_row(
            task_id,
            "-" if adim is None else str(adim),
            "x".join(str(s) for s in cfg.image_size),
            str(cfg.frame_stack),
            str(cfg.max_episode_steps),
            f"{_control_hz(cfg):g}",
            ", ".join(cfg.policy_cameras),
            "-" if nbytes is None else f"{nbytes:,}",
            entry.summary,
        )
    console.print(table)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Print a task's documentation, config values and config hash."""
    entry = _entry(args.task)
    doc = inspect.cleandoc(entry.task_cls.__doc__ or "(no documentation)")
    console.print(f"[bold]{entry.id}[/bold]  ({entry.task_cls.__module__}.{entry.task_cls.__name__})\n")
    console.print(doc, markup=False, highlight=False, soft_wrap=True)
    table = Table(title=f"{type(entry.config).__name__}", show_header=True)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    cfg = entry.config
    for key, value in cfg.to_dict().items():
        if key == "cameras":
            value = "; ".join(f"{c['name']} ({c['mode']}, body={c['body']}, fovy={c['fovy']}"
                              f"{', depth' if c['depth'] else ''})" for c in value)
        table.add_row(key, str(value))
    table.add_row("control Hz", f"{_control_hz(cfg):g}")
    table.add_row("config hash", cfg.hash())
    from .models import ModelNotFoundError

    try:
        memory = _observation_rows(entry.id)
    except ModelNotFoundError as err:  # the rest of the definition needs no model
        memory = [("bytes / observation", f"- (the robot model is needed: {escape(str(err))})")]
    for key, value in memory:
        table.add_row(key, value)
    console.print()
    console.print(table)
    return 0


# ------------------------------------------------------------------------- render
def _load_policy(spec: str, env: Any) -> Any:
    """Instantiate ``module:factory``; the factory gets the env if it takes an argument."""
    if ":" not in spec:
        raise CLIError(f"--policy must be 'module:callable', got {spec!r}", code=2)
    mod_name, attr = spec.split(":", 1)
    _cwd_importable()
    try:
        module = importlib.import_module(mod_name)
    except (Exception, SystemExit) as err:  # ImportError, or the module's own code raising (a SyntaxError, ...)
        raise CLIError(f"cannot import policy module {mod_name!r}: {type(err).__name__}: {err}", code=2) from None
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise CLIError(f"module {mod_name!r} has no callable {attr!r}", code=2)
    try:
        takes_arg = any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                        for p in inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        takes_arg = False
    try:
        policy = factory(env) if takes_arg else factory()
    except (Exception, SystemExit) as err:  # noqa: BLE001 - the policy's own code: reported in one line
        raise CLIError(f"creating policy {spec!r} raised {type(err).__name__}: {err}", code=2) from None
    if not callable(getattr(policy, "act", None)):
        raise CLIError(f"{spec} returned {type(policy).__name__}, which has no act(obs) method", code=2)
    return policy


class _RandomPolicy:
    """Uniform random actions in [-1, 1]."""

    def __init__(self, env: Any, seed: int | None) -> None:
        self.space = env.action_space
        self.space.seed(seed)

    def act(self, obs: Any) -> Any:
        return self.space.sample()


def _policy_actions(policy: Any, obs: Any, env: Any, spec: str) -> Any:
    """``policy.act(obs)`` as float32 actions of the env's shape ``(num_envs, action dim)``.

    Raises:
        CLIError: (exit 2) ``act`` raised, or returned something else; names the ``--policy`` and the shape.
    """
    import numpy as np

    expected = tuple(env.action_space.shape)
    try:
        actions = np.asarray(policy.act(obs), dtype=np.float32)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - the policy's own code: reported in one line
        raise CLIError(f"--policy {spec}: act() raised {type(err).__name__}: {err}", code=2) from None
    if actions.shape != expected:
        raise CLIError(f"--policy {spec}: act() returned actions of shape {actions.shape}; expected {expected} "
                       f"(num_envs, action dim): one row of {expected[1]} actions per env", code=2)
    return actions


def _resize_nearest(img: Any, height: int) -> Any:
    """Nearest-neighbour resize of an ``(h, w, 3)`` image to ``height`` rows, aspect kept."""
    import numpy as np

    h, w = img.shape[:2]
    width = max(1, round(w * height / h))
    rows = (np.arange(height) * h // height).clip(0, h - 1)
    cols = (np.arange(width) * w // width).clip(0, w - 1)
    return img[rows][:, cols]


def _latest_policy_frame(obs: dict, env: Any, env_index: int) -> Any:
    """The newest frame of the primary policy camera of env ``env_index``, as RGB uint8."""
    import numpy as np

    stack = obs["pixels"][env_index]
    if env.pixel_layout == "CHW":
        stack = stack.transpose(1, 2, 0)
    depth = env.cfg.camera(env.cfg.policy_cameras[0]).depth
    frame = stack[..., -1:] if depth else stack[..., -3:]
    return np.repeat(frame, 3, axis=-1) if depth else frame


def _compose(human: Any, obs: dict, env: Any) -> Any:
    """One image per step: for each env (left to right), the human view beside the upscaled policy image."""
    import numpy as np

    panels = []
    for i in range(len(human)):
        view = human[i]
        if view.ndim == 2:  # depth_array
            view = np.repeat((np.clip(view / max(view.max(), 1e-6), 0, 1) * 255).astype(np.uint8)[..., None], 3, -1)
        policy = _resize_nearest(_latest_policy_frame(obs, env, i), view.shape[0])
        panels.append(np.concatenate([view, policy], axis=1))
    return np.concatenate(panels, axis=1)


def _pad_to(img: Any, multiple: int) -> Any:
    """Pad an image with black so both sides are multiples of ``multiple`` (video codecs)."""
    import numpy as np

    h, w = img.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    return np.pad(img, ((0, ph), (0, pw), (0, 0))) if ph or pw else img


def cmd_render(args: argparse.Namespace) -> int:
    """Roll out a policy and save a PNG contact sheet or an MP4/GIF video."""
    import gymnasium as gym
    import imageio.v3 as iio
    import numpy as np

    from .render.gl import select_backend

    entry = _entry(args.task)
    suffix = _check_suffix(args.out, "--out", IMAGE_SUFFIXES + VIDEO_SUFFIXES)
    if args.steps < 1 or args.num_envs < 1:
        raise CLIError("--steps and --num-envs must be >= 1", code=2)
    out = _check_writable(args.out, "--out")  # before the rollout
    select_backend()
    kwargs: dict[str, Any] = {}
    if args.camera:
        kwargs["render_camera"] = args.camera
    try:
        env = gym.make_vec(entry.id, num_envs=args.num_envs, render_mode="rgb_array", **kwargs)
    except (ValueError, TypeError) as err:
        raise CLIError(str(err), code=2) from None
    try:
        policy = _load_policy(args.policy, env) if args.policy else _RandomPolicy(env, args.seed)
        obs, _ = env.reset(seed=args.seed)
        frames = [_compose(env.render(), obs, env)]
        from tqdm import tqdm

        spec = args.policy or "random"
        actions = _policy_actions(policy, obs, env, spec)  # a policy's wrong actions fail before the progress bar
        for step in tqdm(range(args.steps), desc=f"render {entry.id}", unit="step", leave=False):
            obs, *_ = env.step(actions if step == 0 else _policy_actions(policy, obs, env, spec))
            frames.append(_compose(env.render(), obs, env))
        fps = int(env.metadata.get("render_fps", 30))
    finally:
        env.close()

    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        # a contact sheet: up to 4 evenly spaced steps, top to bottom, ending at the last step
        picks = np.unique(np.linspace(0, len(frames) - 1, num=min(4, len(frames))).round().astype(int))
        iio.imwrite(out, np.concatenate([frames[i] for i in picks], axis=0))
        console.print(f"wrote {out} (steps {', '.join(map(str, picks))}; left: render() view, right: policy camera "
                      f"{env.cfg.policy_cameras[0]!r}, upscaled)")
    elif suffix == ".mp4":
        iio.imwrite(out, [_pad_to(f, 16) for f in frames], fps=fps, codec="libx264")
        console.print(f"wrote {out} ({len(frames)} frames at {fps} fps)")
    else:
        from .evaluation.harness import gif_timing  # GIF delays are in 10 ms units; viewers clamp faster ones

        stride, duration_ms = gif_timing(fps)
        iio.imwrite(out, frames[::stride], duration=duration_ms, loop=0)
        console.print(f"wrote {out} ({len(frames[::stride])} frames at {1000 / duration_ms:g} fps)")
    return 0


# ------------------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    """Run :func:`visual_robo_bench.bench.run_bench` and print its tables: VRB's own stages, then the
    ``gymnasium.utils.performance`` rows."""
    from .bench import SOURCE_GYMNASIUM_UTILS, machine_description, run_bench

    entry = _entry(args.task)
    if args.num_envs < 1 or not (math.isfinite(args.seconds) and args.seconds > 0):
        raise CLIError(f"--num-envs must be >= 1 and --seconds a finite number > 0, got --num-envs "
                       f"{args.num_envs} --seconds {args.seconds:g}", code=2)
    if args.image_size is not None and args.image_size < 8:
        raise CLIError("--image-size must be >= 8", code=2)
    rows = run_bench(entry.id, num_envs=args.num_envs, seconds=args.seconds, image_size=args.image_size)
    own = [r for r in rows if r.get("source") != SOURCE_GYMNASIUM_UTILS]
    gym_rows = [r for r in rows if r.get("source") == SOURCE_GYMNASIUM_UTILS]
    size = args.image_size or "x".join(map(str, entry.config.image_size))
    table = Table(title=f"{entry.id}: N={args.num_envs}, image {size}, >= {args.seconds:g} s per stage")
    table.add_column("stage", no_wrap=True)
    table.add_column("env steps/s", justify="right")
    table.add_column("frames/s", justify="right")
    table.add_column("peak RSS so far (MB)", justify="right")
    table.add_column("vs raw (ceiling)", justify="right")
    table.add_column("frames/s vs dm_control", justify="right")
    table.add_column("frames/s vs Gymnasium", justify="right")
    table.add_column("note", no_wrap=True)
    for r in own:
        ratios = ["-" if x is None else f"{x:.2f}x"
                  for x in (r["ratio_vs_raw"], r["ratio_vs_dm_control"], r["ratio_vs_gymnasium"])]
        table.add_row(r["name"], _fmt(r["env_steps_per_s"]), _fmt(r["frames_per_s"]), _fmt(r["peak_rss_mb"]),
                      *ratios, r.get("note", ""))
    console.print(table)
    if gym_rows:
        table = Table(title=f"{SOURCE_GYMNASIUM_UTILS} on VRB's envs (same run, ~{args.seconds:g} s each)",
                      caption="Gymnasium's own benchmark functions: figures comparable with any Gymnasium env's. "
                              "env steps/s: benchmark_vector_step counts num_envs per vector step minus the envs that "
                              "were only autoreset; benchmark_step counts single-env steps (resets inside the timing). "
                              "frames/s of benchmark_render: render() calls/s, one human-view image each.")
        table.add_column("function, env", no_wrap=True)
        table.add_column("env steps/s", justify="right", no_wrap=True)
        table.add_column("frames/s", justify="right", no_wrap=True)
        table.add_column("peak RSS so far (MB)", justify="right")
        table.add_column("note")
        for r in gym_rows:
            table.add_row(r["name"], _fmt(r["env_steps_per_s"]), _fmt(r["frames_per_s"]), _fmt(r["peak_rss_mb"]),
                          escape(r.get("note", "")))
        console.print(table)
    machine = machine_description()
    console.print("machine: " + "; ".join(f"{k}: {v}" for k, v in machine.items()), highlight=False)
    return 0


# ------------------------------------------------------------------------- doctor
def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the GL backend and render one frame of every task (with ``--module``: also its packages' tasks)."""
    import gymnasium as gym

    from .registry import list_tasks
    from .render.gl import RenderBackendError, renderer_info, select_backend

    _import_modules(getattr(args, "module", None))

    try:
        backend = select_backend()
    except RenderBackendError as err:
        raise CLIError(str(err)) from None
    devices = ", ".join(f"{k}={escape(os.environ.get(k, 'unset'))}"
                        for k in ("MUJOCO_EGL_DEVICE_ID", "CUDA_VISIBLE_DEVICES"))
    console.print(f"GL backend: [bold]{backend}[/bold] ({devices}; EGL device ids need not follow CUDA's, see README)",
                  highlight=False)
    table = Table(title="One frame per task (num_envs=1)")
    for col in ("task", "status", "policy obs", "render()", "seconds"):
        table.add_column(col)
    info: dict[str, str] = {}
    failures = 0
    for task_id in list_tasks():
        start = time.perf_counter()
        env = None
        try:
            env = gym.make_vec(task_id, num_envs=1, render_mode="rgb_array")
            obs, _ = env.reset(seed=0)
            frame = env.render()[0]
            if not info:
                info = renderer_info()  # needs a current context: right after rendering
            shapes = ", ".join(f"{k} {tuple(v.shape[1:])}" for k, v in obs.items() if k.startswith("pixels"))
            table.add_row(task_id, "[green]ok[/green]", shapes, str(tuple(frame.shape)),
                          f"{time.perf_counter() - start:.2f}")
        except Exception as err:  # noqa: BLE001 - reported per task
            failures += 1
            table.add_row(task_id, "[red]FAILED[/red]", f"{type(err).__name__}: {err}", "-",
                          f"{time.perf_counter() - start:.2f}")
        finally:
            if env is not None:
                env.close()
    console.print(table)
    if "error" in info or not info:
        err_console.print(f"[yellow]could not read GL strings: {info.get('error', 'no context')}[/yellow]")
    else:
        console.print(f"GL vendor:   {info['vendor']}\nGL renderer: {info['renderer']}\nGL version:  {info['version']}",
                      highlight=False)
        if "llvmpipe" in info["renderer"].lower() or "softpipe" in info["renderer"].lower():
            err_console.print("[yellow]warning: software rendering (llvmpipe): pixels are rendered on the CPU and "
                              "will be slow. Use a GPU with EGL drivers for speed.[/yellow]")
    if failures:
        err_console.print(f"[red]{failures} task(s) failed to render[/red]")
        return 1
    console.print("[green]all tasks render[/green]")
    return 0


# ------------------------------------------------------------------------- check
def cmd_check(args: argparse.Namespace) -> int:
    """Run the task rules (:func:`visual_robo_bench.checks.check_task`) on a task and print them as a table.

    Returns:
        0 when every check passed, 1 when one failed (an unknown id or bad arguments: :class:`CLIError`, exit 2).
    """
    from .checks import check_task, resolve_obs_mode

    entry = _entry(args.task)
    requested = "visual" if args.pixels else "state"
    mode, _ = resolve_obs_mode(entry, requested)  # the messages say why when it differs
    try:
        results = check_task(entry.id, steps=args.steps, num_envs=args.num_envs, obs_mode=requested)
    except ValueError as err:  # --steps or --num-envs below 1
        raise CLIError(str(err), code=2) from None
    table = Table(title=f"{entry.id}: {args.steps} steps, batches of {args.num_envs}, obs_mode {mode!r}")
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("details", overflow="fold", ratio=1)
    for r in results:
        status = "[yellow]skipped[/yellow]" if r.skipped else "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
        table.add_row(r.name, status, escape(r.message))
    console.print(table)
    failed = sum(not r.passed for r in results)
    if failed:
        console.print(f"[red]{failed} of {len(results)} checks failed[/red]")
        return 1
    console.print(f"[green]all {len(results)} checks passed[/green]")
    return 0


# ------------------------------------------------------------------------- train
#: The agent of a new ``vrb train`` run without ``--agent``.
DEFAULT_TRAIN_AGENT = "sdpg"


def _resumed_agent(run_dir: Path, given: str | None) -> str:
    """The agent of the run that ``vrb train --resume --run-dir RUN_DIR`` continues.

    The run's ``config.json`` records its agent; ``--agent`` may be left out (it is then taken from
    there) or repeat it.

    Args:
        run_dir: The run directory.
        given: The ``--agent`` value, or None when it was left out.

    Returns:
        The recorded agent (``given`` when the run has no readable ``config.json`` but ``--agent`` names one:
        :func:`~visual_robo_bench.train.train` then checks the checkpoint against that agent).

    Raises:
        CLIError: ``given`` differs from the recorded agent, or the agent is unknown (no readable
            ``config.json`` and no ``--agent``); exit code 2.
    """
    import json

    path = run_dir / "config.json"
    try:
        recorded = json.loads(path.read_text()).get("agent")
    except (OSError, ValueError, AttributeError) as err:
        if given is not None:
            return given
        if not run_dir.is_dir():
            raise CLIError(f"cannot resume: run directory {run_dir} does not exist", code=2) from None
        why = "does not exist" if isinstance(err, FileNotFoundError) else f"cannot be read ({err})"
        raise CLIError(f"cannot resume: {path} {why}, so the run's agent is unknown; pass --agent AGENT "
                       "(the agent that trained the run)", code=2) from None
    if not isinstance(recorded, str):
        if given is not None:
            return given
        raise CLIError(f"cannot resume: {path} records no agent; pass --agent AGENT (the agent that trained the run)",
                       code=2)
    if given is not None and given != recorded:
        raise CLIError(f"--agent {given} does not match the run in {run_dir}, which was trained with --agent "
                       f"{recorded} (its config.json); leave out --agent to resume it", code=2)
    return recorded


def cmd_train(args: argparse.Namespace) -> int:
    """Train a reference agent (see :mod:`visual_robo_bench.train`).

    ``--agent`` defaults to :data:`DEFAULT_TRAIN_AGENT` for a new run; ``--resume`` takes the agent the
    run's ``config.json`` records (a different ``--agent`` is an error).
    """
    from .agents.common import ConfigError, parse_set_args
    from .train import TrainError, train

    if args.resume and args.run_dir is not None:
        agent = _resumed_agent(Path(args.run_dir), args.agent)
    else:
        agent = args.agent or DEFAULT_TRAIN_AGENT
    try:
        train(agent=agent, task=args.task, overrides=parse_set_args(args.set), run_dir=args.run_dir,
              resume=args.resume, seed=args.seed, progress=not args.no_progress, argv=sys.argv,
              log=lambda msg: console.print(msg, highlight=False))
    except (TrainError, ConfigError) as err:
        raise CLIError(str(err), code=2) from None
    return 0


# ------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``vrb`` argument parser."""
    parser = argparse.ArgumentParser(prog="vrb", description="visual_robo_bench: visual robot-learning tasks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="table of registered tasks")
    p.add_argument("--no-model", action="store_true", help="do not compile models (action dim shown as '-')")
    p.add_argument("--module", action="append", default=[], metavar="MODULE",
                   help="also list the tasks this package registers (repeatable), e.g. --module their_module")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="documentation, config and config hash of a task")
    p.add_argument("task", help="task id, e.g. VRB/Walker-v1")
    p.set_defaults(func=cmd_info)

    from .cli_eval import _seed_base  # argparse type: an integer >= 0

    p = sub.add_parser("render", help="roll out a policy and save a .png, .mp4 or .gif")
    p.add_argument("task", help="task id, e.g. VRB/Walker-v1")
    p.add_argument("--out", required=True, help="output file: .png (contact sheet), .mp4 or .gif")
    p.add_argument("--steps", type=int, default=100, help="env steps to roll out (default 100)")
    p.add_argument("--seed", type=_seed_base, default=0, help="reset seed >= 0 (default 0)")
    p.add_argument("--camera", default=None, help="camera of the human view (default: the task's render camera)")
    p.add_argument("--policy", default=None, metavar="MODULE:FACTORY",
                   help="factory returning an object with act(obs) -> actions (default: random)")
    p.add_argument("--num-envs", type=int, default=1, help="envs rolled out and shown (default 1)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("bench", help="throughput vs ceilings and dm_control / gymnasium peers, then Gymnasium's "
                                     "gymnasium.utils.performance figures")
    p.add_argument("task", help="task id, e.g. VRB/Walker-v1")
    p.add_argument("--num-envs", type=int, default=64, help="batched envs N (default 64)")
    p.add_argument("--seconds", type=float, default=3.0,
                   help="minimum seconds per stage, and the target duration of each Gymnasium benchmark (default 3)")
    p.add_argument("--image-size", type=int, default=None, help="square policy image size (default: the task's)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("train", help="train a reference agent (logs, checkpoints, --resume, policy.pt)")
    p.add_argument("--agent", default=None,
                   help="agent: sdpg (reference, default for a new run), ppo, sac (stable-baselines3), drqv2, distill, "
                        "random, zero (floors); with --resume, the run's own (recorded in its config.json) by default")
    p.add_argument("--task", default=None, help="task id, e.g. VRB/Walker-v1 (required unless --resume)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key of the agent's config (repeatable), e.g. --set num_nominal=4 "
                        "--set horizon=16 (sdpg) or --set num_envs=8 (ppo, sac, drqv2, random, zero)")
    p.add_argument("--run-dir", default=None, help="run directory (default runs/AGENT-TASK-sSEED-TIME)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.add_argument("--seed", type=_seed_base, default=None,
                   help="run seed >= 0 (torch, numpy, envs; default: the config's, 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("doctor", help="check OpenGL and render one frame of every task")
    p.add_argument("--module", action="append", default=[], metavar="MODULE",
                   help="also check the tasks this package registers (repeatable), e.g. --module their_module")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("check", help="run the rules every task must follow (determinism, batch = single envs, ...)")
    p.add_argument("task", help="task id, e.g. VRB/Walker-v1 or their_module:Lab/Task-v0")
    p.add_argument("--steps", type=int, default=20, help="random-action steps per rollout (default 20)")
    p.add_argument("--num-envs", type=int, default=3, help="envs of the batches (default 3)")
    p.add_argument("--pixels", action="store_true",
                   help="also check the images (obs_mode 'visual'; default: privileged vectors only, no rendering)")
    p.set_defaults(func=cmd_check)

    from .cli_eval import add_commands

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vrb`` console script.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 on success, 2 on bad input, 1 on other failures.
    """
    from .models import ModelNotFoundError
    from .render.gl import RenderBackendError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CLIError as err:
        err_console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False, soft_wrap=True)
        return err.code
    except ModelNotFoundError as err:
        err_console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False, soft_wrap=True)
        return 2
    except RenderBackendError as err:
        err_console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/red]")
        return 130


if __name__ == "__main__":  # pragma: no cover - ``python -m visual_robo_bench.cli``
    # run the package's own module, not this __main__ copy of it: the commands in cli_eval import
    # visual_robo_bench.cli, so a second module would raise a CLIError class main() here does not catch
    from visual_robo_bench.cli import main as _main

    sys.exit(_main())
