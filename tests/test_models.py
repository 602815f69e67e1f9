"""Robot-model resolution and the mesh level of detail (no downloads)."""

from __future__ import annotations

import builtins
import importlib
import shutil
from pathlib import Path

import mujoco
import numpy as np
import pytest

from visual_robo_bench import models
from visual_robo_bench.core import lod
from visual_robo_bench.models import ModelNotFoundError, resolve_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "models"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="offline model copies (../shared/models) not present")

OFFLINE_FILES = {
    "allegro_hand": "allegro_hand/right_hand.xml",
    "aloha": "aloha/aloha.xml",
    "franka_emika_panda": "franka_emika_panda/panda.xml",
    "unitree_go2": "unitree_go2/go2.xml",
    "unitree_g1_23dof": "unitree_g1_23dof/g1_23dof_rev_1_0.xml",
}


@needs_shared
@pytest.mark.parametrize("robot", sorted(OFFLINE_FILES))
def test_explicit_directory(robot, monkeypatch):
    monkeypatch.delenv(models.ENV_VAR, raising=False)
    path = resolve_model(robot, model_dir=SHARED)
    assert path == SHARED / OFFLINE_FILES[robot]
    mujoco.MjModel.from_xml_path(str(path))  # the resolved file loads


@needs_shared
def test_env_var_directory_and_kwarg_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv(models.ENV_VAR, str(SHARED))
    assert resolve_model("franka_emika_panda") == SHARED / "franka_emika_panda" / "panda.xml"
    # an explicit argument wins over the variable
    with pytest.raises(ModelNotFoundError, match="model_dir"):
        resolve_model("franka_emika_panda", model_dir=tmp_path)


def test_shadow_hand_comes_from_gymnasium_robotics(monkeypatch, tmp_path):
    monkeypatch.setenv(models.ENV_VAR, str(tmp_path))  # ignored for the Shadow Hand
    monkeypatch.setenv(models.OFFLINE_ENV_VAR, "1")
    path = resolve_model("shadow_hand")
    assert path.name == "manipulate_block.xml" and "gymnasium_robotics" in str(path)
    assert (path.parent.parent / "LICENSE.md").is_file()  # the hand model's notice ships with it
    prov = models.provenance("shadow_hand", path)
    assert prov["source"].startswith("gymnasium-robotics") and len(prov["xml_sha256"]) == 16


def test_missing_robot_in_directory_names_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv(models.ENV_VAR, raising=False)
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("allegro_hand", model_dir=tmp_path)
    assert "allegro_hand/right_hand.xml" in str(err.value)


@needs_shared
def test_incomplete_directory_names_the_missing_mesh(tmp_path, monkeypatch):
    monkeypatch.delenv(models.ENV_VAR, raising=False)
    shutil.copytree(SHARED / "allegro_hand", tmp_path / "allegro_hand")
    (tmp_path / "allegro_hand" / "stl" / "link_3.0_tip.stl").unlink()
    with pytest.raises(ModelNotFoundError, match=r"missing file .*link_3\.0_tip\.stl"):
        resolve_model("allegro_hand", model_dir=tmp_path)


def test_corrupt_xml_is_reported(tmp_path, monkeypatch):
    monkeypatch.delenv(models.ENV_VAR, raising=False)
    (tmp_path / "franka_emika_panda").mkdir()
    (tmp_path / "franka_emika_panda" / "panda.xml").write_text("<mujoco><worldbody>")
    with pytest.raises(ModelNotFoundError, match="not valid XML"):
        resolve_model("franka_emika_panda", model_dir=tmp_path)


def _assert_offline_message(msg: str, robot: str) -> None:
    assert repr(robot) in msg
    assert "VRB_MODEL_DIR" in msg
    assert "robot_descriptions" in msg


@pytest.mark.parametrize("exc", [ImportError("Failed to initialize: Bad git executable."),
                                 RuntimeError("Cmd('git') failed due to: exit code(128) stderr: could not resolve host")])
def test_no_network_error_is_one_clear_message(exc, monkeypatch, tmp_path):
    """A failed clone (no git, no network) becomes one ModelNotFoundError, never a git traceback."""
    monkeypatch.delenv(models.ENV_VAR, raising=False)
    monkeypatch.delenv(models.OFFLINE_ENV_VAR, raising=False)
    monkeypatch.setenv("ROBOT_DESCRIPTIONS_CACHE", str(tmp_path))
    seen = {}
    real_import = importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name.startswith("robot_descriptions"):
            seen["name"] = name
            import os

            seen["commit"] = os.environ.get("ROBOT_DESCRIPTION_COMMIT")
            raise exc
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(models.importlib, "import_module", fake_import)
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("unitree_go2")
    _assert_offline_message(str(err.value), "unitree_go2")
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained git traceback
    assert seen == {"name": "robot_descriptions.go2_mj_description", "commit": models.MENAGERIE_COMMIT}
    assert "ROBOT_DESCRIPTION_COMMIT" not in __import__("os").environ  # restored
    assert not any(tmp_path.iterdir())  # nothing downloaded


