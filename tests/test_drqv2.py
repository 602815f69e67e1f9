"""DrQ-v2 baseline: n-step targets and random shifts against hand-computed examples, the replay buffer's
windows (termination, truncation, wrap-around), gradient routing, ``vrb train`` outputs, the policy file
(own loader and the evaluation harness), exact resume, and bad input.

Tiny configs (4 envs, 36x36 images, 10-step episodes, batch 16): the whole file runs in well under a
minute and a half on 2 cores.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from visual_robo_bench.agents.common import ConfigError, read_csv  # noqa: E402
from visual_robo_bench.agents.drqv2 import (  # noqa: E402
    FORMAT_VERSION,
    DrQv2,
    IncompatibleCheckpoint,
    ReplayBuffer,
    conv_features,
    linear_std,
    load_file,
    load_policy,
    make_config,
    nstep_return,
    random_shift,
)
from visual_robo_bench.cli import main  # noqa: E402

TASK = "VRB/Hopper-v0"
TINY = {"num_envs": 4, "image_size": (36, 36), "max_episode_steps": 10, "nthread": 1, "torch_threads": 1,
        "steps_per_epoch": 48, "num_seed_steps": 16, "batch_size": 16, "buffer_capacity": 64, "feature_dim": 16,
        "hidden_dim": 32, "checkpoint_every": 1}
TIMING = {"wall_s", "time_epoch_s", "time_env_s", "time_update_s", "env_steps_per_s", "frames_per_s"}


def _set_args(**changes) -> list[str]:
    args = []
    for k, v in {**TINY, **changes}.items():
        args += ["--set", f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"]
    return args


def _train(run: Path, epochs: int, seed: int = 3) -> list[str]:
    return ["train", "--agent", "drqv2", "--task", TASK, "--run-dir", str(run), "--no-progress", "--seed", str(seed),
            *_set_args(max_epochs=epochs)]


# ------------------------------------------------------------------------------ the pure pieces
def test_nstep_return_hand_computed():
    gamma = 0.5
    r = np.array([[1.0, 2.0, 4.0]] * 5)
    term = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 1]], bool)
    trunc = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 1], [0, 0, 0], [0, 0, 0]], bool)
    G, disc = nstep_return(r, term, trunc, gamma)
    # 0: no end: 1 + .5*2 + .25*4 = 3, bootstrap gamma^3
    # 1: terminated at step 1: 1 + .5*2 = 2, no bootstrap
    # 2: truncated at step 1 (the later flag belongs to another episode): 2, bootstrap gamma^2
    # 3: terminated at step 0: 1, no bootstrap; 4: terminated at the last step: 3, no bootstrap
    np.testing.assert_allclose(G, [3.0, 2.0, 2.0, 1.0, 3.0])
    np.testing.assert_allclose(disc, [0.125, 0.0, 0.25, 0.0, 0.0])


def _add(buf, labels, rewards, term, trunc, next_labels):
    """One batched step of a (1, 1, 1)-pixel buffer; observations are identified by their proprio label."""
    labels, next_labels = np.asarray(labels, np.float32)[:, None], np.asarray(next_labels, np.float32)[:, None]
    n = len(labels)
    buf.add(np.zeros((n, 1, 1, 1), np.uint8), labels, np.zeros((n, 1), np.float32), np.asarray(rewards, float),
            np.asarray(term, bool), np.asarray(trunc, bool), np.zeros((n, 1, 1, 1), np.uint8), next_labels)


def test_replay_bytes_per_row_as_documented():
    assert ReplayBuffer(24, 8, (9, 84, 84), 12, 6).bytes_per_row == 63_591  # Walker (module docstring)


def test_replay_windows_hand_computed():
    """Env 0 terminates after its 3rd step, env 1 is truncated after its 2nd; n = 3, gamma = 0.5."""
    buf = ReplayBuffer(32, 2, (1, 1, 1), 1, 1)
    # labels: env 0 observes 0, 1, 2 (final 3), then 4, 5, 6, 7; env 1 observes 100, 101 (final 102), 103, ...
    steps = [  # (labels, rewards, terminated, truncated, post-step labels)
        ([0, 100], [1, 10], [0, 0], [0, 0], [1, 101]),
        ([1, 101], [2, 20], [0, 0], [0, 1], [2, 102]),
        ([2, 103], [3, 30], [1, 0], [0, 0], [3, 104]),
        ([4, 104], [4, 40], [0, 0], [0, 0], [5, 105]),
        ([5, 105], [5, 50], [0, 0], [0, 0], [6, 106]),
        ([6, 106], [6, 60], [0, 0], [0, 0], [7, 107]),
    ]
    for s in steps:
        _add(buf, *s)
    assert buf.size == 12 + 2  # one row per env and step, plus the two final observations
    label_row = {float(buf.proprio[i, 0]): i for i in range(buf.size)}
    expected = {  # start label -> (G, discount, bootstrap label)
        0: (1 + 0.5 * 2 + 0.25 * 3, 0.0, None),  # termination inside the window: no bootstrap
        1: (2 + 0.5 * 3, 0.0, None),
        2: (3.0, 0.0, None),
        100: (10 + 0.5 * 20, 0.25, 102),  # truncation inside the window: bootstrap from the final obs
        101: (20.0, 0.5, 102),
        103: (30 + 0.5 * 40 + 0.25 * 50, 0.125, 106),
    }
    not_ready = [3, 102, 4, 5, 6, 104, 105, 106]  # final observations; windows whose last link is not written
    starts = np.array([label_row[k] for k in expected])
    rows, boot, ready = buf.windows(starts, 3)
    assert ready.all()
    G, disc = nstep_return(buf.reward[rows], buf.terminated[rows], buf.truncated[rows], 0.5)
    for i, (label, (g, d, b)) in enumerate(expected.items()):
        assert G[i] == pytest.approx(g) and disc[i] == pytest.approx(d), label
        if b is not None:
            assert buf.proprio[boot[i], 0] == b, label
    assert not buf.windows(np.array([label_row[k] for k in not_ready]), 3)[2].any()
    # sampling draws exactly the ready rows; the sampled batch carries the same targets
    gen = torch.Generator().manual_seed(0)
    drawn = buf.sample_starts(400, 3, gen)
    assert set(drawn.tolist()) == {label_row[k] for k in expected}
    batch = buf.sample(64, 3, 0.5, gen)
    for p, g, d in zip(batch["proprio"][:, 0], batch["return"], batch["discount"]):
        assert (g, d) == pytest.approx(expected[int(p)][:2])


def test_replay_windows_match_brute_force_across_wraparound():
    rng = np.random.default_rng(0)
    N, n, gamma = 3, 3, 0.9
    buf = ReplayBuffer(30, N, (1, 1, 1), 1, 1)
    label = itertools.count()
    cur = [next(label) for _ in range(N)]
    history: dict[int, tuple[float, bool, bool, int]] = {}  # label -> (reward, term, trunc, next label)
    for _ in range(60):
        r = rng.normal(size=N)
        term, trunc = rng.random(N) < 0.15, rng.random(N) < 0.1
        trunc &= ~term
        nxt = [next(label) for _ in range(N)]
        _add(buf, cur, r, term, trunc, nxt)
        for e in range(N):
            history[cur[e]] = (float(r[e]), bool(term[e]), bool(trunc[e]), nxt[e])
        cur = [next(label) if term[e] or trunc[e] else nxt[e] for e in range(N)]
    assert buf.size == buf.capacity  # the ring wrapped around several times
    starts = buf.sample_starts(200, n, torch.Generator().manual_seed(1))
    rows, boot, ready = buf.windows(starts, n)
    assert ready.all()
    G, disc = nstep_return(buf.reward[rows], buf.terminated[rows], buf.truncated[rows], gamma)
    for s, g, d, b in zip(starts, G, disc, boot):
        lab, eg, ed = int(buf.proprio[s, 0]), 0.0, 1.0
        for _ in range(n):
            r, te, tr, nl = history[lab]
            eg, ed, lab = eg + ed * r, ed * gamma, nl
            if te or tr:
                ed = 0.0 if te else ed
                break
        assert g == pytest.approx(eg, rel=1e-5) and d == pytest.approx(ed, rel=1e-6)
        if ed:
            assert int(buf.proprio[b, 0]) == lab  # the bootstrap observation


def _edge_crop(x: np.ndarray, pad: int, dy: int, dx: int) -> np.ndarray:
    h, w = x.shape[-2:]
    p = np.pad(x, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    return p[:, pad + dy:pad + dy + h, pad + dx:pad + dx + w]


def test_random_shift():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.integers(0, 256, (64, 3, 12, 10), dtype=np.uint8))
    out = random_shift(x, 4, shifts=torch.zeros(64, 2, dtype=torch.int64))
    assert out.dtype == torch.float32 and torch.equal(out, x.float())  # a zero shift reproduces the input
    shifts = torch.tensor([[1, -2], [-4, 4], [3, 0]] + [[0, 0]] * 61)
    out = random_shift(x, 4, shifts=shifts)
    for i in range(3):
        np.testing.assert_array_equal(out[i].numpy(), _edge_crop(x[i].numpy(), 4, *shifts[i].tolist()))
    # random draws: shape kept, every output is a replicate-padded crop shifted by at most pad pixels
    gen = torch.Generator().manual_seed(0)
    out = random_shift(x, 2, generator=gen)
    assert out.shape == x.shape
    seen = set()
    for i in range(64):
        match = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(out[i].numpy(), _edge_crop(x[i].numpy(), 2, dy, dx))]
        assert match, i
        seen.add(match[0])
    assert len(seen) > 10  # the shifts vary per sample
    with pytest.raises(ValueError, match="shifts must be"):
        random_shift(x, 2, shifts=torch.full((64, 2), 3))


def test_random_shift_equals_the_papers_grid_sample():
    """The paper's RandomShiftsAug (bilinear grid_sample at integer offsets) gives the same crops."""
    import torch.nn.functional as F

    pad, n, h = 4, 6, 16
    x = torch.rand(n, 3, h, h) * 255
    shift = torch.randint(0, 2 * pad + 1, (n, 1, 1, 2), generator=torch.Generator().manual_seed(0))
    xp = F.pad(x, (pad,) * 4, "replicate")
    eps = 1.0 / (h + 2 * pad)
    ar = torch.linspace(-1.0 + eps, 1.0 - eps, h + 2 * pad)[:h].unsqueeze(0).repeat(h, 1).unsqueeze(2)
    grid = torch.cat([ar, ar.transpose(1, 0)], dim=2).unsqueeze(0).repeat(n, 1, 1, 1)
    paper = F.grid_sample(xp, grid + shift.float() * 2.0 / (h + 2 * pad), padding_mode="zeros", align_corners=False)
    ours = random_shift(x, pad, shifts=shift.reshape(n, 2).flip(1) - pad)  # grid is (x, y); ours (dy, dx)
    torch.testing.assert_close(ours, paper, atol=0.02, rtol=0)


