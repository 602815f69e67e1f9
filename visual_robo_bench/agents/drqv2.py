"""DrQ-v2 (Yarats et al. 2021, "Mastering Visual Continuous Control"), VRB's off-policy pixel baseline, in one file.

DDPG from pixels: random-shift image augmentation, a conv encoder trained by the critic only, an actor
with a LayerNorm trunk and a tanh head on *detached* features, a double-Q critic with a clipped
double-Q target, n-step returns, a target critic updated by EMA, scheduled exploration noise and
uniform random actions for the first ``num_seed_steps`` env steps. Read top to bottom:

1. ``DrQv2Config``: frozen, typed hyperparameters (CPU-sized defaults, see the comments) and ``make_config``.
2. The pure pieces, unit-tested on hand-computed examples: :func:`random_shift` (pad 4 px replicate,
   per-sample integer crop back) and :func:`nstep_return` (n-step returns that bootstrap on
   truncation and not on termination).
3. ``ReplayBuffer``: uint8 frame stacks in one ring of *rows* (see below).
4. Networks: the DrQ-v2 conv trunk (:class:`~visual_robo_bench.agents.sdpg.DrQv2Encoder`, reused),
   ``Actor`` and ``Critic``.
5. ``DrQv2``: the learner (one native batched env, ``train_epoch``, the update).
6. Checkpoints (exact resume) and the exported deterministic policy (``policy.pt``, ``load_policy``).

Architecture, mapped onto the paper's code (``drqv2.py`` of facebookresearch/drqv2):

* ``encoder.convs`` (4 convs, 32 channels) is the shared conv encoder. The critic's gradient trains it;
  the actor only ever sees ``conv_features.detach()``.
* ``encoder.head`` (Linear -> LayerNorm -> Tanh to ``feature_dim``) is the paper's *critic* trunk; the
  actor has its own trunk of the same form (``Actor.trunk``), as in the paper.
* ``proprio`` (when ``use_proprio``; the paper has none) is normalised by a running mean/std (updated
  from every collected step, stored in checkpoints and the policy file; the buffer keeps raw values
  and a batch is normalised with the current statistics) and concatenated to the trunk outputs of
  the actor and of the critic (before the action, for the Q heads).
* Pixels of several policy cameras (``pixels``, ``pixels_<camera>``: same H x W) are concatenated along
  the channel axis into one encoder input.
* One Adam optimiser holds the encoder and the Q heads (the paper has two Adam optimisers with the same
  learning rate: the same update).

Replay memory. The buffer is a ring of ``buffer_capacity`` rows. A row holds one observation (the
uint8 frame stack, raw ``proprio``) and, when an action was taken from it, the action, reward and the
terminated/truncated flags of that step, plus the index of the row holding the *next* observation
of the same env. Consecutive observations of an env share nothing but a link, so ``next_obs`` is never
stored twice; the final observation of an episode gets its own row (no action), so a truncated
episode bootstraps from its real last observation. Bytes per row::

    C*H*W (pixels) + 4*P (proprio) + 4*A (action) + 4 (reward) + 3 (flags) + 8 (next index)

VRB/Walker-v1 (84x84, 3 RGB frames: C=9, P=12, A=6): 63,504 + 48 + 24 + 4 + 3 + 8 = 63,591 bytes per row,
so the default 50,000 rows take 3.2 GB (about one extra row per episode for its final observation).
Checkpoints hold the filled rows too (about the same size on disk).

Speed (the project's shared 2-core CPU, load ~3, defaults on VRB/Walker-v1 at 84x84): one update
(batch 128) takes about 1.0 s, almost all of it the conv encoder forward and backward; the 8 envs
step and render in ~5 ms, so training runs at 7-8 env steps/s: about 3.5k updates and 27k env
steps per hour (the paper trains for 1M+ frames on a GPU). A learning check (20 min, seed 0,
Walker at 48x48, batch 64, num_seed_steps 2000, std_decay_steps 10000; 7.5k updates, 62k env steps):
the mean training return rose from -1.6 (seed phase) to 10.3, and the exported policy scores 10.5 over
16 evaluation episodes (uniform random: -0.3, all-zero actions: 3.1) by lunging forward (episode
length ~27: it has not learned to walk yet).

Exact resume: checkpoints hold the networks, optimisers, proprio statistics, the replay buffer and its
pointers, the learner's own ``torch.Generator`` (augmentation, exploration noise, target noise, seed
actions and batch sampling; the global torch RNG is used only to initialise the networks), every env's
numpy generator, the env state and frame stacks, the current observations, the episode accumulators
and the counters. A resumed run is bit-identical to an uninterrupted one (same ``torch_threads``).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import (ConfigError, IncompatibleCheckpoint, apply_overrides, atomic_torch_save,  # noqa: F401
                     check_agent_file, env_kwargs, episode_stats, images_chw, load_agent_file,
                     policy_image_keys)
from .sdpg import DrQv2Encoder, RunningMeanStd

#: Bumped whenever the checkpoint or policy file layout changes; older files are refused.
FORMAT_VERSION = 1
AGENT_NAME = "drqv2"
#: Keys ``vrb train --resume`` may change (none of them changes the learning math; the exploration
#: schedule counts env steps, not epochs).
RESUMABLE_KEYS = ("time_budget_s", "checkpoint_every", "max_epochs")


# =============================================================================================
# 1. Config
# =============================================================================================
@dataclass(frozen=True)
class DrQv2Config:
    """Every hyperparameter of a DrQ-v2 run.

    Paper values unless a comment says otherwise; the changes size a run for a 2-core CPU (the
    paper: one GPU, hidden 1024, batch 256, an update every 2 env steps, a 1M-transition buffer).
    """

    task: str = "VRB/Walker-v1"
    # --- env
    num_envs: int = 8  # rendered envs stepped together (one native batched env)
    image_size: tuple[int, ...] | None = None  # None: the task's (anything else is off-leaderboard)
    max_episode_steps: int | None = None  # None: the task's (anything else is off-leaderboard)
    nthread: int | None = None  # physics threads (None: the usable cores)
    use_proprio: bool = True  # concatenate the RMS-normalised proprio vector (the paper: pixels only)
    # --- replay
    buffer_capacity: int = 50_000  # rows; 3.2 GB at 84x84x9 (module docstring). Paper: 1M
    batch_size: int = 128  # paper 256; CPU: the update dominates the wall-clock
    n_step: int = 3
    gamma: float = 0.99
    # --- networks and optimisation
    feature_dim: int = 50
    hidden_dim: int = 256  # paper 1024
    lr: float = 1e-4
    critic_tau: float = 0.01  # target <- tau * online + (1 - tau) * target, every update
    aug_pad: int = 4  # random shift of up to this many pixels (replicate padding)
    updates_per_step: int = 1  # gradient updates after each batched env step (num_envs transitions)
    # --- exploration
    num_seed_steps: int = 4000  # env steps of uniform random actions before the first update
    std_init: float = 1.0  # exploration std, linear from std_init to std_final over std_decay_steps env steps
    std_final: float = 0.1
    # paper: 500k frames = 250k agent steps (medium tasks), i.e. 125k updates. CPU: about an hour
    # (module docstring: 7-8 env steps/s on Walker 84x84 with these defaults)
    std_decay_steps: int = 25_000
    std_clip: float = 0.3  # noise clip for the target and actor-loss actions
    # --- run
    # 1, not 2: the 2 cores are shared with MuJoCo's physics threads and the renderer (as for SDPG).
    torch_threads: int = 1
    seed: int = 0
    steps_per_epoch: int = 1000  # env steps per epoch (a multiple of num_envs): 125 updates, a few minutes
    max_epochs: int = 1000  # a hard stop; time_budget_s usually ends the run first
    time_budget_s: float = 3600.0  # stop after this much training wall-clock (0: none)
    checkpoint_every: int = 5  # epochs (a checkpoint holds the replay buffer: up to 3.2 GB by default)
    episode_window: int = 100  # the logged return is the mean of the last this-many episodes

    def __post_init__(self) -> None:
        n, N = self.n_step, self.num_envs
        checks = [
            (N >= 1, "num_envs must be >= 1"),
            (self.image_size is None or len(self.image_size) == 2, "image_size must be (H, W) or None"),
            (n >= 1, "n_step must be >= 1"),
            (0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}"),
            (self.batch_size >= 1 and self.feature_dim >= 1 and self.hidden_dim >= 1,
             "batch_size, feature_dim and hidden_dim must be >= 1"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (0 < self.critic_tau <= 1, f"critic_tau must be in (0, 1], got {self.critic_tau}"),
            (self.aug_pad >= 0, "aug_pad must be >= 0 (0: no augmentation)"),
            (self.updates_per_step >= 1, "updates_per_step must be >= 1"),
            (self.buffer_capacity >= 4 * N * (n + 1),
             f"buffer_capacity ({self.buffer_capacity}) must be >= 4 * num_envs * (n_step + 1) = {4 * N * (n + 1)}"),
            (self.num_seed_steps >= N * (n + 1),
             f"num_seed_steps ({self.num_seed_steps}) must be >= num_envs * (n_step + 1) = {N * (n + 1)}, so the "
             "first update finds complete n-step windows"),
            (self.std_init >= 0 and self.std_final >= 0 and self.std_clip >= 0,
             "std_init, std_final and std_clip must be >= 0"),
            (self.std_decay_steps >= 1, "std_decay_steps must be >= 1"),
            (self.steps_per_epoch >= N and self.steps_per_epoch % N == 0,
             f"steps_per_epoch ({self.steps_per_epoch}) must be a positive multiple of num_envs ({N})"),
            (self.max_epochs >= 1, "max_epochs must be >= 1"),
            (self.time_budget_s >= 0, "time_budget_s must be >= 0 (0: no budget)"),
            (self.checkpoint_every >= 1 and self.episode_window >= 1, "checkpoint_every, episode_window >= 1"),
            (self.torch_threads >= 1, "torch_threads must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"DrQv2Config: {msg}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DrQv2Config":
        return apply_overrides(cls(task=data.get("task", cls.task)), data)


def make_config(task: str, overrides: dict[str, Any] | None = None) -> DrQv2Config:
    """The default config for ``task`` with ``overrides`` (values may be strings).

    Raises:
        KeyError: Unknown task (naming the closest ids).
        ConfigError: Unknown config key or bad value.
    """
    from ..registry import get_task

    task = get_task(task).id
    overrides = dict(overrides or {})
    if "task" in overrides and overrides["task"] != task:
        raise ConfigError("the task is given by --task, not by a config override")
    overrides.pop("task", None)
    return apply_overrides(DrQv2Config(task=task), overrides)


# =============================================================================================
# 2. The pure pieces
# =============================================================================================
def random_shift(x: torch.Tensor, pad: int, shifts: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """DrQ's random shift: pad by ``pad`` pixels (replicate), crop back to (H, W) at a per-sample offset.

    The paper samples the crop with bilinear ``grid_sample`` at integer offsets, which lands exactly on
    pixel centres; this integer gather (clamped indices = replicate padding) is the same crop, exact,
    and about 3x cheaper on a CPU (measured: 128 x 9 x 84 x 84 in 0.05 s vs 0.14 s).

    Args:
        x: ``(n, C, H, W)`` images (any dtype; returned as float32).
        pad: Largest shift in pixels.
        shifts: ``(n, 2)`` integer (dy, dx) in ``[-pad, pad]``; (0, 0) returns the input. Default:
            uniform draws from ``generator``.
        generator: The torch generator for the draws.

    Returns:
        ``(n, C, H, W)`` float32: ``out[i, :, y, x] = x[i, :, clip(y + dy_i), clip(x + dx_i)]``.
    """
    n, c, h, w = x.shape
    if shifts is None:
        shifts = torch.randint(-pad, pad + 1, (n, 2), generator=generator)
    elif tuple(shifts.shape) != (n, 2) or (n and int(shifts.abs().max()) > pad):
        raise ValueError(f"shifts must be ({n}, 2) integers in [-{pad}, {pad}], got shape {tuple(shifts.shape)}")
    if pad == 0:
        return x.float()
    rows = (torch.arange(h)[None] + shifts[:, :1]).clamp(0, h - 1)  # (n, H)
    cols = (torch.arange(w)[None] + shifts[:, 1:]).clamp(0, w - 1)  # (n, W)
    x = x.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    return x.gather(3, cols[:, None, None, :].expand(n, c, h, w)).float()


def nstep_return(rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
                 gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """n-step returns over windows that stop at the first episode end.

    Args:
        rewards, terminated, truncated: ``(B, n)`` per window, step 0 first. Entries after the first
            step with ``terminated | truncated`` belong to another episode and are ignored.
        gamma: Discount.

    Returns:
        ``G = sum_{i<k} gamma^i r_i`` over the k steps up to and including the first episode end
        (k = n without one), and the bootstrap discount: ``gamma^k`` (also when the window ends by
        truncation: the episode was cut, not over) or 0 when it ends by termination. The target is
        ``G + discount * Q'(obs after step k-1)``.
    """
    B, n = rewards.shape
    G = np.zeros(B)
    discount = np.ones(B)
    alive = np.ones(B, dtype=bool)
    ended_by_termination = np.zeros(B, dtype=bool)
    for i in range(n):
        G += np.where(alive, discount * rewards[:, i], 0.0)
        discount = np.where(alive, discount * gamma, discount)
        ended_by_termination |= alive & terminated[:, i]
        alive &= ~(terminated[:, i] | truncated[:, i])
    return G, np.where(ended_by_termination, 0.0, discount)


def linear_std(env_steps: int, cfg: DrQv2Config) -> float:
    """The exploration std: linear from ``std_init`` to ``std_final`` over ``std_decay_steps`` env steps."""
    p = min(1.0, env_steps / cfg.std_decay_steps)
    return cfg.std_init + p * (cfg.std_final - cfg.std_init)


def sample_action(mu: torch.Tensor, std: float, clip: float | None, generator: torch.Generator) -> torch.Tensor:
    """``mu + std * eps`` (noise clipped to ``+-clip`` when given), clamped to [-1, 1] with a straight-through
    gradient: the paper's ``TruncatedNormal.sample``."""
    noise = torch.randn(mu.shape, generator=generator) * std
    if clip is not None:
        noise = noise.clamp(-clip, clip)
    x = mu + noise
    return x - x.detach() + x.detach().clamp(-1.0, 1.0)


