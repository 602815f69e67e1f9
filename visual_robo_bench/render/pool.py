"""Render worker processes: one per core, each owning a share of the rendered envs.

llvmpipe rasterizes on the calling thread's core most efficiently when each
process draws its own batch (``rendering.md`` section 7: 1.3-1.8x over one
process at 64-84 px). :class:`RenderPool` has the same ``render(states)``
interface as :class:`~visual_robo_bench.render.tiled.TiledRenderer`: the parent
writes the integration states into shared memory, each worker renders its
contiguous slice with its own GL context into shared output arrays, and the
parent copies the images out. Physics never leaves the parent process.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import pickle
from multiprocessing import shared_memory

import mujoco
import numpy as np

from ..core.config import RenderProfile
from .tiled import View


def _worker(conn, model_bytes: bytes, views: list[View], max_envs: int, profile: RenderProfile, nstate: int,
            shm_names: list[str], cap: int, core: int | None) -> None:
    os.environ["LP_NUM_THREADS"] = "0"  # one rasterizer thread: the process is the unit of parallelism
    if core is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {core})
        except OSError:
            pass
    from .tiled import TiledRenderer

    try:
        model = pickle.loads(model_bytes)
        renderer = TiledRenderer(model, views, max_envs, profile)
        shms = [shared_memory.SharedMemory(name=n) for n in shm_names]
        states = np.ndarray((cap, nstate), np.float64, buffer=shms[0].buf)
        outs = [np.ndarray(_shape(v, cap), _dtype(v), buffer=s.buf) for v, s in zip(views, shms[1:])]
        conn.send(("ready", None))
    except BaseException as err:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            break
        if msg is None:
            break
        start, stop = msg
        try:
            images = renderer.render(states[start:stop])
            for out, img in zip(outs, images):
                out[start:stop] = img
            conn.send(("ok", None))
        except BaseException as err:  # noqa: BLE001
            conn.send(("error", f"{type(err).__name__}: {err}"))
    renderer.close()
    for s in shms:
        s.close()


def _shape(v: View, n: int) -> tuple[int, ...]:
    return (n, v.height, v.width) if v.depth else (n, v.height, v.width, 3)


def _dtype(v: View):
    return np.float32 if v.depth else np.uint8


class RenderPool:
    """Renders ``views`` of up to ``max_envs`` states across ``workers`` processes.

    Args:
        model: The task model (pickled to the workers).
        views: Images to produce per state.
        max_envs: Largest number of states per call.
        profile: The task's render profile.
        workers: Number of worker processes.

    Attributes:
        calls: Number of :meth:`render` calls.
        frames: Number of images produced.
    """

    def __init__(self, model: mujoco.MjModel, views: list[View], max_envs: int, profile: RenderProfile,
                 workers: int = 2) -> None:
        self.views = list(views)
        self.max_envs = int(max_envs)
        self.workers = max(1, min(int(workers), self.max_envs))
        self.nstate = mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_INTEGRATION)
        cap = self.max_envs
        self._shms = [shared_memory.SharedMemory(create=True, size=cap * self.nstate * 8)]
        for v in self.views:
            size = int(np.prod(_shape(v, cap))) * np.dtype(_dtype(v)).itemsize
            self._shms.append(shared_memory.SharedMemory(create=True, size=max(size, 1)))
        self._states = np.ndarray((cap, self.nstate), np.float64, buffer=self._shms[0].buf)
        self._outs = [np.ndarray(_shape(v, cap), _dtype(v), buffer=s.buf) for v, s in zip(self.views, self._shms[1:])]
        share = math.ceil(cap / self.workers)
        model_bytes = pickle.dumps(model)
        ctx = mp.get_context("spawn")
        ncores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self._conns, self._procs = [], []
        names = [s.name for s in self._shms]
        for w in range(self.workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, daemon=True,
                               args=(child, model_bytes, self.views, share, profile, self.nstate, names, cap,
                                     w % ncores if ncores >= self.workers else None))
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        for conn in self._conns:
            status, err = conn.recv()
            if status != "ready":
                self.close()
                raise RuntimeError(f"render worker failed to start: {err}")
        self._share = share
        self.calls = 0
        self.frames = 0

    def render(self, states: np.ndarray) -> list[np.ndarray]:
        """Images of every view for each state row (as :meth:`TiledRenderer.render`)."""
        states = np.atleast_2d(states)
        k = len(states)
        if k > self.max_envs:
            raise ValueError(f"render pool was built for {self.max_envs} envs, got {k}")
        self._states[:k] = states
        share = math.ceil(k / self.workers)
        busy = []
        for w, conn in enumerate(self._conns):
            start, stop = w * share, min(k, (w + 1) * share)
            if start < stop:
                conn.send((start, stop))
                busy.append(conn)
        for conn in busy:
            status, err = conn.recv()
            if status != "ok":
                raise RuntimeError(f"render worker failed: {err}")
        self.calls += 1
        self.frames += k * len(self.views)
        return [out[:k].copy() for out in self._outs]

    def close(self) -> None:
        """Stop the workers and free the shared memory."""
        for conn in getattr(self, "_conns", []):
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for proc in getattr(self, "_procs", []):
            proc.join(5)
            if proc.is_alive():
                proc.kill()
        self._conns, self._procs = [], []
        for s in getattr(self, "_shms", []):
            try:
                s.close()
                s.unlink()
            except FileNotFoundError:
                pass
        self._shms = []

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
