"""Helpers shared by the reference agents: typed config overrides, run directories, atomic
checkpoints, CSV logs and the learning-curve plot. Nothing here knows about a particular algorithm.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import json
import os
import typing
from pathlib import Path
from typing import Any

from ..fileio import atomic_open

# ------------------------------------------------------------------------- typed config overrides


class ConfigError(ValueError):
    """A bad config key or value (unknown key, wrong type, out of range)."""


def _parse_value(name: str, hint: Any, raw: Any) -> Any:
    """Convert ``raw`` (a string from the command line, or a Python value) to the type ``hint``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if type(None) in args and (raw is None or (isinstance(raw, str) and raw.strip().lower() in ("none", "null"))):
            return None
        inner = [a for a in args if a is not type(None)]
        return _parse_value(name, inner[0], raw)
    if not isinstance(raw, str):
        if origin is tuple:
            return tuple(_parse_value(name, args[0] if args else Any, x) for x in raw)
        if hint is float and isinstance(raw, int) and not isinstance(raw, bool):
            return float(raw)
        return raw
    text = raw.strip()
    try:
        if hint is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        if hint is str:
            return text
        if origin is tuple:
            body = text.strip("()[] ")
            items = [x for x in body.replace(",", " ").split()] if body else []
            elem = args[0] if args else str
            return tuple(_parse_value(name, elem, x) for x in items)
    except ValueError:
        raise ConfigError(f"config key {name!r} expects {getattr(hint, '__name__', hint)}, got {raw!r}") from None
    return text


def apply_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    """A copy of the frozen dataclass ``cfg`` with ``overrides`` (values may be strings).

    Raises:
        ConfigError: For a key that is not a field (naming the closest ones) or a value that does
            not parse as the field's type.
    """
    hints = typing.get_type_hints(type(cfg))
    names = [f.name for f in dataclasses.fields(cfg)]
    changes = {}
    for key, raw in overrides.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(f"unknown config key {key!r} for {type(cfg).__name__}.{hint} "
                              f"Valid keys: {', '.join(names)}")
        changes[key] = _parse_value(key, hints[key], raw)
    try:
        return dataclasses.replace(cfg, **changes)
    except (TypeError, ValueError) as err:
        raise ConfigError(str(err)) from None


def parse_set_args(items: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}`` (the ``--set`` command-line form)."""
    out: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


def env_kwargs(cfg: Any) -> dict[str, Any]:
    """Env keywords of an agent config's ``image_size``, ``max_episode_steps`` and ``nthread`` (``None``: the
    task's defaults)."""
    kwargs: dict[str, Any] = {}
    if cfg.image_size is not None:
        kwargs["image_size"] = tuple(cfg.image_size)
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    if cfg.nthread is not None:
        kwargs["nthread"] = cfg.nthread
    return kwargs


# ------------------------------------------------------------------------- files


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: never a half-written file."""
    import torch

    with atomic_open(path) as f:
        torch.save(obj, f)


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a synced temporary file in the same folder and a rename."""
    with atomic_open(path) as f:
        f.write(payload)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    atomic_write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


