"""Shared fixtures: every registered task, small batches."""

from __future__ import annotations

import pytest

import visual_robo_bench

TASKS = visual_robo_bench.list_tasks()


@pytest.fixture(params=TASKS)
def task_id(request) -> str:
    return request.param
