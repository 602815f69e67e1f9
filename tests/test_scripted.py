"""The scripted Go2 trot (``visual_robo_bench.agents.scripted``), the Go2-v0 reference level: loading it as a
harness agent, its gait pattern, its observation layouts and per-env restart, and that it beats standing still
on training seeds; plus the tuning script's shared-episode scoring."""

from __future__ import annotations

import dataclasses
import runpy
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

import visual_robo_bench  # noqa: F401
from visual_robo_bench.agents.scripted import GAINS, Go2Trot, TrotGains
from visual_robo_bench.evaluation.protocol import AgentContext, load_agent
from vrb_helpers import needs_model

GO2 = "VRB/Go2-v0"
needs_go2 = needs_model("unitree_go2", "Go2 model unavailable offline")
SPACE = spaces.Box(-1.0, 1.0, (12,), np.float32)
GAINS_1 = TrotGains(frequency=2.0, stride_x=0.5, sweep_y=-0.2, stride_yaw=-0.1, sweep_yaw=-0.2, thigh_swing=-0.3,
                    calf_swing=0.5)


def _proprio(cmd, n_hist: int = 1) -> np.ndarray:
    """Actor vectors (45-D, newest last in a history of ``n_hist``) carrying the command ``cmd`` (N, 3)."""
    cmd = np.atleast_2d(np.asarray(cmd, float))
    actor = np.zeros((len(cmd), 45), np.float32)
    actor[:, 6:9] = cmd * np.array([2.0, 2.0, 0.25])
    return np.concatenate([np.zeros((len(cmd), 45 * (n_hist - 1)), np.float32), actor], axis=1)


def test_go2_trot_loads_as_a_harness_agent_and_refuses_what_it_cannot_drive():
    ctx = AgentContext(GO2, spaces.Dict({}), SPACE)
    agent = load_agent("visual_robo_bench.agents.scripted:Go2Trot", ctx)
    assert isinstance(agent, Go2Trot) and agent.name == "scripted-go2-trot"
    assert agent.gains["frequency"] == GAINS[GO2].frequency
    with pytest.raises(ValueError, match="tuned gains for .*VRB/Go2-v0.*not 'VRB/Hopper-v0'"):
        Go2Trot(AgentContext("VRB/Hopper-v0", spaces.Dict({}), spaces.Box(-1, 1, (3,))))
    with pytest.raises(ValueError, match="12 joints"):
        Go2Trot(AgentContext("VRB/Hopper-v0", spaces.Dict({}), spaces.Box(-1, 1, (3,))), gains=GAINS_1)


def test_go2_trot_gait_pattern_layouts_and_restart():
    from visual_robo_bench import get_task
    from visual_robo_bench.agents import scripted

    for task_id in scripted.GAINS:  # every task with tuned gains runs at the trot's control period and scale
        cfg = get_task(task_id).config
        assert (cfg.control_dt, cfg.action_scale) == (scripted._CONTROL_DT, scripted._ACTION_SCALE), task_id
    agent = Go2Trot(gains=GAINS_1)
    cmds = [(0.8, 0.0, 0.0), (0.0, 0.0, 0.0)]
    steps = round(1 / (GAINS_1.frequency * 0.02))  # one gait cycle
    acts = np.stack([agent.act({"proprio": _proprio(cmds)}) for _ in range(steps)])  # (T, 2, 12)
    legs = acts[:, 0].reshape(steps, 4, 3)  # FL, FR, RL, RR
    np.testing.assert_array_equal(legs[:, 0], legs[:, 3])  # diagonal pairs move together ...
    np.testing.assert_array_equal(legs[:, 1], legs[:, 2])
    assert np.abs(legs[:, 0] - legs[:, 1]).max() > 0.3  # ... half a cycle apart
    assert np.ptp(legs[:, 0, 1]) > 0.5 and np.ptp(legs[:, 0, 2]) > 0.5  # thigh sweeps, calf lifts
    np.testing.assert_array_equal(acts[:, 1], 0.0)  # no command: stand (all-zero actions)
    assert acts.dtype == np.float32 and np.abs(acts).max() <= 1.0
    # obs_mode="state" (privileged = [2 v, actor, ...]) and Go2Terrain's proprio history read the same command
    fresh = [Go2Trot(gains=GAINS_1) for _ in range(3)]
    priv = np.concatenate([np.ones((2, 3)), _proprio(cmds), np.ones((2, 12))], axis=1).astype(np.float32)
    for _ in range(5):
        a = fresh[0].act({"proprio": _proprio(cmds)})
        np.testing.assert_array_equal(fresh[1].act({"privileged": priv}), a)
        np.testing.assert_array_equal(fresh[2].act({"proprio": _proprio(cmds, n_hist=20)}), a)
    # reset(mask) restarts the gait of the masked envs only
    agent.reset(np.array([True, False]))
    np.testing.assert_array_equal(agent.act({"proprio": _proprio(cmds)})[0],
                                  Go2Trot(gains=GAINS_1).act({"proprio": _proprio(cmds)})[0])
    assert agent.phase[1] != agent.phase[0]


@needs_go2
def test_go2_trot_beats_standing_on_training_seeds():
    from visual_robo_bench.envs import VRBVectorEnv

    env = VRBVectorEnv(GO2, num_envs=8, obs_mode="state", nthread=1)
    try:
        returns = {}
        for name in ("stand", "trot"):
            obs, _ = env.reset(seed=list(range(300, 308)))
            agent = Go2Trot(env) if name == "trot" else None
            total, alive = np.zeros(8), np.ones(8, bool)
            for _ in range(200):
                obs, r, term, trunc, _ = env.step(agent.act(obs) if agent else np.zeros((8, 12), np.float32))
                total += r * alive
                alive &= ~(term | trunc)
            assert alive.all(), f"{name}: a robot fell"
            returns[name] = total.mean()
        assert returns["trot"] > 1.1 * returns["stand"] > 0  # measured: 10.4 vs 8.3
    finally:
        env.close()


@needs_go2
def test_tuning_script_scores_every_candidate_on_the_same_episodes():
    import gymnasium as gym

    script = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "tune_go2_trot.py"),
                            run_name="tune_go2_trot")
    n_gains = len(dataclasses.fields(TrotGains))
    env = gym.make_vec(GO2, num_envs=4, obs_mode="state", nthread=1)
    try:
        cand = np.zeros((2, n_gains))
        cand[1] = dataclasses.astuple(GAINS_1)
        zero_trot = script["returns"](env, cand, 2, 30, 500)
        stand = script["returns"](env, np.zeros((2, n_gains)), 2, 30, 500)
        assert stand[0] == stand[1] == zero_trot[0]  # same episodes, and all-zero gains stand
        assert zero_trot[1] != zero_trot[0]
    finally:
        env.close()
