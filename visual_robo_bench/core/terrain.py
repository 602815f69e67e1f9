"""Generic terrain pieces for ``MjSpec`` scenes: boxes, convex lofts, height fields, merged visual meshes.

Terrain tasks describe their ground as a list of solid pieces plus an analytic height function.
This module turns pieces into geoms and renders them cheaply on a CPU rasteriser:

- **Collision** uses exact primitives: boxes (``mjGEOM_BOX``), convex lofts (a bottom and a top
  polygon with the same number of corners, compiled as convex meshes; MuJoCo collides with a mesh's
  convex hull, so a loft must be convex) and height fields.
- **Rendering** cost on llvmpipe is dominated by the number of drawn geoms (a few microseconds each,
  per image) and then by triangles (about 0.1 us each even when clipped away), so collision geoms are
  not drawn (their group is one the cameras skip). What is drawn is one merged visual-only mesh
  (no collision): the faces of the boxes marked as drawn, plus surfaces given explicitly with the
  fewest triangles (stair tops and risers, ring walls, slope faces, height-field surfaces split
  into triangles exactly as MuJoCo splits them).

Everything here is deterministic: no randomness is drawn (terrain tasks draw their random pieces
from a local generator seeded by their ``terrain_seed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from .scene import COLLIDES


def box_mesh(center, half) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (8, 3) and outward triangles (12, 3) of an axis-aligned box."""
    c, h = np.asarray(center, float), np.asarray(half, float)
    sq = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    bottom = np.column_stack([c[0] + h[0] * sq[:, 0], c[1] + h[1] * sq[:, 1], np.full(4, c[2] - h[2])])
    top = bottom.copy()
    top[:, 2] = c[2] + h[2]
    return loft_mesh(bottom, top)