def test_g1_uses_unitree_ros_commit(monkeypatch, tmp_path):
    monkeypatch.delenv(models.ENV_VAR, raising=False)
    monkeypatch.delenv(models.OFFLINE_ENV_VAR, raising=False)
    monkeypatch.setenv("ROBOT_DESCRIPTIONS_CACHE", str(tmp_path))
    seen = {}

    def fake_import(name, *args, **kwargs):
        import os

        seen[name] = os.environ.get("ROBOT_DESCRIPTION_COMMIT")
        raise ImportError("no git")

    monkeypatch.setattr(models.importlib, "import_module", fake_import)
    with pytest.raises(ModelNotFoundError, match="unitree_ros"):
        resolve_model("unitree_g1_23dof")
    assert seen == {"robot_descriptions.g1_description": models.UNITREE_ROS_COMMIT}


def test_offline_flag_forbids_download(monkeypatch, tmp_path):
    """With VRB_OFFLINE set, robot_descriptions is never imported and nothing is written to its cache.

    The guards only record: resolve_model turns any error raised during the import into a
    ModelNotFoundError, so raising from a guard would let a broken offline check pass unnoticed.
    """
    monkeypatch.delenv(models.ENV_VAR, raising=False)
    monkeypatch.setenv(models.OFFLINE_ENV_VAR, "1")
    monkeypatch.setenv("ROBOT_DESCRIPTIONS_CACHE", str(tmp_path))
    imported = []
    real_import_module = models.importlib.import_module
    real_import = builtins.__import__

    def import_module_guard(name, *args, **kwargs):
        if name.startswith("robot_descriptions"):
            imported.append(name)
            raise ImportError("blocked by test: must not import robot_descriptions offline")
        return real_import_module(name, *args, **kwargs)

    def import_guard(name, *args, **kwargs):
        if name.startswith("robot_descriptions"):
            imported.append(name)
            raise ImportError("blocked by test: must not import robot_descriptions offline")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(models.importlib, "import_module", import_module_guard)
    monkeypatch.setattr(builtins, "__import__", import_guard)
    with pytest.raises(ModelNotFoundError, match="is not available offline") as err:
        resolve_model("allegro_hand")
    _assert_offline_message(str(err.value), "allegro_hand")
    assert models.OFFLINE_ENV_VAR in str(err.value)
    assert imported == []  # robot_descriptions was never imported
    assert not any(tmp_path.iterdir())  # nothing downloaded


def test_unknown_robot():
    with pytest.raises(KeyError, match="known robots"):
        resolve_model("r2d2")


# ----------------------------------------------------------------------------------------- LOD


def _world_vertices(model, data, geom):
    k = model.geom_dataid[geom]
    v = model.mesh_vert[model.mesh_vertadr[k]:model.mesh_vertadr[k] + model.mesh_vertnum[k]]
    return data.geom_xpos[geom] + v @ data.geom_xmat[geom].reshape(3, 3).T


def test_mesh_roundtrip_is_placed_exactly():
    """Undecimated meshes written back in the source frame land exactly where the originals are."""
    path = str(resolve_model("shadow_hand"))
    m0 = mujoco.MjModel.from_xml_path(path)
    spec = mujoco.MjSpec.from_file(path)
    ref = spec.copy().compile()
    for k in lod.visual_only_meshes(ref):
        v, f = lod._mesh_in_source_frame(ref, k)
        sm = spec.mesh(ref.mesh(k).name)
        sm.file, sm.scale = "", [1.0, 1.0, 1.0]
        sm.uservert, sm.userface = v.ravel().tolist(), f.ravel().tolist()
    m1 = spec.compile()
    d0, d1 = mujoco.MjData(m0), mujoco.MjData(m1)
    mujoco.mj_forward(m0, d0)
    mujoco.mj_forward(m1, d1)
    worst = 0.0
    for g in range(m0.ngeom):
        if m0.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH and m0.geom_contype[g] == 0 and m0.geom_conaffinity[g] == 0:
            worst = max(worst, np.abs(_world_vertices(m0, d0, g) - _world_vertices(m1, d1, g)).max())
    assert worst < 1e-6


def _assert_placed(m0, m1, stats, mean_tol=0.005, box_tol=0.006):
    """Every visual-only mesh geom of ``m1``, in any geom group, lies where its original in ``m0`` does
    (bounding box within ``box_tol``, vertex centroid within ``mean_tol`` unless None); every decimated
    mesh is checked. Returns the geom groups checked."""
    d0, d1 = mujoco.MjData(m0), mujoco.MjData(m1)
    mujoco.mj_forward(m0, d0)
    mujoco.mj_forward(m1, d1)
    checked, groups = set(), set()
    for g in range(m0.ngeom):
        if m0.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH or m0.geom_contype[g] or m0.geom_conaffinity[g]:
            continue
        w0, w1 = _world_vertices(m0, d0, g), _world_vertices(m1, d1, g)
        if mean_tol is not None:  # vertex centroids drift with the vertex distribution at strong reductions
            assert np.abs(w0.mean(0) - w1.mean(0)).max() < mean_tol, m0.geom(g).name
        assert np.abs(w0.min(0) - w1.min(0)).max() < box_tol and np.abs(w0.max(0) - w1.max(0)).max() < box_tol, \
            m0.geom(g).name
        checked.add(m0.mesh(int(m0.geom_dataid[g])).name)
        groups.add(int(m0.geom_group[g]))
    assert stats.meshes and set(stats.meshes) <= checked
    return groups


