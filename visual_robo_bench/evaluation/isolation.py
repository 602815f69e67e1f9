"""Run an agent in its own process with a time and memory limit.

A third-party agent that crashes, hangs or eats memory must not take the
harness down: :class:`IsolatedAgent` loads the agent in a spawned child process
(with ``RLIMIT_AS``) and forwards ``act``/``reset`` over a pipe, waiting at most
``act_timeout`` seconds for each answer.

Two kinds of failure, scored differently by the harness:

* the agent **raised** (an ``Exception`` in ``act`` or ``reset``; the child
  process lives on): :class:`AgentRaised`, scored exactly like the same
  exception in-process (only the episodes it affects fail, the evaluation goes on);
* the agent **process is gone or stuck** (it died, exited, or did not answer
  within the time limit; it is then stopped): :class:`AgentCrashed`, which ends
  the evaluation (every remaining episode is recorded as failed).
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from typing import Any

import numpy as np


class AgentCrashed(RuntimeError):
    """The agent process died, exited or hung past its time limit (it cannot act any more)."""


class AgentRaised(RuntimeError):
    """The isolated agent raised an exception; its process lives on and can be called again.

    Attributes:
        kind: The exception's type name in the agent process (e.g. ``"RuntimeError"``).
        message: ``str()`` of that exception.
        child_traceback: Its formatted traceback in the agent process.
    """

    def __init__(self, kind: str, message: str, child_traceback: str) -> None:
        super().__init__(message)
        self.kind, self.message, self.child_traceback = kind, message, child_traceback


def _raised(err: BaseException) -> tuple[str, str, str]:
    return type(err).__name__, str(err), traceback.format_exc()


def _child(conn, spec: str, task_id: str, env_kwargs: dict, memory_limit_mb: int | None) -> None:
    if memory_limit_mb:
        import resource

        limit = int(memory_limit_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        from visual_robo_bench.evaluation.protocol import AgentContext, load_agent

        agent = load_agent(spec, AgentContext.for_task(task_id, env_kwargs))
        conn.send(("ok", getattr(agent, "name", spec)))
    except (Exception, SystemExit) as err:  # noqa: BLE001 - reported to the parent
        conn.send(("error", _raised(err)))
        return
    while True:
        try:
            cmd, payload = conn.recv()
        except EOFError:
            return
        if cmd == "close":
            return
        try:
            if cmd == "act":
                conn.send(("ok", np.asarray(agent.act(payload))))
            elif cmd == "reset":
                if hasattr(agent, "reset"):
                    agent.reset(payload)
                conn.send(("ok", None))
        except (Exception, SystemExit) as err:  # noqa: BLE001 - reported to the parent, as in process (os._exit and
            conn.send(("error", _raised(err)))  # signals still end the process: a crash)


class IsolatedAgent:
    """Proxy following the agent protocol; the real agent lives in a child process.

    Args:
        spec: Agent specification for :func:`~visual_robo_bench.evaluation.protocol.load_agent`
            (a string: ``module:factory`` or a file).
        task_id: Task the agent acts in.
        env_kwargs: The env keywords of the evaluation.
        act_timeout: Seconds allowed per call.
        memory_limit_mb: Address-space limit of the child (``None``: no limit).
    """

    def __init__(self, spec: str, task_id: str, env_kwargs: dict | None = None, act_timeout: float = 60.0,
                 memory_limit_mb: int | None = 8192, load_timeout: float = 300.0) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child, args=(child, spec, task_id, dict(env_kwargs or {}), memory_limit_mb),
                                 daemon=True)
        self._proc.start()
        child.close()
        self.spec, self.act_timeout = spec, act_timeout
        try:
            self.name = self._call(None, None, load_timeout, what="loading")
        except AgentRaised as err:
            self.close(kill=True)
            from .protocol import AgentLoadError

            if err.kind == "AgentLoadError":
                raise AgentLoadError(err.message) from None
            raise AgentLoadError(f"loading agent {spec!r} raised {err.kind}: {err.message}\n"
                                 f"{err.child_traceback}") from None

    def _call(self, cmd: str | None, payload: Any, timeout: float, what: str) -> Any:
        try:
            if cmd is not None:
                self._conn.send((cmd, payload))
            if not self._conn.poll(timeout):
                self.close(kill=True)
                raise AgentCrashed(f"agent {self.spec!r} did not answer within {timeout:g} s ({what}); it was stopped")
            status, value = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError) as err:
            self._proc.join(5)  # the pipe closes a moment before the process is reaped
            code = self._proc.exitcode
            self.close(kill=True)
            raise AgentCrashed(f"agent {self.spec!r} process died while {what} (exit code {code})") from err
        if status == "error":
            raise AgentRaised(*value)
        return value

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The agent's actions for ``obs``.

        Raises:
            AgentRaised: The agent raised (the process can be called again).
            AgentCrashed: The process died or did not answer within ``act_timeout`` (it is stopped).
        """
        return self._call("act", obs, self.act_timeout, what="acting")

    def reset(self, mask: np.ndarray) -> None:
        """Forward ``reset(mask)`` (a no-op for agents without ``reset``); raises as :meth:`act`."""
        self._call("reset", mask, self.act_timeout, what="resetting")

    def close(self, kill: bool = False) -> None:
        """Stop the child process."""
        if self._proc.is_alive():
            if not kill:
                try:
                    self._conn.send(("close", None))
                    self._proc.join(5)
                except (BrokenPipeError, OSError):
                    pass
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5)
