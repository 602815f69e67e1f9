"""The agent protocol: how *any* agent plugs into VRB's evaluation.

An agent is any object with

* ``act(obs) -> actions``: ``obs`` is the env's batched observation dict
  (``pixels``: ``(N, H, W, C)`` uint8, ``proprio``: ``(N, P)`` float32, plus any
  extra camera keys); ``actions`` is an ``(N, A)`` float array in [-1, 1];
* optionally ``reset(mask)``: called whenever episodes start, with a bool
  ``(N,)`` mask of the envs that just started one (recurrent agents need it).

Nothing else is required. :func:`load_agent` turns a specification into such
an object: a Python object, a ``module:factory`` path, a stable-baselines3
``.zip``, a TorchScript file, an ONNX file, or a VRB policy file.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np


@runtime_checkable
class Agent(Protocol):
    """Anything with ``act``; ``reset`` is optional."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:  # pragma: no cover - protocol
        ...


@dataclass(frozen=True)
class AgentContext:
    """What an agent factory is told about the env it will act in.

    Attributes:
        task_id: The task id.
        single_observation_space: Observation space of one env (a ``Dict``).
        single_action_space: ``Box(-1, 1, (A,))``.
    """

    task_id: str
    single_observation_space: gym.spaces.Dict
    single_action_space: gym.spaces.Box

    @classmethod
    def of_env(cls, env: Any) -> "AgentContext":
        """The context of a VRB vector env: its task id and spaces, never the env itself."""
        return cls(env.task_id, env.single_observation_space, env.single_action_space)

    @classmethod
    def for_task(cls, task_id: str, env_kwargs: dict | None = None) -> "AgentContext":
        """The spaces of ``task_id`` with ``env_kwargs`` (builds the model; renders nothing)."""
        from ..envs.vector_env import VRBVectorEnv

        env = VRBVectorEnv(task_id, num_envs=1, **(env_kwargs or {}))
        try:
            return cls(task_id, env.single_observation_space, env.single_action_space)
        finally:
            env.close()


class AgentLoadError(ValueError):
    """An agent specification cannot be loaded (the message says why and what to do)."""


