"""stable-baselines3 ``VecEnv`` over VRB's native batched vector env.

SB3 does not consume Gymnasium vector envs. This adapter drives one
:class:`~visual_robo_bench.envs.vector_env.VRBVectorEnv` directly (no per-env
subprocesses, no copies of the worlds) with SB3's conventions: ``reset()``
returns observations only, ``dones = terminated | truncated``, finished envs are
reset in the same step (SAME_STEP semantics) with their final observation in
``infos[i]["terminal_observation"]``, ``infos[i]["TimeLimit.truncated"]``,
``infos[i]["is_success"]`` on the final step, and ``infos[i]["episode"]``
(return, length, time) as SB3's ``Monitor`` would write it (so ``env_is_wrapped(Monitor)``
is True, and ``evaluate_policy`` reads those raw episode returns).

The N envs are one batched object: ``get_attr`` returns its attribute once per env, and
``env_method``/``set_attr`` act on all envs at once (a subset of indices is refused: use
the native env's index-set API, ``adapter.venv``, for that).
"""

from __future__ import annotations

import numbers
import time
from typing import Any, Sequence

import numpy as np
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from ..envs.vector_env import VRBVectorEnv


class SB3VecEnv(VecEnv):
    """A VRB vector env as an SB3 ``VecEnv``.

    Args:
        env: A native vector env created with ``autoreset_mode="DISABLED"`` that
            renders every env (SB3 needs an observation per env).
    """

    def __init__(self, env: VRBVectorEnv) -> None:
        if env is not getattr(env, "unwrapped", env):
            raise ValueError(f"SB3VecEnv drives the native VRB vector env itself; got it inside {type(env).__name__}, "
                             "whose changes would be bypassed: wrap the SB3VecEnv with SB3 VecEnvWrappers instead")
        if env.autoreset_mode.name != "DISABLED":
            raise ValueError("SB3VecEnv needs the native env with autoreset_mode='DISABLED'; "
                             "the adapter resets finished envs itself")
        if env.obs_mode == "visual" and len(env.render_env_ids) != env.num_envs:
            raise ValueError("SB3VecEnv needs observations of every env: leave render_env_ids at its default")
        self.venv = env
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self.metadata = {**self.metadata, "render_fps": env.metadata["render_fps"]}
        self._actions: np.ndarray | None = None
        self._ep_return = np.zeros(self.num_envs)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self._t0 = time.time()

    def reset(self):
        """Reset every env, with the seeds of :meth:`seed` (env i: seed + i) when one was given."""
        if any(self._options):
            raise ValueError(f"VRB envs take no reset options; got {self._options} from set_options()")
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, _ = self.venv.reset(seed=seeds)
        self._reset_seeds()
        self._ep_return[:] = 0
        self._ep_length[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)  # the native env checks shape, dtype and range

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
        return {**st.to_dict(), "frame_stacks": venv.get_frame_stacks(),
                "rngs": [None if g is None else g.bit_generator.state for g in rngs],
                "ep_return": self._ep_return.copy(), "ep_length": self._ep_length.copy()}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (a pending ``seed()`` is dropped: the saved streams continue)."""
        from ..envs.vector_env import VRBState

        venv = self.venv
        venv.set_state(VRBState.from_dict(data))
        venv.set_frame_stacks(data["frame_stacks"])
        for i, state in enumerate(data["rngs"]):
            if state is not None:
                g = np.random.default_rng()
                g.bit_generator.state = state
                venv.set_rng(i, g)
        self._ep_return[:] = data["ep_return"]
        self._ep_length[:] = data["ep_length"]
        self._reset_seeds()

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One ``render()`` image per env (``None`` each without a render mode); ``render()`` tiles them."""
        if self.venv.render_mode is None:
            return [None] * self.num_envs
        return list(self.venv.render())

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, numbers.Integral):
            return [int(indices)]
        return [int(i) for i in indices]

    def _all_envs(self, indices: VecEnvIndices, what: str) -> None:
        if sorted(self._indices(indices)) != list(range(self.num_envs)):
            raise NotImplementedError(f"{what} acts on all {self.num_envs} envs at once (they are one batched env); "
                                      "for a subset of envs use the native env's index-set API on adapter.venv")

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The batched env's attribute, once per requested env."""
        return [getattr(self.venv, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set the attribute of the batched env (all envs; a subset raises ``NotImplementedError``)."""
        self._all_envs(indices, "set_attr")
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *args, indices: VecEnvIndices = None, **kwargs) -> list[Any]:
        """Call the batched env's method once (all envs; a subset raises ``NotImplementedError``); its result,
        once per env."""
        self._all_envs(indices, "env_method")
        return [getattr(self.venv, method_name)(*args, **kwargs)] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices: VecEnvIndices = None) -> list[bool]:
        """True for ``Monitor`` (and its bases): the adapter writes Monitor's ``episode`` infos itself."""
        return [issubclass(Monitor, wrapper_class) for _ in self._indices(indices)]


def make_sb3_env(task_id: str, num_envs: int, **kwargs: Any) -> SB3VecEnv:
    """``SB3VecEnv`` of a fresh native env of ``task_id``."""
    return SB3VecEnv(VRBVectorEnv(task_id, num_envs=num_envs, autoreset_mode="DISABLED", **kwargs))
