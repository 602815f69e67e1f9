"""Mesh level of detail for the CPU render profile: decimated visual meshes.

Heavy visual meshes (Go2 ~197k triangles, ALOHA ~166k, Panda ~134k, Shadow Hand
~41k) dominate software-rendering time and cannot show at 84x84. A task's
render profile may replace each *visual-only* mesh (used only by geoms that
collide with nothing) by a quadric-decimated copy made with
``fast_simplification``:

- collision meshes, textured meshes and small meshes are never touched, so the
  physics (masses, inertias, contacts) is unchanged;
- decimation is deterministic and runs when the model is built, from the
  fetched source model; results are cached on disk (``$VRB_CACHE_DIR`` or
  ``~/.cache/visual_robo_bench``, sub-folder ``lod/``) under a key made of the
  source mesh's hash and the parameters, never committed as model files;
- the decimated mesh is written back in the source file's own frame, so MuJoCo
  places it exactly where the original is (checked by the tests and by a
  picture).

Two optional settings serve meshes that the default pass handles badly:
``agg``, the quadric aggressiveness (default 7; lower keeps thin shells such
as the Allegro links), and ``cell``, vertex clustering on a grid of that many
metres before the quadric pass (default 0 = off; for meshes of thousands of
tiny triangles, on which quadric decimation alone stalls). Their defaults are
this module's original behaviour.

The parameters are part of the task config, hence of the task version.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

LOD_FORMAT = 2  # bump when the cache content changes meaning
DEFAULT_AGG = 7  # fast_simplification's quadric aggressiveness used unless a task asks otherwise


@dataclass(frozen=True)
class LODStats:
    """What :func:`decimate_visual_meshes` did.

    Attributes:
        meshes: Names of the decimated meshes.
        faces_before: Visual-mesh faces drawn per frame before (instances counted).
        faces_after: The same after decimation.
        cache_hits: Meshes loaded from the cache.
    """

    meshes: tuple[str, ...]
    faces_before: int
    faces_after: int
    cache_hits: int


def cache_dir() -> Path:
    """The LOD cache folder."""
    root = os.environ.get("VRB_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "visual_robo_bench")
    return Path(root) / "lod"


def _rotmat(quat: np.ndarray) -> np.ndarray:
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat, dtype=np.float64))
    return mat.reshape(3, 3)


def _simplifier_version() -> str:
    try:
        from importlib.metadata import version

        return version("fast-simplification")
    except Exception:  # noqa: BLE001 - unknown install layout
        return "unknown"


def target_faces(faces: int, ratio: float, min_faces: int) -> int:
    """Faces kept for a mesh of ``faces`` faces."""
    return int(min(faces, max(min_faces, round(faces * ratio))))


def cluster_vertices(vertices: np.ndarray, faces: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertex clustering on a uniform grid of ``cell`` metres (deterministic).

    Every vertex moves to the mean of the vertices in its grid cell; faces that
    collapse or repeat are dropped. Used before the quadric pass on meshes whose
    thousands of tiny triangles stall it (the ALOHA finger meshes: ~30k faces each,
    quadric decimation alone stops near 9k whatever its settings).
    """
    key = np.floor(np.asarray(vertices, np.float64) / cell).astype(np.int64)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    rep = np.zeros((len(counts), 3))
    np.add.at(rep, inverse, vertices)
    rep /= counts[:, None]
    f = inverse[faces]
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    f = f[np.sort(first)]
    used = np.unique(f)
    remap = np.full(len(rep), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return rep[used], remap[f]


def decimate(vertices: np.ndarray, faces: np.ndarray, target: int, agg: int = DEFAULT_AGG,
             cell: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Quadric decimation of one triangle mesh to about ``target`` faces (deterministic).

    Args:
        vertices, faces: The mesh.
        target: Faces to keep (about).
        agg: Quadric aggressiveness of ``fast_simplification`` (7 collapses thin shells
            such as the Allegro links: the medial link keeps 6% of its volume at 10% of its
            faces; 2 keeps every Allegro mesh within 10% of its volume).
        cell: When > 0, vertex clustering on a grid of ``cell`` metres first
            (:func:`cluster_vertices`); the mesh is then clustered even if it already has
            ``target`` faces or fewer.
    """
    import fast_simplification

    n = len(faces)
    if target >= n and cell <= 0:
        return vertices.astype(np.float64), faces.astype(np.int32)
    # weld coincident vertices: meshes split per face (normals, OBJ groups) would otherwise
    # decimate into disconnected specks
    key = np.round(np.asarray(vertices, np.float64) / 1e-7).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    vertices = np.asarray(vertices, np.float64)[first]
    faces = inverse.reshape(-1)[faces]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]
    if cell > 0:
        vertices, faces = cluster_vertices(vertices, faces, cell)
    n = len(faces)
    if target >= n:
        return vertices, faces.astype(np.int32)
    reduction = 1.0 - target / n
    pts, tris = fast_simplification.simplify(np.ascontiguousarray(vertices, dtype=np.float64),
                                             np.ascontiguousarray(faces, dtype=np.int32),
                                             target_reduction=reduction, agg=agg)
    # drop vertices no face uses (keeps MuJoCo's mesh compiler quiet)
    used = np.unique(tris)
    remap = np.full(len(pts), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return np.asarray(pts[used], dtype=np.float64), remap[tris].astype(np.int32)


def mesh_in_source_frame(model: mujoco.MjModel, mesh_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (in the source file's frame, scale applied) and faces of a compiled mesh.

    MuJoCo recentres a mesh on its centroid and aligns it with its principal
    axes; ``mesh_pos``/``mesh_quat`` hold that transform, which is undone here so
    that MuJoCo applies the same placement to the decimated copy.
    """
    va, vn = model.mesh_vertadr[mesh_id], model.mesh_vertnum[mesh_id]
    fa, fn = model.mesh_faceadr[mesh_id], model.mesh_facenum[mesh_id]
    verts = model.mesh_vert[va:va + vn].astype(np.float64)
    faces = model.mesh_face[fa:fa + fn].astype(np.int32)
    R = _rotmat(model.mesh_quat[mesh_id])
    return verts @ R.T + model.mesh_pos[mesh_id], faces


_mesh_in_source_frame = mesh_in_source_frame  # the earlier private name


def set_user_mesh(spec: mujoco.MjSpec, name: str, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Redefine mesh ``name`` of ``spec`` by explicit vertices (source-file frame) and faces.

    The file, scale and reference frame are cleared, so MuJoCo places the new
    vertices exactly as it placed the file's (see :func:`mesh_in_source_frame`).
    """
    sm = spec.mesh(name)
    sm.file = ""
    sm.scale = [1.0, 1.0, 1.0]
    sm.refpos = [0.0, 0.0, 0.0]
    sm.refquat = [1.0, 0.0, 0.0, 0.0]
    sm.uservert = np.asarray(vertices).astype(np.float64).ravel().tolist()
    sm.userface = np.asarray(faces).astype(np.int32).ravel().tolist()


def visual_only_meshes(model: mujoco.MjModel) -> dict[int, list[int]]:
    """Mesh id -> the geoms drawing it, for meshes that no colliding geom uses."""
    uses: dict[int, list[int]] = {}
    colliding: set[int] = set()
    for g in range(model.ngeom):
        if model.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH:
            continue
        k = int(model.geom_dataid[g])
        uses.setdefault(k, []).append(g)
        if model.geom_contype[g] or model.geom_conaffinity[g]:
            colliding.add(k)
    return {k: v for k, v in uses.items() if k not in colliding}


def _freeze_inertia(spec: mujoco.MjSpec, model: mujoco.MjModel, geoms: list[int], frozen: set[int]) -> bool:
    """Give the bodies of ``geoms`` their compiled inertia explicitly, so that a
    decimated visual mesh cannot change masses and inertias (bodies without an
    ``<inertial>`` take theirs from their geoms, visual ones included).

    Returns False when a body cannot be addressed by name (the mesh is then kept).
    """
    for g in geoms:
        b = int(model.geom_bodyid[g])
        if b == 0 or b in frozen:
            continue
        name = model.body(b).name
        body = spec.body(name) if name else None
        if body is None:
            return False
        if not body.explicitinertial:
            body.mass = float(model.body_mass[b])
            body.ipos = model.body_ipos[b].tolist()
            body.iquat = model.body_iquat[b].tolist()
            body.inertia = model.body_inertia[b].tolist()
            body.explicitinertial = True
        frozen.add(b)
    return True


def decimate_visual_meshes(spec: mujoco.MjSpec, ratio: float, min_faces: int = 64,
                           use_cache: bool = True, *, agg: int = DEFAULT_AGG, cell: float = 0.0) -> LODStats:
    """Replace every large visual-only mesh of ``spec`` by a decimated copy, in place.

    Args:
        spec: The scene (compiled once here to read the meshes).
        ratio: Fraction of faces kept per mesh (1 keeps everything).
        min_faces: Meshes are never reduced below this many faces (and smaller
            meshes are left alone).
        use_cache: Read and write the on-disk cache.
        agg: Quadric aggressiveness (:func:`decimate`).
        cell: Vertex-clustering grid in metres before the quadric pass (0: none).

    Returns:
        :class:`LODStats`.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"LOD ratio must be in (0, 1], got {ratio}")
    # compile a copy: compiling ``spec`` itself leaves per-mesh compiler caches that
    # reject a mesh whose face count then changes
    model = spec.copy().compile()
    params = {"ratio": ratio, "min_faces": min_faces, "agg": agg, "format": LOD_FORMAT,
              "simplifier": _simplifier_version()}
    if cell:
        params["cell"] = cell  # without clustering the key is the one it always was
    blob_params = json.dumps(params, sort_keys=True).encode()
    folder = cache_dir()
    frozen: set[int] = set()
    names, hits = [], 0
    before = after = 0
    for k, geoms in sorted(visual_only_meshes(model).items()):
        nf = int(model.mesh_facenum[k])
        before += nf * len(geoms)
        target = target_faces(nf, ratio, min_faces)
        if target >= nf or model.mesh_texcoordnum[k] > 0:
            after += nf * len(geoms)
            continue
        if not _freeze_inertia(spec, model, geoms, frozen):
            after += nf * len(geoms)
            continue
        verts, faces = mesh_in_source_frame(model, k)
        key = hashlib.sha256(verts.astype(np.float32).tobytes() + faces.tobytes() + blob_params).hexdigest()[:32]
        path = folder / f"{key}.npz"
        new = None
        if use_cache and path.is_file():
            try:
                with np.load(path) as z:
                    new = (z["vertices"], z["faces"])
                hits += 1
            except Exception:  # noqa: BLE001 - a corrupt cache entry is recomputed
                new = None
        if new is None:
            new = decimate(verts, faces, target, agg, cell)
            if use_cache:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f"{key}.{os.getpid()}.tmp.npz"
                np.savez(tmp, vertices=new[0], faces=new[1])
                os.replace(tmp, path)
        name = model.mesh(k).name
        set_user_mesh(spec, name, new[0], new[1])
        names.append(name)
        after += len(new[1]) * len(geoms)
    return LODStats(tuple(names), before, after, hits)


def drawn_faces(model: mujoco.MjModel, groups: tuple[int, ...] = (0, 1, 2)) -> int:
    """Mesh faces a camera drawing ``groups`` draws per frame (instances counted; alpha-0 geoms skipped)."""
    total = 0
    for g in range(model.ngeom):
        if model.geom_type[g] != mujoco.mjtGeom.mjGEOM_MESH or model.geom_group[g] not in groups:
            continue
        rgba = model.geom_rgba[g] if model.geom_matid[g] < 0 else model.mat_rgba[model.geom_matid[g]]
        if rgba[3] == 0:
            continue
        total += int(model.mesh_facenum[model.geom_dataid[g]])
    return total
