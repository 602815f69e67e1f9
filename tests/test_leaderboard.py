"""Results files and leaderboards: accept, reject, build, verify."""

from __future__ import annotations

import copy
import html
import json
from pathlib import Path

import numpy as np
import pytest

from vrb_helpers import write_seeded_agents

from visual_robo_bench.evaluation import RandomAgent, evaluate
from visual_robo_bench.evaluation.leaderboard import DEFAULT_CONFIG, Leaderboard, verify
from visual_robo_bench.evaluation.results import ResultsError, load, make_results, validate, write_json

TASKS = ["VRB/Walker-v1", "VRB/Hopper-v1"]
EPISODES = 4


@pytest.fixture(scope="module")
def random_doc():
    evals = []
    for task in TASKS:
        for seed in (0, 1):
            agent = RandomAgent(6 if "Walker" in task else 3, seed=seed)
            evals.append((evaluate(agent, task, episodes=EPISODES, num_envs=2, progress=False), seed))
    return make_results(evals, agent_name="random", description="uniform random actions")


@pytest.fixture(scope="module")
def random_v0(random_doc):
    """``random_doc`` with Hopper-v0 runs instead of Hopper-v1 (there random actions beat all-zero ones)."""
    evals = [(evaluate(RandomAgent(3, seed=seed), "VRB/Hopper-v0", episodes=EPISODES, num_envs=2, progress=False),
              seed) for seed in (0, 1)]
    doc = make_results(evals, agent_name="random", description="uniform random actions")
    doc["runs"] = [r for r in random_doc["runs"] if r["env_id"] == "VRB/Walker-v1"] + doc["runs"]
    doc.pop("aggregates")
    return doc


@pytest.fixture(scope="module")
def zero_doc():
    """The deterministic zero floor on Walker-v1: its two runs are identical (one evaluation, two seeds)."""
    res = evaluate("zero", "VRB/Walker-v1", episodes=EPISODES, num_envs=2, progress=False)
    return make_results([(res, 0), (res, 1)], agent_name="zero", description="all-zero actions")


def trained(doc, agent_name):
    """A copy of ``doc`` as a trained entry: another agent name and a stated training budget."""
    doc = copy.deepcopy(doc)
    doc["agent"]["name"] = agent_name
    doc["budget"].update(env_steps=100_000, rendered_frames=50_000, wall_clock_s=600.0, num_envs=8)
    return doc


@pytest.fixture
def board(tmp_path):
    cfg = {**DEFAULT_CONFIG, "tracks": {"visual": TASKS}, "episodes": EPISODES, "min_seeds": 2,
           "bootstrap_reps": 200}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return Leaderboard(tmp_path)


def submit_doc(board, doc, tmp_path, name="r.json", **kw):
    path = write_json(doc, tmp_path / "in" / name)
    return board.submit(path, **kw)


def test_results_file_round_trip(random_doc, tmp_path):
    path = write_json(random_doc, tmp_path / "results.json")
    doc = load(path)
    assert doc["runs"][0]["task_hash"].startswith("VRB/Walker-v1:")
    assert set(doc["aggregates"]) == set(TASKS)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file


def test_submit_build_and_page(board, random_doc, tmp_path):
    name = submit_doc(board, random_doc, tmp_path)
    assert name == "random"
    written = board.build()
    md = (board.root / "README.md").read_text()
    page = (board.root / "index.html").read_text()
    for task in TASKS:
        assert task in md and task in page
        assert (board.root / "plots" / f"{task.replace('/', '_')}.png").stat().st_size > 1000
    assert "random" in md and "IQM" in md
    assert (board.root / "plots" / "profile_visual.png").exists()
    assert len(written) >= 4


def test_normalized_scores_use_the_stated_levels_of_the_same_task_version(board, random_doc, tmp_path):
    from visual_robo_bench.evaluation.results import aggregates, task_hash

    submit_doc(board, random_doc, tmp_path)
    walker, hopper = (aggregates(random_doc)[t]["return"] for t in TASKS)
    refs = {"VRB/Walker-v1": {"task_hash": task_hash("VRB/Walker-v1"), "random": walker - 1.0,
                              "reference": walker + 3.0, "reference_source": "references/x.json"},
            "VRB/Hopper-v1": {"task_hash": "VRB/Hopper-v1:0000000000000000", "random": 0.0, "reference": 1.0,
                              "reference_source": "an older task version"}}
    (board.root / "reference_scores.json").write_text(json.dumps({"version": 1, "tasks": refs}))
    board.build()
    md = (board.root / "README.md").read_text()
    walker_section = md.split("## VRB/Walker-v1")[1]
    assert "| 0.25 |" in walker_section.split("\n## ")[0]  # (R - (R-1)) / ((R+3) - (R-1))
    assert f"reference R_ref = {walker + 3.0:.4g} (`references/x.json`)" in walker_section
    hopper_section = md.split("## VRB/Hopper-v1")[1].split("\n## ")[0]
    assert "| - |" in hopper_section  # levels of another task version are never used
    assert "R_ref" not in hopper_section
    assert "<th>normalized</th>" in (board.root / "index.html").read_text()


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.pop("agent"), "'agent' is a required property"),
    (lambda d: d.update(schema_version="0"), "schema_version"),
    (lambda d: d["runs"][0].update(task_hash="VRB/Walker-v1:deadbeef"), "does not match"),
    (lambda d: d["aggregates"]["VRB/Walker-v1"].update(success_once=0.9), "episodes give"),
    (lambda d: d["runs"][0]["episodes"].pop(), "episodes; the protocol asks"),
    (lambda d: d["runs"].pop(), "at least 2 are required"),
    (lambda d: d["runs"][0]["episodes"][0].update(success_at_end=True, success_once=False), "success_at_end"),
    (lambda d: d["runs"][0]["episodes"][0].update({"return": 123.0}), "sum of its reward terms"),
    (lambda d: d["runs"][0]["episodes"][0].update(length=1001),
     r"runs/0/episodes/0: length 1001 exceeds VRB/Walker-v1's max_episode_steps \(1000, of the task\)"),
    (lambda d: d["runs"][0].update(env_kwargs={"max_episode_steps": 20}), "length .* exceeds .* overridden"),
    (lambda d: d["runs"][0].update(env_kwargs={"frame_skip": 2}), "evaluated with settings overrides"),
    (lambda d: d["runs"][0]["episodes"][0].update({"return": 10**400, "reward_terms": {}}),
     "runs/0/episodes/0/return: an integer too large for a float"),
])
def test_bad_submissions_are_rejected_and_nothing_written(board, random_doc, tmp_path, mutate, message):
    doc = copy.deepcopy(random_doc)
    mutate(doc)
    if "episodes give" not in message:
        doc.pop("aggregates", None)  # aggregates are optional: test each rule on its own
    with pytest.raises(ResultsError, match=message):
        submit_doc(board, doc, tmp_path)
    assert not (board.root / "submissions").exists() or not list((board.root / "submissions").iterdir())


