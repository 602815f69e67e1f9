"""Evaluation: the agent protocol, the standard harness, results files, leaderboards and (Ray) sweeps."""

from .distributed import (RayUnavailableError, RolloutError, SweepError, collect_rollouts, evaluate_sweep,
                          load_rollouts, load_sweep)
from .harness import (DEFAULT_EPISODES, HELD_OUT_SEED_BASE, PUBLIC_SEED_BASE, EpisodeResult, EvalProtocol,
                      EvalResult, evaluate, protocol_for)
from .protocol import Agent, AgentContext, AgentLoadError, RandomAgent, ZeroAgent, load_agent

__all__ = [
    "DEFAULT_EPISODES", "HELD_OUT_SEED_BASE", "PUBLIC_SEED_BASE", "Agent", "AgentContext", "AgentLoadError",
    "EpisodeResult", "EvalProtocol", "EvalResult", "RandomAgent", "ZeroAgent", "evaluate", "load_agent",
    "protocol_for", "RayUnavailableError", "RolloutError", "SweepError", "collect_rollouts", "evaluate_sweep",
    "load_rollouts", "load_sweep",
]
