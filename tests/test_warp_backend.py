"""The MuJoCo Warp backend (``VRBVectorEnv(..., backend="warp")``) against the CPU backend.

The tests that need MuJoCo Warp skip when ``mujoco_warp`` is not installed (``pip install
'visual_robo_bench[gpu]'``); the error tests and the Warp logging test (a stand-in ``warp`` module) run
without it. Without a GPU the warp worlds run on Warp's CPU device. Warp compiles its kernels
on first use and caches them (``~/.cache/warp``, or ``WARP_CACHE_PATH``). Measured
on the 2-core CPU machine: from a cold cache this module takes 2 min 12 s (kernel
compilation: ShadowCube's contact kernels ~50 s, Walker's physics and renderer
~40 s + ~20 s), from a warm cache ~30 s. ``VRB_TEST_WARP=0`` skips the tests that
build warp worlds (the error tests still run). GPU-only checks (device tensors)
skip when ``wp.is_cuda_available()`` is False.

Tolerances (float32 MuJoCo Warp vs float64 MuJoCo, random actions, measured on
Warp's CPU device): Walker after 10 control steps max |dqpos| 4e-6, |dqvel| 7e-5,
|dxpos| 4e-7 (asserted: 1e-3, 2e-2, 1e-3); ShadowCube (contact-rich, so it
diverges faster) after 2 control steps |dqpos| 1.3e-3, |dxpos| 1.3e-4 (asserted:
5e-2, 1e-2). Images: Walker 36x36 RGB mean |diff| 6.0/255, median 0 (lighting
model and texture filtering differ; asserted mean < 15, median <= 2); planar
depth median |diff| ~3 mm (asserted < 2 cm).
"""

from __future__ import annotations

import importlib
import os
import sys
import types

import mujoco
import numpy as np
import pytest

from visual_robo_bench.core import warp_sim
from visual_robo_bench.core.config import RenderProfile
from visual_robo_bench.envs import VRBVectorEnv
from visual_robo_bench.render.tiled import TiledRenderer, View
from vrb_helpers import check_frame_stack_round_trip

try:
    import warp as wp

    importlib.import_module("mujoco_warp")
    warp_sim.quiet_warp(wp)  # as the backend does, before wp.is_cuda_available() below initializes Warp
except ImportError:
    wp = None

WALKER, CUBE = "VRB/Walker-v1", "VRB/ShadowCube-v0"
SMALL = dict(image_size=(36, 36))
N = 4

NO_WARP = "MuJoCo Warp not installed: pip install 'visual_robo_bench[gpu]'"
needs_warp = pytest.mark.skipif(wp is None, reason=NO_WARP)
needs_worlds = pytest.mark.skipif(wp is None or os.environ.get("VRB_TEST_WARP") == "0",
                                  reason=NO_WARP if wp is None else
                                  "builds MuJoCo Warp worlds (kernel compilation); VRB_TEST_WARP=0 skips it")
needs_cuda = pytest.mark.skipif(wp is None or not wp.is_cuda_available(),
                                reason=NO_WARP if wp is None else "no CUDA device for Warp")


def _pair(task_id: str, **kwargs):
    return VRBVectorEnv(task_id, N, **kwargs), VRBVectorEnv(task_id, N, backend="warp", **kwargs)


def _actions(env, steps: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(steps)]


# ---------------------------------------------------------------- errors (no worlds built)
def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"backend must be one of \['cpu', 'warp'\], got 'gpu'"):
        VRBVectorEnv(WALKER, 1, backend="gpu")


def test_missing_warp_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco_warp", None)  # import mujoco_warp -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'visual_robo_bench\[gpu\]'"):
        VRBVectorEnv(WALKER, 1, backend="warp", obs_mode="state")


def _fake_warp(monkeypatch, **config) -> types.ModuleType:
    """Stand-ins for ``warp`` (its ``config`` holding ``config``) and ``mujoco_warp`` in ``sys.modules``."""
    wp_ = types.ModuleType("warp")
    wp_.config = types.SimpleNamespace(**config)
    if "log_level" in config:
        wp_.LOG_DEBUG, wp_.LOG_INFO, wp_.LOG_WARNING, wp_.LOG_ERROR = 10, 20, 30, 40
    monkeypatch.setitem(sys.modules, "warp", wp_)
    monkeypatch.setitem(sys.modules, "mujoco_warp", types.ModuleType("mujoco_warp"))
    monkeypatch.setattr(warp_sim, "_QUIETED", None, raising=False)  # quiet_warp acts once per warp module
    return wp_


