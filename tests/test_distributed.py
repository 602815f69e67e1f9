"""Distributed evaluation sweeps and rollout collection (``evaluation/distributed.py``, ``vrb evaluate --ray``).

The Ray tests share one local Ray instance (2 CPUs, module scope) and are skipped when Ray is not
installed; the local-path and error tests run without it. Tiny settings: 36x36 images, 12-step
episodes, 1-2 episodes per cell.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from visual_robo_bench.evaluation import evaluate
from visual_robo_bench.evaluation.distributed import (RayUnavailableError, RolloutError, SweepError, agent_results,
                                                      collect_rollouts, evaluate_sweep, load_rollouts, load_sweep,
                                                      worker_env)
from visual_robo_bench.evaluation.results import make_results, validate

TINY = {"image_size": (36, 36), "max_episode_steps": 12}
CELL = {"episodes": 2, "num_envs": 2, "env_kwargs": TINY}
AGENTS_MODULE = "vrb_sweep_test_agents"
PROPRIO = f"{AGENTS_MODULE}:Proprio"
TASKS = ["VRB/Hopper-v0", "VRB/Walker-v1"]

_AGENTS_SOURCE = '''
    """Test agents for test_distributed.py (written by its fixture)."""
    import os
    import signal
    from pathlib import Path

    import numpy as np

    MARKER = Path(__file__).with_name("died-once.marker")


    class Proprio:
        """Deterministic and observation-dependent."""

        name = "proprio-tanh"

        def __init__(self, env):
            self.a = env.single_action_space.shape[0]

        def act(self, obs):
            p = obs["proprio"]
            reps = -(-self.a // p.shape[1])
            return np.tanh(0.5 * np.tile(p, reps)[:, : self.a]).astype(np.float32)


    def die_once(env):
        """Kills its own process the first time (a worker lost mid-sweep), then acts as Proprio."""
        if not MARKER.exists():
            MARKER.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return Proprio(env)


    class BadShape:
        def act(self, obs):
            return np.zeros((1, 2), np.float32)


    class EnvMark(Proprio):
        """Named after an environment variable of the process it runs in."""

        def __init__(self, env):
            super().__init__(env)
            self.name = "mark-" + os.environ.get("VRB_SWEEP_TEST_MARK", "missing")
'''


@pytest.fixture(scope="module")
def agents_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sweep_agents")
    (d / f"{AGENTS_MODULE}.py").write_text(textwrap.dedent(_AGENTS_SOURCE))
    return d


@pytest.fixture
def agents(agents_dir, monkeypatch) -> Path:
    """The test agents importable here (sys.path) and in Ray workers (the driver's PYTHONPATH)."""
    monkeypatch.syspath_prepend(str(agents_dir))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(agents_dir), os.environ.get("PYTHONPATH")])))
    return agents_dir


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("this process is already connected to Ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=100 * 2**20)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, agents_dir) -> dict:
    """The reference: a sweep without Ray (2 agents x 2 tasks x 2 seeds)."""
    sys.path.insert(0, str(agents_dir))
    try:
        return evaluate_sweep(["random", PROPRIO], TASKS, [0, 1], out=tmp_path_factory.mktemp("local") / "s.json",
                              **CELL)
    finally:
        sys.path.remove(str(agents_dir))


def _text(capsys) -> str:
    """Captured stdout with rich's line wrapping undone."""
    return " ".join(capsys.readouterr().out.split())


def _cells(doc: dict) -> dict[tuple, dict]:
    return {(e["agent"], e["task"], e["seed"]): e for e in doc["cells"]}


# ----------------------------------------------------------------------------- without Ray


def test_local_sweep_cells_are_what_evaluate_gives(local_sweep, agents):
    cells = _cells(local_sweep)
    assert sorted(cells) == sorted((a, t, s) for a in ("random", PROPRIO) for t in TASKS for s in (0, 1))
    for (agent, task, seed), e in cells.items():
        assert e["status"] == "ok" and e["error"] is None and e["agent_error"] is None
        validate(e["results"])
        run = e["results"]["runs"][0]
        assert (run["env_id"], run["training_seed"], run["seed_base"]) == (task, seed, 1_000_000)
        assert [ep["seed"] for ep in run["episodes"]] == [1_000_000, 1_000_001]
    # one cell against evaluate() + make_results() with the same arguments
    res = evaluate(PROPRIO, "VRB/Walker-v1", episodes=2, num_envs=2, env_kwargs=TINY, progress=False)
    ref = json.loads(json.dumps(make_results([(res, 1)], agent_name=res.agent, description=""), default=float))
    got = cells[(PROPRIO, "VRB/Walker-v1", 1)]["results"]
    assert got["runs"] == ref["runs"] and got["agent"] == ref["agent"] and got["aggregates"] == ref["aggregates"]
    assert got["agent"]["name"] == "proprio-tanh" and not got["runs"][0]["official"]
    # the training seed labels the run; the protocol's episode seeds are the same for every seed
    assert cells[("random", "VRB/Hopper-v0", 0)]["results"]["runs"][0]["episodes"] == \
        cells[("random", "VRB/Hopper-v0", 1)]["results"]["runs"][0]["episodes"]
    merged = agent_results(local_sweep, PROPRIO)
    assert {(r["env_id"], r["training_seed"]) for r in merged["runs"]} == {(t, s) for t in TASKS for s in (0, 1)}
    assert set(merged["aggregates"]) == set(TASKS)
    # a template agent (one policy file per training seed) names the entry, not its first cell's file; an agent's
    # own name is kept
    template = PROPRIO + "{seed}"
    relabelled = json.loads(json.dumps(local_sweep))
    for e in relabelled["cells"]:
        if e["agent"] == PROPRIO:
            e["agent"] = template
    assert agent_results(relabelled, template)["agent"]["name"] == "proprio-tanh"
    for e in relabelled["cells"]:
        if e["agent"] == template:  # as a policy file is named: by its path
            e["results"]["agent"]["name"] = template.format(seed=e["seed"])
    assert agent_results(relabelled, template)["agent"]["name"] == template


def test_interrupted_sweep_resumes_without_repeating_cells(tmp_path):
    out = tmp_path / "sweep.json"
    ran: list[tuple] = []

    def interrupt_after_two(entry):
        ran.append((entry["agent"], entry["task"], entry["seed"]))
        if len(ran) == 2:
            raise KeyboardInterrupt

    kw = {"out": out, "episodes": 1, "num_envs": 1, "env_kwargs": TINY}
    with pytest.raises(KeyboardInterrupt):
        evaluate_sweep(["zero"], ["VRB/Hopper-v0"], [0, 1, 2], on_cell=interrupt_after_two, **kw)
    first = load_sweep(out)
    assert [(e["agent"], e["seed"]) for e in first["cells"]] == [("zero", 0), ("zero", 1)]

    again: list[tuple] = []
    doc = evaluate_sweep(["zero"], ["VRB/Hopper-v0"], [0, 1, 2],
                         on_cell=lambda e: again.append((e["agent"], e["task"], e["seed"])), **kw)
    assert again == [("zero", "VRB/Hopper-v0", 2)]
    assert [e["seed"] for e in doc["cells"]] == [0, 1, 2]
    assert doc["cells"][:2] == first["cells"]  # the finished cells were kept as they were
    assert load_sweep(out) == doc and not (tmp_path / ".sweep.json.lock").exists()
    # nothing left to do: the file stays as it is
    assert evaluate_sweep(["zero"], ["VRB/Hopper-v0"], [0, 1, 2], on_cell=again.append, **kw) == doc
    assert len(again) == 1
    # another protocol cannot be mixed into the file
    with pytest.raises(SweepError, match="not comparable"):
        evaluate_sweep(["zero"], ["VRB/Hopper-v0"], [3], out=out, episodes=2, num_envs=1, env_kwargs=TINY)


def test_bad_cell_is_recorded_and_retried_on_request(tmp_path):
    out = tmp_path / "sweep.json"
    kw = {"out": out, "episodes": 1, "num_envs": 1, "env_kwargs": TINY}
    doc = evaluate_sweep(["zero", "no/such/policy.zip"], ["VRB/Hopper-v0"], [0], **kw)
    cells = _cells(doc)
    bad = cells[("no/such/policy.zip", "VRB/Hopper-v0", 0)]
    assert bad["status"] == "error" and bad["results"] is None
    assert "AgentLoadError" in bad["error"] and "no such file" in bad["error"] and bad["traceback"]
    assert cells[("zero", "VRB/Hopper-v0", 0)]["status"] == "ok"
    ran = []
    evaluate_sweep(["zero", "no/such/policy.zip"], ["VRB/Hopper-v0"], [0], on_cell=ran.append, **kw)
    assert ran == []  # an error cell counts as done ...
    doc = evaluate_sweep(["zero", "no/such/policy.zip"], ["VRB/Hopper-v0"], [0], on_cell=ran.append,
                         retry_errors=True, **kw)
    assert [e["agent"] for e in ran] == ["no/such/policy.zip"]  # ... until retry_errors
    assert len(doc["cells"]) == 2 and len(load_sweep(out)["cells"]) == 2
    with pytest.raises(SweepError, match="no successful cell"):
        agent_results(doc, "no/such/policy.zip")


def test_sweep_input_errors(tmp_path):
    out = tmp_path / "s.json"
    with pytest.raises(SweepError, match="agent values repeat"):
        evaluate_sweep(["zero", "zero"], ["VRB/Hopper-v0"], out=out)
    with pytest.raises(SweepError, match="unknown task 'VRB/Nope-v0'"):
        evaluate_sweep(["zero"], ["VRB/Nope-v0"], out=out)
    with pytest.raises(SweepError, match="placeholders"):
        evaluate_sweep(["runs/{agent}-{seed}.pt"], ["VRB/Hopper-v0"], out=out)
    with pytest.raises(SweepError, match="as strings"):
        evaluate_sweep([object()], ["VRB/Hopper-v0"], out=out)
    with pytest.raises(SweepError, match="episodes must be"):
        evaluate_sweep(["zero"], ["VRB/Hopper-v0"], out=out, episodes=0)
    assert not out.exists()
    out.write_text(json.dumps({"schema_version": "1", "runs": []}))
    with pytest.raises(SweepError, match="not a sweep file"):
        evaluate_sweep(["zero"], ["VRB/Hopper-v0"], out=out, episodes=1)
    out.unlink()
    with open(tmp_path / ".s.json.lock", "a") as held:  # as another sweep writing the same file holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(SweepError, match="another sweep is writing"):
            evaluate_sweep(["zero"], ["VRB/Hopper-v0"], out=out, episodes=1)
    dup = {"sweep_version": "1", "settings": {"episodes": 1}, "cells": [
        {"agent": "zero", "task": "VRB/Hopper-v0", "seed": 0, "status": "error", "error": "x", "results": None}] * 2}
    out.write_text(json.dumps(dup))
    with pytest.raises(SweepError, match="repeats the cell"):
        load_sweep(out)


def test_placeholders_name_one_policy_per_task_and_seed(tmp_path):
    doc = evaluate_sweep([str(tmp_path / "{task}-s{seed}.pt")], ["VRB/Hopper-v0"], [4], out=tmp_path / "s.json",
                         episodes=1)
    (e,) = doc["cells"]
    assert e["agent"].endswith("{task}-s{seed}.pt") and e["status"] == "error"
    assert "Hopper-v0-s4.pt" in e["error"]


def test_missing_ray_says_how_to_install(tmp_path, monkeypatch, capsys):
    from visual_robo_bench.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(RayUnavailableError, match=r"pip install 'visual_robo_bench\[ray\]'"):
        evaluate_sweep(["zero"], ["VRB/Hopper-v0"], out=tmp_path / "s.json", address="local", episodes=1)
    assert not (tmp_path / "s.json").exists()
    code = main(["evaluate", "--ray", "local", "--agent", "zero", "--task", "VRB/Hopper-v0", "--out",
                 str(tmp_path / "s.json")])
    assert code == 2 and "pip install 'visual_robo_bench[ray]'" in _text(capsys)
    with pytest.raises(RayUnavailableError, match="visual_robo_bench"):
        collect_rollouts("zero", "VRB/Hopper-v0", 1, address="auto")


def test_cli_errors_without_a_sweep(tmp_path, capsys):
    from visual_robo_bench.cli import main

    assert main(["evaluate", "--agent", "zero", "--agent", "random", "--task", "VRB/Hopper-v0"]) == 2
    assert "several --agent values need --ray" in _text(capsys)
    assert main(["evaluate", "--ray", "local", "--agent", "zero", "--task", "VRB/Hopper-v0"]) == 2
    assert "--ray needs --out" in _text(capsys)
    assert main(["evaluate", "--ray", "local", "--agent", "zero", "--task", "VRB/Hopper-v0", "--video", "v.mp4",
                 "--out", str(tmp_path / "s.json")]) == 2
    assert "--video" in _text(capsys)


def test_unreachable_or_malformed_address(tmp_path, capsys):
    pytest.importorskip("ray")
    from visual_robo_bench.cli import main

    with pytest.raises(RayUnavailableError, match="cannot reach a Ray cluster at '127.0.0.1:1'"):
        evaluate_sweep(["zero"], ["VRB/Hopper-v0"], out=tmp_path / "s.json", address="127.0.0.1:1", episodes=1)
    with pytest.raises(RayUnavailableError, match="not 'auto', 'local', HOST:PORT"):
        evaluate_sweep(["zero"], ["VRB/Hopper-v0"], out=tmp_path / "s.json", address="my-cluster", episodes=1)
    code = main(["evaluate", "--ray", "ray://127.0.0.1:1", "--agent", "zero", "--task", "VRB/Hopper-v0", "--out",
                 str(tmp_path / "s.json")])
    assert code == 2 and "cannot reach a Ray cluster" in _text(capsys)
    assert not (tmp_path / "s.json").exists()


def test_rollouts_local(tmp_path, agents):
    kw = {"seed_base": 100, "env_kwargs": TINY}
    a = collect_rollouts(PROPRIO, "VRB/Hopper-v0", 3, episodes_per_chunk=3, num_envs=1, out=tmp_path / "a.npz", **kw)
    b = collect_rollouts(PROPRIO, "VRB/Hopper-v0", 3, episodes_per_chunk=1, **kw)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)  # chunking: same data
    c = collect_rollouts(PROPRIO, "VRB/Hopper-v0", 3, episodes_per_chunk=3, **kw)  # 3 envs side by side
    assert all(np.array_equal(a[k], c[k]) for k in a if k != "obs.pixels")
    # tiled rendering of 3 envs at once may round a few pixel values the other way
    assert np.abs(a["obs.pixels"].astype(int) - c["obs.pixels"]).max() <= 1
    saved = load_rollouts(tmp_path / "a.npz")
    assert saved.keys() == a.keys() and all(np.array_equal(saved[k], a[k]) for k in a)
    T = len(a["action"])
    assert a["obs.pixels"].dtype == np.uint8 and a["obs.pixels"].shape[:3] == (T, 36, 36)
    assert a["action"].shape == (T, 3) and a["obs.proprio"].shape == (T, 6)
    assert a["seeds"].tolist() == [100, 101, 102] and a["lengths"].sum() == T
    ends = np.cumsum(a["lengths"]) - 1
    assert np.flatnonzero(a["done"]).tolist() == ends.tolist()
    # the recorded rewards are the episodes evaluate() scores with the same seeds
    res = evaluate(PROPRIO, "VRB/Hopper-v0", episodes=3, seed_base=100, env_kwargs=TINY, progress=False)
    for k, ep in enumerate(res.episodes):
        assert a["reward"][a["episode"] == k].sum() == pytest.approx(ep.ret, rel=1e-12, abs=1e-12)
        assert a["lengths"][k] == ep.length
    meta = json.loads(str(a["meta"]))
    assert meta["agent"] == PROPRIO and meta["episodes"] == 3 and meta["steps"] == T
    with pytest.raises(ValueError, match="evaluation seeds"):
        collect_rollouts("zero", "VRB/Hopper-v0", 2, seed_base=999_999)
    with pytest.raises(ValueError, match="spec string"):
        collect_rollouts(object(), "VRB/Hopper-v0", 1)


