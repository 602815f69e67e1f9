"""The standardized evaluation harness: any agent, fixed seeds, fixed protocol.

Protocol (``conventions.md`` section 6): the native vector env with
``autoreset_mode=DISABLED`` and the task's default keywords; E episodes per
evaluation, episode k seeded with ``seed_base + k`` (the public base is
:data:`PUBLIC_SEED_BASE`; training seeds are small integers and never reach it);
each env runs one episode at a time and is reset with the next seed when its
episode ends; nothing after an episode's end is counted.

Agent failures are scored, never raised, and score the same in-process and
isolated (``isolate=True``): when the agent raises in ``act`` or returns invalid
actions, every running episode ends there as failed (``agent_error`` set,
``success_once`` and ``success_at_end`` False, return and length up to the
failure); when it raises in ``reset``, the episodes that were starting fail.
The evaluation then goes on with the next episodes. Only an isolated agent
whose process dies or stops answering (:class:`~.isolation.AgentCrashed`) ends
the evaluation: its running and all unstarted episodes are recorded as failed
(length 0 for those never started), so the result still has E episodes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode
from tqdm.auto import tqdm

from ..envs.vector_env import VRBVectorEnv
from ..registry import get_task
from .isolation import AgentCrashed, AgentRaised, IsolatedAgent
from .protocol import AgentContext, AgentLoadError, load_agent

PUBLIC_SEED_BASE = 1_000_000
HELD_OUT_SEED_BASE = 7_000_000
DEFAULT_EPISODES = 50
PROTOCOL_VERSION = "1.0"

#: The observation modes a policy may act from: ``visual`` (the visual tracks, conventions.md 6) and ``state``
#: (privileged state, the ``state`` track of the leaderboards, for reference). Not a task setting: a run's
#: ``obs_mode`` names the track it belongs to and never makes it unofficial (:func:`effective_overrides`).
OBS_MODES = ("visual", "state")


@dataclass(frozen=True)
class EvalProtocol:
    """The fixed evaluation protocol of a task version.

    Attributes:
        episodes: Episodes per evaluation (E).
        seed_base: Episode k is seeded with ``seed_base + k``.
        num_envs: Envs run side by side (does not change any per-episode result).
        env_kwargs: The protocol's own env settings (not user overrides).
    """

    episodes: int = DEFAULT_EPISODES
    seed_base: int = PUBLIC_SEED_BASE
    num_envs: int = 10
    env_kwargs: dict[str, Any] = field(default_factory=dict)


def protocol_for(task_id: str) -> EvalProtocol:
    """The protocol of ``task_id`` (tasks with domain randomization evaluate without it)."""
    cfg = get_task(task_id).config
    kwargs: dict[str, Any] = {}
    for name in ("domain_randomization", "curriculum"):
        if hasattr(cfg, name):
            kwargs[name] = False
    return EvalProtocol(env_kwargs=kwargs)


def effective_overrides(task_id: str, env_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The env keywords of ``env_kwargs`` that change what the protocol evaluates: what makes a run unofficial.

    A keyword counts as no override when it is a field of the task's config and setting it leaves the config
    the protocol uses unchanged: its value equals the protocol's own setting (:func:`protocol_for`, e.g.
    ``domain_randomization=False`` on Go2Terrain) or, for other fields, the task's default (compared after the
    config's own normalization, as the env applies it: ``(84, 84)`` and ``[84, 84]`` are equal). Every other
    keyword is an override: a value that differs, a keyword that is not a config field (e.g. ``obs_mode``,
    ``cameras``, ``render_env_ids``, whatever its value), and a value the config refuses.

    Args:
        task_id: Registered task id.
        env_kwargs: The env keywords a run was evaluated with (on top of the protocol's own).

    Returns:
        The keywords that differ, with their values (empty: the protocol's settings).
    """
    from ..envs.vector_env import _resolve_config

    if not env_kwargs:
        return {}
    cfg = get_task(task_id).config
    proto = protocol_for(task_id).env_kwargs
    fields = {f.name for f in dataclasses.fields(cfg)}
    base = _resolve_config(cfg, proto).hash()
    out = {}
    for key, value in env_kwargs.items():
        if key in fields:
            try:
                if _resolve_config(cfg, {**proto, key: value}).hash() == base:
                    continue
            except Exception:  # noqa: BLE001 - a value the config refuses is an override (the env refuses it too)
                pass
        out[key] = value
    return out