def loft_mesh(bottom: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A closed solid between two k-gons (corners counter-clockwise seen from above).

    Returns vertices (2k, 3) and outward triangles: the bottom and top fans and one quad (two
    triangles) per side between corner i and i+1 of both polygons.
    """
    bottom, top = np.asarray(bottom, float), np.asarray(top, float)
    k = len(bottom)
    if top.shape != bottom.shape or k < 3:
        raise ValueError(f"loft needs two polygons with the same number (>= 3) of corners, "
                         f"got {bottom.shape}, {top.shape}")
    verts = np.concatenate([bottom, top])
    faces = [(0, i + 1, i) for i in range(1, k - 1)]          # bottom fan, facing down (first k - 2 faces)
    faces += [(k, k + i, k + i + 1) for i in range(1, k - 1)]  # top fan, facing up
    for i in range(k):
        j = (i + 1) % k
        faces.append((i, j, k + j))
        faces.append((i, k + j, k + i))
    return verts, np.asarray(faces, np.int64)


def merge_meshes(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One vertex/face list from several (vertices, faces) pairs."""
    verts, faces, offset = [], [], 0
    for v, f in parts:
        verts.append(np.asarray(v, float))
        faces.append(np.asarray(f, np.int64) + offset)
        offset += len(v)
    if not verts:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    return np.concatenate(verts), np.concatenate(faces)


def hfield_height(heights: np.ndarray, half: tuple[float, float], u: np.ndarray, v: np.ndarray,
                  index: np.ndarray | None = None) -> np.ndarray:
    """Heights of a height field's drawn and collided surface at local points (u, v).

    ``heights`` is (nrow, ncol): row r at v = -half[1] + 2 half[1] r / (nrow - 1), column c at
    u = -half[0] + 2 half[0] c / (ncol - 1), MuJoCo's layout. Each cell is split into the two
    triangles MuJoCo uses, along the diagonal from (r, c) to (r + 1, c + 1). Points outside are
    clamped to the border. With ``index`` (one integer per point), ``heights`` is a stack
    (K, nrow, ncol) of same-sized fields and point k reads field ``index[k]``.
    """
    nrow, ncol = heights.shape[-2:]
    fu = np.clip((np.asarray(u) + half[0]) / (2 * half[0]) * (ncol - 1), 0.0, ncol - 1 - 1e-9)
    fv = np.clip((np.asarray(v) + half[1]) / (2 * half[1]) * (nrow - 1), 0.0, nrow - 1 - 1e-9)
    c, r = np.floor(fu).astype(np.int64), np.floor(fv).astype(np.int64)
    a, b = fu - c, fv - r
    flat = heights.reshape(-1)
    base = r * ncol + c if index is None else (np.asarray(index) * nrow + r) * ncol + c
    h00, h01 = flat[base], flat[base + 1]
    h10, h11 = flat[base + ncol], flat[base + ncol + 1]
    lower = a >= b  # below the diagonal (r, c)-(r+1, c+1): triangle (r,c), (r,c+1), (r+1,c+1)
    return np.where(lower, h00 + a * (h01 - h00) + b * (h11 - h01), h00 + b * (h10 - h00) + a * (h11 - h10))


def quad(p0, p1, p2, p3) -> tuple[np.ndarray, np.ndarray]:
    """Two triangles of a planar quad whose corners run counter-clockwise seen from its front."""
    return np.array([p0, p1, p2, p3], float), np.array([[0, 1, 2], [0, 2, 3]], np.int64)


def _square(cx, cy, r) -> np.ndarray:
    """Corners (4, 2) of a square of half size r, counter-clockwise seen from above."""
    return np.array([[cx - r, cy - r], [cx + r, cy - r], [cx + r, cy + r], [cx - r, cy + r]], float)


def square_top(cx, cy, r, z) -> tuple[np.ndarray, np.ndarray]:
    """Upward-facing square of half size r at height z."""
    sq = _square(cx, cy, r)
    return quad(*[(x, y, z) for x, y in sq])


def ring_top(cx, cy, ri, ro, z) -> tuple[np.ndarray, np.ndarray]:
    """Upward-facing square annulus between half sizes ri < ro at height z (8 triangles)."""
    inner, outer = _square(cx, cy, ri), _square(cx, cy, ro)
    parts = [quad((*inner[k], z), (*outer[k], z), (*outer[(k + 1) % 4], z), (*inner[(k + 1) % 4], z)) for k in range(4)]
    return merge_meshes(parts)


def square_wall(cx, cy, r, z0, z1, outward: bool) -> tuple[np.ndarray, np.ndarray]:
    """The four vertical sides of a square of half size r from z0 to z1, facing out or in."""
    sq = _square(cx, cy, r)
    if not outward:
        sq = sq[::-1]
    parts = []
    for k in range(4):
        a, b = sq[k], sq[(k + 1) % 4]
        parts.append(quad((*a, z0), (*b, z0), (*b, z1), (*a, z1)))  # faces the right of a -> b
    return merge_meshes(parts)


def grid_surface(cx, cy, half, heights: np.ndarray, z0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The triangles of a height field's surface, split as MuJoCo splits its cells (see :func:`hfield_height`)."""
    nrow, ncol = heights.shape
    u = np.linspace(-half[0], half[0], ncol)
    v = np.linspace(-half[1], half[1], nrow)
    uu, vv = np.meshgrid(u, v)  # (nrow, ncol)
    verts = np.column_stack([cx + uu.ravel(), cy + vv.ravel(), z0 + np.asarray(heights, float).ravel()])
    idx = np.arange(nrow * ncol).reshape(nrow, ncol)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()   # (r, c), (r, c+1)
    c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()     # (r+1, c), (r+1, c+1)
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return verts, faces


@dataclass
class TerrainPieces:
    """Solid pieces of a terrain and the triangles that draw it, in world coordinates.

    Attributes:
        boxes: (center, half size, drawn) of axis-aligned collision boxes; drawn boxes add their
            faces (less the bottom) to the visual mesh.
        lofts: (bottom, top) corner arrays of convex collision lofts (drawn through ``visual``).
        hfields: (name, center (3,), half (2,), heights (nrow, ncol), base depth) collision height
            fields; ``center[2]`` is the zero of the heights (drawn through ``visual``).
        visual: (vertices, faces) of drawn surfaces that no box draws.
    """

    boxes: list[tuple[np.ndarray, np.ndarray, bool]] = field(default_factory=list)
    lofts: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    hfields: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, float]] = field(default_factory=list)
    visual: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def add_box_range(self, lo, hi, drawn: bool = True) -> None:
        """A box from corner ``lo`` to corner ``hi`` (each (3,)); empty ranges are skipped."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        if np.all(hi - lo > 1e-9):
            self.boxes.append(((lo + hi) / 2, (hi - lo) / 2, drawn))

    def add_loft(self, bottom, top) -> None:
        self.lofts.append((np.asarray(bottom, float), np.asarray(top, float)))

    def draw(self, part: tuple[np.ndarray, np.ndarray]) -> None:
        self.visual.append(part)

    def visual_mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """Merged triangles of the drawn boxes (without their bottoms, never seen) and ``visual``."""
        boxes = []
        for c, h, drawn in self.boxes:
            if drawn:
                v, f = box_mesh(c, h)
                boxes.append((v, f[2:] if len(f) == 12 else f))  # the first two faces are the bottom
        return merge_meshes(boxes + list(self.visual))


def add_to_spec(spec: mujoco.MjSpec, pieces: TerrainPieces, prefix: str, *, material: str, friction: float,
                collision_group: int = 3, visual_group: int = 0, hfield_step: float = 0.005,
                texcoord_scale: float = 1.0) -> dict[str, int]:
    """Add ``pieces`` to the world body.

    Boxes, lofts and height fields become collision geoms in ``collision_group`` (cameras that skip
    it do not draw them); :meth:`TerrainPieces.visual_mesh` becomes one visual-only mesh geom in
    ``visual_group``. Height-field elevations are stored relative to their minimum, quantised to
    ``hfield_step``.

    Returns:
        Counts: ``boxes``, ``lofts``, ``hfields``, ``visual_triangles``.
    """
    fr = [friction, 0.005, 0.0001]
    for k, (c, h, _) in enumerate(pieces.boxes):
        spec.worldbody.add_geom(name=f"{prefix}box{k}", type=mujoco.mjtGeom.mjGEOM_BOX, pos=c.tolist(),
                                size=h.tolist(), group=collision_group, friction=fr, condim=3,
                                rgba=[0.5, 0.5, 0.5, 1], **COLLIDES)
    for k, (b, t) in enumerate(pieces.lofts):
        verts = np.concatenate([b, t])
        center = verts.mean(axis=0)
        mesh = spec.add_mesh(name=f"{prefix}loft{k}", uservert=(verts - center).ravel().tolist())
        spec.worldbody.add_geom(name=f"{prefix}loft{k}", type=mujoco.mjtGeom.mjGEOM_MESH, meshname=mesh.name,
                                pos=center.tolist(), group=collision_group, friction=fr, condim=3, **COLLIDES,
                                rgba=[0.5, 0.5, 0.5, 1])
    for name, center, half, heights, base in pieces.hfields:
        q = np.round(np.asarray(heights, float) / hfield_step) * hfield_step
        lo, hi = float(q.min()), float(q.max())
        span = max(hi - lo, hfield_step)
        data = ((q - lo) / span).ravel()
        spec.add_hfield(name=f"{prefix}{name}", size=[float(half[0]), float(half[1]), span, float(base)],
                        nrow=q.shape[0], ncol=q.shape[1], userdata=data.tolist())
        spec.worldbody.add_geom(name=f"{prefix}{name}", type=mujoco.mjtGeom.mjGEOM_HFIELD, hfieldname=f"{prefix}{name}",
                                pos=[float(center[0]), float(center[1]), float(center[2]) + lo],
                                group=collision_group, friction=fr, condim=3, **COLLIDES)
    verts, faces = pieces.visual_mesh()
    if len(faces):
        mesh = spec.add_mesh(name=f"{prefix}visual", uservert=verts.ravel().tolist(),
                             userface=faces.ravel().tolist(),
                             usertexcoord=(verts[:, :2] / texcoord_scale).ravel().tolist())
        mesh.inertia = mujoco.mjtMeshInertia.mjMESH_INERTIA_SHELL
        mesh.maxhullvert = 4
        spec.worldbody.add_geom(name=f"{prefix}visual", type=mujoco.mjtGeom.mjGEOM_MESH, meshname=mesh.name,
                                contype=0, conaffinity=0, group=visual_group, material=material)
    return {"boxes": len(pieces.boxes), "lofts": len(pieces.lofts), "hfields": len(pieces.hfields),
            "visual_triangles": int(len(faces))}
