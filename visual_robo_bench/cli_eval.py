"""``vrb evaluate``, ``vrb submit``, ``vrb verify`` and ``vrb leaderboard build``.

Bad input (an unknown agent or task, a count below 1, a negative seed, an output file that exists without
``--force`` or cannot be written, a leaderboard directory without a board) is a one-line error and exit code 2,
never a traceback; what can be checked is checked before anything is evaluated.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from .cli import (VIDEO_SUFFIXES, CLIError, _check_suffix, _check_writable, _entry, _or_list, console,
                  err_console)

#: ``vrb evaluate`` flags that record the training budget in the results file: ``budget`` key -> (dest, flag).
BUDGET_FLAGS = {"env_steps": ("env_steps", "--env-steps"), "rendered_frames": ("rendered_frames", "--rendered-frames"),
                "wall_clock_s": ("wall_clock_s", "--wall-clock-s"), "num_envs": ("train_num_envs", "--train-num-envs"),
                "hardware": ("hardware", "--hardware")}

#: ``vrb evaluate --obs-mode`` choices: :data:`~.evaluation.harness.OBS_MODES` (spelled out here, so that the
#: command line starts without importing the harness; tests/test_cli.py checks that they agree).
OBS_MODES = ("visual", "state")

#: ``--leaderboard-dir`` of the commands that write to a board (``vrb submit``, ``verify``, ``leaderboard build``).
BOARD_DIR_HELP = ("the board to write to: a directory holding its config.json (default: ./leaderboards); a new "
                  "board starts as a copy of leaderboards/config.json")


def _leaderboard_dir(path: str | None, *, writer: str | None) -> Path:
    """The leaderboard directory a command works on.

    ``--leaderboard-dir`` when given, else ``./leaderboards`` (a repository checkout), else, for a command that
    only reads, the copy installed with the package. A command that writes to the leaderboards never falls back
    to the installed copy: it lies in site-packages, and what the command adds belongs in a checkout (a pull
    request). Nor does it start a board of its own: its directory must hold a board (:func:`_check_board`).

    Args:
        path: ``--leaderboard-dir``, or None.
        writer: The command's name (``vrb submit``) when it writes to the leaderboards; None when it only reads.

    Raises:
        CLIError: (exit 2) No ``./leaderboards`` here and the command writes, or there is no installed copy; the
            command writes and the directory does not exist or has no ``config.json``.
    """
    from .evaluation.leaderboard import default_leaderboard_dir

    if path:
        root = Path(path)
    elif writer and not (Path.cwd() / "leaderboards").is_dir():
        raise CLIError(f"no leaderboards/ directory here, and {writer} writes to the leaderboards (never to the "
                       "read-only copy installed with the package): run it from the root of a clone of the "
                       "visual_robo_bench repository, or pass --leaderboard-dir DIR", code=2)
    else:
        try:
            root = default_leaderboard_dir()  # ./leaderboards, else the installed copy
        except FileNotFoundError as err:
            raise CLIError(f"no leaderboards/ directory here, and {err}, or pass --leaderboard-dir DIR",
                           code=2) from None
    if writer:
        _check_board(root, f"--leaderboard-dir {path}" if path else "leaderboards/", writer)
    return root


def _check_board(root: Path, name: str, writer: str) -> None:
    """Refuse to write to a directory that holds no board: one that does not exist, or has no ``config.json``.

    Without its ``config.json`` (tracks, protocol, floors) a board would silently get the built-in defaults; a
    command that writes never starts a board on its own.

    Args:
        root: The leaderboard directory.
        name: How the user gave it, for the message (``--leaderboard-dir DIR``).
        writer: The command's name (``vrb submit``).

    Raises:
        CLIError: (exit 2) Saying how to start a new board.
    """
    from .evaluation.leaderboard import installed_leaderboard_dir

    try:
        template = str(installed_leaderboard_dir() / "config.json")
    except FileNotFoundError:
        template = "leaderboards/config.json of a clone of the visual_robo_bench repository"
    start = (f"to start a new board, create it and copy the project's config into it (tracks and protocol, edit "
             f"them to taste): mkdir -p {root} && cp {template} {root}/")
    if not root.exists():
        raise CLIError(f"{name} does not exist, and {writer} adds to an existing board; pass the directory of one, "
                       f"or, {start}", code=2)
    if not root.is_dir():
        raise CLIError(f"{name} is not a directory; pass the directory of a board", code=2)
    if not (root / "config.json").is_file():
        raise CLIError(f"{name} has no config.json (the board's tracks and protocol), so it holds no board and "
                       f"{writer} will not guess one; pass the directory of a board, or, {start}", code=2)


def _reference_levels(path: str | None) -> dict[str, dict[str, Any]]:
    """The reference levels (``reference_scores.json``) that ``vrb evaluate``'s normalized scores use.

    The directory a reading command uses (:func:`_leaderboard_dir`): ``--leaderboard-dir`` when given, else
    ``./leaderboards`` when it exists, else the installed copy. Without either of the last two, a note on stderr
    says why the normalized column is empty, and the levels are empty (the evaluation itself does not need them).

    Raises:
        CLIError: (exit 2) ``--leaderboard-dir`` has no ``reference_scores.json``.
    """
    from .evaluation.leaderboard import reference_scores

    try:
        root = _leaderboard_dir(path, writer=None)
    except CLIError as err:  # neither ./leaderboards nor an installed copy
        err_console.print(f"note: no normalized scores ({err})", highlight=False, soft_wrap=True)
        return {}
    if path and not (root / "reference_scores.json").is_file():
        raise CLIError(f"--leaderboard-dir {path} has no reference_scores.json (the levels of the normalized "
                       "scores); leave it out to use ./leaderboards or the copy installed with the package", code=2)
    return reference_scores(root)


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer >= ``minimum`` (else argparse's one-line error, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


#: argparse type: a count, an integer >= 1.
_count = _int_at_least(1)
#: argparse type: a seed base, an integer >= 0 (episode k is seeded with seed base + k; seeds are non-negative).
_seed_base = _int_at_least(0)


def _amount(kind: type) -> Callable[[str], int | float]:
    """argparse type: a number (``kind``) >= 0."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__} >= 0, got {text!r}") from None
        if not value >= 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
        return value

    return parse