@dataclass
class EpisodeResult:
    """One evaluated episode.

    ``metrics`` holds the task's end-of-episode metrics; a metric that is not finite (possible only
    when the physics diverged, ``physics_error`` True) is left out. An episode with ``agent_error``
    never counts as a success.
    """

    seed: int
    ret: float = 0.0
    length: int = 0
    success_once: bool = False
    success_at_end: bool = False
    terminated: bool = False
    physics_error: bool = False
    agent_error: str | None = None
    reward_terms: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class EvalResult:
    """The result of evaluating one agent on one task."""

    task_id: str
    agent: str
    episodes: list[EpisodeResult]
    seed_base: int
    env_kwargs: dict[str, Any]
    official: bool  # the full standard protocol: its episodes and seed base, its settings (effective_overrides)
    wall_clock_s: float
    env_steps: int
    error: str | None = None
    video: str | None = None
    provenance: dict[str, str] = field(default_factory=dict)
    obs_mode: str = "visual"  # what the policy acted from (OBS_MODES): the leaderboard track it belongs to

    def summary(self) -> dict[str, float]:
        """Means over the episodes of the standard metrics."""
        eps = self.episodes
        out = {
            "episodes": float(len(eps)),
            "return": float(np.mean([e.ret for e in eps])) if eps else float("nan"),
            "success_once": float(np.mean([e.success_once for e in eps])) if eps else float("nan"),
            "success_at_end": float(np.mean([e.success_at_end for e in eps])) if eps else float("nan"),
            "length": float(np.mean([e.length for e in eps])) if eps else float("nan"),
            "terminated": float(np.mean([e.terminated for e in eps])) if eps else float("nan"),
            "agent_errors": float(sum(e.agent_error is not None for e in eps)),
        }
        for k in sorted({k for e in eps for k in e.metrics}):
            out[f"metrics/{k}"] = float(np.mean([e.metrics.get(k, np.nan) for e in eps]))
        return out

    def normalized_score(self, levels: Mapping[str, dict[str, Any]] | None = None) -> float | None:
        """The mean return normalized with the task version's levels: 0 = the random floor, 1 = the reference level.

        ``(R - R_random) / (R_ref - R_random)``, as the leaderboards show it, with the levels of
        ``reference_scores.json``. Not part of :meth:`summary` (nor of results files: the leaderboards recompute
        it from the per-episode returns).

        Args:
            levels: Levels by task id, as :func:`~.leaderboard.reference_scores` reads them (default: those of
                ``./leaderboards`` when the working directory has one, else of the leaderboards installed with
                the package).

        Returns:
            The normalized score, or None when the task version has no levels (none, a reference level not
            set yet, or levels measured on another definition of the task).

        Raises:
            FileNotFoundError: ``levels`` is None and there are no leaderboards to read them from.
        """
        from .leaderboard import default_leaderboard_dir, normalized, reference_scores, task_levels

        if levels is None:
            levels = reference_scores(default_leaderboard_dir())
        if not self.episodes:
            return None
        return normalized(float(np.mean([e.ret for e in self.episodes])), task_levels(self.task_id, levels))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["episodes"] = [asdict(e) for e in self.episodes]
        return d


#: The fastest GIF frame rate viewers play as written: frame delays are in 10 ms units, and they slow down shorter ones.
GIF_MAX_FPS = 50


def gif_timing(fps: float) -> tuple[int, float]:
    """How a video of ``fps`` frames per second is written as a GIF: keep every ``stride``-th frame, each shown for
    ``duration_ms`` (at most :data:`GIF_MAX_FPS` frames per second, so that viewers play it at its speed).

    Returns:
        ``(stride, duration_ms)``.
    """
    gif_fps = min(fps, GIF_MAX_FPS)
    return max(1, round(fps / gif_fps)), 1000 / gif_fps


