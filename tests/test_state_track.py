"""The leaderboards' ``state`` track (conventions.md 7): ``vrb evaluate --obs-mode state``, runs recording their
observation mode, and boards that never mix modes in a track or a per-task table."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from visual_robo_bench.cli import main
from visual_robo_bench.evaluation import RandomAgent, evaluate
from visual_robo_bench.evaluation.leaderboard import DEFAULT_CONFIG, Leaderboard, verify
from visual_robo_bench.evaluation.results import ResultsError, load, make_results, validate, write_json

TASKS = ["VRB/Walker-v1", "VRB/Hopper-v1"]
EPISODES = 3

#: Constant-action agents that refuse to act on pixels: they run only with ``obs_mode="state"``.
_STATE_AGENTS = '''
import numpy as np

class StateOnly:
    def __init__(self, env, value):
        self.a, self.value = env.single_action_space.shape[0], value

    def act(self, obs):
        if "pixels" in obs or "privileged" not in obs:
            raise RuntimeError(f"acted on the visual observation {sorted(obs)}")
        return np.full((len(obs["privileged"]), self.a), self.value, np.float32)

def s0(env):
    return StateOnly(env, 0.0)

def s1(env):
    return StateOnly(env, 0.3)
'''


def _board(root, **extra):
    """A board with a visual and a state track on :data:`TASKS` and the protocol's few episodes."""
    cfg = {**DEFAULT_CONFIG, "tracks": {"visual": TASKS, "state": TASKS}, "obs_modes": {"state": "state"},
           "episodes": EPISODES, "min_seeds": 2, "bootstrap_reps": 200, **extra}
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(cfg))
    return Leaderboard(root)


def _trained(doc, name):
    doc = copy.deepcopy(doc)
    doc["agent"]["name"] = name
    doc["budget"].update(env_steps=100_000, rendered_frames=0, wall_clock_s=600.0, num_envs=8)
    return doc


@pytest.fixture(scope="module")
def visual_random():
    """The random floor on :data:`TASKS`, evaluated from pixels (the default)."""
    evals = [(evaluate(RandomAgent(6 if "Walker" in t else 3, seed=s), t, episodes=EPISODES, num_envs=2,
                       progress=False), s) for t in TASKS for s in (0, 1)]
    return make_results(evals, agent_name="random", description="uniform random actions")


@pytest.fixture(scope="module")
def state_doc():
    """A trained-looking entry evaluated with obs_mode="state" (other random seeds than the floor's)."""
    evals = [(evaluate(RandomAgent(6 if "Walker" in t else 3, seed=s), t, episodes=EPISODES, num_envs=2,
                       progress=False, obs_mode="state"), s) for t in TASKS for s in (5, 6)]
    return _trained(make_results(evals, agent_name="expert", description="acts from privileged state"), "expert")


def test_state_evaluation_gives_the_policy_state_and_stays_official(monkeypatch):
    """The policy sees no pixels; obs_mode is recorded, never as an override: env_kwargs and official stay."""
    from visual_robo_bench.evaluation import harness

    seen = []

    class Probe:
        def act(self, obs):
            seen.append(sorted(obs))
            return np.zeros((len(obs["privileged"]), 3), np.float32)

    monkeypatch.setattr(harness, "protocol_for", lambda task: harness.EvalProtocol(episodes=2, num_envs=2))
    res = evaluate(Probe(), "VRB/Hopper-v1", progress=False, obs_mode="state", env_kwargs={"max_episode_steps": 5})
    assert "pixels" not in seen[0] and "privileged" in seen[0]
    assert res.obs_mode == "state" and res.env_kwargs == {"max_episode_steps": 5} and not res.official
    res = evaluate(Probe(), "VRB/Hopper-v1", progress=False, obs_mode="state")
    assert res.official and res.env_kwargs == {} and res.obs_mode == "state"
    assert evaluate("zero", "VRB/Hopper-v1", progress=False).obs_mode == "visual"
    # the older route, obs_mode in env_kwargs: an override (unofficial), and the run still says what it acted from
    res = evaluate(Probe(), "VRB/Hopper-v1", progress=False, env_kwargs={"obs_mode": "state"})
    assert res.obs_mode == "state" and not res.official
    with pytest.raises(ValueError, match="obs_mode must be one of visual, state"):
        evaluate("zero", "VRB/Hopper-v1", progress=False, obs_mode="pixels")


