"""``vrb train``: train a reference agent on a task, with logs, checkpoints and exact resume.

A run directory holds::

    config.json          the agent config, task config hash, versions, machine, command line (and the
                         ``resumes`` that changed settings)
    progress.csv         one row per epoch (return, losses, FPS, env steps, wall-clock)
    tb/                  TensorBoard event files (same scalars, against env steps; return, episode length and
                         steps/s under CleanRL's names charts/episodic_return, charts/episodic_length, charts/SPS)
    checkpoints/latest.pt  full training state (atomic write every ``checkpoint_every`` epochs)
    policy.pt            the deterministic policy for evaluation (``load_policy``)
    best_policy.pt       the same kind of file, of the epoch with the best logged ``episode_return`` so far
                         (rewritten whenever the running return reaches a new maximum; kept across --resume)
    model.zip            (ppo, sac) the same policy as stable-baselines3's own model file
    learning_curve.png   return vs wall-clock and vs env steps

A new run never writes into an existing directory; ``--resume`` continues the run of a directory
exactly where its last checkpoint left it, bit-identical to an uninterrupted run (the checkpoint holds
the env states, frame stacks and every RNG stream next to the networks and optimisers; the one
exception, SAC with ``save_replay_buffer=false``, is documented in :mod:`visual_robo_bench.agents._sb3`).

The learner interface (every module named in :data:`visual_robo_bench.agents.AGENTS`):

* module functions ``make_config(task, overrides) -> cfg``, ``load_file(path) -> dict``,
  ``check_checkpoint(data, task)``, ``load_policy(path, task=None) -> object with act(obs)``, and
  optionally ``describe(cfg) -> str`` (the layout printed when a run starts);
* ``LEARNER``: a class with ``__init__(cfg)``, ``from_checkpoint(path, task=None, **overrides)``,
  ``train_epoch() -> dict`` (at least ``epoch``, ``env_steps``, ``wall_s``, ``episode_return``,
  ``env_steps_per_s``, ``frames_per_s``), ``save_checkpoint(path)``, ``export_policy(path)``,
  ``episode_stats() -> dict``, ``close()`` and the attributes ``epoch``, ``env_steps``, ``train_time``,
  ``cfg`` (a frozen dataclass with ``task``, ``seed``, ``max_epochs``, ``time_budget_s``,
  ``checkpoint_every``, ``to_dict()``). A config with ``eval_interval`` > 0 (and ``eval_episodes``) gets the
  evaluation harness run on the current policy every ``eval_interval`` epochs, its mean return and success
  logged as ``eval_return`` and ``eval_success`` (NaN in the other epochs' rows).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import random
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .agents import AGENTS
from .agents.common import ConfigError, CSVLogger, plot_learning_curve, write_json

#: Config keys that may change on --resume (they do not change the learning math); an agent module
#: may widen this with its own ``RESUMABLE_KEYS``. ``torch_threads`` is not one: torch's reductions add in
#: another order on another number of threads (SDPG's actor gradients differ by up to 4e-4 between 1 and 2
#: threads), so the resumed run would drift from the uninterrupted one.
RESUMABLE_KEYS = ("time_budget_s", "checkpoint_every")


#: How to install PyTorch's CPU build (an unpinned ``pip install torch`` pulls the CUDA build, gigabytes).
TORCH_CPU_HINT = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


class TrainError(Exception):
    """Bad input for ``vrb train`` (unknown agent/task/key, existing run dir, bad checkpoint)."""


def _agent_module(name: str) -> Any:
    if name not in AGENTS:
        raise TrainError(f"unknown agent {name!r}; available: {', '.join(sorted(AGENTS))}")
    try:
        return importlib.import_module(AGENTS[name])
    except ImportError as err:  # e.g. stable-baselines3 missing for ppo/sac
        raise TrainError(f"agent {name!r} cannot be imported: {err}. Training needs the 'train' extra (and "
                         f"'sb3' for ppo/sac): pip install 'visual_robo_bench[train,sb3]' (for the CPU build of "
                         f"PyTorch install torch first: {TORCH_CPU_HINT})") from None


def preset_overrides(agent: str, config: dict[str, Any]) -> dict[str, Any] | None:
    """The preset a training config starts from, and what it changes: ``{"name", "overrides"}``.

    The preset is the agent module's ``make_config(task)`` in the installed VRB (for SDPG: ``PRESETS[task]``), so
    ``overrides`` are the ``vrb train --agent AGENT --task TASK --set KEY=VALUE`` settings that rebuild ``config``
    with this version. The training seed is left out (results record it per run).

    Args:
        agent: The agent's name (a key of :data:`~visual_robo_bench.agents.AGENTS`).
        config: The config as a dict (``cfg.to_dict()``, or as read back from JSON or a policy file).

    Returns:
        ``{"name": "AGENT:TASK", "overrides": {...}}``, or None when the agent, its module or the config's task is
        not available here, or ``config`` is not one of the agent's configs.
    """
    def plain(d: dict[str, Any]) -> dict[str, Any]:  # tuples as lists, as JSON holds them
        return json.loads(json.dumps(d, default=str))

    task = config.get("task")
    if agent not in AGENTS or not isinstance(task, str):
        return None
    try:
        base = plain(importlib.import_module(AGENTS[agent]).make_config(task, {}).to_dict())
    except Exception:  # noqa: BLE001 - unknown task, missing extra: nothing to compare with
        return None
    mine = plain(config)
    if set(mine) - set(base):  # not this agent's config (or one from another VRB version): no claim
        return None
    return {"name": f"{agent}:{base['task']}",
            "overrides": {k: v for k, v in mine.items() if k != "seed" and v != base[k]}}


def _describe(mod: Any, cfg: Any) -> str:
    describe = getattr(mod, "describe", None)
    return describe(cfg) if describe is not None else ""


def default_run_dir(agent: str, task: str, seed: int) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{agent}-{task.split('/')[-1]}-s{seed}-{stamp}"


def _meta(task_id: str, argv: list[str] | None) -> dict[str, Any]:
    import torch

    from .bench import machine_description
    from .registry import get_task

    try:
        machine = machine_description()
    except Exception as err:  # noqa: BLE001 - informational only
        machine = {"error": str(err)}
    return {"task_config_hash": get_task(task_id).config.hash(), "torch": torch.__version__,
            "machine": machine, "command": argv if argv is not None else sys.argv,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "MUJOCO_GL": os.environ.get("MUJOCO_GL", "")}


def _check_budget(cfg: Any) -> None:
    """A time budget is a finite number of seconds >= 0 (NaN and inf meant "no budget" silently)."""
    budget = getattr(cfg, "time_budget_s", None)
    if budget is not None and not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget >= 0):
        raise TrainError(f"time_budget_s must be a finite number of seconds >= 0, got {budget!r}")


def _read_run_config(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``config.json`` (``None`` if missing or unreadable: the checkpoint holds what the run uses)."""
    try:
        doc = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("config"), dict) else None


