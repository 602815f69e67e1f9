"""The rules every task must follow, checkable on any registered task (VRB's own or a third-party package's).

VRB's test suite checks these rules for VRB's tasks; :func:`check_task` runs the same checks on any registered
id, ``their_module:Lab/Task-v0`` included, and ``vrb check TASK`` prints them as a table::

    from visual_robo_bench.checks import check_task

    for result in check_task("their_module:Lab/Task-v0"):
        print(result.name, result.passed, result.message)

Each check is recorded as a :class:`CheckResult`; a failing check (or one that raises) never stops the others,
and its message says what differed and where (step, observation or info key, env, index).
"""

from __future__ import annotations

import dataclasses
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

#: The sections of a task docstring, in order (CONTRIBUTING.md, "Add a task", the docstring template).
DOC_SECTIONS = ("**Description.**", "**Observations.**", "**Actions.**", "**Reward terms.**", "**Success.**",
                "**Episode end.**", "**Cameras.**", "**Version history.**")

#: Gymnasium's heuristic for unbounded vectors (its own MuJoCo envs trigger it too): not a failure.
_IGNORED_WARNINGS = (".*Box observation space (minimum|maximum) value is .*infinity",)

#: Fraction of pixel values that may differ between a batch and single envs (llvmpipe rasterizes a few edge
#: pixels differently at different viewport offsets; measured at most ~2e-4).
PIXEL_TOLERANCE = 1e-3


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: The check's name (one of :data:`CHECKS`).
        passed: Whether the task follows the rule (a skipped check counts as passed).
        message: What was checked, or what differed and where; for a skipped check, why it was skipped.
        skipped: The check could not run here (e.g. stable-baselines3 is not installed).
    """

    name: str
    passed: bool
    message: str
    skipped: bool = False


# ----------------------------------------------------------------------------------------------- docstring
def docstring_problems(task_id: str, doc: str | None) -> list[str]:
    """What a task docstring lacks of the template (a pure function: no registry, no env).

    Args:
        task_id: The task id, ``Namespace/Name-vN`` (its version must appear under **Version history.**).
        doc: The task class's docstring.

    Returns:
        The problems, empty when the docstring follows the template: every section of :data:`DOC_SECTIONS`,
        in order, and ``vN`` named in the version history.
    """
    doc = doc or ""
    positions = [doc.find(s) for s in DOC_SECTIONS]
    missing = [s for s, p in zip(DOC_SECTIONS, positions) if p < 0]
    if missing:
        return [f"missing sections {missing}"]
    problems = []
    if positions != sorted(positions):
        found = [s for _, s in sorted(zip(positions, DOC_SECTIONS))]
        problems.append(f"sections out of order: {found}, expected {list(DOC_SECTIONS)}")
    version = f"v{task_id.rsplit('-v', 1)[-1]}"
    if version not in doc.split("**Version history.**", 1)[1]:
        problems.append(f"**Version history.** does not mention {version}")
    return problems


# ----------------------------------------------------------------------------------------------- comparisons
def _diff(a: Any, b: Any, path: str, *, batched: bool = False, pixel_tol: float = 0.0) -> str | None:
    """Where ``a`` and ``b`` first differ (exactly; NaN equals NaN), or ``None``.

    Args:
        a: A value, array or nested dict of them.
        b: The value to compare it with.
        path: How the message names the compared value, e.g. ``"step 3: obs"``.
        batched: The arrays' first axis is the env index (the message names the env).
        pixel_tol: For keys starting with ``pixels``: the fraction of values that may differ.
    """
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)):
            return f"{path}: {type(a).__name__} vs {type(b).__name__}"
        if a.keys() != b.keys():
            return (f"{path}: keys differ (only in the first: {sorted(set(a) - set(b))}, only in the second: "
                    f"{sorted(set(b) - set(a))})")
        for k in a:
            tol = pixel_tol if str(k).startswith("pixels") else 0.0
            found = _diff(a[k], b[k], f"{path}[{k!r}]", batched=batched, pixel_tol=tol)
            if found:
                return found
        return None
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        return f"{path}: shape {x.shape} vs {y.shape}"
    eq = x == y
    if x.dtype.kind in "fc" and y.dtype.kind in "fc":
        eq |= np.isnan(x) & np.isnan(y)
    if np.all(eq):
        return None
    eq = np.asarray(eq)
    count = f"{int((~eq).sum())} of {eq.size} values differ"
    if pixel_tol and (~eq).mean() <= pixel_tol:
        return None
    if x.ndim == 0:
        return f"{path}: {x.item()!r} vs {y.item()!r}"
    idx = tuple(int(i) for i in np.argwhere(~eq)[0])
    where = f"env {idx[0]}" + (f", index {list(idx[1:])}" if len(idx) > 1 else "") if batched else f"index {list(idx)}"
    tol = f" (more than the {pixel_tol:g} allowed)" if pixel_tol else ""
    return f"{path}, {where}: {x[idx].item()!r} vs {y[idx].item()!r} ({count}{tol})"


def _diff_steps(first: list, second: list, label: str = "step", **kwargs: Any) -> str | None:
    """The first difference between two rollouts (lists of step tuples from :func:`_rollout`)."""
    names = ("obs", "reward", "terminated", "truncated", "info")
    for t, (s1, s2) in enumerate(zip(first, second)):
        for name, a, b in zip(names, s1, s2):
            found = _diff(a, b, f"{label} {t + 1}: {name}", **kwargs)
            if found:
                return found
    return None


# ----------------------------------------------------------------------------------------------- envs
class _Run:
    """The settings of one :func:`check_task` call and the helpers its checks share."""

    def __init__(self, task_id: str, steps: int, num_envs: int, obs_mode: str, seed: int) -> None:
        self.task_id, self.steps, self.num_envs, self.obs_mode, self.seed = task_id, steps, num_envs, obs_mode, seed
        self._actions: np.ndarray | None = None

    def make_vec(self, **kwargs: Any) -> Any:
        """A native vector env of ``num_envs`` envs."""
        import gymnasium as gym

        return gym.make_vec(self.task_id, num_envs=self.num_envs, obs_mode=self.obs_mode, **kwargs)

    def make(self) -> Any:
        """A single env (``gym.make``, with Gymnasium's wrappers)."""
        import gymnasium as gym

        return gym.make(self.task_id, obs_mode=self.obs_mode)

    def actions(self, env: Any, count: int | None = None) -> np.ndarray:
        """``(count, num_envs, action_dim)`` uniform random float32 actions, the same for every check."""
        count = self.steps if count is None else count
        if self._actions is None or len(self._actions) < count:
            rng = np.random.default_rng(self.seed)
            self._actions = rng.uniform(-1, 1, (max(count, self.steps), *env.action_space.shape)).astype(np.float32)
        return self._actions[:count]


def _rollout(env: Any, actions: Sequence[np.ndarray]) -> list[tuple]:
    """Step ``env`` through ``actions``; the per-step ``(obs, reward, terminated, truncated, info)``."""
    return [env.step(a) for a in actions]


def _close(*envs: Any) -> None:
    for env in envs:
        if env is not None:
            env.close()


# ----------------------------------------------------------------------------------------------- checks
def _check_docstring(run: _Run) -> CheckResult:
    from .registry import get_task

    problems = docstring_problems(run.task_id, get_task(run.task_id).task_cls.__doc__)
    if problems:
        return CheckResult("docstring", False, f"the task class docstring does not follow the template "
                                               f"(CONTRIBUTING.md, 'Add a task'): {'; '.join(problems)}")
    return CheckResult("docstring", True, "every template section, in order; the version history names "
                                          f"v{run.task_id.rsplit('-v', 1)[-1]}")


def _check_gymnasium(run: _Run) -> CheckResult:
    from gymnasium.utils.env_checker import check_env

    env = run.make()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for pattern in _IGNORED_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()
    messages = sorted({str(w.message) for w in caught if issubclass(w.category, UserWarning)})
    if messages:
        return CheckResult("gymnasium_check_env", False, f"{len(messages)} warning(s): {' | '.join(messages)}")
    return CheckResult("gymnasium_check_env", True, "gymnasium.utils.env_checker.check_env on the single env, "
                                                    "no warnings")


def _check_sb3(run: _Run) -> CheckResult:
    try:
        from stable_baselines3.common.env_checker import check_env
    except ImportError:
        return CheckResult("sb3_check_env", True, "skipped: stable-baselines3 is not installed", skipped=True)
    env = run.make()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env, warn=True, skip_render_check=True)
    finally:
        env.close()
    messages = sorted({str(w.message) for w in caught if "stable_baselines3" in (w.filename or "")})
    if messages:
        return CheckResult("sb3_check_env", False, f"{len(messages)} warning(s): {' | '.join(messages)}")
    return CheckResult("sb3_check_env", True, "stable_baselines3's check_env on the single env, no warnings")