def test_warp_info_messages_are_off_but_warnings_stay(monkeypatch):
    """Warp's init banner and per-module load lines are turned off (before Warp initializes), once per
    process; warnings and errors stay, and a logging setting the user chose first is left alone."""
    old = _fake_warp(monkeypatch, quiet=False, verbose=False)  # Warp with config.quiet
    assert warp_sim.import_warp()[0] is old and old.config.quiet is True
    old.config.quiet = False  # the user turns them back on after the first env: not undone
    warp_sim.import_warp()
    assert old.config.quiet is False
    assert _fake_warp(monkeypatch, quiet=False, verbose=True).config.quiet is False
    warp_sim.import_warp()
    assert sys.modules["warp"].config.quiet is False

    new = _fake_warp(monkeypatch, log_level=20)  # newer Warp: log_level (quiet is deprecated: not touched)
    warp_sim.import_warp()
    assert vars(new.config) == {"log_level": new.LOG_WARNING}
    debug = _fake_warp(monkeypatch, log_level=10)  # the user asked for debug output first
    warp_sim.import_warp()
    assert debug.config.log_level == debug.LOG_DEBUG


@pytest.mark.parametrize("kwargs, feature", [(dict(render_workers=2), "render_workers"), (dict(nthread=2), "nthread")])
def test_cpu_only_options_are_refused(kwargs, feature):
    with pytest.raises(NotImplementedError, match=f"{feature}.*'warp' backend"):
        VRBVectorEnv(WALKER, 2, backend="warp", **kwargs)


@needs_warp
def test_renderer_refuses_reflections_and_cube_textures():
    from visual_robo_bench.render.warp_render import WarpRenderer

    env = VRBVectorEnv(CUBE, 1, obs_mode="state")
    try:
        view = View(env.cfg.policy_cameras[0], 16, 16)
        with pytest.raises(NotImplementedError, match="reflections.*'warp' backend"):
            WarpRenderer(env.model, [view], 1, RenderProfile(reflections=True))
        with pytest.raises(NotImplementedError, match=r"cube-mapped textures.*'object'.*'warp' backend"):
            WarpRenderer(env.model, [view], 1, env.cfg.render_profile)
    finally:
        env.close()


# ---------------------------------------------------------------- agreement (builds worlds)
@pytest.fixture(scope="module")
def walker_pair():
    cpu, gpu = _pair(WALKER, **SMALL)
    yield cpu, gpu
    cpu.close()
    gpu.close()


@needs_worlds
def test_spaces_and_state_layout_identical(walker_pair):
    cpu, warp = walker_pair
    assert warp.single_observation_space == cpu.single_observation_space
    assert warp.observation_space == cpu.observation_space
    assert warp.action_space == cpu.action_space
    assert warp.sim.nstate == cpu.sim.nstate == mujoco.mj_stateSize(cpu.model, mujoco.mjtState.mjSTATE_INTEGRATION)


@needs_worlds
def test_walker_states_agree_after_steps(walker_pair):
    cpu, warp = walker_pair
    oc, _ = cpu.reset(seed=3)
    ow, _ = warp.reset(seed=3)
    np.testing.assert_array_equal(warp.sim.state, cpu.sim.state)  # same initialization, same layout
    np.testing.assert_allclose(ow["proprio"], oc["proprio"], atol=1e-5)
    for a in _actions(cpu, 10):
        oc, rc, tc, _, _ = cpu.step(a)
        ow, rw, tw, _, iw = warp.step(a)
        assert not iw["physics_error"].any()
    np.testing.assert_allclose(warp.sim.qpos, cpu.sim.qpos, atol=1e-3)
    np.testing.assert_allclose(warp.sim.qvel, cpu.sim.qvel, atol=2e-2)
    np.testing.assert_allclose(warp.sim.xpos, cpu.sim.xpos, atol=1e-3)
    np.testing.assert_allclose(rw, rc, atol=1e-2)
    np.testing.assert_array_equal(tw, tc)
    np.testing.assert_allclose(ow["proprio"], oc["proprio"], atol=2e-2)
    # pixels: same spaces, similar images (ray casting vs OpenGL)
    diff = np.abs(ow["pixels"].astype(np.float64) - oc["pixels"].astype(np.float64))
    assert ow["pixels"].shape == oc["pixels"].shape and ow["pixels"].dtype == np.uint8
    assert diff.mean() < 15.0, f"mean |RGB diff| {diff.mean():.2f} / 255"
    assert np.median(diff) <= 2.0


