"""The ``random`` reference floor as a ``vrb train`` agent (no learning; see :mod:`visual_robo_bench.agents._floor`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import _floor
from ._floor import RESUMABLE_KEYS, FloorConfig, IncompatibleCheckpoint  # noqa: F401 - re-exported

AGENT_NAME = "random"


class RandomLearner(_floor.FloorLearner):
    KIND = AGENT_NAME


LEARNER = RandomLearner


def make_config(task: str, overrides: dict[str, Any] | None = None) -> FloorConfig:
    """Defaults for ``task`` with ``overrides`` (KeyError: unknown task; ConfigError: bad key/value)."""
    return _floor.make_config(task, overrides)


def describe(cfg: FloorConfig) -> str:
    return f"N={cfg.num_envs}, {cfg.steps_per_epoch} env steps/epoch, no learning"


def load_file(path: str | Path) -> dict[str, Any]:
    return _floor.load_file(path, AGENT_NAME)


def check_checkpoint(data: dict[str, Any], task: str | None) -> None:
    _floor.check_checkpoint(data, task, AGENT_NAME)


def load_policy(path: str | Path, task: str | None = None) -> Any:
    """The policy file as the evaluation harness's own Random agent (``act(obs)``)."""
    return _floor.load_policy(path, AGENT_NAME, task)