def _check_determinism(run: _Run) -> CheckResult:
    outs = []
    for _ in range(2):
        env = run.make_vec()
        try:
            reset = env.reset(seed=run.seed)
            outs.append((reset, _rollout(env, run.actions(env))))
        finally:
            env.close()
    (r1, s1), (r2, s2) = outs
    found = (_diff(r1[0], r2[0], "reset: obs", batched=True) or _diff(r1[1], r2[1], "reset: info", batched=True)
             or _diff_steps(s1, s2, batched=True))
    if found:
        return CheckResult("determinism", False, f"two envs reset with seed {run.seed} and given the same actions "
                                                 f"differ at {found}")
    return CheckResult("determinism", True, f"two batches of {run.num_envs}, seed {run.seed}: the same observations, "
                                            f"rewards, flags and infos over {run.steps} steps")


def _check_batch(run: _Run) -> CheckResult:
    venv = run.make_vec()
    try:
        vreset = venv.reset(seed=run.seed)
        actions = run.actions(venv)
        vsteps = _rollout(venv, actions)
    finally:
        venv.close()
    tol = PIXEL_TOLERANCE
    for i in range(run.num_envs):
        env = run.make()
        try:
            obs, info = env.reset(seed=run.seed + i)
            pick = lambda d: {k: pick(v) if isinstance(v, dict) else v[i] for k, v in d.items()  # noqa: E731
                              if not k.startswith("_")}
            where = f"env {i} (seed {run.seed + i}) alone vs in a batch of {run.num_envs} (seed {run.seed})"
            found = (_diff(obs, pick(vreset[0]), "reset: obs", pixel_tol=tol)
                     or _diff(info, pick(vreset[1]), "reset: info"))
            for t in range(len(actions)):
                if found:
                    break
                obs, r, te, tr, info = env.step(actions[t][i])
                vobs, vr, vte, vtr, vinfo = vsteps[t]
                at = f"step {t + 1}"
                found = (_diff(obs, pick(vobs), f"{at}: obs", pixel_tol=tol) or _diff(r, vr[i], f"{at}: reward")
                         or _diff(te, vte[i], f"{at}: terminated")
                         # Gymnasium's TimeLimit also truncates an episode that terminates at the limit
                         or (not te and _diff(tr, vtr[i], f"{at}: truncated"))
                         or _diff(info, pick(vinfo), f"{at}: info"))
                if te or tr:
                    break
        finally:
            env.close()
        if found:
            return CheckResult("batch_equals_single", False, f"{where} differ at {found}")
    return CheckResult("batch_equals_single", True, f"each of {run.num_envs} single envs equals its env of the batch "
                                                    f"over {run.steps} steps")


