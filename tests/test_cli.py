"""The ``vrb`` command line: each subcommand on real tasks."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from vrb_helpers import slide_task_module, write_seeded_agents

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
    assert "Did you mean 'VRB/Walker-v0', 'VRB/Walker-v1'" in capsys.readouterr().err.replace("\n", "")


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


POLICIES = """
import numpy as np


def Raises(env):
    raise RuntimeError("boom")


class WrongShape:
    def __init__(self, env):
        pass

    def act(self, obs):
        return np.zeros(3, np.float32)  # one env's actions of a 3-dof robot: Walker's batch is (1, 6)
"""


@pytest.mark.parametrize("policy,message", [
    ("render_policies:Raises", "creating policy 'render_policies:Raises' raised RuntimeError: boom"),
    ("render_policies:WrongShape", "--policy render_policies:WrongShape: act() returned actions of shape (3,); "
                                   "expected (1, 6)"),
    ("render_broken:Raises", "cannot import policy module 'render_broken': RuntimeError: at import"),
])
def test_render_policy_failures_are_one_line_errors(tmp_path, monkeypatch, capsys, policy, message):
    """A --policy factory that raises, a module that raises on import, or act() returning another shape than the
    env's (num_envs, action dim) gave tracebacks; each is a one-line error naming the policy (exit 2)."""
    (tmp_path / "render_policies.py").write_text(POLICIES)
    (tmp_path / "render_broken.py").write_text('raise RuntimeError("at import")\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("render_policies", "render_broken"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    try:
        assert main(["render", "VRB/Walker-v1", "--out", str(tmp_path / "x.png"), "--steps", "2",
                     "--policy", policy]) == 2
    finally:
        for name in ("render_policies", "render_broken"):
            sys.modules.pop(name, None)
    err = capsys.readouterr().err.replace("\n", "")
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("argv,message", [
    (["render", "VRB/Walker-v1", "--out", "{tmp}/x.png", "--steps", "1", "--seed", "-1"],
     "argument --seed: must be at least 0, got -1"),
    (["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1", "--episodes", "1", "--training-seed", "-1"],
     "argument --training-seed/--seed: must be at least 0, got -1"),
], ids=["render--seed", "evaluate--training-seed"])
def test_negative_seeds_are_refused_like_train_seed(tmp_path, capsys, argv, message):
    """vrb render --seed -1 gave a Gymnasium traceback and vrb evaluate --training-seed -1 was accepted; both take
    seeds with the type of vrb train --seed (an integer >= 0), refused by argparse before any env is built."""
    with pytest.raises(SystemExit) as exc:
        main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


@pytest.fixture
def no_long_work(monkeypatch):
    """Rollouts and evaluations fail the test when started: the checks under test must come before them."""
    import gymnasium

    import visual_robo_bench.evaluation as evaluation

    def started(*args, **kwargs):
        raise AssertionError("the long work started before the bad input was refused")

    monkeypatch.setattr(gymnasium, "make_vec", started)
    monkeypatch.setattr(evaluation, "evaluate", started)


@pytest.mark.parametrize("argv,message", [
    (["render", "VRB/Walker-v1", "--steps", "2", "--out", "{file}/x.png"], "--out {file}/x.png cannot be written"),
    (["render", "VRB/Walker-v1", "--steps", "2", "--out", "/proc/x.png"], "--out /proc/x.png cannot be written"),
    (["render", "VRB/Walker-v1", "--steps", "2", "--out", "{dir}.png"], "--out {dir}.png is a directory"),
    (["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1", "--episodes", "1", "--out", "{file}/r.json"],
     "--out {file}/r.json cannot be written"),
    (["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1", "--episodes", "1", "--out", "/proc/r.json"],
     "--out /proc/r.json cannot be written"),
    (["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1", "--episodes", "1", "--video", "{file}/sub/v.mp4"],
     "--video {file}/sub/v.mp4 cannot be written"),
], ids=["render-under-a-file", "render-proc", "render-a-directory", "evaluate-under-a-file", "evaluate-proc",
        "video-under-a-file"])
def test_unwritable_outputs_are_refused_before_any_work(tmp_path, capsys, no_long_work, argv, message):
    """An output file that cannot be written failed only after the rollout or evaluation (which was lost),
    with a traceback; it is a one-line error before the work starts."""
    if any(a.startswith("/proc/") for a in argv) and not os.path.isdir("/proc"):
        pytest.skip("no /proc here")
    (tmp_path / "file").write_text("a file, not a directory")
    (tmp_path / "dir.png").mkdir()
    fill = {"{file}": str(tmp_path / "file"), "{dir}": str(tmp_path / "dir")}

    def filled(text):
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    assert main([filled(a) for a in argv]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert filled(message) in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.png", "file"]


@pytest.fixture
def fresh_registry(monkeypatch):
    """Undo the registrations and imports of a third-party task module (VRB's registry, Gymnasium's, sys.modules,
    sys.path), so that each test imports it afresh."""
    from vrb_helpers import registry_snapshot

    monkeypatch.setattr(sys, "path", list(sys.path))
    with registry_snapshot("cwd_lab"):
        yield


@pytest.mark.parametrize("argv,printed", [
    (["info", "cwd_lab:CwdLab/Slide-v0"], "CwdLab/Slide-v0  (cwd_lab.LabSlide)"),
    (["check", "cwd_lab:CwdLab/Slide-v0", "--steps", "2", "--num-envs", "2"], "CwdLab/Slide-v0: 2 steps"),
    (["render", "cwd_lab:CwdLab/Slide-v0", "--out", "slide.png", "--steps", "1"], "wrote slide.png"),
    (["evaluate", "--agent", "zero", "--task", "cwd_lab:CwdLab/Slide-v0", "--episodes", "1", "--num-envs", "1"],
     "CwdLab/Slide-v0"),
], ids=["info", "check", "render", "evaluate"])
def test_third_party_task_ids_import_from_the_working_directory(tmp_path, monkeypatch, capsys, fresh_registry,
                                                                argv, printed):
    """`their_module:Lab/Task-v0` finds their_module in the working directory for every command taking a task id,
    as `vrb list --module their_module` does (it did for list and doctor only)."""
    (tmp_path / "cwd_lab.py").write_text(slide_task_module("CwdLab/Slide-v0"))
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0, capsys.readouterr().err
    assert printed in capsys.readouterr().out


def test_doctor_prints_the_egl_device_variables(monkeypatch, capsys):
    """`vrb doctor` prints MUJOCO_EGL_DEVICE_ID and CUDA_VISIBLE_DEVICES (or "unset") next to the GL backend: the
    EGL device index need not follow CUDA's numbering on multi-GPU machines."""
    from visual_robo_bench import registry

    monkeypatch.setattr(registry, "list_tasks", lambda: [])  # no task: only the backend report (cheap)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("MUJOCO_EGL_DEVICE_ID", "0")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert main(["doctor"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("GL backend:"))
    assert "MUJOCO_EGL_DEVICE_ID=0" in line and "CUDA_VISIBLE_DEVICES=unset" in line, line


def test_bench_rows():
    from visual_robo_bench.bench import GYMNASIUM_UTILS_ROWS, SOURCE_GYMNASIUM_UTILS, SOURCE_VRB, run_bench

    rows = run_bench("VRB/Walker-v1", num_envs=4, seconds=0.2)
    names = [r["name"] for r in rows]
    assert any("pixels" in n for n in names) and any("dm_control" in n for n in names)
    assert all(r["env_steps_per_s"] is None or r["env_steps_per_s"] > 0 for r in rows)
    assert [r["source"] for r in rows] == [SOURCE_VRB] * 6 + [SOURCE_GYMNASIUM_UTILS] * len(GYMNASIUM_UTILS_ROWS)
    # gymnasium.utils.performance's rows come last: env steps/s (vector and single-env steps), render() calls/s
    vec_pixels, vec_physics, step, render = rows[6:]
    assert names[6:] == list(GYMNASIUM_UTILS_ROWS)
    for r in (vec_pixels, vec_physics, step):
        assert np.isfinite(r["env_steps_per_s"]) and r["env_steps_per_s"] > 0 and r["frames_per_s"] is None, r
    assert render["env_steps_per_s"] is None and np.isfinite(render["frames_per_s"]) and render["frames_per_s"] > 0
    assert all(r[k] is None for r in rows[6:] for k in ("ratio_vs_raw", "ratio_vs_dm_control", "ratio_vs_gymnasium"))
    assert "240x320" in render["note"]  # the human view (render_size), not the policy image
    physics, pixels, raw_batch, raw_render, dm_control, gymnasium = rows[:6]
    assert physics["ratio_vs_raw"] == physics["env_steps_per_s"] / raw_batch["env_steps_per_s"] > 0
    assert pixels["ratio_vs_raw"] == pixels["frames_per_s"] / raw_render["frames_per_s"] > 0
    assert pixels["ratio_vs_dm_control"] == pixels["frames_per_s"] / dm_control["frames_per_s"] > 0
    assert pixels["ratio_vs_gymnasium"] == pixels["frames_per_s"] / gymnasium["frames_per_s"] > 0
    assert physics["ratio_vs_dm_control"] is None  # no frames


def test_bench_rows_without_the_gymnasium_utils(monkeypatch):
    """``run_bench(..., gymnasium_utils=False)`` (``scripts/bench_all.py --no-gymnasium-utils``): VRB's own 6 rows."""
    from visual_robo_bench import bench

    def refused(*args, **kwargs):
        raise AssertionError("the gymnasium.utils.performance stages ran")

    monkeypatch.setattr(bench, "_bench_gymnasium_utils", refused)
    # the peers are not what this test is about (they cost seconds to build)
    monkeypatch.setattr(bench, "_bench_dm_control", lambda *a: bench._row("dm_control pixels wrapper", None, None))
    monkeypatch.setattr(bench, "_bench_gymnasium", lambda *a: bench._row("gymnasium rgb_array", None, None))
    rows = bench.run_bench("VRB/Walker-v1", num_envs=2, seconds=0.05, gymnasium_utils=False)
    assert [r["source"] for r in rows] == [bench.SOURCE_VRB] * 6


def test_bench_prints_the_gymnasium_utils_rows(capsys):
    """``vrb bench`` prints, after its own table, the rows measured by ``gymnasium.utils.performance``
    (benchmark_vector_step on the pixel and physics-only vector envs, benchmark_step and benchmark_render on the
    single env), each with a positive figure, and the machine line names the GPU and the Gymnasium version."""
    from visual_robo_bench.bench import GYMNASIUM_UTILS_ROWS, SOURCE_GYMNASIUM_UTILS

    assert main(["bench", "VRB/Walker-v1", "--num-envs", "2", "--seconds", "0.05"]) == 0
    out = capsys.readouterr().out
    gym_table = out[out.index(f"{SOURCE_GYMNASIUM_UTILS} on VRB's envs"):]
    for name in GYMNASIUM_UTILS_ROWS:
        line = next(x for x in gym_table.splitlines() if name in x)
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        steps, frames = cells[1], cells[2]
        figure = frames if name.startswith("benchmark_render") else steps
        assert float(figure.replace(",", "")) > 0, line
        assert (steps if name.startswith("benchmark_render") else frames) == "-", line
    machine = out[out.index("\nmachine: "):].replace("\n", "")  # (wrapped at the console's width)
    assert "gpu: " in machine and "gymnasium: " in machine and "gl_renderer: " in machine


def test_bench_all_script_prints_the_gymnasium_utils_table(monkeypatch, capsys):
    """``scripts/bench_all.py`` prints the README's bench table and, after it, a table of the
    ``gymnasium.utils.performance`` rows (one column per function and env); its peak RSS column stays the peak
    of VRB's own stages. ``run_bench`` is replaced by canned rows here (``test_bench_rows`` runs the real one)."""
    import runpy

    from visual_robo_bench import bench

    def fake_run_bench(task, num_envs, seconds, gymnasium_utils=True):
        own = ["vrb physics-only", "vrb pixels", "raw mujoco.batch (ceiling)", "raw tiled render (ceiling)",
               "dm_control pixels wrapper", "gymnasium rgb_array"]
        rows = [dict(bench._row(name, 100.0 * (i + 1), 10.0 * (i + 1)), peak_rss_mb=50.0) for i, name in enumerate(own)]
        if gymnasium_utils:
            rows += [dict(bench._row(name, 1000.0 * (i + 1), None, source=bench.SOURCE_GYMNASIUM_UTILS),
                          peak_rss_mb=99.0) for i, name in enumerate(bench.GYMNASIUM_UTILS_ROWS)]
            rows[-1]["env_steps_per_s"], rows[-1]["frames_per_s"] = None, 4321.0
        return rows

    script = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "bench_all.py"))
    script["main"].__globals__["run_bench"] = fake_run_bench
    script["main"].__globals__["machine_description"] = lambda: {"cpu": "test"}
    monkeypatch.setattr(sys, "argv", ["bench_all.py", "--tasks", "VRB/Walker-v1", "--seconds", "0.1"])
    script["main"]()
    out = capsys.readouterr().out
    own = [x for x in out.splitlines() if x.startswith("| VRB/Walker-v1 | 100 |")]
    assert own and own[-1].endswith("| 50 |")  # peak RSS of VRB's own stages
    assert "`gymnasium.utils.performance` on the same envs" in out
    assert "| VRB/Walker-v1 | 1,000 | 2,000 | 3,000 | 4,321 |" in out
    monkeypatch.setattr(sys, "argv", ["bench_all.py", "--tasks", "VRB/Walker-v1", "--no-gymnasium-utils"])
    script["main"]()
    assert "gymnasium.utils.performance" not in capsys.readouterr().out


