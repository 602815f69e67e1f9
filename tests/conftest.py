"""Shared fixtures: every registered task, small batches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Robot models for tests: the offline copies beside the checkout (never a download).
_SHARED_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
if _SHARED_MODELS.is_dir():
    os.environ.setdefault("VRB_MODEL_DIR", str(_SHARED_MODELS))
os.environ.setdefault("VRB_OFFLINE", "1")  # a test that would download fails with a clear message

import visual_robo_bench

TASKS = visual_robo_bench.list_tasks()


@pytest.fixture(params=TASKS)
def task_id(request) -> str:
    return request.param
