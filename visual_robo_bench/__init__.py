"""visual_robo_bench: visual (pixel-observation) robot-learning tasks on MuJoCo.

``import visual_robo_bench`` registers every task with Gymnasium::

    import gymnasium as gym
    import visual_robo_bench

    env = gym.make("VRB/Walker-v1")
    envs = gym.make_vec("VRB/Walker-v1", num_envs=64)

Importing is cheap: MuJoCo models are built only when an env is created.
"""

from .core.config import CameraConfig, RenderProfile, TaskConfig
from .core.task import Evaluation, Task, TaskState
from .registry import get_task, list_tasks, register_task
from .render import gl as _gl  # noqa: F401  (its fork hook: a child forked after Mesa ran raises, never hangs)

__version__ = "0.1.0"



def _load_builtin_tasks() -> None:
    """Import ``visual_robo_bench.tasks`` (the repository's top-level ``tasks/``), registering every task.

    Installed (``pip install .`` or ``-e .``), ``tasks/`` lives inside the package
    namespace. Imported straight from a source checkout (the repository root on
    ``sys.path``), it is loaded from beside the package instead.
    """
    import importlib
    import importlib.util
    import sys
    from pathlib import Path

    try:
        importlib.import_module(f"{__name__}.tasks")
        return
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.tasks":
            raise
    init = Path(__file__).resolve().parent.parent / "tasks" / "__init__.py"
    spec = importlib.util.spec_from_file_location(f"{__name__}.tasks", init,
                                                  submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None:  # pragma: no cover - broken checkout
        raise ImportError(f"cannot find the built-in tasks at {init}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


_load_builtin_tasks()

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
