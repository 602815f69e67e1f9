"""SDPG reference agent: the math against hand-computed examples, branching, reward-scale invariance,
checkpoints, the exported policy, and the ``vrb train`` command (including kill + exact resume).

Tiny configs only (B=2, M=2, T=4, 32x32 images): the whole file runs in well under a minute.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from visual_robo_bench.agents.common import ConfigError  # noqa: E402
from visual_robo_bench.registry import list_tasks  # noqa: E402
from visual_robo_bench.agents.sdpg import (  # noqa: E402
    FORMAT_VERSION,
    PRESETS,
    SDPG,
    IncompatibleCheckpoint,
    ascent_directions,
    delta_j,
    lambda_returns,
    load_policy,
    make_config,
)

TASK = "VRB/Hopper-v1"
TINY = dict(num_nominal=2, num_perturbations=2, horizon=4, image_size=(32, 32), critic_minibatch=16,
            critic_iterations=2, warmup_epochs=100, max_epochs=200, max_episode_steps=6, nthread=1, torch_threads=1)
TINY_SET = ["num_nominal=2", "num_perturbations=2", "horizon=4", "image_size=32,32", "critic_minibatch=16",
            "warmup_epochs=100", "max_episode_steps=6", "nthread=1", "torch_threads=1"]


def tiny(**changes) -> object:
    return make_config(TASK, {**TINY, **changes})


# ------------------------------------------------------------------------------ the math
def test_lambda_returns_hand_computed():
    r = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    v = np.array([[10.0, 10.0], [20.0, 20.0], [30.0, 30.0]])
    done = np.array([[False, False], [True, False], [True, True]])
    G = lambda_returns(r, v, done, gamma=0.5, lam=0.5)
    # env 0: G2 = 3 + .5*30 = 18; G1 = 2 + .5*20 = 12 (done); G0 = 1 + .5*(.5*10 + .5*12) = 6.5
    # env 1: G2 = 18; G1 = 2 + .5*(.5*20 + .5*18) = 11.5; G0 = 1 + .5*(.5*10 + .5*11.5) = 6.375
    np.testing.assert_allclose(G, [[6.5, 6.375], [12.0, 11.5], [18.0, 18.0]])
    # without the trace: G_t = r_t + gamma * (done ? V' : G_{t+1})
    G = lambda_returns(r, v, done, gamma=0.5, lam=0.5, eligibility_trace=False)
    np.testing.assert_allclose(G, [[1 + 0.5 * 12, 1 + 0.5 * (2 + 0.5 * 18)], [12.0, 2 + 0.5 * 18], [18.0, 18.0]])


def test_delta_j_normalization_and_directions_hand_computed():
    # one block, M = 2: returns (nominal first) 5, 7, 3 -> dJ = (0, 2, -2); unbiased std over all
    # three entries = sqrt((0 + 4 + 4) / 2) = 2 -> normalised (0, 1, -1) (not mean-centred)
    G = np.array([[5.0, 7.0, 3.0]])  # (T=1, N=3): env 0 the nominal
    dJ = delta_j(G, np.ones((1, 3), bool), np.array([[0, 1, 2]]))
    np.testing.assert_array_equal(dJ, [[[0.0, 2.0, -2.0]]])
    dJ = dJ[0]
    eps = np.array([[[0.0, 0.0], [0.5, 2.0], [-1.0, 0.0]]])  # (1, M+1, A=2), zero for the nominal
    sigma = np.array([[2.0, 0.5]])
    d_mu, d_l, std = ascent_directions(dJ, eps, sigma)
    s = 2.0 / (2.0 + 1e-6)
    np.testing.assert_allclose(std, [2.0])
    # d_mu = (1/(M+1)) sum_j dJn_j eps_j = (0.5*s + (-1)(-1)*s) / 3, (2*s + 0) / 3
    np.testing.assert_allclose(d_mu, [[1.5 * s / 3, 2.0 * s / 3]])
    # d_l = (1/3) sum_j dJn_j (eps_j^2 - 1) * sigma
    np.testing.assert_allclose(d_l, [[(s * (0.25 - 1) - s * (1 - 1)) / 3 * 2.0, (s * (4 - 1) - s * (0 - 1)) / 3 * 0.5]])
    # top-k = 1 keeps only the best branch (j = 1) and averages over that one entry (upstream: topk, then mean)
    d_mu1, d_l1, _ = ascent_directions(dJ, eps, sigma, top_k=1)
    np.testing.assert_allclose(d_mu1, [[0.5 * s, 2.0 * s]])
    np.testing.assert_allclose(d_l1, [[s * (0.25 - 1) * 2.0, s * (4 - 1) * 0.5]])


def test_top_k_keeps_exactly_k_entries_and_divides_by_k():
    """§2.6 / §3 step 8 with top_k: exactly the k entries with the largest ΔJ (ties at the threshold do not add
    entries), averaged over k, for both the mean and the log-std direction."""
    dJ = np.array([[0.0, 1.0, 1.0, 1.0, -1.0]])  # (1, M+1 = 5): three branches tie at the top
    eps = np.array([[[0.0], [1.0], [2.0], [4.0], [3.0]]])  # (1, 5, A=1)
    sigma = np.array([[0.5]])
    d_mu, d_l, std = ascent_directions(dJ, eps, sigma, top_k=2)
    n1 = 1.0 / (std[0] + 1e-6)  # the normalised ΔJ of the tied entries (normalised over all M+1)
    # the first two of the tie (j = 1, 2), mean over k = 2
    np.testing.assert_allclose(d_mu, [[n1 * (1.0 + 2.0) / 2]])
    np.testing.assert_allclose(d_l, [[n1 * ((1.0 - 1) + (4.0 - 1)) / 2 * 0.5]])
    # k = M+1 is every entry, divided by M+1: the same as top_k = 0
    for a, b in zip(ascent_directions(dJ, eps, sigma, top_k=5), ascent_directions(dJ, eps, sigma)):
        np.testing.assert_array_equal(a, b)
    # batched over (T, B): each (t, b) keeps its own k entries; the nominal's zero may be among them
    rng = np.random.default_rng(0)
    dJ = rng.normal(size=(3, 2, 6))
    dJ[..., 0] = 0.0
    eps = rng.normal(size=(3, 2, 6, 4))
    eps[..., 0, :] = 0.0
    sigma = np.exp(rng.normal(size=(3, 2, 4)))
    d_mu, d_l, std = ascent_directions(dJ, eps, sigma, top_k=3)
    for t in range(3):
        for b in range(2):
            keep = np.argsort(-dJ[t, b])[:3]
            w = dJ[t, b, keep] / (std[t, b] + 1e-6)
            np.testing.assert_allclose(d_mu[t, b], (w[:, None] * eps[t, b, keep]).mean(0))
            np.testing.assert_allclose(d_l[t, b], (w[:, None] * (eps[t, b, keep] ** 2 - 1)).mean(0) * sigma[t, b])


def test_segment_level_delta_j_hand_computed():
    """Go2's ΔJ (§2.4, causality False): every step of a segment gets the difference of the returns from the
    segment's start, R_e(s) - R_nom(s), with the nominal's return taken at that same start s."""
    r = np.array([[1.0, 2.0, 0.0], [1.0, 4.0, 1.0], [1.0, 8.0, 2.0], [1.0, 16.0, 3.0]])  # (T=4, N=3)
    v = np.zeros((4, 3))
    dones = np.array([[False, False, False], [False, True, False], [False, False, False], [True, True, True]])
    G = lambda_returns(r, v, dones, gamma=0.5, lam=0.95, eligibility_trace=False)
    # nominal (env 0), one segment: G = 1.875, 1.75, 1.5, 1; env 1 segments [0, 1] and [2, 3]: G0 = 2 + 0.5*4 = 4,
    # G2 = 8 + 0.5*16 = 16; env 2 one segment: G0 = 0 + 0.5*(1 + 0.5*(2 + 0.5*3)) = 1.375
    np.testing.assert_allclose(G[:, 0], [1.875, 1.75, 1.5, 1.0])
    block = np.array([[0, 1, 2]])
    dJ = delta_j(G, dones, block, causal=False)[:, 0]  # (T, M+1)
    np.testing.assert_allclose(dJ[:, 0], 0.0)
    np.testing.assert_allclose(dJ[:, 1], [4 - 1.875, 4 - 1.875, 16 - 1.5, 16 - 1.5])
    np.testing.assert_allclose(dJ[:, 2], [1.375 - 1.875] * 4)
    # causal: per-timestep differences of the returns-to-go
    np.testing.assert_allclose(delta_j(G, dones, block)[:, 0], G[:, block[0]] - G[:, :1])


def test_directions_invariant_to_reward_scale():
    rng = np.random.default_rng(0)
    G = rng.normal(size=(4, 3, 5))
    eps = rng.normal(size=(4, 3, 5, 2))
    eps[:, :, 0] = 0
    sigma = np.exp(rng.normal(size=(4, 3, 2)))
    a = ascent_directions(G - G[..., :1], eps, sigma)
    b = ascent_directions(37.5 * G - 37.5 * G[..., :1], eps, sigma)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5)
    np.testing.assert_allclose(b[2], 37.5 * a[2])


# ------------------------------------------------------------------------------ the agent
@pytest.fixture(scope="module")
def agent():
    ag = SDPG(tiny())
    yield ag
    ag.close()


def test_branching_starts_aux_envs_exactly_at_the_nominal_state(agent):
    env, B, M = agent.env, agent.B, agent.M
    agent.train_epoch()  # the nominal envs have moved on from their initial states
    agent.branch_all()
    nominal = env.get_state(np.arange(B))
    for b in range(B):
        aux = agent.block_ids[b, 1:]
        st = env.get_state(aux)
        assert np.array_equal(st.physics, np.repeat(nominal.physics[b:b + 1], M, axis=0))
        assert np.array_equal(st.elapsed, np.full(M, nominal.elapsed[b]))
        for k, v in st.task.items():
            assert np.array_equal(v, np.repeat(nominal.task[k][b:b + 1], M, axis=0)), k
        for k in ("privileged", "proprio"):
            assert np.array_equal(agent.obs[k][aux], np.repeat(agent.obs[k][b:b + 1], M, axis=0)), k
    # identical actions from the cloned state give bit-identical transitions (no hidden randomness)
    a = np.tile(np.linspace(-0.5, 0.5, agent.action_dim, dtype=np.float32), (agent.N, 1))
    _, r, term, trunc, info = env.step(a)
    for b in range(B):
        blk = agent.block_ids[b]
        assert np.all(r[blk] == r[b]) and np.all(info["privileged"][blk] == info["privileged"][b])
    agent.branch_all()  # leave the env steppable for other tests


def test_rollout_layout_resets_and_reclones():
    ag = SDPG(tiny(max_episode_steps=3, horizon=5))  # episodes end mid-epoch (truncation at step 3)
    executed = []
    step = ag.env.step
    ag.env.step = lambda a: (executed.append(a.copy()), step(a))[1]
    try:
        ro = ag.rollout()
        B, M, N, T = ag.B, ag.M, ag.N, 5
        assert list(ro.images) == ["pixels"] and ro.images["pixels"].shape == (T, B, 9, 32, 32)
        assert ro.eps.shape == (T, B, M + 1, ag.action_dim)
        assert np.all(ro.eps[:, :, 0] == 0) and np.all(ro.dones[-1])
        assert np.all(ro.dones[2])  # every env truncates at its 3rd step: all of them are done there
        assert ag.total_episodes == B and ag.env_steps == N * T
        assert ag.frames == B * T + B  # the steps, and the first frame of each nominal's second episode
        # after the nominal resets at t=2, branches were re-cloned: same elapsed counter as their nominal
        st = ag.env.get_state()
        assert np.all(st.elapsed[ag.block_ids] == st.elapsed[ag.block_ids[:, :1]])
        # the nominal executed tanh of its clamped mean (no noise); its branches tanh(clip(mean + sigma * eps, +-2))
        assert len(executed) == T and np.abs(ro.mean).max() <= 2.0
        for t, a in enumerate(executed):
            block = np.clip(ro.mean[t][:, None] + np.exp(ro.log_std[t])[:, None] * ro.eps[t], -2.0, 2.0)
            np.testing.assert_array_equal(a[ag.block_ids[:, 0]], np.tanh(ro.mean[t]).astype(np.float32))
            np.testing.assert_array_equal(a[ag.block_ids], np.tanh(block).astype(np.float32))
            assert np.abs(ro.eps[t][:, 1:]).min() > 0  # the branches really were perturbed
    finally:
        ag.close()


def test_tiny_training_run_updates_the_actor():
    ag = SDPG(tiny())
    try:
        before = [p.detach().clone() for p in ag.actor.parameters()]
        stats = [ag.train_epoch() for _ in range(4)]
        assert ag.epoch == 4 and ag.env_steps == 4 * ag.N * 4
        for s in stats:
            for k in ("actor_loss", "critic_loss", "delta_j_std", "d_mu_norm", "sigma"):
                assert np.isfinite(s[k]), (k, s[k])
        assert any(not torch.equal(a, b.detach()) for a, b in zip(before, ag.actor.parameters()))
        assert stats[-1]["episodes"] >= ag.B  # episodes of 6 steps ended during 16 steps
        assert np.isfinite(stats[-1]["episode_return"])
    finally:
        ag.close()


def test_epoch_time_is_split_into_render_physics_and_learner():
    """§6 item 15: the env's time splits into the time inside its renderer and the rest (physics); the learner
    is everything outside the env. A renderer slowed by a known delay shows up in the render share only."""
    from visual_robo_bench.agents.sdpg import make_env

    cfg = tiny()
    env = make_env(cfg)
    env.reset()
    renderer = env.unwrapped.renderer
    render, calls, delay = renderer.render, [], 0.05

    def slow_render(*args, **kwargs):
        calls.append(1)
        time.sleep(delay)
        return render(*args, **kwargs)

    renderer.render = slow_render
    ag = SDPG(cfg, env=env)
    try:
        calls.clear()
        s = ag.train_epoch()
        assert len(calls) >= cfg.horizon  # one render call per step (and one per reset of nominal envs)
        assert s["time_render_s"] >= delay * len(calls)
        assert s["time_physics_s"] >= 0 and s["time_physics_s"] < delay * len(calls)
        assert s["time_render_s"] + s["time_physics_s"] == pytest.approx(s["time_env_s"], abs=1e-9)
        assert s["time_learner_s"] > 0
        assert s["time_env_s"] + s["time_learner_s"] == pytest.approx(s["time_epoch_s"], abs=1e-9)
        assert s["time_learner_s"] >= s["time_actor_s"] + s["time_critic_s"]
    finally:
        ag.close()


def test_reward_scale_leaves_the_actor_update_unchanged():
    """Reward x c (and a critic whose values are x c, as it would have learned) -> same targets and update."""
    c = 8.0  # a power of two: the scaled rewards and critic values are exact, so only the +1e-6 differs
    a1, a2 = SDPG(tiny(seed=3)), SDPG(tiny(seed=3, reward_scale=c))
    try:
        with torch.no_grad():
            for crit in (a2.critic, a2.target_critic):
                crit.out.weight.mul_(c)
                crit.out.bias.mul_(c)
        ro1, ro2 = a1.rollout(), a2.rollout()
        np.testing.assert_allclose(ro2.rewards, c * ro1.rewards, rtol=1e-12)
        mu1, l1, s1 = a1.actor_targets(ro1)
        mu2, l2, s2 = a2.actor_targets(ro2)
        assert not np.allclose(a1._returns, a2._returns)  # the returns themselves do scale
        # exact up to the +1e-6 in the normaliser, a relative effect of at most 1e-6 / std(dJ)
        G = a1._returns[:, a1.block_ids]
        tol = 2e-6 / (G - G[..., :1]).std(axis=-1, ddof=1).min()
        assert tol < 1e-2
        np.testing.assert_array_equal(ro1.mean, ro2.mean)  # same actions were executed
        np.testing.assert_allclose(mu1, mu2, rtol=0, atol=tol * np.abs(mu1 - ro1.mean).max() + 1e-12)
        np.testing.assert_allclose(l1, l2, rtol=0, atol=tol * np.abs(l1 - ro1.log_std).max() + 1e-12)
        assert not np.allclose(mu1, ro1.mean)  # the targets do move the policy
        before = torch.cat([p.detach().flatten() for p in a1.actor.parameters()])
        u1, u2 = a1.update(ro1), a2.update(ro2)
        assert u1["actor_loss"] == pytest.approx(u2["actor_loss"], rel=1e-4)
        assert u1["actor_grad_norm"] == pytest.approx(u2["actor_grad_norm"], rel=1e-4)
        # Adam divides by sqrt(v) + 1e-8, which magnifies the 1e-6 effect on a few near-zero
        # gradients: compare the whole update vector
        step1 = torch.cat([p.detach().flatten() for p in a1.actor.parameters()]) - before
        step2 = torch.cat([p.detach().flatten() for p in a2.actor.parameters()]) - before
        assert float((step1 - step2).norm() / step1.norm()) < 1e-3
    finally:
        a1.close()
        a2.close()


def _assert_same_agent(a, b):
    for m1, m2 in ((a.actor, b.actor), (a.critic, b.critic), (a.target_critic, b.target_critic)):
        for (n1, p1), (n2, p2) in zip(m1.state_dict().items(), m2.state_dict().items()):
            assert n1 == n2 and torch.equal(p1, p2), n1
    s1, s2 = a.env.get_state(), b.env.get_state()
    assert np.array_equal(s1.physics, s2.physics) and np.array_equal(s1.elapsed, s2.elapsed)
    for k in a.obs:
        assert np.array_equal(a.obs[k], b.obs[k]), k
    for k in a.rms:
        assert np.array_equal(a.rms[k].mean, b.rms[k].mean)
    assert a.rng.bit_generator.state == b.rng.bit_generator.state


def test_checkpoint_round_trip_continues_exactly(tmp_path):
    a = SDPG(tiny(max_episode_steps=10))  # the checkpoint falls mid-episode (step 8 of 10)
    try:
        for _ in range(2):
            a.train_epoch()
        a.save_checkpoint(tmp_path / "ck.pt")
        b = SDPG.from_checkpoint(tmp_path / "ck.pt", task=TASK)
        try:
            _assert_same_agent(a, b)
            assert b.epoch == 2 and b.env_steps == a.env_steps and b.episodes == a.episodes
            for _ in range(3):  # crosses episode ends (6 steps) so env generators and resets are exercised
                sa, sb = a.train_epoch(), b.train_epoch()
                assert sa["actor_loss"] == sb["actor_loss"] and sa["critic_loss"] == sb["critic_loss"]
                _assert_same_agent(a, b)
        finally:
            b.close()
        # a checkpoint of another task or of another format version is refused with a clear error
        with pytest.raises(IncompatibleCheckpoint, match="trained on 'VRB/Hopper-v1'"):
            SDPG.from_checkpoint(tmp_path / "ck.pt", task="VRB/Walker-v1")
        data = torch.load(tmp_path / "ck.pt", weights_only=False)
        data["format_version"] = FORMAT_VERSION + 1
        torch.save(data, tmp_path / "future.pt")
        with pytest.raises(IncompatibleCheckpoint, match="format version"):
            SDPG.from_checkpoint(tmp_path / "future.pt")
        (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
        with pytest.raises(IncompatibleCheckpoint, match="not a readable"):
            load_policy(tmp_path / "junk.pt")
    finally:
        a.close()


def test_exported_policy_is_deterministic_tanh_mean(tmp_path):
    a = SDPG(tiny())
    try:
        a.train_epoch()
        a.export_policy(tmp_path / "policy.pt")
        pol = load_policy(tmp_path / "policy.pt", task=TASK)
        obs = a.obs
        act = pol.act(obs)
        m, _ = a.policy([obs["pixels"]], None)
        np.testing.assert_allclose(act, np.tanh(m), rtol=1e-5, atol=1e-6)
        assert act.shape == (a.B, a.action_dim) and act.dtype == np.float32 and np.all(np.abs(act) <= 1)
        hwc = {**obs, "pixels": obs["pixels"].transpose(0, 2, 3, 1)}
        np.testing.assert_array_equal(pol.act(hwc), act)
        np.testing.assert_allclose(pol.act({"pixels": obs["pixels"][0]}), act[0], atol=1e-5)  # batch of 1
        with pytest.raises(ValueError, match="pixels must be"):
            pol.act({"pixels": np.zeros((1, 9, 16, 16), np.uint8)})
        with pytest.raises(IncompatibleCheckpoint, match="trained on"):
            load_policy(tmp_path / "policy.pt", task="VRB/Walker-v1")
    finally:
        a.close()


@pytest.mark.parametrize("task", list_tasks())
def test_every_task_trains_on_all_its_spec_inputs(task, tmp_path):
    """Every registered task has a preset (§5), and one epoch trains every input it names: each policy camera's
    encoder, the proprio MLP where the preset uses proprio; Go2's std stays fixed. The exported policy reads
    every camera."""
    assert task in PRESETS
    cfg = make_config(task, dict(num_nominal=1, num_perturbations=1, horizon=2, critic_minibatch=8,
                                 critic_iterations=1, max_episode_steps=4, nthread=1))
    ag = SDPG(cfg)
    try:
        env = ag.env.unwrapped
        assert ag.image_keys == [env.image_key(i) for i in range(len(env.cfg.policy_cameras))]
        assert len(ag.actor.extra_encoders) == len(ag.image_keys) - 1
        assert (ag.actor.proprio_encoder is not None) == cfg.use_proprio
        before = {n: p.detach().clone() for n, p in ag.actor.named_parameters()}
        ag.train_epoch()
        changed = {n.split(".")[0] if not n.startswith("extra_encoders") else ".".join(n.split(".")[:2])
                   for n, p in ag.actor.named_parameters() if not torch.equal(p, before[n])}
        inputs = {"encoder", *(f"extra_encoders.{i}" for i in range(len(ag.image_keys) - 1))}
        if cfg.use_proprio:
            inputs.add("proprio_encoder")
        assert inputs <= changed, sorted(inputs - changed)
        assert ("log_std" in changed) == cfg.learn_std
        ag.export_policy(tmp_path / "policy.pt")
        pol = load_policy(tmp_path / "policy.pt", task=task)
        obs = {k: v[:1] for k, v in ag.obs.items()}
        act = pol.act(obs)
        for key in ag.image_keys[1:]:  # the extra cameras are read: a blank image changes the action
            assert not np.array_equal(pol.act({**obs, key: np.zeros_like(obs[key])}), act), key
        with pytest.raises(ValueError, match="observation has no"):
            pol.act({k: v for k, v in obs.items() if k != ag.image_keys[-1]})
    finally:
        ag.close()


def test_go2_preset_follows_the_spec():
    """§5 / §2.4 / §2.9: segment-level ΔJ without trace, fixed sigma = 1, no bounds, constant actor LR, reward
    scale 10, 5 critic passes, hard target copy, depth backbone, no RMS on proprio and privileged."""
    for task in ("VRB/Go2-v0", "VRB/Go2Terrain-v0"):
        c = PRESETS[task]
        assert (c.causality, c.eligibility_trace, c.learn_std, c.init_log_std, c.mean_bound) == (
            False, False, False, 0.0, None)
        assert (c.reward_scale, c.critic_iterations, c.target_critic_alpha, c.actor_lr, c.actor_lr_schedule) == (
            10.0, 5, 0.0, 5e-4, "constant")
        assert (c.pixel_encoder, c.encoder_dim, c.proprio_rms, c.privileged_rms, c.entropy) == (
            "depth", 32, False, False, "none")
    with pytest.raises(ConfigError, match="fixed std"):
        make_config("VRB/Go2-v0", {"entropy": "auto"})


@pytest.mark.parametrize("scan_rms", [True, False])
def test_height_scan_rms_switch(scan_rms):
    """§2.11: the height scan is RMS-normalised only with height_scan_rms (True on every preset, as the reference
    runs; False is upstream's WalkerHurdle/G1); the privileged input keeps following privileged_rms."""
    assert all(c.height_scan_rms for c in PRESETS.values())
    cfg = make_config("VRB/WalkerHurdle-v1", dict(num_nominal=1, num_perturbations=1, horizon=2, critic_minibatch=8,
                                                  critic_iterations=1, max_episode_steps=4, nthread=1,
                                                  image_size=(32, 32), height_scan_rms=scan_rms))
    ag = SDPG(cfg)
    try:
        ag.train_epoch()  # running statistics away from their initial (0, 1)
        assert ("height_scan" in ag.rms) == scan_rms and "privileged" in ag.rms
        raw = {k: ag.obs[k][:ag.B].copy() for k in ("height_scan", "privileged")}
        expected_scan = ag.rms["height_scan"].normalize(raw["height_scan"]) if scan_rms else raw["height_scan"]
        expected_priv = ag.rms["privileged"].normalize(raw["privileged"])
        ro = ag.rollout()  # step 0 stores the nominal observations as they were (normalised with the snapshot)
        np.testing.assert_array_equal(ro.critic_obs["height_scan"][0, :ag.B], expected_scan.astype(np.float32))
        np.testing.assert_array_equal(ro.critic_obs["privileged"][0, :ag.B], expected_priv)
        assert np.allclose(expected_scan, raw["height_scan"]) != scan_rms  # normalising does change the scan
    finally:
        ag.close()


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown config key 'horizn'.*'horizon'"):
        make_config(TASK, {"horizn": 4})
    with pytest.raises(ConfigError, match="expects int"):
        make_config(TASK, {"horizon": "four"})
    with pytest.raises(ConfigError, match="entropy must be"):
        make_config(TASK, {"entropy": "sometimes"})
    with pytest.raises(KeyError, match="unknown task id"):
        make_config("VRB/Hoper-v0")
    cfg = make_config("VRB/Humanoid-v0", {"horizon": "8", "image_size": "(64, 64)", "use_proprio": "true"})
    assert (cfg.horizon, cfg.image_size, cfg.use_proprio, cfg.log_std_max) == (8, (64, 64), True, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.horizon = 3


# ------------------------------------------------------------------------------ vrb train
def _train_args(run_dir: Path, epochs: int, checkpoint_every: int = 1) -> list[str]:
    args = ["train", "--agent", "sdpg", "--task", TASK, "--run-dir", str(run_dir), "--no-progress", "--seed", "1"]
    for item in [*TINY_SET, f"max_epochs={epochs}", f"checkpoint_every={checkpoint_every}"]:
        args += ["--set", item]
    return args


def _rows(run_dir: Path) -> list[dict]:
    from visual_robo_bench.agents.common import read_csv

    return read_csv(run_dir / "progress.csv")


def test_train_command_outputs_and_bad_input(tmp_path, capsys):
    from visual_robo_bench.cli import main

    run = tmp_path / "run"
    assert main(_train_args(run, 3)) == 0
    for name in ("config.json", "progress.csv", "policy.pt", "learning_curve.png", "checkpoints/latest.pt"):
        assert (run / name).is_file(), name
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    rows = _rows(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert int(rows[-1]["env_steps"]) == 3 * 4 * 6 and float(rows[-1]["env_steps_per_s"]) > 0
    pol = load_policy(run / "policy.pt", task=TASK)
    assert pol.act({"pixels": np.zeros((3, 32, 32, 9), np.uint8)}).shape == (3, 3)
    # the evaluation harness loads the policy file by path (HWC observations)
    from visual_robo_bench.evaluation.harness import evaluate

    res = evaluate(str(run / "policy.pt"), TASK, episodes=2, num_envs=2, progress=False,
                   env_kwargs={"image_size": (32, 32), "max_episode_steps": 6})
    assert res.error is None and res.summary()["episodes"] == 2 and res.summary()["agent_errors"] == 0
    # a new run never clobbers an existing directory
    before = (run / "progress.csv").read_bytes()
    assert main(_train_args(run, 3)) == 2
    assert (run / "progress.csv").read_bytes() == before
    assert "already exists" in capsys.readouterr().err
    for args, msg in (
        (["train", "--agent", "nope", "--task", TASK], "unknown agent 'nope'"),
        (["train", "--task", "VRB/Nope-v0", "--run-dir", str(tmp_path / "x")], "unknown task id"),
        (["train", "--task", TASK, "--set", "horizn=3", "--run-dir", str(tmp_path / "y")],
         "unknown config key 'horizn'"),
        (["train", "--task", TASK, "--set", "horizon", "--run-dir", str(tmp_path / "y")], "key=value"),
        (["train", "--task", "VRB/Walker-v1", "--resume", "--run-dir", str(run)], "trained on 'VRB/Hopper-v1'"),
        (["train", "--resume", "--run-dir", str(run), "--set", "horizon=8"], "cannot change ['horizon']"),
        (["train", "--resume", "--run-dir", str(run), "--set", "torch_threads=2"], "cannot change ['torch_threads']"),
        (["train", "--resume", "--run-dir", str(tmp_path / "none")], "does not exist"),
    ):
        assert main(args) == 2, args
        assert msg in capsys.readouterr().err.replace("\n", ""), msg
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_train_keeps_the_best_policy_and_evaluates_periodically(tmp_path):
    """§3 step 13: ``best_policy.pt`` is the policy of the epoch with the best running nominal return, loadable
    like ``policy.pt``; with eval_interval the harness runs every eval_interval epochs and its return is logged
    (without changing the training)."""
    from visual_robo_bench.cli import main
    from visual_robo_bench.evaluation.harness import evaluate

    plain, evald = tmp_path / "plain", tmp_path / "eval"
    assert main(_train_args(plain, 6, 3)) == 0
    assert main(_train_args(evald, 6, 3) + ["--set", "eval_interval=2", "--set", "eval_episodes=2"]) == 0
    rows = _rows(evald)
    assert [np.isfinite(float(r["eval_return"])) for r in rows] == [False, True, False, True, False, True]
    assert all(0 <= float(r["eval_success"]) <= 1 for r in rows[1::2])
    assert "eval_return" not in _rows(plain)[0]  # off by default: progress.csv unchanged
    for x, y in zip(_rows(plain), rows):  # the evaluations leave the training as it was
        for k in ("actor_loss", "critic_loss", "episode_return", "delta_j_std"):
            assert x[k] == y[k], (x["epoch"], k)
    returns = [float(r["episode_return"]) for r in rows]
    best_epoch = int(np.nanargmax(returns)) + 1
    for run in (plain, evald):
        data = torch.load(run / "best_policy.pt", weights_only=False)
        assert data["kind"] == "policy" and data["epoch"] == best_epoch
        assert data["episode_return"] == pytest.approx(np.nanmax(returns))
        assert not (run / "checkpoints" / "model.zip").exists()
    pol = load_policy(evald / "best_policy.pt", task=TASK)
    assert pol.act({"pixels": np.zeros((2, 32, 32, 9), np.uint8)}).shape == (2, 3)
    res = evaluate(str(evald / "best_policy.pt"), TASK, episodes=2, num_envs=2, progress=False,
                   env_kwargs={"image_size": (32, 32), "max_episode_steps": 6})
    assert res.error is None and res.summary()["agent_errors"] == 0
    assert not [p.name for p in evald.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_best_return_survives_a_resume(tmp_path):
    """The best return so far is the run's (its progress.csv up to the resumed checkpoint), not reset by
    ``--resume``: a resumed run that never beats it leaves best_policy.pt alone."""
    from visual_robo_bench.cli import main

    run = tmp_path / "run"
    # episodes of 4 steps end with the first epoch; a budget of ~0 s stops the run after it (checkpoint at 1)
    args = _train_args(run, 4) + ["--set", "max_episode_steps=4", "--set", "time_budget_s=1e-9"]
    assert main(args) == 0
    rows = _rows(run)
    assert len(rows) == 1 and np.isfinite(float(rows[0]["episode_return"]))
    before = (run / "best_policy.pt").read_bytes()
    # pretend the first epoch's return was far above anything the next epochs reach
    text = (run / "progress.csv").read_text().splitlines()
    header = text[0].split(",")
    cells = text[1].split(",")
    cells[header.index("episode_return")] = "1000000.0"
    (run / "progress.csv").write_text("\n".join([text[0], ",".join(cells)]) + "\n")
    assert main(["train", "--resume", "--run-dir", str(run), "--no-progress", "--set", "time_budget_s=0"]) == 0
    rows = _rows(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert max(float(r["episode_return"]) for r in rows[1:]) < 1e6
    assert (run / "best_policy.pt").read_bytes() == before  # not replaced by a worse policy after the resume


def test_killed_run_resumes_exactly(tmp_path):
    """Kill ``vrb train`` mid-run (SIGKILL), resume it: same final weights as an uninterrupted run."""
    from visual_robo_bench.cli import main

    epochs, every = 24, 4
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert main(_train_args(straight, epochs, every)) == 0

    proc = subprocess.Popen([sys.executable, "-m", "visual_robo_bench.cli", *_train_args(killed, epochs, every)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (killed / "checkpoints" / "latest.pt").exists() and (killed / "progress.csv").exists() \
                and len(_rows(killed)) >= every + 2:  # killed between two checkpoints
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = len(_rows(killed))
    assert every + 2 <= stopped_at < epochs

    assert main(["train", "--resume", "--run-dir", str(killed), "--no-progress", "--task", TASK]) == 0
    a = torch.load(straight / "checkpoints" / "latest.pt", weights_only=False)
    b = torch.load(killed / "checkpoints" / "latest.pt", weights_only=False)
    assert a["counters"]["epoch"] == b["counters"]["epoch"] == epochs
    for net in ("actor", "critic", "target_critic"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    assert np.array_equal(a["env_state"]["physics"], b["env_state"]["physics"])
    assert a["episodes"]["window"] == b["episodes"]["window"]
    ra, rb = _rows(straight), _rows(killed)
    assert [int(r["epoch"]) for r in rb] == list(range(1, epochs + 1))  # each epoch logged once
    for x, y in zip(ra, rb):
        for k in ("actor_loss", "critic_loss", "episode_return", "env_steps", "delta_j_std"):
            assert x[k] == y[k], (x["epoch"], k)


@pytest.mark.parametrize("clamp", [True, False])
def test_saturated_means_get_pulled_back_only_without_prediction_clamping(clamp):
    """§6 item 16: upstream's clamped predictions leave a mean beyond +-2 without gradient."""
    ag = SDPG(tiny(clamp_predictions=clamp))
    try:
        with torch.no_grad():
            ag.actor.mean.weight.zero_()
            ag.actor.mean.bias.fill_(5.0)  # every mean far beyond the bound of 2
        ro = ag.rollout()
        assert np.all(ro.mean == 2.0)
        ag.update(ro)
        bias = ag.actor.mean.bias.detach()
        if clamp:
            assert torch.all(bias == 5.0)  # dead zone: no gradient, no step
        else:
            assert torch.all(bias < 5.0)  # pulled back toward the (clamped) targets
    finally:
        ag.close()


def test_bench_baselines_gives_both_agents_the_same_physics_envs_and_summarizes_seeds(tmp_path, capsys):
    """``scripts/bench_baselines.py``: SDPG's B x (M + 1) physics envs equal PPO's N; the table merges seeds."""
    import json
    import runpy

    script = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "bench_baselines.py"))
    sdpg = dict(s.split("=") for s in script["agent_settings"]("sdpg", 256, 31))
    assert (int(sdpg["num_nominal"]), int(sdpg["num_perturbations"])) == (8, 31)  # 8 x (31 + 1) = 256
    assert "num_envs=256" in script["agent_settings"]("ppo", 256, 31)
    with pytest.raises(SystemExit, match="multiple of --branches"):
        script["agent_settings"]("sdpg", 100, 31)
    dirs = []
    for seed, (sdpg_curve, ppo_curve) in enumerate([([10, 50, 90], [5, 20, 40]), ([20, 60, 80], [10, 30, 60])]):
        out = tmp_path / f"s{seed}"
        for agent, curve, rss in (("sdpg", sdpg_curve, 1000.0), ("ppo", ppo_curve, 2000.0)):
            run = out / agent
            run.mkdir(parents=True)
            lines = ["wall_s,episode_return"] + [f"{60.0 * (i + 1)},{r}" for i, r in enumerate(curve)]
            (run / "progress.csv").write_text("\n".join(lines) + "\n")
            (out / f"{agent}.json").write_text(json.dumps({
                "agent": agent, "seed": seed, "eval_return": float(curve[-1]), "return": float(curve[-1]),
                "env_steps": 1000, "frames": 100, "train_s": 180.0, "peak_rss_mb": rss, "run_dir": str(run)}))
        dirs.append(str(out))
    script["summarize"](dirs, 40.0, None)
    lines = capsys.readouterr().out.splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {cells[0]: dict(zip(head, cells)) for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}
    assert rows["sdpg"]["seeds"] == "2"
    assert rows["sdpg"]["eval return (50 protocol episodes)"] == "85.00 (80.00 to 90.00)"
    reach = "s to train return >= 40 (reached/seeds)"
    assert rows["sdpg"][reach] == "120 (120 to 120) (2/2)"  # both seeds first log >= 40 at 120 s
    assert rows["ppo"][reach] == "180 (180 to 180) (2/2)"
    assert rows["sdpg"]["peak RSS (MB)"].startswith("1,000 ") and rows["ppo"]["peak RSS (MB)"].startswith("2,000 ")


def test_tensorboard_uses_cleanrl_names_against_env_steps_and_a_resume_drops_the_redone_events(tmp_path):
    """conventions.md 6: return, episode length and steps/s under CleanRL's tags, every scalar against env steps
    (global_step); a resume purges the events logged after its checkpoint, which it redoes."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from visual_robo_bench.cli import main

    run = tmp_path / "run"
    assert main(_train_args(run, 4, 2)) == 0
    rows = _rows(run)
    ev = EventAccumulator(str(run / "tb"))
    ev.Reload()
    tags = set(ev.Tags()["scalars"])
    assert {"charts/episodic_return", "charts/episodic_length", "charts/SPS", "sdpg/actor_loss"} <= tags
    assert "sdpg/episode_return" not in tags and "sdpg/env_steps_per_s" not in tags
    steps = [int(r["env_steps"]) for r in rows]
    assert [e.step for e in ev.Scalars("sdpg/actor_loss")] == steps
    sps = ev.Scalars("charts/SPS")
    assert [e.value for e in sps] == pytest.approx([float(r["env_steps_per_s"]) for r in rows], rel=1e-6)
    # a run stopped after its first epoch (budget ~0 s: checkpoint at epoch 1); an event it had logged after that
    # checkpoint (as a killed run would have) is dropped on resume, the epochs after it are logged once
    from torch.utils.tensorboard import SummaryWriter

    cut = tmp_path / "cut"
    assert main(_train_args(cut, 4) + ["--set", "time_budget_s=1e-9"]) == 0
    stray = SummaryWriter(str(cut / "tb"))
    stray.add_scalar("sdpg/actor_loss", -12345.0, steps[2])
    stray.close()
    assert main(["train", "--resume", "--run-dir", str(cut), "--no-progress", "--set", "time_budget_s=0"]) == 0
    ev = EventAccumulator(str(cut / "tb"))
    ev.Reload()
    loss = ev.Scalars("sdpg/actor_loss")
    assert [e.step for e in loss] == steps and -12345.0 not in [e.value for e in loss]
