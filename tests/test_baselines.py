"""Baseline agents under ``vrb train`` (ppo, sac, random, zero): run dirs, policy files loaded by every
loader and evaluated by the harness, resume, and bad input. Tiny configs (4 envs, 36x36, 12-step
episodes): the whole file runs in well under a minute and a half on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

from visual_robo_bench.agents import AGENTS  # noqa: E402
from visual_robo_bench.agents.common import read_csv  # noqa: E402
from visual_robo_bench.cli import main  # noqa: E402

TASK = "VRB/Hopper-v0"
ENV_KWARGS = {"image_size": (36, 36), "max_episode_steps": 12}
COMMON = ["num_envs=4", "image_size=36,36", "max_episode_steps=12", "nthread=1", "checkpoint_every=1"]
PER_AGENT = {
    "ppo": ["steps_per_epoch=64", "n_steps=16", "batch_size=32", "n_epochs=1", "cnn_output_dim=32", "net_arch=32"],
    "sac": ["steps_per_epoch=48", "learning_starts=16", "batch_size=16", "buffer_size=256", "cnn_output_dim=32",
            "net_arch=32"],
    "random": ["steps_per_epoch=48"],
    "zero": ["steps_per_epoch=48"],
}


def _args(agent: str, run: Path, epochs: int, seed: int = 3) -> list[str]:
    args = ["train", "--agent", agent, "--task", TASK, "--run-dir", str(run), "--no-progress", "--seed", str(seed)]
    for item in [*COMMON, *PER_AGENT[agent], f"max_epochs={epochs}"]:
        args += ["--set", item]
    return args


def _module(agent: str):
    import importlib

    return importlib.import_module(AGENTS[agent])


def _evaluate(spec: str):
    from visual_robo_bench.evaluation import evaluate

    res = evaluate(spec, TASK, episodes=2, num_envs=2, env_kwargs=ENV_KWARGS, progress=False)
    assert res.error is None, res.error
    s = res.summary()
    assert s["episodes"] == 2 and s["agent_errors"] == 0
    return res


def _sb3_params(model) -> dict:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


@pytest.mark.parametrize("agent", ["ppo", "sac", "random", "zero"])
def test_baseline_trains_exports_evaluates_and_resumes(agent, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_args(agent, run, 2)) == 0
    for name in ("config.json", "progress.csv", "policy.pt", "learning_curve.png", "checkpoints/latest.pt"):
        assert (run / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    rows = read_csv(run / "progress.csv")
    steps = int(rows[0]["env_steps"])
    assert [int(r["epoch"]) for r in rows] == [1, 2] and int(rows[1]["env_steps"]) == 2 * steps > 0
    assert float(rows[-1]["env_steps_per_s"]) > 0 and np.isfinite(float(rows[-1]["episode_return"]))
    assert "frames_per_s" in rows[-1]
    for r in rows:  # rendered frames: every step, the 4 envs' first reset and the first frame after each episode
        floor = agent in ("random", "zero")  # state-only envs: nothing is rendered
        assert int(r["frames"]) == (0 if floor else int(r["env_steps"]) + 4 + int(r["episodes"]))

    # the policy file: the agent's own loader and the evaluation harness (VRB policy file by path)
    mod = _module(agent)
    pol = mod.load_policy(run / "policy.pt", task=TASK)
    obs = {"pixels": np.random.default_rng(0).integers(0, 255, (3, 36, 36, 9), dtype=np.uint8),
           "proprio": np.zeros((3, 6), np.float32)}
    act = pol.act(obs)
    assert act.shape == (3, 3) and act.dtype == np.float32 and np.all(np.abs(act) <= 1)
    if agent != "random":  # deterministic
        np.testing.assert_array_equal(pol.act(obs), act)
    if agent == "zero":
        assert np.all(act == 0)
    with pytest.raises(ValueError, match="trained on"):
        mod.load_policy(run / "policy.pt", task="VRB/Walker-v1")
    _evaluate(str(run / "policy.pt"))
    if agent in ("ppo", "sac"):
        assert (run / "model.zip").is_file()
        _evaluate(str(run / "model.zip"))  # the harness's stable-baselines3 loader
        # channel-first and channel-last pixels give the same deterministic action
        chw = {**obs, "pixels": obs["pixels"].transpose(0, 3, 1, 2)}
        np.testing.assert_array_equal(pol.act(chw), act)
        with pytest.raises(ValueError, match="pixels must be"):
            pol.act({**obs, "pixels": np.zeros((1, 16, 16, 9), np.uint8)})

    # resume: continues from the saved counters (and, for SB3, the saved weights) for one more epoch
    if agent in ("ppo", "sac"):
        learner = mod.LEARNER.from_checkpoint(run / "checkpoints" / "latest.pt", task=TASK)
        try:
            saved = pol.model.policy.state_dict()
            assert learner.epoch == 2 and learner.env_steps == 2 * steps
            for k, v in _sb3_params(learner.model).items():
                assert torch.equal(v, saved[k]), k
            if agent == "sac":
                assert learner.model.replay_buffer.size() > 0  # the replay buffer came back too
        finally:
            learner.close()
    capsys.readouterr()
    assert main(["train", "--agent", agent, "--resume", "--run-dir", str(run), "--no-progress", "--task", TASK,
                 "--set", "max_epochs=3"]) == 0
    assert "resuming" in capsys.readouterr().out
    rows = read_csv(run / "progress.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and int(rows[2]["env_steps"]) == 3 * steps
    ck = mod.load_file(run / "checkpoints" / "latest.pt")
    assert ck["counters"]["epoch"] == 3 and ck["counters"]["env_steps"] == 3 * steps
    if agent in ("ppo", "sac"):
        after = mod.load_policy(run / "policy.pt", task=TASK)
        assert after.meta["epoch"] == 3
        assert any(not torch.equal(v, pol.model.policy.state_dict()[k])
                   for k, v in after.model.policy.state_dict().items())  # it trained after resuming
        # only the newest checkpoint's sibling files are kept
        assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name != "latest.pt") == sorted(
            [f"latest-e000003.{agent}.zip"] + ([f"latest-e000003.{agent}.replay.pkl"] if agent == "sac" else []))


@pytest.mark.parametrize("agent,epochs", [("random", 4), ("ppo", 3), ("sac", 3)])
def test_resume_is_exact(agent, epochs, tmp_path):
    """A run killed after its checkpoint and resumed equals the uninterrupted run, bit for bit."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(_args(agent, straight, epochs)) == 0
    assert main(_args(agent, resumed, 1)) == 0
    assert main(["train", "--agent", agent, "--resume", "--run-dir", str(resumed), "--no-progress",
                 "--set", f"max_epochs={epochs}"]) == 0
    a, b = read_csv(straight / "progress.csv"), read_csv(resumed / "progress.csv")
    assert [int(r["epoch"]) for r in b] == list(range(1, epochs + 1))
    timing = {"wall_s", "time_epoch_s", "env_steps_per_s", "frames_per_s"}
    for x, y in zip(a, b):
        for k in set(x) - timing:
            assert x[k] == y[k], (x["epoch"], k, x[k], y[k])
    if agent in ("ppo", "sac"):  # the same weights (actor, critics, target networks) at the end
        pa = _module(agent).load_policy(straight / "policy.pt").model.policy.state_dict()
        pb = _module(agent).load_policy(resumed / "policy.pt").model.policy.state_dict()
        assert pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)