class _Recorder:
    """Video of the first env's policy camera (newest frame, upscaled)."""

    def __init__(self, path: str | None, fps: int) -> None:
        self.path, self.fps, self.frames = path, fps, []

    def add(self, obs: dict[str, np.ndarray], key: str = "pixels") -> None:
        if self.path is None or key not in obs or len(obs[key]) == 0:
            return
        img = obs[key][0]
        frame = img[..., -3:] if img.shape[-1] % 3 == 0 else np.repeat(img[..., -1:], 3, axis=-1)
        self.frames.append(np.kron(frame, np.ones((4, 4, 1), np.uint8)))

    def write(self) -> str | None:
        if self.path is None or not self.frames:
            return None
        import imageio.v2 as imageio

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if Path(self.path).suffix.lower() == ".gif":  # Pillow's GIF writer takes frame durations in ms, not fps
            stride, duration_ms = gif_timing(self.fps)
            imageio.mimwrite(self.path, self.frames[::stride], duration=duration_ms, loop=0)
        else:
            imageio.mimwrite(self.path, self.frames, fps=self.fps, macro_block_size=1)
        return self.path


def evaluate(
    agent: Any,
    task_id: str,
    *,
    episodes: int | None = None,
    seed_base: int | None = None,
    num_envs: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    isolate: bool = False,
    act_timeout: float = 60.0,
    memory_limit_mb: int | None = 8192,
    video: str | None = None,
    video_episodes: int = 1,
    progress: bool = True,
    obs_mode: str = "visual",
) -> EvalResult:
    """Evaluate ``agent`` on ``task_id`` with the standard protocol.

    Args:
        agent: Anything :func:`~visual_robo_bench.evaluation.protocol.load_agent` accepts.
        task_id: Registered task id.
        episodes: Episodes (default: the protocol's, 50); another count makes the result unofficial.
        seed_base: Seed of episode 0 (default: the public base); another base makes the result unofficial.
        num_envs: Envs side by side (default: the protocol's; does not change any result).
        env_kwargs: Extra env keywords; any that changes the protocol's settings (:func:`effective_overrides`:
            another value than the protocol's or the task's default, or a keyword that is not a task setting)
            makes the result unofficial. All are recorded in the result's ``env_kwargs``.
        isolate: Run the agent in a separate process with ``act_timeout`` and
            ``memory_limit_mb`` (needs a string spec).
        video: Write a video of the first ``video_episodes`` episodes of env 0 here (its suffix gives the
            format: ``.mp4`` or ``.gif``, as ``vrb evaluate --video`` accepts).
        progress: Show a progress bar.
        obs_mode: What the policy acts from (:data:`OBS_MODES`): ``"visual"`` (pixels and proprioception, the
            visual tracks) or ``"state"`` (privileged state, no pixels: the state track). It is the track's
            observation mode, not a task setting: it is recorded in the result's ``obs_mode``, never in its
            ``env_kwargs``, and leaves ``official`` as it is. Do not pass ``obs_mode`` in ``env_kwargs``.

    Returns:
        The E per-episode results, with ``error`` set when the agent failed (the
        last failure); see the module docstring for how failures are scored.
        ``official`` is True only for the full standard protocol: the protocol's
        episode count and seed base and no ``env_kwargs`` that change its settings.

    Raises:
        ValueError: ``episodes`` or ``num_envs`` is not an integer >= 1, ``obs_mode`` is not one of
            :data:`OBS_MODES`, or ``env_kwargs`` holds ``obs_mode`` too.
        AgentLoadError: The agent cannot be loaded.
        AgentCrashed: The isolated agent's process died or hung while loading.
    """
    proto = protocol_for(task_id)
    E = proto.episodes if episodes is None else _at_least_one("episodes", episodes)
    base = proto.seed_base if seed_base is None else int(seed_base)
    n = min(proto.num_envs if num_envs is None else _at_least_one("num_envs", num_envs), E)
    overrides = dict(env_kwargs or {})
    if obs_mode not in OBS_MODES:
        raise ValueError(f"obs_mode must be one of {', '.join(OBS_MODES)}, got {obs_mode!r}")
    if "obs_mode" in overrides and obs_mode != "visual":
        raise ValueError("obs_mode given both as an argument and in env_kwargs; pass it as obs_mode= only")
    kwargs = {**proto.env_kwargs, **overrides}
    if obs_mode != "visual":  # the track's observation mode: not an override, not recorded in env_kwargs
        kwargs["obs_mode"] = obs_mode
    env = VRBVectorEnv(task_id, num_envs=n, autoreset_mode=AutoresetMode.DISABLED, **kwargs)
    t0 = time.perf_counter()
    error = None
    proxy = None
    try:
        if isolate:
            if not isinstance(agent, (str, Path)):
                raise AgentLoadError("isolate=True needs an agent given as a module:factory path or a file")
            proxy = IsolatedAgent(str(agent), task_id, kwargs, act_timeout=act_timeout,
                                  memory_limit_mb=memory_limit_mb)
            policy = proxy
        else:  # the agent sees the task's spaces, never the evaluation env (it could re-seed or step it)
            policy = load_agent(agent, AgentContext.of_env(env))
        name = getattr(policy, "name", None) or (agent if isinstance(agent, str) else type(agent).__name__)
        results, steps, error, video_path = _run(env, policy, str(name), E, base, n, video, video_episodes, progress)
    finally:
        if proxy is not None:
            proxy.close()
        env.close()
    official = not effective_overrides(task_id, overrides) and E == proto.episodes and base == proto.seed_base
    return EvalResult(task_id=env.task_id, agent=str(name), episodes=results, seed_base=base,
                      env_kwargs=overrides, official=official, wall_clock_s=time.perf_counter() - t0,
                      env_steps=steps, error=error, video=video_path, provenance=env.provenance,
                      obs_mode=kwargs.get("obs_mode", "visual"))  # also when given in env_kwargs (an override)