@needs_worlds
def test_walker_depth_and_rgb_renderers_agree(walker_pair):
    from visual_robo_bench.render.warp_render import WarpRenderer

    cpu, _ = walker_pair
    cpu.reset(seed=5)
    for a in _actions(cpu, 3, seed=1):
        cpu.step(a)
    cam = cpu.cfg.policy_cameras[0]
    views = [View(cam, 48, 64), View(cam, 32, 32, depth=True)]
    gl = TiledRenderer(cpu.model, views, N, cpu.cfg.render_profile)
    try:
        ref = gl.render(cpu.sim.state)
    finally:
        gl.close()
    out = WarpRenderer(cpu.model, views, N, cpu.cfg.render_profile).render(cpu.sim.state[:3])
    assert out[0].shape == (3, 48, 64, 3) and out[0].dtype == np.uint8
    assert out[1].shape == (3, 32, 32) and out[1].dtype == np.float32
    rgb = np.abs(out[0].astype(np.float64) - ref[0][:3])
    depth = np.abs(out[1] - ref[1][:3])
    assert rgb.mean() < 15.0, rgb.mean()
    assert np.median(depth) < 0.02 and depth.mean() < 0.5, (np.median(depth), depth.mean())


@needs_worlds
def test_warp_state_clones_and_crosses_backends(walker_pair):
    cpu, warp = walker_pair
    warp.reset(seed=7)
    acts = _actions(warp, 4, seed=2)
    saved = warp.get_state()
    first = [warp.step(a)[1] for a in acts]
    end = warp.sim.state.copy()
    warp.set_state(saved)
    again = [warp.step(a)[1] for a in acts]
    np.testing.assert_allclose(again, first, atol=1e-6)
    np.testing.assert_allclose(warp.sim.state, end, atol=1e-6)
    # a CPU state loaded into the warp env gives the same kinematics
    cpu.reset(seed=8)
    warp.set_state(cpu.get_state())
    np.testing.assert_allclose(warp.sim.xpos, cpu.sim.xpos, atol=1e-5)
    np.testing.assert_allclose(warp.observe()["proprio"], cpu.observe()["proprio"], atol=1e-4)


@needs_worlds
def test_per_env_model_fields_match_cpu(walker_pair):
    from visual_robo_bench.core.sim import BatchSim
    from visual_robo_bench.core.warp_sim import WarpSim

    model = walker_pair[0].model
    rootz = model.joint("rootz").qposadr[0]
    sims = [BatchSim(model, 2, 1), WarpSim(model, 2)]
    for sim in sims:
        sim.reset(np.arange(2))
        sim.ctrl[:] = 0.5  # the same push in both envs; only their masses and frictions differ
        # airborne for the 40 steps (falls ~0.8 m of 2 m): contact-free, so float32 Warp and float64 MuJoCo stay
        # within 3e-6 of each other (on the floor they drift apart by ~3e-2 within 40 steps)
        sim.qpos[:, rootz] = 2.0
        sim.expand("body_mass")[1] *= 3.0
        sim.expand("geom_friction")[1, :, 0] = 0.1
        sim.set_const(np.arange(2))
        sim.forward(np.arange(2))
        for _ in range(40):
            assert not sim.step(None, 2).any()
    cpu, warp = sims
    np.testing.assert_allclose(warp.qpos, cpu.qpos, atol=5e-3)
    assert np.abs(cpu.qpos[0] - cpu.qpos[1]).max() > 1e-2  # the per-env values matter
    # airborne bodies never touch anything, so friction cannot show in the motion: check it reached the Warp model
    fric = warp.mjw_model.geom_friction.numpy()
    assert fric.shape == (2, model.ngeom, 3)
    np.testing.assert_allclose(fric[1, :, 0], 0.1)
    np.testing.assert_allclose(fric[0], model.geom_friction, rtol=1e-6)
    np.testing.assert_allclose(fric[1, :, 1:], model.geom_friction[:, 1:], rtol=1e-6)
    np.testing.assert_allclose(fric, cpu.expand("geom_friction"), rtol=1e-6)
    mass = warp.mjw_model.body_mass.numpy()
    np.testing.assert_allclose(mass, np.stack([model.body_mass, 3.0 * model.body_mass]), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="'jnt_type'.*'warp' backend"):
        warp.expand("jnt_type")


