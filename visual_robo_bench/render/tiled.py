"""Batched offscreen rendering with MuJoCo's OpenGL renderer.

All images of one call are drawn as tiles of one offscreen framebuffer and read
back with a single ``mjr_readPixels`` (1.6x faster than a read per frame,
``rendering.md``). Rendering never touches the simulations: each state row is
loaded into a scratch ``MjData`` and only the kinematics needed to draw are
computed. Images are a function of the state up to the tile an env is drawn in:
identical states in different tiles can differ by 1 intensity level in a few
pixels, and rarely in one edge pixel by more (README, State API).
"""

from __future__ import annotations

import atexit
import math
import weakref
from dataclasses import dataclass

import mujoco
import numpy as np

from ..core.config import RenderProfile
from ..core.sim import STATE_SPEC
from .gl import check_can_render, make_context

MAX_ATLAS = 4096

_LIVE: "weakref.WeakSet[TiledRenderer]" = weakref.WeakSet()
_ATEXIT_REGISTERED = False


def _close_all() -> None:
    """Free every live renderer before MuJoCo's EGL atexit handler terminates the display."""
    for r in list(_LIVE):
        try:
            r.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown, best effort
            pass


@dataclass(frozen=True)
class View:
    """One image per env: a named camera at a size, RGB or depth.

    Attributes:
        camera: Camera name in the model.
        height: Image height in pixels.
        width: Image width in pixels.
        depth: Depth (float32 metres) instead of RGB (uint8).
        geomgroups: Geom groups drawn.
    """

    camera: str
    height: int
    width: int
    depth: bool = False
    geomgroups: tuple[int, ...] = (0, 1, 2)


