"""SAC baseline: stable-baselines3 ``SAC`` with ``MultiInputPolicy`` (NatureCNN on the stacked pixels,
an MLP on ``proprio``) on VRB's batched env. Training machinery, checkpoints (model zip + replay
buffer), resume semantics and the policy file: :mod:`visual_robo_bench.agents._sb3` (resume is
bit-identical to an uninterrupted run, except with ``save_replay_buffer=false``).

Memory (conventions §3.2): SB3's ``DictReplayBuffer`` stores ``obs`` and ``next_obs``, 2 x 63.5 KB per
84x84x9 transition, so the default ``buffer_size=10_000`` takes about 1.3 GB (SB3's default 1M would
need 127 GB); every checkpoint writes the buffer to disk (``save_replay_buffer=false`` skips it, and a
resumed run then starts with an empty buffer).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _sb3
from ._sb3 import IncompatibleCheckpoint  # noqa: F401 - re-exported
from .common import apply_overrides

AGENT_NAME = "sac"
#: Keys ``vrb train --resume`` may change (no schedule depends on max_epochs here).
RESUMABLE_KEYS = ("time_budget_s", "checkpoint_every", "max_epochs")


def _valid_ent_coef(value: str) -> bool:
    """SB3's accepted forms of SAC's ``ent_coef``: ``auto``, ``auto_<float>`` or a float."""
    text = str(value)
    if text == "auto":
        return True
    try:
        float(text[5:] if text.startswith("auto_") else text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class SACConfig:
    """Hyperparameters of a SAC run (SB3 defaults except the buffer, batch and update ratio)."""

    task: str = "VRB/Walker-v1"
    num_envs: int = 16
    steps_per_epoch: int = 2048  # env steps per epoch (a multiple of num_envs)
    buffer_size: int = 10_000  # transitions; pixels: ~127 KB each at 84x84x9 (obs + next_obs)
    save_replay_buffer: bool = True
    learning_starts: int = 1000
    batch_size: int = 128
    train_freq: int = 1  # vector steps (num_envs env steps each) between updates
    gradient_steps: int = 1
    learning_rate: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    ent_coef: str = "auto"
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
        _sb3.config_checks(self, "SACConfig", [
            (self.steps_per_epoch % self.num_envs == 0,
             f"steps_per_epoch ({self.steps_per_epoch}) must be a multiple of num_envs ({self.num_envs})"),
            (self.buffer_size >= self.num_envs, "buffer_size must be >= num_envs"),
            (self.batch_size >= 1 and self.train_freq >= 1 and self.gradient_steps >= 0,
             "batch_size, train_freq >= 1 and gradient_steps >= 0"),
            (0 < self.tau <= 1 and 0 < self.gamma <= 1, "tau and gamma must be in (0, 1]"),
            # SB3 collects whole train_freq rounds before it checks the step budget: an epoch would overshoot
            (self.steps_per_epoch // self.num_envs % self.train_freq == 0,
             f"steps_per_epoch / num_envs ({self.steps_per_epoch // self.num_envs} vector steps) must be a "
             f"multiple of train_freq ({self.train_freq})"),
            (_valid_ent_coef(self.ent_coef),
             f"ent_coef must be 'auto', 'auto_<initial value>' (e.g. 'auto_0.1') or a number, got {self.ent_coef!r}"),
        ])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SACConfig":
        return apply_overrides(cls(task=data.get("task", cls.task)), data)


class SACLearner(_sb3.SB3Learner):
    AGENT = AGENT_NAME
    ALGO = "SAC"
    CONFIG = SACConfig
    OFF_POLICY = True
    STAT_KEYS = ("actor_loss", "critic_loss", "ent_coef", "ent_coef_loss")

    def build_model(self, env: Any) -> Any:
        from stable_baselines3 import SAC

        cfg = self.cfg
        ent: Any = cfg.ent_coef
        try:
            ent = float(ent)
        except ValueError:
            pass
        return SAC("MultiInputPolicy", env, buffer_size=cfg.buffer_size, learning_starts=cfg.learning_starts,
                   batch_size=cfg.batch_size, train_freq=cfg.train_freq, gradient_steps=cfg.gradient_steps,
                   learning_rate=cfg.learning_rate, gamma=cfg.gamma, tau=cfg.tau, ent_coef=ent,
                   policy_kwargs=self.policy_kwargs(), seed=cfg.seed, device="cpu", verbose=0)


LEARNER = SACLearner


def make_config(task: str, overrides: dict[str, Any] | None = None) -> SACConfig:
    """Defaults for ``task`` with ``overrides`` (KeyError: unknown task; ConfigError: bad key/value)."""
    return _sb3.make_config(SACConfig, task, overrides)


def describe(cfg: SACConfig) -> str:
    return f"N={cfg.num_envs}, buffer={cfg.buffer_size:,}, {cfg.steps_per_epoch} env steps/epoch"


def load_file(path: str | Path) -> dict[str, Any]:
    return _sb3.load_file(path, AGENT_NAME)


def check_checkpoint(data: dict[str, Any], task: str | None) -> None:
    _sb3.check_checkpoint(data, task, AGENT_NAME)


def load_policy(path: str | Path, task: str | None = None) -> _sb3.SB3Policy:
    """Load ``policy.pt`` as a deterministic policy (``act(obs)``)."""
    return _sb3.load_policy(path, AGENT_NAME, task)