# =============================================================================================
# 3. Replay buffer
# =============================================================================================
class ReplayBuffer:
    """A ring of observation rows linked per env (layout and bytes per row: module docstring).

    Args:
        capacity: Rows.
        num_envs: Envs adding one row each per :meth:`add`.
        pixel_shape: ``(C, H, W)`` of a frame stack.
        proprio_dim: Length of the proprio vector (0: none).
        action_dim: Length of the action vector.
    """

    FIELDS = ("pixels", "proprio", "action", "reward", "terminated", "truncated", "has_action", "next")

    def __init__(self, capacity: int, num_envs: int, pixel_shape: tuple[int, ...], proprio_dim: int,
                 action_dim: int) -> None:
        if capacity < 3 * num_envs:
            raise ValueError(f"ReplayBuffer: capacity ({capacity}) must be >= 3 * num_envs ({3 * num_envs})")
        self.capacity, self.num_envs = capacity, num_envs
        # np.zeros maps zero pages lazily: memory grows as rows are written
        self.pixels = np.zeros((capacity, *pixel_shape), np.uint8)
        self.proprio = np.zeros((capacity, proprio_dim), np.float32)
        self.action = np.zeros((capacity, action_dim), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, bool)
        self.truncated = np.zeros(capacity, bool)
        self.has_action = np.zeros(capacity, bool)  # False for an episode's final observation
        self.next = np.full(capacity, -1, np.int64)  # row of the next observation of the same env (-1: not yet)
        self.ptr = 0  # next row to write
        self.size = 0  # rows written so far (at most capacity)
        self.pending = np.full(num_envs, -1, np.int64)  # each env's newest row, waiting for its successor

    @property
    def bytes_per_row(self) -> int:
        return sum(getattr(self, k)[0].nbytes for k in self.FIELDS)

    def _alloc(self, k: int) -> np.ndarray:
        """The next ``k`` rows, cleared (the oldest rows are overwritten once the ring is full)."""
        rows = (self.ptr + np.arange(k)) % self.capacity
        self.ptr = (self.ptr + k) % self.capacity
        self.size = min(self.size + k, self.capacity)
        self.has_action[rows] = False
        self.next[rows] = -1
        self.reward[rows] = 0.0
        self.terminated[rows] = False
        self.truncated[rows] = False
        return rows

    def add(self, pixels: np.ndarray, proprio: np.ndarray | None, action: np.ndarray, reward: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray, next_pixels: np.ndarray,
            next_proprio: np.ndarray | None) -> None:
        """One batched env step: every env's observation with the action taken from it, reward and flags;
        for the envs whose episode ended, also the final observation (``next_*``: the post-step obs)."""
        rows = self._alloc(self.num_envs)
        self.pixels[rows] = pixels
        if proprio is not None:
            self.proprio[rows] = proprio
        self.action[rows], self.reward[rows] = action, reward
        self.terminated[rows], self.truncated[rows] = terminated, truncated
        self.has_action[rows] = True
        linked = self.pending >= 0  # the env's previous row gets this row as its next observation
        self.next[self.pending[linked]] = rows[linked]
        self.pending[:] = rows
        done = np.flatnonzero(terminated | truncated)
        if len(done):  # the final observations; the next row of these envs starts a new episode
            final = self._alloc(len(done))
            self.pixels[final] = next_pixels[done]
            if next_proprio is not None:
                self.proprio[final] = next_proprio[done]
            self.next[rows[done]] = final
            self.pending[done] = -1

    def windows(self, starts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Follow each start's links for up to ``n`` steps, stopping at an episode end.

        Returns:
            ``rows`` ``(B, n)`` (after an episode end the last row repeats: :func:`nstep_return` ignores it),
            ``boot`` ``(B,)`` the row of the observation after the window's last step, and ``ready``
            ``(B,)``: the start has an action and every link the window needs is written.
        """
        rows = np.empty((len(starts), n), np.int64)
        cur = np.asarray(starts, np.int64).copy()
        alive = self.has_action[cur].copy()
        ready = alive.copy()
        boot = cur.copy()
        for i in range(n):
            rows[:, i] = cur
            nxt = self.next[cur]
            ready &= ~alive | (nxt >= 0)
            boot = np.where(alive, nxt, boot)
            alive &= ~(self.terminated[cur] | self.truncated[cur]) & (nxt >= 0)
            cur = np.where(alive, nxt, cur)
        return rows, boot, ready

    def sample_starts(self, batch_size: int, n: int, generator: torch.Generator) -> np.ndarray:
        """``batch_size`` rows drawn uniformly (with replacement) among those with a complete n-step window."""
        if self.size == 0:
            raise RuntimeError("the replay buffer is empty")
        starts = torch.randint(0, self.size, (batch_size,), generator=generator).numpy()
        for _ in range(1000):  # redraw the rows without a complete window (newest rows, final observations)
            bad = ~self.windows(starts, n)[2]
            if not bad.any():
                return starts
            starts[bad] = torch.randint(0, self.size, (int(bad.sum()),), generator=generator).numpy()
        raise RuntimeError("the replay buffer has almost no complete n-step windows; collect more steps first")

    def sample(self, batch_size: int, n: int, gamma: float, generator: torch.Generator) -> dict[str, np.ndarray]:
        """A batch of n-step transitions: obs, action, return, bootstrap discount and bootstrap obs."""
        starts = self.sample_starts(batch_size, n, generator)
        rows, boot, _ = self.windows(starts, n)
        ret, discount = nstep_return(self.reward[rows], self.terminated[rows], self.truncated[rows], gamma)
        return {"pixels": self.pixels[starts], "proprio": self.proprio[starts], "action": self.action[starts],
                "return": ret.astype(np.float32), "discount": discount.astype(np.float32),
                "next_pixels": self.pixels[boot], "next_proprio": self.proprio[boot]}

    def state_dict(self) -> dict[str, Any]:
        """The filled rows as torch tensors (saved without pickling copies) and the pointers."""
        full = self.size == self.capacity  # a view of a partly filled array would save the whole storage
        data = {k: torch.from_numpy(getattr(self, k) if full else getattr(self, k)[:self.size].copy())
                for k in self.FIELDS}
        return {**data, "ptr": self.ptr, "size": self.size, "pending": self.pending.copy()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        size = int(d["size"])
        if size > self.capacity or d["pixels"].shape[1:] != self.pixels.shape[1:]:
            raise ValueError(f"replay buffer of {size} rows of {tuple(d['pixels'].shape[1:])} does not fit "
                             f"{self.capacity} rows of {self.pixels.shape[1:]}")
        for k in self.FIELDS:
            getattr(self, k)[:size] = np.asarray(d[k])
        self.ptr, self.size = int(d["ptr"]), size
        self.pending = np.array(d["pending"], dtype=np.int64)


# =============================================================================================
# 4. Networks
# =============================================================================================
def weight_init(m: nn.Module) -> None:
    """The paper's init: orthogonal Linear weights, orthogonal conv weights with the ReLU gain, zero biases."""
    if isinstance(m, nn.Linear):
        nn.init.orthogonal_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        nn.init.orthogonal_(m.weight, gain=nn.init.calculate_gain("relu"))
        nn.init.zeros_(m.bias)


def conv_features(encoder: DrQv2Encoder, pixels: torch.Tensor) -> torch.Tensor:
    """The shared conv encoder: :class:`DrQv2Encoder` without its head (``pixels`` in [0, 255]).

    Channels-last memory layout (the encoder is converted by :func:`make_encoder`): measured 30 %
    faster convolutions forward + backward on the 2-core CPU than the default layout.
    """
    return encoder.convs((pixels.float() / 255.0 - 0.5).contiguous(memory_format=torch.channels_last))


def make_encoder(pixel_shape: tuple[int, int, int], feature_dim: int) -> DrQv2Encoder:
    """The DrQ-v2 conv trunk (from :mod:`~visual_robo_bench.agents.sdpg`), paper init, channels-last."""
    encoder = DrQv2Encoder(pixel_shape, feature_dim)
    encoder.apply(weight_init)
    return encoder.to(memory_format=torch.channels_last)


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden),
                         nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))


