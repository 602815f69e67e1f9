"""Helpers shared by the task-specific test modules.

``conftest.py`` puts this folder on ``sys.path`` (the suite runs with
``--import-mode=importlib``, under which test modules cannot import each other):
``from vrb_helpers import make, project``.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from visual_robo_bench.models import ModelNotFoundError, resolve_model


@contextlib.contextmanager
def registry_snapshot(module_prefix: str | None = None) -> Iterator[None]:
    """Undo every task registration made inside (VRB's registry and Gymnasium's), and forget the modules whose
    names start with ``module_prefix`` (a test's task package, imported afresh by the next test)."""
    from visual_robo_bench import registry

    tasks, specs, modules = dict(registry._TASKS), set(gym.registry), set(sys.modules)
    try:
        yield
    finally:
        for key in set(registry._TASKS) - set(tasks):
            del registry._TASKS[key]
        for key in set(gym.registry) - specs:
            del gym.registry[key]
        for name in set(sys.modules) - modules:
            if module_prefix and name.startswith(module_prefix):
                del sys.modules[name]


def model_available(robot: str) -> bool:
    """Whether the model resolver finds ``robot`` here (offline copies; never downloads in the tests)."""
    try:
        resolve_model(robot)
    except ModelNotFoundError:
        return False
    return True


def needs_model(robot: str, reason: str) -> pytest.MarkDecorator:
    """Skip marker for tests that need ``robot``'s model."""
    return pytest.mark.skipif(not model_available(robot), reason=reason)


def make(task_id, n=1, **kw):
    """``gym.make_vec`` with ``autoreset_mode=DISABLED`` unless given."""
    kw.setdefault("autoreset_mode", AutoresetMode.DISABLED)
    return gym.make_vec(task_id, num_envs=n, **kw)


def project(venv, cam_name, points, env=0):
    """Pixel coordinates (u right, v down) of world points in camera ``cam_name`` of env ``env``."""
    model = venv.model
    cam = model.camera(cam_name).id
    data = venv.sim.data(env)
    mujoco.mj_kinematics(model, data)
    mujoco.mj_camlight(model, data)
    pos, R = data.cam_xpos[cam], data.cam_xmat[cam].reshape(3, 3)
    h, w = venv.cfg.image_size
    f = (h / 2) / math.tan(math.radians(model.cam_fovy[cam]) / 2)
    pc = (np.asarray(points) - pos) @ R  # camera frame: x right, y up, -z forward
    assert (pc[:, 2] < 0).all(), "points behind the camera"
    u = w / 2 + f * pc[:, 0] / -pc[:, 2]
    v = h / 2 - f * pc[:, 1] / -pc[:, 2]
    return np.stack([u, v], axis=1)


def box_corners(center, quat, half):
    """The 8 world corners of a box (``half``: scalar or 3 half extents)."""
    R = np.zeros(9)
    mujoco.mju_quat2Mat(R, np.asarray(quat, float))
    half = np.broadcast_to(np.asarray(half, float), (3,))
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    return np.asarray(center) + (signs * half) @ R.reshape(3, 3).T


def hold(venv):
    """The action that keeps the current actuator targets (the normalised previous action)."""
    return venv.state["prev_action"].astype(np.float32).copy()


def settle(venv, env, steps=15):
    """Step ``steps`` times holding the targets; no env may terminate. Returns the last (obs, info)."""
    for _ in range(steps):
        obs, r, te, tr, info = env.step(hold(venv))
    assert not te.any()
    return obs, info


def check_frame_stack_round_trip(env, zeros_like, equal) -> list:
    """``get_frame_stacks``/``set_frame_stacks`` really move the stacks: the saved ones hold images, zeros written
    reach the env, and writing the saved ones back restores them (``equal(a, b)``: numpy or torch equality).
    Returns the saved stacks."""
    stacks = env.get_frame_stacks()
    assert stacks and all(s.any() for s in stacks)  # real images, not zeros
    env.set_frame_stacks([zeros_like(s) for s in stacks])
    assert all(not s.any() for s in env.get_frame_stacks())  # the zeros reached the env
    env.set_frame_stacks(stacks)
    restored = env.get_frame_stacks()
    assert len(restored) == len(stacks) and all(equal(r, s) for r, s in zip(restored, stacks))
    return stacks


def write_seeded_agents(directory, module: str, values: dict[int, float]) -> str:
    """Write ``directory/module.py`` with one constant-action agent factory ``s{seed}`` per training seed
    (``values[seed]`` is its action), for ``{seed}``-template tests; returns ``module``."""
    factories = "".join(f"def s{seed}(env):\n    return Const(env, {value!r})\n" for seed, value in values.items())
    (directory / f"{module}.py").write_text(
        "import numpy as np\n"
        "class Const:\n"
        "    def __init__(self, env, value):\n"
        "        self.a, self.value = env.single_action_space.shape[0], value\n"
        "    def act(self, obs):\n"
        "        return np.full((len(obs['proprio']), self.a), self.value, np.float32)\n" + factories)
    return module


_SLIDE_TASK_MODULE = '''
from dataclasses import dataclass

import mujoco
import numpy as np

from visual_robo_bench import CameraConfig, Evaluation, Task, TaskConfig, register_task
from visual_robo_bench.core import scene

XML = """<mujoco><worldbody><body name="b" pos="0 0 0.5"><joint name="s" type="slide" axis="1 0 0"/>
<geom type="box" size=".1 .1 .1"/></body></worldbody><actuator><motor joint="s" ctrlrange="-1 1"/></actuator></mujoco>"""


@dataclass(frozen=True)
class LabConfig(TaskConfig):
    max_episode_steps: int = 50
    proprio_dim: int = 2
    privileged_dim: int = PRIVILEGED_DIM
    image_size: tuple = (16, 16)
    render_size: tuple = (16, 16)
    cameras: tuple = (CameraConfig("cam", pos=(0, -2, 1), lookat=(0, 0, 0.3)),)
    policy_cameras: tuple = ("cam",)
    render_camera: str = "cam"
    goal: float = 0.5


@register_task("TASK_ID")
class LabSlide(Task):
    """A box slides to x = 0.5 (a third-party package's task, for the tests).

    **Description.** A box on a rail, pushed by a motor, slides to x = 0.5.

    **Observations.** ``proprio``: position and velocity; ``privileged``: those and the distance to the goal.

    **Actions.** The motor's force.

    **Reward terms.** ``dist``: minus the distance to the goal.

    **Success.** Within 5 cm of the goal.

    **Episode end.** 50 steps.

    **Cameras.** ``cam``: the rail from the side.

    **Version history.** v0: first version.
    """

    config_cls = LabConfig
    metric_names = ("distance",)

    def build_scene(self):
        spec = mujoco.MjSpec.from_string(XML)
        scene.add_floor(spec)
        scene.finish_scene(spec, self.cfg.cameras, self.cfg.render_profile)
        return spec

    def initialize_episode(self, sim, state, ids, rngs):
        sim.qpos[ids, 0] = [r.uniform(-0.1, 0.1) for r in rngs]

    def observe(self, sim, state, ids):
        x, v = sim.qpos[ids, 0], sim.qvel[ids, 0]
        obs = {"proprio": np.stack([x, v], 1)}
        if self.cfg.privileged_dim:
            obs["privileged"] = np.stack([x, v, x - self.cfg.goal], 1)
        return obs

    def reward_terms(self, sim, state, a, ids):
        return {"dist": -np.abs(sim.qpos[ids, 0] - self.cfg.goal)}

    def evaluate(self, sim, state, ids):
        d = np.abs(sim.qpos[ids, 0] - self.cfg.goal)
        return Evaluation(d < 0.05, np.zeros(len(ids), bool), {"distance": d})
'''


def slide_task_module(task_id: str, privileged_dim: int = 3) -> str:
    """The source of a third-party package's task module that registers ``task_id`` (``LabConfig``, ``LabSlide``):
    a box on a rail slides to x = 0.5; its docstring follows the template.

    Args:
        task_id: The id it registers, e.g. ``"MyLab/Reach-v0"``.
        privileged_dim: 3 (position, velocity, distance to the goal), or 0 for a task without privileged state.
    """
    return _SLIDE_TASK_MODULE.replace("TASK_ID", task_id).replace("PRIVILEGED_DIM", str(privileged_dim))
