"""The reference floors ``random`` and ``zero`` as ``vrb train`` learners.

Nothing is learned: an epoch runs the fixed policy for ``steps_per_epoch`` env steps and logs the
episode returns, so a floor's run directory (progress.csv, TensorBoard, learning curve, policy.pt)
sits next to the trained agents' with the same columns. The policies never look at the pixels, so
the envs run with ``obs_mode="state"`` and never render (``frames_per_s`` is 0); physics, rewards and
episode ends are the task's own. Checkpoints hold the env state and every RNG: resume is exact.
The exported ``policy.pt`` loads (``load_policy``) as the evaluation harness's own
:class:`~visual_robo_bench.evaluation.protocol.RandomAgent` / ``ZeroAgent``.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _sb3
from .common import apply_overrides, atomic_torch_save, check_agent_file, episode_stats

FORMAT_VERSION = 1
#: Keys ``vrb train --resume`` may change (no schedule depends on max_epochs here).
RESUMABLE_KEYS = ("time_budget_s", "checkpoint_every", "max_epochs")
IncompatibleCheckpoint = _sb3.IncompatibleCheckpoint


@dataclass(frozen=True)
class FloorConfig:
    """Settings of a floor run (``seed`` also seeds the random policy's own generator)."""

    task: str = "VRB/Walker-v1"
    num_envs: int = 16
    steps_per_epoch: int = 2048  # env steps per epoch (a multiple of num_envs)
    max_episode_steps: int | None = None
    image_size: tuple[int, ...] | None = None  # recorded only (nothing is rendered)
    nthread: int | None = None
    seed: int = 0
    max_epochs: int = 100
    time_budget_s: float = 3600.0
    checkpoint_every: int = 10
    episode_window: int = 100

    def __post_init__(self) -> None:
        checks = [
            (self.num_envs >= 1 and self.max_epochs >= 1, "num_envs and max_epochs must be >= 1"),
            (self.num_envs < 1 or (self.steps_per_epoch >= self.num_envs and self.steps_per_epoch % self.num_envs == 0),
             f"steps_per_epoch ({self.steps_per_epoch}) must be a positive multiple of num_envs ({self.num_envs})"),
            (self.checkpoint_every >= 1 and self.episode_window >= 1, "checkpoint_every, episode_window >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"FloorConfig: {msg}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FloorConfig":
        return apply_overrides(cls(task=data.get("task", cls.task)), data)


class FloorLearner:
    """Runs a fixed policy (``KIND`` "random" or "zero") in epochs; see the module doc."""

    KIND = ""

    def __init__(self, cfg: FloorConfig) -> None:
        from ..envs.vector_env import VRBVectorEnv

        self.cfg = cfg
        kwargs: dict[str, Any] = {}
        if cfg.max_episode_steps is not None:
            kwargs["max_episode_steps"] = cfg.max_episode_steps
        if cfg.nthread is not None:
            kwargs["nthread"] = cfg.nthread
        self.env = VRBVectorEnv(cfg.task, num_envs=cfg.num_envs, autoreset_mode="DISABLED", obs_mode="state", **kwargs)
        self.action_dim = int(self.env.single_action_space.shape[0])
        self.rng = np.random.default_rng([cfg.seed, 7])  # the policy's own generator
        self.env_rngs = [np.random.default_rng([cfg.seed, i]) for i in range(cfg.num_envs)]
        for i, g in enumerate(self.env_rngs):
            self.env.set_rng(i, g)
        self.env.reset()
        self.epoch, self.env_steps, self.train_time, self.total_episodes = 0, 0, 0.0, 0
        self.ep_return = np.zeros(cfg.num_envs)
        self.ep_length = np.zeros(cfg.num_envs, dtype=np.int64)
        self.ep_success = np.zeros(cfg.num_envs, dtype=bool)
        self.episodes: deque = deque(maxlen=cfg.episode_window)

    def actions(self, n: int) -> np.ndarray:
        if self.KIND == "random":
            return self.rng.uniform(-1.0, 1.0, (n, self.action_dim)).astype(np.float32)
        return np.zeros((n, self.action_dim), np.float32)

    def train_epoch(self) -> dict[str, float]:
        t0 = time.perf_counter()
        N = self.cfg.num_envs
        for _ in range(self.cfg.steps_per_epoch // N):
            _, r, term, trunc, info = self.env.step(self.actions(N))
            self.ep_return += r
            self.ep_length += 1
            self.ep_success |= info["success"]
            done = term | trunc
            for i in np.flatnonzero(done):
                self.episodes.append((float(self.ep_return[i]), int(self.ep_length[i]), bool(self.ep_success[i])))
                self.total_episodes += 1
            if done.any():
                self.ep_return[done], self.ep_length[done], self.ep_success[done] = 0.0, 0, False
                self.env.reset(options={"reset_mask": done})
        dt = time.perf_counter() - t0
        steps = (self.cfg.steps_per_epoch // N) * N
        self.epoch += 1
        self.env_steps += steps
        self.train_time += dt
        return {"epoch": self.epoch, "env_steps": self.env_steps, "frames": 0, "wall_s": self.train_time,
                "time_epoch_s": dt, "env_steps_per_s": steps / dt, "frames_per_s": 0.0,
                "episodes": self.total_episodes, **self.episode_stats()}

    def episode_stats(self) -> dict[str, float]:
        return episode_stats(self.episodes)

    def state_dict(self) -> dict[str, Any]:
        st = self.env.get_state()
        return {"format_version": FORMAT_VERSION, "agent": self.KIND, "kind": "checkpoint", "task": self.cfg.task,
                "config": self.cfg.to_dict(), "rng": self.rng.bit_generator.state,
                "env_rngs": [g.bit_generator.state for g in self.env_rngs],
                "env_state": st.to_dict(),
                "counters": {"epoch": self.epoch, "env_steps": self.env_steps, "train_time": self.train_time,
                             "total_episodes": self.total_episodes},
                "episodes": {"ep_return": self.ep_return.copy(), "ep_length": self.ep_length.copy(),
                             "ep_success": self.ep_success.copy(), "window": list(self.episodes)},
                "action_dim": self.action_dim}

    def load_state_dict(self, ck: dict[str, Any]) -> None:
        from ..envs.vector_env import VRBState

        es = ck["env_state"]
        self.env.set_state(VRBState.from_dict(es))
        for g, s in zip(self.env_rngs, ck["env_rngs"]):  # after set_state: restore the streams last
            g.bit_generator.state = s
        self.rng.bit_generator.state = ck["rng"]
        c = ck["counters"]
        self.epoch, self.env_steps = c["epoch"], c["env_steps"]
        self.train_time, self.total_episodes = c["train_time"], c["total_episodes"]
        e = ck["episodes"]
        self.ep_return, self.ep_length, self.ep_success = e["ep_return"].copy(), e["ep_length"].copy(), e["ep_success"].copy()
        self.episodes = deque([tuple(x) for x in e["window"]], maxlen=self.cfg.episode_window)

    def save_checkpoint(self, path: str | Path) -> None:
        atomic_torch_save(self.state_dict(), path)

    @classmethod
    def from_checkpoint(cls, path: str | Path, task: str | None = None, **config_changes: Any) -> "FloorLearner":
        ck = load_file(path, cls.KIND)
        check_checkpoint(ck, task, cls.KIND)
        cfg = FloorConfig.from_dict(ck["config"])
        if config_changes:
            cfg = apply_overrides(cfg, config_changes)
        learner = cls(cfg)
        learner.load_state_dict(ck)
        return learner

    def export_policy(self, path: str | Path) -> None:
        atomic_torch_save({"format_version": FORMAT_VERSION, "agent": self.KIND, "kind": "policy",
                           "task": self.cfg.task, "config": self.cfg.to_dict(), "action_dim": self.action_dim,
                           "seed": self.cfg.seed, "epoch": self.epoch, "env_steps": self.env_steps,
                           "episode_return": self.episode_stats()["episode_return"]}, path)

    def close(self) -> None:
        self.env.close()


load_file = _sb3.load_file


def check_checkpoint(data: dict[str, Any], task: str | None, agent: str) -> None:
    check_agent_file(data, task, FORMAT_VERSION, agent)


def make_config(task: str, overrides: dict[str, Any] | None) -> FloorConfig:
    return _sb3.make_config(FloorConfig, task, overrides)


def load_policy(path: str | Path, kind: str, task: str | None = None) -> Any:
    from ..evaluation.protocol import RandomAgent, ZeroAgent

    data = load_file(path, kind)
    check_checkpoint(data, task, kind)
    if kind == "random":
        return RandomAgent(int(data["action_dim"]), seed=int(data.get("seed", 0)))
    return ZeroAgent(int(data["action_dim"]))