class RandomAgent:
    """Uniform random actions in [-1, 1] (the leaderboards' random floor).

    Args:
        action_dim: Action length.
        seed: Seed of its own generator (never the env's).
    """

    name = "random"

    def __init__(self, action_dim: "int | Any", seed: int = 0) -> None:
        self.action_dim = _action_dim(action_dim)
        self.rng = np.random.default_rng(seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        n = _batch_size(obs)
        actions = self.rng.uniform(-1.0, 1.0, (n or 1, self.action_dim)).astype(np.float32)
        return actions[0] if n is None else actions


class ZeroAgent:
    """All-zero actions (the leaderboards' zero floor)."""

    name = "zero"

    def __init__(self, action_dim: "int | Any") -> None:
        self.action_dim = _action_dim(action_dim)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        n = _batch_size(obs)
        return np.zeros(self.action_dim if n is None else (n, self.action_dim), np.float32)


def _batch_size(obs: dict[str, np.ndarray]) -> int | None:
    """N of a batched observation, or None for one env's: its vector keys (``proprio``, ``privileged``) are 1-D."""
    if any(np.ndim(v) == 1 for v in obs.values()):
        return None
    return len(next(iter(obs.values())))


def _action_dim(spec: Any) -> int:
    """An action length, or the one of an env/:class:`AgentContext` (so the classes work as factories)."""
    space = getattr(spec, "single_action_space", None)
    return int(space.shape[0]) if space is not None else int(spec)


class SB3Agent:
    """A stable-baselines3 model (``.zip``) acting deterministically on VRB observations."""

    def __init__(self, path: str, observation_space: gym.spaces.Dict) -> None:
        try:
            import stable_baselines3 as sb3
        except ImportError as err:  # pragma: no cover - dependency missing
            raise AgentLoadError("loading a .zip agent needs stable-baselines3: pip install 'visual_robo_bench[sb3]'") from err
        model = None
        errors = []
        for algo in ("PPO", "SAC", "TD3", "A2C", "DDPG"):
            try:
                model = getattr(sb3, algo).load(path, device="cpu")
                break
            except Exception as err:  # noqa: BLE001 - try the next algorithm
                errors.append(f"{algo}: {err}")
        if model is None:
            raise AgentLoadError(f"{path} is not a stable-baselines3 model file ({'; '.join(errors[:2])})")
        expected = model.observation_space
        keys = set(getattr(expected, "spaces", {}))
        for k in keys:
            want, have = expected[k], observation_space.spaces.get(k)
            ok = have is not None and (want.shape == have.shape or want.shape == _chw(have.shape))
            if not ok:
                raise AgentLoadError(
                    f"model {path} was trained on observation space {expected}, the env gives {observation_space}"
                )
        self.model = model
        self.keys = sorted(keys)
        self.name = f"sb3:{type(model).__name__}:{Path(path).name}"

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        inp = {}
        for k in self.keys:
            v = obs[k]
            want = self.model.observation_space[k].shape
            if v.shape[1:] != want and v.ndim == 4:  # channel-last env, channel-first model (VecTransposeImage)
                v = np.ascontiguousarray(v.transpose(0, 3, 1, 2))
            inp[k] = v
        actions, _ = self.model.predict(inp, deterministic=True)
        return np.asarray(actions, np.float32)


def _chw(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape


class TorchScriptAgent:
    """A TorchScript module called as ``module(obs_dict_of_tensors) -> actions``.

    The module receives a ``Dict[str, Tensor]`` with the env's keys (pixels as
    uint8) and returns an ``(N, A)`` tensor.
    """

    def __init__(self, path: str) -> None:
        import torch

        try:
            self.module = torch.jit.load(path, map_location="cpu").eval()
        except Exception as err:  # noqa: BLE001
            raise AgentLoadError(f"{path} is not a TorchScript file: {err}") from err
        self.torch = torch
        self.name = f"torchscript:{Path(path).name}"

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        with self.torch.no_grad():
            out = self.module({k: self.torch.from_numpy(np.ascontiguousarray(v)) for k, v in obs.items()})
        return out.numpy().astype(np.float32)


class OnnxAgent:
    """An ONNX model run with ``onnxruntime``; its input names must be observation keys."""

    def __init__(self, path: str, observation_space: gym.spaces.Dict) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise AgentLoadError("loading an .onnx agent needs onnxruntime: pip install 'visual_robo_bench[onnx]'") from err
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        missing = [n for n in self.inputs if n not in observation_space.spaces]
        if missing:
            raise AgentLoadError(
                f"ONNX model {path} expects inputs {self.inputs}; the env's observation keys are "
                f"{list(observation_space.spaces)}"
            )
        self.name = f"onnx:{Path(path).name}"

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        out = self.session.run(None, {k: obs[k] for k in self.inputs})[0]
        return np.asarray(out, np.float32)


def _from_factory(spec: str, env: Any) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise AgentLoadError(f"agent {spec!r}: a factory is given as module:factory, e.g. my_agents:MyAgent")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as err:  # ImportError, or the module's own code raising (a SyntaxError, ...)
        raise AgentLoadError(f"cannot import module {module_name!r} for agent {spec!r}: "
                             f"{type(err).__name__}: {err}") from err
    try:
        factory = getattr(module, attr)
    except AttributeError as err:
        raise AgentLoadError(f"module {module_name!r} has no attribute {attr!r} (agent {spec!r})") from err
    if inspect.isclass(factory) or callable(factory):
        try:
            params = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            params = {}
        try:
            agent = factory(env) if len(params) >= 1 else factory()
        except (Exception, SystemExit) as err:  # noqa: BLE001 - the agent's own code: reported in one line
            raise AgentLoadError(f"creating agent {spec!r} raised {type(err).__name__}: {err}") from err
    else:
        agent = factory
    return agent


def load_agent(spec: Any, env: Any) -> Any:
    """An object following the agent protocol, from ``spec``.

    Args:
        spec: An object with ``act``; ``"random"`` or ``"zero"``; ``"module:factory"``
            (the factory is called with the env if it takes an argument, else with
            nothing); a path to a stable-baselines3 ``.zip``, an ``.onnx`` file, a
            TorchScript file or a VRB policy file (``.pt``).
        env: What the agent acts in: an :class:`AgentContext` (what the evaluation harness passes, in
            process and isolated alike, so that no agent can reach the evaluation env), or anything with
            ``single_observation_space`` and ``single_action_space``; factories taking an argument receive it.

    Raises:
        AgentLoadError: With what is wrong and what to do.
    """
    if hasattr(spec, "act"):
        return spec
    if not isinstance(spec, (str, os.PathLike)):
        raise AgentLoadError(f"agent must be an object with act(), a module:factory path or a file, got {spec!r}")
    spec = str(spec)
    A = env.single_action_space.shape[0]
    if spec == "random":
        return RandomAgent(A)
    if spec == "zero":
        return ZeroAgent(A)
    path = Path(spec)
    if path.exists():
        suffix = path.suffix.lower()
        if suffix == ".zip":
            return SB3Agent(spec, env.single_observation_space)
        if suffix == ".onnx":
            return OnnxAgent(spec, env.single_observation_space)
        return _load_torch_file(spec, env)
    if is_factory_spec(spec):
        agent = _from_factory(spec, env)
        if not hasattr(agent, "act"):
            raise AgentLoadError(f"{spec!r} returned {type(agent).__name__}, which has no act(obs) method")
        return agent
    raise AgentLoadError(f"agent {spec!r}: no such file, and not 'random', 'zero' or a module:factory path")


def is_factory_spec(spec: str) -> bool:
    """Whether an agent spec that names no existing file is a ``module:factory`` path for :func:`load_agent`
    (a colon, and not a policy file's suffix)."""
    return ":" in spec and not spec.endswith((".zip", ".onnx", ".pt", ".pth"))


def _load_torch_file(spec: str, env: Any) -> Any:
    try:
        import torch
    except ImportError:
        from ..train import TORCH_CPU_HINT

        raise AgentLoadError(f"{spec}: loading a .pt policy file needs PyTorch, which is not installed: "
                             f"{TORCH_CPU_HINT} (the CPU build), or pip install 'visual_robo_bench[train]'") from None

    try:
        return TorchScriptAgent(spec)
    except AgentLoadError:
        pass
    try:
        payload = torch.load(spec, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001
        raise AgentLoadError(f"{spec} is neither TorchScript nor a VRB policy file: {err}") from err
    if not isinstance(payload, dict) or "agent" not in payload:
        raise AgentLoadError(f"{spec} is not a VRB policy file (no 'agent' entry)")
    _check_trained_shapes(spec, payload, env.single_observation_space)
    module = importlib.import_module(f"visual_robo_bench.agents.{payload['agent']}")
    loader = getattr(module, "load_policy", None)
    if loader is None:
        raise AgentLoadError(f"agent {payload['agent']!r} has no load_policy()")
    try:
        return loader(spec)
    except (ValueError, KeyError) as err:  # e.g. IncompatibleCheckpoint: a training checkpoint, not a policy
        raise AgentLoadError(f"{spec}: {err.args[0] if err.args else err}") from None


def _check_trained_shapes(spec: str, payload: dict, space: gym.spaces.Dict) -> None:
    """Refuse a policy file trained on other observation shapes than ``space`` (e.g. another ``image_size``):
    every episode would fail at its first step. Keys the env lacks are left to the policy (it may not read them);
    channel-first and channel-last images of the same size match."""
    trained = payload.get("obs_space")
    if not isinstance(trained, dict):
        return
    bad = []
    for key, record in trained.items():
        if key not in space.spaces or not isinstance(record, dict):
            continue
        want, have = tuple(record.get("shape", ())), tuple(space[key].shape)
        if want != have and not (len(want) == 3 and (want == _chw(have) or have == _chw(want))):
            bad.append(f"{key} {have} (trained on {want})")
    if bad:
        size = (payload.get("config") or {}).get("image_size")
        raise AgentLoadError(
            f"policy {spec} was trained on other observations than this env gives: {', '.join(bad)}"
            + (f"; it was trained with image_size={tuple(size)}" if size else "")
            + ". The protocol evaluates at the task's default settings; to score it at its training settings pass "
            "them as env_kwargs to visual_robo_bench.evaluation.evaluate (an unofficial result)"
        )
