"""visual_robo_bench: visual (pixel-observation) robot-learning tasks on MuJoCo.

``import visual_robo_bench`` registers every task with Gymnasium::

    import gymnasium as gym
    import visual_robo_bench

    env = gym.make("VRB/Walker-v0")
    envs = gym.make_vec("VRB/Walker-v0", num_envs=64)

Importing is cheap: MuJoCo models are built only when an env is created.
"""

from .core.config import CameraConfig, RenderProfile, TaskConfig
from .core.task import Evaluation, Task, TaskState
from .registry import get_task, list_tasks, register_task

__version__ = "0.1.0"

from . import tasks as _tasks  # noqa: E402,F401  (registers the built-in tasks)

__all__ = [
    "CameraConfig",
    "Evaluation",
    "RenderProfile",
    "Task",
    "TaskConfig",
    "TaskState",
    "__version__",
    "get_task",
    "list_tasks",
    "register_task",
]