class Actor(nn.Module):
    """Conv features -> own trunk (Linear -> LayerNorm -> Tanh) [+ proprio] -> MLP -> tanh mean."""

    def __init__(self, repr_dim: int, proprio_dim: int, action_dim: int, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
        self.policy = _mlp(feature_dim + proprio_dim, hidden_dim, action_dim)
        self.apply(weight_init)

    def forward(self, h: torch.Tensor, proprio: torch.Tensor | None) -> torch.Tensor:
        z = self.trunk(h)
        if proprio is not None:
            z = torch.cat([z, proprio], dim=-1)
        return torch.tanh(self.policy(z))


class Critic(nn.Module):
    """Double Q: conv features -> trunk [+ proprio] + action -> two MLP heads.

    ``trunk`` is the encoder's head module (shared, not copied): the paper's critic trunk.
    """

    def __init__(self, trunk: nn.Module, proprio_dim: int, action_dim: int, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.q1 = _mlp(feature_dim + proprio_dim + action_dim, hidden_dim, 1)
        self.q2 = _mlp(feature_dim + proprio_dim + action_dim, hidden_dim, 1)
        self.q1.apply(weight_init)
        self.q2.apply(weight_init)

    def forward(self, h: torch.Tensor, proprio: torch.Tensor | None,
                action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.trunk(h)
        x = torch.cat([z, action] if proprio is None else [z, proprio, action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


# =============================================================================================
# 5. The learner
# =============================================================================================
def make_env(cfg: DrQv2Config) -> Any:
    """One native batched env, every env rendered, channel-first pixels, no autoreset."""
    from ..envs.vector_env import VRBVectorEnv

    kwargs = env_kwargs(cfg)
    return VRBVectorEnv(cfg.task, num_envs=cfg.num_envs, autoreset_mode="DISABLED", pixel_layout="CHW", **kwargs)


def _pixel_shape(obs_space: dict[str, dict[str, Any]], image_keys: list[str]) -> tuple[int, int, int]:
    """``(sum C, H, W)`` of the channel-first camera images concatenated along channels."""
    shapes = [tuple(obs_space[k]["shape"]) for k in image_keys]
    if len({s[1:] for s in shapes}) != 1:
        raise ValueError(f"drqv2 concatenates the policy cameras along channels; their sizes differ: "
                         f"{dict(zip(image_keys, shapes))}")
    return (sum(s[0] for s in shapes), *shapes[0][1:])


def _obs_space(env: Any) -> dict[str, dict[str, Any]]:
    """Single-env observation space as plain data (pixels in CHW)."""
    return {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in env.single_observation_space.spaces.items()}


class DrQv2:
    """The DrQ-v2 learner and its env (``cfg.num_envs`` rendered envs).

    An epoch is ``steps_per_epoch`` env steps; after every batched env step past ``num_seed_steps``
    it runs ``updates_per_step`` gradient updates (critic, then actor, then the target EMA).
    """

    def __init__(self, cfg: DrQv2Config) -> None:
        self.cfg = cfg
        torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(cfg.seed)  # network initialisation only
        self.gen = torch.Generator().manual_seed(cfg.seed)  # augmentation, noise, seed actions, sampling
        self.env = make_env(cfg)
        space = _obs_space(self.env)
        self.image_keys = policy_image_keys(self.env)
        self.pixel_shape = _pixel_shape(space, self.image_keys)
        self.action_dim = int(self.env.single_action_space.shape[0])
        if cfg.use_proprio and "proprio" not in space:
            self.env.close()
            raise ConfigError(f"{cfg.task} has no 'proprio' observation; set use_proprio=false")
        self.proprio_dim = int(space["proprio"]["shape"][0]) if cfg.use_proprio else 0
        self.rms = RunningMeanStd(self.proprio_dim) if cfg.use_proprio else None

        self.encoder = make_encoder(self.pixel_shape, cfg.feature_dim)
        repr_dim = self.encoder.head[0].in_features
        self.actor = Actor(repr_dim, self.proprio_dim, self.action_dim, cfg.feature_dim, cfg.hidden_dim)
        self.critic = Critic(self.encoder.head, self.proprio_dim, self.action_dim, cfg.feature_dim, cfg.hidden_dim)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)  # its own copy of the trunk
        self.critic_opt = torch.optim.Adam(
            [*self.encoder.parameters(), *self.critic.q1.parameters(), *self.critic.q2.parameters()], lr=cfg.lr)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr)
        self.buffer = ReplayBuffer(cfg.buffer_capacity, cfg.num_envs, self.pixel_shape, self.proprio_dim,
                                   self.action_dim)

        self.env_rngs = [np.random.default_rng([cfg.seed, i]) for i in range(cfg.num_envs)]
        for i, g in enumerate(self.env_rngs):
            self.env.set_rng(i, g)
        self.obs, _ = self.env.reset()

        self.epoch = 0
        self.env_steps = 0
        self.frames = 0  # rendered observations (every env renders every step, and at its resets)
        self.updates = 0
        self.train_time = 0.0  # accumulated wall-clock seconds of training (across resumes)
        self.total_episodes = 0
        N = cfg.num_envs
        self.ep_return = np.zeros(N)
        self.ep_length = np.zeros(N, dtype=np.int64)
        self.ep_success = np.zeros(N, dtype=bool)
        self.episodes: deque = deque(maxlen=cfg.episode_window)  # (return, length, success)

    # ------------------------------------------------------------------ helpers
    def _pixels(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if len(self.image_keys) == 1:
            return obs[self.image_keys[0]]
        return np.concatenate([obs[k] for k in self.image_keys], axis=1)

    def _proprio(self, proprio: np.ndarray) -> torch.Tensor | None:
        return None if self.rms is None else torch.as_tensor(self.rms.normalize(proprio))

    def expl_std(self) -> float:
        return linear_std(self.env_steps, self.cfg)

    @torch.no_grad()
    def explore_actions(self) -> np.ndarray:
        """Uniform random actions during the seed steps, then ``actor + N(0, std)`` clamped to [-1, 1]."""
        N, A = self.cfg.num_envs, self.action_dim
        if self.env_steps < self.cfg.num_seed_steps:
            return (torch.rand((N, A), generator=self.gen) * 2.0 - 1.0).numpy()
        h = conv_features(self.encoder, torch.as_tensor(self._pixels(self.obs)))
        mu = self.actor(h, self._proprio(self.obs["proprio"]) if self.rms is not None else None)
        return sample_action(mu, self.expl_std(), None, self.gen).numpy()

    # ------------------------------------------------------------------ update
    def update(self) -> dict[str, float]:
        """One gradient update of the critic (and encoder), the actor and the target critic."""
        cfg, gen = self.cfg, self.gen
        b = self.buffer.sample(cfg.batch_size, cfg.n_step, cfg.gamma, gen)
        obs = random_shift(torch.as_tensor(b["pixels"]), cfg.aug_pad, generator=gen)
        next_obs = random_shift(torch.as_tensor(b["next_pixels"]), cfg.aug_pad, generator=gen)
        prop, next_prop = self._proprio(b["proprio"]), self._proprio(b["next_proprio"])
        action = torch.as_tensor(b["action"])
        std = self.expl_std()
        h = conv_features(self.encoder, obs)
        # --- critic: clipped double-Q n-step target; its gradient trains the encoder
        with torch.no_grad():
            h_next = conv_features(self.encoder, next_obs)
            next_action = sample_action(self.actor(h_next, next_prop), std, cfg.std_clip, gen)
            tq1, tq2 = self.critic_target(h_next, next_prop, next_action)
            target = torch.as_tensor(b["return"]) + torch.as_tensor(b["discount"]) * torch.min(tq1, tq2)
        q1, q2 = self.critic(h, prop, action)
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        # --- actor: detached features, maximise min(Q1, Q2) of a noisy action
        actor_loss = self.actor_loss(h.detach(), prop)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        # --- target critic (its trunk and Q heads) <- EMA of the online critic
        with torch.no_grad():
            for p_t, p in zip(self.critic_target.parameters(), self.critic.parameters()):
                p_t.lerp_(p, cfg.critic_tau)
        self.updates += 1
        return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(), "q_mean": q1.mean().item(),
                "target_q_mean": target.mean().item()}

    def actor_loss(self, h: torch.Tensor, prop: torch.Tensor | None) -> torch.Tensor:
        """``-min(Q1, Q2)(h, a)`` with ``a`` the actor's action plus clipped noise (``h``: detached features)."""
        action = sample_action(self.actor(h, prop), self.expl_std(), self.cfg.std_clip, self.gen)
        q1, q2 = self.critic(h, prop, action)
        return -torch.min(q1, q2).mean()

    # ------------------------------------------------------------------ the epoch
    def train_epoch(self) -> dict[str, float]:
        """``steps_per_epoch`` env steps, with updates after each batched step once the seed steps are done."""
        cfg, N = self.cfg, self.cfg.num_envs
        t0 = time.perf_counter()
        frames0 = self.env.frames_rendered
        env_time = update_time = 0.0
        losses: list[dict[str, float]] = []
        for _ in range(cfg.steps_per_epoch // N):
            action = self.explore_actions()
            t_env = time.perf_counter()
            next_obs, reward, term, trunc, info = self.env.step(action)
            env_time += time.perf_counter() - t_env
            use_p = self.rms is not None
            self.buffer.add(self._pixels(self.obs), self.obs["proprio"] if use_p else None, action, reward,
                            term, trunc, self._pixels(next_obs), next_obs["proprio"] if use_p else None)
            if self.rms is not None:
                self.rms.update(next_obs["proprio"])
            self.ep_return += reward
            self.ep_length += 1
            self.ep_success |= info["success"]
            done = term | trunc
            for i in np.flatnonzero(done):
                self.episodes.append((float(self.ep_return[i]), int(self.ep_length[i]), bool(self.ep_success[i])))
                self.total_episodes += 1
            if done.any():
                self.ep_return[done], self.ep_length[done], self.ep_success[done] = 0.0, 0, False
                t_env = time.perf_counter()
                next_obs, _ = self.env.reset(options={"reset_mask": done})
                env_time += time.perf_counter() - t_env
            self.obs = next_obs
            self.env_steps += N
            if self.env_steps >= cfg.num_seed_steps:
                t_up = time.perf_counter()
                losses += [self.update() for _ in range(cfg.updates_per_step)]
                update_time += time.perf_counter() - t_up
        self.epoch += 1
        epoch_frames = self.env.frames_rendered - frames0  # steps and resets
        self.frames += epoch_frames
        dt = time.perf_counter() - t0
        self.train_time += dt
        loss_means = {k: float(np.mean([x[k] for x in losses])) if losses else float("nan")
                      for k in ("critic_loss", "actor_loss", "q_mean", "target_q_mean")}
        return {"epoch": self.epoch, "env_steps": self.env_steps, "frames": self.frames, "wall_s": self.train_time,
                "time_epoch_s": dt, "time_env_s": env_time, "time_update_s": update_time,
                "env_steps_per_s": cfg.steps_per_epoch / dt, "frames_per_s": epoch_frames / dt,
                "episodes": self.total_episodes, **self.episode_stats(), **loss_means,
                "expl_std": self.expl_std(), "updates": self.updates, "buffer_rows": self.buffer.size}

    def episode_stats(self) -> dict[str, float]:
        return episode_stats(self.episodes)

    # =========================================================================================
    # 6. Checkpoints and the exported policy
    # =========================================================================================
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (module docstring)."""
        st = self.env.get_state()
        return {
            "format_version": FORMAT_VERSION, "agent": AGENT_NAME, "kind": "checkpoint", "task": self.cfg.task,
            "config": self.cfg.to_dict(), "obs_space": _obs_space(self.env), "image_keys": self.image_keys,
            "pixel_layout": "CHW", "action_dim": self.action_dim,
            "encoder": self.encoder.state_dict(), "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(), "critic_target": self.critic_target.state_dict(),
            "critic_opt": self.critic_opt.state_dict(), "actor_opt": self.actor_opt.state_dict(),
            "rms": None if self.rms is None else self.rms.state_dict(),
            "torch_gen": self.gen.get_state(), "env_rngs": [g.bit_generator.state for g in self.env_rngs],
            "env_state": st.to_dict(),
            # set_state refills a frame stack with the current frame; exact resume needs the real history
            "frame_stacks": self.env.get_frame_stacks(), "obs": {k: v.copy() for k, v in self.obs.items()},
            "buffer": self.buffer.state_dict(),
            "counters": {"epoch": self.epoch, "env_steps": self.env_steps, "frames": self.frames,
                         "updates": self.updates, "train_time": self.train_time,
                         "total_episodes": self.total_episodes},
            "episodes": {"ep_return": self.ep_return.copy(), "ep_length": self.ep_length.copy(),
                         "ep_success": self.ep_success.copy(), "window": list(self.episodes)},
            "epoch": self.epoch, "env_steps": self.env_steps, "episode_return": self.episode_stats()["episode_return"],
        }

    def load_state_dict(self, ck: dict[str, Any]) -> None:
        check_checkpoint(ck, self.cfg.task, resumable=True)
        from ..envs.vector_env import VRBState

        self.encoder.load_state_dict(ck["encoder"])
        self.actor.load_state_dict(ck["actor"])
        self.critic.load_state_dict(ck["critic"])
        self.critic_target.load_state_dict(ck["critic_target"])
        self.critic_opt.load_state_dict(ck["critic_opt"])
        self.actor_opt.load_state_dict(ck["actor_opt"])
        if self.rms is not None:
            self.rms.load_state_dict(ck["rms"])
        self.gen.set_state(ck["torch_gen"])
        es = ck["env_state"]
        self.env.set_state(VRBState.from_dict(es))
        for g, s in zip(self.env_rngs, ck["env_rngs"]):  # after set_state: restore the streams last
            g.bit_generator.state = s
        self.env.set_frame_stacks(ck["frame_stacks"])
        self.obs = {k: np.array(v) for k, v in ck["obs"].items()}
        self.buffer.load_state_dict(ck["buffer"])
        c = ck["counters"]
        self.epoch, self.env_steps, self.frames, self.updates = c["epoch"], c["env_steps"], c["frames"], c["updates"]
        self.train_time, self.total_episodes = c["train_time"], c["total_episodes"]
        e = ck["episodes"]
        self.ep_return, self.ep_length = np.array(e["ep_return"]), np.array(e["ep_length"])
        self.ep_success = np.array(e["ep_success"])
        self.episodes = deque([tuple(x) for x in e["window"]], maxlen=self.cfg.episode_window)

    def save_checkpoint(self, path: str | Path) -> None:
        atomic_torch_save(self.state_dict(), path)

    @classmethod
    def from_checkpoint(cls, path: str | Path, task: str | None = None, **config_changes: Any) -> "DrQv2":
        """Rebuild the learner of a checkpoint (``task``: refuse a checkpoint of another task)."""
        ck = load_file(path)
        check_checkpoint(ck, task, resumable=True)
        cfg = DrQv2Config.from_dict(ck["config"])
        if config_changes:
            cfg = apply_overrides(cfg, config_changes)
        learner = cls(cfg)
        try:
            learner.load_state_dict(ck)
        except BaseException:
            learner.close()
            raise
        return learner

    def export_policy(self, path: str | Path) -> None:
        """``policy.pt``: encoder and actor weights, proprio statistics, config, task and observation space."""
        data = {
            "format_version": FORMAT_VERSION, "agent": AGENT_NAME, "kind": "policy", "task": self.cfg.task,
            "config": self.cfg.to_dict(), "encoder": self.encoder.state_dict(), "actor": self.actor.state_dict(),
            "rms": None if self.rms is None else self.rms.state_dict(),
            "obs_space": _obs_space(self.env), "image_keys": self.image_keys, "pixel_layout": "CHW",
            "action_dim": self.action_dim, "epoch": self.epoch, "env_steps": self.env_steps,
            "episode_return": self.episode_stats()["episode_return"],
        }
        atomic_torch_save(data, path)

    def close(self) -> None:
        self.env.close()


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a DrQ-v2 checkpoint or policy file, memory-mapped (a checkpoint holds the replay buffer).

    Raises:
        FileNotFoundError: No such file.
        IncompatibleCheckpoint: Unreadable, or a file of another agent.
    """
    return load_agent_file(path, AGENT_NAME, label="DrQ-v2", mmap=True)


def check_checkpoint(data: dict[str, Any], task: str | None, resumable: bool = False) -> None:
    """Refuse a file of another format version or (when given) another task; with ``resumable``, a policy file."""
    check_agent_file(data, task, FORMAT_VERSION, "DrQ-v2")
    if resumable and data.get("kind") != "checkpoint":
        raise IncompatibleCheckpoint("this is a policy file, not a training checkpoint: it cannot be resumed")


class DrQv2Policy:
    """A loaded DrQ-v2 policy: ``act(obs)`` -> the actor's tanh mean in [-1, 1], deterministic.

    ``obs`` is a batched or single observation dict; pixels channel-last (the evaluation harness) or
    channel-first (training); every policy camera of the task is needed.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.cfg = DrQv2Config.from_dict(data["config"])
        self.task = data["task"]
        self.obs_space = data["obs_space"]
        self.image_keys = list(data["image_keys"])
        self.pixel_shape = _pixel_shape(self.obs_space, self.image_keys)
        self.rms = None
        proprio_dim = 0
        if data["rms"] is not None:
            proprio_dim = int(self.obs_space["proprio"]["shape"][0])
            self.rms = RunningMeanStd(proprio_dim)
            self.rms.load_state_dict(data["rms"])
        self.encoder = make_encoder(self.pixel_shape, self.cfg.feature_dim)
        self.encoder.load_state_dict(data["encoder"])
        repr_dim = self.encoder.head[0].in_features
        self.actor = Actor(repr_dim, proprio_dim, int(data["action_dim"]), self.cfg.feature_dim, self.cfg.hidden_dim)
        self.actor.load_state_dict(data["actor"])
        self.encoder.eval()
        self.actor.eval()
        self.meta = {k: data.get(k) for k in ("epoch", "env_steps", "episode_return")}

    def _camera(self, key: str, pixels: Any) -> tuple[np.ndarray, bool]:
        """One camera's images as ``(n, C, H, W)`` uint8, and whether the input was a single observation."""
        return images_chw(pixels, tuple(self.obs_space[key]["shape"]), key, self.task)

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        missing = [k for k in self.image_keys + (["proprio"] if self.rms is not None else []) if k not in obs]
        if missing:
            raise ValueError(f"the observation lacks {missing} (the policy was trained on {self.task} with "
                             f"{self.image_keys + (['proprio'] if self.rms is not None else [])})")
        images = [self._camera(k, obs[k]) for k in self.image_keys]
        single = images[0][1]
        if len({x.shape[0] for x, _ in images}) != 1 or any(s != single for _, s in images):
            raise ValueError(f"the cameras {self.image_keys} hold different numbers of images")
        pixels = images[0][0] if len(images) == 1 else np.concatenate([x for x, _ in images], axis=1)
        proprio = None
        if self.rms is not None:
            p = np.asarray(obs["proprio"], dtype=np.float32)
            p = p[None] if p.ndim == 1 else p
            P = self.rms.mean.shape[0]
            if p.shape != (pixels.shape[0], P):
                raise ValueError(f"proprio must be ({pixels.shape[0]}, {P}) for {self.task}, "
                                 f"got {np.shape(obs['proprio'])}")
            proprio = torch.as_tensor(self.rms.normalize(p))
        a = self.actor(conv_features(self.encoder, torch.as_tensor(pixels)), proprio).numpy().astype(np.float32)
        return a[0] if single else a

    __call__ = act


def load_policy(path: str | Path, task: str | None = None) -> DrQv2Policy:
    """Load ``policy.pt`` (or a training checkpoint) as a deterministic policy for evaluation."""
    data = load_file(path)
    check_checkpoint(data, task)
    return DrQv2Policy(data)


# The ``vrb train`` learner interface (see :mod:`visual_robo_bench.train`).
LEARNER = DrQv2


def describe(cfg: DrQv2Config) -> str:
    """The run layout printed by ``vrb train``."""
    return (f"N={cfg.num_envs}, batch={cfg.batch_size}, n_step={cfg.n_step}, "
            f"updates/step={cfg.updates_per_step}, buffer={cfg.buffer_capacity:,} rows")
