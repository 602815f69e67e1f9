"""Results files and leaderboards: accept, reject, build, verify."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from visual_robo_bench.evaluation import RandomAgent, evaluate
from visual_robo_bench.evaluation.leaderboard import DEFAULT_CONFIG, Leaderboard, verify
from visual_robo_bench.evaluation.results import ResultsError, load, make_results, validate, write_json

TASKS = ["VRB/Walker-v1", "VRB/Hopper-v0"]
EPISODES = 4


@pytest.fixture(scope="module")
def random_doc():
    evals = []
    for task in TASKS:
        for seed in (0, 1):
            agent = RandomAgent(6 if "Walker" in task else 3, seed=seed)
            evals.append((evaluate(agent, task, episodes=EPISODES, num_envs=2, progress=False), seed))
    return make_results(evals, agent_name="random", description="uniform random actions")


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
            "VRB/Hopper-v0": {"task_hash": "VRB/Hopper-v0:0000000000000000", "random": 0.0, "reference": 1.0,
                              "reference_source": "an older task version"}}
    (board.root / "reference_scores.json").write_text(json.dumps({"version": 1, "tasks": refs}))
    board.build()
    md = (board.root / "README.md").read_text()
    walker_section = md.split("## VRB/Walker-v1")[1]
    assert "| 0.25 |" in walker_section.split("\n## ")[0]  # (R - (R-1)) / ((R+3) - (R-1))
    assert f"reference R_ref = {walker + 3.0:.4g} (`references/x.json`)" in walker_section
    hopper_section = md.split("## VRB/Hopper-v0")[1].split("\n## ")[0]
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


def test_verify_zero_agent(board, tmp_path):
    evals = [(evaluate("zero", t, episodes=EPISODES, num_envs=2, progress=False), s) for t in TASKS for s in (0, 1)]
    doc = make_results(evals, agent_name="zero", description="all-zero actions")
    submit_doc(board, doc, tmp_path, name="zero.json")
    report = verify(board, "zero", "visual_robo_bench.evaluation.protocol:ZeroAgent", episodes=EPISODES,
                    progress=False)
    # held-out seeds give other episodes, but the zero agent's returns stay within the tolerance band or not;
    # the report must say which and record only verified entries
    assert set(report["tasks"]) == set(TASKS)
    for t in report["tasks"].values():
        assert np.isfinite(t["rerun_return"]) and t["error"] is None
    assert ("zero" in board.verified()) == report["verified"]


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


def test_reference_scores_script_takes_an_expert_only_above_the_floors(random_doc, tmp_path, monkeypatch):
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
        write_json(random_doc, root / "references" / "sdpg-walker-v1.json")  # Walker: the "shipped policy"
        write_json(expert, root / "references" / "state-ppo-hopper-v0.json")
        monkeypatch.setattr(sys, "argv", ["reference_scores.py", "--leaderboard-dir", str(root)])
        runpy.run_path(script, run_name="__main__")
        return json.loads((root / "reference_scores.json").read_text())["tasks"]

    from visual_robo_bench.evaluation.results import aggregates

    r_random, r_zero = aggregates(random_doc)["VRB/Hopper-v0"]["return"], aggregates(zero)["VRB/Hopper-v0"]["return"]
    assert r_random > r_zero  # random hops a little; all-zero actions fall flat
    below = levels(random_doc, zero)  # the "expert" (zero) does not beat the floor (random)
    assert below["VRB/Hopper-v0"]["reference"] is None
    assert "does not beat the floors" in below["VRB/Hopper-v0"]["reference_source"]
    assert below["VRB/Walker-v1"]["reference_source"] == "references/sdpg-walker-v1.json"
    above = levels(zero, random_doc)  # now the expert beats the floor
    assert above["VRB/Hopper-v0"]["reference"] == pytest.approx(r_random)
    assert above["VRB/Hopper-v0"]["random"] == pytest.approx(r_zero)
    assert above["VRB/Hopper-v0"]["reference_source"] == "references/state-ppo-hopper-v0.json"
    # ... but not the all-zero floor, which here is as good as the expert: no reference level
    tie = levels(zero, random_doc, zero_floor=random_doc)
    assert tie["VRB/Hopper-v0"]["reference"] is None
    # a scripted controller competes with the expert: the better of those that beat the floors is R_ref
    root = tmp_path / "scripted"
    write_json(zero, root / "submissions" / "random.json")
    write_json(zero, root / "references" / "state-ppo-hopper-v0.json")  # expert = floor: rejected
    write_json(random_doc, root / "references" / "scripted-hopper-v0.json")
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
