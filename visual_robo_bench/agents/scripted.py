"""Scripted controllers: documented reference levels for tasks where no trained expert beats the floors.

``conventions.md`` section 6 lets a task's reference level (normalized score 1) be "a documented
scripted or expert level" that the project reproduces on its own machine. On ``VRB/Go2-v0`` the
privileged-state PPO experts of ``scripts/reference_experts.py`` did worse than standing still within
the CPU budgets tried (README, "Reference levels"), so its level is this open-loop trot instead (on
Go2Terrain's rough ground the trot falls, and its gain search ends at standing still).

:class:`Go2Trot` is a central pattern generator: one phase per env advances at ``frequency``; the
diagonal leg pairs (FL+RR, FR+RL) are half a cycle apart. In the first half of its cycle a leg swings
(its thigh and calf targets move by ``thigh_swing`` and ``calf_swing``); over the whole cycle
the thigh sweeps fore-aft with an amplitude set by the commanded forward velocity (and, with opposite
signs on the two sides, by the yaw-rate command), and the hip abduction sweeps sideways with an
amplitude set by the lateral velocity command (and, with opposite signs front and rear, by the yaw
rate); ``stride_bias`` adds a command-independent sweep while the gait runs. It reads only the command in the 45-D actor vector (``proprio``'s newest frame, or
``privileged[3:48]`` in ``obs_mode="state"``), so it is a pixel-free, proprioception-only policy; it
uses no feedback. With no command it stands (all-zero actions hold the default pose). The gains are
tuned per task by ``scripts/tune_go2_trot.py`` (cross-entropy search on training seeds, disjoint from the
evaluation seeds) and frozen here: a change is a new reference level.

Use it like any agent: ``vrb evaluate --agent visual_robo_bench.agents.scripted:Go2Trot --task VRB/Go2-v0``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..tasks.legged import COMMAND_SCALE, Go2Config

AGENT_NAME = "scripted-go2-trot"

_ACTOR_DIM = Go2Config().proprio_dim  # Go2-v0's proprio is one actor vector (the command at columns 6:9)
_ACTION_SCALE = Go2Config().action_scale  # joint target = default + action_scale * action
_CONTROL_DT = Go2Config().control_dt  # Go2 and Go2Terrain: 0.005 s x 4 sub-steps
#: Legs in action order FL, FR, RL, RR: phase offset (trot), side (+1 left), end (+1 front).
_PHASE = np.array([0.0, np.pi, np.pi, 0.0])
_SIDE = np.array([1.0, -1.0, 1.0, -1.0])
_END = np.array([1.0, 1.0, -1.0, -1.0])


@dataclass(frozen=True)
class TrotGains:
    """Gains of :class:`Go2Trot` (radians of joint-target offset per unit of command).

    Attributes:
        frequency: Gait cycles per second.
        stride_x: Thigh sweep amplitude per m/s of forward command.
        sweep_y: Hip-abduction sweep amplitude per m/s of lateral command.
        stride_yaw: Thigh sweep amplitude per rad/s of yaw-rate command, opposite on the two sides.
        sweep_yaw: Hip-abduction sweep amplitude per rad/s of yaw-rate command, opposite front and rear.
        thigh_swing: Thigh-target offset at mid-swing (either sign: where the swinging foot goes).
        calf_swing: Calf-target offset at mid-swing (either sign).
        stride_bias: Thigh sweep amplitude whenever the gait runs, whatever the command (it offsets the
            drift that stepping in place has).
    """

    frequency: float
    stride_x: float
    sweep_y: float
    stride_yaw: float
    sweep_yaw: float
    thigh_swing: float
    calf_swing: float
    stride_bias: float = 0.0


#: Frozen per-task gains (from ``scripts/tune_go2_trot.py``; see its docstring for the command).
GAINS: dict[str, TrotGains] = {
    "VRB/Go2-v0": TrotGains(frequency=3.002, stride_x=0.634, sweep_y=-0.111, stride_yaw=-0.095, sweep_yaw=-0.171,
                            thigh_swing=-0.306, calf_swing=0.512, stride_bias=-0.056),
}


class Go2Trot:
    """The open-loop trot of the module doc, as a harness agent (``act`` + ``reset``).

    Args:
        env: What it acts in (an ``AgentContext`` or the env): its ``task_id`` picks the gains.
        gains: Explicit gains (then ``env`` may be ``None``); batched gains (arrays of length N) give
            every env its own, which is how the tuning script searches.

    Raises:
        ValueError: The task has no tuned gains and none were given, or the action space is not Go2's.
    """

    name = AGENT_NAME

    def __init__(self, env: Any = None, gains: TrotGains | None = None) -> None:
        task = getattr(env, "task_id", None)
        if gains is None:
            if task not in GAINS:
                raise ValueError(f"Go2Trot has tuned gains for {sorted(GAINS)}, not {task!r}; pass gains=TrotGains(...)")
            gains = GAINS[task]
        space = getattr(env, "single_action_space", None)
        if space is not None and space.shape != (12,):
            raise ValueError(f"Go2Trot drives the Go2's 12 joints; the action space is {space.shape}")
        self.gains = {k: np.asarray(v, dtype=np.float64) for k, v in dataclasses.asdict(gains).items()}
        self.phase: np.ndarray | None = None

    def reset(self, mask: np.ndarray) -> None:
        """Restart the gait of the envs in ``mask`` (new episodes)."""
        if self.phase is not None:
            self.phase[np.asarray(mask, dtype=bool)] = 0.0

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Joint-target offsets for a batch of observations, ``(N, 12)`` float32 in [-1, 1]."""
        if "proprio" in obs:
            actor = np.asarray(obs["proprio"])[:, -_ACTOR_DIM:]  # Go2Terrain's proprio is a history, newest last
        else:
            actor = np.asarray(obs["privileged"])[:, 3:3 + _ACTOR_DIM]  # obs_mode="state": [2 v, actor, ...]
        n = len(actor)
        if self.phase is None or len(self.phase) != n:
            self.phase = np.zeros(n)
        g = {k: np.broadcast_to(v, (n,))[:, None] for k, v in self.gains.items()}
        cmd = actor[:, 6:9] / COMMAND_SCALE
        vx, vy, wz = cmd[:, 0:1], cmd[:, 1:2], cmd[:, 2:3]
        moving = np.abs(cmd).sum(axis=1, keepdims=True) > 0.05
        self.phase = (self.phase + 2.0 * np.pi * g["frequency"][:, 0] * _CONTROL_DT) % (2.0 * np.pi)
        leg_phase = self.phase[:, None] + _PHASE[None]
        cos, swing = np.cos(leg_phase), np.clip(np.sin(leg_phase), 0.0, None) * moving
        stride = g["stride_x"] * vx + g["stride_yaw"] * wz * _SIDE[None] + g["stride_bias"] * moving
        sweep = g["sweep_y"] * vy + g["sweep_yaw"] * wz * _END[None]
        dq = np.stack([-sweep * cos,
                       -stride * cos + g["thigh_swing"] * swing,
                       g["calf_swing"] * swing], axis=2)  # (N, 4 legs, hip/thigh/calf)
        return np.clip(dq.reshape(n, 12) / _ACTION_SCALE, -1.0, 1.0).astype(np.float32)
