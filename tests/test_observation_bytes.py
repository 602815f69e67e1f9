"""The bytes-per-observation figure of every task (conventions.md 8, #9): computed from the observation space of
the registered default, shown by ``vrb info`` and ``vrb list`` (the README's task table: test_registry_tasks.py)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from visual_robo_bench.bench import (BUFFER_OBSERVATIONS, buffer_gb, default_observation_space, default_spaces,
                                     observation_nbytes)
from visual_robo_bench.cli import main


def _default_env_space(task_id: str) -> spaces.Dict:
    with warnings.catch_warnings():  # (a deprecated id's "out of date" notice)
        warnings.simplefilter("ignore", DeprecationWarning)
        env = gym.make(task_id)  # the registered default, as a user makes it
    try:
        return env.observation_space
    finally:
        env.close()


def test_figure_is_the_sum_of_the_observation_spaces_nbytes(task_id):
    """For every registered task: the figure equals the ``nbytes`` of an observation drawn from ``gym.make``'s
    observation space, key by key; the default has only uint8 images and float32 ``proprio`` (the privileged
    keys are not observations of it, and not counted)."""
    space = _default_env_space(task_id)
    sample = space.sample()
    assert observation_nbytes(default_observation_space(task_id)) == sum(v.nbytes for v in sample.values())
    assert observation_nbytes(space) == sum(v.nbytes for v in sample.values())
    for key, sub in space.spaces.items():
        assert observation_nbytes(sub) == sample[key].nbytes, key
        if key.startswith("pixels"):
            assert sub.dtype == np.uint8, key
        else:
            assert key == "proprio" and sub.dtype == np.float32, key
    assert "privileged" not in space.spaces and "height_scan" not in space.spaces


def test_vrb_info_prints_the_figure(task_id, capsys, monkeypatch):
    """``vrb info`` prints the bytes of one default observation and what 1M of them take (twice that in SB3's
    DictReplayBuffer, which stores next_obs too)."""
    from rich.console import Console

    from visual_robo_bench import cli

    monkeypatch.setattr(cli, "console", Console(width=500))  # one table row per line
    nbytes = observation_nbytes(_default_env_space(task_id))
    assert main(["info", task_id]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(x for x in lines if "bytes / observation" in x)
    assert f"│ {nbytes:,} = pixels " in row and "not counted" in row, row
    row = next(x for x in lines if "1M observations" in x)
    assert f"│ {buffer_gb(nbytes):.1f} GB " in row, row
    assert f"{buffer_gb(2 * nbytes):.1f} GB for 1M transitions" in row, row


def test_vrb_list_has_an_obs_bytes_column(capsys):
    """``vrb list`` shows the figure for every task whose env builds here ("-" with ``--no-model``)."""
    import visual_robo_bench

    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any("obs bytes" in x for x in lines)
    for task_id in visual_robo_bench.list_tasks():
        row = next(x for x in lines if f" {task_id} " in x)
        try:
            nbytes = observation_nbytes(default_observation_space(task_id))
        except Exception:  # noqa: BLE001 - a model missing offline: the column shows "-"
            continue
        assert f" {nbytes:,} " in row, row
    assert main(["list", "--no-model"]) == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if " VRB/Walker-v1 " in x)
    assert "63,552" not in row


def test_walker_figure_and_buffer_size():
    """The conventions' worked example (§3.2): 84x84x9 pixels are 63,504 bytes; with Walker's 12 float32 proprio
    values, 63,552; 1M of them 63.6 GB."""
    obs_space, action_space = default_spaces("VRB/Walker-v1")
    assert observation_nbytes(obs_space["pixels"]) == 84 * 84 * 9 == 63_504
    assert observation_nbytes(obs_space) == 63_552 and action_space.shape == (6,)
    assert BUFFER_OBSERVATIONS == 1_000_000 and round(buffer_gb(63_552), 1) == 63.6


def test_observation_nbytes_of_other_spaces():
    """Nested and non-Box spaces are summed by dtype; a space without a fixed size is refused clearly."""
    space = spaces.Dict({"a": spaces.Box(0, 1, (2, 3), np.float64),
                         "b": spaces.Tuple((spaces.Discrete(4), spaces.MultiBinary(5)))})
    sample = space.sample()
    assert observation_nbytes(space) == 48 + sample["b"][0].nbytes + sample["b"][1].nbytes
    with pytest.raises(TypeError, match="no fixed shape"):
        observation_nbytes(spaces.Text(5))
