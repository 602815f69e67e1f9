"""Reference agents trained on VRB tasks (``vrb train --agent NAME``).

Importing this package does not import torch; each agent module does.
"""

#: Agent name -> module implementing it (``make_config``, ``LEARNER``, ``load_policy``, ...; the
#: interface is documented in :mod:`visual_robo_bench.train`). The module's last name must equal the
#: agent name: policy files are loaded through ``visual_robo_bench.agents.<agent>.load_policy``.
AGENTS = {
    "sdpg": "visual_robo_bench.agents.sdpg",  # the reference agent
    "ppo": "visual_robo_bench.agents.ppo",  # stable-baselines3 PPO, MultiInputPolicy
    "sac": "visual_robo_bench.agents.sac",  # stable-baselines3 SAC, MultiInputPolicy, small replay buffer
    "drqv2": "visual_robo_bench.agents.drqv2",  # DrQ-v2: random-shift augmentation, n-step DDPG (one file)
    "distill": "visual_robo_bench.agents.distill",  # teacher PPO on privileged state -> pixel student (DAgger)
    "random": "visual_robo_bench.agents.random",  # reference floor: uniform random actions
    "zero": "visual_robo_bench.agents.zero",  # reference floor: all-zero actions
}

__all__ = ["AGENTS"]