def test_malformed_json_and_duplicates(board, random_doc, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        board.submit(bad)
    submit_doc(board, random_doc, tmp_path)
    with pytest.raises(ResultsError, match="already exists"):
        submit_doc(board, random_doc, tmp_path, name="again.json")
    with pytest.raises(ResultsError, match="duplicate"):
        board.submit(write_json(random_doc, tmp_path / "x.json"), name="other-name")


def test_validate_rejects_unknown_task(random_doc):
    doc = copy.deepcopy(random_doc)
    doc["runs"][0]["env_id"] = "VRB/Nope-v0"
    with pytest.raises(ResultsError, match="unknown task id"):
        validate(doc)


def test_verify_passes_a_faithful_rerun_and_fails_another_policy(tmp_path, zero_doc):
    # the verification seed base is the public one here, so a faithful re-run reproduces the submission exactly
    cfg = {**DEFAULT_CONFIG, "tracks": {"visual": ["VRB/Walker-v1"]}, "episodes": EPISODES, "min_seeds": 2,
           "bootstrap_reps": 200, "verify": {**DEFAULT_CONFIG["verify"], "seed_base": DEFAULT_CONFIG["seed_base"]}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    board = Leaderboard(tmp_path)
    assert board.submit(write_json(zero_doc, tmp_path / "in" / "zero.json")) == "zero"
    zero_policy = "visual_robo_bench.evaluation.protocol:ZeroAgent"
    report = verify(board, "zero", zero_policy, episodes=EPISODES, progress=False)
    task = report["tasks"]["VRB/Walker-v1"]
    lo, hi = task["submitted_ci"]
    assert lo == hi  # identical runs: only the stated tolerance lets the re-run verify
    assert task["accepted_range"][0] < task["rerun_return"] < task["accepted_range"][1]
    assert report["tolerance"] == DEFAULT_CONFIG["verify"]["tolerance"]
    assert report["verified"] and board.verified()["zero"]["policy"] == zero_policy

    report = verify(board, "zero", "visual_robo_bench.evaluation.protocol:RandomAgent", episodes=EPISODES,
                    progress=False)
    task = report["tasks"]["VRB/Walker-v1"]
    assert task["error"] is None and not task["ok"] and not report["verified"]
    assert not task["accepted_range"][0] <= task["rerun_return"] <= task["accepted_range"][1]
    # a failed verification is not recorded, and revokes the earlier one
    assert report["record_removed"] and "zero" not in board.verified()


def test_verify_draws_a_fresh_held_out_seed_base(tmp_path, zero_doc, monkeypatch):
    """The board's config fixes no verification seed base: each verification draws one nobody knew before (and
    records it); --seed-base fixes one."""
    from visual_robo_bench.evaluation import leaderboard

    assert "seed_base" not in DEFAULT_CONFIG["verify"]
    repo = Path(__file__).resolve().parents[1]
    assert "seed_base" not in json.loads((repo / "leaderboards" / "config.json").read_text())["verify"]
    cfg = {**DEFAULT_CONFIG, "tracks": {"visual": ["VRB/Walker-v1"]}, "episodes": EPISODES, "min_seeds": 2,
           "bootstrap_reps": 200}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    board = Leaderboard(tmp_path)
    board.submit(write_json(zero_doc, tmp_path / "in" / "zero.json"))
    used = []

    def fake_evaluate(policy, task, episodes, seed_base, isolate, progress):  # records the base, runs nothing
        used.append(seed_base)
        raise RuntimeError("stop")

    import visual_robo_bench.evaluation.harness as harness
    monkeypatch.setattr(harness, "evaluate", fake_evaluate)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="stop"):
            verify(board, "zero", "zero", episodes=1, progress=False)
    with pytest.raises(RuntimeError, match="stop"):
        verify(board, "zero", "zero", episodes=1, progress=False, seed_base=123_456_789)
    lo, hi = leaderboard.VERIFY_SEED_RANGE
    assert all(lo <= b < hi for b in used[:2]) and used[0] != used[1] and used[2] == 123_456_789


def test_partial_entries_and_empty_tasks_are_shown(tmp_path, random_doc, zero_doc):
    """An entry covering only some of a track's tasks is named under the track (it vanished silently), a track
    task without entries gets its section, and intervals read [lo, hi] (``-11.7--11.3`` misread)."""
    cfg = {**DEFAULT_CONFIG, "tracks": {"visual": [*TASKS, "VRB/Ant-v1"]}, "episodes": EPISODES, "min_seeds": 2,
           "bootstrap_reps": 200}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    board = Leaderboard(tmp_path)
    submit_doc(board, random_doc, tmp_path, "random.json")
    submit_doc(board, zero_doc, tmp_path, "zero.json")
    board.build()
    md, page = (tmp_path / "README.md").read_text(), (tmp_path / "index.html").read_text()
    note = "Not ranked (they cover only some of the track's tasks): random (2 of 3), zero (1 of 3)."
    assert note in md and html.escape(note) in page and "no entry covers every task of this track" in page
    section = md[md.index("## VRB/Ant-v1"):]
    assert "| - | no entries yet |" in section and "no entries yet" in page
    assert "plots/VRB_Ant-v1.png" not in page  # no plot for a task without entries (no broken image)
    import re

    assert re.search(r"\| -\d+\.\d \[-\d+\.\d, -\d+\.\d\] \|", md)  # a negative return's CI: [lo, hi]
    assert not re.search(r"\d-+\d", md.replace("VRB/", "").replace("-v", "v"))  # no "lo-hi" anywhere


def _public_verify_board(root, relative_tolerance=0.01):
    """A Walker-v1 board whose verification seed base is the public one (a faithful re-run reproduces the
    submission exactly)."""
    cfg = {**DEFAULT_CONFIG, "tracks": {"visual": ["VRB/Walker-v1"]}, "episodes": EPISODES, "min_seeds": 2,
           "bootstrap_reps": 200, "verify": {**DEFAULT_CONFIG["verify"], "seed_base": DEFAULT_CONFIG["seed_base"],
                                             "tolerance": {"absolute": 1e-6, "relative": relative_tolerance}}}
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(cfg))
    return Leaderboard(root)


