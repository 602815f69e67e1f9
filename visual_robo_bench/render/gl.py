"""Headless OpenGL backend selection (EGL or OSMesa), decided before any context.

An explicit ``MUJOCO_GL`` wins. Otherwise EGL is probed in a short subprocess
(PyOpenGL fixes its platform on first import, so a failed EGL attempt could not
fall back to OSMesa in the same process), then OSMesa. The choice is exported
in ``MUJOCO_GL``/``PYOPENGL_PLATFORM`` so render workers inherit it.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys

log = logging.getLogger("visual_robo_bench")

APT_PACKAGES = "libosmesa6 libegl1 libegl-mesa0 libgl1-mesa-dri"

_PROBE = """
import os, sys
os.environ["MUJOCO_GL"] = sys.argv[1]
os.environ["PYOPENGL_PLATFORM"] = sys.argv[1]
import mujoco
mod = __import__("mujoco." + sys.argv[1], fromlist=["GLContext"])
ctx = mod.GLContext(16, 16)
ctx.make_current()
m = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='1'/></worldbody></mujoco>")
c = mujoco.MjrContext(m, mujoco.mjtFontScale.mjFONTSCALE_150)
c.free()
ctx.free()
"""


class RenderBackendError(RuntimeError):
    """No headless OpenGL backend works on this machine (or not in this process: see :func:`check_can_render`)."""


# ---------------------------------------------------------------- fork safety
# Mesa's software rasterizer (llvmpipe, behind both EGL and OSMesa here) starts worker threads with the first
# context. fork() copies none of them, so a child forked after that hangs forever in its first draw call
# (Gymnasium's AsyncVectorEnv forks by default on Linux). The hooks below turn that hang into an error.
_mesa_threads_at_fork = False  # in the forking process: whether Mesa's threads ran at the last fork
_forked_from_mesa_process: int | None = None  # in a forked process: the pid of the Mesa process it came from


def _mesa_threads_running() -> bool:
    """Whether Mesa's llvmpipe worker threads run in this process (Linux ``/proc``; False where unknown)."""
    try:
        tasks = list(os.scandir("/proc/self/task"))
    except OSError:
        return False
    for task in tasks:
        try:
            with open(os.path.join(task.path, "comm")) as f:
                if f.read().startswith("llvmpipe-"):
                    return True
        except OSError:  # the thread ended meanwhile
            continue
    return False


def _before_fork() -> None:
    global _mesa_threads_at_fork
    _mesa_threads_at_fork = _mesa_threads_running()


def _after_fork_in_child() -> None:
    global _forked_from_mesa_process
    if _mesa_threads_at_fork:
        _forked_from_mesa_process = os.getppid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def check_can_render() -> None:
    """Raise instead of hanging where Mesa cannot render: a process forked from one that had used it.

    Raises:
        RenderBackendError: This process was forked (not spawned) from a process with a live Mesa OpenGL
            context (or one that had had one); the message says how to start the process instead.
    """
    if _forked_from_mesa_process is not None:
        raise RenderBackendError(
            f"cannot render in process {os.getpid()}: it was forked from process {_forked_from_mesa_process} "
            "after that process had used OpenGL (Mesa), and Mesa's renderer hangs in such a child. Start worker "
            "processes with the 'spawn' method instead: gym.make_vec(id, num_envs=N, vectorization_mode='async', "
            "vector_kwargs={'context': 'spawn'}), multiprocessing.get_context('spawn') or SB3's "
            "SubprocVecEnv(..., start_method='spawn'); or fork them before anything renders. VRB's own vector env, "
            "gym.make_vec(id, num_envs=N), steps and renders every env in one process and needs no workers."
        )