def test_cli_evaluate_obs_mode_state_records_it_per_run(tmp_path, capsys):
    from visual_robo_bench import cli_eval
    from visual_robo_bench.evaluation import harness

    assert cli_eval.OBS_MODES == harness.OBS_MODES
    out = tmp_path / "state.json"
    assert main(["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1", "--episodes", "1", "--obs-mode", "state",
                 "--training-seed", "0", "--out", str(out)]) == 0
    assert "obs_mode state" in capsys.readouterr().out
    run = load(out)["runs"][0]
    assert run["obs_mode"] == "state" and run["env_kwargs"] == {}
    out = tmp_path / "visual.json"
    assert main(["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1", "--episodes", "1", "--out", str(out)]) == 0
    assert load(out)["runs"][0]["obs_mode"] == "visual"
    assert main(["evaluate", "--agent", "zero", "--task", "VRB/Walker-v1", "--obs-mode", "state",
                 "--video", str(tmp_path / "v.gif")]) == 2
    assert "renders no pixels" in capsys.readouterr().err


def test_a_state_entry_is_only_in_the_state_track_and_its_own_tables(tmp_path, visual_random, state_doc):
    board = _board(tmp_path / "board")
    assert board.submit(write_json(visual_random, tmp_path / "in" / "random.json")) == "random"
    assert board.submit(write_json(state_doc, tmp_path / "in" / "expert.json")) == "expert"
    board.build()
    md = (board.root / "README.md").read_text()
    sections = {s.split("\n", 1)[0]: s for s in md.split("\n## ")[1:]}
    visual_track = sections["Overall: visual track (VRB/Walker-v1, VRB/Hopper-v1)"]
    state_track = sections["Overall: state track (VRB/Walker-v1, VRB/Hopper-v1)"]
    assert "| random |" in visual_track and "| expert |" not in visual_track
    assert "| expert |" in state_track and "| random |" not in state_track
    for task in TASKS:
        assert "| random |" in sections[task] and "| expert |" not in sections[task]
        assert "| expert |" in sections[f"{task} (state)"] and "| random |" not in sections[f"{task} (state)"]
        stem = task.replace("/", "_")
        assert (board.root / "plots" / f"{stem}_state.png").is_file() and (board.root / "plots" / f"{stem}.png").is_file()
    page = (board.root / "index.html").read_text()
    assert "id='VRB/Walker-v1-state'" in page and "plots/VRB_Walker-v1_state.png" in page
    assert (board.root / "plots" / "profile_state.png").is_file()


def test_mixed_observation_modes_are_refused(tmp_path, state_doc):
    doc = copy.deepcopy(state_doc)
    doc.pop("aggregates")
    doc["runs"][0]["obs_mode"] = "visual"
    validate(doc)  # each run alone is fine
    board = _board(tmp_path / "board")
    with pytest.raises(ResultsError, match=r"mix observation modes \(state: runs 1, 2, 3; visual: runs 0\).*"
                                           r"two results files"):
        board.submit(write_json(doc, tmp_path / "in" / "mixed.json"))
    assert not (board.root / "submissions").exists()


def test_runs_without_obs_mode_are_visual_and_unknown_modes_invalid(tmp_path, visual_random):
    doc = copy.deepcopy(visual_random)
    for run in doc["runs"]:
        del run["obs_mode"]  # as every file written before runs recorded it
    validate(doc)
    board = _board(tmp_path / "board")
    board.submit(write_json(doc, tmp_path / "in" / "old.json"))
    board.build()
    md = (board.root / "README.md").read_text()
    assert "| random |" in md.split("## Overall: visual track")[1].split("\n## ")[0]
    assert " (state)\n" not in md  # no state entry: no state tables
    doc["runs"][0]["obs_mode"] = "pixels"
    with pytest.raises(ResultsError, match="obs_mode"):
        validate(doc)


def test_verify_re_runs_a_state_entry_from_state(tmp_path, monkeypatch):
    (tmp_path / "state_only_agents.py").write_text(_STATE_AGENTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    evals = [(evaluate(f"state_only_agents:s{s}", "VRB/Walker-v1", episodes=EPISODES, num_envs=2, progress=False,
                       obs_mode="state"), s) for s in (0, 1)]
    assert not any(r.error for r, _ in evals)
    doc = _trained(make_results(evals, agent_name="stateful", description="state only"), "stateful")
    board = _board(tmp_path / "board", tracks={"visual": ["VRB/Walker-v1"], "state": ["VRB/Walker-v1"]},
                   verify={**DEFAULT_CONFIG["verify"], "seed_base": DEFAULT_CONFIG["seed_base"]})
    board.submit(write_json(doc, tmp_path / "in" / "stateful.json"))
    report = verify(board, "stateful", "state_only_agents:s{seed}", progress=False)
    task = report["tasks"]["VRB/Walker-v1"]
    assert report["obs_mode"] == "state" and task["error"] is None  # a visual re-run would have raised in act()
    assert report["verified"] and board.verified()["stateful"]["obs_mode"] == "state"
