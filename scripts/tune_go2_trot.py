"""Tune the gains of the scripted Go2 trot (``visual_robo_bench.agents.scripted``) by cross-entropy search.

Each iteration samples ``--candidates`` gain vectors around the current mean (the mean itself and the
all-zero stand are always among them), runs every candidate on the same ``--episodes`` training
episodes (seeds ``10_000 * iteration + k``: far below the evaluation seeds, which start at 1,000,000) for
``--steps`` control steps in ``obs_mode="state"`` envs, and moves the mean to the best three. Prints one
line per iteration (the stand's, the mean's and the best return) and the final mean, which is what goes
into :data:`~visual_robo_bench.agents.scripted.GAINS` (rounded).

Usage::

    python scripts/tune_go2_trot.py VRB/Go2-v0 --iterations 20

The frozen gains in the package came from this command (seed 0, the defaults otherwise) on the project's
2-core machine (about 12 s per iteration on one core).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from visual_robo_bench.agents.scripted import Go2Trot, TrotGains

#: Search start, spread and bounds, in TrotGains field order.
START = TrotGains(frequency=2.3, stride_x=0.5, sweep_y=-0.3, stride_yaw=0.0, sweep_yaw=-0.3, thigh_swing=0.2,
                  calf_swing=0.6, stride_bias=0.0)
SPREAD = np.array([0.4, 0.3, 0.3, 0.2, 0.2, 0.15, 0.2, 0.1])
LOW = np.array([0.8, -1.5, -1.5, -1.5, -1.5, -0.8, -1.5, -0.5])
HIGH = np.array([4.0, 1.5, 1.5, 1.5, 1.5, 0.8, 1.5, 0.5])
ELITE = 3


def returns(env, gains: np.ndarray, episodes: int, steps: int, seed0: int) -> np.ndarray:
    """Mean return of each row of ``gains`` (C, 8) over the same ``episodes`` episodes (first episode only)."""
    names = [f.name for f in dataclasses.fields(TrotGains)]
    batched = TrotGains(**{k: np.repeat(gains[:, j], episodes) for j, k in enumerate(names)})
    agent = Go2Trot(gains=batched)
    n = len(gains) * episodes
    obs, _ = env.reset(seed=[seed0 + i % episodes for i in range(n)])
    agent.reset(np.ones(n, bool))
    alive, total = np.ones(n, bool), np.zeros(n)
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(agent.act(obs))
        total += r * alive
        alive &= ~(term | trunc)
    return total.reshape(len(gains), episodes).mean(axis=1)


def main() -> None:
    import gymnasium as gym

    import visual_robo_bench  # noqa: F401 - registers the tasks

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", help="a Go2 task id")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=12)
    parser.add_argument("--episodes", type=int, default=8, help="training episodes per candidate")
    parser.add_argument("--steps", type=int, default=400, help="control steps per episode")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search's own sampler")
    parser.add_argument("--start", default="{}", help='JSON changes of the start gains, e.g. \'{"thigh_swing": 0.3}\'')
    args = parser.parse_args()
    names = [f.name for f in dataclasses.fields(TrotGains)]
    start = dataclasses.replace(START, **json.loads(args.start))
    mean, spread = np.array(dataclasses.astuple(start), dtype=float), SPREAD.copy()
    rng = np.random.default_rng(args.seed)
    env = gym.make_vec(args.task, num_envs=args.candidates * args.episodes, obs_mode="state", nthread=1)
    try:
        for it in range(args.iterations):
            cand = np.clip(mean + spread * rng.standard_normal((args.candidates, len(names))), LOW, HIGH)
            cand[0], cand[1] = mean, 0.0  # the mean itself and the stand (all gains 0: all-zero actions)
            score = returns(env, cand, args.episodes, args.steps, 10_000 * (it + 1))
            order = [i for i in np.argsort(score)[::-1] if i != 1][:ELITE]
            mean, spread = cand[order].mean(axis=0), np.maximum(cand[order].std(axis=0), 0.03 * (HIGH - LOW))
            print(f"{it:3d}  stand {score[1]:7.2f}  mean {score[0]:7.2f}  best {score[order[0]]:7.2f}", flush=True)
    finally:
        env.close()
    print(json.dumps({k: round(float(v), 3) for k, v in zip(names, mean)}))


if __name__ == "__main__":
    main()