def test_bench_alternates_loops_in_chunks():
    """``vrb bench`` times the physics-only env and the raw loop in alternating chunks (both meet the machine's
    drifts alike), each for at least ``seconds`` after its warm-up calls."""
    import itertools
    import time

    from visual_robo_bench import bench

    calls = []

    def loop(name, seconds):
        def step():
            calls.append(name)
            time.sleep(seconds)
        return step

    done = bench._alternate({"env": loop("env", 0.002), "raw": loop("raw", 0.004)}, 0.12, "test")
    assert calls[:2 * bench.WARMUP] == ["env"] * bench.WARMUP + ["raw"] * bench.WARMUP
    measured = calls[2 * bench.WARMUP:]
    chunks = [name for name, _ in itertools.groupby(measured)]
    assert len(chunks) >= 4 and chunks == ["env", "raw"] * (len(chunks) // 2)
    for name, (iters, elapsed) in done.items():
        assert iters == measured.count(name) and elapsed >= 0.12



@pytest.mark.parametrize("seconds", ["nan", "inf", "-inf", "0"])
def test_bench_refuses_seconds_that_are_not_a_finite_positive_number(monkeypatch, capsys, seconds):
    """--seconds nan passed the `<= 0` check and ended in a ZeroDivisionError after the stages ran; inf would time
    each stage forever. Both are refused before anything runs."""
    from visual_robo_bench import bench

    def ran(*args, **kwargs):
        raise AssertionError("vrb bench ran with --seconds " + seconds)

    monkeypatch.setattr(bench, "run_bench", ran)
    assert main(["bench", "VRB/Walker-v1", "--num-envs", "2", f"--seconds={seconds}"]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "--seconds a finite number > 0" in err and "Traceback" not in err


def test_physics_overhead_script_rows():
    """``scripts/bench_physics_overhead.py``: the interleaved split and the ``--cold`` table run and add up."""
    import runpy
    from pathlib import Path

    script = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "bench_physics_overhead.py"))
    s = script["interleaved"]("VRB/Walker-v1", 4, rounds=2, steps=3)
    assert s["env"] > s["physics"] > 0 and s["raw"] > 0
    assert s["python"] == pytest.approx(s["env"] - s["physics"], rel=0.5)  # medians of the differences
    rows = dict(script["cold_python"]("VRB/Walker-v1", 4, rounds=2, steps=3))
    assert list(rows)[:5] == ["nothing", "a 1 ms busy spin", "a 1 ms sleep", "a 32 MB memory copy",
                              "bare physics call, 1 thread"]
    assert all(np.isfinite(sec) and sec > 0 for sec in rows.values())