def test_only_the_protocols_episode_count_verifies_and_the_entry_records_it(tmp_path, zero_doc, capsys):
    """A cut-down re-run (fewer episodes than the protocol's) is a dry check: reported, even as passing, but
    never recorded or printed as verified; a verification that counts records its episode count."""
    from visual_robo_bench.cli import main

    board = _public_verify_board(tmp_path, relative_tolerance=10.0)  # so wide that any zero re-run passes
    board.submit(write_json(zero_doc, tmp_path / "in" / "zero.json"))
    zero_policy = "visual_robo_bench.evaluation.protocol:ZeroAgent"
    report = verify(board, "zero", zero_policy, episodes=EPISODES - 2, progress=False)
    assert report["dry_run"] and report["passed"] and not report["verified"]
    assert report["episodes"] == EPISODES - 2 and report["protocol_episodes"] == EPISODES
    assert not (tmp_path / "verified.json").exists()
    capsys.readouterr()
    assert main(["verify", "zero", "--policy", zero_policy, "--episodes", "1", "--leaderboard-dir",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert "dry check with 1 episodes per re-run passed" in out and "NOT recorded" in out
    assert "zero verified" not in out and not (tmp_path / "verified.json").exists()
    assert main(["verify", "zero", "--policy", zero_policy, "--leaderboard-dir", str(tmp_path)]) == 0
    assert "zero verified" in capsys.readouterr().out
    entry = board.verified()["zero"]
    assert entry["verified"] and not entry["dry_run"] and entry["episodes"] == EPISODES
    assert "| zero | verified |" in (tmp_path / "README.md").read_text()


def test_verify_re_runs_each_training_seeds_own_policy(tmp_path, monkeypatch):
    """``--policy 'module:s{seed}'`` (as ``vrb evaluate --agent`` takes it) re-runs every training seed with its
    own policy; the mean of the re-runs is compared with the submission's CI."""
    from visual_robo_bench.evaluation.results import aggregates

    write_seeded_agents(tmp_path, "verify_seeded_policies", {0: 0.0, 1: 0.3})
    monkeypatch.syspath_prepend(str(tmp_path))
    evals = [(evaluate(f"verify_seeded_policies:s{s}", "VRB/Walker-v1", episodes=EPISODES, num_envs=2,
                       progress=False), s) for s in (0, 1)]
    doc = trained(make_results(evals, agent_name="seeded", description="one policy per training seed"), "seeded")
    board = _public_verify_board(tmp_path / "board")
    board.submit(write_json(doc, tmp_path / "in" / "seeded.json"))
    with pytest.raises(ResultsError, match=r"only the placeholders \{seed\} and \{task\}"):
        verify(board, "seeded", "verify_seeded_policies:s{run}", progress=False)
    report = verify(board, "seeded", "verify_seeded_policies:s{seed}", progress=False)
    task = report["tasks"]["VRB/Walker-v1"]
    assert [(r["policy"], r["training_seeds"]) for r in task["reruns"]] == [
        ("verify_seeded_policies:s0", [0]), ("verify_seeded_policies:s1", [1])]
    assert all(r["error"] is None for r in task["reruns"])
    submitted = aggregates(doc)["VRB/Walker-v1"]["runs"]
    assert [r["rerun_return"] for r in task["reruns"]] == pytest.approx([r["return"] for r in submitted])
    assert task["rerun_return"] == pytest.approx(np.mean([r["return"] for r in submitted]))
    assert report["verified"] and board.verified()["seeded"]["policy"] == "verify_seeded_policies:s{seed}"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", ["return", "reward_term", "metric", "budget"])
def test_non_finite_numbers_are_rejected(random_doc, where, value):
    doc = copy.deepcopy(random_doc)
    doc.pop("aggregates")
    ep = doc["runs"][0]["episodes"][0]
    if where == "return":
        ep["return"], ep["reward_terms"] = value, {}
        path = "runs/0/episodes/0/return"
    elif where == "reward_term":
        term = sorted(ep["reward_terms"])[0]
        ep["reward_terms"][term] = value
        path = f"runs/0/episodes/0/reward_terms/{term}"
    elif where == "metric":
        ep["metrics"]["distance"] = value
        path = "runs/0/episodes/0/metrics/distance"
    else:
        doc["budget"]["wall_clock_s"] = value
        path = "budget/wall_clock_s"
    with pytest.raises(ResultsError, match=f"{path}: NaN and infinite numbers are not allowed"):
        validate(doc)


def test_nan_never_reaches_a_file_or_the_board(board, random_doc, tmp_path):
    doc = copy.deepcopy(random_doc)
    doc["runs"][0]["episodes"][0].update({"return": float("nan"), "reward_terms": {}})
    doc.pop("aggregates")
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(doc))  # Python's json writes the non-standard constant NaN
    for read in (load, board.submit):
        with pytest.raises(ResultsError, match="NaN is not a JSON number"):
            read(path)
    assert not (board.root / "submissions").exists()
    with pytest.raises(ResultsError, match="runs/0/episodes/0/return is not a finite number"):
        write_json(doc, tmp_path / "out.json")
    assert not list(tmp_path.glob("*out.json*"))


def test_submission_names_stay_inside_submissions(board, random_doc, tmp_path):
    name = board.submit(write_json(trained(random_doc, "mine"), tmp_path / "in" / "r.json"), name="../../Escaped")
    assert name == "escaped"
    assert (board.root / "submissions" / "escaped.json").is_file()
    assert not (tmp_path.parent / "escaped.json").exists() and not (tmp_path.parent / "Escaped.json").exists()
    other = trained(random_doc, "mine")
    other["runs"] = other["runs"][::-1]
    with pytest.raises(ResultsError, match="'escaped' already exists"):
        board.submit(write_json(other, tmp_path / "in" / "r2.json"), name="ESCAPED")


def test_resubmission_with_renumbered_training_seeds_is_a_duplicate(board, random_doc, tmp_path):
    submit_doc(board, random_doc, tmp_path)
    doc = trained(random_doc, "mine")
    for run in doc["runs"]:
        run["training_seed"] += 10
    doc.pop("aggregates")
    with pytest.raises(ResultsError, match="duplicate: runs/0 .* accepted submission 'random'"):
        submit_doc(board, doc, tmp_path, name="renumbered.json")
    assert sorted(p.name for p in (board.root / "submissions").iterdir()) == ["random.json"]


def test_one_policy_for_several_training_seeds_is_rejected_but_for_the_deterministic_floor(
        board, zero_doc, random_doc, tmp_path):
    with pytest.raises(ResultsError, match="runs/1 .* same episodes as runs/0"):
        submit_doc(board, trained(zero_doc, "mine"), tmp_path, name="mine.json")
    with pytest.raises(ResultsError, match="same episodes"):  # the floor's name alone is no exemption
        board.submit(write_json(zero_doc, tmp_path / "in" / "z.json"), name="not-zero")
    randomized = copy.deepcopy(random_doc)  # the random floor is not deterministic: its runs must differ
    randomized["runs"][1]["episodes"] = copy.deepcopy(randomized["runs"][0]["episodes"])
    randomized.pop("aggregates")
    with pytest.raises(ResultsError, match="runs/1 .* same episodes as runs/0"):
        submit_doc(board, randomized, tmp_path, name="random.json")
    assert not (board.root / "submissions").exists() or not list((board.root / "submissions").iterdir())
    assert submit_doc(board, zero_doc, tmp_path, name="zero.json") == "zero"


def test_trained_entries_must_state_their_budget(board, random_doc, tmp_path):
    doc = copy.deepcopy(random_doc)
    doc["agent"]["name"] = "mine"
    with pytest.raises(ResultsError, match="budget: env_steps, rendered_frames, wall_clock_s missing"):
        submit_doc(board, doc, tmp_path)
    negative = trained(random_doc, "mine")
    negative["budget"]["env_steps"] = -5
    with pytest.raises(ResultsError, match="budget/env_steps: -5 is less than the minimum of 0"):
        submit_doc(board, negative, tmp_path)
    assert submit_doc(board, trained(random_doc, "mine"), tmp_path) == "mine"
    board.build()
    assert "100,000 steps, 50,000 frames, 10 min" in (board.root / "README.md").read_text()


def test_sweep_results_carry_the_stated_budget(board, random_doc, tmp_path):
    from visual_robo_bench.evaluation.distributed import agent_results

    cells = []
    for i, run in enumerate(random_doc["runs"]):
        one = copy.deepcopy(random_doc)
        one["runs"] = [run]
        one["agent"]["name"] = "mine"
        one.pop("aggregates")
        cells.append({"agent": "mine-s{seed}.pt", "status": "ok", "results": one})
    sweep = {"cells": cells}
    with pytest.raises(ResultsError, match="budget: env_steps, rendered_frames, wall_clock_s missing"):
        submit_doc(board, agent_results(sweep, "mine-s{seed}.pt"), tmp_path)
    budget = {"env_steps": 1000, "rendered_frames": 500, "wall_clock_s": 60.0}
    doc = agent_results(sweep, "mine-s{seed}.pt", budget=budget, code_url="https://example.org/mine@abc")
    assert doc["budget"]["env_steps"] == 1000 and doc["agent"]["code_url"] == "https://example.org/mine@abc"
    assert submit_doc(board, doc, tmp_path) == "mine"


@pytest.mark.parametrize("stated,message", [
    ({"VRB/Walker-v1": 5}, "aggregates/VRB/Walker-v1: 5 is not of type 'object'"),
    ({"VRB/Walker-v1": {"return": "x"}}, "aggregates/VRB/Walker-v1/return: 'x' is not of type 'number'"),
    (["VRB/Walker-v1"], "aggregates: .* is not of type 'object'"),
])
def test_malformed_aggregates_are_rejected(board, random_doc, tmp_path, stated, message):
    doc = copy.deepcopy(random_doc)
    doc["aggregates"] = stated
    with pytest.raises(ResultsError, match=message):
        submit_doc(board, doc, tmp_path)


def test_env_ids_must_be_canonical(random_doc):
    doc = copy.deepcopy(random_doc)
    doc["runs"][0]["env_id"] = "visual_robo_bench:VRB/Walker-v1"
    with pytest.raises(ResultsError, match="runs/0: env_id 'visual_robo_bench:VRB/Walker-v1' is not a canonical "
                                           "task id; write 'VRB/Walker-v1'"):
        validate(doc)


def test_entries_sharing_an_agent_name_keep_their_own_scores(board, random_doc, tmp_path):
    from visual_robo_bench.evaluation.leaderboard import _track_matrices

    better = trained(random_doc, "random")  # same agent name, other data
    for run in better["runs"]:
        for e in run["episodes"]:
            e["success_once"] = True
    mats = _track_matrices({"random": random_doc, "better": better}, TASKS)
    assert set(mats) == {"random", "better"} and mats["better"].min() == 1.0 and mats["random"].max() < 1.0
    better.pop("aggregates")
    submit_doc(board, random_doc, tmp_path)
    board.submit(write_json(better, tmp_path / "in" / "b.json"), name="better")
    board.build()
    overall = (board.root / "README.md").read_text().split("## Overall")[1].split("\n## ")[0]
    assert "| 1 | better |" in overall and "| 2 | random |" in overall


def test_bootstrap_intervals_are_reproducible():
    from visual_robo_bench.evaluation.leaderboard import _interval

    scores = np.random.default_rng(1).uniform(size=(5, 3))
    first = _interval(scores, 300)
    assert first == _interval(scores, 300)
    assert first["iqm"][1] < first["iqm"][0] < first["iqm"][2]


def _chromium():
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_page_in_headless_chromium(board, random_doc, tmp_path):
    import subprocess

    submit_doc(board, random_doc, tmp_path)
    board.build()
    page = board.root / "index.html"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chrome'}", "--allow-file-access-from-files",
             "--virtual-time-budget=5000"]
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    for task in TASKS:
        assert f"id=\"{task}\"" in dom
    assert dom.count("class=\"entry\"") == len(TASKS)  # one entry (random) per task
    n_images = dom.count("<img")
    assert f'data-plots-loaded="{n_images}"' in dom, "some plots did not load"
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), *flags, "--window-size=1000,1400", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000