class CSVLogger:
    """Append rows of scalars to ``progress.csv``; the columns are fixed by the first row.

    On resume, ``truncate_after(epoch)`` drops rows logged after the checkpoint that is resumed,
    so a run that was killed and resumed has each epoch exactly once.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.fields: list[str] | None = None
        if self.path.exists():
            with open(self.path, newline="") as f:
                reader = csv.reader(f)
                self.fields = next(reader, None)

    def truncate_after(self, epoch: int, key: str = "epoch") -> None:
        if not self.path.exists():
            return
        with open(self.path, newline="") as f:
            rows = list(csv.DictReader(f))
        keep = [r for r in rows if r.get(key) not in (None, "") and int(float(r[key])) <= epoch]
        fields = self.fields or (list(rows[0]) if rows else [])
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(keep)
        os.replace(tmp, self.path)

    def log(self, row: dict[str, Any]) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_learning_curve(csv_path: str | os.PathLike, out_png: str | os.PathLike, title: str = "",
                        y: str = "episode_return", baseline: float | None = None) -> bool:
    """Plot ``y`` against wall-clock minutes and against env steps (two panels) into ``out_png``.

    Returns False (and writes nothing) when no row has a value for ``y`` yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in read_csv(csv_path) if r.get(y) not in (None, "", "nan")]
    if not rows:
        return False
    ys = [float(r[y]) for r in rows]
    minutes = [float(r["wall_s"]) / 60 for r in rows]
    steps = [float(r["env_steps"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, xs, label in ((axes[0], minutes, "wall-clock (min)"), (axes[1], steps, "physics env steps")):
        ax.plot(xs, ys, lw=1.5, label="nominal episode return (mean of last 100)")
        if baseline is not None:
            ax.axhline(baseline, color="grey", ls="--", lw=1, label="random policy")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("return")
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = Path(out_png).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out_png)
    return True


class IncompatibleCheckpoint(ValueError):
    """A checkpoint or policy file of another agent, task or format version."""


def load_agent_file(path: str | os.PathLike, agent: str, label: str | None = None,
                    mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint or policy file of ``agent`` (``torch.save`` of a dict with an ``"agent"`` entry).

    ``mmap=True`` maps the file's tensors instead of reading them (checkpoints holding a replay buffer:
    gigabytes that need not be held twice).

    Raises:
        FileNotFoundError: No such file.
        IncompatibleCheckpoint: Unreadable, or a file of another agent.
    """
    import torch

    path = Path(path)
    label = label or agent
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint or policy file: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except Exception as err:  # noqa: BLE001 - any unreadable file is a clear user error
        raise IncompatibleCheckpoint(f"{path} is not a readable {label} file: {type(err).__name__}: {err}") from None
    if not isinstance(data, dict) or data.get("agent") != agent:
        raise IncompatibleCheckpoint(f"{path} is not {'an' if label[0] in 'AEIOUaeiou' else 'a'} {label} "
                                     "checkpoint or policy file")
    return data


def check_agent_file(data: dict[str, Any], task: str | None, format_version: int, label: str) -> None:
    """Refuse a file of another format version or (when ``task`` is given) of another task."""
    version = data.get("format_version")
    if version != format_version:
        raise IncompatibleCheckpoint(f"{label} file format version {version!r} is not supported (this code reads "
                                     f"version {format_version}); retrain or use the matching release")
    if task is not None and data.get("task") != task:
        raise IncompatibleCheckpoint(f"the file was trained on {data.get('task')!r}, not {task!r}")


def episode_stats(episodes) -> dict[str, float]:
    """Mean return, length and success over ``(return, length, success)`` tuples (NaN when empty)."""
    if not episodes:
        return {"episode_return": float("nan"), "episode_length": float("nan"), "success_rate": float("nan")}
    import numpy as np

    r, n, s = zip(*episodes)
    return {"episode_return": float(np.mean(r)), "episode_length": float(np.mean(n)),
            "success_rate": float(np.mean(s))}


def policy_image_keys(env: Any) -> list[str]:
    """Observation keys of a VRB vector env's policy cameras, in its ``policy_cameras`` order (``pixels`` first)."""
    env = env.unwrapped
    return [env.image_key(i) for i in range(len(env.cfg.policy_cameras))]


def images_chw(pixels: Any, chw: tuple[int, int, int], what: str = "pixels", task: str = "") -> tuple[Any, bool]:
    """A policy input's images as contiguous ``(n, C, H, W)`` uint8, and whether one image was given.

    Accepts ``(n, C, H, W)``, ``(n, H, W, C)`` or one such image without the batch axis.

    Raises:
        ValueError: Any other shape, naming the expected ones (e.g. a policy trained at another image size).
    """
    import numpy as np

    pixels = np.asarray(pixels)
    given = pixels.shape
    C, H, W = chw
    single = pixels.ndim == 3
    if single:
        pixels = pixels[None]
    if pixels.ndim == 4 and pixels.shape[1:] == (C, H, W):
        out = pixels
    elif pixels.ndim == 4 and pixels.shape[1:] == (H, W, C):
        out = pixels.transpose(0, 3, 1, 2)
    else:
        raise ValueError(f"{what} must be (n, {C}, {H}, {W}) or (n, {H}, {W}, {C}) (or one such image)"
                         f"{' for ' + task if task else ''} as trained (image size {H}x{W}), got {given}")
    return np.ascontiguousarray(out, dtype=np.uint8), single

