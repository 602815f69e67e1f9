"""SDPG (Stochastic Decoupled Policy Gradient), VRB's reference agent, in one file.

Read top to bottom; every section number refers to the project's SDPG specification
(``../shared/specs/sdpg.md`` beside the repository; not shipped with the package).

1. ``SDPGConfig``: frozen, typed hyperparameters, and ``PRESETS`` per task (CPU-scaled, §5 and §8).
2. Networks: running mean/std, the DrQ-v2 conv trunk and Go2's depth backbone, the actor (one encoder
   per policy camera, optional proprio MLP, mean + state-independent log-std), the privileged critic
   (§2.11, §2.8, inputs per task as in §5).
3. The pure math: TD(lambda) returns (§2.3), causal or segment-level ΔJ (§2.4), the per-timestep
   reward-invariant normalisation of ΔJ and the ascent directions (§2.5-2.6).
4. ``SDPG``: the agent. One env object holds B rendered nominal envs (ids ``0..B-1``) and B*M
   physics-only branches (ids ``B..N-1``; branch j of nominal b is ``B + b*M + j``). Per epoch:
   clone branches from their nominal, roll out T steps (branches replay the nominal's mean plus
   Gaussian noise, never rendered), one regression step of the actor, critic passes, target update.
5. Checkpoints (exact resume: networks, optimisers, RMS, every RNG, env state and frame stacks) and
   the exported deterministic policy (``policy.pt``, ``load_policy``).

Deviations from upstream:

- §6 item 11: torch, numpy and the envs are seeded from one run seed.
- §2.7 / §6 item 16: the actor's predictions are not clamped before the loss by default
  (``clamp_predictions=False``; the targets still are): with clamping, means that crossed the bound got no
  gradient and stayed there (measured, see the config field). ``clamp_predictions=True`` is upstream's loss.
- §8: B, M, T, the critic mini-batch and the epoch schedule of every preset are scaled for a 2-core CPU.
- §2.11: the critic's height scan is RMS-normalised on every preset (``height_scan_rms=True``, as the reference
  runs were trained); upstream normalises it only on Go2, its WalkerHurdle and G1 configs leave it raw
  (``height_scan_rms=False``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

from .common import (ConfigError, IncompatibleCheckpoint, apply_overrides, atomic_torch_save,  # noqa: F401
                     check_agent_file, env_kwargs, episode_stats, images_chw, load_agent_file,
                     policy_image_keys)

#: Bumped whenever the checkpoint or policy file layout changes; older files are refused.
FORMAT_VERSION = 1
AGENT_NAME = "sdpg"


# =============================================================================================
# 1. Config
# =============================================================================================
@dataclass(frozen=True)
class SDPGConfig:
    """Every hyperparameter of an SDPG run (defaults: spec §5 for Hopper/Walker, CPU-scaled per §8).

    Layout: ``num_nominal`` (B) rendered envs, ``num_perturbations`` (M) branches each,
    ``horizon`` (T) steps per epoch; N = B*(M+1) physics envs.
    """

    task: str = "VRB/Walker-v1"
    # --- layout (§2.1); upstream B=64, M=63. CPU: cut B (rendering + conv update) harder than M (§8.1)
    num_nominal: int = 8
    num_perturbations: int = 31
    horizon: int = 16  # upstream 32 (Humanoid 16); CPU: half the actor batch -> twice the actor steps per hour
    # --- returns (§2.3)
    gamma: float = 0.99
    lam: float = 0.95
    eligibility_trace: bool = True
    causality: bool = True  # ΔJ per timestep (§2.4); False: segment-level ΔJ (Go2)
    reward_scale: float = 1.0
    # --- actor (§2.7, §2.9, §2.10, §2.11)
    actor_lr: float = 2e-3
    actor_lr_min: float = 1e-5
    actor_lr_schedule: str = "cosine"  # warm-up then cosine to actor_lr_min; or "constant" (Go2)
    warmup_epochs: int = 50  # upstream 100; CPU: an hour holds ~1-2k epochs, not 20k
    max_epochs: int = 1500  # the cosine schedule ends here; also a hard stop (upstream 20000)
    pixel_encoder: str = "drqv2"  # of the first policy camera (`pixels`): "drqv2", or "depth" (Go2's backbone)
    encoder_dim: int = 128  # output of the first camera's encoder
    extra_camera_dim: int = 32  # output of the DrQ-v2 encoder of each further camera (`pixels_<camera>`)
    actor_hidden: tuple[int, ...] = (128, 64, 32)
    use_proprio: bool = False  # upstream ignores proprio on Hopper/Walker/Ant/Humanoid
    proprio_hidden: tuple[int, ...] = (256,)
    proprio_rms: bool = True  # normalise proprio with running mean/std (not on Go2)
    mean_bound: float | None = 2.0  # None: means are not clamped (Go2)
    learn_std: bool = True  # False: sigma stays exp(init_log_std) (Go2: sigma = 1) and has no loss term
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    init_log_std: float = 0.0
    entropy: str = "auto"  # "auto" (tuned temperature), "fixed", or "none"
    init_alpha: float = 0.01
    target_std: float = 0.15
    alpha_lr: float = 1e-3
    grad_norm: float = 1.0
    # upstream clamps mu and l before the loss, so a mean beyond +-2 gets no gradient (§6 item 16).
    # Measured here (Hopper, B=8, T=16): 100 % of the nominal means were beyond the bound after 3
    # epochs and never came back. Unclamped predictions (targets still clamped) pull them back.
    clamp_predictions: bool = False
    mean_head_gain: float = math.sqrt(2)  # upstream: orthogonal gain sqrt(2) on the output layer too
    top_k: int = 0  # keep only the k block entries with the largest ΔJ, average over k (0 = off, as upstream)
    # --- critic (§2.8)
    critic_lr: float = 2e-4
    critic_lr_schedule: str = "constant"  # or "linear" (1.0x -> 0.1x over max_epochs)
    critic_hidden: tuple[int, ...] = (64, 64)
    privileged_rms: bool = True  # normalise the critic's privileged input (not on Go2)
    # normalise the height scan (§2.11 "when apply_rms is set"). Upstream sets it only on Go2; its WalkerHurdle
    # and G1 configs leave the scan raw. True on every preset here (the reference runs were trained so);
    # height_scan_rms=False is upstream's WalkerHurdle/G1 behaviour.
    height_scan_rms: bool = True
    critic_privileged_hidden: tuple[int, ...] = ()  # encoder of `privileged` (only with a height scan)
    critic_height_scan_hidden: tuple[int, ...] = (128, 256)
    critic_minibatch: int = 1024
    critic_iterations: int = 2
    target_critic_alpha: float = 0.01  # weight on the OLD target
    # --- env
    image_size: tuple[int, ...] | None = None  # None: the task's (anything else is off-leaderboard)
    max_episode_steps: int | None = None  # None: the task's (anything else is off-leaderboard)
    nthread: int | None = None  # physics threads (None: the usable cores)
    # 1, not 2: the 2 cores are shared with MuJoCo's physics threads and the renderer, and torch's
    # OpenMP barriers stall under that oversubscription. Measured on Walker (B=8, M=31, T=16):
    # rollout 0.7 s vs 1.3-4.1 s, actor+critic update 1.1-1.4 s vs 2.0-2.9 s per epoch.
    torch_threads: int = 1
    # --- run
    seed: int = 0
    time_budget_s: float = 3600.0  # stop after this much training wall-clock (0: none); §8.2 budget by time
    checkpoint_every: int = 25  # epochs
    episode_window: int = 100  # the logged return is the mean of the last this-many nominal episodes
    # §3 step 13: every eval_interval epochs (0: never) ``vrb train`` runs the evaluation harness on the current
    # policy for eval_episodes episodes (fixed seeds, deterministic) and logs eval_return / eval_success;
    # conventions.md 6's learning curves: eval_interval = max_epochs / 10 (10 evenly spaced points), E = 10
    eval_interval: int = 0
    eval_episodes: int = 10

    def __post_init__(self) -> None:
        checks = [
            (self.num_nominal >= 1, "num_nominal must be >= 1"),
            (self.num_perturbations >= 1, "num_perturbations must be >= 1"),
            (self.horizon >= 1, "horizon must be >= 1"),
            (0 < self.gamma <= 1 and 0 <= self.lam <= 1, "gamma must be in (0, 1] and lam in [0, 1]"),
            (self.log_std_min <= self.log_std_max, "log_std_min must be <= log_std_max"),
            (self.entropy in ("auto", "fixed", "none"),
             f"entropy must be 'auto', 'fixed' or 'none', got {self.entropy!r}"),
            (self.learn_std or self.entropy == "none", "a fixed std (learn_std=False) needs entropy='none'"),
            (self.pixel_encoder in ("drqv2", "depth"),
             f"pixel_encoder must be 'drqv2' or 'depth', got {self.pixel_encoder!r}"),
            (self.actor_lr_schedule in ("cosine", "constant"),
             f"actor_lr_schedule must be 'cosine' or 'constant', got {self.actor_lr_schedule!r}"),
            (self.critic_lr_schedule in ("constant", "linear"),
             f"critic_lr_schedule must be 'constant' or 'linear', got {self.critic_lr_schedule!r}"),
            (self.critic_minibatch >= 1 and self.critic_iterations >= 0,
             "critic_minibatch must be >= 1 and critic_iterations >= 0"),
            (0 <= self.target_critic_alpha <= 1, "target_critic_alpha must be in [0, 1]"),
            (self.max_epochs >= 1 and self.warmup_epochs >= 0, "max_epochs >= 1 and warmup_epochs >= 0"),
            (self.image_size is None or len(self.image_size) == 2, "image_size must be (H, W) or None"),
            (0 <= self.top_k <= self.num_perturbations + 1, "top_k must be in [0, M+1]"),
            (self.checkpoint_every >= 1 and self.episode_window >= 1, "checkpoint_every, episode_window >= 1"),
            (self.eval_interval >= 0 and self.eval_episodes >= 1, "eval_interval must be >= 0, eval_episodes >= 1"),
            ((self.mean_bound is None or self.mean_bound > 0) and self.torch_threads >= 1,
             "mean_bound must be > 0 (or None) and torch_threads >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"SDPGConfig: {msg}")

    @property
    def num_envs(self) -> int:
        return self.num_nominal * (self.num_perturbations + 1)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SDPGConfig":
        return apply_overrides(cls(), data)


# Per-task presets: the hyperparameters and network inputs of spec §5; B, M, T, the critic mini-batch and the
# epoch schedule scaled for a 2-core CPU (§8.2 "cpu-default": B=8, M=31, N=256, critic mini-batch 1024). Reason:
# on a CPU the rendering and the conv update scale with B*T and dominate; physics (N*T) is cheap. Measured on the
# project's 2-core machine, Hopper 84x84: B=8, T=32 takes ~4 s/epoch (actor step 2.7 s, rollout 1.2 s), so the
# horizons of 32 are halved (T=16; ~2 s/epoch) and ALOHA's and Franka's 64 become 32 (§8.2: "try 32"), and
# max_epochs=1500 (about an hour) lets the cosine LR schedule finish.
_HOPPER_WALKER = SDPGConfig()
# The hands, Franka, ALOHA and G1 (§5): linear critic LR decay, target alpha 0.2, no entropy term; proprio through
# an RMS-normalised MLP beside the pixels.
_MANIPULATION = dataclasses.replace(
    _HOPPER_WALKER, encoder_dim=256, use_proprio=True, actor_lr=1e-3, entropy="none", critic_lr=5e-4,
    critic_lr_schedule="linear", target_critic_alpha=0.2)
_HAND = dataclasses.replace(
    _MANIPULATION, proprio_hidden=(1024, 256), actor_hidden=(256, 128), grad_norm=0.5,
    critic_hidden=(1024, 512, 256, 128))
# Go2 (§5, §2.4, §2.9): segment-level ΔJ without trace, fixed sigma = 1, no mean or log-std bounds, constant actor
# LR, reward scale 10, 5 critic passes, hard target copy; depth camera through the depth backbone; proprio (a
# history) and privileged state not normalised, the height scan is.
_GO2 = dataclasses.replace(
    _HOPPER_WALKER, horizon=24, causality=False, eligibility_trace=False, reward_scale=10.0, actor_lr=5e-4,
    actor_lr_schedule="constant", pixel_encoder="depth", encoder_dim=32, use_proprio=True,
    proprio_hidden=(256, 128), proprio_rms=False, actor_hidden=(512, 256, 128), mean_bound=None, learn_std=False,
    entropy="none", critic_lr=5e-4, critic_lr_schedule="linear", critic_hidden=(512, 256, 128),
    privileged_rms=False, critic_height_scan_hidden=(128, 256), critic_iterations=5, target_critic_alpha=0.0)
PRESETS: dict[str, SDPGConfig] = {
    "VRB/Hopper-v1": dataclasses.replace(_HOPPER_WALKER, task="VRB/Hopper-v1"),
    "VRB/Walker-v1": dataclasses.replace(_HOPPER_WALKER, task="VRB/Walker-v1"),
    "VRB/Ant-v1": dataclasses.replace(
        _HOPPER_WALKER, task="VRB/Ant-v1", encoder_dim=256, actor_hidden=(256, 64, 32), entropy="none",
        critic_lr=2e-3, critic_lr_schedule="linear", target_critic_alpha=0.2),
    "VRB/Humanoid-v0": dataclasses.replace(
        _HOPPER_WALKER, task="VRB/Humanoid-v0", encoder_dim=256, actor_hidden=(256, 128),
        critic_hidden=(128, 128), entropy="fixed", log_std_min=-2.2, log_std_max=0.0, critic_lr=5e-4,
        critic_lr_schedule="linear", target_critic_alpha=0.2, max_epochs=4000),
    "VRB/WalkerHurdle-v1": dataclasses.replace(
        _HOPPER_WALKER, task="VRB/WalkerHurdle-v1", use_proprio=True, proprio_hidden=(256,), encoder_dim=256,
        actor_hidden=(256, 128), actor_lr=1e-3, entropy="none", critic_hidden=(128,),
        critic_privileged_hidden=(256,), critic_height_scan_hidden=(128, 256)),
    "VRB/ShadowCube-v0": dataclasses.replace(_HAND, task="VRB/ShadowCube-v0"),
    "VRB/AllegroCube-v0": dataclasses.replace(_HAND, task="VRB/AllegroCube-v0"),
    "VRB/FrankaPick-v0": dataclasses.replace(  # wrist camera -> 256, front camera -> 32
        _MANIPULATION, task="VRB/FrankaPick-v0", horizon=32, actor_lr=2e-3, proprio_hidden=(1024, 128),
        actor_hidden=(1024, 512, 256, 128), critic_hidden=(1024, 512, 256, 128)),
    "VRB/AlohaInsertion-v0": dataclasses.replace(  # table camera -> 256, each wrist camera -> 32
        _MANIPULATION, task="VRB/AlohaInsertion-v0", horizon=32, actor_lr=2e-3, critic_lr=2e-3,
        proprio_hidden=(256,), actor_hidden=(512, 256, 128), critic_hidden=(512, 256, 128)),
    "VRB/G1Hurdle-v0": dataclasses.replace(
        _MANIPULATION, task="VRB/G1Hurdle-v0", proprio_hidden=(256,), actor_hidden=(256, 128), entropy="auto",
        critic_hidden=(128,), critic_privileged_hidden=(256,), critic_height_scan_hidden=(128, 256)),
    "VRB/Go2Terrain-v0": dataclasses.replace(_GO2, task="VRB/Go2Terrain-v0"),
    # no upstream visual config: Go2Terrain's, as the spec assumes (§5)
    "VRB/Go2-v0": dataclasses.replace(_GO2, task="VRB/Go2-v0"),
}
# the deprecated v0 of the tasks whose robots fell through the floor keep their presets
PRESETS.update({f"{k[:-3]}-v0": dataclasses.replace(v, task=f"{k[:-3]}-v0")
                for k, v in list(PRESETS.items()) if k.endswith("-v1")})


def make_config(task: str, overrides: dict[str, Any] | None = None) -> SDPGConfig:
    """The preset of ``task`` with ``overrides``.

    Every VRB task has a preset; a task registered by another package gets the Hopper/Walker one (pixels of
    every policy camera, no proprio: set ``use_proprio`` and the network sizes with ``overrides``).

    Raises:
        KeyError: Unknown task (naming the closest ids).
        ConfigError: Unknown config key or bad value.
    """
    from ..registry import get_task

    task = get_task(task).id
    base = PRESETS.get(task, dataclasses.replace(_HOPPER_WALKER, task=task))
    overrides = dict(overrides or {})
    if "task" in overrides and overrides["task"] != task:
        raise ConfigError("the task is given by --task, not by a config override")
    overrides.pop("task", None)
    return apply_overrides(base, overrides)


# =============================================================================================
# 2. Networks
# =============================================================================================
class RunningMeanStd:
    """Per-feature running mean/var with parallel-moments updates (§2.11); float64 numpy."""

    def __init__(self, dim: int) -> None:
        self.mean = np.zeros(dim)
        self.var = np.ones(dim)
        self.count = 1e-4

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        b_mean, b_var, b_count = x.mean(0), x.var(0), x.shape[0]
        delta, total = b_mean - self.mean, self.count + b_count
        self.mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var, self.count = m2 / total, total

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / np.sqrt(self.var + 1e-5)).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.mean, self.var, self.count = np.array(d["mean"]), np.array(d["var"]), float(d["count"])


def _ortho_init(module: nn.Module) -> None:
    """Orthogonal init with gain sqrt(2), zero biases, on every Linear/Conv (§2.11)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.orthogonal_(m.weight, gain=math.sqrt(2))
            nn.init.zeros_(m.bias)


