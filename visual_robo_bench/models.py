"""Robot-model resolution: robot name -> MJCF path.

Sources, in order (``tasks.md`` section 2.5):

1. an explicit directory: the ``model_dir`` argument, else the environment
   variable ``VRB_MODEL_DIR``. It is laid out like the offline copies
   (``<dir>/allegro_hand/right_hand.xml``, ``<dir>/aloha/aloha.xml``,
   ``<dir>/franka_emika_panda/panda.xml``, ``<dir>/unitree_go2/go2.xml``,
   ``<dir>/unitree_g1_23dof/g1_23dof_rev_1_0.xml``); a MuJoCo-Menagerie checkout
   works too (``wonik_allegro/right_hand.xml`` is accepted for the Allegro hand);
2. ``robot_descriptions``, at a commit pinned by VRB (passed through
   ``ROBOT_DESCRIPTION_COMMIT`` around the description module's first import).
   The first use clones the source repository into ``ROBOT_DESCRIPTIONS_CACHE``
   (default ``~/.cache/robot_descriptions``) with a progress bar; later uses
   read the cache.

The Shadow Hand always comes from the installed ``gymnasium-robotics`` package
(its bundled hand model), so it needs no download and no directory.

Every failure raises one :class:`ModelNotFoundError` that says what to do; a git
or network traceback never reaches the user.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "VRB_MODEL_DIR"
#: Set to 1 to forbid downloads (``robot_descriptions`` is then never imported).
OFFLINE_ENV_VAR = "VRB_OFFLINE"

#: Commits pinned by VRB (robot_descriptions 3.3.0's own defaults, checked to hold the files VRB reads).
MENAGERIE_COMMIT = "feadf76d42f8a2162426f7d226a3b539556b3bf5"
UNITREE_ROS_COMMIT = "267182b8521c8d6a631bab1fe63836873237a525"


class ModelNotFoundError(FileNotFoundError):
    """A robot model is unavailable (not in the named directory, not downloadable)."""


@dataclass(frozen=True)
class RobotSource:
    """Where one robot's model comes from.

    Attributes:
        robot: VRB's robot name.
        offline: Candidate paths relative to an explicit model directory (first existing wins).
        module: ``robot_descriptions`` module name.
        repository: The source repository that module clones.
        commit: The commit VRB pins for it.
        package_file: The MJCF file inside the module's ``PACKAGE_PATH``.
    """

    robot: str
    offline: tuple[str, ...]
    module: str = ""
    repository: str = ""
    commit: str = ""
    package_file: str = ""


ROBOTS: dict[str, RobotSource] = {
    "allegro_hand": RobotSource("allegro_hand", ("allegro_hand/right_hand.xml", "wonik_allegro/right_hand.xml"),
                                "allegro_hand_mj_description", "mujoco_menagerie", MENAGERIE_COMMIT,
                                "right_hand.xml"),
    "aloha": RobotSource("aloha", ("aloha/aloha.xml",), "aloha_mj_description", "mujoco_menagerie",
                         MENAGERIE_COMMIT, "aloha.xml"),
    "franka_emika_panda": RobotSource("franka_emika_panda", ("franka_emika_panda/panda.xml",),
                                      "panda_mj_description", "mujoco_menagerie", MENAGERIE_COMMIT, "panda.xml"),
    "unitree_go2": RobotSource("unitree_go2", ("unitree_go2/go2.xml",), "go2_mj_description", "mujoco_menagerie",
                               MENAGERIE_COMMIT, "go2.xml"),
    "unitree_g1_23dof": RobotSource("unitree_g1_23dof", ("unitree_g1_23dof/g1_23dof_rev_1_0.xml",),
                                    "g1_description", "unitree_ros", UNITREE_ROS_COMMIT, "g1_23dof_rev_1_0.xml"),
    "shadow_hand": RobotSource("shadow_hand", ()),
}


def _offline_hint(robot: str) -> str:
    src = ROBOTS[robot]
    return (f"To work offline, set {ENV_VAR} (or pass model_dir=) to a directory holding "
            f"'{src.offline[0]}' and its meshes; otherwise the 'robot_descriptions' package downloads "
            f"{src.repository} at commit {src.commit[:12]} (needs network access and the git executable) "
            "into ROBOT_DESCRIPTIONS_CACHE (default ~/.cache/robot_descriptions).")


def shadow_hand_dir() -> Path:
    """The Gymnasium-Robotics hand folder, found without importing ``gymnasium_robotics``."""
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError("robot 'shadow_hand': the 'gymnasium-robotics' package is not installed; "
                                 "pip install 'gymnasium-robotics>=1.4.2,<2'")
    return Path(list(spec.submodule_search_locations)[0]) / "envs" / "assets" / "hand"


def _asset_files(xml_path: Path, seen: set[Path] | None = None, dirs: dict[str, Path] | None = None,
                 base: Path | None = None) -> list[Path]:
    """Files an MJCF file references (includes, meshes, textures, height fields), recursively.

    As in MuJoCo, paths resolve against the main file's directory and its
    compiler directories, which included files inherit.
    """
    seen = set() if seen is None else seen
    xml_path = xml_path.resolve()
    if xml_path in seen:
        return []
    seen.add(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        raise ModelNotFoundError(f"model file {xml_path} is not valid XML ({err}); the model directory is corrupt")
    base = xml_path.parent if base is None else base
    dirs = dict(dirs) if dirs else {"mesh": base, "texture": base, "hfield": base, "skin": base}
    for comp in root.iter("compiler"):
        assetdir = comp.get("assetdir")
        if assetdir:
            dirs = {k: base / assetdir for k in dirs}
        if comp.get("meshdir"):
            dirs["mesh"] = dirs["skin"] = base / comp.get("meshdir")
        if comp.get("texturedir"):
            dirs["texture"] = base / comp.get("texturedir")
    files: list[Path] = []
    for el in root.iter():
        f = el.get("file")
        if not f:
            continue
        if el.tag == "include":
            inc = base / f
            files.append(inc)
            if inc.exists():
                files += _asset_files(inc, seen, dirs, base)
        elif el.tag in dirs:
            files.append(dirs[el.tag] / f)
    return files


def check_model_files(xml_path: str | os.PathLike) -> Path:
    """Check that ``xml_path`` and every file it references exist.

    Raises:
        ModelNotFoundError: naming the first missing file.
    """
    path = Path(xml_path)
    if not path.is_file():
        raise ModelNotFoundError(f"missing model file {path}")
    missing = [p for p in _asset_files(path) if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ModelNotFoundError(f"the model {path} is incomplete: missing file {missing[0]}{more}")
    return path


def _from_directory(robot: str, directory: Path, origin: str) -> Path:
    src = ROBOTS[robot]
    if not directory.is_dir():
        raise ModelNotFoundError(f"robot {robot!r}: the model directory {directory} (from {origin}) does not exist")
    for rel in src.offline:
        if (directory / rel).is_file():
            return check_model_files(directory / rel)
    raise ModelNotFoundError(
        f"robot {robot!r}: missing file {directory / src.offline[0]} in the model directory {directory} "
        f"(from {origin}); the directory must be laid out like the offline copies (e.g. '{src.offline[0]}')")


def _from_robot_descriptions(robot: str) -> Path:
    src = ROBOTS[robot]
    hint = _offline_hint(robot)
    if os.environ.get(OFFLINE_ENV_VAR, "") not in ("", "0"):
        raise ModelNotFoundError(f"robot {robot!r} is not available offline ({OFFLINE_ENV_VAR} is set and "
                                 f"{ENV_VAR} is not). {hint}")
    cache = Path(os.path.expanduser(os.environ.get("ROBOT_DESCRIPTIONS_CACHE", "~/.cache/robot_descriptions")))
    target = cache / f"{src.repository}-{src.commit}" / src.repository
    name = f"robot_descriptions.{src.module}"
    fresh = not target.exists()
    if fresh:
        print(f"visual_robo_bench: downloading robot {robot!r} ({src.repository} at {src.commit[:12]}) with "
              f"robot_descriptions into {target}; this happens once.", file=sys.stderr)
    old = os.environ.get("ROBOT_DESCRIPTION_COMMIT")
    os.environ["ROBOT_DESCRIPTION_COMMIT"] = src.commit
    try:
        sys.modules.pop(name, None)  # the commit is read when the module is first imported
        module = importlib.import_module(name)
        package = Path(module.PACKAGE_PATH)
    except BaseException as err:  # noqa: BLE001 - ImportError (no git), GitCommandError, network errors
        if isinstance(err, KeyboardInterrupt):
            raise
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        if fresh and target.parent.exists():  # a failed first clone leaves an unusable folder behind
            shutil.rmtree(target.parent, ignore_errors=True)
        raise ModelNotFoundError(
            f"robot {robot!r} could not be obtained through the 'robot_descriptions' package "
            f"({type(err).__name__}: {reason}). {hint}") from None
    finally:
        if old is None:
            os.environ.pop("ROBOT_DESCRIPTION_COMMIT", None)
        else:
            os.environ["ROBOT_DESCRIPTION_COMMIT"] = old
    return check_model_files(package / src.package_file)


def resolve_model(robot: str, model_dir: str | os.PathLike | None = None) -> Path:
    """The MJCF path of ``robot``.

    Args:
        robot: One of :data:`ROBOTS` (``"allegro_hand"``, ``"aloha"``,
            ``"franka_emika_panda"``, ``"unitree_go2"``, ``"unitree_g1_23dof"``,
            ``"shadow_hand"``).
        model_dir: Directory with the offline layout; default ``$VRB_MODEL_DIR``,
            then ``robot_descriptions``.

    Raises:
        ModelNotFoundError: the model is unavailable or incomplete; the message
            names the robot, ``VRB_MODEL_DIR`` and ``robot_descriptions`` (or the
            missing file).
    """
    if robot not in ROBOTS:
        raise KeyError(f"unknown robot {robot!r}; known robots: {sorted(ROBOTS)}")
    if robot == "shadow_hand":
        return check_model_files(shadow_hand_dir() / "manipulate_block.xml")
    if model_dir is not None and str(model_dir) != "":
        return _from_directory(robot, Path(model_dir).expanduser(), "model_dir")
    env = os.environ.get(ENV_VAR, "")
    if env:
        return _from_directory(robot, Path(env).expanduser(), f"${ENV_VAR}")
    return _from_robot_descriptions(robot)


def _xml_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def package_provenance(robot: str, package: str, path: str | Path) -> dict[str, str]:
    """Where a model shipped inside an installed Python package came from: the package and its version, the
    file and a hash of its XML (e.g. gymnasium's ``hopper.xml``, dm_control's ``walker.xml``).

    Args:
        robot: The robot's name, e.g. ``"hopper"``.
        package: The distribution that ships the file, e.g. ``"gymnasium"`` or ``"dm_control"``.
        path: The model file.
    """
    source = package
    try:
        from importlib.metadata import version

        source += f" {version(package)}"
    except Exception:  # noqa: BLE001 - metadata missing in odd installs
        pass
    return {"robot": robot, "source": source, "commit": "", "path": str(path), "xml_sha256": _xml_digest(path)}


def provenance(robot: str, path: Path) -> dict[str, str]:
    """Where a resolved model came from: source, pinned commit and a hash of its XML."""
    src = ROBOTS[robot]
    if robot == "shadow_hand":
        return package_provenance(robot, "gymnasium-robotics", path)
    digest = _xml_digest(path)
    in_cache = re.search(rf"{src.repository}-([0-9a-f]{{40}})", str(path))
    source = "robot_descriptions" if in_cache else "model_dir"
    return {"robot": robot, "source": source, "commit": in_cache.group(1) if in_cache else "",
            "path": str(path), "xml_sha256": digest}