def test_committed_leaderboards_are_up_to_date(tmp_path):
    from pathlib import Path
    import shutil

    repo_board = Path(__file__).resolve().parents[1] / "leaderboards"
    assert (repo_board / "submissions").is_dir(), "the project's own entries are missing"
    work = tmp_path / "leaderboards"
    shutil.copytree(repo_board, work)
    board = Leaderboard(work)
    assert {"random", "zero"} <= set(board.submissions())
    board.build()
    for name in ("README.md", "index.html"):
        assert (work / name).read_text() == (repo_board / name).read_text(), (
            f"leaderboards/{name} is stale: run `vrb leaderboard build`")


def test_reference_scores_script_takes_an_expert_only_above_the_floors(random_v0, tmp_path, monkeypatch):
    """``scripts/reference_scores.py``: shipped policy first, else the better of the state expert and a scripted
    controller among those that beat the floors, else null."""
    import runpy
    import sys
    from pathlib import Path

    from visual_robo_bench.evaluation import ZeroAgent

    zero = make_results([(evaluate(ZeroAgent(3), "VRB/Hopper-v0", episodes=EPISODES, num_envs=2, progress=False), 0)],
                        agent_name="zero", description="all-zero actions")
    script = str(Path(__file__).resolve().parents[1] / "scripts" / "reference_scores.py")

    def levels(floor, expert, zero_floor=None):
        root = tmp_path / f"{floor['agent']['name']}-{expert['agent']['name']}-{zero_floor is not None}"
        write_json(floor, root / "submissions" / "random.json")
        if zero_floor is not None:
            write_json(zero_floor, root / "submissions" / "zero.json")
        write_json(random_v0, root / "references" / "sdpg-walker-v1.json")  # Walker: the "shipped policy"
        write_json(expert, root / "references" / "state-ppo-hopper-v0.json")
        monkeypatch.setattr(sys, "argv", ["reference_scores.py", "--leaderboard-dir", str(root)])
        runpy.run_path(script, run_name="__main__")
        return json.loads((root / "reference_scores.json").read_text())["tasks"]

    from visual_robo_bench.evaluation.results import aggregates

    r_random, r_zero = aggregates(random_v0)["VRB/Hopper-v0"]["return"], aggregates(zero)["VRB/Hopper-v0"]["return"]
    assert r_random > r_zero  # random hops a little; all-zero actions fall flat
    below = levels(random_v0, zero)  # the "expert" (zero) does not beat the floor (random)
    assert below["VRB/Hopper-v0"]["reference"] is None
    assert "does not beat the floors" in below["VRB/Hopper-v0"]["reference_source"]
    assert below["VRB/Walker-v1"]["reference_source"] == "references/sdpg-walker-v1.json"
    above = levels(zero, random_v0)  # now the expert beats the floor
    assert above["VRB/Hopper-v0"]["reference"] == pytest.approx(r_random)
    assert above["VRB/Hopper-v0"]["random"] == pytest.approx(r_zero)
    assert above["VRB/Hopper-v0"]["reference_source"] == "references/state-ppo-hopper-v0.json"
    # ... but not the all-zero floor, which here is as good as the expert: no reference level
    tie = levels(zero, random_v0, zero_floor=random_v0)
    assert tie["VRB/Hopper-v0"]["reference"] is None
    # a scripted controller competes with the expert: the better of those that beat the floors is R_ref
    root = tmp_path / "scripted"
    write_json(zero, root / "submissions" / "random.json")
    write_json(zero, root / "references" / "state-ppo-hopper-v0.json")  # expert = floor: rejected
    write_json(random_v0, root / "references" / "scripted-hopper-v0.json")
    module = runpy.run_path(script, run_name="reference_scores")
    board = module["Leaderboard"](root)
    scripted = module["reference_levels"](board, scripted={"VRB/Hopper-v0": "references/scripted-hopper-v0.json"})
    assert scripted["VRB/Hopper-v0"]["reference"] == pytest.approx(r_random)
    assert scripted["VRB/Hopper-v0"]["reference_source"] == "references/scripted-hopper-v0.json"
    without = module["reference_levels"](board, scripted={})
    assert without["VRB/Hopper-v0"]["reference"] is None
    assert "the expert's" in without["VRB/Hopper-v0"]["reference_source"]
    both_low = module["reference_levels"](board, scripted={"VRB/Hopper-v0": "references/state-ppo-hopper-v0.json"})
    assert "the scripted controller's" in both_low["VRB/Hopper-v0"]["reference_source"]