def mlp(in_dim: int, hidden: tuple[int, ...]) -> tuple[nn.Module, int]:
    """Hidden layers Linear -> ELU -> LayerNorm; returns the module and its output size."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.ELU(), nn.LayerNorm(h)]
        in_dim = h
    return nn.Sequential(*layers), in_dim


class DrQv2Encoder(nn.Module):
    """The DrQ-v2 trunk: 4 convs (32 ch, 3x3, strides 2-1-1-1), then Linear -> LayerNorm -> Tanh."""

    def __init__(self, in_shape: tuple[int, int, int], out_dim: int) -> None:
        super().__init__()
        c, h, w = in_shape
        self.convs = nn.Sequential(
            nn.Conv2d(c, 32, 3, stride=2), nn.ReLU(), nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(), nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, c, h, w)).shape[1]
        self.head = nn.Sequential(nn.Linear(flat, out_dim), nn.LayerNorm(out_dim), nn.Tanh())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(pixels.float() / 255.0 - 0.5))  # images are never RMS-normalised


class DepthEncoder(nn.Module):
    """Go2's depth backbone (§2.11): Conv 5x5 (32) -> MaxPool 2 -> ELU -> Conv 3x3 (64) -> ELU -> Linear 128 -> ELU
    -> Linear out -> Tanh."""

    def __init__(self, in_shape: tuple[int, int, int], out_dim: int) -> None:
        super().__init__()
        c, h, w = in_shape
        self.convs = nn.Sequential(nn.Conv2d(c, 32, 5), nn.MaxPool2d(2), nn.ELU(), nn.Conv2d(32, 64, 3), nn.ELU(),
                                   nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, c, h, w)).shape[1]
        self.head = nn.Sequential(nn.Linear(flat, 128), nn.ELU(), nn.Linear(128, out_dim), nn.Tanh())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(pixels.float() / 255.0 - 0.5))


class Actor(nn.Module):
    """Images of every policy camera (+ proprio) -> pre-tanh mean; log-std is a free parameter vector (§2.9).

    The first camera goes through ``cfg.pixel_encoder`` to ``encoder_dim`` features, each further camera through
    its own DrQ-v2 trunk to ``extra_camera_dim``, proprio through an MLP; the features are concatenated (§5).
    """

    def __init__(self, image_shapes: list[tuple[int, int, int]], proprio_dim: int, action_dim: int,
                 cfg: SDPGConfig) -> None:
        super().__init__()
        first = DepthEncoder if cfg.pixel_encoder == "depth" else DrQv2Encoder
        self.encoder = first(image_shapes[0], cfg.encoder_dim)
        self.extra_encoders = nn.ModuleList(DrQv2Encoder(s, cfg.extra_camera_dim) for s in image_shapes[1:])
        feat = cfg.encoder_dim + cfg.extra_camera_dim * len(self.extra_encoders)
        self.proprio_encoder = None
        if cfg.use_proprio:
            self.proprio_encoder, pdim = mlp(proprio_dim, cfg.proprio_hidden)
            feat += pdim
        self.trunk, hdim = mlp(feat, cfg.actor_hidden)
        self.mean = nn.Linear(hdim, action_dim)
        _ortho_init(self)
        nn.init.orthogonal_(self.mean.weight, gain=cfg.mean_head_gain)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(cfg.init_log_std)), requires_grad=cfg.learn_std)

    def forward(self, images: list[torch.Tensor], proprio: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(images[0])
        if len(self.extra_encoders):
            z = torch.cat([z, *(enc(x) for enc, x in zip(self.extra_encoders, images[1:]))], dim=-1)
        if self.proprio_encoder is not None:
            z = torch.cat([z, self.proprio_encoder(proprio)], dim=-1)
        mean = self.mean(self.trunk(z))
        return mean, self.log_std.expand_as(mean)


def clamp_mean(x: Any, bound: float | None) -> Any:
    """``x`` clamped to [-bound, bound] (numpy or torch); unchanged when ``bound`` is None."""
    if bound is None:
        return x
    return x.clamp(-bound, bound) if isinstance(x, torch.Tensor) else np.clip(x, -bound, bound)


class Critic(nn.Module):
    """V(privileged [, height_scan]) with Linear -> ELU -> LayerNorm hidden layers (§2.8)."""

    def __init__(self, privileged_dim: int, height_scan_dim: int, cfg: SDPGConfig) -> None:
        super().__init__()
        self.priv_enc, feat = mlp(privileged_dim, cfg.critic_privileged_hidden if height_scan_dim else ())
        self.scan_enc = None
        if height_scan_dim:
            self.scan_enc, sdim = mlp(height_scan_dim, cfg.critic_height_scan_hidden)
            feat += sdim
        self.trunk, hdim = mlp(feat, cfg.critic_hidden)
        self.out = nn.Linear(hdim, 1)
        _ortho_init(self)

    def forward(self, privileged: torch.Tensor, height_scan: torch.Tensor | None = None) -> torch.Tensor:
        z = self.priv_enc(privileged)
        if self.scan_enc is not None:
            z = torch.cat([z, self.scan_enc(height_scan)], dim=-1)
        return self.out(self.trunk(z)).squeeze(-1)


# =============================================================================================
# 3. The math (pure functions of arrays; unit-tested against hand-computed examples)
# =============================================================================================
def lambda_returns(rewards: np.ndarray, next_values: np.ndarray, dones: np.ndarray, gamma: float,
                   lam: float, eligibility_trace: bool = True) -> np.ndarray:
    """Truncated TD(lambda) returns-to-go G[t, e] over segments ended by ``dones`` (§2.3).

    ``next_values[t]`` is V'(s_{t+1}) (0 where terminated). ``dones[-1]`` must be all True.
    Without the trace: G_t = r_t + gamma * (done_t ? V'_t : G_{t+1}).
    """
    T = rewards.shape[0]
    G = np.zeros_like(rewards, dtype=np.float64)
    nxt = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in reversed(range(T)):
        if eligibility_trace:
            cont = (1.0 - lam) * next_values[t] + lam * nxt
        else:
            cont = nxt
        G[t] = rewards[t] + gamma * np.where(dones[t], next_values[t], cont)
        nxt = G[t]
    return G


def delta_j(G: np.ndarray, dones: np.ndarray, block_ids: np.ndarray, causal: bool = True) -> np.ndarray:
    """Return differences ΔJ ``(T, B, M+1)`` of every block entry against its nominal, entry 0 (§2.4).

    Args:
        G: ``(T, N)`` returns-to-go (:func:`lambda_returns`).
        dones: ``(T, N)`` segment ends.
        block_ids: ``(B, M+1)`` env ids of each block, the nominal first.
        causal: Per timestep, ΔJ_t = G_{e,t} - G_{nom,t}. Otherwise segment-level: every step of env e's
            segment that starts at step s gets G_{e,s} - G_{nom,s}, the returns from the segment's start
            (with ``eligibility_trace=False`` these are the spec's R_e(s) and R_nom(s)).
    """
    if causal:
        G_block = G[:, block_ids]
        return G_block - G_block[..., :1]
    start = np.zeros(G.shape, dtype=np.int64)  # the first step of the segment that (t, e) belongs to
    for t in range(1, G.shape[0]):
        start[t] = np.where(dones[t - 1], t, start[t - 1])
    s = start[:, block_ids]  # (T, B, M+1)
    return G[s, block_ids] - G[s, block_ids[:, :1]]


def ascent_directions(dJ: np.ndarray, eps: np.ndarray, sigma: np.ndarray,
                      top_k: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zeroth-order action-space ascent directions per nominal sample (§2.5-2.6).

    Args:
        dJ: ``(..., M+1)`` return differences against the nominal (:func:`delta_j`; entry 0 is 0).
        eps: ``(..., M+1, A)`` standard-normal noise (0 for the nominal).
        sigma: ``(..., A)`` the executed std.
        top_k: keep only the k entries with the largest ΔJ, exactly k (ties: the lower index), and average
            over those k (0: all M+1).

    Returns:
        d_mu ``(..., A)``, d_logstd ``(..., A)`` and the ΔJ std ``(...)``.
    """
    # ΔJ has the nominal as baseline and is NOT mean-centred
    std = dJ.std(axis=-1, ddof=1)  # unbiased, over all M+1 entries (the nominal's zero included)
    dJn = dJ / (std[..., None] + 1e-6)  # reward-invariant normalisation
    if top_k and top_k < dJ.shape[-1]:  # upstream: torch.topk over the M+1 entries, then the mean of those k
        keep = np.argsort(-dJ, axis=-1, kind="stable")[..., :top_k]  # exactly k (ties: the lower index)
        dJn = np.take_along_axis(dJn, keep, axis=-1)
        eps = np.take_along_axis(eps, keep[..., None], axis=-2)
    n = dJn.shape[-1]  # divisor M+1, or k with top_k
    d_mu = (dJn[..., None] * eps).sum(-2) / n
    d_logstd = (dJn[..., None] * (eps**2 - 1.0)).sum(-2) / n * sigma
    return d_mu, d_logstd, std


def cosine_warmup_lr(epoch: int, cfg: SDPGConfig) -> float:
    """Actor LR: linear warm-up over ``warmup_epochs``, cosine to ``actor_lr_min`` at ``max_epochs`` (§2.10);
    constant with ``actor_lr_schedule="constant"``."""
    if cfg.actor_lr_schedule == "constant":
        return cfg.actor_lr
    if epoch < cfg.warmup_epochs:
        return cfg.actor_lr * (epoch + 1) / cfg.warmup_epochs
    span = max(1, cfg.max_epochs - cfg.warmup_epochs)
    p = min(1.0, (epoch - cfg.warmup_epochs) / span)
    return cfg.actor_lr_min + 0.5 * (cfg.actor_lr - cfg.actor_lr_min) * (1 + math.cos(math.pi * p))


def critic_lr(epoch: int, cfg: SDPGConfig) -> float:
    if cfg.critic_lr_schedule == "linear":
        return cfg.critic_lr * (1.0 - 0.9 * min(1.0, epoch / cfg.max_epochs))
    return cfg.critic_lr


# =============================================================================================
# 4. The agent
# =============================================================================================
def make_env(cfg: SDPGConfig) -> Any:
    """One vector env: B rendered nominal envs (ids 0..B-1), then B*M physics-only branches."""
    kwargs = env_kwargs(cfg)
    return gym.make_vec(cfg.task, num_envs=cfg.num_envs, autoreset_mode="DISABLED",
                        render_env_ids=list(range(cfg.num_nominal)), privileged=True, pixel_layout="CHW", **kwargs)


@dataclass
class Rollout:
    """One epoch of data. Shapes: T steps, B nominal, N envs, A actions, K = M+1 per block."""

    images: dict[str, np.ndarray]  # camera key -> (T, B, C, H, W) uint8, nominal only
    proprio: np.ndarray | None  # (T, B, P), normalised with the epoch's frozen RMS (unless proprio_rms=False)
    critic_obs: dict[str, np.ndarray]  # key -> (T, N, D), RMS-normalised unless the preset says not (Go2)
    mean: np.ndarray  # (T, B, A) executed (clipped) nominal mean m
    log_std: np.ndarray  # (T, B, A) clipped log-std l
    eps: np.ndarray  # (T, B, K, A), 0 for the nominal
    rewards: np.ndarray  # (T, N) scaled
    next_values: np.ndarray  # (T, N) target V of the post-step, pre-reset state (0 if terminated)
    dones: np.ndarray  # (T, N)
    terminated: np.ndarray  # (T, N)


class SDPG:
    """The SDPG learner and its envs.

    Args:
        cfg: The run config (``cfg.task`` is the task id).
        env: An env built by :func:`make_env` (default: built here).
    """

    def __init__(self, cfg: SDPGConfig, env: Any = None) -> None:
        self.cfg = cfg
        torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)  # action noise and critic shuffles
        self.env = env if env is not None else make_env(cfg)
        B, M = cfg.num_nominal, cfg.num_perturbations
        self.B, self.M, self.N, self.K = B, M, cfg.num_envs, M + 1
        # block layout: row b = [nominal b, its M branches]
        self.aux_ids = np.arange(B, self.N)
        self.block_ids = np.concatenate([np.arange(B)[:, None], (B + np.arange(B * M)).reshape(B, M)], axis=1)
        self.nominal_of_aux = np.repeat(np.arange(B), M)

        space = self.env.single_observation_space.spaces
        self.image_keys = policy_image_keys(self.env)  # pixels, pixels_<camera>, ...
        self.image_shapes = [tuple(space[k].shape) for k in self.image_keys]
        self.action_dim = int(self.env.single_action_space.shape[0])
        self.proprio_dim = int(space["proprio"].shape[0]) if "proprio" in space else 0
        if cfg.use_proprio and not self.proprio_dim:
            raise ConfigError(f"use_proprio=True, but {cfg.task} has no proprio observation")
        self.critic_keys = [k for k in ("privileged", "height_scan") if k in space]
        # running mean/std of the normalised vector inputs (§2.11); the others enter as they are
        normalised = [k for k in self.critic_keys if (cfg.privileged_rms if k == "privileged" else cfg.height_scan_rms)]
        if cfg.use_proprio and cfg.proprio_rms:
            normalised.append("proprio")
        self.rms = {k: RunningMeanStd(int(space[k].shape[0])) for k in normalised}

        self.actor = Actor(self.image_shapes, self.proprio_dim, self.action_dim, cfg)
        self.critic = Critic(int(space["privileged"].shape[0]),
                             int(space["height_scan"].shape[0]) if "height_scan" in space else 0, cfg)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.log_alpha = torch.tensor(math.log(cfg.init_alpha), requires_grad=cfg.entropy == "auto")
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr) if cfg.entropy == "auto" else None

        # envs: one generator per env, held here so checkpoints can save them
        self.env_rngs = [np.random.default_rng([cfg.seed, i]) for i in range(self.N)]
        for i, g in enumerate(self.env_rngs):
            self.env.set_rng(i, g)
        self.obs, _ = self.env.reset()

        self.epoch = 0
        self.env_steps = 0  # physics control steps, auxiliary included (§6 item 10)
        self.frames = 0  # rendered nominal observations (steps and resets)
        self.train_time = 0.0  # accumulated wall-clock seconds of training (across resumes)
        self.ep_return = np.zeros(B)
        self.ep_length = np.zeros(B, dtype=np.int64)
        self.ep_success = np.zeros(B, dtype=bool)
        self.episodes: deque = deque(maxlen=cfg.episode_window)  # (return, length, success)
        self.total_episodes = 0

    # ------------------------------------------------------------------ helpers
    def _update_rms(self, obs: dict[str, np.ndarray]) -> None:
        for k, r in self.rms.items():
            r.update(obs[k])

    def _norm(self, rms: dict[str, RunningMeanStd], key: str, x: np.ndarray) -> np.ndarray:
        return rms[key].normalize(x) if key in rms else x.astype(np.float32)

    def _patch_vectors(self, ids: np.ndarray) -> None:
        """Refresh the vector observations of ``ids`` after set_state (no rendering)."""
        if len(ids):
            fresh = self.env.observe(ids)
            for k, v in fresh.items():
                if k in self.obs:
                    self.obs[k][ids] = v

    def branch_all(self) -> None:
        """Overwrite every branch with its nominal's current state (§2.2 step 1)."""
        state = self.env.get_state(np.arange(self.B)).take(self.nominal_of_aux)
        self.env.set_state(state, self.aux_ids)
        self._patch_vectors(self.aux_ids)

    @torch.no_grad()
    def policy(self, images: list[np.ndarray], proprio: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Clamped mean m and log-std l for a batch of nominal observations (§2.2 step 1)."""
        mean, log_std = self.actor([torch.as_tensor(x) for x in images],
                                   None if proprio is None else torch.as_tensor(proprio))
        mean = clamp_mean(mean, self.cfg.mean_bound)
        if self.cfg.learn_std:
            log_std = log_std.clamp(self.cfg.log_std_min, self.cfg.log_std_max)
        return mean.numpy().astype(np.float64), log_std.numpy().astype(np.float64)

    @torch.no_grad()
    def target_value(self, critic_obs: dict[str, np.ndarray]) -> np.ndarray:
        args = [torch.as_tensor(critic_obs[k]) for k in self.critic_keys]
        return self.target_critic(*args).numpy().astype(np.float64)

    # ------------------------------------------------------------------ rollout (§2.2)
    def rollout(self) -> Rollout:
        cfg, B, M, N, K, T, A = self.cfg, self.B, self.M, self.N, self.K, self.cfg.horizon, self.action_dim
        rms = copy.deepcopy(self.rms)  # frozen snapshot normalises this epoch; live stats keep updating
        frames0 = self.env.unwrapped.frames_rendered
        render0 = self.env.unwrapped.render_seconds
        t_env = time.perf_counter()
        self.branch_all()
        env_time = time.perf_counter() - t_env  # env.step + resets + clones (physics, task code, rendering)
        images = {k: np.zeros((T, B, *shape), np.uint8) for k, shape in zip(self.image_keys, self.image_shapes)}
        proprio = np.zeros((T, B, self.proprio_dim), np.float32) if cfg.use_proprio else None
        critic_obs = {k: np.zeros((T, N, self.obs[k].shape[1]), np.float32) for k in self.critic_keys}
        means, log_stds = np.zeros((T, B, A)), np.zeros((T, B, A))
        eps_all = np.zeros((T, B, K, A))
        rewards, next_values = np.zeros((T, N)), np.zeros((T, N))
        dones, terms = np.zeros((T, N), bool), np.zeros((T, N), bool)
        for t in range(T):
            # 5a: store observations (actor: nominal only; critic: every env)
            for k, x in images.items():
                x[t] = self.obs[k]
            if proprio is not None:
                proprio[t] = self._norm(rms, "proprio", self.obs["proprio"][:B])
            for k in self.critic_keys:
                critic_obs[k][t] = self._norm(rms, k, self.obs[k])
            # 5b-c: the nominal's mean and std drive its whole block; the nominal executes its mean
            m, l = self.policy([x[t] for x in images.values()], None if proprio is None else proprio[t])
            eps = self.rng.standard_normal((B, K, A))
            eps[:, 0] = 0.0
            a_block = clamp_mean(m[:, None] + np.exp(l)[:, None] * eps, cfg.mean_bound)
            actions = np.zeros((N, A))
            actions[self.block_ids.reshape(-1)] = a_block.reshape(B * K, A)
            means[t], log_stds[t], eps_all[t] = m, l, eps
            # 5d: step every env with tanh(a), no autoreset
            t_env = time.perf_counter()
            obs, r, term, trunc, info = self.env.step(np.tanh(actions).astype(np.float32))
            env_time += time.perf_counter() - t_env
            rewards[t] = cfg.reward_scale * r
            # 5e: bootstrap from the target critic on the post-step, pre-reset observation
            v = self.target_value({k: self._norm(rms, k, obs[k]) for k in self.critic_keys})
            next_values[t] = np.where(term, 0.0, v)
            terms[t] = term
            done = term | trunc
            # 5g: live statistics and nominal episode bookkeeping (raw rewards)
            self._update_rms(obs)
            self.ep_return += r[:B]
            self.ep_length += 1
            self.ep_success |= info["success"][:B]
            nom_done = done[:B]
            for b in np.flatnonzero(nom_done):
                self.episodes.append((float(self.ep_return[b]), int(self.ep_length[b]), bool(self.ep_success[b])))
                self.total_episodes += 1
            self.ep_return[nom_done], self.ep_length[nom_done], self.ep_success[nom_done] = 0.0, 0, False
            self.obs = obs
            # 5f: resets. A done nominal restarts (and, within the epoch, takes its branches along);
            # a done branch re-branches from its nominal's current state. All of them count as done.
            t_env = time.perf_counter()
            if nom_done.any():
                mask = np.zeros(N, bool)
                mask[:B] = nom_done
                self.obs, _ = self.env.reset(options={"reset_mask": mask})
            if t < T - 1:
                reclone = done[B:] | np.repeat(nom_done, M)
                ids = self.aux_ids[reclone]
                if len(ids):
                    self.env.set_state(self.env.get_state(np.arange(B)).take(self.nominal_of_aux[reclone]), ids)
                    self._patch_vectors(ids)
                done = done.copy()
                done[B:] |= reclone
            else:
                done = np.ones(N, bool)  # every segment ends, and bootstraps, at the horizon
            dones[t] = done
            env_time += time.perf_counter() - t_env
        self.epoch_branch_terminated = float(terms[:, B:].mean())
        self.epoch_env_time = env_time
        self.epoch_render_time = self.env.unwrapped.render_seconds - render0
        self.env_steps += N * T
        self.epoch_frames = self.env.unwrapped.frames_rendered - frames0
        self.frames += self.epoch_frames
        return Rollout(images, proprio, critic_obs, means, log_stds, eps_all, rewards, next_values, dones, terms)

    # ------------------------------------------------------------------ update (§2.3-2.8)
    def actor_targets(self, ro: Rollout) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Regression targets mu*, l* ``(T, B, A)`` from the rollout (§2.3-2.7)."""
        cfg = self.cfg
        G = lambda_returns(ro.rewards, ro.next_values, ro.dones, cfg.gamma, cfg.lam, cfg.eligibility_trace)
        dJ = delta_j(G, ro.dones, self.block_ids, cfg.causality)  # (T, B, K)
        sigma = np.exp(ro.log_std)
        d_mu, d_l, dj_std = ascent_directions(dJ, ro.eps, sigma, cfg.top_k)
        mu_t = clamp_mean(ro.mean + d_mu, cfg.mean_bound)
        l_t = np.clip(ro.log_std + d_l, cfg.log_std_min, cfg.log_std_max)
        stats = {"delta_j_std": float(dj_std.mean()), "d_mu_norm": float(np.linalg.norm(d_mu, axis=-1).mean()),
                 "d_logstd_norm": float(np.linalg.norm(d_l, axis=-1).mean())}
        self._returns = G
        return mu_t, l_t, stats

    def update(self, ro: Rollout) -> dict[str, float]:
        cfg, T, B = self.cfg, self.cfg.horizon, self.B
        for g in self.actor_opt.param_groups:
            g["lr"] = cosine_warmup_lr(self.epoch, cfg)
        for g in self.critic_opt.param_groups:
            g["lr"] = critic_lr(self.epoch, cfg)
        t0 = time.perf_counter()
        mu_t, l_t, stats = self.actor_targets(ro)
        # --- actor: ONE full-batch regression step on the B*T nominal observations
        images = [torch.as_tensor(x.reshape(T * B, *x.shape[2:])) for x in ro.images.values()]
        prop = None if ro.proprio is None else torch.as_tensor(ro.proprio.reshape(T * B, -1))
        mean, log_std = self.actor(images, prop)
        mean_c, log_std_c = mean, log_std
        if cfg.clamp_predictions:  # upstream: clamped predictions, so no gradient beyond the bounds
            mean_c = clamp_mean(mean, cfg.mean_bound)
            log_std_c = log_std.clamp(cfg.log_std_min, cfg.log_std_max)
        mu_target = torch.as_tensor(mu_t.reshape(T * B, -1), dtype=torch.float32)
        l_target = torch.as_tensor(l_t.reshape(T * B, -1), dtype=torch.float32)
        alpha = self.log_alpha.exp().detach()
        loss = ((mean_c - mu_target) ** 2).mean()
        if cfg.learn_std:  # a fixed std (Go2) has no log-std target
            loss = loss + ((log_std_c - l_target) ** 2).mean()
        if cfg.entropy != "none":
            loss = loss - alpha * log_std_c.mean()
        self.actor_opt.zero_grad()
        loss.backward()
        grad_norm = float(nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.grad_norm))
        self.actor_opt.step()
        if self.alpha_opt is not None:  # temperature: alpha grows while the std is below target_std
            sigma_pred = log_std_c.detach().exp()
            alpha_loss = self.log_alpha.exp() * (sigma_pred - cfg.target_std).mean()
            self.alpha_opt.zero_grad()
            alpha_loss.backward()
            self.alpha_opt.step()
        t1 = time.perf_counter()
        # --- critic: shuffled mini-batch passes over all N*T samples, target = TD(lambda) returns
        targets = torch.as_tensor(self._returns.reshape(-1), dtype=torch.float32)
        inputs = [torch.as_tensor(ro.critic_obs[k].reshape(T * self.N, -1)) for k in self.critic_keys]
        n = targets.shape[0]
        closs = []
        for _ in range(cfg.critic_iterations):
            perm = torch.as_tensor(self.rng.permutation(n))
            for s in range(0, n, cfg.critic_minibatch):
                idx = perm[s:s + cfg.critic_minibatch]
                c_loss = ((self.critic(*[x[idx] for x in inputs]) - targets[idx]) ** 2).mean()
                self.critic_opt.zero_grad()
                c_loss.backward()
                nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.grad_norm)
                self.critic_opt.step()
                closs.append(c_loss.item())
        with torch.no_grad():  # phi' <- alpha phi' + (1 - alpha) phi
            for p_t, p in zip(self.target_critic.parameters(), self.critic.parameters()):
                p_t.mul_(cfg.target_critic_alpha).add_(p, alpha=1 - cfg.target_critic_alpha)
        t2 = time.perf_counter()
        stats.update(
            actor_loss=loss.item(), critic_loss=float(np.mean(closs)) if closs else float("nan"),
            actor_grad_norm=grad_norm, sigma=float(np.exp(ro.log_std).mean()), alpha=self.log_alpha.exp().item(),
            mean_clamped_frac=0.0 if cfg.mean_bound is None else float((np.abs(ro.mean) >= cfg.mean_bound).mean()),
            branch_terminated_frac=self.epoch_branch_terminated,
            actor_lr=self.actor_opt.param_groups[0]["lr"], critic_lr=self.critic_opt.param_groups[0]["lr"],
            time_actor_s=t1 - t0, time_critic_s=t2 - t1)
        return stats

    def train_epoch(self) -> dict[str, float]:
        """Rollout, actor step, critic passes, target update; returns the epoch's scalars."""
        t0 = time.perf_counter()
        ro = self.rollout()
        t1 = time.perf_counter()
        stats = self.update(ro)
        self.epoch += 1
        dt = time.perf_counter() - t0
        self.train_time += dt
        stats.update(epoch=self.epoch, env_steps=self.env_steps, frames=self.frames, wall_s=self.train_time,
                     time_rollout_s=t1 - t0, time_env_s=self.epoch_env_time, time_epoch_s=dt,
                     # §6 item 15: render (inside the env's renderer), physics (the rest of the env's time:
                     # physics, task code, observations, frame stacks), learner (everything outside the env)
                     time_render_s=self.epoch_render_time,
                     time_physics_s=self.epoch_env_time - self.epoch_render_time,
                     time_learner_s=dt - self.epoch_env_time,
                     env_steps_per_s=self.N * self.cfg.horizon / dt,
                     frames_per_s=self.epoch_frames / dt, episodes=self.total_episodes,
                     **self.episode_stats())
        return stats

    def episode_stats(self) -> dict[str, float]:
        return episode_stats(self.episodes)

    # =========================================================================================
    # 5. Checkpoints and the exported policy
    # =========================================================================================
    def _frame_stacks(self) -> list[np.ndarray]:
        # set_state refills a stack with the current frame; exact resume needs the real history.
        return self.env.unwrapped.get_frame_stacks()

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: nets, optimisers, RMS, RNGs, env state, counters."""
        st = self.env.get_state()
        return {
            "format_version": FORMAT_VERSION, "agent": AGENT_NAME, "task": self.cfg.task,
            "config": self.cfg.to_dict(),
            "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
            "target_critic": self.target_critic.state_dict(),
            "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "alpha_opt": None if self.alpha_opt is None else self.alpha_opt.state_dict(),
            "rms": {k: r.state_dict() for k, r in self.rms.items()},
            "rng": self.rng.bit_generator.state, "env_rngs": [g.bit_generator.state for g in self.env_rngs],
            "torch_rng": torch.get_rng_state(),
            "env_state": st.to_dict(),
            "frame_stacks": self._frame_stacks(), "obs": {k: v.copy() for k, v in self.obs.items()},
            "counters": {"epoch": self.epoch, "env_steps": self.env_steps, "frames": self.frames,
                         "train_time": self.train_time, "total_episodes": self.total_episodes},
            "obs_space": _obs_space(self.env), "action_dim": self.action_dim,
            "episodes": {"ep_return": self.ep_return.copy(), "ep_length": self.ep_length.copy(),
                         "ep_success": self.ep_success.copy(), "window": list(self.episodes)},
        }

    def load_state_dict(self, ck: dict[str, Any]) -> None:
        check_checkpoint(ck, self.cfg.task)
        from ..envs.vector_env import VRBState

        self.actor.load_state_dict(ck["actor"])
        self.critic.load_state_dict(ck["critic"])
        self.target_critic.load_state_dict(ck["target_critic"])
        self.actor_opt.load_state_dict(ck["actor_opt"])
        self.critic_opt.load_state_dict(ck["critic_opt"])
        with torch.no_grad():
            self.log_alpha.copy_(ck["log_alpha"])
        if self.alpha_opt is not None and ck["alpha_opt"] is not None:
            self.alpha_opt.load_state_dict(ck["alpha_opt"])
        for k, r in self.rms.items():
            r.load_state_dict(ck["rms"][k])
        self.rng.bit_generator.state = ck["rng"]
        es = ck["env_state"]
        self.env.set_state(VRBState.from_dict(es))
        for g, s in zip(self.env_rngs, ck["env_rngs"]):  # after set_state: restore the streams last
            g.bit_generator.state = s
        torch.set_rng_state(ck["torch_rng"])
        self.env.unwrapped.set_frame_stacks(ck["frame_stacks"])
        self.obs = {k: v.copy() for k, v in ck["obs"].items()}
        c = ck["counters"]
        self.epoch, self.env_steps, self.frames = c["epoch"], c["env_steps"], c["frames"]
        self.train_time, self.total_episodes = c["train_time"], c["total_episodes"]
        e = ck["episodes"]
        self.ep_return, self.ep_length = e["ep_return"].copy(), e["ep_length"].copy()
        self.ep_success = e["ep_success"].copy()
        self.episodes = deque([tuple(x) for x in e["window"]], maxlen=self.cfg.episode_window)

    def save_checkpoint(self, path: str | Path) -> None:
        atomic_torch_save(self.state_dict(), path)

    @classmethod
    def from_checkpoint(cls, path: str | Path, task: str | None = None, **config_changes: Any) -> "SDPG":
        """Rebuild the agent of a checkpoint (``task``: refuse a checkpoint of another task)."""
        ck = load_file(path)
        check_checkpoint(ck, task)
        cfg = SDPGConfig.from_dict(ck["config"])
        if config_changes:
            cfg = apply_overrides(cfg, config_changes)
        agent = cls(cfg)
        agent.load_state_dict(ck)
        return agent

    def export_policy(self, path: str | Path) -> None:
        """``policy.pt``: actor weights, proprio RMS, config, task id and observation spaces."""
        data = {
            "format_version": FORMAT_VERSION, "agent": AGENT_NAME, "kind": "policy", "task": self.cfg.task,
            "config": self.cfg.to_dict(), "actor": self.actor.state_dict(),
            "rms": {"proprio": self.rms["proprio"].state_dict()} if "proprio" in self.rms else {},
            "obs_space": _obs_space(self.env), "image_keys": self.image_keys,
            "pixel_layout": "CHW", "action_dim": self.action_dim,
            "epoch": self.epoch, "env_steps": self.env_steps, "episode_return": self.episode_stats()["episode_return"],
        }
        atomic_torch_save(data, path)

    def close(self) -> None:
        self.env.close()


def _obs_space(env: Any) -> dict[str, dict[str, Any]]:
    """Single-env observation space as plain data (pixels in CHW)."""
    return {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in env.single_observation_space.spaces.items()}


def load_file(path: str | Path) -> dict[str, Any]:
    """Read an SDPG checkpoint or policy file."""
    return load_agent_file(path, AGENT_NAME, label="SDPG")


def check_checkpoint(data: dict[str, Any], task: str | None) -> None:
    """Refuse a file of another format version or (when given) another task."""
    check_agent_file(data, task, FORMAT_VERSION, "SDPG")


class SDPGPolicy:
    """A loaded SDPG policy: ``act(obs)`` -> tanh(clamped mean) in [-1, 1], deterministic."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.cfg = SDPGConfig.from_dict(data["config"])
        self.task = data["task"]
        self.obs_space = data["obs_space"]
        self.image_keys = list(data.get("image_keys", ["pixels"]))  # files before multi-camera SDPG: pixels
        self.image_shapes = [tuple(self.obs_space[k]["shape"]) for k in self.image_keys]  # (C, H, W)
        proprio_dim = self.obs_space.get("proprio", {"shape": [0]})["shape"][0]
        self.actor = Actor(self.image_shapes, proprio_dim, int(data["action_dim"]), self.cfg)
        self.actor.load_state_dict(data["actor"])
        self.actor.eval()
        self.rms = None
        if "proprio" in data["rms"]:
            self.rms = RunningMeanStd(proprio_dim)
            self.rms.load_state_dict(data["rms"]["proprio"])
        self.meta = {k: data.get(k) for k in ("epoch", "env_steps", "episode_return")}

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        images = []
        for key, shape in zip(self.image_keys, self.image_shapes):
            if key not in obs:
                raise ValueError(f"observation has no {key!r}: this {self.task} policy uses the cameras "
                                 f"{self.image_keys}; got keys {sorted(obs)}")
            x, single = images_chw(obs[key], shape, key, self.task)
            images.append(torch.as_tensor(x))
        proprio = None
        if self.cfg.use_proprio:
            proprio = np.atleast_2d(obs["proprio"]).astype(np.float32)
            proprio = torch.as_tensor(proprio if self.rms is None else self.rms.normalize(proprio))
        mean, _ = self.actor(images, proprio)
        a = torch.tanh(clamp_mean(mean, self.cfg.mean_bound)).numpy().astype(np.float32)
        return a[0] if single else a

    __call__ = act


def load_policy(path: str | Path, task: str | None = None) -> SDPGPolicy:
    """Load ``policy.pt`` (or a training checkpoint) as a deterministic policy for evaluation."""
    data = load_file(path)
    check_checkpoint(data, task)
    return SDPGPolicy(data)


# The ``vrb train`` learner interface (see :mod:`visual_robo_bench.train`).
LEARNER = SDPG


def describe(cfg: SDPGConfig) -> str:
    """The run layout printed by ``vrb train``."""
    return f"B={cfg.num_nominal}, M={cfg.num_perturbations}, N={cfg.num_envs}, T={cfg.horizon}"
