"""The ``vrb train`` learner around a stable-baselines3 algorithm (shared by ``ppo`` and ``sac``).

The SB3 model drives one native batched env through :func:`~visual_robo_bench.adapters.sb3.make_sb3_env`
(no subprocess envs; pixels channel-first so SB3 needs no ``VecTransposeImage``). One epoch is a fixed
number of env steps: ``model.learn(steps_per_epoch, reset_num_timesteps=False)``.

Checkpoints (``checkpoints/latest.pt``) are a small torch dict naming two sibling files written first:
the SB3 model ``.zip`` (weights, optimisers, step counters) and, for off-policy algorithms, the pickled
replay buffer. The sibling files carry the epoch in their names and ``latest.pt`` is renamed into place
last, so a run killed at any moment still has a consistent checkpoint.

Resume is **bit-identical** to an uninterrupted run, as for SDPG: besides the SB3 files, ``latest.pt``
holds what SB3's own files leave out — the native env's state, frame stacks and per-env generators,
the adapter's running episode sums, the model's last observation and episode-start flags, and the
global torch, numpy and Python RNG states plus the action space's generator (SB3 draws its PPO
minibatches and SAC replay samples from the global numpy generator, its actions from torch's). An
epoch ends on a rollout boundary for PPO (``steps_per_epoch`` is a multiple of ``n_steps * num_envs``)
and on a whole vector step for SAC, so nothing half-collected is lost. The one exception: SAC with
``save_replay_buffer=false`` resumes with an empty replay buffer (no longer exact; training then
refills it before it updates again).

The exported ``policy.pt`` is a VRB policy file (``{"agent": NAME, "model_zip": bytes, ...}``) whose
``load_policy`` acts deterministically (``model.predict(obs, deterministic=True)``); the same model is
also written as ``model.zip`` next to it for tools that load SB3 files directly.
"""

from __future__ import annotations

import dataclasses
import io
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .common import (ConfigError, IncompatibleCheckpoint, apply_overrides, atomic_torch_save,  # noqa: F401
                     atomic_write_bytes, check_agent_file, env_kwargs, episode_stats, load_agent_file)

FORMAT_VERSION = 2  # 2: checkpoints hold the run state for an exact resume


def make_config(config_cls: type, task: str, overrides: dict[str, Any] | None) -> Any:
    """``config_cls(task=task)`` with ``overrides``; unknown task -> KeyError naming close ids."""
    from ..registry import get_task

    task = get_task(task).id
    overrides = dict(overrides or {})
    if "task" in overrides and overrides["task"] != task:
        raise ConfigError("the task is given by --task, not by a config override")
    overrides.pop("task", None)
    return apply_overrides(config_cls(task=task), overrides)


def load_file(path: str | Path, agent: str) -> dict[str, Any]:
    return load_agent_file(path, agent)


def check_checkpoint(data: dict[str, Any], task: str | None, agent: str) -> None:
    check_agent_file(data, task, FORMAT_VERSION, agent)


def _model_bytes(model: Any) -> bytes:
    buf = io.BytesIO()
    model.save(buf)
    return buf.getvalue()


def _obs_space(space: Any) -> dict[str, dict[str, Any]]:
    return {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in space.spaces.items()}


def run_state(model: Any, adapter: Any) -> dict[str, Any]:
    """What SB3's model zip (and replay / ``VecNormalize`` pickles) leave out, for a bit-identical resume.

    ``adapter`` is the :class:`~visual_robo_bench.adapters.sb3.SB3VecEnv` under ``model.env`` (which may be
    a ``VecNormalize`` around it: its running discounted returns are not pickled by SB3, so they are here).
    """
    import random

    copy = (lambda x: None if x is None else {k: v.copy() for k, v in x.items()} if isinstance(x, dict)
            else np.array(x, copy=True))
    st = {"env": adapter.state_dict(), "last_obs": copy(model._last_obs),
          "last_episode_starts": copy(model._last_episode_starts),
          "last_original_obs": copy(getattr(model, "_last_original_obs", None)),
          "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(), "python_rng": random.getstate(),
          "action_space_rng": model.action_space.np_random.bit_generator.state}
    returns = getattr(model.env, "returns", None)  # VecNormalize
    if returns is not None:
        st["vecnormalize_returns"] = np.array(returns, copy=True)
    return st


