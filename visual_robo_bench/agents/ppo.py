"""PPO baseline: stable-baselines3 ``PPO`` with ``MultiInputPolicy`` (NatureCNN on the stacked pixels,
an MLP on ``proprio``) on VRB's batched env. Training machinery, checkpoints, resume semantics and the
policy file: :mod:`visual_robo_bench.agents._sb3` (resume is bit-identical to an uninterrupted run).

Memory: the rollout buffer holds ``n_steps * num_envs`` uint8 observations (84x84x9: 63.5 KB each),
so the defaults (32 x 16 = 512) take about 33 MB (conventions §3.2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _sb3
from ._sb3 import IncompatibleCheckpoint  # noqa: F401 - re-exported
from .common import apply_overrides

AGENT_NAME = "ppo"
#: Keys ``vrb train --resume`` may change (no schedule depends on max_epochs here).
RESUMABLE_KEYS = ("time_budget_s", "checkpoint_every", "max_epochs")


@dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of a PPO run (SB3 defaults except the CPU-sized rollout and network)."""

    task: str = "VRB/Walker-v1"
    num_envs: int = 16  # rendered envs stepped together (one native batched env)
    steps_per_epoch: int = 2048  # env steps per epoch (a multiple of n_steps * num_envs)
    n_steps: int = 32  # per env and rollout
    batch_size: int = 128
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    log_std_init: float = -0.5
    cnn_output_dim: int = 256
    net_arch: tuple[int, ...] = (256, 256)
    image_size: tuple[int, ...] | None = None
    max_episode_steps: int | None = None
    nthread: int | None = None
    torch_threads: int = 1
    seed: int = 0
    max_epochs: int = 1000
    time_budget_s: float = 3600.0
    checkpoint_every: int = 10
    episode_window: int = 100

    def __post_init__(self) -> None:
        _sb3.config_checks(self, "PPOConfig", [
            (self.n_steps >= 1 and self.batch_size >= 1 and self.n_epochs >= 1,
             "n_steps, batch_size and n_epochs must be >= 1"),
            (self.n_steps < 1 or self.num_envs < 1 or self.steps_per_epoch % (self.n_steps * self.num_envs) == 0,
             f"steps_per_epoch ({self.steps_per_epoch}) must be a multiple of n_steps * num_envs "
             f"({self.n_steps * self.num_envs})"),
        ])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PPOConfig":
        return apply_overrides(cls(task=data.get("task", cls.task)), data)


class PPOLearner(_sb3.SB3Learner):
    AGENT = AGENT_NAME
    ALGO = "PPO"
    CONFIG = PPOConfig
    STAT_KEYS = ("loss", "policy_gradient_loss", "value_loss", "entropy_loss", "approx_kl", "clip_fraction",
                 "explained_variance", "std")

    def build_model(self, env: Any) -> Any:
        from stable_baselines3 import PPO

        cfg = self.cfg
        kw = self.policy_kwargs()
        kw["log_std_init"] = cfg.log_std_init
        return PPO("MultiInputPolicy", env, n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs,
                   learning_rate=cfg.learning_rate, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda,
                   clip_range=cfg.clip_range, ent_coef=cfg.ent_coef, vf_coef=cfg.vf_coef,
                   max_grad_norm=cfg.max_grad_norm, policy_kwargs=kw, seed=cfg.seed, device="cpu", verbose=0)


LEARNER = PPOLearner


def make_config(task: str, overrides: dict[str, Any] | None = None) -> PPOConfig:
    """Defaults for ``task`` with ``overrides`` (KeyError: unknown task; ConfigError: bad key/value)."""
    return _sb3.make_config(PPOConfig, task, overrides)


def describe(cfg: PPOConfig) -> str:
    return f"N={cfg.num_envs}, n_steps={cfg.n_steps}, {cfg.steps_per_epoch} env steps/epoch"


def load_file(path: str | Path) -> dict[str, Any]:
    return _sb3.load_file(path, AGENT_NAME)


def check_checkpoint(data: dict[str, Any], task: str | None) -> None:
    _sb3.check_checkpoint(data, task, AGENT_NAME)


def load_policy(path: str | Path, task: str | None = None) -> _sb3.SB3Policy:
    """Load ``policy.pt`` as a deterministic policy (``act(obs)``)."""
    return _sb3.load_policy(path, AGENT_NAME, task)