def _positive_seconds(text: str) -> float:
    """argparse type: seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _refuse_existing(path: str | None, flag: str, force: bool) -> None:
    """Refuse an output file that exists (without ``--force``) or cannot be written (:func:`~.cli._check_writable`).

    Raises:
        CLIError: (exit 2) Saying what to do.
    """
    if path and Path(path).exists() and not force:
        raise CLIError(f"{flag} {path} exists; pass --force to overwrite it, or choose another file", code=2)
    if path:
        _check_writable(path, flag)


def _policy_spec(spec: str) -> bool:
    """Whether ``spec`` names a policy ``vrb verify --policy`` can load again: a file or a ``module:factory``.

    As :func:`~.evaluation.protocol.load_agent` tells them apart: an existing file, else a ``module:factory``
    path (:func:`~.evaluation.protocol.is_factory_spec`). The built-in ``random`` and ``zero`` are not recorded.
    """
    from .evaluation.protocol import is_factory_spec

    return Path(spec).exists() or is_factory_spec(spec)


def _policies_config(specs: list[str]) -> dict[str, Any]:
    """The config the evaluated VRB policy files carry (:func:`~.evaluation.results.policy_config`), for
    ``agent.config``; empty when the agent is not such a file.

    With one file per training run (``{seed}`` in ``--agent``), the settings all the files share: a setting
    that differs between them (the training seed) is left out (each run records its training seed).
    """
    from .evaluation.results import policy_config

    configs = [policy_config(spec) for spec in dict.fromkeys(specs)]
    if not configs or any(c is None for c in configs):
        return {}
    first = configs[0]
    return {k: v for k, v in first.items() if all(k in c and c[k] == v for c in configs[1:])}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import AgentLoadError, evaluate
    from .evaluation.distributed import SweepError, make_grid
    from .evaluation.isolation import AgentCrashed
    from .evaluation.results import make_results, write_json
    from .render.gl import renderer_info

    if args.ray is not None:
        return _cmd_sweep(args)
    if len(args.agent) > 1:  # on stdout, as the sweep's errors (tests/test_distributed.py reads them there)
        console.print("[red]error:[/red] several --agent values need --ray (a sweep into one --out file; "
                      "--ray local runs it on this machine)", highlight=False)
        return 2
    budget = {k: getattr(args, dest) for k, (dest, _) in BUDGET_FLAGS.items() if getattr(args, dest) is not None}
    if (budget or args.code_url) and not args.out:
        raise CLIError("the budget flags and --code-url are recorded in the results file: add --out FILE", code=2)
    agent = args.agent[0]
    seeds = args.training_seed or [0]
    for task in args.task:
        entry = _entry(task)  # an unknown id: exit 2 with the closest registered ids
        if entry.deprecated_by:
            err_console.print(f"note: {entry.id} is deprecated, use {entry.deprecated_by} (vrb submit accepts new "
                              "results only on the current version)", highlight=False, soft_wrap=True)
    try:
        cells = make_grid([agent], args.task, seeds)
    except SweepError as err:
        raise CLIError(str(err), code=2) from None
    if len(seeds) > 1 and "{seed}" not in agent and agent != "zero":
        raise CLIError(
            f"{len(seeds)} --training-seed values with one agent {agent!r} would evaluate the same policy "
            "for every seed and give identical runs (the leaderboards reject them): put {seed} in --agent to "
            "name each training run's own policy, e.g. --agent 'runs/mine-s{seed}/policy.pt'", code=2)
    if args.video and args.obs_mode != "visual":
        raise CLIError(f"--video records the policy camera, and --obs-mode {args.obs_mode} renders no pixels; "
                       "leave out --video, or record one with --obs-mode visual", code=2)
    if args.video:
        _check_suffix(args.video, "--video", VIDEO_SUFFIXES)
        if args.out and Path(args.out).resolve() == Path(args.video).resolve():
            raise CLIError(f"--out {args.out} and --video {args.video} name the same file: the results would "
                           "overwrite the video; give them different names", code=2)
    _refuse_existing(args.out, "--out", args.force)
    _refuse_existing(args.video, "--video", args.force)
    levels = _reference_levels(args.leaderboard_dir)  # before the evaluation: a bad --leaderboard-dir fails fast
    evals = []
    for cell in cells:
        try:
            res = evaluate(cell.agent_spec(), cell.task, episodes=args.episodes, seed_base=args.seed_base,
                           num_envs=args.num_envs, isolate=args.isolate, act_timeout=args.act_timeout,
                           video=args.video if len(evals) == 0 else None, obs_mode=args.obs_mode)
        except AgentLoadError as err:
            raise CLIError(str(err), code=2) from None
        except AgentCrashed as err:  # the isolated agent died or hung while loading
            raise CLIError(str(err), code=1) from None
        evals.append((res, cell.seed))
    track = "" if args.obs_mode == "visual" else f", obs_mode {args.obs_mode} (the {args.obs_mode} track)"
    table = Table(title=f"{escape(agent)}: standard protocol{track}")
    for col in ("task", "episodes", "return", "normalized", "success_once", "success_at_end", "length", "official"):
        table.add_column(col, justify="right" if col != "task" else "left", no_wrap=True)
    for res, _ in evals:
        s = res.summary()
        norm = res.normalized_score(levels)  # 0: the random floor, 1: the reference level; None: no levels
        table.add_row(res.task_id, f"{int(s['episodes'])}", f"{s['return']:.2f}",
                      "-" if norm is None else f"{norm:.3f}", f"{s['success_once']:.3f}",
                      f"{s['success_at_end']:.3f}", f"{s['length']:.1f}", "yes" if res.official else "no")
    console.print(table)
    for res, _ in evals:
        if res.error:
            err_console.print(f"[red]{res.task_id}: {escape(res.error)}[/red]", highlight=False)
    if args.out:
        policies = {c.agent_spec() for c in cells}
        # a template names every run's policy: it replaces the first run's file name (an agent's own name is kept)
        name = args.name or (agent if evals[0][0].agent == cells[0].agent_spec() != agent else evals[0][0].agent)
        doc = make_results(evals, agent_name=name, description=args.description,
                           render=renderer_info(), budget=budget, code_url=args.code_url,
                           agent_config=_policies_config([c.agent_spec() for c in cells]),
                           policy=agent if all(_policy_spec(p) for p in policies) else None)
        write_json(doc, args.out)
        console.print(f"results written to {args.out}")
    if evals[0][0].video:
        console.print(f"video written to {evals[0][0].video}")
    return 1 if any(r.error for r, _ in evals) else 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    """``vrb evaluate --ray ADDRESS``: every (agent, task, training seed) cell as a Ray task, into one sweep file."""
    from rich.markup import escape

    from .evaluation.distributed import (RayUnavailableError, SweepError, evaluate_sweep, make_grid,
                                         summarize_cell)
    from .evaluation.leaderboard import normalized, task_levels

    given = [("--video", args.video), ("--name", args.name), ("--code-url", args.code_url),
             ("--obs-mode", args.obs_mode if args.obs_mode != "visual" else None),
             ("--force", args.force or None), *((flag, getattr(args, dest)) for dest, flag in BUDGET_FLAGS.values())]
    unsupported = [flag for flag, value in given if value is not None]
    if unsupported:
        console.print(f"[red]error:[/red] {', '.join(unsupported)} cannot be used with --ray (agents are named by "
                      "their spec, an existing sweep file is resumed, and the results document comes from "
                      "agent_results(..., budget=...); record videos with a single-run `vrb evaluate`)",
                      highlight=False)
        return 2
    if not args.out:
        console.print("[red]error:[/red] --ray needs --out SWEEP.json (the sweep file; an existing one is resumed)",
                      highlight=False)
        return 2

    def finished(entry: dict) -> None:
        s = summarize_cell(entry)
        ok = entry["status"] == "ok"
        what = f"return {s['return']:.2f}" if ok else f"[red]error: {escape(entry['error'])}[/red]"
        console.print(f"{escape(entry['agent'])} | {entry['task']} | seed {entry['seed']}: {what}", highlight=False)

    seeds = args.training_seed or [0]
    levels = _reference_levels(args.leaderboard_dir)  # before the sweep: a bad --leaderboard-dir fails fast
    try:
        doc = evaluate_sweep(args.agent, args.task, seeds, out=args.out, address=args.ray, episodes=args.episodes,
                             seed_base=args.seed_base, num_envs=args.num_envs, isolate=args.isolate,
                             act_timeout=args.act_timeout, description=args.description, num_cpus=args.cpus_per_cell,
                             max_retries=args.max_retries, retry_errors=args.retry_errors, on_cell=finished)
    except (RayUnavailableError, SweepError) as err:
        console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False)
        return 2
    grid = {c.key for c in make_grid(args.agent, args.task, seeds)}
    cells = [e for e in doc["cells"] if (e["agent"], e["task"], e["seed"]) in grid]
    table = Table(title=f"sweep ({len(cells)} cells): standard protocol")
    table.add_column("agent", overflow="fold")
    for col in ("task", "seed", "return", "normalized", "success_once", "length"):
        table.add_column(col, justify="left" if col == "task" else "right", no_wrap=True)
    for e in cells:
        s = summarize_cell(e)
        ok = e["status"] == "ok"
        norm = normalized(s["return"], task_levels(e["task"], levels)) if ok else None
        table.add_row(escape(e["agent"]), e["task"], str(e["seed"]), f"{s['return']:.2f}" if ok else "error",
                      "-" if norm is None else f"{norm:.3f}", f"{s['success_once']:.3f}" if ok else "",
                      f"{s['length']:.1f}" if ok else "")
    console.print(table)
    for e in cells:
        if e["error"] or e["agent_error"]:
            console.print(f"[red]{escape(e['agent'])} | {e['task']} | seed {e['seed']}: "
                          f"{escape(e['error'] or e['agent_error'])}[/red]", highlight=False)
    console.print(f"sweep written to {args.out}")
    return 1 if any(e["error"] or e["agent_error"] for e in cells) else 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Add a results file to the leaderboards (reported tier) and rebuild them.

    A file made with another VRB or MuJoCo version than the installed one is accepted (the board shows each
    entry's versions) with a note on stderr naming the differences. Exit code 0: accepted; 2: rejected.
    """
    from .evaluation.leaderboard import Leaderboard
    from .evaluation.results import ResultsError, read_json, version_differences

    board = Leaderboard(_leaderboard_dir(args.leaderboard_dir, writer="vrb submit"))
    try:
        name = board.submit(args.results, name=args.name)
    except ResultsError as err:
        err_console.print(f"[red]rejected:[/red] {escape(str(err))}", highlight=False, soft_wrap=True)
        return 2
    board.build()
    console.print(f"accepted as {name!r} (reported tier); leaderboards rebuilt in {board.root}")
    differences = version_differences(read_json(board.submission_path(name)))
    if differences:
        err_console.print(f"note: {args.results} was made with {', '.join(differences)}; the board shows each "
                          "entry's versions, and results compare best when made with the same ones",
                          highlight=False, soft_wrap=True)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Re-run a submission's policy on a held-out seed base (:func:`~.evaluation.leaderboard.verify`).

    Exit code 0: verified (recorded in ``verified.json``, leaderboards rebuilt) or a passing dry check
    (``--episodes`` other than the protocol's: never recorded); 1: not verified (an earlier record of the
    submission is then removed and the leaderboards rebuilt) or a failed dry check; 2: bad input.
    """
    from .evaluation import AgentLoadError
    from .evaluation.isolation import AgentCrashed
    from .evaluation.leaderboard import Leaderboard, verify
    from .evaluation.results import ResultsError

    board = Leaderboard(_leaderboard_dir(args.leaderboard_dir, writer="vrb verify"))
    try:
        report = verify(board, args.submission, args.policy, episodes=args.episodes, seed_base=args.seed_base)
    except (ResultsError, AgentLoadError) as err:
        raise CLIError(str(err), code=2) from None
    except AgentCrashed as err:  # the policy's process died or hung while loading
        raise CLIError(str(err), code=1) from None
    console.print_json(json.dumps(report))
    if report["dry_run"]:  # another episode count than the protocol's: reported, never recorded
        outcome = "passed" if report["passed"] else "[red]failed[/red]"
        console.print(f"[yellow]{args.submission}: dry check with {report['episodes']} episodes per re-run "
                      f"{outcome}; NOT recorded: only a re-run with the protocol's {report['protocol_episodes']} "
                      "episodes (leave out --episodes) can verify it[/yellow]", highlight=False)
        return 0 if report["passed"] else 1
    if report["verified"]:
        board.build()
        console.print(f"[green]{args.submission} verified[/green]")
        return 0
    if report["record_removed"]:  # an earlier verification no longer holds: the board shows it as reported
        board.build()
        console.print(f"[yellow]{args.submission} not verified: the re-run numbers differ; its earlier "
                      "verification is removed and it is reported again (leaderboards rebuilt)[/yellow]")
        return 1
    console.print(f"[yellow]{args.submission} not verified: the re-run numbers differ; it stays reported[/yellow]")
    return 1


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .evaluation.leaderboard import Leaderboard

    from .evaluation.results import ResultsError

    board = Leaderboard(_leaderboard_dir(args.leaderboard_dir, writer="vrb leaderboard build"))
    try:
        written = board.build()
    except ResultsError as err:  # an accepted file no longer validates: name it, no traceback
        raise CLIError(str(err), code=1) from None
    console.print(f"wrote {len(written)} files in {board.root}")
    return 0


def add_commands(sub) -> None:
    """Add the evaluation commands to the ``vrb`` parser."""
    p = sub.add_parser("evaluate", help="score an agent with the standard protocol")
    p.add_argument("--agent", required=True, action="append",
                   help="'random', 'zero', module:factory, or a .zip (SB3), .onnx, TorchScript or VRB policy file "
                        "(repeat for several: needs --ray; with --ray, {seed} and {task} are filled in per cell)")
    p.add_argument("--task", required=True, action="append", help="task id (repeat for several)")
    p.add_argument("--episodes", type=_count, default=None, help="episodes per task, >= 1 (default: the protocol's 50)")
    p.add_argument("--seed-base", type=_seed_base, default=None,
                   help="seed of episode 0, >= 0 (default: the public base)")
    p.add_argument("--training-seed", "--seed", dest="training_seed", type=_seed_base, action="append",
                   help="training seed(s) >= 0 the agent stands for")
    p.add_argument("--num-envs", type=_count, default=None, help="envs side by side, >= 1 (physics and rewards do not depend on it; llvmpipe may rasterize a few edge pixels one level apart at other tile positions)")
    p.add_argument("--obs-mode", choices=OBS_MODES, default="visual",
                   help="what the policy acts from: 'visual' (pixels and proprioception; the visual tracks) or "
                        "'state' (privileged state, no pixels; the leaderboards' state track, for reference). "
                        "Recorded as each run's obs_mode; it is not a settings override (default: visual)")
    p.add_argument("--isolate", action="store_true", help="run the agent in its own process with limits")
    p.add_argument("--act-timeout", type=_positive_seconds, default=60.0, help="seconds per act() call when isolated")
    p.add_argument("--video", default=None,
                   help=f"write a video of the first episode here: {_or_list(VIDEO_SUFFIXES)} (the first env's "
                        "policy camera, upscaled)")
    p.add_argument("--out", default=None, help="write a results file (JSON) here")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out (and --video) file")
    p.add_argument("--name", default=None, help="agent name in the results file")
    p.add_argument("--description", default="", help="agent description in the results file")
    p.add_argument("--leaderboard-dir", default=None,
                   help="leaderboards whose reference_scores.json gives the normalized scores (default: "
                        "./leaderboards, else the copy installed with the package)")
    g = p.add_argument_group("training budget (recorded with --out; vrb submit requires it for every entry but the "
                             "untrained floors: 0 for an agent that was not trained)")
    g.add_argument("--env-steps", dest="env_steps", type=_amount(int), default=None,
                   help="physics env-steps of training, every simulated control step counted")
    g.add_argument("--rendered-frames", dest="rendered_frames", type=_amount(int), default=None,
                   help="policy frames rendered during training")
    g.add_argument("--wall-clock-s", dest="wall_clock_s", type=_amount(float), default=None,
                   help="wall-clock seconds of training")
    g.add_argument("--train-num-envs", dest="train_num_envs", type=_count, default=None, help="envs used in training")
    g.add_argument("--hardware", default=None, help="hardware of the training run (default: this machine)")
    g.add_argument("--code-url", default=None, help="URL (and commit) of the agent's code")
    g = p.add_argument_group("distributed sweep (Ray)")
    g.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="evaluate every (agent, task, seed) cell as a Ray task: 'auto' (running cluster), 'local' "
                        "(start one here), HOST:PORT or ray://HOST:PORT; --out is then the sweep file (resumed)")
    g.add_argument("--cpus-per-cell", type=float, default=1.0, help="CPUs Ray reserves per cell (default 1)")
    g.add_argument("--max-retries", type=int, default=3, help="times Ray re-runs a cell whose worker died")
    g.add_argument("--retry-errors", action="store_true", help="re-run the cells the sweep file holds as errors")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("submit", help="validate a results file and add it to the leaderboards")
    p.add_argument("results", help="results JSON file")
    p.add_argument("--name", default=None, help="submission name (default: the agent name)")
    p.add_argument("--leaderboard-dir", default=None, metavar="DIR", help=BOARD_DIR_HELP)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("verify", help="re-evaluate a submission's policy (verified tier)")
    p.add_argument("submission", help="submission name")
    p.add_argument("--policy", required=True,
                   help="policy file or module:factory; {seed} (and {task}) name each training run's own policy, "
                        "as in vrb evaluate --agent, e.g. 'runs/mine-s{seed}/policy.pt'")
    p.add_argument("--episodes", type=_count, default=None,
                   help="episodes per re-run (default: the protocol's 50); any other count is a dry check, "
                        "reported but never recorded as verified")
    p.add_argument("--seed-base", type=_seed_base, default=None,
                   help="held-out seed base, >= 0 (default: drawn afresh, unknown to submitters; the report "
                        "records it)")
    p.add_argument("--leaderboard-dir", default=None, metavar="DIR", help=BOARD_DIR_HELP)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("leaderboard", help="leaderboard maintenance")
    lsub = p.add_subparsers(dest="leaderboard_command", required=True)
    b = lsub.add_parser("build", help="regenerate tables, page and plots")
    b.add_argument("--leaderboard-dir", default=None, metavar="DIR", help=BOARD_DIR_HELP)
    b.set_defaults(func=cmd_leaderboard)