@pytest.mark.parametrize("task", ["VRB/Walker-v1", "VRB/Walker-v0"])
def test_compiled_step_script_matches_the_env_and_its_rows_add_up(task, capsys):
    """``scripts/bench_compiled_step.py``: its numba step returns exactly the env's values across episode ends
    (else its timings would be of other work), a changed reward weight is caught, and its table rows add up."""
    pytest.importorskip("numba")
    import runpy
    from pathlib import Path

    script = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "bench_compiled_step.py"))
    script["check"](task, 8, 80)
    out = capsys.readouterr().out
    assert "for 80 steps" in out and "(0 episode ends)" not in out
    step = script["compiled_step"]

    def off_by_one_weight(env):
        env.unwrapped.cfg = dataclasses.replace(env.unwrapped.cfg, w_alive=0.2)
        return step(env)

    script["check"].__globals__["compiled_step"] = off_by_one_weight
    with pytest.raises(AssertionError, match="step 0: reward differs"):
        script["check"](task, 8, 5)
    rows = script["compare"](task, 4, rounds=2, steps=3)
    assert [r[0] for r in rows] == ["env step (numpy task code)", "compiled step (numba kernels)",
                                    "bare `mujoco.batch` loop", "compiled step, hot loop without physics"]
    for name, total, physics, rest, ratio in rows[:2]:
        assert total > physics > 0 and rest > 0 and ratio > 0


