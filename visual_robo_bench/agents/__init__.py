"""Reference agents trained on VRB tasks (``vrb train --agent NAME``).

Importing this package does not import torch; each agent module does.
"""

#: Agent name -> module implementing it (``make_config``, the learner class, ``load_policy``).
AGENTS = {"sdpg": "visual_robo_bench.agents.sdpg"}

__all__ = ["AGENTS"]
