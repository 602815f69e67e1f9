"""Run an agent in its own process with a time and memory limit.

A third-party agent that crashes, hangs or eats memory must not take the
harness down: :class:`IsolatedAgent` loads the agent in a spawned child process
(with ``RLIMIT_AS``) and forwards ``act``/``reset`` over a pipe, waiting at most
``act_timeout`` seconds for each answer.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from typing import Any

import numpy as np


class AgentCrashed(RuntimeError):
    """The agent process died, hung past its time limit, or raised."""


def _child(conn, spec: str, task_id: str, env_kwargs: dict, memory_limit_mb: int | None) -> None:
    if memory_limit_mb:
        import resource

        limit = int(memory_limit_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        from visual_robo_bench.evaluation.protocol import AgentContext, load_agent

        agent = load_agent(spec, AgentContext.for_task(task_id, env_kwargs))
        conn.send(("ok", getattr(agent, "name", spec)))
    except BaseException:  # noqa: BLE001 - reported to the parent
        conn.send(("error", traceback.format_exc()))
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
        except BaseException:  # noqa: BLE001 - reported to the parent
            conn.send(("error", traceback.format_exc()))


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
        self.name = self._call(None, None, load_timeout, what="loading")

    def _call(self, cmd: str | None, payload: Any, timeout: float, what: str) -> Any:
        try:
            if cmd is not None:
                self._conn.send((cmd, payload))
            if not self._conn.poll(timeout):
                self.close(kill=True)
                raise AgentCrashed(f"agent {self.spec!r} did not answer within {timeout:g} s ({what}); it was stopped")
            status, value = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError) as err:
            code = self._proc.exitcode if not self._proc.is_alive() else None
            self.close(kill=True)
            raise AgentCrashed(f"agent {self.spec!r} process died while {what} (exit code {code})") from err
        if status == "error":
            raise AgentCrashed(f"agent {self.spec!r} raised while {what}:\n{value}")
        return value

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return self._call("act", obs, self.act_timeout, what="acting")

    def reset(self, mask: np.ndarray) -> None:
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