def _newest_frames(step: tuple, frame_stack: int) -> tuple:
    """A step with only the newest frame of each pixel stack (``set_state`` refills the stacks with one frame)."""
    obs = {k: v[..., -(v.shape[-1] // frame_stack):] if k.startswith("pixels") else v for k, v in step[0].items()}
    return (obs, *step[1:])


def _check_round_trip(run: _Run) -> CheckResult:
    env = run.make_vec()
    try:
        venv = env.unwrapped
        env.reset(seed=run.seed)
        warmup = run.actions(env, run.steps + 3)
        t = 0
        while t < 3 or (venv.done.any() and t < len(warmup)):  # a done env's pending autoreset is not state
            env.step(warmup[t])
            t += 1
        saved = venv.get_state(rng=True)
        actions = np.flip(run.actions(env), axis=0)  # other actions than those before
        first = _rollout(env, actions)
        venv.set_state(saved)
        second = _rollout(env, actions)
        K = venv.cfg.frame_stack
        found = _diff_steps([_newest_frames(s, K) for s in first], [_newest_frames(s, K) for s in second],
                            label="step", batched=True)
    finally:
        env.close()
    if found:
        return CheckResult("state_round_trip", False,
                           f"after set_state(get_state(rng=True)) taken at step {t}, the replayed steps (counted "
                           f"from the saved state) differ at {found}: all that decides the next steps must be in "
                           "the state (state_spec() fields, not Python attributes; randomness only from the "
                           "episode's rngs)")
    return CheckResult("state_round_trip", True, f"set_state(get_state(rng=True)) replays {run.steps} steps exactly "
                                                 "(newest frame of each pixel stack)")


def _check_observe(run: _Run) -> CheckResult:
    envs = [run.make_vec(), run.make_vec()]
    try:
        actions = run.actions(envs[0], 6)
        obs = None
        for env in envs:
            env.reset(seed=run.seed)
            for a in actions[:3]:
                obs, *_ = env.step(a)
        venv = envs[1].unwrapped
        before = venv.get_state(rng=True)
        once, twice = venv.observe(), venv.observe()
        after = venv.get_state(rng=True)
        found = (_diff(once, twice, "observe() called twice: observations", batched=True)
                 or _diff({k: v for k, v in once.items() if k in obs}, {k: obs[k] for k in once if k in obs},
                          "observe() vs the step's observations", batched=True)
                 or _diff(before.physics, after.physics, "state before vs after observe(): physics", batched=True)
                 or _diff(before.task, after.task, "state before vs after observe(): task state", batched=True)
                 or _diff(before.elapsed, after.elapsed, "state before vs after observe(): elapsed", batched=True)
                 or _diff(before.rng, after.rng, "state before vs after observe(): random generators"))
        if not found:  # hidden state (Python attributes): the next steps match a twin that did not observe
            found = _diff_steps(_rollout(envs[0], actions[3:]), _rollout(envs[1], actions[3:]),
                                label="the steps after observe() (vs a twin env that did not call it; a "
                                      "non-deterministic task differs here too), step",
                                batched=True)
    finally:
        _close(*envs)
    if found:
        return CheckResult("observe_is_pure", False, f"{found}: observe must be a pure function of the state")
    return CheckResult("observe_is_pure", True, "observe() twice: equal observations, state unchanged, the next "
                                                "steps unchanged")


_CHECK_FUNCTIONS: dict[str, Callable[[_Run], CheckResult]] = {
    "docstring": _check_docstring,
    "gymnasium_check_env": _check_gymnasium,
    "sb3_check_env": _check_sb3,
    "determinism": _check_determinism,
    "batch_equals_single": _check_batch,
    "state_round_trip": _check_round_trip,
    "observe_is_pure": _check_observe,
}

#: Names of the checks, in the order :func:`check_task` runs them.
CHECKS = tuple(_CHECK_FUNCTIONS)


def _raised(name: str, err: BaseException) -> CheckResult:
    """A failed check for an exception, naming where it was raised (the innermost frame)."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    return CheckResult(name, False, f"raised {type(err).__name__}: {err}{where}")


def check_task(task_id: str, *, steps: int = 20, num_envs: int = 3, obs_mode: str = "state", seed: int = 0,
               checks: Sequence[str] | None = None) -> list[CheckResult]:
    """Run the rules every task must follow on a registered task.

    The checks (:data:`CHECKS`): the class docstring follows the template; Gymnasium's ``check_env`` passes
    on the single env; stable-baselines3's ``check_env`` passes (skipped when it is not installed); the same
    seed gives the same observations, rewards, flags and infos over ``steps`` random-action steps; a batch of
    ``num_envs`` gives the same per-env results as that many single envs with the same seeds;
    ``set_state(get_state(rng=True))`` replays the next steps exactly; ``observe()`` is pure (calling it twice changes neither the state nor the next steps).

    Args:
        task_id: A registered id, or ``"module:Namespace/Name-vN"`` (the module is imported first, as
            ``gym.make`` does).
        steps: Random-action steps per rollout.
        num_envs: Envs of the batches.
        obs_mode: ``"state"`` (default: privileged vectors only, nothing rendered, cheap) or ``"visual"``
            (images and ``proprio``; a batch and single envs may then differ in a few edge pixels,
            :data:`PIXEL_TOLERANCE`). A task without privileged vectors is checked with ``"visual"`` (see
            :func:`resolve_obs_mode`; the messages say so).
        seed: Reset seed and seed of the random actions.
        checks: Names of the checks to run (default: all, in the order of :data:`CHECKS`).

    Returns:
        One :class:`CheckResult` per check, in the order of :data:`CHECKS`. A failing check, or one that
        raises, is recorded with a message saying what differed and where; nothing is raised for it.

    Raises:
        KeyError: ``task_id`` is not registered (the message names the closest ids), or its module
            cannot be imported.
        ValueError: ``steps`` or ``num_envs`` below 1, ``obs_mode`` unknown, or an unknown check name.
    """
    from .registry import get_task

    entry = get_task(task_id)  # imports the module of a 'module:' id; KeyError for an unknown id
    if not (isinstance(steps, int) and steps >= 1 and isinstance(num_envs, int) and num_envs >= 1):
        raise ValueError(f"steps and num_envs must be ints >= 1, got steps={steps!r}, num_envs={num_envs!r}")
    if obs_mode not in ("state", "visual"):
        raise ValueError(f"obs_mode must be 'state' or 'visual', got {obs_mode!r}")
    selected = list(CHECKS) if checks is None else list(checks)
    unknown = sorted(set(selected) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown checks {unknown}; the checks are {list(CHECKS)}")
    mode, note = resolve_obs_mode(entry, obs_mode)
    run = _Run(entry.id, steps, num_envs, mode, seed)
    results = []
    for name in CHECKS:
        if name not in selected:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Gymnasium's passive checker, deprecated ids: not the rules
                result = _CHECK_FUNCTIONS[name](run)
        except Exception as err:  # noqa: BLE001 - a failing check is recorded, never raised
            result = _raised(name, err)
        if note and name != "docstring" and not result.skipped:
            result = dataclasses.replace(result, message=f"{result.message} ({note})")
        results.append(result)
    return results


def resolve_obs_mode(entry: Any, obs_mode: str) -> tuple[str, str | None]:
    """The observation mode :func:`check_task` uses for a task, and why when it is not ``obs_mode``.

    ``obs_mode="state"`` observes the privileged state: a task that declares none (``privileged_dim`` 0),
    which the env refuses in that mode, is checked with images (``"visual"``).

    Args:
        entry: The task's registry entry (:func:`~visual_robo_bench.registry.get_task`).
        obs_mode: The requested mode, ``"state"`` or ``"visual"``.

    Returns:
        ``(mode, note)``: the mode to use, and ``None`` or the reason it differs from ``obs_mode``.
    """
    cfg = entry.config
    if obs_mode == "state" and not cfg.privileged_dim:
        return "visual", ("obs_mode 'visual': the task declares no privileged state (privileged_dim 0), so "
                          "obs_mode='state' has no observation")
    return obs_mode, None
