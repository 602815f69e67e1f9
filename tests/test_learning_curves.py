"""Learning curves with per-run returns: the results schema, scripts/results_from_runs.py and the board's figures
(rliable's plot_sample_efficiency_curve, IQM over runs with a stratified-bootstrap CI: conventions.md 6)."""

from __future__ import annotations

import copy
import csv
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from visual_robo_bench.evaluation import RandomAgent, evaluate
from visual_robo_bench.evaluation.leaderboard import DEFAULT_CONFIG, Leaderboard
from visual_robo_bench.evaluation.results import ResultsError, load, make_results, validate, write_json

TASK = "VRB/Walker-v1"
EPISODES = 4
SCRIPT = str(Path(__file__).resolve().parents[1] / "scripts" / "results_from_runs.py")


@pytest.fixture(scope="module")
def doc():
    """Random actions on Walker-v1: two training runs of a few episodes, with a learning curve of 3 points."""
    evals = [(evaluate(RandomAgent(6, seed=seed), TASK, episodes=EPISODES, num_envs=2, progress=False), seed)
             for seed in (0, 1)]
    out = make_results(evals, agent_name="random", description="uniform random actions")
    out["learning_curves"] = {TASK: [
        {"env_steps": 100.0, "wall_clock_s": 1.0, "return": None, "returns": [None, None]},
        {"env_steps": 200.0, "wall_clock_s": 2.0, "return": None, "returns": [1.0, None]},  # no mean over all yet
        {"env_steps": 300.0, "wall_clock_s": 3.0, "return": 2.0, "returns": [1.0, 3.0]},
    ]}
    return out


def _point(j, **changes):
    def mutate(d):
        d["learning_curves"][TASK][j].update(changes)
    return mutate


@pytest.mark.parametrize("mutate,message", [
    (_point(2, **{"return": 2.5}), r"learning_curves/VRB/Walker-v1/2: 'return' is 2.5 but the mean of the non-null "
                                   r"per-run 'returns' \[1.0, 3.0\] is 2; 'return' must be that mean"),
    (_point(1, returns=[1.0, None, 4.0]), r"learning_curves/VRB/Walker-v1/1: 3 per-run 'returns' but point 0 has 2; "
                                          "every point of a curve holds one value per training run"),
    (_point(2, **{"return": None}), r"/2: 'return' is null but every run has a value in 'returns'; set 'return' "
                                    "to their mean \\(2\\)"),
    (_point(0, **{"return": 1.0}), r"/0: 'return' is 1.0 but no run has a value in 'returns' \(all null\)"),
    (lambda d: d["learning_curves"][TASK][1].pop("returns"),
     r"/1: no per-run 'returns' while other points of the curve have them"),
    (_point(2, returns=[]), r"learning_curves/VRB/Walker-v1/2/returns: \[\] should be non-empty"),
    (_point(2, returns=[1.0, "3"]), r"learning_curves/VRB/Walker-v1/2/returns/1: '3' is not of type"),
])
def test_schema_takes_per_run_returns_that_agree_with_the_mean_and_refuses_others(doc, mutate, message):
    """A point's optional ``returns`` (one value per training run, null: no value yet) must agree with its
    ``return`` (the mean of the non-null values) and have one length along a curve; the message says what to fix.
    Curves without ``returns`` (every file written before them) stay valid."""
    validate(copy.deepcopy(doc))  # consistent per-run values, null entries included
    old = copy.deepcopy(doc)
    for p in old["learning_curves"][TASK]:
        p.pop("returns")
    validate(old)
    bad = copy.deepcopy(doc)
    mutate(bad)
    with pytest.raises(ResultsError, match=message):
        validate(bad)
    # the tolerance is for float rounding only
    close = copy.deepcopy(doc)
    close["learning_curves"][TASK][2]["return"] = 2.0 + 1e-9
    validate(close)


def _record_curves(monkeypatch) -> list[dict]:
    """Record every call of rliable's plot_sample_efficiency_curve (and still draw it)."""
    from rliable import plot_utils

    calls, real = [], plot_utils.plot_sample_efficiency_curve

    def record(frames, point_estimates, interval_estimates, **kwargs):
        calls.append({"frames": np.asarray(frames), "point": point_estimates, "interval": interval_estimates,
                      **kwargs})
        return real(frames, point_estimates, interval_estimates, **kwargs)

    monkeypatch.setattr(plot_utils, "plot_sample_efficiency_curve", record)
    return calls