def test_decimation_reduces_faces_keeps_physics_and_placement(tmp_path, monkeypatch):
    monkeypatch.setenv("VRB_CACHE_DIR", str(tmp_path))
    path = str(resolve_model("shadow_hand"))
    m0 = mujoco.MjModel.from_xml_path(path)
    spec = mujoco.MjSpec.from_file(path)
    stats = lod.decimate_visual_meshes(spec, 0.1, 64)
    m1 = spec.compile()
    assert stats.faces_before == lod.drawn_faces(m0, (1,)) > 40000
    assert stats.faces_after == lod.drawn_faces(m1, (1,)) < 0.15 * stats.faces_before
    # physics untouched
    for name in ("body_mass", "body_inertia", "body_ipos", "geom_contype", "jnt_range"):
        np.testing.assert_array_equal(getattr(m0, name), getattr(m1, name), err_msg=name)
    colliding = (m0.geom_contype | m0.geom_conaffinity) > 0
    np.testing.assert_array_equal(m0.geom_size[colliding], m1.geom_size[colliding])
    # each decimated mesh occupies the original's place: bounding boxes agree within a few mm
    _assert_placed(m0, m1, stats)
    # cached, deterministic
    assert len(list((tmp_path / "lod").glob("*.npz"))) == len(stats.meshes)
    spec2 = mujoco.MjSpec.from_file(path)
    stats2 = lod.decimate_visual_meshes(spec2, 0.1, 64)
    assert stats2.cache_hits == len(stats.meshes)
    spec3 = mujoco.MjSpec.from_file(path)
    lod.decimate_visual_meshes(spec3, 0.1, 64, use_cache=False)
    m2, m3 = spec2.compile(), spec3.compile()
    np.testing.assert_array_equal(m2.mesh_vert, m3.mesh_vert)
    np.testing.assert_array_equal(m2.mesh_face, m3.mesh_face)


@needs_shared
def test_decimation_freezes_inertia_of_bodies_without_inertial(tmp_path, monkeypatch):
    """Allegro bodies take their inertia from their (visual) geoms: decimation must not change it."""
    monkeypatch.setenv("VRB_CACHE_DIR", str(tmp_path))
    path = str(resolve_model("allegro_hand", SHARED))
    m0 = mujoco.MjModel.from_xml_path(path)
    spec = mujoco.MjSpec.from_file(path)
    stats = lod.decimate_visual_meshes(spec, 0.1, 64)
    m1 = spec.compile()
    assert stats.meshes and stats.faces_after < stats.faces_before
    for name in ("body_mass", "body_inertia", "body_ipos", "body_iquat"):
        np.testing.assert_allclose(getattr(m0, name), getattr(m1, name), rtol=0, atol=1e-12, err_msg=name)


@needs_shared
def test_decimated_meshes_are_placed_in_any_geom_group(tmp_path, monkeypatch):
    """Placement holds for visual meshes outside group 1 (the Allegro's are in group 2), here with
    AllegroCube's settings: clustering on a 2 mm grid, then quadric aggressiveness 2."""
    monkeypatch.setenv("VRB_CACHE_DIR", str(tmp_path))
    path = str(resolve_model("allegro_hand", SHARED))
    m0 = mujoco.MjModel.from_xml_path(path)
    spec = mujoco.MjSpec.from_file(path)
    stats = lod.decimate_visual_meshes(spec, 0.05, 48, agg=2, cell=0.002)
    m1 = spec.compile()
    assert stats.faces_after < stats.faces_before / 5
    assert _assert_placed(m0, m1, stats, mean_tol=None) == {2}


def test_lod_defaults_are_the_original_setting(tmp_path, monkeypatch):
    """agg 7 without clustering is the default: the same meshes and the same cache entries."""
    path = str(resolve_model("shadow_hand"))
    models_, files = [], []
    for k, kw in enumerate(({}, {"agg": lod.DEFAULT_AGG, "cell": 0.0})):
        monkeypatch.setenv("VRB_CACHE_DIR", str(tmp_path / str(k)))
        spec = mujoco.MjSpec.from_file(path)
        lod.decimate_visual_meshes(spec, 0.1, 64, **kw)
        models_.append(spec.compile())
        files.append(sorted(p.name for p in (tmp_path / str(k) / "lod").glob("*.npz")))
    assert lod.DEFAULT_AGG == 7 and files[0] == files[1] and files[0]
    np.testing.assert_array_equal(models_[0].mesh_vert, models_[1].mesh_vert)
    np.testing.assert_array_equal(models_[0].mesh_face, models_[1].mesh_face)


def test_lod_ratio_validation():
    with pytest.raises(ValueError, match="ratio"):
        lod.decimate_visual_meshes(mujoco.MjSpec(), 0.0)