def prepare_kinematics(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    """Compute what drawing needs (poses, cameras, lights, tendons) from the state."""
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    mujoco.mj_camlight(model, data)
    if model.ntendon:
        mujoco.mj_tendon(model, data)


class TiledRenderer:
    """Renders ``views`` for up to ``max_envs`` states per call, in one process.

    Args:
        model: The task model (copied; only its visual settings are changed).
        views: The images to produce for every state.
        max_envs: Largest number of states per call.
        profile: The task's render profile (scene flags).

    Attributes:
        calls: Number of :meth:`render` calls (tests count renderer use).
        frames: Number of images produced.
    """

    def __init__(self, model: mujoco.MjModel, views: list[View], max_envs: int, profile: RenderProfile) -> None:
        if not views:
            raise ValueError("TiledRenderer needs at least one view")
        self.views = list(views)
        self.max_envs = int(max_envs)
        self.tile_h = max(v.height for v in views)
        self.tile_w = max(v.width for v in views)
        ntiles = self.max_envs * len(views)
        max_cols = max(1, MAX_ATLAS // self.tile_w)
        self.cols = min(max(1, math.ceil(math.sqrt(ntiles))), max_cols)
        self.rows = min(math.ceil(ntiles / self.cols), max(1, MAX_ATLAS // self.tile_h))
        self.tiles_per_pass = self.rows * self.cols
        self.atlas_w, self.atlas_h = self.cols * self.tile_w, self.rows * self.tile_h

        self.model = model  # offscreen size is a visual-only setting
        self.model.vis.global_.offwidth = max(self.atlas_w, model.vis.global_.offwidth)
        self.model.vis.global_.offheight = max(self.atlas_h, model.vis.global_.offheight)
        self._ctx = make_context(self.model.vis.global_.offwidth, self.model.vis.global_.offheight)
        global _ATEXIT_REGISTERED
        if not _ATEXIT_REGISTERED:  # registered after mujoco.egl's handler, so it runs before it
            atexit.register(_close_all)
            _ATEXIT_REGISTERED = True
        _LIVE.add(self)
        self._con = mujoco.MjrContext(self.model, mujoco.mjtFontScale.mjFONTSCALE_50)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._con)
        # depth buffer values read back with 0 at the far plane (reversed Z), as mujoco.Renderer
        self._con.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(self.model, maxgeom=max(1000, 2 * self.model.ngeom + 100))
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = profile.shadows
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = profile.reflections
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = profile.skybox
        self._scene.flags[mujoco.mjtRndFlag.mjRND_FOG] = False
        self._scene.flags[mujoco.mjtRndFlag.mjRND_HAZE] = False
        self._pert = mujoco.MjvPerturb()
        self._data = mujoco.MjData(self.model)
        self._cams, self._opts = [], []
        for v in views:
            cam_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, v.camera)
            if cam_id < 0:
                raise ValueError(f"no camera {v.camera!r} in the model")
            cam = mujoco.MjvCamera()
            cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
            cam.fixedcamid = cam_id
            opt = mujoco.MjvOption()
            opt.geomgroup[:] = 0
            for g in v.geomgroups:
                opt.geomgroup[g] = 1
            opt.sitegroup[:] = 0
            self._cams.append(cam)
            self._opts.append(opt)
        self._any_depth = any(v.depth for v in views)
        self._rgb = np.empty((self.atlas_h, self.atlas_w, 3), dtype=np.uint8)
        self._depth = np.empty((self.atlas_h, self.atlas_w), dtype=np.float32) if self._any_depth else None
        extent = self.model.stat.extent
        self._znear = np.float32(self.model.vis.map.znear * extent)
        self._zfar = np.float32(self.model.vis.map.zfar * extent)
        self.calls = 0
        self.frames = 0

    def render(self, states: np.ndarray) -> list[np.ndarray]:
        """Images of every view for each state row.

        Args:
            states: ``(k, nstate)`` integration states.

        Returns:
            One array per view: ``(k, H, W, 3)`` uint8 (RGB) or ``(k, H, W)``
            float32 metric depth (depth views); row 0 is the top of the image.
        """
        states = np.atleast_2d(states)
        k = len(states)
        if k > self.max_envs:
            raise ValueError(f"renderer was built for {self.max_envs} envs, got {k}")
        check_can_render()  # a renderer inherited through fork() would hang
        self._ctx.make_current()
        nv = len(self.views)
        outs = [
            np.empty((k, v.height, v.width) if v.depth else (k, v.height, v.width, 3),
                     dtype=np.float32 if v.depth else np.uint8)
            for v in self.views
        ]
        jobs = [(i, j) for i in range(k) for j in range(nv)]
        for start in range(0, len(jobs), self.tiles_per_pass):
            chunk = jobs[start:start + self.tiles_per_pass]
            last_env = -1
            for t, (i, j) in enumerate(chunk):
                if i != last_env:
                    mujoco.mj_setState(self.model, self._data, states[i], STATE_SPEC)
                    prepare_kinematics(self.model, self._data)
                    last_env = i
                v = self.views[j]
                r, c = divmod(t, self.cols)
                rect = mujoco.MjrRect(c * self.tile_w, r * self.tile_h, v.width, v.height)
                mujoco.mjv_updateScene(self.model, self._data, self._opts[j], self._pert, self._cams[j],
                                       mujoco.mjtCatBit.mjCAT_ALL, self._scene)
                mujoco.mjr_render(rect, self._scene, self._con)
            rows_used = math.ceil(len(chunk) / self.cols)
            rect = mujoco.MjrRect(0, 0, self.atlas_w, rows_used * self.tile_h)
            rgb = self._rgb[: rows_used * self.tile_h]
            depth = self._depth[: rows_used * self.tile_h] if self._any_depth else None
            mujoco.mjr_readPixels(rgb, depth, rect, self._con)
            self._untile(chunk, rgb, depth, outs)
        self.calls += 1
        self.frames += len(jobs)
        return outs

    def _untile(self, chunk, rgb, depth, outs) -> None:
        th, tw, cols = self.tile_h, self.tile_w, self.cols
        rows = rgb.shape[0] // th
        rgb_tiles = rgb.reshape(rows, th, cols, tw, 3).transpose(0, 2, 1, 3, 4).reshape(rows * cols, th, tw, 3)
        depth_tiles = None
        if depth is not None:
            depth_tiles = depth.reshape(rows, th, cols, tw).transpose(0, 2, 1, 3).reshape(rows * cols, th, tw)
        t_idx = np.arange(len(chunk))
        env_idx = np.array([i for i, _ in chunk])
        view_idx = np.array([j for _, j in chunk])
        for j, v in enumerate(self.views):
            sel = view_idx == j
            if not sel.any():
                continue
            tiles = t_idx[sel]
            envs = env_idx[sel]
            if v.depth:
                raw = depth_tiles[tiles, : v.height, : v.width][:, ::-1].astype(np.float64)
                outs[j][envs] = self._linear_depth(raw)
            else:
                outs[j][envs] = rgb_tiles[tiles, : v.height, : v.width][:, ::-1]

    def _linear_depth(self, z: np.ndarray) -> np.ndarray:
        """Metric depth from MuJoCo's (reversed-Z) depth buffer values."""
        zfar, znear = self._zfar, self._znear
        c_coef = -(zfar + znear) / (zfar - znear)
        d_coef = -(np.float32(2) * zfar * znear) / (zfar - znear)
        c_coef = np.float32(-0.5) * c_coef - np.float32(0.5)
        d_coef = np.float32(-0.5) * d_coef
        return (d_coef / (z + c_coef)).astype(np.float32)

    def close(self) -> None:
        """Free the GL resources (call before interpreter exit with EGL)."""
        if self._con is not None:
            self._ctx.make_current()
            self._con.free()
            self._con = None
        if self._ctx is not None:
            self._ctx.free()
            self._ctx = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