def load_run_state(model: Any, adapter: Any, st: dict[str, Any]) -> None:
    """Restore :func:`run_state` after the model was loaded (loading reseeds everything: this comes last)."""
    import random

    adapter.load_state_dict(st["env"])
    model._last_obs, model._last_episode_starts = st["last_obs"], st["last_episode_starts"]
    if st.get("last_original_obs") is not None:
        model._last_original_obs = st["last_original_obs"]
    if "vecnormalize_returns" in st:
        model.env.returns = np.array(st["vecnormalize_returns"], copy=True)
    model.action_space.np_random.bit_generator.state = st["action_space_rng"]
    torch.set_rng_state(st["torch_rng"])
    np.random.set_state(st["numpy_rng"])
    random.setstate(st["python_rng"])


def episode_callback(record: Any) -> Any:
    """An SB3 callback that calls ``record((return, length, success))`` for every episode that ends
    (from the ``episode`` and ``is_success`` entries the VRB adapter writes into ``infos``)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class _Episodes(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals.get("infos", ()):
                ep = info.get("episode")
                if ep is not None:  # raw (unnormalised) return
                    record((float(ep["r"]), int(ep["l"]), bool(info.get("is_success", False))))
            return True

    return _Episodes()


class SB3Learner:
    """A stable-baselines3 model trained in epochs of ``cfg.steps_per_epoch`` env steps.

    Subclasses set ``AGENT`` (the module name), ``ALGO`` (the SB3 class name), ``STAT_KEYS`` (SB3
    ``train/`` scalars logged every epoch, NaN until the algorithm has trained) and implement
    ``build_model(env)``.
    """

    AGENT = ""
    ALGO = ""
    STAT_KEYS: tuple[str, ...] = ()
    OFF_POLICY = False

    def __init__(self, cfg: Any, _resume: dict[str, Any] | None = None) -> None:
        import stable_baselines3 as sb3
        from stable_baselines3.common.logger import Logger

        from ..adapters.sb3 import make_sb3_env

        self.cfg = cfg
        torch.set_num_threads(cfg.torch_threads)
        self.env = make_sb3_env(cfg.task, cfg.num_envs, pixel_layout="CHW", **env_kwargs(cfg))
        self.action_dim = int(self.env.action_space.shape[0])
        self.epoch = 0
        self.train_time = 0.0
        self.total_episodes = 0
        self.frames = 0  # rendered observations (every env renders every step, and at its resets)
        self.episodes: deque = deque(maxlen=cfg.episode_window)  # (return, length, success)
        if _resume is None:
            self.model = self.build_model(self.env)
        else:
            algo = getattr(sb3, self.ALGO)
            self.model = algo.load(_resume["model_path"], env=self.env, device="cpu")
            if _resume.get("replay_path"):
                self.model.load_replay_buffer(_resume["replay_path"])
            c = _resume["counters"]
            self.epoch, self.train_time, self.total_episodes = c["epoch"], c["train_time"], c["total_episodes"]
            self.frames = c.get("frames", c["env_steps"])  # checkpoints before the frame counter: one per step
            self.episodes.extend(tuple(x) for x in _resume["episodes"])
            self._load_run_state(_resume["run_state"])
        self.model.set_logger(Logger(folder=None, output_formats=[]))
        self._callback = self._make_callback()

    # ------------------------------------------------------------------ exact resume (see the module doc)
    def _run_state(self) -> dict[str, Any]:
        return run_state(self.model, self.env)

    def _load_run_state(self, st: dict[str, Any]) -> None:
        load_run_state(self.model, self.env, st)

    # ------------------------------------------------------------------ subclass hooks
    def build_model(self, env: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def policy_kwargs(self) -> dict[str, Any]:
        cfg = self.cfg
        kw: dict[str, Any] = {"features_extractor_kwargs": {"cnn_output_dim": cfg.cnn_output_dim}}
        if cfg.net_arch:
            kw["net_arch"] = list(cfg.net_arch)
        return kw

    # ------------------------------------------------------------------ training
    def _make_callback(self) -> Any:
        def record(episode: tuple[float, int, bool]) -> None:
            self.episodes.append(episode)
            self.total_episodes += 1

        return episode_callback(record)

    @property
    def env_steps(self) -> int:
        return int(self.model.num_timesteps)

    def train_epoch(self) -> dict[str, float]:
        """``steps_per_epoch`` env steps of ``model.learn``; returns the epoch's scalars."""
        t0 = time.perf_counter()
        steps0, frames0 = self.env_steps, self.env.venv.frames_rendered
        self.model.learn(self.cfg.steps_per_epoch, callback=self._callback, reset_num_timesteps=False,
                         log_interval=None)
        values = dict(self.model.logger.name_to_value)
        self.model.logger.dump(self.env_steps)  # clears the accumulated values
        dt = time.perf_counter() - t0
        self.epoch += 1
        self.train_time += dt
        steps, frames = self.env_steps - steps0, self.env.venv.frames_rendered - frames0
        self.frames += frames
        stats: dict[str, float] = {"epoch": self.epoch, "env_steps": self.env_steps, "frames": self.frames,
                                   "wall_s": self.train_time, "time_epoch_s": dt, "env_steps_per_s": steps / dt,
                                   "frames_per_s": frames / dt, "episodes": self.total_episodes}
        for key in self.STAT_KEYS:
            stats[key] = float(values.get(f"train/{key}", float("nan")))
        stats.update(self.episode_stats())
        return stats

    def episode_stats(self) -> dict[str, float]:
        return episode_stats(self.episodes)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str | Path) -> None:
        """Model zip (+ replay buffer) under epoch-stamped names, then ``path`` naming them (atomic)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tag = f"{path.stem}-e{self.epoch:06d}"
        model_name, replay_name = f"{tag}.{self.AGENT}.zip", None
        atomic_write_bytes(path.parent / model_name, _model_bytes(self.model))
        if self.OFF_POLICY and self.cfg.save_replay_buffer:
            replay_name = f"{tag}.{self.AGENT}.replay.pkl"
            tmp = path.parent / f".{replay_name}.tmp"
            self.model.save_replay_buffer(tmp)
            os.replace(tmp, path.parent / replay_name)
        atomic_torch_save({
            "format_version": FORMAT_VERSION, "agent": self.AGENT, "kind": "checkpoint", "task": self.cfg.task,
            "config": self.cfg.to_dict(), "algo": self.ALGO, "model_file": model_name, "replay_file": replay_name,
            "counters": {"epoch": self.epoch, "env_steps": self.env_steps, "frames": self.frames,
                         "train_time": self.train_time, "total_episodes": self.total_episodes},
            "episodes": list(self.episodes), "run_state": self._run_state(),
        }, path)
        keep = {model_name, replay_name}
        for old in path.parent.glob(f"{path.stem}-e*.{self.AGENT}.*"):
            if old.name not in keep:
                old.unlink(missing_ok=True)

    @classmethod
    def from_checkpoint(cls, path: str | Path, task: str | None = None, **config_changes: Any) -> "SB3Learner":
        path = Path(path)
        ck = load_file(path, cls.AGENT)
        check_checkpoint(ck, task, cls.AGENT)
        cfg = cls.CONFIG.from_dict(ck["config"])
        if config_changes:
            cfg = apply_overrides(cfg, config_changes)
        model_path = path.parent / ck["model_file"]
        if not model_path.is_file():
            raise FileNotFoundError(f"the checkpoint names {model_path}, which does not exist")
        replay = ck.get("replay_file")
        replay_path = path.parent / replay if replay else None
        if replay_path is not None and not replay_path.is_file():
            raise FileNotFoundError(f"the checkpoint names {replay_path}, which does not exist")
        return cls(cfg, _resume={"model_path": str(model_path), "replay_path": replay_path and str(replay_path),
                                 "counters": ck["counters"], "episodes": ck["episodes"],
                                 "run_state": ck["run_state"]})

    def export_policy(self, path: str | Path) -> None:
        """``policy.pt`` (VRB policy file embedding the SB3 zip) and ``model.zip`` next to it."""
        path = Path(path)
        blob = _model_bytes(self.model)
        atomic_write_bytes(path.parent / "model.zip", blob)
        atomic_torch_save({
            "format_version": FORMAT_VERSION, "agent": self.AGENT, "kind": "policy", "task": self.cfg.task,
            "config": self.cfg.to_dict(), "algo": self.ALGO, "model_zip": blob,
            "obs_space": _obs_space(self.env.observation_space), "pixel_layout": "CHW", "action_dim": self.action_dim,
            "epoch": self.epoch, "env_steps": self.env_steps, "episode_return": self.episode_stats()["episode_return"],
        }, path)

    def close(self) -> None:
        self.env.close()


class SB3Policy:
    """A loaded SB3 policy file: deterministic ``act(obs)`` on HWC or CHW pixels, batched or single."""

    def __init__(self, data: dict[str, Any]) -> None:
        import stable_baselines3 as sb3

        self.task = data["task"]
        self.model = getattr(sb3, data["algo"]).load(io.BytesIO(data["model_zip"]), device="cpu")
        self.keys = sorted(self.model.observation_space.spaces)
        self.meta = {k: data.get(k) for k in ("epoch", "env_steps", "episode_return")}
        self.name = f"{data['agent']}:{self.task}"

    def _convert(self, obs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], bool]:
        out, single = {}, False
        for k in self.keys:
            want = self.model.observation_space[k].shape
            v = np.asarray(obs[k])
            if v.shape == want or (len(want) == 3 and v.shape == (want[1], want[2], want[0])):
                v, single = v[None], True
            if len(want) == 3 and v.shape[1:] != want:
                if v.shape[1:] == (want[1], want[2], want[0]):
                    v = v.transpose(0, 3, 1, 2)
                else:
                    raise ValueError(f"{k} must be (n, {', '.join(map(str, want))}) or channel-last for "
                                     f"{self.task}, got {v.shape}")
            out[k] = np.ascontiguousarray(v)
        return out, single

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        inp, single = self._convert(obs)
        actions, _ = self.model.predict(inp, deterministic=True)
        a = np.clip(np.asarray(actions, np.float32), -1.0, 1.0)
        return a[0] if single else a

    __call__ = act


def load_policy(path: str | Path, agent: str, task: str | None = None) -> SB3Policy:
    data = load_file(path, agent)
    check_checkpoint(data, task, agent)
    if data.get("kind") != "policy":
        raise IncompatibleCheckpoint(f"{path} is a training checkpoint; load the run's policy.pt "
                                     "(or its model.zip with stable-baselines3)")
    return SB3Policy(data)


def config_checks(cfg: Any, name: str, extra: list[tuple[bool, str]]) -> None:
    checks = [
        (cfg.num_envs >= 1, "num_envs must be >= 1"),
        (cfg.steps_per_epoch >= 1, "steps_per_epoch must be >= 1"),
        (cfg.max_epochs >= 1, "max_epochs must be >= 1"),
        (cfg.image_size is None or len(cfg.image_size) == 2, "image_size must be (H, W) or None"),
        (cfg.image_size is None or min(cfg.image_size) >= 36,
         "image_size must be at least 36x36: stable-baselines3's CNN (NatureCNN) cannot take smaller images"),
        (cfg.checkpoint_every >= 1 and cfg.episode_window >= 1, "checkpoint_every, episode_window >= 1"),
        (cfg.torch_threads >= 1, "torch_threads must be >= 1"),
        *extra,
    ]
    for ok, msg in checks:
        if not ok:
            raise ValueError(f"{name}: {msg}")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