@needs_worlds
def test_shadowcube_physics_and_depth_agree():
    from visual_robo_bench.render.warp_render import WarpRenderer

    cpu, warp = _pair(CUBE, obs_mode="state")
    try:
        assert warp.observation_space == cpu.observation_space
        cpu.reset(seed=0)
        warp.reset(seed=0)
        for a in _actions(cpu, 2):
            _, rc, _, _, _ = cpu.step(a)
            _, rw, _, _, iw = warp.step(a)
            assert not iw["physics_error"].any()
        np.testing.assert_allclose(warp.sim.qpos, cpu.sim.qpos, atol=5e-2)
        np.testing.assert_allclose(warp.sim.xpos, cpu.sim.xpos, atol=1e-2)
        view = View(cpu.cfg.policy_cameras[0], 32, 32, depth=True)  # depth: no textures involved
        gl = TiledRenderer(cpu.model, [view], N, cpu.cfg.render_profile)
        try:
            ref = gl.render(cpu.sim.state)[0]
        finally:
            gl.close()
        out = WarpRenderer(cpu.model, [view], N, cpu.cfg.render_profile).render(cpu.sim.state)[0]
        depth = np.abs(out - ref)
        assert np.median(depth) < 0.01 and depth.mean() < 0.1, (np.median(depth), depth.mean())
    finally:
        cpu.close()
        warp.close()


# ---------------------------------------------------------------- GPU only
@needs_cuda
def test_torch_output_stays_on_the_gpu():
    import torch

    from visual_robo_bench.render.warp_render import WarpRenderer

    env = VRBVectorEnv(WALKER, N, backend="warp", **SMALL)
    try:
        env.reset(seed=0)
        views = [View(env.cfg.policy_cameras[0], 36, 36), View(env.cfg.policy_cameras[0], 36, 36, depth=True)]
        host = WarpRenderer(env.model, views, N, env.cfg.render_profile, device="cuda:0").render(env.sim.state)
        r = WarpRenderer(env.model, views, N, env.cfg.render_profile, device="cuda:0", output="torch")
        dev = r.render(torch.as_tensor(env.sim.state, device="cuda:0"))
        assert dev[0].is_cuda and dev[0].dtype == torch.uint8 and tuple(dev[0].shape) == (N, 36, 36, 3)
        assert dev[1].is_cuda and dev[1].dtype == torch.float32 and tuple(dev[1].shape) == (N, 36, 36)
        np.testing.assert_array_equal(dev[0].cpu().numpy(), host[0])
        np.testing.assert_allclose(dev[1].cpu().numpy(), host[1], atol=1e-6)
        assert env.sim.device.is_cuda
    finally:
        env.close()


@needs_worlds
def test_torch_pixels_equal_the_host_pixels():
    """torch_pixels=True keeps the frame stacks on the Warp device: the same values as the host path, as tensors."""
    import torch

    kw = dict(num_envs=3, max_episode_steps=3, backend="warp", **SMALL)
    host = VRBVectorEnv(WALKER, **kw)
    dev = VRBVectorEnv(WALKER, torch_pixels=True, pixel_layout="CHW", **kw)
    try:
        oh, _ = host.reset(seed=0)
        od, _ = dev.reset(seed=0)
        assert isinstance(od["pixels"], torch.Tensor) and isinstance(od["proprio"], np.ndarray)
        rng = np.random.default_rng(0)
        for _ in range(5):  # through a NEXT_STEP autoreset (episodes of 3 steps)
            a = rng.uniform(-1, 1, host.action_space.shape).astype(np.float32)
            oh, *_ = host.step(a)
            od, *_ = dev.step(a)
            assert od["pixels"].dtype == torch.uint8 and tuple(od["pixels"].shape) == dev.observation_space["pixels"].shape
            np.testing.assert_array_equal(od["pixels"].cpu().numpy(), oh["pixels"].transpose(0, 3, 1, 2))
        # frame-stack round trip on the device: zeroing must reach the env, and restoring must bring the saved ones back
        stacks = check_frame_stack_round_trip(dev, torch.zeros_like, torch.equal)
        assert all(isinstance(s, torch.Tensor) for s in stacks)  # kept on the device
    finally:
        host.close()
        dev.close()


def test_torch_pixels_need_the_warp_backend():
    with pytest.raises(ValueError, match="torch_pixels=True needs backend='warp'"):
        VRBVectorEnv(WALKER, num_envs=1, torch_pixels=True)
