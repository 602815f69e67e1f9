"""Shared fixtures: every registered task, small batches."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# helpers shared by the test modules (vrb_helpers.py): importable under --import-mode=importlib
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Robot models for tests: the offline copies beside the checkout (never a download).
_SHARED_MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
if _SHARED_MODELS.is_dir():
    os.environ.setdefault("VRB_MODEL_DIR", str(_SHARED_MODELS))
os.environ.setdefault("VRB_OFFLINE", "1")  # a test that would download fails with a clear message

import visual_robo_bench

TASKS = visual_robo_bench.list_tasks()


def _model_missing(task_id: str) -> str | None:
    """Why a task's robot model is unavailable here (``None`` when it is available)."""
    from visual_robo_bench.models import ModelNotFoundError, resolve_model

    robot = getattr(visual_robo_bench.get_task(task_id).task_cls, "robot", "")
    if not robot:
        return None
    try:
        resolve_model(robot)
    except ModelNotFoundError as err:
        return str(err)
    return None


def _task_param(task_id: str):
    reason = _model_missing(task_id)
    if reason is None:
        return task_id
    return pytest.param(task_id, marks=pytest.mark.skip(reason=f"robot model unavailable offline: {reason}"))


@pytest.fixture(params=[_task_param(t) for t in TASKS], ids=TASKS)
def task_id(request) -> str:
    return request.param
