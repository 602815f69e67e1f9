"""Teacher-student distillation (the SDPG paper's privileged-teacher baseline), in one file.

Read top to bottom:

1. ``DistillConfig``: frozen, typed hyperparameters (defaults sized for VRB/Walker-v1 on a 2-core CPU).
2. Networks: the pixel ``Student`` (DrQ-v2 conv trunk on the frame stack + an MLP on ``proprio``; it
   never sees privileged state) and ``DaggerDataset``, the bounded store of labelled samples.
3. ``Distill``: the learner. Epochs ``1..teacher_epochs`` are **phase 1**: stable-baselines3 PPO
   trains a TEACHER (``MultiInputPolicy`` MLP) on the privileged state of ``obs_mode="state"`` envs,
   which never render (the teacher never sees pixels), ``teacher_steps_per_epoch`` env steps per
   epoch, through :func:`~visual_robo_bench.adapters.sb3.make_sb3_env` and SB3's ``VecNormalize``.
   Every later epoch is a **phase 2** DAgger epoch: ``student_num_envs`` rendered envs created with
   ``privileged=True`` run ``student_steps_per_epoch`` env steps. In each env and step the executed
   action is, with probability ``beta``, the teacher's and otherwise the student's (``beta =
   beta_init * beta_decay ** k`` in the k-th DAgger epoch, k = 0, 1, ...; 0 once it falls below
   ``beta_cutoff``: from then on the student acts alone). Every visited state is
   labelled with the teacher's deterministic action (the PPO mean on the normalised privileged
   state, clipped to [-1, 1]) and stored; then ``student_updates`` minibatch steps regress the
   student on the dataset. The student uses the first policy camera (``pixels``) only.
4. Checkpoints and the exported student policy (``policy.pt``, ``load_policy``).

The student outputs ``tanh(head(features))``; the BC loss is the MSE between that **post-tanh**
action and the teacher's label (both in [-1, 1]; labels clipped at +-1 would need an infinite
pre-tanh target, so the regression is done after the tanh).

The DAgger dataset is a FIFO ring: once ``dataset_capacity`` samples are stored, each new sample
overwrites the **oldest** one. A sample holds the uint8 frame stack (CHW), the raw float32
``proprio`` and the float32 label: ``C*H*W + 4*(P + A)`` bytes, e.g. 9*84*84 + 4*(12 + 6) =
63,576 bytes on Walker at 84x84, so the default 20,000 samples take 1.27 GB (allocated lazily,
filled as data arrives). ``proprio`` is normalised by a running mean/std (updated with every
collected sample) when the student acts and trains, never in the dataset.

Episode statistics: ``episode_return`` is the return of the policy that acts in the epoch's phase
(phase 1: the stochastic PPO teacher; phase 2: the DAgger mixture, see the ``acting`` and ``beta``
columns; the window is emptied when phase 2 starts). ``teacher_return`` stays the phase-1 window,
``student_return`` is over phase-2 episodes in which every action was the student's.

Checkpoints (``checkpoints/latest.pt``, a small torch dict) name sibling files written first under
epoch-stamped names (as in :mod:`visual_robo_bench.agents._sb3`): the teacher's SB3 ``.zip``, its
``VecNormalize`` pickle and (phase 2) the dataset; ``latest.pt`` is renamed into place last.

Resume:

* **phase 1 is exact**, as for the SB3 baselines (:func:`~visual_robo_bench.agents._sb3.run_state`):
  next to the teacher's zip and ``VecNormalize`` pickle, the checkpoint holds the state-only envs'
  states and generators, the teacher's last observations, VecNormalize's running discounted returns
  and the global torch/numpy/Python RNG streams.
* **phase 2 is exact** (with the same ``torch_threads``): the frozen teacher, the student and its
  optimiser, the proprio statistics, the dataset, every RNG, the env state, frame stacks and episode
  bookkeeping are saved, so a resumed run produces the same student, dataset and logged values as an
  uninterrupted one. A checkpoint written at the end of phase 1 also continues exactly into phase 2
  (phase 2 is seeded from the run seed, not from phase-1 state).

Exports: ``policy.pt`` is the STUDENT (pixels + proprio only; format as ``sdpg.py``'s). Before phase
2 it is the untrained (randomly initialised) student, marked ``student_updates == 0``:
``load_policy`` then warns (the harness can still score it as a sanity floor). ``teacher.zip`` is
written next to it (SB3 ``PPO.load``; its observations are ``{"privileged": ...}`` normalised by
``teacher_vecnormalize.pkl``, load that with ``VecNormalize.load``).
"""

from __future__ import annotations

import dataclasses
import io
import math
import pickle
import time
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from . import _sb3
from .common import (ConfigError, IncompatibleCheckpoint, apply_overrides, atomic_torch_save,  # noqa: F401
                     atomic_write_bytes, check_agent_file, env_kwargs, episode_stats, images_chw, load_agent_file)
from .sdpg import DrQv2Encoder, RunningMeanStd, mlp

#: Bumped whenever the checkpoint or policy file layout changes; older files are refused.
FORMAT_VERSION = 1
AGENT_NAME = "distill"
#: Keys ``vrb train --resume`` may change (beta's schedule counts DAgger epochs, not max_epochs).
RESUMABLE_KEYS = ("time_budget_s", "checkpoint_every", "max_epochs")
#: SB3 PPO ``train/`` scalars logged (prefixed ``teacher_``) in phase-1 epochs, NaN in phase 2.
TEACHER_STAT_KEYS = ("loss", "policy_gradient_loss", "value_loss", "entropy_loss", "approx_kl", "clip_fraction",
                     "explained_variance", "std")


