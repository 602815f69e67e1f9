"""Shared fixtures: every registered task, small batches."""

from __future__ import annotations

import gymnasium as gym
import pytest

import visual_robo_bench

TASKS = visual_robo_bench.list_tasks()


@pytest.fixture(params=TASKS)
def task_id(request) -> str:
    return request.param


def make_vec(task_id: str, num_envs: int = 2, **kwargs):
    """A native vector env (closed by the caller)."""
    return gym.make_vec(task_id, num_envs=num_envs, **kwargs)