def _probe(backend: str) -> str | None:
    """Return None if ``backend`` can create a context, else the error text."""
    env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
    try:
        res = subprocess.run(
            [sys.executable, "-c", _PROBE, backend], env=env, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    return None if res.returncode == 0 else (res.stderr.strip().splitlines() or ["failed"])[-1]


@functools.lru_cache(maxsize=1)
def select_backend() -> str:
    """Choose and export the GL backend: ``egl``, ``osmesa`` (or the user's ``MUJOCO_GL``).

    Raises:
        RenderBackendError: When no backend works; the message names the Debian
            packages to install and the ``MUJOCO_GL`` variable. Also when ``MUJOCO_GL``
            is ``egl``/``osmesa`` and ``PYOPENGL_PLATFORM`` names another platform.
    """
    explicit = os.environ.get("MUJOCO_GL", "").strip().lower()
    if explicit:
        if explicit in ("egl", "osmesa"):
            platform = os.environ.get("PYOPENGL_PLATFORM", "")
            if platform and platform.lower() != explicit:  # mujoco.egl / mujoco.osmesa refuse it on import
                raise RenderBackendError(
                    f"MUJOCO_GL={os.environ['MUJOCO_GL']} and PYOPENGL_PLATFORM={platform} disagree: MuJoCo's "
                    f"{explicit} backend needs PyOpenGL's {explicit} platform. Unset PYOPENGL_PLATFORM "
                    f"(`unset PYOPENGL_PLATFORM`) or set it to the same value (PYOPENGL_PLATFORM={explicit}), "
                    "before Python starts."
                )
            os.environ["PYOPENGL_PLATFORM"] = explicit
        return explicit
    errors = {}
    for backend in ("egl", "osmesa"):
        err = _probe(backend)
        if err is None:
            os.environ["MUJOCO_GL"] = backend
            os.environ["PYOPENGL_PLATFORM"] = backend
            log.info("visual_robo_bench: using MUJOCO_GL=%s", backend)
            return backend
        errors[backend] = err
    raise RenderBackendError(
        "No headless OpenGL backend works. Tried "
        + "; ".join(f"{b}: {e}" for b, e in errors.items())
        + f". On Debian/Ubuntu install the Mesa libraries: `apt-get install -y {APT_PACKAGES}`, "
        "then set MUJOCO_GL=egl (or MUJOCO_GL=osmesa) and try again."
    )


def make_context(width: int, height: int):
    """A current offscreen GL context of at least ``width`` x ``height``."""
    check_can_render()
    backend = select_backend()
    try:
        if backend == "egl":
            from mujoco.egl import GLContext
        elif backend == "osmesa":
            from mujoco.osmesa import GLContext
        else:
            from mujoco import GLContext
        ctx = GLContext(width, height)
        ctx.make_current()
    except Exception as err:  # noqa: BLE001 - re-raised with instructions
        raise RenderBackendError(
            f"Could not create an OpenGL context with MUJOCO_GL={backend}: {err}. "
            f"Install `{APT_PACKAGES}` (apt-get) and set MUJOCO_GL=egl or MUJOCO_GL=osmesa."
        ) from err
    _log_renderer_once(backend)
    return ctx


_renderer_logged = False  # whether this process has logged its GL strings (first context only)


def _log_renderer_once(backend: str) -> None:
    """Log GL_VENDOR, GL_RENDERER and GL_VERSION of the current context, once per process (at INFO), so that
    EGL silently running on Mesa's llvmpipe instead of a GPU shows."""
    global _renderer_logged
    if _renderer_logged:
        return
    _renderer_logged = True
    try:
        strings = _gl_strings()
    except Exception as err:  # noqa: BLE001 - informational only
        log.info("visual_robo_bench: MUJOCO_GL=%s; could not read the GL strings: %s", backend, err)
        return
    vendor, renderer, version = strings or ("unknown",) * 3
    log.info("visual_robo_bench: MUJOCO_GL=%s GL_VENDOR=%s GL_RENDERER=%s GL_VERSION=%s",
             backend, vendor, renderer, version)


def _gl_strings() -> tuple[str, str, str] | None:
    """GL_VENDOR, GL_RENDERER and GL_VERSION of the current context (``None`` when no context is current)."""
    from OpenGL import GL

    raw = [GL.glGetString(name) for name in (GL.GL_VENDOR, GL.GL_RENDERER, GL.GL_VERSION)]
    if any(x is None for x in raw):
        return None
    vendor, renderer, version = (x.decode(errors="replace") for x in raw)
    return vendor, renderer, version


def renderer_info() -> dict[str, str]:
    """GL vendor/renderer/version strings of the current context, or of a 1x1 context made for the query
    when none is current (e.g. after an evaluation closed its renderers)."""
    backend = os.environ.get("MUJOCO_GL", "")
    try:
        backend = select_backend()  # first: PyOpenGL reads PYOPENGL_PLATFORM when it is imported

        def query() -> dict[str, str] | None:
            strings = _gl_strings()
            return None if strings is None else {"backend": backend,
                                                 **dict(zip(("vendor", "renderer", "version"), strings))}

        info = query()
        if info is None:
            ctx = make_context(1, 1)  # the chosen backend's context (mujoco.GLContext may be GLFW's)
            try:
                info = query()
            finally:
                ctx.free()
        return info or {"backend": backend, "error": "no GL context could be made current"}
    except Exception as err:  # noqa: BLE001 - informational only
        return {"backend": backend, "error": str(err)}
