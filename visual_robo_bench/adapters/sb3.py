"""stable-baselines3 ``VecEnv`` over VRB's native batched vector env.

SB3 does not consume Gymnasium vector envs. This adapter drives one
:class:`~visual_robo_bench.envs.vector_env.VRBVectorEnv` directly (no per-env
subprocesses, no copies of the worlds) with SB3's conventions: ``reset()``
returns observations only, ``dones = terminated | truncated``, finished envs are
reset in the same step (SAME_STEP semantics) with their final observation in
``infos[i]["terminal_observation"]``, ``infos[i]["TimeLimit.truncated"]``,
``infos[i]["is_success"]`` on the final step, and ``infos[i]["episode"]``
(return, length, time) as SB3's ``Monitor`` would write it.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from ..envs.vector_env import VRBVectorEnv


class SB3VecEnv(VecEnv):
    """A VRB vector env as an SB3 ``VecEnv``.

    Args:
        env: A native vector env created with ``autoreset_mode="DISABLED"`` that
            renders every env (SB3 needs an observation per env).
    """

    def __init__(self, env: VRBVectorEnv) -> None:
        env = getattr(env, "unwrapped", env)
        if env.autoreset_mode.name != "DISABLED":
            raise ValueError("SB3VecEnv needs the native env with autoreset_mode='DISABLED'; "
                             "the adapter resets finished envs itself")
        if env.obs_mode == "visual" and len(env.render_env_ids) != env.num_envs:
            raise ValueError("SB3VecEnv needs observations of every env: leave render_env_ids at its default")
        self.venv = env
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self.render_mode = env.render_mode
        self._seed: int | None = None
        self._actions: np.ndarray | None = None
        self._ep_return = np.zeros(self.num_envs)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self._t0 = time.time()

    def reset(self):
        obs, _ = self.venv.reset(seed=self._seed)
        self._seed = None
        self._ep_return[:] = 0
        self._ep_length[:] = 0
        return obs

    def seed(self, seed: int | None = None) -> Sequence[None]:
        self._seed = seed
        return [None] * self.num_envs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float32).reshape(self.num_envs, -1)

    def step_wait(self):
        obs, rewards, term, trunc, info = self.venv.step(self._actions)
        dones = term | trunc
        self._ep_return += rewards
        self._ep_length += 1
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in range(self.num_envs):
            infos[i]["reward_terms"] = {k: float(v[i]) for k, v in info.get("reward_terms", {}).items()}
        if dones.any():
            ids = np.flatnonzero(dones)
            for i in ids:
                infos[i]["terminal_observation"] = {k: v[i].copy() for k, v in obs.items()}
                infos[i]["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
                infos[i]["is_success"] = bool(info["success"][i])
                infos[i]["episode"] = {"r": float(self._ep_return[i]), "l": int(self._ep_length[i]),
                                       "t": round(time.time() - self._t0, 6)}
            self._ep_return[ids] = 0
            self._ep_length[ids] = 0
            obs, _ = self.venv.reset(options={"reset_mask": dones})
        return obs, rewards.astype(np.float32), dones, infos

    def state_dict(self) -> dict[str, Any]:
        """Everything that decides the adapter's future: the native env's state, frame stacks and per-env
        generators, and the running episode sums (a checkpoint restores it with :meth:`load_state_dict`)."""
        venv = self.venv
        st = venv.get_state()
        rngs = [venv.get_rng(i) for i in range(self.num_envs)]
        return {"physics": st.physics, "task": st.task, "elapsed": st.elapsed,
                "frame_stacks": venv.get_frame_stacks(),
                "rngs": [None if g is None else g.bit_generator.state for g in rngs],
                "ep_return": self._ep_return.copy(), "ep_length": self._ep_length.copy()}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (a pending ``seed()`` is dropped: the saved streams continue)."""
        from ..envs.vector_env import VRBState

        venv = self.venv
        venv.set_state(VRBState(data["physics"], data["task"], data["elapsed"]))
        venv.set_frame_stacks(data["frame_stacks"])
        for i, state in enumerate(data["rngs"]):
            if state is not None:
                g = np.random.default_rng()
                g.bit_generator.state = state
                venv.set_rng(i, g)
        self._ep_return[:] = data["ep_return"]
        self._ep_length[:] = data["ep_length"]
        self._seed = None

    def close(self) -> None:
        self.venv.close()

    def render(self, mode: str | None = None):
        return self.venv.render()

    def get_images(self) -> Sequence[np.ndarray | None]:
        return list(self.venv.render())

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.venv, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *args, indices: VecEnvIndices = None, **kwargs) -> list[Any]:
        return [getattr(self.venv, method_name)(*args, **kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]


def make_sb3_env(task_id: str, num_envs: int, **kwargs: Any) -> SB3VecEnv:
    """``SB3VecEnv`` of a fresh native env of ``task_id``."""
    return SB3VecEnv(VRBVectorEnv(task_id, num_envs=num_envs, autoreset_mode="DISABLED", **kwargs))