def _changed(run_config: dict[str, Any] | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` without the values the run's ``config.json`` already records (re-issuing the original
    command with ``--resume`` changes nothing)."""
    if run_config is None:
        return overrides
    recorded = run_config["config"]
    return {k: v for k, v in overrides.items() if k not in recorded or not _same_value(k, v, recorded[k])}


def _same_value(key: str, raw: Any, recorded: Any) -> bool:
    """Whether ``raw`` (a ``--set`` string or a value) parses to the JSON value ``recorded`` of the run."""
    from .agents.common import _parse_value

    if recorded is None:
        return raw is None or (isinstance(raw, str) and raw.strip().lower() in ("none", "null"))
    hint: Any = tuple[type(recorded[0]) if recorded else str] if isinstance(recorded, list) else type(recorded)
    try:
        value = _parse_value(key, hint, raw)
    except (ConfigError, ValueError, TypeError):
        return False
    return json.loads(json.dumps(value)) == recorded


def _record_resume(run_dir: Path, doc: dict[str, Any], cfg: Any, changes: dict[str, Any], epoch: int,
                   argv: list[str] | None) -> None:
    """Keep ``config.json`` (``doc``, as read) the run's config after a resume that changed settings
    (``max_epochs``, ``time_budget_s``, ...): ``config`` takes the new values and ``resumes`` lists each change
    with its command."""
    doc["config"] = cfg.to_dict()
    doc.setdefault("resumes", []).append({
        "epoch": int(epoch), "changed": {k: doc["config"].get(k) for k in sorted(changes)},
        "command": argv if argv is not None else sys.argv,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    write_json(run_dir / "config.json", doc)


#: TensorBoard tags of the scalars that CleanRL and Open RL Benchmark name too (conventions.md 6), so that their
#: tools read VRB runs; the others are ``<agent>/<name>``. All are logged against env steps (CleanRL's global_step).
TB_TAGS = {"episode_return": "charts/episodic_return", "episode_length": "charts/episodic_length",
           "env_steps_per_s": "charts/SPS"}


def _export(learner: Any, dst: Path) -> None:
    """``learner.export_policy`` to ``dst`` alone, atomically: some agents write files beside their policy file
    (``model.zip``, ``teacher.zip``), and those of another policy must not replace the run's."""
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".export-") as tmp:
        learner.export_policy(Path(tmp) / "policy.pt")
        os.replace(Path(tmp) / "policy.pt", dst)


def _best_return(csv_path: Path) -> float:
    """The best ``episode_return`` logged in ``progress.csv`` (-inf without one): the best so far of a resumed run
    (the rows after its checkpoint are gone, and are redone)."""
    from .agents.common import read_csv

    best = -math.inf
    if csv_path.is_file():
        for row in read_csv(csv_path):
            try:
                value = float(row.get("episode_return") or "nan")
            except ValueError:
                continue
            if math.isfinite(value):
                best = max(best, value)
    return best


@contextlib.contextmanager
def _rng_untouched() -> Any:
    """Restore torch's, numpy's and Python's global RNGs (and torch's threads) afterwards: an evaluation in the
    middle of a run (a policy's init draws from torch's RNG) must not change the training that follows."""
    import numpy as np
    import torch

    states = torch.get_rng_state(), np.random.get_state(), random.getstate(), torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
        torch.set_num_threads(states[3])


def _evaluate(learner: Any, cfg: Any) -> dict[str, float]:
    """The evaluation harness on the learner's current policy (§3 step 13): ``eval_episodes`` episodes of the
    public seeds, in the run's env settings (image size, episode length); not an official result."""
    from .agents.common import env_kwargs
    from .evaluation.harness import evaluate

    with tempfile.TemporaryDirectory(prefix="vrb-eval-") as tmp, _rng_untouched():
        path = Path(tmp) / "policy.pt"
        learner.export_policy(path)
        res = evaluate(str(path), cfg.task, episodes=int(getattr(cfg, "eval_episodes", 10)),
                       env_kwargs=env_kwargs(cfg), progress=False)
    summary = res.summary()
    return {"eval_return": summary["return"], "eval_success": summary["success_once"],
            "time_eval_s": res.wall_clock_s}


def train(agent: str = "sdpg", task: str | None = None, overrides: dict[str, Any] | None = None,
          run_dir: str | Path | None = None, resume: bool = False, seed: int | None = None,
          progress: bool = True, argv: list[str] | None = None, log: Any = print) -> Path:
    """Train (or resume) a run; returns its directory.

    Raises:
        TrainError: Unknown agent or task, bad config key/value, an existing run directory for a new
            run, or a missing/incompatible checkpoint for ``resume``.
    """
    mod = _agent_module(agent)
    overrides = dict(overrides or {})
    if seed is not None:
        overrides["seed"] = seed
    if resume:
        if run_dir is None:
            raise TrainError("--resume needs --run-dir (the directory of the run to continue)")
        run_dir = Path(run_dir)
        ck_path = run_dir / "checkpoints" / "latest.pt"
        if not ck_path.is_file():
            raise TrainError(f"cannot resume: {ck_path} does not exist" + (
                f" (the run stopped before its first checkpoint, written every checkpoint_every epochs: delete "
                f"{run_dir} and start the run again)" if (run_dir / "config.json").is_file() else ""))
        run_config = _read_run_config(run_dir)
        overrides = _changed(run_config, overrides)  # values equal to the run's own are no change
        allowed = list(getattr(mod, "RESUMABLE_KEYS", RESUMABLE_KEYS))
        bad = sorted(set(overrides) - set(allowed))
        if bad:
            raise TrainError(f"cannot change {bad} on --resume (only {allowed} may change)")
        try:
            ck = mod.load_file(ck_path)
            mod.check_checkpoint(ck, task)
            del ck  # the learner reads its own copy (a checkpoint may hold gigabytes of replay buffer)
            learner = mod.LEARNER.from_checkpoint(ck_path, task=task, **overrides)
        except (ValueError, FileNotFoundError, KeyError) as err:
            raise TrainError(f"cannot resume from {ck_path}: {err}") from None
        cfg = learner.cfg
        _check_budget(cfg)
        if overrides and run_config is not None:
            _record_resume(run_dir, run_config, cfg, overrides, learner.epoch, argv)
        log(f"resuming {run_dir} at epoch {learner.epoch} ({learner.env_steps:,} env steps)")
    else:
        if task is None:
            raise TrainError("--task is required for a new run")
        try:
            cfg = mod.make_config(task, overrides)
        except KeyError as err:
            raise TrainError(str(err.args[0]) if err.args else str(err)) from None
        except ConfigError as err:
            raise TrainError(str(err)) from None
        run_dir = Path(run_dir) if run_dir is not None else default_run_dir(agent, cfg.task, cfg.seed)
        if run_dir.exists():
            if not (run_dir / "checkpoints" / "latest.pt").is_file() and (run_dir / "config.json").is_file():
                raise TrainError(f"run directory {run_dir} already exists and holds no checkpoint (the run stopped "
                                 "before its first one): delete it to start the run again, or pick another --run-dir")
            raise TrainError(f"run directory {run_dir} already exists; pick another --run-dir, or continue it "
                             "with --resume (nothing was overwritten)")
        _check_budget(cfg)
        try:  # first: a learner that cannot be built leaves no run directory behind
            learner = mod.LEARNER(cfg)
        except ValueError as err:  # settings the config accepted but the env or the optimizer refuse
            raise TrainError(f"cannot build the {agent} learner with these settings: {err}") from None
        run_dir.mkdir(parents=True)
        (run_dir / "checkpoints").mkdir()
        write_json(run_dir / "config.json", {"agent": agent, "task": cfg.task, "config": cfg.to_dict(),
                                             **_meta(cfg.task, argv)})
        layout = _describe(mod, cfg)
        log(f"new run {run_dir}: {agent} on {cfg.task}, {layout + ', ' if layout else ''}seed={cfg.seed}")

    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    csv_log = CSVLogger(run_dir / "progress.csv")
    csv_log.truncate_after(learner.epoch)  # rows after the resumed checkpoint are redone
    best = _best_return(run_dir / "progress.csv")
    eval_interval = int(getattr(cfg, "eval_interval", 0) or 0)
    # x axis: env steps (CleanRL's global_step); a resume drops the events after its checkpoint
    writer = SummaryWriter(str(run_dir / "tb"), purge_step=learner.env_steps + 1 if resume else None)
    layout = _describe(mod, cfg)
    title = f"{agent.upper()} {cfg.task} ({layout + ', ' if layout else ''}seed {cfg.seed})"

    def finish_outputs() -> None:
        learner.export_policy(run_dir / "policy.pt")
        plot_learning_curve(run_dir / "progress.csv", run_dir / "learning_curve.png", title=title)

    def done() -> bool:
        return learner.epoch >= cfg.max_epochs or (cfg.time_budget_s > 0 and learner.train_time >= cfg.time_budget_s)

    bar = tqdm(total=cfg.max_epochs, initial=learner.epoch, desc=f"{agent} {cfg.task}", unit="epoch",
               disable=not progress, dynamic_ncols=True)
    try:
        while not done():
            stats = learner.train_epoch()
            if eval_interval > 0:  # every row has the columns (CSVLogger fixes them with the first row)
                due = learner.epoch % eval_interval == 0
                nan = float("nan")
                stats.update(_evaluate(learner, cfg) if due else
                             {"eval_return": nan, "eval_success": nan, "time_eval_s": nan})
            if math.isfinite(stats["episode_return"]) and stats["episode_return"] > best:
                best = stats["episode_return"]
                _export(learner, run_dir / "best_policy.pt")
            csv_log.log(stats)
            for k, v in stats.items():
                if k != "epoch" and isinstance(v, (int, float)) and math.isfinite(v):
                    writer.add_scalar(TB_TAGS.get(k, f"{agent}/{k}"), v, learner.env_steps)
            bar.update(1)
            bar.set_postfix_str(f"return {stats['episode_return']:.1f}  frames/s {stats['frames_per_s']:.0f}  "
                                f"steps/s {stats['env_steps_per_s']:,.0f}")
            if learner.epoch % cfg.checkpoint_every == 0 or done():
                writer.flush()
                learner.save_checkpoint(run_dir / "checkpoints" / "latest.pt")
                finish_outputs()
    finally:
        bar.close()
        writer.close()
        learner.close()
    stats = learner.episode_stats()
    log(f"finished {run_dir}: epoch {learner.epoch}, {learner.env_steps:,} env steps, "
        f"{learner.train_time / 60:.1f} min, return {stats['episode_return']:.1f} "
        f"(mean of the last {getattr(cfg, 'episode_window', 100)} episodes)")
    return Path(run_dir)