# ------------------------------------------------------------------ audit of the submission journey
def _noisy(doc, eps=1e-8, scale=1.0, agent_name="mine"):
    """A trained-entry copy of ``doc`` whose returns are ``return * scale + eps`` (reward terms left out)."""
    doc = trained(doc, agent_name)
    for run in doc["runs"]:
        for e in run["episodes"]:
            e["return"], e["reward_terms"] = e["return"] * scale + eps, {}
    doc.pop("aggregates")
    return doc


def test_verified_tier_follows_the_files_content(tmp_path, zero_doc):
    """A verified.json record vouches for the runs it re-ran (their digest): a file replaced under the same name
    is reported (submit drops the stale record; a record left behind is ignored), and a failing verification
    revokes an earlier one."""
    from visual_robo_bench.cli import main

    board = _public_verify_board(tmp_path)
    board.submit(write_json(zero_doc, tmp_path / "in" / "zero.json"))
    zero_policy = "visual_robo_bench.evaluation.protocol:ZeroAgent"
    assert verify(board, "zero", zero_policy, progress=False)["verified"]
    record = board.verified()["zero"]
    board.build()
    assert "| zero | verified |" in (tmp_path / "README.md").read_text()
    # a failing verification removes the earlier record (the CLI rebuilds the board)
    assert main(["verify", "zero", "--policy", "visual_robo_bench.evaluation.protocol:RandomAgent",
                 "--leaderboard-dir", str(tmp_path)]) == 1
    assert "zero" not in board.verified()
    assert "| zero | reported |" in (tmp_path / "README.md").read_text()
    # a tampered file under the verified name: submit drops the record, and a record put back is stale
    (tmp_path / "verified.json").write_text(json.dumps({"zero": record}))
    (tmp_path / "submissions" / "zero.json").unlink()
    tampered = copy.deepcopy(zero_doc)
    for run in tampered["runs"]:
        for e in run["episodes"]:
            e["return"], e["reward_terms"] = e["return"] + 50.0, {}
    tampered.pop("aggregates")
    assert board.submit(write_json(tampered, tmp_path / "in" / "tampered.json"), name="zero") == "zero"
    assert "zero" not in board.verified()
    (tmp_path / "verified.json").write_text(json.dumps({"zero": record}))
    board.build()
    assert "| zero | reported |" in (tmp_path / "README.md").read_text()
    assert not board.is_verified("zero", board.submissions()["zero"])


def test_files_added_to_submissions_directly_obey_the_submission_rules(board, random_doc, tmp_path, capsys):
    """The pull-request route (a file put into submissions/) meets the rules of vrb submit at build time: exit 1
    naming the file and the rule, and the tables stay as they were."""
    from visual_robo_bench.cli import main

    submit_doc(board, random_doc, tmp_path)
    board.build()
    before = (board.root / "README.md").read_text()
    short = trained(random_doc, "short")
    for run in short["runs"]:
        run["episodes"].pop()
    short.pop("aggregates")
    no_budget = _noisy(random_doc, eps=5.0)
    no_budget["budget"].update(env_steps=None)
    cases = [(trained(random_doc, "copy"), "duplicate: runs/0 .* accepted submission 'random'"),
             (_noisy(random_doc), "duplicate: runs/0"),
             (short, "runs/0: 3 episodes; the protocol asks for 4"),
             (no_budget, "budget: env_steps missing")]
    for doc, rule in cases:
        path = write_json(doc, board.root / "submissions" / "direct.json")
        with pytest.raises(ResultsError, match=f"accepted submission {path} breaks a submission rule: {rule}"):
            board.build()
        assert main(["leaderboard", "build", "--leaderboard-dir", str(board.root)]) == 1
        err = capsys.readouterr().err.replace("\n", "")
        assert "direct.json breaks a submission rule" in err and "Traceback" not in err
        assert (board.root / "README.md").read_text() == before
    write_json(_noisy(random_doc, eps=5.0), board.root / "submissions" / "direct.json")
    board.build()  # a file that meets every rule is shown
    assert "| direct |" in (board.root / "README.md").read_text()


