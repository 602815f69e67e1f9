"""Rendered frames/s of the MuJoCo Warp backend next to the CPU (OpenGL) path; prints a Markdown table.

Usage: MUJOCO_GL=egl python scripts/bench_warp.py [--num-envs 1024] [--sizes 64 128]
       [--tasks VRB/Walker-v1 VRB/ShadowCube-v0] [--repeats 5] [--device cuda:0] [--no-env]

Per task and image size, N states are taken from N CPU envs after a few random steps, then:

* ``cpu GL``: ``TiledRenderer.render(states)`` (one process, OpenGL; EGL on a GPU machine, llvmpipe without);
* ``warp -> device``: ``WarpRenderer(output="torch").render(states_on_device)``, pixels stay on the device;
* ``warp -> host``: ``WarpRenderer(output="numpy").render(host_states)``, including both transfers;
* ``env step`` rows (unless ``--no-env``): ``VRBVectorEnv.step`` with pixel observations of all N envs
  (physics, task logic, rendering, frame stacks), backend ``cpu`` and ``warp``.

ShadowCube's cube is cube-mapped, which MuJoCo Warp draws as a flat image: it is timed with
``WarpRenderer(strict=False)`` (a warning is printed); the VRB env refuses that view on the warp backend.
Needs ``pip install 'visual_robo_bench[gpu]'``. Runs on Warp's CPU device too (use a small
``--num-envs``): then the figures only check that the script works. Kernel compilation is excluded
(one warm-up call per renderer).
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np


def _timed(fn, repeats: int, sync) -> float:
    """Seconds per call of ``fn`` (after one warm-up call)."""
    fn()
    sync()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - t) / repeats


def _states(task_id: str, n: int, steps: int = 5) -> tuple[object, np.ndarray]:
    from visual_robo_bench.envs import VRBVectorEnv

    env = VRBVectorEnv(task_id, n, obs_mode="state")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
    return env, env.sim.state.copy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--tasks", nargs="+", default=["VRB/Walker-v1", "VRB/ShadowCube-v0"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None, help="Warp device (default: cuda:0 if available, else cpu)")
    parser.add_argument("--no-env", action="store_true", help="skip the full env-step rows")
    args = parser.parse_args()

    from visual_robo_bench.core.warp_sim import default_device, import_warp
    from visual_robo_bench.render.tiled import TiledRenderer, View
    from visual_robo_bench.render.warp_render import WarpRenderer

    wp, _ = import_warp()  # Warp's informational logs off, as in the envs
    device = wp.get_device(args.device or default_device())
    if args.device:
        import os

        os.environ["VRB_WARP_DEVICE"] = args.device  # the env rows use the same device
    gpu = device.name if device.is_cuda else f"none (Warp CPU device: {platform.processor() or platform.machine()})"
    print(f"device: {device.alias} | GPU: {gpu} | warp {wp.__version__} | N = {args.num_envs} envs, "
          f"{args.repeats} timed calls each\n")
    rows = []
    sync = wp.synchronize
    for task_id in args.tasks:
        base, states = _states(task_id, args.num_envs)
        cam = base.cfg.policy_cameras[0]
        for size in args.sizes:
            view = View(cam, size, size)
            n = len(states)
            gl = TiledRenderer(base.model, [view], n, base.cfg.render_profile)
            try:
                s = _timed(lambda: gl.render(states), args.repeats, lambda: None)
            finally:
                gl.close()
            rows.append((task_id, size, "cpu GL", n / s))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # ShadowCube's cube map: see the docstring
                wr_dev = WarpRenderer(base.model, [view], n, base.cfg.render_profile, device=str(device),
                                      output="torch", strict=False)
                wr_host = WarpRenderer(base.model, [view], n, base.cfg.render_profile, device=str(device),
                                       strict=False)
            dev_states = wp.to_torch(wp.array(states.astype(np.float32), device=device))
            s = _timed(lambda: wr_dev.render(dev_states), args.repeats, sync)
            rows.append((task_id, size, "warp -> device", n / s))
            s = _timed(lambda: wr_host.render(states), args.repeats, sync)
            rows.append((task_id, size, "warp -> host", n / s))
            if not args.no_env:
                for backend in ("cpu", "warp"):
                    rows.append((task_id, size, f"env step ({backend})",
                                 _env_rate(task_id, n, size, backend, args.repeats, sync)))
        base.close()
    print("| task | image | path | frames/s |")
    print("|---|---|---|---|")
    for task_id, size, path, fps in rows:
        print(f"| {task_id} | {size}x{size} | {path} | {fps:,.0f} |")


def _env_rate(task_id: str, n: int, size: int, backend: str, repeats: int, sync) -> float:
    """Rendered frames/s of ``VRBVectorEnv.step`` (one policy camera, all envs rendered); NaN if refused."""
    from visual_robo_bench.envs import VRBVectorEnv

    try:
        env = VRBVectorEnv(task_id, n, backend=backend, image_size=(size, size))
        env.reset(seed=0)
    except NotImplementedError as err:
        print(f"[{task_id} {size}px env step ({backend})] refused: {err}")
        return float("nan")
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
    try:
        s = _timed(lambda: env.step(acts), repeats, sync)
    finally:
        env.close()
    return n / s


if __name__ == "__main__":
    main()