# =============================================================================================
# 1. Config
# =============================================================================================
@dataclass(frozen=True)
class DistillConfig:
    """Every hyperparameter of a distillation run (defaults: VRB/Walker-v1 on a 2-core CPU).

    Measured on the project's 2-core machine (84x84) while other jobs shared it: a 32,768-step
    teacher epoch took 20-45 s (Hopper), so the 30 teacher epochs (~1M steps) take 10-20 minutes of
    the hour; a DAgger epoch took 17-30 s (collection ~5 s; one update on 128 samples ~1.1 s with
    one torch thread on an idle machine), which leaves room for ~100 DAgger epochs.
    """

    task: str = "VRB/Walker-v1"
    # --- phase 1: PPO teacher on privileged state (SB3 defaults except rollout size and log-std)
    teacher_epochs: int = 30
    teacher_num_envs: int = 16  # state-only envs (never rendered)
    teacher_steps_per_epoch: int = 32768  # a multiple of teacher_n_steps * teacher_num_envs
    teacher_n_steps: int = 128  # per env and rollout (16 x 128 = 2048, PPO's MuJoCo batch)
    teacher_batch_size: int = 256
    teacher_n_epochs: int = 10
    teacher_lr: float = 3e-4
    teacher_gamma: float = 0.99
    teacher_gae_lambda: float = 0.95
    teacher_clip_range: float = 0.2
    teacher_ent_coef: float = 0.0
    teacher_vf_coef: float = 0.5
    teacher_max_grad_norm: float = 0.5
    teacher_log_std_init: float = -0.5
    teacher_net_arch: tuple[int, ...] = (64, 64)
    teacher_norm_obs: bool = True  # SB3 VecNormalize on the privileged observations
    teacher_norm_reward: bool = True
    teacher_target_kl: float | None = None  # SB3 target_kl: stop an update's epochs once the KL exceeds 1.5x it
    # training reward of the teacher: max(r + offset, floor); the logged returns stay the task's reward
    teacher_reward_offset: float = 0.0  # > 0 makes early termination costly where the task's reward is negative
    teacher_reward_floor: float | None = None  # 0.0: legged_gym's "only positive rewards"
    # --- phase 2: DAgger into the pixel student
    student_num_envs: int = 8  # rendered envs (pixels + proprio for the student, privileged for the labels)
    student_steps_per_epoch: int = 1024  # env steps per DAgger epoch (a multiple of student_num_envs)
    student_updates: int = 16  # minibatch steps per DAgger epoch
    student_batch_size: int = 128
    student_lr: float = 3e-4
    beta_init: float = 1.0  # probability of executing the teacher's action in the first DAgger epoch
    beta_decay: float = 0.5  # beta of DAgger epoch k = beta_init * beta_decay ** k
    beta_cutoff: float = 0.01  # a smaller beta is 0 (defaults: the student acts alone from DAgger epoch 7 on)
    dataset_capacity: int = 20000  # FIFO: the oldest samples are overwritten (bytes per sample: module doc)
    augment_pad: int = 4  # DrQ random shift of the student's training images, in pixels (0: off)
    encoder_dim: int = 128
    proprio_hidden: tuple[int, ...] = (256,)
    student_hidden: tuple[int, ...] = (256, 256)
    # --- env
    image_size: tuple[int, ...] | None = None  # None: the task's (anything else is off-leaderboard)
    max_episode_steps: int | None = None  # None: the task's
    nthread: int | None = None  # physics threads (None: the usable cores)
    torch_threads: int = 1  # 1: the 2 cores are shared with physics and rendering (see sdpg.py)
    # --- run
    seed: int = 0
    max_epochs: int = 230  # teacher_epochs + DAgger epochs (the time budget usually stops it first)
    time_budget_s: float = 3600.0
    checkpoint_every: int = 10
    episode_window: int = 100

    def __post_init__(self) -> None:
        rollout = self.teacher_n_steps * self.teacher_num_envs
        checks = [
            (self.teacher_epochs >= 1, "teacher_epochs must be >= 1"),
            (self.max_epochs > self.teacher_epochs,
             f"max_epochs ({self.max_epochs}) must exceed teacher_epochs ({self.teacher_epochs}), otherwise the "
             "student phase never starts"),
            (self.teacher_num_envs >= 1 and self.teacher_n_steps >= 1 and self.teacher_batch_size >= 1
             and self.teacher_n_epochs >= 1, "teacher_num_envs, teacher_n_steps, teacher_batch_size and "
             "teacher_n_epochs must be >= 1"),
            (self.teacher_steps_per_epoch >= rollout and self.teacher_steps_per_epoch % rollout == 0,
             f"teacher_steps_per_epoch ({self.teacher_steps_per_epoch}) must be a positive multiple of "
             f"teacher_n_steps * teacher_num_envs ({rollout})"),
            (self.student_num_envs >= 1 and self.student_updates >= 1 and self.student_batch_size >= 1,
             "student_num_envs, student_updates and student_batch_size must be >= 1"),
            (self.student_steps_per_epoch >= self.student_num_envs
             and self.student_steps_per_epoch % self.student_num_envs == 0,
             f"student_steps_per_epoch ({self.student_steps_per_epoch}) must be a positive multiple of "
             f"student_num_envs ({self.student_num_envs})"),
            (self.dataset_capacity >= self.student_steps_per_epoch,
             f"dataset_capacity ({self.dataset_capacity}) must be >= student_steps_per_epoch "
             f"({self.student_steps_per_epoch}), otherwise samples are overwritten before the student trains on them"),
            (0.0 <= self.beta_init <= 1.0 and 0.0 <= self.beta_decay <= 1.0 and 0.0 <= self.beta_cutoff <= 1.0,
             "beta_init, beta_decay and beta_cutoff must be in [0, 1]"),
            (self.teacher_lr > 0 and self.student_lr > 0, "teacher_lr and student_lr must be > 0"),
            (self.teacher_target_kl is None or self.teacher_target_kl > 0,
             "teacher_target_kl must be > 0 (or None: no early stop)"),
            (math.isfinite(self.teacher_reward_offset)
             and (self.teacher_reward_floor is None or math.isfinite(self.teacher_reward_floor)),
             "teacher_reward_offset and teacher_reward_floor must be finite (floor None: no floor)"),
            (self.augment_pad >= 0 and self.encoder_dim >= 1, "augment_pad must be >= 0 and encoder_dim >= 1"),
            (self.image_size is None or len(self.image_size) == 2, "image_size must be (H, W) or None"),
            (self.checkpoint_every >= 1 and self.episode_window >= 1, "checkpoint_every, episode_window >= 1"),
            (self.torch_threads >= 1, "torch_threads must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"DistillConfig: {msg}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DistillConfig":
        return apply_overrides(cls(task=data.get("task", cls.task)), data)


def make_config(task: str, overrides: dict[str, Any] | None = None) -> DistillConfig:
    """Defaults for ``task`` with ``overrides``.

    Raises:
        KeyError: Unknown task (naming the closest ids).
        ConfigError: Unknown config key or bad value.
    """
    return _sb3.make_config(DistillConfig, task, overrides)


# =============================================================================================
# 2. The student and the DAgger dataset
# =============================================================================================
class Student(nn.Module):
    """Pixels (uint8 CHW frame stack) + normalised proprio -> pre-tanh action. No privileged input."""

    def __init__(self, pixel_shape: tuple[int, int, int], proprio_dim: int, action_dim: int,
                 cfg: DistillConfig) -> None:
        super().__init__()
        self.encoder = DrQv2Encoder(pixel_shape, cfg.encoder_dim)
        self.proprio_net, pdim = mlp(proprio_dim, cfg.proprio_hidden)
        self.trunk, hdim = mlp(cfg.encoder_dim + pdim, cfg.student_hidden)
        self.head = nn.Linear(hdim, action_dim)

    def forward(self, pixels: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        z = torch.cat([self.encoder(pixels), self.proprio_net(proprio)], dim=-1)
        return self.head(self.trunk(z))


class DaggerDataset:
    """Bounded FIFO store of ``(pixels, proprio, teacher action)``: the oldest samples are overwritten.

    Args:
        capacity: Maximum number of samples.
        pixel_shape: ``(C, H, W)`` of one uint8 frame stack.
        proprio_dim: ``P`` (raw float32 proprio is stored).
        action_dim: ``A`` (float32 labels).
    """

    def __init__(self, capacity: int, pixel_shape: tuple[int, ...], proprio_dim: int, action_dim: int) -> None:
        self.capacity = int(capacity)
        # np.zeros: pages are only touched (and counted) as samples arrive
        self.pixels = np.zeros((self.capacity, *pixel_shape), np.uint8)
        self.proprio = np.zeros((self.capacity, proprio_dim), np.float32)
        self.actions = np.zeros((self.capacity, action_dim), np.float32)
        self.pos = 0  # next slot to write
        self.size = 0

    @staticmethod
    def bytes_per_sample(pixel_shape: tuple[int, ...], proprio_dim: int, action_dim: int) -> int:
        return int(np.prod(pixel_shape)) + 4 * (proprio_dim + action_dim)

    def add(self, pixels: np.ndarray, proprio: np.ndarray, actions: np.ndarray) -> None:
        """Append a batch (wrapping around, oldest first out)."""
        n = len(pixels)
        if n > self.capacity:
            raise ValueError(f"a batch of {n} samples does not fit a dataset of capacity {self.capacity}")
        if pixels.shape[1:] != self.pixels.shape[1:] or len(proprio) != n or len(actions) != n:
            raise ValueError(f"batch shapes {pixels.shape}, {proprio.shape}, {actions.shape} do not match the "
                             f"dataset's (n, {self.pixels.shape[1:]}), (n, {self.proprio.shape[1]}), "
                             f"(n, {self.actions.shape[1]})")
        idx = (self.pos + np.arange(n)) % self.capacity
        self.pixels[idx], self.proprio[idx], self.actions[idx] = pixels, proprio, actions
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def state_dict(self) -> dict[str, Any]:
        """The stored samples (slot order) as tensors sharing this memory, plus the write position."""
        n = self.size
        return {"pixels": torch.from_numpy(self.pixels[:n]), "proprio": torch.from_numpy(self.proprio[:n]),
                "actions": torch.from_numpy(self.actions[:n]), "pos": self.pos, "size": n}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        n = int(d["size"])
        if n > self.capacity or tuple(d["pixels"].shape[1:]) != self.pixels.shape[1:]:
            raise ValueError(f"the saved dataset ({n} samples of {tuple(d['pixels'].shape[1:])}) does not fit this "
                             f"one (capacity {self.capacity}, samples of {self.pixels.shape[1:]})")
        self.pixels[:n], self.proprio[:n], self.actions[:n] = (d[k].numpy() for k in ("pixels", "proprio", "actions"))
        self.pos, self.size = int(d["pos"]), n


def random_shift(pixels: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """DrQ augmentation: pad each ``(C, H, W)`` image by ``pad`` (edge values), crop back at a random offset."""
    if pad == 0:
        return pixels
    n, _, h, w = pixels.shape
    padded = np.pad(pixels, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="edge")
    off = rng.integers(0, 2 * pad + 1, size=(n, 2))
    return np.stack([padded[i, :, y:y + h, x:x + w] for i, (y, x) in enumerate(off)])


# =============================================================================================
# 3. The learner
# =============================================================================================
def beta_schedule(dagger_epoch: int, cfg: DistillConfig) -> float:
    """``beta_init * beta_decay ** k`` for the k-th DAgger epoch (k = 0, 1, ...), 0 below ``beta_cutoff``."""
    beta = cfg.beta_init * cfg.beta_decay ** dagger_epoch
    return beta if beta >= cfg.beta_cutoff else 0.0


def make_student_env(cfg: DistillConfig) -> Any:
    """The phase-2 env: every env rendered (CHW) and, for the teacher's labels, privileged state."""
    from ..envs.vector_env import VRBVectorEnv

    return VRBVectorEnv(cfg.task, num_envs=cfg.student_num_envs, autoreset_mode="DISABLED", privileged=True,
                        pixel_layout="CHW", **env_kwargs(cfg))


def make_teacher_env(cfg: DistillConfig) -> Any:
    """The phase-1 env: SB3 VecEnv over state-only envs (``privileged`` [+ ``height_scan``]; no pixels)."""
    from ..adapters.sb3 import make_sb3_env

    kwargs = env_kwargs(cfg)
    kwargs.pop("image_size", None)  # nothing is rendered
    env = make_sb3_env(cfg.task, cfg.teacher_num_envs, obs_mode="state", **kwargs)
    if cfg.teacher_reward_offset != 0.0 or cfg.teacher_reward_floor is not None:
        env = training_reward(env, cfg.teacher_reward_offset, cfg.teacher_reward_floor)
    return env


def training_reward(venv: Any, offset: float, floor: float | None) -> Any:
    """``venv`` wrapped so that PPO trains on ``max(r + offset, floor)`` (SB3 ``VecEnvWrapper``).

    The adapter's ``infos[i]["episode"]`` (the logged returns) is written below this wrapper, so it keeps
    the task's own reward. A per-step floor of 0 (legged_gym's ``only_positive_rewards``) or a positive
    offset keeps early termination from paying off where the task's per-step reward is negative.
    """
    from stable_baselines3.common.vec_env import VecEnvWrapper

    class _TrainingReward(VecEnvWrapper):
        def reset(self) -> Any:
            return self.venv.reset()

        def step_wait(self) -> Any:
            obs, rewards, dones, infos = self.venv.step_wait()
            rewards = rewards + offset
            if floor is not None:
                rewards = np.maximum(rewards, floor)
            return obs, rewards, dones, infos

    return _TrainingReward(venv)


class Distill:
    """The distillation learner (``vrb train --agent distill``); see the module doc.

    Args:
        cfg: The run config.
        _resume: Internal (``from_checkpoint``): a loaded checkpoint and the paths of its sibling files.
    """

    def __init__(self, cfg: DistillConfig, _resume: dict[str, Any] | None = None) -> None:
        from stable_baselines3.common.logger import Logger

        self.cfg = cfg
        torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        # phase-2 env: built now for its spaces; nothing is rendered before the student phase starts
        self.env = make_student_env(cfg)
        space = self.env.single_observation_space.spaces
        self.pixel_shape = tuple(space["pixels"].shape)
        self.proprio_dim = int(space["proprio"].shape[0])
        self.action_dim = int(self.env.single_action_space.shape[0])
        self.teacher_keys = [k for k in ("privileged", "height_scan") if k in space]  # the teacher's whole input
        self.student = Student(self.pixel_shape, self.proprio_dim, self.action_dim, cfg)
        self.student_opt = torch.optim.Adam(self.student.parameters(), lr=cfg.student_lr)
        self.proprio_rms = RunningMeanStd(self.proprio_dim)
        self.dataset = DaggerDataset(cfg.dataset_capacity, self.pixel_shape, self.proprio_dim, self.action_dim)

        self.epoch, self.env_steps, self.frames, self.train_time = 0, 0, 0, 0.0
        self.total_episodes, self.student_updates_done = 0, 0
        self.episodes: deque = deque(maxlen=cfg.episode_window)  # the acting policy's (return, length, success)
        self.teacher_episodes: deque = deque(maxlen=cfg.episode_window)  # phase 1
        self.student_episodes: deque = deque(maxlen=cfg.episode_window)  # phase 2, no teacher action taken
        self.student_started = False
        self.teacher_env: Any = None  # phase 1 only
        self.vecnorm: Any = None  # VecNormalize holding the teacher's observation statistics
        self.vecnorm_frozen: bytes | None = None  # its pickle once frozen (phase 2: it has no venv to pickle)

        if _resume is None:
            self._build_teacher()
        else:
            self._load(_resume)
        self.teacher.set_logger(Logger(folder=None, output_formats=[]))
        self._callback = self._make_callback()

    # ------------------------------------------------------------------ the teacher (phase 1)
    def _build_teacher(self) -> None:
        from stable_baselines3 import PPO
        from stable_baselines3.common.vec_env import VecNormalize

        cfg = self.cfg
        env = make_teacher_env(cfg)
        if cfg.teacher_norm_obs or cfg.teacher_norm_reward:
            env = self.vecnorm = VecNormalize(env, norm_obs=cfg.teacher_norm_obs, norm_reward=cfg.teacher_norm_reward,
                                              gamma=cfg.teacher_gamma)
        self.teacher_env = env
        self.teacher = PPO(
            "MultiInputPolicy", env, n_steps=cfg.teacher_n_steps, batch_size=cfg.teacher_batch_size,
            n_epochs=cfg.teacher_n_epochs, learning_rate=cfg.teacher_lr, gamma=cfg.teacher_gamma,
            gae_lambda=cfg.teacher_gae_lambda, clip_range=cfg.teacher_clip_range, ent_coef=cfg.teacher_ent_coef,
            vf_coef=cfg.teacher_vf_coef, max_grad_norm=cfg.teacher_max_grad_norm,
            target_kl=cfg.teacher_target_kl,
            policy_kwargs={"net_arch": list(cfg.teacher_net_arch), "log_std_init": cfg.teacher_log_std_init},
            seed=cfg.seed, device="cpu", verbose=0)

    def _make_callback(self) -> Any:
        def record(episode: tuple[float, int, bool]) -> None:
            self.episodes.append(episode)
            self.teacher_episodes.append(episode)
            self.total_episodes += 1

        return _sb3.episode_callback(record)

    def teacher_act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The teacher's deterministic action (PPO mean, clipped) on privileged state; the DAgger label."""
        return teacher_action(self.teacher, self.vecnorm, {k: obs[k] for k in self.teacher_keys})

    def _teacher_epoch(self) -> dict[str, Any]:
        steps0 = self.teacher.num_timesteps
        self.teacher.learn(self.cfg.teacher_steps_per_epoch, callback=self._callback, reset_num_timesteps=False,
                           log_interval=None)
        values = dict(self.teacher.logger.name_to_value)
        self.teacher.logger.dump(self.teacher.num_timesteps)  # clears the accumulated values
        self.env_steps += self.teacher.num_timesteps - steps0
        stats: dict[str, Any] = {"phase": 1, "acting": "teacher", "beta": 1.0, "teacher_action_frac": 1.0}
        for key in TEACHER_STAT_KEYS:
            stats[f"teacher_{key}"] = float(values.get(f"train/{key}", float("nan")))
        return stats

    # ------------------------------------------------------------------ the student (phase 2)
    def start_student_phase(self) -> None:
        """Close the teacher's envs, freeze its statistics, seed and reset the rendered envs."""
        if self.teacher_env is not None:
            self.teacher_env.close()
            self.teacher_env = None
        if self.vecnorm is not None:
            if self.vecnorm_frozen is None:  # the statistics at the end of phase 1 (what VecNormalize.save writes)
                self.vecnorm_frozen = pickle.dumps(self.vecnorm)
            self.vecnorm.training = False
        self.rng = np.random.default_rng([self.cfg.seed, 3])  # mixture draws, minibatches, augmentation
        self.env_rngs = [np.random.default_rng([self.cfg.seed, 2, i]) for i in range(self.cfg.student_num_envs)]
        for i, g in enumerate(self.env_rngs):
            self.env.set_rng(i, g)
        self.obs, _ = self.env.reset()
        N = self.cfg.student_num_envs
        self.ep_return, self.ep_length = np.zeros(N), np.zeros(N, dtype=np.int64)
        self.ep_success, self.ep_teacher_steps = np.zeros(N, dtype=bool), np.zeros(N, dtype=np.int64)
        self.episodes.clear()  # episode_return is now the DAgger policy's
        self.student_started = True

    def _student_inputs(self, pixels: np.ndarray, proprio: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.as_tensor(np.ascontiguousarray(pixels)), torch.as_tensor(self.proprio_rms.normalize(proprio))

    @torch.no_grad()
    def student_act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The student's deterministic action ``tanh(f(pixels, proprio))`` (current proprio statistics)."""
        return torch.tanh(self.student(*self._student_inputs(obs["pixels"], obs["proprio"]))).numpy()

    def beta(self) -> float:
        """Probability of executing the teacher's action in the current (next) DAgger epoch."""
        return beta_schedule(max(0, self.epoch - self.cfg.teacher_epochs), self.cfg)

    def collect(self, steps: int, beta: float) -> dict[str, float]:
        """``steps`` env steps of the beta-mixture; every visited state goes to the dataset with its label."""
        N, teacher_taken, mse = self.cfg.student_num_envs, 0, []
        frames0 = self.env.unwrapped.frames_rendered
        for _ in range(steps):
            obs = self.obs
            label = self.teacher_act(obs)
            use_teacher = self.rng.random(N) < beta
            if use_teacher.all():  # the student's action is not needed (e.g. beta = 1)
                actions = label
            else:
                student = self.student_act(obs)
                mse.append(float(((student - label) ** 2).mean()))
                actions = np.where(use_teacher[:, None], label, student).astype(np.float32)
            self.dataset.add(obs["pixels"], obs["proprio"], label)
            self.proprio_rms.update(obs["proprio"])
            obs, r, term, trunc, info = self.env.step(actions)
            teacher_taken += int(use_teacher.sum())
            self.ep_return += r
            self.ep_length += 1
            self.ep_success |= info["success"]
            self.ep_teacher_steps += use_teacher
            done = term | trunc
            for i in np.flatnonzero(done):
                item = (float(self.ep_return[i]), int(self.ep_length[i]), bool(self.ep_success[i]))
                self.episodes.append(item)
                if self.ep_teacher_steps[i] == 0:
                    self.student_episodes.append(item)
                self.total_episodes += 1
            if done.any():
                self.ep_return[done], self.ep_length[done] = 0.0, 0
                self.ep_success[done], self.ep_teacher_steps[done] = False, 0
                obs, _ = self.env.reset(options={"reset_mask": done})
            self.obs = obs
        self.env_steps += N * steps
        self.frames += self.env.unwrapped.frames_rendered - frames0  # steps and resets
        return {"teacher_action_frac": teacher_taken / (N * steps),
                "onpolicy_mse": float(np.mean(mse)) if mse else float("nan")}

    def bc_loss(self, idx: np.ndarray, augment: bool = False) -> torch.Tensor:
        """MSE between the student's post-tanh action and the teacher's label on dataset samples ``idx``."""
        d = self.dataset
        pixels = random_shift(d.pixels[idx], self.cfg.augment_pad, self.rng) if augment else d.pixels[idx]
        pred = torch.tanh(self.student(*self._student_inputs(pixels, d.proprio[idx])))
        return ((pred - torch.as_tensor(d.actions[idx])) ** 2).mean()

    def update_student(self) -> float:
        """One Adam step on a minibatch drawn uniformly (with replacement) from the dataset."""
        idx = self.rng.integers(0, self.dataset.size, size=self.cfg.student_batch_size)
        loss = self.bc_loss(idx, augment=True)
        self.student_opt.zero_grad()
        loss.backward()
        self.student_opt.step()
        self.student_updates_done += 1
        return loss.item()

    def _student_epoch(self) -> dict[str, Any]:
        cfg = self.cfg
        beta = self.beta()
        t0 = time.perf_counter()
        stats = self.collect(cfg.student_steps_per_epoch // cfg.student_num_envs, beta)
        t1 = time.perf_counter()
        losses = [self.update_student() for _ in range(cfg.student_updates)]
        acting = "teacher" if beta >= 1.0 else ("student" if beta <= 0.0 else "mixture")
        return {"phase": 2, "acting": acting, "beta": beta, **stats, "bc_loss": float(np.mean(losses)),
                "time_collect_s": t1 - t0, "time_update_s": time.perf_counter() - t1}

    # ------------------------------------------------------------------ epochs
    def train_epoch(self) -> dict[str, Any]:
        """A teacher epoch (the first ``teacher_epochs``) or a DAgger epoch; returns the epoch's scalars.

        Every epoch returns the same keys (progress.csv's columns are fixed by its first row); values
        that belong to the other phase are NaN.
        """
        t0 = time.perf_counter()
        steps0, frames0 = self.env_steps, self.frames
        if self.epoch < self.cfg.teacher_epochs:
            phase_stats = self._teacher_epoch()
        else:
            if not self.student_started:
                self.start_student_phase()
            phase_stats = self._student_epoch()
        dt = time.perf_counter() - t0
        self.epoch += 1
        self.train_time += dt
        nan = float("nan")
        stats: dict[str, Any] = {
            "epoch": self.epoch, "phase": nan, "acting": "", "beta": nan, "teacher_action_frac": nan,
            "env_steps": self.env_steps, "frames": self.frames, "wall_s": self.train_time, "time_epoch_s": dt,
            "env_steps_per_s": (self.env_steps - steps0) / dt, "frames_per_s": (self.frames - frames0) / dt,
            "episodes": self.total_episodes, **self.episode_stats(),
            "teacher_return": episode_stats(self.teacher_episodes)["episode_return"],
            "student_return": episode_stats(self.student_episodes)["episode_return"],
            **{f"teacher_{k}": nan for k in TEACHER_STAT_KEYS},
            "bc_loss": nan, "onpolicy_mse": nan, "dataset_size": self.dataset.size,
            "student_updates": self.student_updates_done, "time_collect_s": nan, "time_update_s": nan,
        }
        stats.update(phase_stats)
        return stats

    def episode_stats(self) -> dict[str, float]:
        return episode_stats(self.episodes)

    # =========================================================================================
    # 4. Checkpoints and the exported policy
    # =========================================================================================
    def _write_teacher(self, zip_path: Path, vecnorm_path: Path | None) -> None:
        buf = io.BytesIO()
        self.teacher.save(buf)
        atomic_write_bytes(zip_path, buf.getvalue())
        if vecnorm_path is not None:  # the bytes VecNormalize.save writes
            blob = self.vecnorm_frozen if self.vecnorm_frozen is not None else pickle.dumps(self.vecnorm)
            atomic_write_bytes(vecnorm_path, blob)

    def save_checkpoint(self, path: str | Path) -> None:
        """Sibling files (teacher zip, VecNormalize pickle, dataset) under epoch-stamped names, then ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tag = f"{path.stem}-e{self.epoch:06d}.{AGENT_NAME}"
        files = {"teacher": f"{tag}.teacher.zip",
                 "vecnorm": f"{tag}.vecnormalize.pkl" if self.vecnorm is not None else None,
                 "dataset": f"{tag}.data.pt" if self.student_started else None}
        self._write_teacher(path.parent / files["teacher"], files["vecnorm"] and path.parent / files["vecnorm"])
        if files["dataset"]:
            atomic_torch_save(self.dataset.state_dict(), path.parent / files["dataset"])
        student_phase = None
        if self.student_started:
            st = self.env.get_state()
            student_phase = {
                "rng": self.rng.bit_generator.state, "env_rngs": [g.bit_generator.state for g in self.env_rngs],
                "env_state": st.to_dict(),
                "frame_stacks": self.env.get_frame_stacks(), "obs": {k: v.copy() for k, v in self.obs.items()},
                "ep": {"return": self.ep_return.copy(), "length": self.ep_length.copy(),
                       "success": self.ep_success.copy(), "teacher_steps": self.ep_teacher_steps.copy()},
            }
        atomic_torch_save({
            "format_version": FORMAT_VERSION, "agent": AGENT_NAME, "kind": "checkpoint", "task": self.cfg.task,
            "config": self.cfg.to_dict(), "files": files,
            "student": self.student.state_dict(), "student_opt": self.student_opt.state_dict(),
            "proprio_rms": self.proprio_rms.state_dict(), "torch_rng": torch.get_rng_state(),
            "counters": {"epoch": self.epoch, "env_steps": self.env_steps, "frames": self.frames,
                         "train_time": self.train_time, "total_episodes": self.total_episodes,
                         "student_updates": self.student_updates_done, "teacher_timesteps": self.teacher.num_timesteps},
            "episodes": {"window": list(self.episodes), "teacher": list(self.teacher_episodes),
                         "student": list(self.student_episodes)},
            "student_phase": student_phase,
            "teacher_run_state": (None if self.teacher_env is None else
                                  _sb3.run_state(self.teacher, getattr(self.teacher_env, "venv", self.teacher_env))),
        }, path)
        keep = {f for f in files.values() if f}
        for old in path.parent.glob(f"{path.stem}-e*.{AGENT_NAME}.*"):
            if old.name not in keep:
                old.unlink(missing_ok=True)

    def _load(self, r: dict[str, Any]) -> None:
        """Restore a checkpoint (``r``: the checkpoint dict and the resolved sibling paths)."""
        from stable_baselines3 import PPO
        from stable_baselines3.common.vec_env import VecNormalize

        ck, cfg = r["checkpoint"], self.cfg
        c = ck["counters"]
        self.epoch, self.env_steps, self.frames = c["epoch"], c["env_steps"], c["frames"]
        self.train_time, self.total_episodes = c["train_time"], c["total_episodes"]
        self.student_updates_done = c["student_updates"]
        self.student.load_state_dict(ck["student"])
        self.student_opt.load_state_dict(ck["student_opt"])
        self.proprio_rms.load_state_dict(ck["proprio_rms"])
        if self.epoch < cfg.teacher_epochs:  # phase 1: the teacher trains on (fresh) state-only envs
            env = make_teacher_env(cfg)
            if r["vecnorm"] is not None:
                env = self.vecnorm = VecNormalize.load(r["vecnorm"], env)
            self.teacher_env = env
            self.teacher = PPO.load(r["teacher"], env=env, device="cpu")
            # env states, last observations and RNG streams: the teacher continues exactly (module doc)
            _sb3.load_run_state(self.teacher, getattr(env, "venv", env), ck["teacher_run_state"])
        else:  # phase 2: the teacher is frozen and only labels
            self.teacher = PPO.load(r["teacher"], device="cpu")
            if r["vecnorm"] is not None:
                self.vecnorm_frozen = Path(r["vecnorm"]).read_bytes()
                self.vecnorm = pickle.loads(self.vecnorm_frozen)  # no venv needed: only normalize_obs is used
                self.vecnorm.training = False
        torch.set_rng_state(ck["torch_rng"])
        sp = ck["student_phase"]
        if sp is not None:  # (a checkpoint written at the end of phase 1 starts phase 2 at the next epoch)
            self._load_student_phase(sp, r["dataset"])
        self.episodes.extend(tuple(x) for x in ck["episodes"]["window"])
        self.teacher_episodes.extend(tuple(x) for x in ck["episodes"]["teacher"])
        self.student_episodes.extend(tuple(x) for x in ck["episodes"]["student"])

    def _load_student_phase(self, sp: dict[str, Any], dataset_path: Path) -> None:
        from ..envs.vector_env import VRBState

        self.start_student_phase()
        self.dataset.load_state_dict(torch.load(dataset_path, map_location="cpu", mmap=True, weights_only=True))
        self.rng.bit_generator.state = sp["rng"]
        es = sp["env_state"]
        self.env.set_state(VRBState.from_dict(es))
        for g, s in zip(self.env_rngs, sp["env_rngs"]):  # after set_state: restore the streams last
            g.bit_generator.state = s
        self.env.set_frame_stacks(sp["frame_stacks"])
        self.obs = {k: v.copy() for k, v in sp["obs"].items()}
        e = sp["ep"]
        self.ep_return, self.ep_length = e["return"].copy(), e["length"].copy()
        self.ep_success, self.ep_teacher_steps = e["success"].copy(), e["teacher_steps"].copy()

    @classmethod
    def from_checkpoint(cls, path: str | Path, task: str | None = None, **config_changes: Any) -> "Distill":
        """Rebuild the learner of a checkpoint (``task``: refuse a checkpoint of another task)."""
        path = Path(path)
        ck = load_file(path)
        check_checkpoint(ck, task)
        if ck.get("kind") != "checkpoint":
            raise IncompatibleCheckpoint(f"{path} is a policy file, not a training checkpoint")
        cfg = DistillConfig.from_dict(ck["config"])
        if config_changes:
            cfg = apply_overrides(cfg, config_changes)
        paths: dict[str, Any] = {"checkpoint": ck}
        for key, name in ck["files"].items():
            paths[key] = None if name is None else path.parent / name
            if paths[key] is not None and not paths[key].is_file():
                raise FileNotFoundError(f"the checkpoint names {paths[key]}, which does not exist")
        return cls(cfg, _resume=paths)

    def export_policy(self, path: str | Path) -> None:
        """``policy.pt`` (the pixel student; see the module doc before phase 2) and ``teacher.zip`` next to it."""
        path = Path(path)
        space = self.env.single_observation_space.spaces
        atomic_torch_save({
            "format_version": FORMAT_VERSION, "agent": AGENT_NAME, "kind": "policy", "task": self.cfg.task,
            "config": self.cfg.to_dict(), "student": self.student.state_dict(),
            "proprio_rms": self.proprio_rms.state_dict(),
            "obs_space": {k: {"shape": list(space[k].shape), "dtype": str(space[k].dtype)}
                          for k in ("pixels", "proprio") if k in space},  # never privileged
            "pixel_layout": "CHW", "action_dim": self.action_dim,
            "epoch": self.epoch, "env_steps": self.env_steps, "student_updates": self.student_updates_done,
            "episode_return": episode_stats(self.student_episodes)["episode_return"],
        }, path)
        self._write_teacher(path.parent / "teacher.zip",
                            path.parent / "teacher_vecnormalize.pkl" if self.vecnorm is not None else None)

    def close(self) -> None:
        if self.teacher_env is not None:
            self.teacher_env.close()
            self.teacher_env = None
        self.env.close()


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a distill checkpoint or policy file."""
    return load_agent_file(path, AGENT_NAME)


def check_checkpoint(data: dict[str, Any], task: str | None) -> None:
    """Refuse a file of another format version or (when given) another task."""
    check_agent_file(data, task, FORMAT_VERSION, AGENT_NAME)


def teacher_action(teacher: Any, vecnorm: Any, obs: dict[str, np.ndarray]) -> np.ndarray:
    """The PPO teacher's deterministic action on its (privileged) observations ``obs``, normalised by the
    frozen ``VecNormalize`` statistics (never updated here; ``None``: no normalisation), clipped to [-1, 1]."""
    if vecnorm is not None:
        obs = vecnorm.normalize_obs(obs)
    actions, _ = teacher.predict(obs, deterministic=True)
    return np.clip(np.asarray(actions, np.float32), -1.0, 1.0)


class TeacherPolicy:
    """An exported teacher (``teacher.zip`` + ``teacher_vecnormalize.pkl`` of a distill run directory) as an
    agent: ``act(obs)`` from the privileged observation keys (evaluate it in envs with ``obs_mode="state"``).

    Args:
        run_dir: The distill run directory.
    """

    name = f"{AGENT_NAME}-teacher"

    def __init__(self, run_dir: str | Path) -> None:
        from stable_baselines3 import PPO

        run_dir = Path(run_dir)
        self.teacher = PPO.load(run_dir / "teacher.zip", device="cpu")
        self.keys = list(self.teacher.observation_space.spaces)
        norm = run_dir / "teacher_vecnormalize.pkl"
        self.vecnorm = pickle.loads(norm.read_bytes()) if norm.exists() else None

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        missing = [k for k in self.keys if k not in obs]
        if missing:
            raise ValueError(f"the teacher needs observation keys {missing}: evaluate it with obs_mode='state'")
        return teacher_action(self.teacher, self.vecnorm, {k: obs[k] for k in self.keys})


class DistillPolicy:
    """A loaded student: deterministic ``act(obs)`` -> ``tanh(f(pixels, proprio))`` in [-1, 1].

    ``obs`` holds ``pixels`` (HWC or CHW, batched or single) and ``proprio``; other keys (e.g.
    ``privileged``) are ignored.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.cfg = DistillConfig.from_dict(data["config"])
        self.task = data["task"]
        self.obs_space = data["obs_space"]
        self.pixel_shape = tuple(self.obs_space["pixels"]["shape"])  # (C, H, W)
        self.proprio_dim = int(self.obs_space["proprio"]["shape"][0])
        self.action_dim = int(data["action_dim"])
        self.student = Student(self.pixel_shape, self.proprio_dim, self.action_dim, self.cfg)
        self.student.load_state_dict(data["student"])
        self.student.eval()
        self.rms = RunningMeanStd(self.proprio_dim)
        self.rms.load_state_dict(data["proprio_rms"])
        self.meta = {k: data.get(k) for k in ("epoch", "env_steps", "student_updates", "episode_return")}
        self.name = f"{AGENT_NAME}:{self.task}"

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        pixels, single = images_chw(obs["pixels"], self.pixel_shape, "pixels", self.task)
        proprio = np.asarray(obs["proprio"], np.float32)
        proprio = proprio[None] if single and proprio.ndim == 1 else proprio
        if proprio.shape != (len(pixels), self.proprio_dim):
            raise ValueError(f"proprio must be ({len(pixels)}, {self.proprio_dim}) to match the pixels for "
                             f"{self.task}, got {proprio.shape}")
        proprio_t = torch.as_tensor(self.rms.normalize(proprio))
        a = torch.tanh(self.student(torch.as_tensor(pixels), proprio_t)).numpy().astype(np.float32)
        return a[0] if single else a

    __call__ = act


def load_policy(path: str | Path, task: str | None = None) -> DistillPolicy:
    """Load ``policy.pt`` (or a training checkpoint's student) as a deterministic policy.

    Warns when the file holds the untrained student (a run stopped in the teacher phase).
    """
    data = load_file(path)
    check_checkpoint(data, task)
    if data.get("kind") != "policy":
        raise IncompatibleCheckpoint(f"{path} is a training checkpoint; load the run's policy.pt")
    if data.get("student_updates", 0) == 0:
        warnings.warn(f"{path} holds the untrained student: the run stopped in the teacher phase (epoch "
                      f"{data.get('epoch')} of teacher_epochs={data['config'].get('teacher_epochs')})", stacklevel=2)
    return DistillPolicy(data)


# The ``vrb train`` learner interface (see :mod:`visual_robo_bench.train`).
LEARNER = Distill


def describe(cfg: DistillConfig) -> str:
    """The run layout printed by ``vrb train``."""
    return (f"teacher PPO on privileged state: N={cfg.teacher_num_envs}, {cfg.teacher_epochs} epochs x "
            f"{cfg.teacher_steps_per_epoch} steps; student DAgger: N={cfg.student_num_envs}, "
            f"{cfg.student_steps_per_epoch} steps + {cfg.student_updates} updates/epoch")