@pytest.mark.parametrize("eps,scale", [(1e-8, 1.0), (0.0, 1 + 1e-6), (1e-6, 1 - 1e-5)])
def test_float_noise_does_not_make_a_copy_new(board, random_doc, tmp_path, eps, scale):
    submit_doc(board, random_doc, tmp_path)
    with pytest.raises(ResultsError, match="duplicate: runs/0 .* accepted submission 'random'"):
        submit_doc(board, _noisy(random_doc, eps, scale), tmp_path, name="noisy.json")
    within = trained(random_doc, "mine")  # one policy's episodes with noise for a second training seed
    within["runs"][1]["episodes"] = copy.deepcopy(within["runs"][0]["episodes"])
    for e in within["runs"][1]["episodes"]:
        e["return"], e["reward_terms"] = e["return"] * scale + eps, {}
    within.pop("aggregates")
    with pytest.raises(ResultsError, match="runs/1 .* same episodes as runs/0"):
        board.submit(write_json(within, tmp_path / "in" / "within.json"), name="within")
    assert sorted(p.name for p in (board.root / "submissions").iterdir()) == ["random.json"]


def test_unequal_run_counts_within_a_track_are_refused(board, random_doc, tmp_path):
    """A track's aggregates took min(run counts) and dropped the other runs silently."""
    from visual_robo_bench.evaluation.leaderboard import _score_matrix

    doc = _noisy(random_doc, eps=0.0)
    extra = copy.deepcopy(doc["runs"][0])
    extra["training_seed"] = 7
    for e in extra["episodes"]:
        e["return"] += 3.0
    doc["runs"].append(extra)
    with pytest.raises(ResultsError, match=r"track 'visual': unequal numbers of runs per task \(VRB/Walker-v1: 3, "
                                           r"VRB/Hopper-v1: 2\)"):
        submit_doc(board, doc, tmp_path)
    with pytest.raises(ResultsError, match="unequal numbers of runs per task"):
        _score_matrix(doc, TASKS)
    assert _score_matrix(random_doc, TASKS).shape == (2, 2)


def _on_hopper_v0(doc):
    """``doc`` with its Hopper-v1 runs relabelled as runs of the deprecated Hopper-v0."""
    from visual_robo_bench.evaluation.results import task_hash

    doc = copy.deepcopy(doc)
    for run in doc["runs"]:
        if run["env_id"] == "VRB/Hopper-v1":
            run["env_id"], run["task_hash"] = "VRB/Hopper-v0", task_hash("VRB/Hopper-v0")
    doc.pop("aggregates")
    return doc


def test_new_results_on_a_deprecated_task_version_are_refused_at_submit_only(board, random_doc, tmp_path):
    doc = _on_hopper_v0(random_doc)
    with pytest.raises(ResultsError, match=r"runs/2: VRB/Hopper-v0 is deprecated \(replaced by VRB/Hopper-v1\); "
                                           "new results are accepted only on the current version"):
        submit_doc(board, doc, tmp_path)
    assert not (board.root / "submissions").exists()
    write_json(doc, board.root / "submissions" / "random.json")  # an entry from before the deprecation
    board.build()
    assert "## VRB/Hopper-v0 (Deprecated" in (board.root / "README.md").read_text()


def test_a_resubmission_may_carry_its_accepted_runs_on_a_deprecated_version(board, random_doc, tmp_path):
    """scripts/seed_leaderboards.py re-submits a completed floor with its kept runs, some on deprecated ids."""
    doc = _on_hopper_v0(random_doc)
    deprecated = [r for r in doc["runs"] if r["env_id"] == "VRB/Hopper-v0"]
    assert submit_doc(board, doc, tmp_path, carried_runs=deprecated) == "random"
    new = copy.deepcopy(deprecated[0])
    new["episodes"][0]["return"] += 1.0  # not the carried run any more
    with pytest.raises(ResultsError, match="VRB/Hopper-v0 is deprecated"):
        board.check_current_versions({"runs": [new]}, carried_runs=deprecated)


def test_evaluate_notes_a_deprecated_task_and_records_a_factory_policy(tmp_path, capsys):
    """vrb evaluate on a deprecated id names the replacement; --episodes 1 is not the standard protocol (the
    official column said yes); a module:factory agent is recorded as agent.policy (the verified tier needs it)."""
    from visual_robo_bench.cli import main

    factory = "visual_robo_bench.evaluation.protocol:ZeroAgent"
    out = tmp_path / "r.json"
    assert main(["evaluate", "--agent", factory, "--task", "VRB/Hopper-v0", "--episodes", "1", "--num-envs", "1",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if "deprecated" in line]
    assert notes == ["note: VRB/Hopper-v0 is deprecated, use VRB/Hopper-v1 (vrb submit accepts new results only on "
                     "the current version)"]
    row = next(line for line in captured.out.splitlines() if "VRB/Hopper-v0" in line)
    assert row.rstrip(" │|").endswith("no")
    doc = load(out)
    assert doc["agent"]["policy"] == factory and not doc["runs"][0]["official"]


def test_board_shows_each_entrys_vrb_and_mujoco_versions(board, random_doc, tmp_path):
    doc = copy.deepcopy(random_doc)
    doc["vrb_version"], doc["versions"]["mujoco"] = "0.0.9", "3.1.6"
    submit_doc(board, doc, tmp_path)
    board.build()
    md, page = (board.root / "README.md").read_text(), (board.root / "index.html").read_text()
    assert "| versions |" in md and md.count("vrb 0.0.9, MuJoCo 3.1.6 |") == len(TASKS)
    assert "<th>versions</th>" in page and "<td>vrb 0.0.9, MuJoCo 3.1.6</td>" in page


@pytest.mark.parametrize("number,message", [(str(10**400), "an integer too large for a float"),
                                            ("1" * 5000, "holds a number that cannot be read")],
                         ids=["1e400", "5000-digits"])
def test_huge_integers_are_a_one_line_rejection(tmp_path, random_doc, capsys, number, message):
    from visual_robo_bench.cli import main

    doc = copy.deepcopy(random_doc)
    doc.pop("aggregates")
    doc["runs"][0]["episodes"][0].update({"return": 0.5, "reward_terms": {}})
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(doc).replace('"return": 0.5', f'"return": {number}', 1))
    (tmp_path / "board" / "submissions").mkdir(parents=True)
    (tmp_path / "board" / "config.json").write_text(json.dumps(DEFAULT_CONFIG))
    assert main(["submit", str(path), "--leaderboard-dir", str(tmp_path / "board")]) == 2
    err = capsys.readouterr().err
    assert "rejected" in err and message in err and "Traceback" not in err and "OverflowError" not in err