# ------------------------------------------------------------------ vrb evaluate / submit
@pytest.mark.parametrize("argv,message", [
    (["--agent", "zer0", "--task", "VRB/Walker-v1"], "agent 'zer0': no such file"),
    (["--agent", "zero", "--task", "VRB/Walkr-v1"], "Did you mean 'VRB/Walker-v1'"),
    (["--agent", "random", "--task", "VRB/Walker-v1", "--training-seed", "0", "--training-seed", "1"],
     "put {seed} in --agent"),
    (["--agent", "zero", "--task", "VRB/Walker-v1", "--env-steps", "5"], "add --out FILE"),
])
def test_evaluate_bad_input_is_a_clear_error(capsys, argv, message):
    assert main(["evaluate", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("flag,value", [("--episodes", "0"), ("--episodes", "-3"), ("--num-envs", "0")])
def test_evaluate_counts_below_one_are_refused(capsys, flag, value):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1", flag, value])
    assert exc.value.code == 2
    assert f"argument {flag}: must be at least 1, got {value}" in capsys.readouterr().err


@pytest.mark.parametrize("video", ["v.txt", "novid", "v.MP4.txt"])
def test_evaluate_video_suffix_is_checked_up_front(tmp_path, capsys, no_long_work, video):
    """--video v.txt or a name without a suffix crashed in the video writer after the whole evaluation; the
    suffix is checked first, as vrb render checks --out, with the same list (.mp4, .gif)."""
    assert main(["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1", "--episodes", "1",
                 "--video", str(tmp_path / video)]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert f"--video must end in .mp4 or .gif (the file type comes from it), got {video!r}" in err
    assert "Traceback" not in err and not any(tmp_path.iterdir())


def test_evaluate_writes_a_gif_video_and_its_help_names_both_formats(tmp_path, capsys):
    """The harness's writer handles .gif as well as .mp4: both are accepted, and --help says so. The GIF plays at
    the env's speed as vrb render's do: Walker's 100 fps become every 2nd frame at 20 ms (Pillow took fps as
    10 ms delays, which viewers slow down to 100 ms)."""
    video = tmp_path / "v.gif"
    assert main(["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1", "--episodes", "1", "--num-envs", "1",
                 "--video", str(video)]) == 0
    assert iio.improps(video).n_images > 1 and iio.immeta(video)["duration"] == 20
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert ".mp4 or .gif" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("out,video", [("same.mp4", "same.mp4"), ("same.mp4", "sub/../same.mp4")])
def test_evaluate_refuses_out_and_video_naming_one_file(tmp_path, capsys, no_long_work, out, video):
    """--out and --video naming one file: the results JSON silently overwrote the video; refused up front."""
    (tmp_path / "sub").mkdir()
    assert main(["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1", "--episodes", "1",
                 "--out", str(tmp_path / out), "--video", str(tmp_path / video)]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "name the same file" in err and "give them different names" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def test_evaluate_never_overwrites_silently_and_records_the_budget(tmp_path, capsys):
    from visual_robo_bench.evaluation.results import load

    out = tmp_path / "r.json"
    out.write_text("keep me")
    base = ["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1", "--episodes", "1", "--out", str(out)]
    assert main(base) == 2
    assert "pass --force" in capsys.readouterr().err and out.read_text() == "keep me"
    budget = ["--env-steps", "100000", "--rendered-frames", "50000", "--wall-clock-s", "612.5",
              "--train-num-envs", "8", "--code-url", "https://example.org/mine@abc123"]
    assert main([*base, "--force", *budget]) == 0
    doc = load(out)
    assert {k: doc["budget"][k] for k in ("env_steps", "rendered_frames", "wall_clock_s", "num_envs")} == {
        "env_steps": 100000, "rendered_frames": 50000, "wall_clock_s": 612.5, "num_envs": 8}
    assert doc["agent"]["code_url"] == "https://example.org/mine@abc123"


def test_evaluate_seed_placeholder_names_one_policy_per_training_seed(tmp_path, monkeypatch):
    from visual_robo_bench.evaluation.results import load

    write_seeded_agents(tmp_path, "seeded_agents", {0: 0.0, 1: 0.5})
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "r.json"
    assert main(["evaluate", "--agent", "seeded_agents:s{seed}", "--task", "VRB/Walker-v1", "--episodes", "1",
                 "--training-seed", "0", "--training-seed", "1", "--out", str(out)]) == 0
    doc = load(out)
    runs = doc["runs"]
    assert [r["training_seed"] for r in runs] == [0, 1]
    assert runs[0]["episodes"][0]["return"] != runs[1]["episodes"][0]["return"]
    assert doc["agent"]["name"] == "seeded_agents:s{seed}"  # the template names the entry, not seed 0's policy


def test_evaluate_table_is_not_truncated_when_piped(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-m", "visual_robo_bench.cli", "evaluate", "--agent", "zero", "--task",
                           "VRB/Walker-v1", "--episodes", "1"], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout
    assert "success_at_end" in proc.stdout and "official" in proc.stdout


@pytest.mark.parametrize("module", ["visual_robo_bench", "visual_robo_bench.cli"])
def test_python_dash_m_reports_errors_like_vrb(module, tmp_path):
    """``python -m visual_robo_bench[.cli]`` is ``vrb``: a command's error is one line and exit code 2, not a
    traceback (``-m visual_robo_bench.cli`` used to run a second copy of the module, whose ``main`` did not
    catch the ``CLIError`` raised by the evaluation commands)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", module, "evaluate", "--agent", "zer0", "--task", "VRB/Walker-v1"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "agent 'zer0': no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_submit_rejects_nan_with_a_message(tmp_path, capsys):
    import shutil

    (tmp_path / "board" / "submissions").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "leaderboards" / "config.json", tmp_path / "board")
    bad = tmp_path / "nan.json"
    bad.write_text('{"schema_version": "1", "runs": [{"episodes": [{"return": NaN}]}]}')
    assert main(["submit", str(bad), "--leaderboard-dir", str(tmp_path / "board")]) == 2
    err = capsys.readouterr().err
    assert "rejected" in err and "NaN is not a JSON number" in err
    assert not list((tmp_path / "board" / "submissions").iterdir())


def test_verify_unknown_policy_is_a_clear_error(tmp_path, capsys):
    import shutil
    from pathlib import Path

    board = tmp_path / "board"
    (board / "submissions").mkdir(parents=True)
    repo = Path(__file__).resolve().parents[1] / "leaderboards"
    shutil.copy(repo / "config.json", board)
    shutil.copy(repo / "submissions" / "zero.json", board / "submissions")
    assert main(["verify", "zero", "--policy", "zer0", "--leaderboard-dir", str(board)]) == 2
    err = capsys.readouterr().err
    assert "agent 'zer0': no such file" in err and "Traceback" not in err
    assert not (board / "verified.json").exists()


@pytest.mark.parametrize("command", [["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1"],
                                     ["verify", "zero", "--policy", "zero"]])
def test_negative_seed_bases_are_refused_up_front(capsys, command):
    """Seeds are non-negative: argparse refuses --seed-base -5 before any env is built (no numpy traceback)."""
    with pytest.raises(SystemExit) as exc:
        main([*command, "--seed-base", "-5"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --seed-base: must be at least 0, got -5" in err and "Traceback" not in err


# ------------------------------------------------------------------ vrb train --resume: the run's own agent
FLOOR_RUN = ["--task", "VRB/Hopper-v0", "--no-progress", "--set", "num_envs=4", "--set", "steps_per_epoch=48",
             "--set", "max_episode_steps=12", "--set", "nthread=1", "--set", "checkpoint_every=1"]


def test_train_resume_takes_the_agent_from_the_run_dir(tmp_path, capsys):
    """--resume without --agent continues the run's own agent (config.json), not the default sdpg: the zero
    floor may raise max_epochs on resume (SDPG may not, which gave a misleading error before)."""
    import json

    from visual_robo_bench.agents.common import read_csv

    run = tmp_path / "zero-run"
    assert main(["train", "--agent", "zero", "--run-dir", str(run), *FLOOR_RUN, "--set", "max_epochs=1"]) == 0
    assert json.loads((run / "config.json").read_text())["agent"] == "zero"
    capsys.readouterr()
    assert main(["train", "--run-dir", str(run), "--resume", "--no-progress", "--set", "max_epochs=2"]) == 0, \
        capsys.readouterr().err
    assert [int(r["epoch"]) for r in read_csv(run / "progress.csv")] == [1, 2]
    # a different --agent names both; the same one is accepted
    assert main(["train", "--agent", "sdpg", "--run-dir", str(run), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "--agent sdpg does not match" in err and "trained with --agent zero" in err and "Traceback" not in err
    assert main(["train", "--agent", "zero", "--run-dir", str(run), "--resume", "--no-progress",
                 "--set", "max_epochs=3"]) == 0
    assert len(read_csv(run / "progress.csv")) == 3
    # config.json follows the changes (it kept max_epochs=1) and lists each resume that made one
    doc = json.loads((run / "config.json").read_text())
    assert doc["config"]["max_epochs"] == 3
    assert [(r["epoch"], r["changed"]) for r in doc["resumes"]] == [(1, {"max_epochs": 2}), (2, {"max_epochs": 3})]


@pytest.mark.parametrize("argv,message", [
    (["--agent", "sdpg", "--set", "actor_lr=-1"], "cannot build the sdpg learner with these settings"),
    (["--agent", "ppo", "--set", "num_envs=0"], "num_envs must be >= 1"),  # was ZeroDivisionError
    (["--agent", "zero", "--set", "num_envs=0"], "num_envs and max_epochs must be >= 1"),
    (["--agent", "zero", "--set", "max_episode_steps=0"], "cannot build the zero learner"),
    (["--agent", "ppo", "--set", "image_size=32,32"], "image_size must be at least 36x36"),
    (["--agent", "zero", "--set", "time_budget_s=nan"], "time_budget_s must be a finite number of seconds"),
    (["--agent", "zero", "--set", "time_budget_s=-5"], "time_budget_s must be a finite number of seconds"),
    (["--agent", "zero", "--seed", "-1"], "argument --seed: must be at least 0, got -1"),
])
def test_train_bad_settings_are_one_line_errors(tmp_path, capsys, argv, message):
    """Settings the env, the optimizer or SB3's CNN refuse gave tracebacks (or a ZeroDivisionError), and NaN or
    negative budgets meant "no budget" silently; each is now a one-line error and no run directory is left."""
    run = tmp_path / "run"
    try:
        code = main(["train", *argv, "--task", "VRB/Walker-v1", "--run-dir", str(run), "--no-progress"])
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err.replace("\n", " ")
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not run.exists()


def test_train_stopped_before_its_first_checkpoint_and_resume_with_unchanged_values(tmp_path, capsys):
    """A run stopped before its first checkpoint could be neither resumed nor restarted, and both errors sent the
    user to the other; re-issuing a run's own values with --resume was refused as a change."""
    import json

    run = tmp_path / "early"
    run.mkdir()
    (run / "checkpoints").mkdir()
    (run / "config.json").write_text(json.dumps({"agent": "zero", "task": "VRB/Walker-v1", "config": {}}))
    assert main(["train", "--run-dir", str(run), "--resume", "--no-progress"]) == 2
    assert "stopped before its first checkpoint" in capsys.readouterr().err.replace("\n", " ")
    assert main(["train", "--agent", "zero", "--task", "VRB/Walker-v1", "--run-dir", str(run)]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err.replace("\n", " ")
    done = tmp_path / "done"
    assert main(["train", "--agent", "zero", "--run-dir", str(done), *FLOOR_RUN, "--set", "max_epochs=1",
                 "--seed", "3"]) == 0
    capsys.readouterr()
    assert main(["train", "--run-dir", str(done), "--resume", "--no-progress", "--seed", "3",
                 "--set", "num_envs=4"]) == 0, capsys.readouterr().err  # the run's own values
    assert main(["train", "--run-dir", str(done), "--resume", "--no-progress", "--seed", "4"]) == 2
    assert "cannot change ['seed']" in capsys.readouterr().err


def test_evaluating_a_training_checkpoint_is_a_one_line_error(tmp_path, capsys):
    import torch

    ck = tmp_path / "latest.pt"
    torch.save({"format_version": 2, "agent": "ppo", "kind": "checkpoint", "task": "VRB/Walker-v1"}, ck)
    assert main(["evaluate", "--agent", str(ck), "--task", "VRB/Walker-v1", "--episodes", "1"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "is a training checkpoint" in err and "Traceback" not in err


def test_floor_policies_act_on_one_observation(tmp_path):
    """The random/zero floors read a single observation's image height as the batch size ((84, 6) actions)."""
    import gymnasium as gym

    from visual_robo_bench.evaluation.protocol import RandomAgent, ZeroAgent

    env = gym.make("VRB/Walker-v1")
    obs, _ = env.reset(seed=0)
    for agent in (RandomAgent(6), ZeroAgent(6)):
        assert agent.act(obs).shape == (6,)
        env.step(agent.act(obs))
        batch = {k: np.stack([v, v]) for k, v in obs.items()}
        assert agent.act(batch).shape == (2, 6)
    env.close()


def test_train_agent_default_and_resume_without_a_config(tmp_path, capsys, monkeypatch):
    """A new run without --agent trains sdpg, as before; --resume of a directory without config.json and
    without --agent is a one-line error instead of a guess."""
    import visual_robo_bench.train as train_mod

    calls = []
    monkeypatch.setattr(train_mod, "train", lambda **kw: calls.append(kw) or tmp_path)
    assert main(["train", "--task", "VRB/Walker-v1", "--run-dir", str(tmp_path / "new")]) == 0
    assert calls[-1]["agent"] == "sdpg" and not calls[-1]["resume"]
    (tmp_path / "bare").mkdir()
    assert main(["train", "--run-dir", str(tmp_path / "bare"), "--resume"]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "config.json does not exist" in err and "pass --agent" in err
    assert main(["train", "--run-dir", str(tmp_path / "missing"), "--resume"]) == 2
    assert "run directory" in capsys.readouterr().err and len(calls) == 1
    (tmp_path / "bare" / "config.json").write_text('{"agent": "ppo", "task": "VRB/Walker-v1"}')
    assert main(["train", "--run-dir", str(tmp_path / "bare"), "--resume"]) == 0
    assert calls[-1]["agent"] == "ppo" and calls[-1]["resume"]