def test_curve_figures_show_the_iqm_over_runs_with_a_bootstrap_ci(tmp_path, monkeypatch):
    """Each entry's curve is drawn by plot_sample_efficiency_curve on one axes, at its own env steps: the IQM
    over the runs with a 95 % stratified-bootstrap CI where the points carry per-run returns, else the file's
    mean with a band of zero width and "(1 curve, no CI)"; a null return is a gap; a rebuild is byte-stable."""
    from rliable import library as rly
    from rliable import metrics

    from visual_robo_bench.evaluation.leaderboard import _plots

    def iqm_per_point(s):  # rliable's sample-efficiency recipe: aggregate_iqm at each point of (runs, tasks, points)
        return np.array([metrics.aggregate_iqm(s[..., j]) for j in range(s.shape[-1])])

    def sub(points):
        return {"runs": [{"env_id": TASK, "episodes": [{"return": 0.0}]}], "learning_curves": {TASK: points}}

    four = [[None] * 4, [0.0, 1.0, 3.0, 10.0], [5.0] * 4]  # runs x points: the IQM trims the lowest and highest
    subs = {
        "four": sub([{"env_steps": s, "return": None if r[0] is None else float(np.mean(r)), "returns": r}
                     for s, r in zip((100.0, 200.0, 300.0), four)]),
        "two": sub([{"env_steps": 150.0, "return": 2.0, "returns": [1.0, 3.0]},
                    {"env_steps": 250.0, "return": 2.0, "returns": [2.0, 2.0]}]),
        "mean": sub([{"env_steps": 100.0, "return": 1.0}, {"env_steps": 400.0, "return": None}]),
    }
    calls = _record_curves(monkeypatch)
    cfg = {**DEFAULT_CONFIG, "tracks": {}, "bootstrap_reps": 2000}  # the curves alone (no profiles)
    names = _plots(subs, cfg, tmp_path)
    assert f"curve_{TASK.replace('/', '_')}.png" in names
    assert len(calls) == 3 and len({id(c["ax"]) for c in calls}) == 1  # one figure, one call per entry
    by_label = {c["algorithms"][0]: c for c in calls}
    assert set(by_label) == {"four (IQM of 4 runs, 95% CI)", "two (IQM of 2 runs, 95% CI)", "mean (1 curve, no CI)"}

    four_call = by_label["four (IQM of 4 runs, 95% CI)"]
    np.testing.assert_array_equal(four_call["frames"], [100.0, 200.0, 300.0])  # its own points, none dropped
    point = four_call["point"]["four (IQM of 4 runs, 95% CI)"]
    lo, hi = four_call["interval"]["four (IQM of 4 runs, 95% CI)"]
    assert np.isnan(point[0]) and np.isnan(lo[0]) and np.isnan(hi[0])  # null return: a gap
    assert point[1] == 2.0 == metrics.aggregate_iqm(np.array([[0.0], [1.0], [3.0], [10.0]]))  # mean of 1 and 3
    assert 0.0 <= lo[1] < 2.0 < hi[1] <= 10.0
    assert point[2] == lo[2] == hi[2] == 5.0  # identical runs: no spread
    # the CI is rliable's stratified bootstrap (runs resampled as whole curves) with the board's seed and reps
    scores = np.array(four[1:]).T[:, None, :]  # (runs, 1 task, points with a return)
    np.random.seed(0)  # rliable 1.2 draws from NumPy's global generator; the board seeds its own with 0
    _, expected = rly.get_interval_estimates({"four": scores}, iqm_per_point, reps=cfg["bootstrap_reps"])
    np.testing.assert_allclose(np.array([lo[1:], hi[1:]]), expected["four"])

    two = by_label["two (IQM of 2 runs, 95% CI)"]
    np.testing.assert_array_equal(two["frames"], [150.0, 250.0])
    np.testing.assert_array_equal(two["point"]["two (IQM of 2 runs, 95% CI)"], [2.0, 2.0])
    # resamples of runs {1, 3}: 1 or 3 a quarter of the time each, so the 2.5th and 97.5th percentiles are 1 and 3
    np.testing.assert_array_equal(np.array(two["interval"]["two (IQM of 2 runs, 95% CI)"]), [[1.0, 2.0], [3.0, 2.0]])

    mean = by_label["mean (1 curve, no CI)"]
    np.testing.assert_array_equal(mean["frames"], [100.0, 400.0])
    np.testing.assert_array_equal(mean["point"]["mean (1 curve, no CI)"], [1.0, np.nan])
    for bound in mean["interval"]["mean (1 curve, no CI)"]:
        np.testing.assert_array_equal(bound, [1.0, np.nan])  # a band of zero width
    assert len({c["colors"][c["algorithms"][0]] for c in calls}) == 3  # one color per entry

    first = (tmp_path / names[-1]).read_bytes()
    _plots(subs, cfg, tmp_path)
    assert (tmp_path / names[-1]).read_bytes() == first  # seeded: a rebuild is byte-stable