def _standard_doc(random_doc):
    """``random_doc``'s Walker-v1 runs stretched to the standard 50 episodes on the public seeds (no evaluation)."""
    doc = trained(random_doc, "mine")
    doc["runs"] = [r for r in doc["runs"] if r["env_id"] == "VRB/Walker-v1"]
    for run in doc["runs"]:
        eps = run["episodes"]
        run["episodes"] = [{**copy.deepcopy(eps[k % len(eps)]), "seed": DEFAULT_CONFIG["seed_base"] + k}
                           for k in range(DEFAULT_CONFIG["episodes"])]
        run["official"] = True
    doc.pop("aggregates")
    return doc


def test_a_run_marked_unofficial_is_refused_with_the_reason(tmp_path, random_doc):
    cfg = {**DEFAULT_CONFIG, "tracks": {"visual": ["VRB/Walker-v1"]}, "min_seeds": 2, "bootstrap_reps": 200}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    board = Leaderboard(tmp_path)
    assert board.standard_protocol()
    doc = _standard_doc(random_doc)
    doc["runs"][1]["official"] = False
    with pytest.raises(ResultsError, match=r"runs/1: the run is marked unofficial \(official: false\), i.e. it was "
                                           "not evaluated with the standard protocol"):
        board.submit(write_json(doc, tmp_path / "in" / "u.json"))
    doc["runs"][1]["official"] = True
    assert board.submit(write_json(doc, tmp_path / "in" / "o.json")) == "mine"