# ----------------------------------------------------------------------------- on Ray


def test_ray_sweep_equals_local(ray_cluster, local_sweep, agents, tmp_path):
    doc = evaluate_sweep(["random", PROPRIO], TASKS, [0, 1], out=tmp_path / "ray.json", address="auto", **CELL)
    assert doc["settings"] == local_sweep["settings"]
    ray_cells, local_cells = _cells(doc), _cells(local_sweep)
    assert ray_cells.keys() == local_cells.keys()
    for key, e in ray_cells.items():
        assert e["status"] == "ok", e["error"]
        assert e["worker"]["pid"] != os.getpid()  # ran in a Ray worker
        # everything but the code's git SHA and dirty flag: a Ray worker imports the package from the working
        # directory (a checkout, SHA known) when the driver runs the installed copy (SHA unknown, null), as CI's
        # pytest does
        ray_doc, local_doc = ({k: v for k, v in d.items() if k not in ("vrb_git_sha", "vrb_git_dirty")}
                              for d in (e["results"], local_cells[key]["results"]))
        assert ray_doc == local_doc, key
    assert load_sweep(tmp_path / "ray.json") == doc


def test_ray_resume_runs_only_missing_cells(ray_cluster, local_sweep, agents, tmp_path):
    out = tmp_path / "partial.json"
    partial = dict(local_sweep, cells=[e for e in local_sweep["cells"] if e["task"] == "VRB/Hopper-v0"])
    out.write_text(json.dumps(partial))
    ran = []
    doc = evaluate_sweep(["random", PROPRIO], ["VRB/Hopper-v0"], [0, 1, 2], out=out, address="auto",
                         on_cell=lambda e: ran.append((e["agent"], e["seed"])), **CELL)
    assert sorted(ran) == sorted([(PROPRIO, 2), ("random", 2)])
    keys = [(e["agent"], e["task"], e["seed"]) for e in doc["cells"]]
    assert len(keys) == len(set(keys)) == 6
    kept = _cells(partial)
    assert all(_cells(doc)[k] == kept[k] for k in kept)


