"""The ``distill`` baseline (PPO teacher on privileged state -> pixel student by DAgger): the ``vrb train``
command through both phases, the exported student, what each network sees, the DAgger labels and
mixture, the bounded dataset, a BC fit on a fixed labelled set, checkpoints (exact in the student
phase) and bad input. Tiny configs (4 envs, 36x36, 12-step Hopper episodes): the file runs in about a
minute on 2 cores.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

from visual_robo_bench.agents.common import ConfigError, read_csv  # noqa: E402
from visual_robo_bench.agents.distill import (  # noqa: E402
    FORMAT_VERSION,
    DaggerDataset,
    Distill,
    IncompatibleCheckpoint,
    TeacherPolicy,
    beta_schedule,
    load_file,
    load_policy,
    make_config,
)
from visual_robo_bench.cli import main  # noqa: E402

TASK = "VRB/Hopper-v0"
ENV_KWARGS = {"image_size": (36, 36), "max_episode_steps": 12}
TINY = dict(teacher_epochs=1, max_epochs=3, teacher_num_envs=4, teacher_n_steps=16, teacher_steps_per_epoch=64,
            teacher_batch_size=32, teacher_n_epochs=1, teacher_net_arch=(16,), student_num_envs=4,
            student_steps_per_epoch=48, student_updates=2, student_batch_size=16, dataset_capacity=64,
            encoder_dim=32, proprio_hidden=(32,), student_hidden=(32,), image_size=(36, 36), max_episode_steps=12,
            nthread=1, checkpoint_every=1)
#: columns that must match between an uninterrupted run and a resumed one (no timings)
EXACT_COLUMNS = ("phase", "acting", "beta", "teacher_action_frac", "env_steps", "frames", "episodes",
                 "episode_return", "episode_length", "teacher_return", "student_return", "bc_loss", "onpolicy_mse",
                 "dataset_size", "student_updates")


def tiny(**changes):
    return make_config(TASK, {**TINY, **changes})


def _train_args(run: Path, epochs: int) -> list[str]:
    args = ["train", "--agent", "distill", "--task", TASK, "--run-dir", str(run), "--no-progress", "--seed", "5"]
    for k, v in {**TINY, "max_epochs": epochs}.items():
        v = ",".join(map(str, v)) if isinstance(v, tuple) else v
        args += ["--set", f"{k}={v}"]
    return args


def _obs(n: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"pixels": rng.integers(0, 255, (n, 36, 36, 9), dtype=np.uint8),
            "proprio": rng.normal(size=(n, 6)).astype(np.float32)}


# ------------------------------------------------------------------------------ vrb train
def test_train_command_both_phases_policy_evaluation_and_exact_resume(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train_args(run, 3)) == 0
    for name in ("config.json", "progress.csv", "policy.pt", "teacher.zip", "teacher_vecnormalize.pkl",
                 "learning_curve.png", "checkpoints/latest.pt"):
        assert (run / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    rows = read_csv(run / "progress.csv")
    assert [r["phase"] for r in rows] == ["1", "2", "2"]
    assert [r["acting"] for r in rows] == ["teacher", "teacher", "mixture"]
    assert [float(r["beta"]) for r in rows] == [1.0, 1.0, 0.5]
    assert [int(r["env_steps"]) for r in rows] == [64, 112, 160]
    # rendered frames: the student's 48 steps per epoch, plus the first frame of the next episode of each of its 4
    # envs (one 12-step episode each per epoch); the teacher phase renders nothing
    assert [int(r["frames"]) for r in rows] == [0, 52, 104]
    assert [int(r["dataset_size"]) for r in rows] == [0, 48, 64]  # capacity 64
    assert np.isfinite(float(rows[0]["teacher_loss"])) and np.isnan(float(rows[0]["bc_loss"]))
    for r in rows[1:]:
        assert np.isnan(float(r["teacher_loss"])) and np.isfinite(float(r["bc_loss"]))
        assert np.isfinite(float(r["episode_return"]))
        assert float(r["teacher_return"]) == float(rows[0]["episode_return"])  # the phase-1 window
    assert float(rows[-1]["env_steps_per_s"]) > 0 and float(rows[-1]["frames_per_s"]) > 0

    # the student policy: pixels + proprio only, deterministic, HWC/CHW, batched/single
    pol = load_policy(run / "policy.pt", task=TASK)
    assert set(load_file(run / "policy.pt")["obs_space"]) == {"pixels", "proprio"}
    obs = _obs()
    act = pol.act(obs)
    assert act.shape == (3, 3) and act.dtype == np.float32 and np.all(np.abs(act) <= 1)
    np.testing.assert_array_equal(pol.act(obs), act)
    np.testing.assert_array_equal(pol.act({**obs, "pixels": obs["pixels"].transpose(0, 3, 1, 2)}), act)
    np.testing.assert_allclose(pol.act({k: v[0] for k, v in obs.items()}), act[0], atol=1e-6)
    np.testing.assert_array_equal(pol.act({**obs, "privileged": np.full((3, 11), 1e3, np.float32)}), act)
    with pytest.raises(ValueError, match=r"pixels must be \(n, 9, 36, 36\) or \(n, 36, 36, 9\).*got \(1, 16, 16, 9\)"):
        pol.act({"pixels": np.zeros((1, 16, 16, 9), np.uint8), "proprio": np.zeros((1, 6), np.float32)})
    with pytest.raises(ValueError, match=r"proprio must be \(3, 6\).*got \(3, 11\)"):
        pol.act({**obs, "proprio": np.zeros((3, 11), np.float32)})
    with pytest.raises(IncompatibleCheckpoint, match="trained on"):
        load_policy(run / "policy.pt", task="VRB/Walker-v1")
    with pytest.raises(IncompatibleCheckpoint, match="training checkpoint"):
        load_policy(run / "checkpoints" / "latest.pt")
    # the evaluation harness loads the policy file by path (HWC observations, no privileged state)
    from visual_robo_bench.evaluation import evaluate

    res = evaluate(str(run / "policy.pt"), TASK, episodes=2, num_envs=2, env_kwargs=ENV_KWARGS, progress=False)
    assert res.error is None, res.error
    assert res.summary()["episodes"] == 2 and res.summary()["agent_errors"] == 0
    # the exported teacher is an SB3 PPO on privileged state only
    from stable_baselines3 import PPO

    assert list(PPO.load(run / "teacher.zip", device="cpu").observation_space.spaces) == ["privileged"]

    # resume in the student phase == an uninterrupted run (logged values, student weights, dataset)
    capsys.readouterr()
    assert main(["train", "--agent", "distill", "--resume", "--run-dir", str(run), "--no-progress", "--task", TASK,
                 "--set", "max_epochs=5"]) == 0
    assert "resuming" in capsys.readouterr().out
    straight = tmp_path / "straight"
    assert main(_train_args(straight, 5)) == 0
    a, b = read_csv(straight / "progress.csv"), read_csv(run / "progress.csv")
    assert [int(r["epoch"]) for r in b] == [1, 2, 3, 4, 5] and int(b[-1]["dataset_size"]) == 64
    assert [r["acting"] for r in b] == ["teacher", "teacher", "mixture", "mixture", "mixture"]
    for x, y in zip(a, b):
        for k in EXACT_COLUMNS:
            assert x[k] == y[k], (x["epoch"], k)
    ca, cb = (load_file(d / "checkpoints" / "latest.pt") for d in (straight, run))
    for k, v in ca["student"].items():
        assert torch.equal(v, cb["student"][k]), k
    da, db = (torch.load(d / "checkpoints" / c["files"]["dataset"], weights_only=True)
              for d, c in ((straight, ca), (run, cb)))
    assert da["pos"] == db["pos"] and all(torch.equal(da[k], db[k]) for k in ("pixels", "proprio", "actions"))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "latest-e000005.distill.data.pt", "latest-e000005.distill.teacher.zip",
        "latest-e000005.distill.vecnormalize.pkl", "latest.pt"]  # only the newest sibling files are kept


# ------------------------------------------------------------------------------ what each network sees
def test_teacher_sees_state_only_and_labels_are_its_deterministic_actions(tmp_path):
    ag = Distill(tiny())
    try:
        venv = ag.teacher_env.venv.venv  # VecNormalize -> SB3VecEnv -> the native env
        assert venv.obs_mode == "state" and len(venv.render_env_ids) == 0
        assert list(ag.teacher.observation_space.spaces) == ["privileged"]
        ag.train_epoch()
        assert venv.renderer is None  # the teacher phase rendered nothing
        assert ag.student.proprio_net[0].in_features == 6  # proprio (6), not privileged (11)
        assert ag.student.encoder.convs[0].in_channels == 9  # the RGB frame stack
        ag.start_student_phase()
        ag.export_policy(tmp_path / "policy.pt")
        # the teacher "directly", as a user loads it: SB3 PPO.load + the VecNormalize pickle
        from stable_baselines3 import PPO

        teacher = PPO.load(tmp_path / "teacher.zip", device="cpu")
        with open(tmp_path / "teacher_vecnormalize.pkl", "rb") as f:
            vecnorm = pickle.load(f)
        exported = TeacherPolicy(tmp_path)
        with pytest.raises(ValueError, match="obs_mode='state'"):
            exported.act({"pixels": ag.obs["pixels"]})  # a pixel env's observations: no privileged state
        N = ag.cfg.student_num_envs
        for beta in (0.0, 1.0, 0.5, 0.5):
            snap = {k: v.copy() for k, v in ag.obs.items()}
            student = ag.student_act(snap)
            pos = ag.dataset.pos
            stats = ag.collect(1, beta)
            rows = (pos + np.arange(N)) % ag.dataset.capacity
            label, _ = teacher.predict(vecnorm.normalize_obs({"privileged": snap["privileged"]}), deterministic=True)
            np.testing.assert_allclose(ag.dataset.actions[rows], np.clip(label, -1, 1), rtol=0, atol=1e-6)
            # the exported teacher as a harness agent gives the same actions (the reference experts use it)
            np.testing.assert_array_equal(exported.act(snap), ag.dataset.actions[rows])
            np.testing.assert_array_equal(ag.dataset.pixels[rows], snap["pixels"])
            np.testing.assert_array_equal(ag.dataset.proprio[rows], snap["proprio"])
            # the executed action (the task keeps it as prev_action) is the teacher's or the student's
            executed, alive = ag.env.state["prev_action"], ag.ep_length > 0
            from_teacher = np.all(np.abs(executed - ag.dataset.actions[rows]) < 1e-6, axis=1)
            from_student = np.all(np.abs(executed - student) < 1e-6, axis=1)
            assert np.all((from_teacher | from_student)[alive])
            if beta in (0.0, 1.0):
                assert stats["teacher_action_frac"] == beta
                assert np.all((from_teacher if beta else from_student)[alive])
        assert ag.dataset.size == 4 * N
    finally:
        ag.close()


def test_teacher_trains_on_the_shaped_reward_and_logs_the_task_reward():
    ag = Distill(tiny(teacher_reward_offset=2.0, teacher_reward_floor=1.5, teacher_norm_reward=False,
                      teacher_norm_obs=False, teacher_target_kl=0.01))
    try:
        assert ag.teacher.target_kl == 0.01
        shaped = ag.teacher_env  # no VecNormalize: the shaping wrapper is the outermost env
        adapter = shaped.venv
        shaped.reset()
        actions = np.random.default_rng(0).uniform(-1, 1, (4, adapter.action_space.shape[0])).astype(np.float32)
        returns = np.zeros(4)
        floored = 0
        for _ in range(12):  # a whole 12-step episode
            _, rewards, dones, infos = shaped.step(actions)
            task_reward = np.array([sum(i["reward_terms"].values()) for i in infos])
            np.testing.assert_allclose(rewards, np.maximum(task_reward + 2.0, 1.5), rtol=1e-6, atol=1e-5)
            floored += int((task_reward + 2.0 < 1.5).sum())
            returns += task_reward
        assert dones.all() and floored > 0  # the floor was exercised
        logged = [i["episode"]["r"] for i in infos]
        np.testing.assert_allclose(logged, returns, rtol=1e-5, atol=1e-4)  # the task's own reward, not the shaped one
    finally:
        ag.close()


def test_beta_schedule():
    cfg = tiny(beta_init=0.8, beta_decay=0.5, beta_cutoff=0.1)
    assert [beta_schedule(k, cfg) for k in range(5)] == [0.8, 0.4, 0.2, 0.1, 0.0]  # 0.05 < cutoff: student alone
    dagger_i_equals_1 = tiny(beta_init=1.0, beta_decay=0.0)  # Ross et al.'s beta_i = I(i = 1)
    assert [beta_schedule(k, dagger_i_equals_1) for k in range(3)] == [1.0, 0.0, 0.0]


def test_dataset_is_bounded_and_drops_the_oldest_samples():
    ds = DaggerDataset(5, (1, 2, 2), 2, 1)
    for start in (0, 3, 6):  # samples 0..8, 3 at a time
        ids = np.arange(start, start + 3)
        ds.add(np.repeat(ids, 4).reshape(3, 1, 2, 2).astype(np.uint8),
               np.repeat(ids, 2).reshape(3, 2).astype(np.float32), ids[:, None].astype(np.float32))
        assert ds.size == min(start + 3, 5)
    assert sorted(ds.actions[:, 0].tolist()) == [4, 5, 6, 7, 8]  # the 4 oldest were overwritten
    assert ds.pos == 9 % 5 and ds.actions[ds.pos - 1, 0] == 8
    for i in range(5):
        assert np.all(ds.pixels[i] == ds.actions[i, 0]) and np.all(ds.proprio[i] == ds.actions[i, 0])
    with pytest.raises(ValueError, match="does not fit a dataset of capacity 5"):
        ds.add(np.zeros((6, 1, 2, 2), np.uint8), np.zeros((6, 2), np.float32), np.zeros((6, 1), np.float32))
    assert DaggerDataset.bytes_per_sample((9, 84, 84), 12, 6) == 63576  # Walker at 84x84 (module doc)


def test_bc_drives_the_loss_down_on_a_fixed_teacher_labelled_set():
    """The student, trained by the BC loss alone on 48 teacher-labelled real observations, fits them."""
    ag = Distill(tiny(augment_pad=0, student_lr=1e-3, dataset_capacity=48, student_batch_size=48))
    try:
        with torch.no_grad():  # a fresh PPO head outputs ~0 everywhere: amplify it so labels depend on the state
            ag.teacher.policy.action_net.weight.mul_(30.0)
        ag.start_student_phase()
        ag.collect(12, beta=1.0)
        assert ag.dataset.size == 48
        every = np.arange(48)
        constant_loss = float(ag.dataset.actions.var(0).mean())  # the best state-independent prediction
        with torch.no_grad():
            before = ag.bc_loss(every).item()
        for _ in range(80):
            ag.update_student()
        with torch.no_grad():
            after = ag.bc_loss(every).item()
        assert after < before / 20 and after < 0.5 * constant_loss, (before, after, constant_loss)
    finally:
        ag.close()


# ------------------------------------------------------------------------------ checkpoints
def test_teacher_phase_checkpoint_untrained_student_and_refusals(tmp_path):
    a = Distill(tiny(teacher_epochs=2, max_epochs=4))
    try:
        a.train_epoch()
        a.save_checkpoint(tmp_path / "ck" / "latest.pt")
        before = {k: v.clone() for k, v in a.teacher.policy.state_dict().items()}
        a2 = a.train_epoch()  # the uninterrupted run (first: SB3 and network inits draw from the global RNGs)
        a.export_policy(tmp_path / "policy.pt")
        with pytest.warns(UserWarning, match="untrained student"):
            pol = load_policy(tmp_path / "policy.pt", task=TASK)
        assert pol.act(_obs()).shape == (3, 3)  # still a valid policy file
        b = Distill.from_checkpoint(tmp_path / "ck" / "latest.pt", task=TASK)
        try:
            assert (b.epoch, b.env_steps, b.teacher.num_timesteps) == (1, 64, 64)
            for k, v in before.items():
                assert torch.equal(v, b.teacher.policy.state_dict()[k]), k
            assert b.teacher_env is not None and list(b.teacher_episodes) == list(a.teacher_episodes)[:len(b.teacher_episodes)]
            s2 = b.train_epoch()  # the resumed teacher epoch is bit-identical to the uninterrupted one
            for k in ("env_steps", "episodes", "episode_return", "teacher_return", "teacher_loss"):
                assert a2[k] == s2[k] or (np.isnan(a2[k]) and np.isnan(s2[k])), k
            for k, v in a.teacher.policy.state_dict().items():
                assert torch.equal(v, b.teacher.policy.state_dict()[k]), k
            np.testing.assert_array_equal(a.vecnorm.obs_rms["privileged"].mean, b.vecnorm.obs_rms["privileged"].mean)
            s3 = b.train_epoch()  # then DAgger
            assert (s2["phase"], s2["env_steps"], s3["phase"], s3["env_steps"]) == (1, 128, 2, 176)
            assert b.teacher_env is None and np.isfinite(s3["bc_loss"])
        finally:
            b.close()
        with pytest.raises(IncompatibleCheckpoint, match="trained on 'VRB/Hopper-v0'"):
            Distill.from_checkpoint(tmp_path / "ck" / "latest.pt", task="VRB/Walker-v1")
        data = torch.load(tmp_path / "ck" / "latest.pt", weights_only=False)
        data["format_version"] = FORMAT_VERSION + 1
        torch.save(data, tmp_path / "ck" / "future.pt")
        with pytest.raises(IncompatibleCheckpoint, match="format version"):
            Distill.from_checkpoint(tmp_path / "ck" / "future.pt")
        (tmp_path / "ck" / "latest-e000001.distill.teacher.zip").unlink()
        with pytest.raises(FileNotFoundError, match="teacher.zip, which does not exist"):
            Distill.from_checkpoint(tmp_path / "ck" / "latest.pt")
    finally:
        a.close()


def test_checkpoint_at_the_end_of_the_teacher_phase_continues_exactly(tmp_path):
    a = Distill(tiny())
    try:
        a.train_epoch()  # the last teacher epoch: the checkpoint holds no student-phase state yet
        a.save_checkpoint(tmp_path / "latest.pt")
        assert load_file(tmp_path / "latest.pt")["student_phase"] is None
        b = Distill.from_checkpoint(tmp_path / "latest.pt", task=TASK)
        try:
            for _ in range(2):
                sa, sb = a.train_epoch(), b.train_epoch()
                for k in EXACT_COLUMNS:
                    assert sa[k] == sb[k] or (np.isnan(sa[k]) and np.isnan(sb[k])), k
            for k, v in a.student.state_dict().items():
                assert torch.equal(v, b.student.state_dict()[k]), k
        finally:
            b.close()
    finally:
        a.close()


# ------------------------------------------------------------------------------ bad input
def test_config_errors(tmp_path, capsys):
    with pytest.raises(ConfigError, match="unknown config key 'beta_decy'.*'beta_decay'"):
        make_config(TASK, {"beta_decy": 0.3})
    for changes, msg in (
        ({"teacher_steps_per_epoch": 100}, "must be a positive multiple of teacher_n_steps"),
        ({"max_epochs": 1}, "must exceed teacher_epochs"),
        ({"dataset_capacity": 16}, "must be >= student_steps_per_epoch"),
        ({"student_steps_per_epoch": 50}, "multiple of student_num_envs"),
        ({"beta_init": 1.5}, "beta_init, beta_decay and beta_cutoff must be in"),
        ({"student_lr": "fast"}, "expects float"),
        ({"teacher_target_kl": 0.0}, "teacher_target_kl must be > 0"),
        ({"teacher_reward_offset": float("nan")}, "must be finite"),
    ):
        with pytest.raises(ConfigError, match=msg):
            tiny(**changes)
    with pytest.raises(KeyError, match="unknown task id"):
        make_config("VRB/Hoper-v0")
    cfg = make_config("VRB/Walker-v1")
    assert cfg.teacher_epochs < cfg.max_epochs and cfg.torch_threads == 1  # the defaults are valid
    run = tmp_path / "bad"
    assert main([*_train_args(run, 3), "--set", "dataset_capacity=8"]) == 2
    assert "dataset_capacity (8) must be >= student_steps_per_epoch (48)" in capsys.readouterr().err.replace("\n", "")
    assert not run.exists()
