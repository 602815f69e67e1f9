"""The evaluation harness and the agent protocol."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from visual_robo_bench.evaluation import AgentLoadError, evaluate

SHORT = {"max_episode_steps": 30}


class ProprioAgent:
    """A deterministic agent that reads the observation (tests per-episode independence)."""

    name = "proprio-tanh"

    def act(self, obs):
        p = obs["proprio"]
        return np.tanh(p[:, :6] * 0.5).astype(np.float32)


def test_results_do_not_depend_on_batch_layout():
    a = evaluate(ProprioAgent(), "VRB/Walker-v1", episodes=5, num_envs=2, env_kwargs=SHORT, progress=False)
    b = evaluate(ProprioAgent(), "VRB/Walker-v1", episodes=5, num_envs=5, env_kwargs=SHORT, progress=False)
    assert [e.seed for e in a.episodes] == [1_000_000 + k for k in range(5)]
    for x, y in zip(a.episodes, b.episodes):
        assert (x.seed, x.length, x.terminated) == (y.seed, y.length, y.terminated)
        assert x.ret == pytest.approx(y.ret, abs=1e-9)
    assert not a.official and a.env_kwargs == SHORT


def test_summary_metrics_and_reward_terms():
    res = evaluate("zero", "VRB/Hopper-v0", episodes=3, num_envs=3, env_kwargs=SHORT, progress=False)
    s = res.summary()
    assert s["episodes"] == 3 and 0 <= s["success_once"] <= 1
    for e in res.episodes:
        assert e.ret == pytest.approx(sum(e.reward_terms.values()), rel=1e-9, abs=1e-9)
        assert "distance" in e.metrics
        assert e.length <= 30


def test_bad_agent_output_fails_episodes_not_harness():
    class Bad:
        name = "bad-shape"
        calls = 0

        def act(self, obs):
            self.calls += 1
            if self.calls == 3:
                return np.zeros((1, 2), np.float32)
            return np.zeros((len(obs["proprio"]), 6), np.float32)

    res = evaluate(Bad(), "VRB/Walker-v1", episodes=4, num_envs=2, env_kwargs=SHORT, progress=False)
    assert len(res.episodes) == 4
    failed = [e for e in res.episodes if e.agent_error]
    assert len(failed) == 2
    assert "bad-shape" in failed[0].agent_error and "step 2" in failed[0].agent_error


@pytest.fixture
def success_from_step_5(monkeypatch):
    """Make every episode a success from its 5th step on (success is otherwise out of reach in 30 steps)."""
    from visual_robo_bench.envs.vector_env import VRBVectorEnv

    step = VRBVectorEnv.step

    def patched(self, actions):
        obs, r, term, trunc, info = step(self, actions)
        info["success"] = info["elapsed_steps"] >= 5
        return obs, r, term, trunc, info

    monkeypatch.setattr(VRBVectorEnv, "step", patched)


def test_an_episode_the_agent_failed_is_never_a_success(success_from_step_5):
    class QuitWhileAhead:
        name = "quit-while-ahead"
        calls = 0

        def act(self, obs):
            self.calls += 1
            if self.calls == 8:
                raise RuntimeError("stop here")
            return np.zeros((len(obs["proprio"]), 6), np.float32)

    reached = evaluate("zero", "VRB/Walker-v1", episodes=2, num_envs=2, env_kwargs=SHORT, progress=False)
    assert all(e.success_once and e.success_at_end for e in reached.episodes)  # success is reachable
    res = evaluate(QuitWhileAhead(), "VRB/Walker-v1", episodes=2, num_envs=2, env_kwargs=SHORT, progress=False)
    assert [e.length for e in res.episodes] == [7, 7]
    for e in res.episodes:
        assert "stop here" in e.agent_error and not e.success_once and not e.success_at_end
    assert res.summary()["success_once"] == 0.0


def test_non_finite_metrics_are_left_out(monkeypatch):
    from visual_robo_bench.envs.vector_env import VRBVectorEnv
    from visual_robo_bench.evaluation.results import make_results, validate

    step = VRBVectorEnv.step

    def patched(self, actions):
        obs, r, term, trunc, info = step(self, actions)
        info["metrics"] = {**info.get("metrics", {}), "diverged": np.full(self.num_envs, np.nan)}
        return obs, r, term, trunc, info

    monkeypatch.setattr(VRBVectorEnv, "step", patched)
    res = evaluate("zero", "VRB/Walker-v1", episodes=2, num_envs=2, env_kwargs=SHORT, progress=False)
    assert all("distance" in e.metrics and "diverged" not in e.metrics for e in res.episodes)
    validate(make_results([(res, 0)], agent_name="zero", description=""))


@pytest.mark.parametrize("kwargs", [{"episodes": 0}, {"episodes": -3}, {"num_envs": 0}, {"episodes": 2.5}])
def test_counts_below_one_are_refused(kwargs):
    what, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError, match=f"{what} must be an integer >= 1, got {value}"):
        evaluate("zero", "VRB/Walker-v1", progress=False, **kwargs)


def test_nan_actions_are_scored_as_failure():
    class NaNAgent:
        def act(self, obs):
            return np.full((len(obs["proprio"]), 6), np.nan, np.float32)

    res = evaluate(NaNAgent(), "VRB/Walker-v1", episodes=2, num_envs=2, env_kwargs=SHORT, progress=False)
    assert all("NaN" in e.agent_error for e in res.episodes)


@pytest.fixture
def agent_module(tmp_path, monkeypatch):
    (tmp_path / "third_party_agent.py").write_text(textwrap.dedent('''
        import os, time
        import numpy as np

        class Good:
            name = "good"
            def __init__(self, env):
                self.a = env.single_action_space.shape[0]
            def act(self, obs):
                return np.zeros((len(obs["proprio"]), self.a), np.float32)

        class Crash:
            def act(self, obs):
                os._exit(3)

        class Hang:
            def act(self, obs):
                time.sleep(600)

        class Flaky:
            """Raises once, in its third act() call."""
            name = "flaky"
            def __init__(self, env):
                self.a, self.calls = env.single_action_space.shape[0], 0
            def act(self, obs):
                self.calls += 1
                if self.calls == 3:
                    raise RuntimeError("transient")
                return np.zeros((len(obs["proprio"]), self.a), np.float32)

        class Reseeds:
            """Tries to re-seed the evaluation env it is given (in-process, it used to be the env itself)."""
            def __init__(self, env):
                self.env = env
                self.a = env.single_action_space.shape[0]
            def reset(self, mask):
                self.env.reset(seed=[5] * len(mask))
            def act(self, obs):
                return np.zeros((len(obs["proprio"]), self.a), np.float32)

        class Exits(Flaky):
            """Raises SystemExit in its third act() call."""
            name = "exits"
            def act(self, obs):
                self.calls += 1
                if self.calls == 3:
                    raise SystemExit(4)
                return np.zeros((len(obs["proprio"]), self.a), np.float32)

        class InitRaises:
            def __init__(self, env):
                raise RuntimeError("no weights")

        class ResetFails(Flaky):
            """Raises in its second reset() call (when the third episode starts)."""
            name = "reset-fails"
            resets = 0
            def act(self, obs):
                return np.zeros((len(obs["proprio"]), self.a), np.float32)
            def reset(self, mask):
                self.resets += 1
                if self.resets == 2:
                    raise KeyError("no memory")
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return "third_party_agent"


def test_isolated_agent_runs_and_matches_in_process(agent_module):
    iso = evaluate(f"{agent_module}:Good", "VRB/Walker-v1", episodes=2, num_envs=2, env_kwargs=SHORT,
                   isolate=True, progress=False)
    local = evaluate(f"{agent_module}:Good", "VRB/Walker-v1", episodes=2, num_envs=2, env_kwargs=SHORT,
                     progress=False)
    assert iso.error is None
    assert [e.ret for e in iso.episodes] == [e.ret for e in local.episodes]


def test_agents_get_the_task_context_never_the_evaluation_env(agent_module):
    """In process, a factory received the evaluation env itself and could re-seed it (the results kept the
    protocol's seed numbers); now both modes pass an AgentContext, so the agent fails the episodes it touches."""
    for isolate in (False, True):
        res = evaluate(f"{agent_module}:Reseeds", "VRB/Walker-v1", episodes=2, num_envs=2, env_kwargs=SHORT,
                       isolate=isolate, progress=False)
        assert all("AttributeError" in e.agent_error and "'AgentContext' object has no attribute 'reset'"
                   in e.agent_error for e in res.episodes), isolate


def test_bad_agent_specs_and_raising_factories_are_load_errors(agent_module):
    for spec, message in ((":Good", "a factory is given as module:factory"),
                          (f"{agent_module}:InitRaises", "creating agent .* raised RuntimeError: no weights")):
        for isolate in (False, True):
            with pytest.raises(AgentLoadError, match=message):
                evaluate(spec, "VRB/Walker-v1", episodes=1, env_kwargs=SHORT, isolate=isolate, progress=False)


def test_crash_reports_the_exit_code(agent_module):
    res = evaluate(f"{agent_module}:Crash", "VRB/Walker-v1", episodes=1, num_envs=1, env_kwargs=SHORT,
                   isolate=True, progress=False)
    assert "process died while acting (exit code 3)" in res.error


@pytest.mark.parametrize("agent,failed", [("Flaky", 2), ("ResetFails", 1), ("Exits", 2)])
def test_a_raising_agent_scores_the_same_isolated_and_in_process(agent_module, agent, failed):
    """An exception in act() or reset() fails the episodes it hits, and the evaluation goes on, in both modes."""
    runs = [evaluate(f"{agent_module}:{agent}", "VRB/Walker-v1", episodes=3, num_envs=2, env_kwargs=SHORT,
                     isolate=isolate, progress=False) for isolate in (False, True)]
    for res in runs:
        assert [e.seed for e in res.episodes] == [1_000_000 + k for k in range(3)]
        assert sum(e.agent_error is not None for e in res.episodes) == failed and res.error
    local, isolated = ([(e.seed, e.ret, e.length, e.success_once, e.terminated, e.agent_error) for e in r.episodes]
                       for r in runs)
    assert local == isolated
    if agent == "ResetFails":
        assert runs[0].episodes[2].length == 0 and "in reset()" in runs[0].episodes[2].agent_error
        assert "KeyError" in runs[0].episodes[2].agent_error


def test_crashing_agent_cannot_take_the_harness_down(agent_module):
    res = evaluate(f"{agent_module}:Crash", "VRB/Walker-v1", episodes=3, num_envs=2, env_kwargs=SHORT,
                   isolate=True, progress=False)
    assert res.error and "died" in res.error
    # every episode is recorded, the unstarted third included, and none counts
    assert [e.seed for e in res.episodes] == [1_000_000 + k for k in range(3)]
    assert all(e.agent_error == res.error and not e.success_once for e in res.episodes)


def test_hanging_agent_times_out(agent_module):
    res = evaluate(f"{agent_module}:Hang", "VRB/Walker-v1", episodes=2, num_envs=2, env_kwargs=SHORT,
                   isolate=True, act_timeout=3, progress=False)
    assert res.error and "did not answer within 3 s" in res.error


def test_a_policy_trained_on_other_image_sizes_is_refused_before_any_episode(tmp_path):
    """A PPO policy trained with image_size=36,36 failed every episode at step 0 and still wrote an official-looking
    results file; the recorded training shapes are now checked when the file is loaded."""
    import torch

    path = tmp_path / "small.pt"
    torch.save({"agent": "ppo", "kind": "policy", "config": {"image_size": [36, 36]},
                "obs_space": {"pixels": {"shape": [9, 36, 36], "dtype": "uint8"},
                              "proprio": {"shape": [12], "dtype": "float32"}}}, path)
    with pytest.raises(AgentLoadError, match=r"trained on other observations than this env gives: pixels "
                                             r"\(84, 84, 9\) \(trained on \(9, 36, 36\)\); it was trained with "
                                             r"image_size=\(36, 36\)"):
        evaluate(str(path), "VRB/Walker-v1", episodes=1, progress=False)


def test_a_policy_file_without_torch_installed_is_a_clear_error():
    """torch is an extra: without it, evaluating a .pt policy (the README's first command) gave a traceback."""
    import subprocess
    import sys

    policy = Path(__file__).resolve().parents[1] / "policies" / "sdpg-walker-v1.pt"
    code = ("import sys\nsys.modules['torch'] = None  # as if torch were not installed\n"
            "from visual_robo_bench.cli import main\n"
            f"sys.exit(main(['evaluate', '--agent', {str(policy)!r}, '--task', 'VRB/Walker-v1', '--episodes', '1']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "needs PyTorch, which is not installed" in res.stderr and "whl/cpu" in res.stderr
    assert "Traceback" not in res.stderr


def test_unknown_agent_spec():
    with pytest.raises(AgentLoadError, match="no such file"):
        evaluate("not/a/file.zip", "VRB/Walker-v1", episodes=1, progress=False)


def test_video_written(tmp_path):
    out = tmp_path / "v.mp4"
    res = evaluate("random", "VRB/Walker-v1", episodes=1, num_envs=1, env_kwargs=SHORT, video=str(out),
                   progress=False)
    assert res.video == str(out) and out.stat().st_size > 1000


def test_model_provenance_reaches_results():
    import os

    from visual_robo_bench.envs import VRBVectorEnv
    from visual_robo_bench.evaluation.results import make_results

    if not os.environ.get("VRB_MODEL_DIR"):
        pytest.skip("no offline robot models")
    env = VRBVectorEnv("VRB/FrankaPick-v0", num_envs=1, obs_mode="state")
    prov = env.provenance
    env.close()
    assert prov["robot"] == "franka_emika_panda" and prov["source"] == "model_dir" and len(prov["xml_sha256"]) == 16
    res = evaluate("zero", "VRB/FrankaPick-v0", episodes=1, num_envs=1, env_kwargs={"max_episode_steps": 3},
                   progress=False)
    doc = make_results([(res, 0)], agent_name="zero", description="")
    assert doc["runs"][0]["model_provenance"] == prov


@pytest.mark.parametrize("task_id, robot, package", [("VRB/Hopper-v1", "hopper", "gymnasium"),
                                                      ("VRB/Walker-v1", "walker", "dm_control"),
                                                      ("VRB/Ant-v1", "ant", "gymnasium"),
                                                      ("VRB/Humanoid-v0", "humanoid", "dm_control"),
                                                      ("VRB/WalkerHurdle-v1", "walker", "dm_control")])
def test_models_from_installed_packages_record_their_provenance(task_id, robot, package):
    """tasks.md 2.5: the model's source goes into every results file, also for gymnasium's and dm_control's."""
    import hashlib
    from importlib.metadata import version
    from pathlib import Path

    from visual_robo_bench.envs import VRBVectorEnv

    env = VRBVectorEnv(task_id, num_envs=1, obs_mode="state")
    prov = env.provenance
    env.close()
    assert prov["robot"] == robot and prov["source"] == f"{package} {version(package)}"
    assert Path(prov["path"]).name == f"{robot}.xml"
    assert prov["xml_sha256"] == hashlib.sha256(Path(prov["path"]).read_bytes()).hexdigest()[:16]


def test_shipped_policy_runs_the_main_job(tmp_path):
    from pathlib import Path

    from visual_robo_bench.cli import main

    policy = Path(__file__).resolve().parents[1] / "policies" / "sdpg-walker-v1.pt"
    out, video = tmp_path / "r.json", tmp_path / "v.mp4"
    code = main(["evaluate", "--agent", str(policy), "--task", "VRB/Walker-v1", "--episodes", "4",
                 "--out", str(out), "--video", str(video)])
    assert code == 0 and out.exists() and video.stat().st_size > 1000
    from visual_robo_bench.evaluation.results import load

    doc = load(out)
    assert doc["runs"][0]["env_id"] == "VRB/Walker-v1" and len(doc["runs"][0]["episodes"]) == 4
    # the policy file's training config is recorded (it was {})
    assert doc["agent"]["config"]["task"] == "VRB/Walker-v1" and "num_perturbations" in doc["agent"]["config"]
    # the shipped policy is deterministic and better than doing nothing on these seeds
    zero = evaluate("zero", "VRB/Walker-v1", episodes=4, progress=False).summary()["return"]
    assert doc["aggregates"]["VRB/Walker-v1"]["return"] > zero


def test_renderer_info_after_an_evaluation_closed_its_renderers():
    """Results files record the GL renderer even when no context is current any more."""
    from visual_robo_bench.render.gl import renderer_info

    evaluate("random", "VRB/Hopper-v0", episodes=1, num_envs=1, env_kwargs={"max_episode_steps": 3}, progress=False)
    info = renderer_info()
    assert "error" not in info and info["renderer"], info


def test_renderer_info_with_the_backend_chosen_automatically():
    """With MUJOCO_GL unset (the backend chosen at run time, after mujoco fixed its GLFW default context class),
    the query still makes a context of the chosen backend instead of recording an error."""
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    code = ("import mujoco, json\nfrom visual_robo_bench.render.gl import renderer_info\n"
            "print(json.dumps(renderer_info()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert "error" not in info and info["renderer"] and info["backend"] in ("egl", "osmesa"), info


def test_official_means_the_full_standard_protocol(monkeypatch):
    """``official`` said yes for --episodes 3 or a custom seed base (it only looked at env_kwargs); it now needs
    the protocol's episode count and seed base as well (here a protocol of 2 episodes keeps the test fast)."""
    from visual_robo_bench.evaluation import harness

    monkeypatch.setattr(harness, "protocol_for", lambda task: harness.EvalProtocol(episodes=2, num_envs=2))
    run = lambda **kw: evaluate("zero", "VRB/Hopper-v1", progress=False, **kw).official  # noqa: E731
    assert run() and run(episodes=2, seed_base=harness.PUBLIC_SEED_BASE)
    assert not run(episodes=1)
    assert not run(seed_base=harness.PUBLIC_SEED_BASE + 5)
    assert not run(env_kwargs=SHORT)


def _levels(task_hash_of):
    """reference_scores.json's levels: Hopper-v1 from -1000 (0) to 1000 (1); Walker-v1's of another task hash."""
    return {"VRB/Hopper-v1": {"random": -1000.0, "reference": 1000.0, "task_hash": task_hash_of("VRB/Hopper-v1")},
            "VRB/Walker-v1": {"random": 0.0, "reference": 1.0, "task_hash": "VRB/Walker-v1:0000000000000000"}}


def test_normalized_score_uses_the_task_versions_levels(tmp_path, monkeypatch):
    """EvalResult.normalized_score: (R - R_random) / (R_ref - R_random) of the mean return, as the leaderboards
    compute it; None without levels for this task version. Not part of summary() or of results files."""
    from visual_robo_bench.evaluation import EpisodeResult, EvalResult
    from visual_robo_bench.evaluation.results import make_results, task_hash

    def result(task):
        return EvalResult(task_id=task, agent="a", episodes=[EpisodeResult(seed=0, ret=-500.0),
                                                             EpisodeResult(seed=1, ret=700.0)],
                          seed_base=0, env_kwargs={}, official=False, wall_clock_s=0.0, env_steps=0)

    levels = _levels(task_hash)
    assert result("VRB/Hopper-v1").normalized_score(levels) == pytest.approx(0.55)  # mean return 100
    assert result("VRB/Walker-v1").normalized_score(levels) is None  # measured on another definition
    assert result("VRB/Ant-v1").normalized_score(levels) is None  # no levels
    no_reference = {"VRB/Hopper-v1": {**levels["VRB/Hopper-v1"], "reference": None}}
    assert result("VRB/Hopper-v1").normalized_score(no_reference) is None
    # default: the levels of ./leaderboards when there is one
    (tmp_path / "leaderboards").mkdir()
    (tmp_path / "leaderboards" / "reference_scores.json").write_text(json.dumps({"tasks": levels}))
    monkeypatch.chdir(tmp_path)
    assert result("VRB/Hopper-v1").normalized_score() == pytest.approx(0.55)
    assert "normalized" not in json.dumps(make_results([(result("VRB/Hopper-v1"), 0)], agent_name="a",
                                                       description=""))
    assert not any("normalized" in k for k in result("VRB/Hopper-v1").summary())


def test_evaluate_prints_the_normalized_score(tmp_path, monkeypatch, capsys):
    """vrb evaluate's table has a normalized column (0 = random floor, 1 = reference level) from the levels of
    ./leaderboards (else the installed copy), "-" where the task version has none."""
    from visual_robo_bench.cli import main
    from visual_robo_bench.evaluation.results import task_hash

    (tmp_path / "leaderboards").mkdir()
    (tmp_path / "leaderboards" / "reference_scores.json").write_text(json.dumps({"tasks": _levels(task_hash)}))
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--agent", "zero", "--task", "VRB/Hopper-v1", "--task", "VRB/Walker-v1",
                 "--episodes", "1", "--num-envs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if "normalized" in line)
    columns = [c.strip() for c in header.strip("┃ ").split("┃")]
    assert columns == ["task", "episodes", "return", "normalized", "success_once", "success_at_end", "length",
                       "official"]
    rows = {cells[0]: dict(zip(columns, cells)) for line in lines if line.startswith("│")
            for cells in [[c.strip() for c in line.strip("│ ").split("│")]]}
    hopper = rows["VRB/Hopper-v1"]
    assert float(hopper["normalized"]) == pytest.approx((float(hopper["return"]) + 1000.0) / 2000.0, abs=1e-3)
    assert rows["VRB/Walker-v1"]["normalized"] == "-"


def test_evaluate_takes_the_levels_from_leaderboard_dir(tmp_path, monkeypatch, capsys):
    """--leaderboard-dir DIR gives the levels of the normalized column (over ./leaderboards); a DIR without
    reference_scores.json is a one-line error before anything is evaluated."""
    from visual_robo_bench.cli import main
    from visual_robo_bench.evaluation.results import task_hash

    mine = tmp_path / "mine"
    mine.mkdir()
    levels = _levels(task_hash)
    (mine / "reference_scores.json").write_text(json.dumps({"tasks": levels}))
    (tmp_path / "leaderboards").mkdir()  # the checkout's levels: other ones
    shifted = {"VRB/Hopper-v1": {**levels["VRB/Hopper-v1"], "random": -3000.0}}
    (tmp_path / "leaderboards" / "reference_scores.json").write_text(json.dumps({"tasks": shifted}))
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--agent", "zero", "--task", "VRB/Hopper-v1", "--episodes", "1", "--num-envs", "1",
                 "--leaderboard-dir", str(mine)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if "normalized" in line)
    columns = [c.strip() for c in header.strip("┃ ").split("┃")]
    row = dict(zip(columns, (c.strip() for c in next(line for line in lines if "VRB/Hopper-v1" in line)
                             .strip("│ ").split("│"))))
    assert float(row["normalized"]) == pytest.approx((float(row["return"]) + 1000.0) / 2000.0, abs=1e-3)

    assert main(["evaluate", "--agent", "zero", "--task", "VRB/Hopper-v1", "--leaderboard-dir",
                 str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert "has no reference_scores.json" in captured.err and "standard protocol" not in captured.out


def test_env_kwargs_that_restate_the_protocol_keep_a_run_official(monkeypatch):
    """Any env_kwargs made a run unofficial, also values equal to the task's defaults or to the protocol's own
    settings (Go2Terrain's domain_randomization=False, curriculum=False); only keywords that change a setting
    do now, and every keyword that is not a task setting (obs_mode, cameras, ...) still does."""
    from visual_robo_bench.evaluation import harness
    from visual_robo_bench.evaluation.harness import effective_overrides

    assert effective_overrides("VRB/Go2Terrain-v0", {"domain_randomization": False, "curriculum": False}) == {}
    assert effective_overrides("VRB/Go2Terrain-v0", {"domain_randomization": True}) == {"domain_randomization": True}
    assert effective_overrides("VRB/Walker-v1", {"image_size": [84, 84], "frame_stack": 3,
                                                 "max_episode_steps": 1000, "render_profile": {"shadows": False}}) == {}
    changed = {"image_size": (64, 64), "render_profile": {"shadows": True}, "obs_mode": "visual",
               "cameras": ("side",), "frame_skip": 2, "frame_stack": "three"}
    assert effective_overrides("VRB/Walker-v1", changed) == changed  # pixels, unknown keys, refused values
    monkeypatch.setattr(harness, "protocol_for", lambda task: harness.EvalProtocol(episodes=2, num_envs=2))
    same = evaluate("zero", "VRB/Hopper-v1", env_kwargs={"image_size": (84, 84), "frame_stack": 3}, progress=False)
    assert same.official and same.env_kwargs == {"image_size": (84, 84), "frame_stack": 3}  # recorded as given
    assert not evaluate("zero", "VRB/Hopper-v1", env_kwargs={"frame_stack": 2}, progress=False).official


def test_results_record_the_git_sha_versions_and_hardware(tmp_path, monkeypatch):
    """Results files lacked the git SHA of the VRB code, the versions of most packages a result depends on, and the
    RAM and GPU of the hardware (conventions.md section 7); the new fields are optional in the schema. A SHA
    alone hid uncommitted edits of the checkout: vrb_git_dirty says whether there were any."""
    import copy
    import shutil
    import subprocess
    import sys
    import types
    from importlib import metadata

    from visual_robo_bench.evaluation import results
    from visual_robo_bench.evaluation.results import (ResultsError, hardware, make_results, validate, vrb_git_dirty,
                                                      vrb_git_sha)

    res = evaluate("zero", "VRB/Hopper-v1", episodes=1, num_envs=1, env_kwargs={"max_episode_steps": 3},
                   progress=False)
    doc = validate(make_results([(res, 0)], agent_name="zero", description=""))
    repo = Path(__file__).resolve().parents[1]
    runs_from_checkout = Path(results.__file__).resolve().parents[2] == repo and (repo / ".git").exists()
    if runs_from_checkout:  # an editable install: the SHA of the checkout
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert doc["vrb_git_sha"] == head.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True).stdout
        assert doc["vrb_git_dirty"] is bool(status.strip())
    else:  # installed into site-packages (CI's `pip install .`): which commit it was built from is unknown
        assert doc["vrb_git_sha"] is None and doc["vrb_git_dirty"] is None
    assert vrb_git_sha(tmp_path) is None and vrb_git_dirty(tmp_path) is None  # not a checkout
    if shutil.which("git"):  # a checkout: clean; an untracked file does not count, a changed tracked file does
        clone = tmp_path / "clone"
        subprocess.run(["git", "init", "-q", str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q",
                        "--allow-empty", "-m", "x"], check=True)
        (clone / "f.txt").write_text("a")
        assert vrb_git_sha(clone) is not None and vrb_git_dirty(clone) is False
        subprocess.run(["git", "-C", str(clone), "add", "f.txt"], check=True)
        assert vrb_git_dirty(clone) is True
    validate({**doc, "vrb_git_dirty": None})
    with pytest.raises(ResultsError, match="vrb_git_dirty"):
        validate({**doc, "vrb_git_dirty": "yes"})
    (tmp_path / ".git" / "refs" / "heads").mkdir(parents=True)  # without the git program: read .git itself
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / ".git" / "refs" / "heads" / "main").write_text("ab" * 20 + "\n")
    monkeypatch.setattr(results.shutil, "which", lambda name: None)
    assert vrb_git_sha(tmp_path) == "ab" * 20
    monkeypatch.undo()
    for pkg in ("rliable", "stable_baselines3", "imageio", "gymnasium_robotics", "robot_descriptions", "ray",
                "onnxruntime", "tensorboard", "imageio_ffmpeg", "mujoco_warp"):
        try:
            assert doc["versions"][pkg] == metadata.version(pkg)
        except metadata.PackageNotFoundError:
            assert pkg not in doc["versions"]  # present-only
    assert doc["versions"]["torch"] == metadata.version("torch") and "python" in doc["versions"]
    assert "GiB RAM" in doc["budget"]["hardware"] and "cores" in doc["budget"]["hardware"]
    old = copy.deepcopy(doc)
    del old["vrb_git_sha"]
    validate(old)  # the committed submissions have no SHA
    validate({**doc, "vrb_git_sha": None})
    with pytest.raises(ResultsError, match="vrb_git_sha"):
        validate({**doc, "vrb_git_sha": "not a sha"})
    # the GPU: from torch only when the process already initialized CUDA, never by importing torch
    cuda = types.SimpleNamespace(is_initialized=lambda: True, device_count=lambda: 2,
                                 get_device_name=lambda i: "NVIDIA Fake 80GB")
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    assert hardware().endswith("GiB RAM, GPU 2x NVIDIA Fake 80GB")
    code = ("import sys\nfrom visual_robo_bench.evaluation.results import hardware\nhardware()\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]


def test_evaluate_out_records_the_config_of_vrb_policy_files(tmp_path):
    """vrb evaluate --out wrote agent.config {} also for VRB .pt policies, which carry their training config; with
    one file per training seed it records the settings the files share."""
    import torch

    from visual_robo_bench.cli_eval import _policies_config
    from visual_robo_bench.evaluation.results import policy_config

    shipped = Path(__file__).resolve().parents[1] / "policies" / "sdpg-walker-v1.pt"
    config = policy_config(shipped)
    assert config["task"] == "VRB/Walker-v1" and {"num_nominal", "num_perturbations", "horizon"} <= set(config)
    assert config["preset"]["name"] == "sdpg:VRB/Walker-v1"  # and the settings its training run changed
    for seed in (0, 1):
        torch.save({"agent": "sdpg", "kind": "policy", "config": {"seed": seed, "horizon": 16, "hidden": (64, 64)}},
                   tmp_path / f"p-s{seed}.pt")
    specs = [str(tmp_path / f"p-s{seed}.pt") for seed in (0, 1)]
    assert _policies_config(specs) == {"horizon": 16, "hidden": [64, 64]}  # the seed differs: left out
    assert _policies_config(specs[:1]) == {"seed": 0, "horizon": 16, "hidden": [64, 64]}
    assert _policies_config(["random"]) == {} and _policies_config(["pkg.mod:factory"]) == {}
    torch.save({"weights": 1}, tmp_path / "other.pt")
    assert policy_config(tmp_path / "other.pt") is None


@pytest.mark.parametrize(("agent", "key", "value"),
                         [("sdpg", "horizon", 8), ("ppo", "n_epochs", 5), ("drqv2", "batch_size", 64),
                          ("random", "max_epochs", 7)])
def test_results_name_the_agents_preset_and_the_settings_that_change_it(tmp_path, agent, key, value):
    """conventions.md 7 asks results to record the full config "including B/M/T for SDPG and its preset name":
    agent.config carried the config but not which preset it started from, nor what was changed. ``preset`` names
    the installed preset and the --set overrides (seed left out) that rebuild the config from it."""
    import importlib

    import torch

    from visual_robo_bench.agents import AGENTS
    from visual_robo_bench.cli_eval import _policies_config
    from visual_robo_bench.evaluation.results import policy_config
    from visual_robo_bench.train import preset_overrides

    mod = importlib.import_module(AGENTS[agent])
    cfg = mod.make_config("VRB/Hopper-v1", {key: value, "seed": 7})
    assert mod.make_config("VRB/Hopper-v1", {}).to_dict()[key] != value
    preset = preset_overrides(agent, cfg.to_dict())
    assert preset == {"name": f"{agent}:VRB/Hopper-v1", "overrides": {key: value}}
    assert mod.make_config("VRB/Hopper-v1", {**preset["overrides"], "seed": 7}).to_dict() == cfg.to_dict()
    for seed in (0, 1):  # one policy file per training seed: the preset is shared, so it stays in agent.config
        torch.save({"agent": agent, "kind": "policy", "config": {**cfg.to_dict(), "seed": seed}},
                   tmp_path / f"p-s{seed}.pt")
    assert policy_config(tmp_path / "p-s0.pt")["preset"] == preset
    assert _policies_config([str(tmp_path / f"p-s{seed}.pt") for seed in (0, 1)])["preset"] == preset
    # no claim where the installed VRB cannot tell: an unknown task, an unknown agent, another agent's keys
    assert preset_overrides(agent, {**cfg.to_dict(), "task": "VRB/NoSuchTask-v0"}) is None
    assert preset_overrides("nosuchagent", cfg.to_dict()) is None
    assert preset_overrides(agent, {**cfg.to_dict(), "not_a_key": 1}) is None


def test_results_from_runs_takes_the_learning_curve_from_the_periodic_evaluations(tmp_path, monkeypatch):
    """scripts/results_from_runs.py: with eval_return logged by every run (vrb train --set eval_interval=N), the
    results file's learning curve is those evaluations (conventions.md 6), not the training episodes' returns."""
    import csv
    import json
    import runpy
    import sys
    from pathlib import Path

    from visual_robo_bench.evaluation.results import load, make_results, write_json

    res = evaluate("zero", "VRB/Hopper-v1", progress=False)  # the standard protocol: reused, not re-evaluated
    runs = []
    for seed in range(3):
        run = tmp_path / f"run{seed}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"config": {"seed": seed, "num_envs": 4}}))
        with (run / "progress.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, ["epoch", "env_steps", "frames", "wall_s", "episode_return", "eval_return"])
            w.writeheader()
            for epoch in range(1, 7):  # evaluations at epochs 2, 4, 6
                w.writerow({"epoch": epoch, "env_steps": 100 * epoch, "frames": 10 * epoch, "wall_s": epoch,
                            "episode_return": -1.0, "eval_return": 10.0 * epoch + seed if epoch % 2 == 0 else "nan"})
        write_json(make_results([(res, seed)], agent_name="zero", description=""), run / "eval_results.json")
        runs.append(str(run))
    out = tmp_path / "results.json"
    script = str(Path(__file__).resolve().parents[1] / "scripts" / "results_from_runs.py")
    monkeypatch.setattr(sys, "argv", [script, "--name", "demo", "--task", "VRB/Hopper-v1", "--out", str(out), *runs])
    runpy.run_path(script, run_name="__main__")
    curve = load(out)["learning_curves"]["VRB/Hopper-v1"]
    assert [(p["env_steps"], p["return"]) for p in curve] == [(200.0, 21.0), (400.0, 41.0), (600.0, 61.0)]
    # without eval_return in every run: the training episodes' returns, every row
    text = (tmp_path / "run0" / "progress.csv").read_text().splitlines()
    (tmp_path / "run0" / "progress.csv").write_text("\n".join(line.rsplit(",", 1)[0] for line in text) + "\n")
    runpy.run_path(script, run_name="__main__")
    curve = load(out)["learning_curves"]["VRB/Hopper-v1"]
    assert [p["return"] for p in curve] == [-1.0] * 6
