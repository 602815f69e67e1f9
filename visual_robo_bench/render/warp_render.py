"""Batched ray-traced rendering on MuJoCo Warp: the :class:`~visual_robo_bench.render.tiled.TiledRenderer` interface.

``WarpRenderer(model, views, max_envs, profile).render(states)`` returns one
array per view, RGB uint8 ``(k, H, W, 3)`` or metric depth float32 ``(k, H, W)``
with row 0 the top of the image, exactly as the OpenGL renderer. It uses
``mujoco_warp``'s batch renderer (a BVH ray caster): the states are loaded into
the renderer's own device worlds, kinematics and camera poses are computed
there, and all envs and views are drawn by one kernel launch.

``output="torch"`` returns torch tensors on the Warp device (zero-copy views of
the renderer's output buffers via ``wp.to_torch``; they are overwritten by the
next call), so on a GPU the pixels never pass through host memory. ``states``
may then also be a device array (``wp.array`` or a CUDA torch tensor).

Differences from the OpenGL images (see ``tests/test_warp_backend.py`` for the
measured agreement): ray casting gives exact primitive shapes where OpenGL
tessellates (``numslices``/``numstacks`` do not apply), the lighting model is
MuJoCo Warp's, and ``RenderProfile.reflections`` is not supported (error).
Misses get depth ``zfar`` like the OpenGL depth buffer's far plane.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import mujoco
import numpy as np

from ..core.config import RenderProfile
from ..core.sim import STATE_SPEC
from ..core.warp_sim import _unsupported, default_device, import_warp
from .tiled import View


@functools.lru_cache(maxsize=None)
def _kernels() -> tuple[Any, Any]:
    """The two extraction kernels (built on first use so that importing needs no Warp)."""
    wp, _ = import_warp()

    @wp.kernel(module="unique", enable_backward=False)
    def unpack_rgb_u8(packed: wp.array2d(dtype=wp.uint32), adr: int, width: int,
                      out: wp.array4d(dtype=wp.uint8)):
        world, pixel = wp.tid()
        y = pixel // width
        x = pixel - y * width
        val = packed[world, adr + pixel]
        out[world, y, x, 0] = wp.uint8((val >> wp.uint32(16)) & wp.uint32(0xFF))
        out[world, y, x, 1] = wp.uint8((val >> wp.uint32(8)) & wp.uint32(0xFF))
        out[world, y, x, 2] = wp.uint8(val & wp.uint32(0xFF))

    @wp.kernel(module="unique", enable_backward=False)
    def extract_depth(depth: wp.array2d(dtype=wp.float32), adr: int, width: int, zfar: float,
                      out: wp.array3d(dtype=wp.float32)):
        world, pixel = wp.tid()
        y = pixel // width
        x = pixel - y * width
        val = depth[world, adr + pixel]
        if val <= 0.0:
            val = zfar  # a miss: the far plane, as the OpenGL depth buffer
        out[world, y, x] = val

    return unpack_rgb_u8, extract_depth


class WarpRenderer:
    """Renders ``views`` for up to ``max_envs`` states per call with MuJoCo Warp's batch renderer.

    Args:
        model: The task model (read-only here).
        views: The images to produce for every state.
        max_envs: Largest number of states per call (the renderer's number of device worlds).
        profile: The task's render profile (shadows, skybox, anti-aliasing samples).
        device: Warp device (default: :func:`~visual_robo_bench.core.warp_sim.default_device`).
        output: ``"numpy"`` (host arrays, default) or ``"torch"`` (tensors on the device).
        strict: Raise NotImplementedError for visual features MuJoCo Warp draws differently in kind
            (cube-mapped textures on geoms, drawn as a flat image of the six stacked faces). With
            ``strict=False`` they are drawn that way with a RuntimeWarning (for timing, not for learning).

    Attributes:
        calls: Number of :meth:`render` calls.
        frames: Number of images produced.
    """

    def __init__(self, model: mujoco.MjModel, views: list[View], max_envs: int, profile: RenderProfile,
                 device: str | None = None, output: str = "numpy", strict: bool = True) -> None:
        wp, mjw = import_warp()
        self._wp, self._mjw = wp, mjw
        if not views:
            raise ValueError("WarpRenderer needs at least one view")
        if output not in ("numpy", "torch"):
            raise ValueError(f"output must be 'numpy' or 'torch', got {output!r}")
        if profile.reflections:
            raise _unsupported("RenderProfile.reflections (mirror reflections)",
                               "use backend='cpu' or a profile with reflections=False")
        if int(max_envs) < 1:
            raise ValueError(f"max_envs must be >= 1, got {max_envs}")
        self.model = model
        self.views = list(views)
        self.max_envs = int(max_envs)
        self.output = output
        self.device = wp.get_device(device or default_device())
        self.nstate = mujoco.mj_stateSize(model, STATE_SPEC)
        cam_ids = []
        for v in self.views:
            cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, v.camera)
            if cam_id < 0:
                raise ValueError(f"no camera {v.camera!r} in the model")
            cam_ids.append(cam_id)
        self._check_textures(strict)
        samples = max(1, int(round(math.sqrt(profile.offsamples)))) if profile.offsamples > 1 else 1
        self.zfar = float(model.vis.map.zfar * model.stat.extent)
        # one render context per set of drawn geom groups (a context draws one set)
        groups: dict[tuple[int, ...], list[int]] = {}
        for j, v in enumerate(self.views):
            groups.setdefault(tuple(sorted(v.geomgroups)), []).append(j)
        with wp.ScopedDevice(self.device):
            self._m = mjw.put_model(model)
            self._d = mjw.make_data(model, nworld=self.max_envs)
            self._state_dev = wp.zeros((self.max_envs, self.nstate), dtype=wp.float32)
            self._contexts = []  # (render context, [(view index, pixel offset of its image in the context)])
            for geomgroups, js in groups.items():
                rc = mjw.create_render_context(
                    model, nworld=self.max_envs,
                    cam_res=[(self.views[j].width, self.views[j].height) for j in js],
                    render_rgb=[not self.views[j].depth for j in js],
                    render_depth=[self.views[j].depth for j in js],
                    render_seg=False,
                    cam_active=[cam_ids[j] for j in js],
                    enabled_geom_groups=list(geomgroups),
                    use_shadows=bool(profile.shadows),
                    render_skybox=bool(profile.skybox),
                    samples_per_pixel=samples,
                )
                rgb_adr, depth_adr = rc.rgb_adr.numpy(), rc.depth_adr.numpy()
                self._contexts.append((rc, [(j, int(depth_adr[i] if self.views[j].depth else rgb_adr[i]))
                                            for i, j in enumerate(js)]))
            self._outs = [
                wp.zeros((self.max_envs, v.height, v.width), dtype=wp.float32) if v.depth
                else wp.zeros((self.max_envs, v.height, v.width, 3), dtype=wp.uint8)
                for v in self.views
            ]
        self._torch_outs = None
        self.calls = 0
        self.frames = 0

    def _check_textures(self, strict: bool) -> None:
        """Reject (or warn about) cube-mapped textures on geoms drawn by an RGB view."""
        m = self.model
        groups = sorted({g for v in self.views if not v.depth for g in v.geomgroups})
        found: dict[str, list[str]] = {}
        for g in np.flatnonzero(np.isin(m.geom_group, groups)):
            mat = m.geom_matid[g]
            if mat < 0:
                continue
            for tex in m.mat_texid[mat]:
                if tex >= 0 and m.tex_type[tex] == mujoco.mjtTexture.mjTEXTURE_CUBE:
                    tex_name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_TEXTURE, tex) or f"#{tex}"
                    found.setdefault(tex_name, []).append(mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) or f"#{g}")
        if not found:
            return
        what = "; ".join(f"texture {t!r} on geoms {gs}" for t, gs in found.items())
        if strict:
            raise _unsupported(f"cube-mapped textures (mjTEXTURE_CUBE) on geoms ({what})",
                               "MuJoCo Warp's renderer samples them as one flat image; use backend='cpu' for these "
                               "images, or WarpRenderer(strict=False) to time them")
        import warnings

        warnings.warn(f"WarpRenderer(strict=False): cube-mapped textures drawn as flat images ({what})",
                      RuntimeWarning, stacklevel=3)

    def _load_states(self, states: Any) -> int:
        """Copy ``states`` into the first rows of the device state array; returns their number."""
        wp = self._wp
        if isinstance(states, np.ndarray) or isinstance(states, (list, tuple)):
            host = np.atleast_2d(np.asarray(states, dtype=np.float64))
            k = len(host)
            self._check(k, host.shape[1])
            if k:
                wp.copy(self._state_dev, wp.array(host.astype(np.float32), dtype=wp.float32, device="cpu"),
                        count=k * self.nstate)
            return k
        if not isinstance(states, wp.array):  # a torch tensor
            states = wp.from_torch(states.contiguous().float())
        if states.ndim != 2:
            raise ValueError(f"states must be (k, {self.nstate}), got shape {states.shape}")
        k = states.shape[0]
        self._check(k, states.shape[1])
        if k:
            wp.copy(self._state_dev, states, count=k * self.nstate)
        return k

    def _check(self, k: int, width: int) -> None:
        if width != self.nstate:
            raise ValueError(f"states must have {self.nstate} columns (mjSTATE_INTEGRATION), got {width}")
        if k > self.max_envs:
            raise ValueError(f"renderer was built for {self.max_envs} envs, got {k}")

    def render(self, states: Any) -> list[Any]:
        """Images of every view for each state row.

        Args:
            states: ``(k, nstate)`` integration states: a numpy array, or a device ``wp.array`` / torch tensor.

        Returns:
            One array per view: ``(k, H, W, 3)`` uint8 (RGB) or ``(k, H, W)`` float32
            metric depth; numpy arrays, or torch tensors on the device with ``output="torch"``.
        """
        wp, mjw = self._wp, self._mjw
        unpack_rgb_u8, extract_depth = _kernels()
        k = self._load_states(states)
        with wp.ScopedDevice(self.device):
            mjw.set_state(self._m, self._d, self._state_dev, int(STATE_SPEC))
            mjw.kinematics(self._m, self._d)
            mjw.com_pos(self._m, self._d)
            mjw.camlight(self._m, self._d)
            if self.model.nflex:
                mjw.flex(self._m, self._d)
            for rc, members in self._contexts:
                mjw.refit_bvh(self._m, self._d, rc)
                mjw.render(self._m, self._d, rc)
                if k == 0:
                    continue
                for j, adr in members:
                    v = self.views[j]
                    if v.depth:
                        wp.launch(extract_depth, dim=(k, v.height * v.width),
                                  inputs=[rc.depth_data, adr, v.width, self.zfar], outputs=[self._outs[j]])
                    else:
                        wp.launch(unpack_rgb_u8, dim=(k, v.height * v.width),
                                  inputs=[rc.rgb_data, adr, v.width], outputs=[self._outs[j]])
        self.calls += 1
        self.frames += k * len(self.views)
        if self.output == "torch":
            if self._torch_outs is None:
                self._torch_outs = [wp.to_torch(o) for o in self._outs]
            return [t[:k] for t in self._torch_outs]
        return [o.numpy()[:k].copy() for o in self._outs]

    def close(self) -> None:
        """Drop the device buffers (nothing else to free)."""
        self._contexts = []
        self._outs = []
        self._torch_outs = None