def test_killed_worker_is_retried_and_bad_spec_recorded(ray_cluster, agents, tmp_path):
    marker = agents / "died-once.marker"
    marker.unlink(missing_ok=True)
    agents_ = [f"{AGENTS_MODULE}:die_once", "no/such/policy.zip"]
    doc = evaluate_sweep(agents_, ["VRB/Hopper-v0"], [0], out=tmp_path / "s.json", address="auto", max_retries=2,
                         **CELL)
    assert marker.exists()  # the first attempt killed its worker
    cells = _cells(doc)
    assert len(doc["cells"]) == 2
    died = cells[(agents_[0], "VRB/Hopper-v0", 0)]
    assert died["status"] == "ok" and died["worker"]["pid"] != int(marker.read_text())
    ref = evaluate(PROPRIO, "VRB/Hopper-v0", episodes=2, num_envs=2, env_kwargs=TINY, progress=False)
    assert [e["return"] for e in died["results"]["runs"][0]["episodes"]] == [e.ret for e in ref.episodes]
    bad = cells[("no/such/policy.zip", "VRB/Hopper-v0", 0)]
    assert bad["status"] == "error" and "no such file" in bad["error"]

    # without retries the lost cell is recorded as an error (not lost), and the rest goes on
    marker.unlink()
    doc = evaluate_sweep([agents_[0], "zero"], ["VRB/Hopper-v0"], [0], out=tmp_path / "s0.json", address="auto",
                         max_retries=0, **CELL)
    cells = _cells(doc)
    lost = cells[(agents_[0], "VRB/Hopper-v0", 0)]
    assert lost["status"] == "error" and "failed on Ray" in lost["error"] and lost["results"] is None
    assert cells[("zero", "VRB/Hopper-v0", 0)]["status"] == "ok"


