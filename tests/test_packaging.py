"""Packaging: what the wheel installs and what the sdist holds.

``tasks/``, ``assets/`` and ``leaderboards/`` sit at the top of the repository but install inside the package's
namespace (``visual_robo_bench/tasks``, ``.../assets``, ``.../leaderboards``), never as top-level folders of
site-packages; an installed package reads its leaderboards outside a checkout and never writes to them. The
builds run offline (no build isolation, no index), in a copy of the repository: an in-place build would leave
``build/`` and ``*.egg-info`` in the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: What a build of the repository reads (pyproject.toml, MANIFEST.in and the folders they name).
SOURCE_ITEMS = ("pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "CONTRIBUTING.md", "visual_robo_bench",
                "tasks", "assets", "leaderboards", "tests", "scripts", "policies", "docs")

#: What the test suite reads from a checkout besides the package: the sdist must hold all of it.
SDIST_FOLDERS = ("tests", "scripts", "policies", "leaderboards", "docs")


def _copy_source(dst: Path) -> Path:
    """A copy of the repository's build inputs at ``dst``, without bytecode."""
    for item in SOURCE_ITEMS:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dst / item, ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]"))
        else:
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / item)
    return dst


def _files(root: Path, folder: str) -> set[str]:
    """The files under ``root/folder`` (no bytecode), as paths relative to ``root``."""
    return {p.relative_to(root).as_posix() for p in (root / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")}


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, str]:
    """``(source copy, wheel, build log)``: ``pip wheel`` of a copy of the repository, offline."""
    source = _copy_source(tmp_path_factory.mktemp("wheel-src") / "visual_robo_bench")
    out = tmp_path_factory.mktemp("wheel")
    proc = _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                 "--no-index", "-v", "-w", str(out)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = out.glob("visual_robo_bench-*.whl")
    return source, wheel, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Path:
    """The wheel installed into a folder of its own (put first on PYTHONPATH to use it)."""
    target = tmp_path_factory.mktemp("site-packages")
    proc = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target),
                 str(built[1])])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return target


def _installed_python(target: Path, code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` with the wheel installed at ``target`` (shadowing any other install) in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return _run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env)


def test_wheel_installs_tasks_assets_and_leaderboards_inside_the_package(built):
    source, wheel, log = built
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"visual_robo_bench"}, sorted(tops)
    (dist_info,) = {t for t in tops if t.endswith(".dist-info")}
    assert zipfile.ZipFile(wheel).read(f"{dist_info}/top_level.txt").decode().split() == ["visual_robo_bench"]
    modules = {f for f in _files(source, "visual_robo_bench") if f.endswith(".py")}
    assert not modules - names, f"modules missing from the wheel: {sorted(modules - names)}"
    for folder in ("tasks", "leaderboards"):  # every file: leaderboards' json, md, html and png
        missing = {f"visual_robo_bench/{f}" for f in _files(source, folder)} - names
        assert not missing, f"{folder}/ files missing from the wheel: {sorted(missing)}"
    assert {"visual_robo_bench/tasks/locomotion.py", "visual_robo_bench/assets/__init__.py",
            "visual_robo_bench/leaderboards/config.json", "visual_robo_bench/leaderboards/reference_scores.json",
            "visual_robo_bench/leaderboards/README.md", "visual_robo_bench/leaderboards/index.html",
            "visual_robo_bench/leaderboards/submissions/zero.json",
            "visual_robo_bench/leaderboards/references/sdpg-walker-v1.json",
            "visual_robo_bench/leaderboards/plots/VRB_Walker-v1.png"} <= names
    assert not any(n.startswith(("visual_robo_bench/tests/", "visual_robo_bench/policies/")) for n in names)
    # leaderboards/plots etc. are package data, not "packages absent from the packages configuration"
    assert "absent from the `packages` configuration" not in log


def test_installed_wheel_reads_its_leaderboards_and_never_writes_them(installed, tmp_path):
    """Outside a checkout (no ./leaderboards) the installed copy gives the normalized scores of vrb evaluate;
    submit, verify and leaderboard build refuse with what to do instead of writing into site-packages."""
    board = installed / "visual_robo_bench" / "leaderboards"
    before = {p: p.stat().st_mtime_ns for p in board.rglob("*")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "r.json").write_text("{}")
    proc = _installed_python(installed, """
        import json
        from visual_robo_bench.cli_eval import _leaderboard_dir
        from visual_robo_bench.evaluation.leaderboard import default_leaderboard_dir, installed_leaderboard_dir
        print(json.dumps([str(installed_leaderboard_dir()), str(default_leaderboard_dir()),
                          str(_leaderboard_dir(None, writer=None))]))
        """, elsewhere)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == [str(board)] * 3
    for argv in (["leaderboard", "build"], ["submit", "r.json"], ["verify", "zero", "--policy", "zero"]):
        proc = _installed_python(installed, f"import sys\nfrom visual_robo_bench.cli import main\n"
                                            f"sys.exit(main({argv!r}))", elsewhere)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        assert ("no leaderboards/ directory here" in proc.stderr and "writes to the leaderboards" in proc.stderr
                and "clone of the visual_robo_bench repository" in proc.stderr
                and "--leaderboard-dir DIR" in proc.stderr), proc.stderr
    assert {p: p.stat().st_mtime_ns for p in board.rglob("*")} == before
    assert sorted(p.name for p in elsewhere.iterdir()) == ["r.json"]

    proc = _installed_python(installed, """
        import sys
        from visual_robo_bench.cli import main
        sys.exit(main(["evaluate", "--agent", "zero", "--task", "VRB/Hopper-v1", "--episodes", "1",
                       "--num-envs", "1"]))
        """, elsewhere)
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = next(line for line in proc.stdout.splitlines() if "normalized" in line)
    columns = [c.strip() for c in header.strip("┃ ").split("┃")]
    row = next(line for line in proc.stdout.splitlines() if "VRB/Hopper-v1" in line)
    cells = dict(zip(columns, (c.strip() for c in row.strip("│ ").split("│"))))
    level = json.loads((board / "reference_scores.json").read_text())["tasks"]["VRB/Hopper-v1"]
    expected = (float(cells["return"]) - level["random"]) / (level["reference"] - level["random"])
    assert float(cells["normalized"]) == pytest.approx(expected, abs=2e-3)


def test_sdist_holds_what_the_tests_read(tmp_path):
    """tests/, the scripts and policies they use, leaderboards/ and docs/ (README images) are in the sdist."""
    source = _copy_source(tmp_path / "src")
    out = tmp_path / "dist"
    proc = _run([sys.executable, "-c", f"from setuptools import build_meta\nbuild_meta.build_sdist({str(out)!r})"],
                cwd=source)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,) = out.glob("visual_robo_bench-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    expected = set().union(*(_files(source, folder) for folder in SDIST_FOLDERS))
    expected |= {"pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "CONTRIBUTING.md",
                 "tasks/locomotion.py", "visual_robo_bench/cli_eval.py"}
    assert not expected - names, f"missing from the sdist: {sorted(expected - names)}"
    assert "policies/sdpg-walker-v1.pt" in names and "scripts/reference_scores.py" in names