def _at_least_one(what: str, value: Any) -> int:
    """``value`` as an int >= 1, else a ValueError saying so."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")
    return int(value)


def _failure(err: Exception) -> str:
    """``Type: message`` of an agent's exception (the type the agent raised, also across the process boundary)."""
    if isinstance(err, AgentRaised):
        return f"{err.kind}: {err.message}"
    return f"{type(err).__name__}: {err}"


def _fail(ep: EpisodeResult, message: str) -> None:
    """Mark ``ep`` as failed by the agent: it never counts as a success."""
    ep.agent_error = message
    ep.success_once = ep.success_at_end = False


def _run(env: VRBVectorEnv, policy: Any, name: str, E: int, base: int, n: int, video: str | None,
         video_episodes: int, progress: bool):
    A = env.single_action_space.shape[0]
    recorder = _Recorder(video, env.metadata["render_fps"])
    next_ep = min(n, E)
    episode_of = np.arange(n)  # episode index run by each env; -1 = idle
    episode_of[E:] = -1
    seeds = [base + int(k) if k >= 0 else base + E + i for i, k in enumerate(episode_of)]
    obs, _ = env.reset(seed=seeds)
    current = {i: EpisodeResult(seed=base + int(episode_of[i])) for i in range(n) if episode_of[i] >= 0}
    done_results: dict[int, EpisodeResult] = {}
    steps = 0
    error = None
    # envs whose starting episode the agent failed in reset(): they end as failed at the next step
    reset_failed: set[int] = set()

    def reset_policy(mask: np.ndarray) -> None:
        nonlocal error
        if not hasattr(policy, "reset"):
            return
        try:
            policy.reset(mask)
        except AgentCrashed:
            raise
        except (Exception, SystemExit) as err:  # noqa: BLE001 - an agent's failure is scored, not raised
            for i in np.flatnonzero(mask):
                ep = current[int(i)]
                _fail(ep, f"agent {name!r} failed in reset() at the start of the episode with seed {ep.seed}: "
                          f"{_failure(err)}")
                error = ep.agent_error
                reset_failed.add(int(i))

    bar = tqdm(total=E, desc=f"eval {env.task_id}", unit="ep", disable=not progress, leave=False)
    try:
        reset_policy(episode_of >= 0)
        while current:
            if episode_of[0] >= 0 and episode_of[0] < video_episodes:
                recorder.add(obs)
            failed_now = set(reset_failed)
            reset_failed.clear()
            try:
                actions = np.asarray(policy.act(obs))
                if actions.shape != (n, A) or not np.issubdtype(actions.dtype, np.floating):
                    raise ValueError(f"returned actions of shape {actions.shape} and dtype {actions.dtype}, "
                                     f"expected ({n}, {A}) floats")
                if not np.isfinite(actions).all():
                    raise ValueError("returned NaN or inf actions")
                if (np.abs(actions) > 1 + 1e-6).any():
                    raise ValueError(f"returned actions outside [-1, 1] (range {float(actions.min()):.9g}.."
                                     f"{float(actions.max()):.9g})")
            except AgentCrashed:
                raise
            except (Exception, SystemExit) as err:  # noqa: BLE001 - an agent's failure is scored, not raised
                for i in sorted(set(current) - failed_now):
                    ep = current[i]
                    _fail(ep, f"agent {name!r} failed at step {ep.length} of the episode with seed {ep.seed}: "
                              f"{_failure(err)}")
                    error = ep.agent_error
                failed_now = set(current)
                actions = np.zeros((n, A), np.float32)
            if failed_now:
                actions = np.array(actions, np.float32)
                actions[sorted(failed_now)] = 0.0
            obs, r, term, trunc, info = env.step(actions.astype(np.float32))
            steps += len(current)
            finished = []
            for i, ep in current.items():
                if i in failed_now:
                    finished.append(i)
                    continue
                ep.ret += float(r[i])
                ep.length += 1
                succ = bool(info["success"][i])
                ep.success_once |= succ
                ep.success_at_end = succ
                for k, v in info.get("reward_terms", {}).items():
                    ep.reward_terms[k] = ep.reward_terms.get(k, 0.0) + float(v[i])
                if term[i] or trunc[i]:
                    ep.terminated = bool(term[i])
                    ep.physics_error = bool(info["physics_error"][i])
                    ep.metrics = {k: float(v[i]) for k, v in info.get("metrics", {}).items() if np.isfinite(v[i])}
                    finished.append(i)
            idle_done = [i for i in np.flatnonzero((episode_of < 0) & (term | trunc)) if i not in current]
            if not finished and not idle_done:
                continue
            mask = np.zeros(n, bool)
            new_seeds = []
            for i in sorted(finished + idle_done):
                if i in idle_done:  # an env with no episode left: keep it steppable, ignore its results
                    mask[i] = True
                    new_seeds.append(base + E + int(i))
                    continue
                done_results[int(episode_of[i])] = current.pop(i)
                bar.update(1)
                mask[i] = True
                if next_ep < E:
                    episode_of[i] = next_ep
                    current[i] = EpisodeResult(seed=base + next_ep)
                    next_ep += 1
                else:
                    episode_of[i] = -1
                new_seeds.append(base + int(episode_of[i]) if episode_of[i] >= 0 else base + E + i)
            obs, _ = env.reset(seed=new_seeds, options={"reset_mask": mask})
            reset_policy(mask & (episode_of >= 0))
    except AgentCrashed as err:
        # the agent process is gone: its running episodes and every unstarted one fail
        error = str(err)
        ended = [*current.values(), *(EpisodeResult(seed=base + k) for k in range(next_ep, E))]
        for ep in ended:
            _fail(ep, error)
            done_results[ep.seed - base] = ep
        bar.update(len(ended))
    bar.close()
    results = [done_results[k] for k in sorted(done_results)]
    return results, steps, error, recorder.write()