def test_board_draws_a_submitted_files_per_run_curves(tmp_path, monkeypatch, doc):
    """End to end: a submission whose curve carries per-run returns is accepted, and the built board draws its IQM
    and CI through plot_sample_efficiency_curve and says on the page and in the README what the curves show."""
    cfg = {**DEFAULT_CONFIG, "tracks": {"visual": [TASK]}, "episodes": EPISODES, "min_seeds": 2,
           "bootstrap_reps": 200}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    board = Leaderboard(tmp_path)
    board.submit(write_json(doc, tmp_path / "in" / "random.json"))
    bad = copy.deepcopy(doc)
    bad["learning_curves"][TASK][2]["return"] = 7.0
    with pytest.raises(ResultsError, match="'return' must be that mean"):
        board.submit(write_json(bad, tmp_path / "in" / "bad.json"), name="bad")
    calls = _record_curves(monkeypatch)
    board.build()
    assert [c["algorithms"] for c in calls] == [["random (IQM of 2 runs, 95% CI)"]]
    point = calls[0]["point"]["random (IQM of 2 runs, 95% CI)"]
    assert np.isnan(point[0]) and np.isnan(point[1]) and point[2] == 2.0  # null returns stay gaps
    page = (tmp_path / "index.html").read_text()
    assert "plots/curve_VRB_Walker-v1.png" in page and "(1 curve, no CI)" in page
    assert "plot_sample_efficiency_curve" in (tmp_path / "README.md").read_text()


def _write_runs(tmp_path: Path, evaluated: bool) -> list[str]:
    """Three fabricated training runs (seeds 0, 1, 2) with progress.csv and a reusable eval_results.json."""
    res = evaluate("zero", "VRB/Hopper-v1", progress=False)  # the standard protocol: reused, not re-evaluated
    runs = []
    for seed in range(3):
        run = tmp_path / f"run{seed}"
        run.mkdir(exist_ok=True)
        (run / "config.json").write_text(json.dumps({"config": {"seed": seed, "num_envs": 4}}))
        with (run / "progress.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, ["epoch", "env_steps", "frames", "wall_s", "episode_return", "eval_return"][
                :6 if evaluated else 5])
            w.writeheader()
            for epoch in range(1, 5):
                row = {"epoch": epoch, "env_steps": 100 * epoch, "frames": 10 * epoch, "wall_s": epoch,
                       # seed 0 finishes its first training episode only in epoch 2
                       "episode_return": "nan" if seed == 0 and epoch == 1 else float(epoch + seed)}
                if evaluated:  # evaluations at epochs 2 and 4
                    row["eval_return"] = 10.0 * epoch + seed if epoch % 2 == 0 else "nan"
                w.writerow(row)
        write_json(make_results([(res, seed)], agent_name="zero", description=""), run / "eval_results.json")
        runs.append(str(run))
    return runs


def test_results_from_runs_writes_each_runs_returns(tmp_path, monkeypatch):
    """scripts/results_from_runs.py writes, at every point of a curve built from several runs, each run's return
    (``returns``) in the order of the file's runs (their training seeds, whatever the order of the arguments),
    null for a run with no value yet; ``return`` stays their mean (null until every run has one)."""
    runs = _write_runs(tmp_path, evaluated=True)
    out = tmp_path / "results.json"
    argv = [SCRIPT, "--name", "demo", "--task", "VRB/Hopper-v1", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", [*argv, *reversed(runs)])
    runpy.run_path(SCRIPT, run_name="__main__")
    doc = load(out)  # validated: returns agree with return
    assert [r["training_seed"] for r in doc["runs"]] == [0, 1, 2]
    curve = doc["learning_curves"]["VRB/Hopper-v1"]
    assert [(p["env_steps"], p["return"], p["returns"]) for p in curve] == [
        (200.0, 21.0, [20.0, 21.0, 22.0]), (400.0, 41.0, [40.0, 41.0, 42.0])]
    # from the training episodes' returns: a run without a finished episode is null, and so is the mean
    runs = _write_runs(tmp_path, evaluated=False)
    monkeypatch.setattr(sys, "argv", [*argv, *runs])
    runpy.run_path(SCRIPT, run_name="__main__")
    curve = load(out)["learning_curves"]["VRB/Hopper-v1"]
    assert [(p["return"], p["returns"]) for p in curve] == [
        (None, [None, 2.0, 3.0]), (3.0, [2.0, 3.0, 4.0]), (4.0, [3.0, 4.0, 5.0]), (5.0, [4.0, 5.0, 6.0])]
    # a single run: its curve is the mean curve itself, no per-run values
    monkeypatch.setattr(sys, "argv", [*argv, runs[1]])
    runpy.run_path(SCRIPT, run_name="__main__")
    assert all("returns" not in p for p in load(out)["learning_curves"]["VRB/Hopper-v1"])