def test_exploration_schedule():
    cfg = make_config(TASK, {"std_init": 1.0, "std_final": 0.1, "std_decay_steps": 1000})
    assert [linear_std(s, cfg) for s in (0, 500, 1000, 5000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])


# ------------------------------------------------------------------------------ the learner
def test_gradients_and_seed_phase():
    ag = DrQv2(make_config(TASK, {**TINY, "steps_per_epoch": 16, "num_seed_steps": 20}))
    try:
        stats = ag.train_epoch()  # seed steps only: uniform random actions, no update
        assert stats["updates"] == 0 and np.isnan(stats["critic_loss"]) and ag.buffer.size >= 16
        b = ag.buffer.sample(8, 3, 0.99, ag.gen)
        h = conv_features(ag.encoder, torch.as_tensor(b["pixels"]))
        prop = ag._proprio(b["proprio"])
        ag.actor_loss(h.detach(), prop).backward()  # the actor's loss never reaches the encoder
        assert all(p.grad is None for p in ag.encoder.convs.parameters())
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ag.actor.parameters())
        ag.actor.zero_grad()
        conv_before = [p.detach().clone() for p in ag.encoder.convs.parameters()]
        actor_before = [p.detach().clone() for p in ag.actor.parameters()]
        target_before = [p.detach().clone() for p in ag.critic_target.parameters()]
        out = ag.update()  # the critic's loss trains the encoder; the target moves by tau
        assert all(np.isfinite(v) for v in out.values())
        assert all(not torch.equal(a, p) for a, p in zip(conv_before, ag.encoder.convs.parameters()))
        assert any(not torch.equal(a, p) for a, p in zip(actor_before, ag.actor.parameters()))
        for t0, t, p in zip(target_before, ag.critic_target.parameters(), ag.critic.parameters()):
            torch.testing.assert_close(t, 0.99 * t0 + 0.01 * p.detach())
        assert ag.critic.trunk is ag.encoder.head and ag.critic_target.trunk is not ag.encoder.head
    finally:
        ag.close()


