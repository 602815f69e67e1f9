"""Results files: a run's robot-model provenance is checked against the installed models (conventions.md 7).

Robot models come from the offline copies (``VRB_MODEL_DIR``, set in conftest); nothing is downloaded.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from vrb_helpers import model_available, needs_model

from visual_robo_bench.cli import main
from visual_robo_bench.evaluation import evaluate
from visual_robo_bench.evaluation import results as results_mod
from visual_robo_bench.evaluation.leaderboard import DEFAULT_CONFIG
from visual_robo_bench.evaluation.results import (ResultsError, installed_provenance, load, make_results,
                                                  provenance_mismatch, read_json, validate, write_json)
from visual_robo_bench.models import MENAGERIE_COMMIT, ROBOTS, resolve_model

REPO_BOARD = Path(__file__).resolve().parents[1] / "leaderboards"
COMMITTED = sorted((REPO_BOARD / "submissions").glob("*.json")) + sorted((REPO_BOARD / "references").glob("*.json"))
GO2 = REPO_BOARD / "references" / "scripted-go2-v0.json"


@pytest.fixture(scope="module")
def walker_doc():
    """A results file of one short zero-action run on Walker-v1 (its model: dm_control's walker.xml)."""
    res = evaluate("zero", "VRB/Walker-v1", episodes=1, num_envs=1, env_kwargs={"max_episode_steps": 3},
                   progress=False)
    doc = make_results([(res, 0)], agent_name="zero", description="all-zero actions")
    assert doc["runs"][0]["model_provenance"]["xml_sha256"], "the run records its model"
    return doc


def _altered(doc, **changes):
    doc = copy.deepcopy(doc)
    doc["runs"][0]["model_provenance"].update(changes)
    return doc


def test_a_run_made_with_another_model_file_is_refused(walker_doc):
    installed = walker_doc["runs"][0]["model_provenance"]["xml_sha256"]
    doc = _altered(walker_doc, xml_sha256="0123456789abcdef")
    with pytest.raises(ResultsError) as err:
        validate(doc)
    msg = str(err.value)
    for part in ("runs/0 (VRB/Walker-v1, training seed 0)", "walker.xml", "'0123456789abcdef'", repr(installed),
                 "re-evaluate the policy with the installed models", "install the models the result was made with"):
        assert part in msg, (part, msg)


def test_an_unchanged_file_validates_and_machine_local_fields_are_not_compared(walker_doc, tmp_path):
    assert load(write_json(walker_doc, tmp_path / "r.json"))["runs"][0]["env_id"] == "VRB/Walker-v1"
    # another machine: another install path; another version of the package that ships the same file
    package, _ = walker_doc["runs"][0]["model_provenance"]["source"].split(" ")
    validate(_altered(walker_doc, path="/elsewhere/dm_control/suite/walker.xml", source=f"{package} 0.0.1"))


@pytest.mark.parametrize("provenance", [None, {}], ids=["missing", "empty"])
def test_a_run_without_provenance_is_accepted_unchecked(walker_doc, provenance, monkeypatch):
    """Files written before tasks recorded their models (committed entries among them) keep validating; the
    installed model is not even built for them."""
    doc = copy.deepcopy(walker_doc)
    if provenance is None:
        del doc["runs"][0]["model_provenance"]
    else:
        doc["runs"][0]["model_provenance"] = provenance

    def never(task_id):
        raise AssertionError(f"built {task_id} for a run without provenance")

    monkeypatch.setattr(results_mod, "installed_provenance", never)
    validate(doc)


@pytest.mark.parametrize("path", COMMITTED, ids=[f"{p.parent.name}/{p.name}" for p in COMMITTED])
def test_committed_results_files_validate(path):
    robots = {(r.get("model_provenance") or {}).get("robot") for r in read_json(path)["runs"]}
    missing = sorted(r for r in robots if r in ROBOTS and not model_available(r))
    if missing:
        pytest.skip(f"robot models unavailable offline: {missing}")
    load(path)


@needs_model("unitree_go2", "Go2 model unavailable offline (VRB_MODEL_DIR)")
def test_an_edited_model_file_refuses_the_results_made_with_the_original(tmp_path, monkeypatch):
    """The installed go2.xml edited (a model directory of its own): the committed Go2 result no longer matches."""
    original = resolve_model("unitree_go2")
    edited = tmp_path / "models" / "unitree_go2"
    edited.mkdir(parents=True)
    (edited / "assets").symlink_to(original.parent / "assets", target_is_directory=True)
    (edited / "go2.xml").write_text(original.read_text().replace("<mujoco ", "<!-- edited -->\n<mujoco ", 1))
    load(GO2)  # with the installed models
    monkeypatch.setenv("VRB_MODEL_DIR", str(edited.parent))
    assert installed_provenance("VRB/Go2-v0")["xml_sha256"] != read_json(GO2)["runs"][0]["model_provenance"][
        "xml_sha256"]
    with pytest.raises(ResultsError, match=r"runs/0 \(VRB/Go2-v0, training seed 0\): robot model file go2\.xml "
                                           r"\(unitree_go2\) has XML hash '[0-9a-f]{16}' in the results file but "
                                           r"'[0-9a-f]{16}' in the installed models .*re-evaluate"):
        load(GO2)


@needs_model("unitree_go2", "Go2 model unavailable offline (VRB_MODEL_DIR)")
def test_an_unavailable_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VRB_MODEL_DIR", str(tmp_path))
    with pytest.raises(ResultsError, match=r"runs/0 \(VRB/Go2-v0, training seed 0\): cannot check the robot model "
                                           r".*VRB_MODEL_DIR"):
        load(GO2)


def test_what_identifies_a_model():
    """Robot, XML hash, shipping package and robot_descriptions commit; never the path or how files were fetched."""
    installed = {"robot": "unitree_go2", "source": "model_dir", "commit": "", "path": "/a/unitree_go2/go2.xml",
                 "xml_sha256": "b72ce4d7572a010a"}
    same = {**installed, "source": "robot_descriptions", "commit": MENAGERIE_COMMIT,
            "path": f"/cache/mujoco_menagerie-{MENAGERIE_COMMIT}/mujoco_menagerie/unitree_go2/go2.xml"}
    assert provenance_mismatch(same, installed) is None
    assert provenance_mismatch({}, installed) is None
    other_commit = provenance_mismatch({**same, "commit": "f" * 40}, installed)
    assert "commit ffffffffffff" in other_commit and MENAGERIE_COMMIT[:12] in other_commit
    assert "go2.xml" in provenance_mismatch({**installed, "xml_sha256": "0" * 16}, installed)
    assert "robot model 'aloha'" in provenance_mismatch({**installed, "robot": "aloha"}, installed)
    walker = {"robot": "walker", "source": "dm_control 1.0.50", "commit": "", "path": "walker.xml",
              "xml_sha256": "e8b6dd3bb40826df"}
    assert provenance_mismatch({**walker, "source": "dm_control 9.9"}, walker) is None
    assert "package 'gymnasium'" in provenance_mismatch({**walker, "source": "gymnasium 1.4.0"}, walker)


def test_vrb_submit_refuses_another_model_file(walker_doc, tmp_path, capsys):
    board = tmp_path / "board"
    board.mkdir()
    (board / "config.json").write_text(json.dumps({**DEFAULT_CONFIG, "tracks": {"visual": ["VRB/Walker-v1"]}}))
    path = write_json(_altered(walker_doc, xml_sha256="0123456789abcdef"), tmp_path / "r.json")
    assert main(["submit", str(path), "--leaderboard-dir", str(board)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "rejected" in err and "walker.xml" in err and "0123456789abcdef" in err
    assert not list(board.glob("submissions/*.json"))  # nothing accepted


def test_a_new_entry_must_record_its_model(walker_doc, tmp_path):
    """validate() accepts a run without model_provenance (older files), so deleting it from a new file would pass
    the check above on the task hash alone: vrb submit refuses new runs without it where the installed task has a
    robot model file; runs carried over from an accepted entry are exempt."""
    from visual_robo_bench.evaluation.leaderboard import Leaderboard

    board = Leaderboard(tmp_path)
    board.check_provenance_recorded(walker_doc)  # recorded: fine
    for provenance in (None, {}):
        doc = copy.deepcopy(walker_doc)
        if provenance is None:
            del doc["runs"][0]["model_provenance"]
        else:
            doc["runs"][0]["model_provenance"] = provenance
        validate(doc)  # an old file's run: still valid
        with pytest.raises(ResultsError, match=r"runs/0 \(VRB/Walker-v1, training seed 0\): records no "
                                               r"model_provenance.*vrb evaluate --out"):
            board.check_provenance_recorded(doc)
        board.check_provenance_recorded(doc, carried_runs=doc["runs"])  # an accepted entry's run, carried over