def test_outside_a_checkout_reads_use_the_installed_copy_and_writes_are_refused(tmp_path, monkeypatch, capsys):
    """Without ./leaderboards a read gets the copy installed with the package; submit, verify and leaderboard
    build (which write) refuse with what to do, never falling back to the installed copy (in site-packages).
    (tests/test_packaging.py runs the same against a built and installed wheel.)"""
    import shutil

    from visual_robo_bench.cli import CLIError, main
    from visual_robo_bench.cli_eval import _leaderboard_dir
    from visual_robo_bench.evaluation import leaderboard

    installed = tmp_path / "site-packages" / "visual_robo_bench" / "leaderboards"
    installed.mkdir(parents=True)
    monkeypatch.setattr(leaderboard, "installed_leaderboard_dir", lambda: installed)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert _leaderboard_dir(None, writer=None) == installed
    assert leaderboard.default_leaderboard_dir() == installed
    (work / "r.json").write_text("{}")
    for argv in (["leaderboard", "build"], ["submit", "r.json"], ["verify", "zero", "--policy", "zero"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: no leaderboards/ directory here, and vrb ") and len(err.splitlines()) == 1
        assert ("run it from the root of a clone of the visual_robo_bench repository, or pass --leaderboard-dir "
                "DIR") in err
    assert not any(installed.iterdir()) and sorted(p.name for p in work.iterdir()) == ["r.json"]
    (work / "leaderboards").mkdir()  # a checkout: its own leaderboards, for reads and writes
    (work / "leaderboards" / "config.json").write_text(json.dumps(DEFAULT_CONFIG))
    assert _leaderboard_dir(None, writer=None) == _leaderboard_dir(None, writer="vrb submit") == work / "leaderboards"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text(json.dumps(DEFAULT_CONFIG))
    assert _leaderboard_dir(str(tmp_path / "mine"), writer="vrb submit") == tmp_path / "mine"

    def no_copy():
        raise FileNotFoundError("the installed visual_robo_bench has no leaderboards")

    monkeypatch.setattr(leaderboard, "installed_leaderboard_dir", no_copy)
    shutil.rmtree(work / "leaderboards")
    with pytest.raises(CLIError, match="no leaderboards/ directory here, and the installed visual_robo_bench has no "
                                       "leaderboards, or pass --leaderboard-dir DIR") as exc:
        _leaderboard_dir(None, writer=None)
    assert exc.value.code == 2


@pytest.mark.parametrize("command", [["submit", "r.json"], ["leaderboard", "build"], ["verify", "zero", "--policy",
                                                                                       "zero"]],
                         ids=["submit", "build", "verify"])
@pytest.mark.parametrize("state", ["missing", "no-config", "default"])
def test_writing_commands_refuse_a_directory_without_a_board(tmp_path, monkeypatch, capsys, command, state):
    """submit, leaderboard build and verify on a --leaderboard-dir that does not exist, or has no config.json,
    silently started a new board with the built-in DEFAULT_CONFIG; they refuse (exit 2, one line, nothing
    written) and say how to start a board: copy the project's config.json into it. ./leaderboards alike."""
    from visual_robo_bench.cli import main
    from visual_robo_bench.evaluation import leaderboard

    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.json").write_text("{}")
    board = tmp_path / "board"
    flag = []
    if state == "default":  # ./leaderboards without config.json
        board = tmp_path / "leaderboards"
        board.mkdir()
    else:
        flag = ["--leaderboard-dir", str(board)]
        if state == "no-config":
            board.mkdir()
    assert main([*command, *flag]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    err = " ".join(err.split())
    name = "leaderboards/" if state == "default" else f"--leaderboard-dir {board}"
    why = "does not exist" if state == "missing" else "has no config.json"
    writer = {"submit": "vrb submit", "leaderboard": "vrb leaderboard build", "verify": "vrb verify"}[command[0]]
    assert f"error: {name} {why}" in err and writer in err
    assert "to start a new board, create it and copy the project's config into it" in err
    assert f"mkdir -p {board} && cp {leaderboard.installed_leaderboard_dir() / 'config.json'} {board}/" in err
    assert (not board.exists()) if state == "missing" else not any(board.iterdir())


@pytest.mark.parametrize("mujoco_version", ["3.0.0", None], ids=["other-mujoco", "installed-versions"])
def test_submit_notes_results_made_with_other_versions(board, random_doc, tmp_path, capsys, mujoco_version):
    """An entry made with another MuJoCo (or VRB) version is accepted with a note naming the difference;
    one made with the installed versions gets no note."""
    from visual_robo_bench.cli import main
    from visual_robo_bench.evaluation.results import versions

    doc = trained(random_doc, "mine")
    doc["versions"]["mujoco"] = mujoco_version or versions()["mujoco"]
    path = write_json(doc, tmp_path / "in" / "r.json")
    assert main(["submit", str(path), "--leaderboard-dir", str(board.root)]) == 0
    err = capsys.readouterr().err
    if mujoco_version:
        assert f"mujoco 3.0.0 (installed: {versions()['mujoco']})" in err and "visual_robo_bench" not in err
    else:
        assert "note:" not in err


def _better(random_doc, name="better"):
    """A trained entry on ``random_doc``'s episodes, a success in every episode."""
    better = trained(random_doc, name)
    for run in better["runs"]:
        for e in run["episodes"]:
            e["success_once"] = True
    better.pop("aggregates")
    return better


def test_overall_tables_show_the_optimality_gap_and_the_probability_of_improvement(board, random_doc, tmp_path):
    """conventions.md section 6: the aggregate report lacked the optimality gap and the probability of improvement
    for pairwise claims; both are now computed with rliable (seeded bootstrap CIs) and shown on the board."""
    from rliable import metrics

    from visual_robo_bench.evaluation.leaderboard import (_improvement, _interval, _probability_of_improvement,
                                                          _track_matrices)

    scores = np.random.default_rng(1).uniform(size=(5, 3))
    est = _interval(scores, 300)
    assert est["optimality_gap"][0] == pytest.approx(metrics.aggregate_optimality_gap(scores, gamma=1))
    assert est["optimality_gap"][1] < est["optimality_gap"][0] < est["optimality_gap"][2]
    assert _interval(np.minimum(scores + 0.5, 1.5), 300)["optimality_gap"][0] == pytest.approx(
        1 - np.minimum(scores + 0.5, 1.0).mean())  # scores above gamma = 1 count as 1
    rng = np.random.default_rng(2)
    for _ in range(50):  # the bootstrap's vectorized metric is rliable's (ties and unequal run counts included)
        x, y = rng.integers(0, 3, size=(rng.integers(1, 6), 4)) / 2, rng.integers(0, 3, size=(rng.integers(1, 6), 4)) / 2
        assert _probability_of_improvement(x, y) == pytest.approx(metrics.probability_of_improvement(x, y))
    x, y = rng.uniform(size=(4, 3)), rng.uniform(size=(3, 3))
    imp = _improvement(x, y, 300)
    assert imp == _improvement(x, y, 300)  # seeded: reproducible
    assert imp[0] == pytest.approx(metrics.probability_of_improvement(x, y)) and imp[1] <= imp[0] <= imp[2]

    better = _better(random_doc)
    submit_doc(board, random_doc, tmp_path)
    board.submit(write_json(better, tmp_path / "in" / "b.json"), name="better")
    board.build()
    mats = _track_matrices({"random": random_doc, "better": better}, TASKS)
    p_better = metrics.probability_of_improvement(mats["better"], mats["random"])
    gap_random = metrics.aggregate_optimality_gap(mats["random"], gamma=1)
    md = (board.root / "README.md").read_text()
    overall = md.split("## Overall")[1].split("\n## ")[0]
    assert ("| # | entry | seeds | IQM success (95% CI) | mean success (95% CI) | optimality gap (95% CI) | "
            "P(> next) (95% CI) | budget |") in overall
    rows = {line.split(" | ")[1]: line.split(" | ") for line in overall.splitlines() if line.startswith("| 1 |")
            or line.startswith("| 2 |")}
    assert rows["better"][5] == "0.000 [0.000, 0.000]" and rows["better"][6].startswith(f"{p_better:.2f} [")
    assert rows["random"][5].startswith(f"{gap_random:.3f} [") and rows["random"][6] == "-"
    page = (board.root / "index.html").read_text()
    assert "optimality gap</th>" in page and "P(&gt; next)</th>" in page and f"<td>{p_better:.2f} [" in page


def test_budgets_show_frames_wall_clock_and_hardware_in_every_table(board, random_doc, tmp_path):
    """conventions.md section 7: entries are shown with their budgets; the budget column showed only env steps and
    minutes, and the overall tables had none."""
    from visual_robo_bench.evaluation.leaderboard import _fmt_budget, _fmt_hardware

    assert _fmt_hardware("Intel(R) Xeon(R) CPU @ 2.20GHz, 2 cores, 24 GiB RAM") == "Intel Xeon, 2 cores, 24 GiB RAM"
    assert _fmt_hardware("AMD EPYC 7B13 64-Core Processor, 16 cores, 126 GiB RAM, GPU NVIDIA H100 80GB HBM3") == \
        "AMD EPYC 7B13, 16 cores, 126 GiB RAM, GPU NVIDIA H100 80GB HBM3"
    assert len(_fmt_hardware("x" * 200)) == 80
    assert _fmt_budget({"env_steps": None, "rendered_frames": None, "wall_clock_s": None, "hardware": "h"}) == \
        "untrained"
    assert _fmt_budget({"env_steps": 10, "rendered_frames": 0, "wall_clock_s": 30.0, "hardware": ""}) == "10 steps, 30 s"
    better = _better(random_doc)
    better["budget"]["hardware"] = "Intel(R) Xeon(R) CPU @ 2.20GHz, 2 cores, 24 GiB RAM, GPU NVIDIA L4"
    submit_doc(board, random_doc, tmp_path)
    board.submit(write_json(better, tmp_path / "in" / "b.json"), name="better")
    board.build()
    md = (board.root / "README.md").read_text()
    budget = "100,000 steps, 50,000 frames, 10 min, Intel Xeon, 2 cores, 24 GiB RAM, GPU NVIDIA L4"
    overall = md.split("## Overall")[1].split("\n## ")[0]
    assert overall.count(f"| {budget} |") == 1 and "| untrained |" in overall  # the floor states no budget
    for task in TASKS:
        section = md.split(f"## {task}")[1].split("\n## ")[0]
        assert f"| {budget} |" in section
    assert html.escape(budget) in (board.root / "index.html").read_text()


def test_env_kwargs_equal_to_the_defaults_or_the_protocols_are_accepted(board, random_doc, tmp_path):
    """check_protocol refused any env_kwargs; as the harness's official flag, it now refuses only keywords that
    change a setting (the task's defaults and the protocol's own settings are no override)."""
    from visual_robo_bench.evaluation.leaderboard import Leaderboard

    doc = copy.deepcopy(random_doc)
    doc.pop("aggregates")
    for run in doc["runs"]:
        run["env_kwargs"] = {"image_size": [84, 84], "max_episode_steps": 1000}
    assert submit_doc(board, doc, tmp_path) == "random"
    terrain = {"runs": [{"env_id": "VRB/Go2Terrain-v0", "env_kwargs": {"domain_randomization": False,
                                                                       "curriculum": False},
                         "seed_base": 0, "episodes": [{"seed": 0}]} for _ in range(2)]}
    cfg = {**DEFAULT_CONFIG, "tracks": {}, "episodes": 1, "seed_base": 0, "min_seeds": 2}
    (tmp_path / "b2").mkdir()
    (tmp_path / "b2" / "config.json").write_text(json.dumps(cfg))
    Leaderboard(tmp_path / "b2").check_protocol(terrain)
    terrain["runs"][1]["env_kwargs"] = {"domain_randomization": True}
    with pytest.raises(ResultsError, match=r"runs/1: evaluated with settings overrides \{'domain_randomization': True\}"):
        Leaderboard(tmp_path / "b2").check_protocol(terrain)
