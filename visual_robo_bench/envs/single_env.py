"""The single ``gymnasium.Env``: a batch of one of :class:`VRBVectorEnv`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from .vector_env import VRBState, VRBVectorEnv, _action_dtype_ok


def _unbatch(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _unbatch(v) for k, v in x.items() if not k.startswith("_")}
    arr = np.asarray(x)
    item = arr[0]
    return item.item() if arr.ndim == 1 else item.copy()


class VRBEnv(gym.Env):
    """One environment of a VRB task (same keywords as the vector env but the vector-only ones).

    Its ``np_random`` is the generator that draws the episodes, so
    ``gym.make(id).reset(seed=s)`` gives the same episode as env 0 of
    ``gym.make_vec(id, num_envs=n).reset(seed=s)``.

    Truncation comes from Gymnasium's ``TimeLimit`` wrapper, which ``gym.make`` adds (the task's episode
    length, or ``gym.make(id, max_episode_steps=N)``); the env itself never truncates. The task's own rules
    that use the episode length (Go2's final-step success, Go2Terrain's push schedule) keep the task's length
    (or this class's ``max_episode_steps``): Gymnasium gives ``N`` to its wrapper only and keeps it from the env,
    whereas ``gym.make_vec(id, num_envs=1, max_episode_steps=N)`` changes both.
    On a step that terminates exactly at the limit, ``TimeLimit`` also reports ``truncated=True`` (Gymnasium's
    rule); the vector env, following the task conventions, reports only ``terminated``. ``set_state`` does
    not rewind the ``TimeLimit`` wrapper's step counter.
    """

    metadata = {"render_modes": ["rgb_array", "depth_array"]}

    def __init__(self, task_id: str, render_mode: str | None = None, max_episode_steps: int | None = None,
                 **kwargs: Any) -> None:
        for bad in ("num_envs", "render_env_ids", "autoreset_mode"):
            if bad in kwargs:
                raise TypeError(
                    f"{bad!r} is a keyword of VRB's native vector env, not of one env: gym.make_vec({task_id!r}, "
                    f"num_envs=N, {bad}=...) with the default vectorization mode (with vectorization_mode='sync' "
                    "or 'async', Gymnasium takes its own settings in vector_kwargs={...})"
                )
        if "truncation" in kwargs:
            raise TypeError(
                "'truncation' is a keyword of VRB's native vector env, not of one env: one env's truncation is "
                f"Gymnasium's TimeLimit wrapper, whose length is gym.make({task_id!r}, max_episode_steps=N) (without "
                "it, use env.unwrapped)"
            )
        self._venv = VRBVectorEnv(task_id, num_envs=1, autoreset_mode=AutoresetMode.DISABLED,
                                  render_mode=render_mode, max_episode_steps=max_episode_steps, truncation=False,
                                  **kwargs)
        self.render_mode = render_mode
        self.observation_space = self._venv.single_observation_space
        self.action_space = self._venv.single_action_space
        self.metadata = {**self.metadata, "render_fps": self._venv.metadata["render_fps"]}

    @property
    def vector_env(self) -> VRBVectorEnv:
        """The underlying batch of one."""
        return self._venv

    @property
    def task(self):
        """The task instance."""
        return self._venv.task

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode (``seed`` reseeds ``np_random``). The single env takes no ``options``.

        Raises:
            ValueError: Any option (the vector env's ``reset_mask`` included); start states are set with
                ``env.unwrapped.set_state(...)``.
        """
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; the single env takes none (start states are "
                             "set with env.unwrapped.set_state())")
        super().reset(seed=seed)
        self._venv.set_rng(0, self.np_random)
        obs, info = self._venv.reset()
        return _unbatch(obs), _unbatch(info)

    def step(self, action: Any):
        a = np.asarray(action)
        if a.shape != self.action_space.shape or not _action_dtype_ok(a.dtype):
            raise ValueError(f"action must be a real array of shape {self.action_space.shape} (float32, float64 or "
                             f"a dtype that casts to float32 exactly: float16, int8, ...), got {a.dtype} of shape "
                             f"{a.shape}")
        if self._venv.done[0]:
            raise RuntimeError("the episode has ended (terminated); call reset() before step()")
        obs, r, term, trunc, info = self._venv.step(a[None])
        return _unbatch(obs), float(r[0]), bool(term[0]), bool(trunc[0]), _unbatch(info)

    def render(self):
        out = self._venv.render_envs([0])
        return None if out is None else out[0]

    def get_state(self, *, rng: bool = False) -> VRBState:
        """The cloneable state (a batch of one); ``rng=True`` adds ``np_random``'s state (see
        :meth:`VRBVectorEnv.get_state`), which :meth:`set_state` then restores into ``np_random`` itself."""
        return self._venv.get_state([0], rng=rng)

    def set_state(self, state: VRBState) -> None:
        """Restore a state from :meth:`get_state` (checked first: see :meth:`VRBVectorEnv.set_state`)."""
        self._venv.set_state(state, [0])

    def close(self) -> None:
        self._venv.close()