def test_workers_get_the_drivers_environment(ray_cluster, agents, tmp_path, monkeypatch):
    # set after the cluster started, so only runtime_env can bring it to the workers
    monkeypatch.setenv("VRB_SWEEP_TEST_MARK", "from-driver")
    assert worker_env()["VRB_SWEEP_TEST_MARK"] == "from-driver"
    assert {"VRB_MODEL_DIR", "VRB_OFFLINE", "MUJOCO_GL"} & set(os.environ) <= set(worker_env())
    doc = evaluate_sweep([f"{AGENTS_MODULE}:EnvMark"], ["VRB/Hopper-v0"], [0], out=tmp_path / "s.json",
                         address="auto", episodes=1, num_envs=1, env_kwargs=TINY)
    assert doc["cells"][0]["results"]["agent"]["name"] == "mark-from-driver"


def test_cli_sweep_on_ray(ray_cluster, tmp_path, capsys):
    from visual_robo_bench.cli import main

    out = tmp_path / "sweep.json"
    argv = ["evaluate", "--ray", "auto", "--agent", "zero", "--agent", "random", "--task", "VRB/Hopper-v0",
            "--seed", "0", "--seed", "1", "--episodes", "1", "--num-envs", "1", "--out", str(out)]
    assert main(argv) == 0
    text = _text(capsys)
    assert "sweep written to" in text and "zero | VRB/Hopper-v0 | seed 1: return" in text
    assert "normalized" in text  # the table's column (0 = random floor, 1 = reference level), as vrb evaluate's
    doc = load_sweep(out)
    assert {(e["agent"], e["seed"]) for e in doc["cells"]} == {(a, s) for a in ("zero", "random") for s in (0, 1)}
    assert all(e["status"] == "ok" and len(e["results"]["runs"][0]["episodes"]) == 1 for e in doc["cells"])
    assert not any(e["results"]["runs"][0]["official"] for e in doc["cells"])  # 1 episode: not the protocol
    assert main(argv) == 0 and load_sweep(out) == doc  # resumed: nothing left to run
    assert "seed 1: return" not in _text(capsys)
    assert main([*argv, "--agent", "no/such/policy.zip"]) == 1
    assert "no such file" in _text(capsys)


