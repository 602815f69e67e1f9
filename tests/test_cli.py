"""The ``vrb`` command line: each subcommand on real tasks."""

from __future__ import annotations

import imageio.v3 as iio
import pytest

from visual_robo_bench.cli import main


def test_list_and_info(capsys):
    assert main(["list", "--no-model"]) == 0
    out = capsys.readouterr().out
    assert "VRB/Walker-v1" in out and "VRB/Humanoid-v0" in out
    assert main(["info", "VRB/Walker-v1"]) == 0
    out = capsys.readouterr().out
    assert "Reward terms" in out and "hash" in out.lower()


def test_info_unknown_task_suggests(capsys):
    assert main(["info", "VRB/Walkr-v0"]) == 2
    assert "VRB/Walker-v1" in capsys.readouterr().err


@pytest.mark.parametrize("ext", ["png", "mp4"])
def test_render_writes_file(tmp_path, ext):
    out = tmp_path / f"walker.{ext}"
    assert main(["render", "VRB/Walker-v1", "--out", str(out), "--steps", "6"]) == 0
    assert out.stat().st_size > 1000
    if ext == "png":
        img = iio.imread(out)
        assert img.ndim == 3 and img.std() > 5


def test_render_rejects_bad_extension(tmp_path):
    assert main(["render", "VRB/Walker-v1", "--out", str(tmp_path / "x.txt")]) == 2


def test_bench_rows():
    from visual_robo_bench.bench import run_bench

    rows = run_bench("VRB/Walker-v1", num_envs=4, seconds=0.2)
    names = [r["name"] for r in rows]
    assert any("pixels" in n for n in names) and any("dm_control" in n for n in names)
    assert all(r["env_steps_per_s"] is None or r["env_steps_per_s"] > 0 for r in rows)