def test_bad_input(tmp_path, capsys):
    for args, msg in (
        (["train", "--agent", "nope", "--task", TASK], "unknown agent 'nope'; available: distill, drqv2, ppo, random, sac, sdpg, zero"),
        (["train", "--agent", "ppo", "--task", TASK, "--set", "n_step=8", "--run-dir", str(tmp_path / "a")],
         "unknown config key 'n_step'"),
        (["train", "--agent", "ppo", "--task", TASK, "--set", "n_steps=7", "--run-dir", str(tmp_path / "b")],
         "must be a multiple of n_steps * num_envs"),
        (["train", "--agent", "sac", "--task", "VRB/Hoper-v0", "--run-dir", str(tmp_path / "c")], "unknown task id"),
        (["train", "--agent", "sac", "--task", TASK, "--set", "ent_coef=bogus", "--run-dir", str(tmp_path / "d")],
         "ent_coef must be 'auto'"),
        (["train", "--agent", "sac", "--task", TASK, "--set", "num_envs=2", "--set", "steps_per_epoch=8",
          "--set", "train_freq=3", "--run-dir", str(tmp_path / "e")], "must be a multiple of train_freq (3)"),
    ):
        assert main(args) == 2, args
        assert msg in capsys.readouterr().err.replace("\n", ""), msg
    assert not any((tmp_path / n).exists() for n in "abcde")
    # a checkpoint of another agent is refused
    run = tmp_path / "zero"
    assert main(_args("zero", run, 1)) == 0
    with pytest.raises(ValueError, match="not a ppo checkpoint"):
        _module("ppo").load_file(run / "checkpoints" / "latest.pt")
    with pytest.raises(ValueError, match="training checkpoint"):
        sac_run = tmp_path / "sac"
        assert main(_args("sac", sac_run, 1)) == 0
        _module("sac").load_policy(sac_run / "checkpoints" / "latest.pt")