def test_rollouts_on_ray_equal_local(ray_cluster, agents, tmp_path):
    kw = {"seed_base": 50, "episodes_per_chunk": 2, "num_envs": 2, "env_kwargs": TINY}
    local = collect_rollouts("random", "VRB/Hopper-v0", 3, **kw)
    remote = collect_rollouts("random", "VRB/Hopper-v0", 3, address="auto", out=tmp_path / "r.npz", **kw)
    saved = load_rollouts(tmp_path / "r.npz")
    assert local.keys() == remote.keys() == saved.keys()
    for k in local:
        assert np.array_equal(local[k], remote[k]) and np.array_equal(saved[k], local[k]), k
    assert remote["obs.pixels"].dtype == np.uint8 and remote["episode"].tolist() == sorted(remote["episode"])
    for address in (None, "auto"):  # the same error either way
        with pytest.raises(RolloutError, match="returned actions of shape"):
            collect_rollouts(f"{AGENTS_MODULE}:BadShape", "VRB/Hopper-v0", 1, address=address, env_kwargs=TINY)


def test_a_cell_of_a_vrb_policy_file_records_its_config():
    """As ``vrb evaluate --out``: a sweep cell's results carry the config inside a VRB policy file."""
    from visual_robo_bench.evaluation.distributed import SweepCell, SweepSettings, run_cell
    from visual_robo_bench.evaluation.results import policy_config

    policy = str(Path(__file__).resolve().parents[1] / "policies" / "sdpg-walker-v1.pt")
    entry = run_cell(SweepCell(policy, "VRB/Walker-v1", 0),
                     SweepSettings(episodes=1, num_envs=1, env_kwargs={"max_episode_steps": 3}))
    assert entry["status"] == "ok", entry["error"]
    config = entry["results"]["agent"]["config"]
    assert config and config == policy_config(policy) and config["task"] == "VRB/Walker-v1"
