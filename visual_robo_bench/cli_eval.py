"""``vrb evaluate``, ``vrb submit``, ``vrb verify`` and ``vrb leaderboard build``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


def _leaderboard_dir(path: str | None) -> Path:
    if path:
        return Path(path)
    here = Path.cwd() / "leaderboards"
    if here.is_dir():
        return here
    raise SystemExit("error: no leaderboards/ directory here; pass --leaderboard-dir")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate
    from .evaluation.results import make_results, write_json
    from .render.gl import renderer_info

    tasks = args.task
    evals = []
    for task in tasks:
        for seed in args.training_seed or [0]:
            res = evaluate(args.agent, task, episodes=args.episodes, seed_base=args.seed_base,
                           num_envs=args.num_envs, isolate=args.isolate, act_timeout=args.act_timeout,
                           video=args.video if len(evals) == 0 else None)
            evals.append((res, seed))
    table = Table(title=f"{args.agent}: standard protocol")
    for col in ("task", "episodes", "return", "success_once", "success_at_end", "length", "official"):
        table.add_column(col, justify="right" if col != "task" else "left", no_wrap=True)
    for res, _ in evals:
        s = res.summary()
        table.add_row(res.task_id, f"{int(s['episodes'])}", f"{s['return']:.2f}", f"{s['success_once']:.3f}",
                      f"{s['success_at_end']:.3f}", f"{s['length']:.1f}", "yes" if res.official else "no")
    console.print(table)
    for res, _ in evals:
        if res.error:
            console.print(f"[red]{res.task_id}: {res.error}[/red]")
    if args.out:
        doc = make_results(evals, agent_name=args.name or evals[0][0].agent, description=args.description,
                           render=renderer_info(), policy=args.agent if Path(str(args.agent)).exists() else None)
        write_json(doc, args.out)
        console.print(f"results written to {args.out}")
    if evals[0][0].video:
        console.print(f"video written to {evals[0][0].video}")
    return 1 if any(r.error for r, _ in evals) else 0


def cmd_submit(args: argparse.Namespace) -> int:
    from .evaluation.leaderboard import Leaderboard
    from .evaluation.results import ResultsError

    board = Leaderboard(_leaderboard_dir(args.leaderboard_dir))
    try:
        name = board.submit(args.results, name=args.name)
    except ResultsError as err:
        console.print(f"[red]rejected:[/red] {err}", highlight=False)
        return 2
    board.build()
    console.print(f"accepted as {name!r} (reported tier); leaderboards rebuilt in {board.root}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .evaluation.leaderboard import Leaderboard, verify
    from .evaluation.results import ResultsError

    board = Leaderboard(_leaderboard_dir(args.leaderboard_dir))
    try:
        report = verify(board, args.submission, args.policy, episodes=args.episodes)
    except ResultsError as err:
        console.print(f"[red]error:[/red] {err}", highlight=False)
        return 2
    console.print_json(json.dumps(report))
    if report["verified"]:
        board.build()
        console.print(f"[green]{args.submission} verified[/green]")
        return 0
    console.print(f"[yellow]{args.submission} not verified: the re-run numbers differ; it stays reported[/yellow]")
    return 1


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .evaluation.leaderboard import Leaderboard

    board = Leaderboard(_leaderboard_dir(args.leaderboard_dir))
    written = board.build()
    console.print(f"wrote {len(written)} files in {board.root}")
    return 0


def add_commands(sub) -> None:
    """Add the evaluation commands to the ``vrb`` parser."""
    p = sub.add_parser("evaluate", help="score an agent with the standard protocol")
    p.add_argument("--agent", required=True,
                   help="'random', 'zero', module:factory, or a .zip (SB3), .onnx, TorchScript or VRB policy file")
    p.add_argument("--task", required=True, action="append", help="task id (repeat for several)")
    p.add_argument("--episodes", type=int, default=None, help="episodes per task (default: the protocol's 50)")
    p.add_argument("--seed-base", type=int, default=None, help="seed of episode 0 (default: the public base)")
    p.add_argument("--training-seed", type=int, action="append", help="training seed(s) the agent stands for")
    p.add_argument("--num-envs", type=int, default=None, help="envs side by side (results do not depend on it)")
    p.add_argument("--isolate", action="store_true", help="run the agent in its own process with limits")
    p.add_argument("--act-timeout", type=float, default=60.0, help="seconds per act() call when isolated")
    p.add_argument("--video", default=None, help="write an mp4 of the first episode")
    p.add_argument("--out", default=None, help="write a results file (JSON) here")
    p.add_argument("--name", default=None, help="agent name in the results file")
    p.add_argument("--description", default="", help="agent description in the results file")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("submit", help="validate a results file and add it to the leaderboards")
    p.add_argument("results", help="results JSON file")
    p.add_argument("--name", default=None, help="submission name (default: the agent name)")
    p.add_argument("--leaderboard-dir", default=None)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("verify", help="re-evaluate a submission's policy (verified tier)")
    p.add_argument("submission", help="submission name")
    p.add_argument("--policy", required=True, help="policy file or module:factory")
    p.add_argument("--episodes", type=int, default=None)
    p.add_argument("--leaderboard-dir", default=None)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("leaderboard", help="leaderboard maintenance")
    lsub = p.add_subparsers(dest="leaderboard_command", required=True)
    b = lsub.add_parser("build", help="regenerate tables, page and plots")
    b.add_argument("--leaderboard-dir", default=None)
    b.set_defaults(func=cmd_leaderboard)