def test_train_command_policy_and_evaluation(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(run, 2)) == 0
    assert "drqv2 on VRB/Hopper-v0, N=4, batch=16" in capsys.readouterr().out
    for name in ("config.json", "progress.csv", "policy.pt", "learning_curve.png", "checkpoints/latest.pt"):
        assert (run / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    rows = read_csv(run / "progress.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2] and [int(r["env_steps"]) for r in rows] == [48, 96]
    assert int(rows[-1]["updates"]) == 96 // 4 - 16 // 4 + 1  # one update per batched step from env step 16
    for k in ("critic_loss", "actor_loss", "q_mean", "expl_std", "episode_return", "env_steps_per_s"):
        assert np.isfinite(float(rows[-1][k])), k
    assert int(rows[-1]["buffer_rows"]) == 64  # the 64-row ring is full

    pol = load_policy(run / "policy.pt", task=TASK)
    assert pol.meta["epoch"] == 2 and pol.meta["env_steps"] == 96
    rng = np.random.default_rng(0)
    obs = {"pixels": rng.integers(0, 256, (3, 36, 36, 9), dtype=np.uint8),
           "proprio": rng.normal(size=(3, 6)).astype(np.float32)}
    act = pol.act(obs)
    assert act.shape == (3, 3) and act.dtype == np.float32 and np.all(np.abs(act) <= 1)
    np.testing.assert_array_equal(pol.act(obs), act)  # deterministic
    chw = {**obs, "pixels": obs["pixels"].transpose(0, 3, 1, 2)}
    np.testing.assert_array_equal(pol.act(chw), act)
    one = pol.act({"pixels": obs["pixels"][0], "proprio": obs["proprio"][0]})
    assert one.shape == (3,)
    np.testing.assert_allclose(one, act[0], atol=1e-5)
    with pytest.raises(ValueError, match=r"pixels must be \(n, 9, 36, 36\) or \(n, 36, 36, 9\).*got \(1, 16, 16, 9\)"):
        pol.act({**obs, "pixels": np.zeros((1, 16, 16, 9), np.uint8)})
    with pytest.raises(ValueError, match=r"proprio must be \(3, 6\)"):
        pol.act({**obs, "proprio": np.zeros((3, 5), np.float32)})
    with pytest.raises(ValueError, match="lacks"):
        pol.act({"pixels": obs["pixels"]})
    with pytest.raises(IncompatibleCheckpoint, match="trained on 'VRB/Hopper-v0'"):
        load_policy(run / "policy.pt", task="VRB/Walker-v1")
    # the training checkpoint loads as the same policy
    np.testing.assert_array_equal(load_policy(run / "checkpoints" / "latest.pt").act(obs), act)

    from visual_robo_bench.evaluation import evaluate

    res = evaluate(str(run / "policy.pt"), TASK, episodes=2, num_envs=2, progress=False,
                   env_kwargs={"image_size": (36, 36), "max_episode_steps": 12})
    assert res.error is None, res.error
    assert res.summary()["episodes"] == 2 and res.summary()["agent_errors"] == 0


def _assert_same_checkpoint(a: dict, b: dict) -> None:
    for net in ("encoder", "actor", "critic", "critic_target"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    for opt in ("critic_opt", "actor_opt"):
        for pid, st in a[opt]["state"].items():
            for k, v in st.items():
                assert torch.equal(v, b[opt]["state"][pid][k]), (opt, pid, k)
    for k, v in a["buffer"].items():
        assert np.array_equal(np.asarray(v), np.asarray(b["buffer"][k])), ("buffer", k)
    assert torch.equal(a["torch_gen"], b["torch_gen"])
    assert a["env_rngs"] == b["env_rngs"] and a["counters"]["updates"] == b["counters"]["updates"]
    assert np.array_equal(a["env_state"]["physics"], b["env_state"]["physics"])
    assert all(np.array_equal(x, y) for x, y in zip(a["frame_stacks"], b["frame_stacks"]))
    assert a["episodes"]["window"] == b["episodes"]["window"]
    assert np.array_equal(a["rms"]["mean"], b["rms"]["mean"])


def test_resume_is_exact(tmp_path, capsys):
    """2 epochs straight == 1 epoch + resume for 1 (mid-episode checkpoint, the ring wraps in epoch 2)."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(_train(straight, 2)) == 0
    assert main(_train(resumed, 1)) == 0
    ck1 = load_file(resumed / "checkpoints" / "latest.pt")
    assert ck1["buffer"]["size"] < 64 and (np.asarray(ck1["env_state"]["elapsed"]) > 0).any()
    capsys.readouterr()
    assert main(["train", "--agent", "drqv2", "--resume", "--run-dir", str(resumed), "--no-progress", "--task", TASK,
                 "--set", "max_epochs=2"]) == 0
    assert "resuming" in capsys.readouterr().out
    a = load_file(straight / "checkpoints" / "latest.pt")
    b = load_file(resumed / "checkpoints" / "latest.pt")
    assert a["counters"]["epoch"] == b["counters"]["epoch"] == 2 and a["buffer"]["size"] == 64
    _assert_same_checkpoint(a, b)
    ra, rb = read_csv(straight / "progress.csv"), read_csv(resumed / "progress.csv")
    assert [int(r["epoch"]) for r in rb] == [1, 2]
    for x, y in zip(ra, rb):
        assert {k: v for k, v in x.items() if k not in TIMING} == {k: v for k, v in y.items() if k not in TIMING}
    pa, pb = load_file(straight / "policy.pt"), load_file(resumed / "policy.pt")
    assert all(torch.equal(pa["actor"][k], pb["actor"][k]) for k in pa["actor"])


def test_bad_input(tmp_path, capsys):
    with pytest.raises(ConfigError, match="unknown config key 'n_steps'.*'n_step'"):
        make_config(TASK, {"n_steps": 5})
    with pytest.raises(ConfigError, match="expects int"):
        make_config(TASK, {"batch_size": "big"})
    for key, value, msg in (
        ("steps_per_epoch", 50, r"steps_per_epoch \(50\) must be a positive multiple of num_envs \(8\)"),
        ("num_seed_steps", 8, r"num_seed_steps \(8\) must be >= num_envs \* \(n_step \+ 1\) = 32"),
        ("buffer_capacity", 100, r"buffer_capacity \(100\) must be >= 4 \* num_envs \* \(n_step \+ 1\) = 128"),
        ("n_step", 0, "n_step must be >= 1"),
        ("gamma", 1.5, r"gamma must be in \(0, 1\]"),
        ("critic_tau", 0.0, r"critic_tau must be in \(0, 1\]"),
        ("std_clip", -1.0, "std_clip must be >= 0"),
    ):
        with pytest.raises(ConfigError, match=msg):
            make_config(TASK, {key: value})
    with pytest.raises(KeyError, match="unknown task id"):
        make_config("VRB/Hoper-v0")
    # through the command line: exit code 2, a clear message, no run directory left behind
    assert main(["train", "--agent", "drqv2", "--task", TASK, "--run-dir", str(tmp_path / "a"),
                 "--set", "n_step=0"]) == 2
    assert "n_step must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    # a policy file is not a checkpoint to resume; files of another agent or version are refused
    run = tmp_path / "run"
    assert main(_train(run, 1)) == 0
    with pytest.raises(IncompatibleCheckpoint, match="policy file, not a training checkpoint"):
        DrQv2.from_checkpoint(run / "policy.pt")
    capsys.readouterr()
    assert main(["train", "--agent", "drqv2", "--resume", "--run-dir", str(run), "--set", "batch_size=8"]) == 2
    assert "cannot change ['batch_size']" in capsys.readouterr().err
    data = torch.load(run / "policy.pt", weights_only=False)
    data["format_version"] = FORMAT_VERSION + 1
    torch.save(data, tmp_path / "future.pt")
    with pytest.raises(IncompatibleCheckpoint, match="format version"):
        load_policy(tmp_path / "future.pt")
    data["agent"], data["format_version"] = "sdpg", FORMAT_VERSION
    torch.save(data, tmp_path / "sdpg.pt")
    with pytest.raises(IncompatibleCheckpoint, match="not a DrQ-v2 checkpoint"):
        load_policy(tmp_path / "sdpg.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(IncompatibleCheckpoint, match="not a readable"):
        load_policy(tmp_path / "junk.pt")
