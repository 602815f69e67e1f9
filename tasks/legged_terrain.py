"""VRB/Go2Terrain-v0: the Go2 walks forward over slopes, stairs, rough ground and hurdles (``tasks.md`` 3.11).

The robot, its PD control, command machinery, ego depth camera and render profile are those of
``VRB/Go2-v0`` (:mod:`visual_robo_bench.tasks.legged`). This module adds the terrain (a deterministic
10 x 10 grid of 8 x 8 m sub-terrains from ``terrain_seed``), forward commands, the 20-step
proprioceptive history, the privileged height scan, domain randomisation kept in the cloneable task
state, and the push schedule.

Upstream bugs fixed (``tasks.md`` section 4): the first observation and the whole history come
from the reset state (5); the depth camera is rigid in the base (10) at 87 x 58 (11); every DR
field is applied and lives in the state (14); the terrain comes from a local generator (21); tilt
limits allow the terrain's own slopes (27).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from visual_robo_bench.core import scene
from visual_robo_bench.core.task import Evaluation
from visual_robo_bench.core.terrain import (TerrainPieces, add_to_spec, grid_surface, hfield_height, quad, ring_top,
                                            square_top, square_wall)
from visual_robo_bench.registry import register_task

from .legged import Go2Base, Go2Config, roll_pitch_of, yaw_of

# column types of the terrain grid (tasks.md 3.11)
TERRAIN_TYPES = ("slope_down", "slope_up", "rough", "stairs_down", "stairs_down", "stairs_up", "stairs_up",
                 "hurdles", "hurdles", "hurdles")
TYPE_CODES = {"flat": 0, "slope_down": 1, "slope_up": 2, "rough": 3, "stairs_down": 4, "stairs_up": 5, "hurdles": 6}


@dataclass(frozen=True)
class Go2TerrainConfig(Go2Config):
    """VRB/Go2Terrain-v0 (tasks.md 3.11)."""

    proprio_dim: int = 900
    privileged_dim: int = 48
    height_scan_dim: int = 81
    history_len: int = 20
    # forward commands: v_x* ~ U(0.3, 1), v_y* = 0, heading* = 0, re-drawn every 200 steps
    command_vx: tuple[float, float] = (0.3, 1.0)
    command_vy: tuple[float, float] = (0.0, 0.0)
    command_heading: tuple[float, float] = (0.0, 0.0)
    # terrain
    terrain_seed: int = 0
    terrain_types: tuple[str, ...] = TERRAIN_TYPES
    terrain_levels: int = 10
    sub_size: float = 8.0
    platform: float = 2.0
    border: float = 40.0
    base_depth: float = 2.0          # the solid ground reaches down to z = -base_depth (floor plane there)
    terrain_friction: float = 1.0
    max_slope: float = 0.4
    step_width: float = 0.4
    step_height: tuple[float, float] = (0.05, 0.15)   # 0.05 + 0.15 d
    stair_steps: int = 7
    hurdle_height: tuple[float, float] = (0.05, 0.15)  # 0.05 + 0.15 d (<= 0.20)
    hurdle_width: float = 0.1
    hurdle_spacing: float = 0.8
    hurdle_rings: int = 4
    rough_amplitude: float = 0.05
    rough_step: float = 0.005
    rough_spacing: float = 0.4      # grid of the random heights (correlation length); render budget, see docstring
    # reset
    spawn_clearance: float = 0.42
    # termination / success
    max_roll: float = 0.8
    max_pitch: float = 1.0
    success_distance: float = 4.0
    # observations
    render_extent: float = 8.0
    scan_spacing: float = 0.1
    scan_points: int = 9
    scan_offset: float = 0.5
    foot_scan_spacing: float = 0.05
    # reward changes: no base_height, feet clearance 0.09 above the local terrain + 0.022, hip_pos
    w_base_height: float = 0.0
    feet_clearance_target: float = 0.112
    w_hip_pos: float = -0.05
    # domain randomisation (all applied; switched off together by domain_randomization=False)
    domain_randomization: bool = True
    # curriculum (training only; evaluation sets False): start at U{0, 1}, up one level after walking
    # > 4 m, down one after walking < 0.5 x mean v_x* x episode duration; past the last level: random
    curriculum: bool = False
    curriculum_start_levels: tuple[int, int] = (0, 1)
    curriculum_down_fraction: float = 0.5
    friction_scale: tuple[float, float] = (0.2, 1.5)
    added_base_mass: tuple[float, float] = (-1.0, 3.0)
    base_com_offset: float = 0.01
    kp_scale: tuple[float, float] = (0.8, 1.2)
    kd_scale: tuple[float, float] = (0.8, 1.2)
    motor_offset: float = 0.02
    push_interval: int = 500
    push_velocity: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.terrain_types) != 10 or self.terrain_levels < 1:
            raise ValueError("the terrain grid has 10 type columns and at least one level")
        if self.hurdle_height[0] + self.hurdle_height[1] > 0.20 + 1e-9:
            raise ValueError("Go2 hurdles are at most 0.20 m high (tasks.md 4, item 12)")
        if self.proprio_dim != 45 * self.history_len:
            raise ValueError(f"proprio_dim must be 45 x history_len = {45 * self.history_len}")

    def difficulty(self, level: int) -> float:
        return level / max(1, self.terrain_levels - 1)


class GridTerrain:
    """The terrain grid of a :class:`Go2TerrainConfig`: pieces for the scene and the height function.

    Sub-terrain (level i, column j) is centred at ((i - (L - 1)/2) s, (j - 4.5) s) with s = 8 m: levels
    run along x, types along y. Every sub-terrain edge and the flat border are at z = 0; pits (valleys,
    stairs down) go below it, so the ground is a solid block down to z = -base_depth, with a floor
    plane there as the last catch. Rough ground is drawn from ``numpy.random.default_rng(terrain_seed)``.
    """

    def __init__(self, cfg: Go2TerrainConfig) -> None:
        self.cfg = c = cfg
        self.L, self.J, self.s = c.terrain_levels, len(c.terrain_types), c.sub_size
        self.half_x, self.half_y = self.L * self.s / 2, self.J * self.s / 2
        self.codes = np.array([TYPE_CODES[t] for t in c.terrain_types])
        rng = np.random.default_rng(c.terrain_seed)  # local generator: never the global one
        n = int(round(self.s / c.rough_spacing)) + 1
        steps = int(round(c.rough_amplitude / c.rough_step))
        self.rough: dict[tuple[int, int], np.ndarray] = {}
        self.rough_index = np.full((self.L, self.J), -1, np.int64)  # (level, column) -> row of rough_stack
        for i in range(self.L):
            for j in range(self.J):
                if c.terrain_types[j] == "rough":
                    self.rough_index[i, j] = len(self.rough)
                    self.rough[(i, j)] = rng.integers(-steps, steps + 1, size=(n, n)) * c.rough_step
        self.rough_stack = np.stack(list(self.rough.values())) if self.rough else np.zeros((0, n, n))

    # ---------------------------------------------------------------- layout
    def center(self, level, col) -> np.ndarray:
        level, col = np.asarray(level), np.asarray(col)
        return np.stack([(level - (self.L - 1) / 2) * self.s, (col - (self.J - 1) / 2) * self.s], axis=-1)

    def levels_params(self, level) -> dict[str, np.ndarray]:
        c = self.cfg
        d = np.asarray(level) / max(1, self.L - 1)
        return {"slope": c.max_slope * d, "step": c.step_height[0] + c.step_height[1] * d,
                "hurdle": c.hurdle_height[0] + c.hurdle_height[1] * d}

    def ring_radii(self) -> np.ndarray:
        c = self.cfg
        return c.platform / 2 + c.hurdle_spacing / 2 + c.hurdle_spacing * np.arange(c.hurdle_rings)

    # ---------------------------------------------------------------- heights
    def locate(self, xy: np.ndarray):
        """Sub-terrain indices and local coordinates of world points (..., 2); -1 outside the grid."""
        x, y = xy[..., 0], xy[..., 1]
        i = np.floor((x + self.half_x) / self.s).astype(np.int64)
        j = np.floor((y + self.half_y) / self.s).astype(np.int64)
        inside = (i >= 0) & (i < self.L) & (j >= 0) & (j < self.J)
        i, j = np.where(inside, i, -1), np.where(inside, j, -1)
        ci = np.clip(i, 0, self.L - 1)
        cj = np.clip(j, 0, self.J - 1)
        ctr = self.center(ci, cj)
        return i, j, x - ctr[..., 0], y - ctr[..., 1]

    def height(self, xy: np.ndarray) -> np.ndarray:
        """Ground height at world points ``xy`` (..., 2): the surface the robot stands on."""
        c = self.cfg
        xy = np.asarray(xy, float)
        i, j, u, v = self.locate(xy)
        code = np.where(i >= 0, self.codes[np.clip(j, 0, self.J - 1)], 0)
        p = self.levels_params(np.clip(i, 0, self.L - 1))
        r = np.maximum(np.abs(u), np.abs(v))
        edge, plat = self.s / 2, c.platform / 2
        ramp = np.clip(r - plat, 0.0, edge - plat)
        depth = p["slope"] * (edge - plat)
        n_steps = np.clip(np.floor((edge - r) / c.step_width + 1e-9), 0, c.stair_steps)
        h = np.zeros(np.shape(u))
        h = np.where(code == TYPE_CODES["slope_down"], -depth + p["slope"] * ramp, h)
        h = np.where(code == TYPE_CODES["slope_up"], depth - p["slope"] * ramp, h)
        h = np.where(code == TYPE_CODES["stairs_down"], -p["step"] * n_steps, h)
        h = np.where(code == TYPE_CODES["stairs_up"], p["step"] * n_steps, h)
        on_ring = (np.abs(r[..., None] - self.ring_radii()) <= c.hurdle_width / 2).any(axis=-1)
        h = np.where((code == TYPE_CODES["hurdles"]) & on_ring, p["hurdle"], h)
        rough = code == TYPE_CODES["rough"]
        if rough.any():
            k = self.rough_index[i[rough], j[rough]]
            h[rough] = hfield_height(self.rough_stack, (self.s / 2, self.s / 2), u[rough], v[rough], index=k)
        return h

    def features_crossed(self, level: np.ndarray, col: np.ndarray, uv0: np.ndarray, uv: np.ndarray) -> np.ndarray:
        """Stair steps or hurdle rings crossed between local points uv0 and uv (Chebyshev radius)."""
        c = self.cfg
        code = self.codes[col]
        r0 = np.abs(uv0).max(axis=-1)
        r1 = np.abs(uv).max(axis=-1)
        edge = self.s / 2
        lo, hi = np.minimum(r0, r1), np.maximum(r0, r1)
        bounds = edge - c.step_width * np.arange(1, c.stair_steps + 1)  # step edges
        stairs = ((bounds > lo[..., None]) & (bounds <= hi[..., None])).sum(axis=-1)
        rings = self.ring_radii()
        hurdles = ((rings > lo[..., None]) & (rings <= hi[..., None])).sum(axis=-1)
        stair_type = (code == TYPE_CODES["stairs_up"]) | (code == TYPE_CODES["stairs_down"])
        return np.where(stair_type, stairs, np.where(code == TYPE_CODES["hurdles"], hurdles, 0)).astype(np.float64)

    # ---------------------------------------------------------------- pieces
    def pieces(self) -> TerrainPieces:
        """Collision pieces and drawn surfaces of the whole grid (see :mod:`visual_robo_bench.core.terrain`)."""
        c = self.cfg
        P = TerrainPieces()
        s, zb = self.s, -c.base_depth
        edge, plat = s / 2, c.platform / 2
        hx, hy, B = self.half_x, self.half_y, c.border
        # flat border around the grid (top at z = 0)
        P.add_box_range((-hx - B, -hy - B, zb), (-hx, hy + B, 0.0))
        P.add_box_range((hx, -hy - B, zb), (hx + B, hy + B, 0.0))
        P.add_box_range((-hx, -hy - B, zb), (hx, -hy, 0.0))
        P.add_box_range((-hx, hy, zb), (hx, hy + B, 0.0))
        sq = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
        for j, kind in enumerate(c.terrain_types):
            y0 = (j - (self.J - 1) / 2) * s
            if kind in ("slope_up", "stairs_up", "hurdles"):
                # one solid block under the whole column; the features stand on it
                P.add_box_range((-hx, y0 - edge, zb), (hx, y0 + edge, 0.0))
            elif kind == "rough":
                # drawn floor just below the lowest rough point (closes the sub-terrain edges)
                P.add_box_range((-hx, y0 - edge, zb), (hx, y0 + edge, -c.rough_amplitude - 1e-3))
            for i in range(self.L):
                cx, cy = (float(v) for v in self.center(i, j))
                p = {k: float(v) for k, v in self.levels_params(i).items()}
                if kind == "rough":
                    hm = self.rough[(i, j)]
                    P.hfields.append((f"rough_{i}_{j}", np.array([cx, cy, 0.0]), np.array([edge, edge]), hm,
                                      c.base_depth - c.rough_amplitude))
                    P.draw(grid_surface(cx, cy, (edge, edge), hm))
                elif kind == "slope_up":
                    H = p["slope"] * (edge - plat)
                    if H > 1e-9:
                        bottom = np.column_stack([cx + edge * sq[:, 0], cy + edge * sq[:, 1], np.zeros(4)])
                        top = np.column_stack([cx + plat * sq[:, 0], cy + plat * sq[:, 1], np.full(4, H)])
                        P.add_loft(bottom, top)
                        for k in range(4):  # the four sloped faces and the platform
                            n = (k + 1) % 4
                            P.draw(quad(bottom[k], bottom[n], top[n], top[k]))
                        P.draw(square_top(cx, cy, plat, H))
                elif kind == "slope_down":
                    H = p["slope"] * (edge - plat)
                    if H <= 1e-9:
                        P.add_box_range((cx - edge, cy - edge, zb), (cx + edge, cy + edge, 0.0))
                        continue
                    P.add_box_range((cx - plat, cy - plat, zb), (cx + plat, cy + plat, -H), drawn=False)
                    P.draw(square_top(cx, cy, plat, -H))
                    for rot in range(4):  # one wedge per side: footprint between the diagonals
                        cs, sn = [(1, 0), (0, 1), (-1, 0), (0, -1)][rot]
                        local = np.array([[plat, -plat], [edge, -edge], [edge, edge], [plat, plat]])  # CCW
                        wx = cx + cs * local[:, 0] - sn * local[:, 1]
                        wy = cy + sn * local[:, 0] + cs * local[:, 1]
                        top = np.column_stack([wx, wy, -H + p["slope"] * (local[:, 0] - plat)])
                        P.add_loft(np.column_stack([wx, wy, np.full(4, zb)]), top)
                        P.draw(quad(*top))
                elif kind == "stairs_up":
                    for k in range(1, c.stair_steps + 1):  # nested boxes: step k covers r <= edge - k w
                        rk = edge - k * c.step_width
                        P.add_box_range((cx - rk, cy - rk, 0.0), (cx + rk, cy + rk, k * p["step"]), drawn=False)
                        P.draw(square_top(cx, cy, rk, k * p["step"]))
                        P.draw(square_wall(cx, cy, rk, (k - 1) * p["step"], k * p["step"], outward=True))
                elif kind == "stairs_down":
                    for k in range(c.stair_steps + 1):  # square rings going down inward, then the platform
                        ro = edge - k * c.step_width
                        top = -k * p["step"]
                        if k == c.stair_steps:
                            P.add_box_range((cx - ro, cy - ro, zb), (cx + ro, cy + ro, top), drawn=False)
                            P.draw(square_top(cx, cy, ro, top))
                            break
                        ri = ro - c.step_width
                        self._ring(P, cx, cy, ri, ro, zb, top)
                        P.draw(ring_top(cx, cy, ri, ro, top))
                        P.draw(square_wall(cx, cy, ri, top - p["step"], top, outward=False))
                elif kind == "hurdles":
                    w = c.hurdle_width / 2
                    for rm in self.ring_radii():
                        self._ring(P, cx, cy, rm - w, rm + w, 0.0, p["hurdle"])
                        P.draw(ring_top(cx, cy, rm - w, rm + w, p["hurdle"]))
                        P.draw(square_wall(cx, cy, rm + w, 0.0, p["hurdle"], outward=True))
                        P.draw(square_wall(cx, cy, rm - w, 0.0, p["hurdle"], outward=False))
                else:
                    raise ValueError(f"unknown terrain type {kind!r}")
        return P

    @staticmethod
    def _ring(P: TerrainPieces, cx, cy, ri, ro, z0, z1) -> None:
        """A square ring between Chebyshev radii ri and ro, from z0 to z1 (4 collision boxes, not drawn)."""
        P.add_box_range((cx - ro, cy + ri, z0), (cx + ro, cy + ro, z1), drawn=False)
        P.add_box_range((cx - ro, cy - ro, z0), (cx + ro, cy - ri, z1), drawn=False)
        P.add_box_range((cx + ri, cy - ri, z0), (cx + ro, cy + ri, z1), drawn=False)
        P.add_box_range((cx - ro, cy - ri, z0), (cx - ri, cy + ri, z1), drawn=False)


GO2_TERRAIN_ID = "VRB/Go2Terrain-v0"


@register_task(GO2_TERRAIN_ID)
class Go2Terrain(Go2Base):
    """Unitree Go2 walks forward over slopes, stairs, rough ground and hurdles from an ego depth camera.

    **Description.** The Go2 of ``VRB/Go2-v0`` (PD position actuators kp 30, kv 1.5; +-23.7 /
    +-45.43 N m; elliptic cones, impratio 100; 0.005 s x 4 sub-steps = 50 Hz) on a 10 x 10 grid of
    8 x 8 m sub-terrains with a 40 m flat border. Row i (along x) is the level, difficulty d = i/9;
    column j (along y) is the type: 0 pyramid slope down (valley, slope 0.4 d), 1 pyramid slope up
    (0.4 d), 2 random rough ground (+-5 cm in 5 mm steps on a 0.4 m grid, height field), 3-4 pyramid
    stairs down and 5-6 up (7 steps 0.4 m wide, 0.05 + 0.15 d high), 7-9 square hurdle rings (0.1 m
    wide, 0.05 + 0.15 d <= 0.20 m high, 0.8 m apart, centre radii 1.4-3.8 m). Slopes, stairs and
    hurdles have a flat central platform of at least 2 x 2 m. Sub-terrain edges and the border are
    at z = 0; the ground is solid down to z = -2 (floor plane there). The terrain is a deterministic
    function of ``terrain_seed`` (local generator; only the rough ground is random). It collides as
    boxes, convex meshes and height fields (group 3, not drawn) and is drawn as one merged visual mesh
    of the same surfaces (group 0, the only group the depth camera draws). Render budget (calibrated):
    llvmpipe pays about 0.1 us per terrain triangle per image even out of view and a few us per
    drawn geom, so only the rough ground uses height fields (one per sub-terrain, at the 0.4 m
    grid of its random heights; 0.2 m halves the frame rate) and everything else is exact
    primitives; the drawn terrain is one mesh of about 15k triangles. Render profile: visual meshes
    decimated to 2%.

    **Observations.** ``pixels`` 58x87x1 ego depth (metric depth clipped to [0, 2] m, linear to
    0-255); ``proprio`` (900): the last 20 Go2 actor vectors (45 each: 0.25 x body angular velocity,
    projected gravity, command (2 v_x*, 2 v_y*, 0.25 omega*), q - q_default, 0.05 x qd, last action
    a_t), oldest first, filled with the reset observation at reset; ``privileged`` (48): 2 x base
    linear velocity in the yaw frame (3) + the current 45-D vector; ``height_scan`` (81):
    clip(z_base - 0.5 - h, -1, 1) x 5 on a 9 x 9 grid (+-0.4 m, 0.1 m) around the base, rotated by
    its yaw.

    **Actions.** 12 joint targets q* = q_default + 0.5 a (+ the episode's motor offsets), actuator
    order FL, FR, RL, RR (hip, thigh, calf).

    **Reward terms.** The Go2-v0 terms (tracking_lin_vel 5, tracking_ang_vel 1.5, lin_vel_z -2,
    ang_vel_xy -0.05, dof_pos_limits -2, collision -1, dof_acc -2.5e-7, action_rate -0.01,
    action_smoothness -0.01, feet_air_time 1, stand_still 0.5, feet_clearance 0.2) without
    base_height; feet_clearance targets a foot-centre height of 0.112 m (0.09 + 0.022 m foot radius)
    above the local terrain (mean of 9 samples, +-0.05 m around the foot); hip_pos (-0.05 sum over the
    hips of (q - q_default)^2). Each weighted term is multiplied by dt = 0.02; the term
    ``clip_negative`` = max(0, -sum) makes the reward max(sum, 0) (clipped at >= 0).

    **Success.** Horizontal distance from the spawn >= 4 m and not terminated (every step).
    Metrics: distance (horizontal), hurdles_cleared (stair steps or hurdle rings crossed),
    vel_tracking_error (running mean of |cmd_xy - v_xy|), fell.

    **Episode end.** Terminates on base contact force > 1 N, |roll| > 0.8 or |pitch| > 1.0 rad;
    truncates at 1000 steps (20 s). Commands: 5 segments of 200 steps, v_x* ~ U(0.3, 1), v_y* = 0,
    heading* = 0 (+x); omega* = clip(0.5 wrap(0 - yaw), -1, 1). Reset: level and type uniform
    (``curriculum=False``, the default and the evaluation setting; with ``curriculum=True``, for
    training, the first level is U{0, 1}, then one up after walking > 4 m, one down after walking
    < 0.5 x mean v_x* x 20 s, a random level past the last one; the type stays uniform; the running
    episode's level and type, and the record of the last episode that the next reset reads, are in
    the cloneable state); base at the sub-terrain centre, z = max
    height over the central 1 x 1 m + 0.42, +-0.025 m, tilt <= 7.5 deg, joints default +- 0.5
    (clipped). Domain randomisation
    (``domain_randomization=True``, the default for training; evaluation sets False = nominal
    values, no pushes), drawn at reset and kept in the cloneable state: robot geom friction x U(0.2,
    1.5) (effective on the feet, whose contacts take the robot's friction), base mass + U(-1, 3) kg,
    base COM +- 0.01 m per axis, kp and kd x U(0.8, 1.2), motor offsets +- 0.02 rad, and a push
    every 500 steps adding U(-1, 1) m/s to the base v_x and v_y.

    **Cameras.** ``ego_depth`` as Go2-v0: rigid in ``base`` at (0.32, 0, 0.15) looking at (0.5, 0, 0),
    87 x 58 (D435-like crop of 106 x 60 at fovy 58) with its principal point centred (the crop would
    leave it one row below the centre), draws only geom group 0 (terrain); ``track``: third-person
    view for ``render()``. Feet touch as in Go2-v0 (net contact force > 1 N, not its vertical part).

    **Version history.** v0: initial release.
    """

    config_cls = Go2TerrainConfig
    metric_names = ("distance", "hurdles_cleared", "vel_tracking_error", "fell")

    @property
    def carried_state(self) -> tuple[str, ...]:
        """The curriculum's record of the last episode survives the reset that reads it."""
        return ("last_episode",) if self.cfg.curriculum else ()

    # ------------------------------------------------------------------ scene
    def build_ground(self, spec: mujoco.MjSpec) -> None:
        c = self.cfg
        self.terrain = GridTerrain(c)
        # the floor plane under everything (collision: infinite; drawn twice as far as the border)
        half = (2 * (self.terrain.half_x + c.border), 2 * (self.terrain.half_y + c.border))
        scene.add_floor(spec, half_size=half, center=(0.0, 0.0), checker=0.5, friction=c.terrain_friction)
        spec.geom("floor").pos = [0.0, 0.0, -c.base_depth]
        # the model extent scales the GL near/far planes (0.01 / 50 x extent): keep Go2-v0's 8 m, so the
        # depth camera's near plane stays at 8 cm instead of growing with the 160 m terrain
        spec.stat.extent = c.render_extent
        spec.stat.center = [0.0, 0.0, 0.0]
        # the terrain mesh: the floor's checker texture through texture coordinates (x, y) / 1 m,
        # i.e. 0.5 m squares on horizontal faces
        mat = spec.add_material(name="terrain", texrepeat=[1.0, 1.0], reflectance=0.0)
        mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "vrb_checker"
        self.terrain_stats = add_to_spec(spec, self.terrain.pieces(), "terrain_", material="terrain",
                                         friction=c.terrain_friction, hfield_step=c.rough_step,
                                         texcoord_scale=1.0)

    def setup(self, model):
        super().setup(model)
        c = self.cfg
        if not hasattr(self, "terrain"):
            self.terrain = GridTerrain(c)
        self.hips = np.array([0, 3, 6, 9])
        g = np.arange(model.ngeom)
        self.robot_geoms = g[model.geom_bodyid != 0]
        self.nominal_friction = model.geom_friction[self.robot_geoms, 0].copy()
        self.nominal_mass = float(model.body_mass[self.base_id])
        self.nominal_ipos = model.body_ipos[self.base_id].copy()
        self.nominal_gain = model.actuator_gainprm[:, 0].copy()
        self.nominal_bias = model.actuator_biasprm[:, :3].copy()
        n, sp = c.scan_points, c.scan_spacing
        ax = (np.arange(n) - (n - 1) / 2) * sp
        sx, sy = np.meshgrid(ax, ax, indexing="ij")
        self.scan_pts = np.stack([sx.ravel(), sy.ravel()], axis=1)  # (81, 2)
        fx, fy = np.meshgrid(np.array([-1.0, 0.0, 1.0]) * c.foot_scan_spacing,
                             np.array([-1.0, 0.0, 1.0]) * c.foot_scan_spacing, indexing="ij")
        self.foot_pts = np.stack([fx.ravel(), fy.ravel()], axis=1)  # (9, 2)
        self.n_pushes = max(1, (self.max_episode_steps - 1) // c.push_interval)

    def state_spec(self):
        c = self.cfg
        return {
            **super().state_spec(),
            "level": ((1,), np.int64),
            "terrain_type": ((1,), np.int64),
            "history": ((c.history_len, 45), np.float64),
            # domain randomisation, drawn at reset (nominal values when it is off)
            "friction_scale": ((1,), np.float64),
            "added_mass": ((1,), np.float64),
            "com_offset": ((3,), np.float64),
            "kp_scale": ((1,), np.float64),
            "kd_scale": ((1,), np.float64),
            "motor_offset": ((12,), np.float64),
            "push_schedule": ((self.n_pushes, 2), np.float64),
            # with the curriculum, the episode so far as the next reset reads it: [recorded, level, walked,
            # mean v_x*]; kept across resets (carried_state) and cloned with the state like every field
            **({"last_episode": ((4,), np.float64)} if c.curriculum else {}),
        }

    # ------------------------------------------------------------------ episode
    def next_level(self, rng, env_id: int, state) -> int:
        """The level of a new episode: uniform, or with ``curriculum`` from the env's last episode."""
        c, L = self.cfg, self.terrain.L
        if not c.curriculum:
            return int(rng.integers(0, L))
        recorded, level, walked, mean_vx = state["last_episode"][env_id]
        if not recorded:
            return int(rng.integers(c.curriculum_start_levels[0], c.curriculum_start_levels[1] + 1))
        level = int(level)
        episode_s = self.max_episode_steps * c.control_dt
        if walked > c.success_distance:
            level += 1
        elif walked < c.curriculum_down_fraction * mean_vx * episode_s:
            level = max(level - 1, 0)
        return int(rng.integers(0, L)) if level >= L else int(level)

    def spawn_center(self, rng, env_id, state):
        c = self.cfg
        level = self.next_level(rng, env_id, state)
        col = int(rng.integers(0, self.terrain.J))
        state["level"][env_id, 0] = level
        state["terrain_type"][env_id, 0] = col
        cx, cy = self.terrain.center(level, col)
        g = np.linspace(-0.5, 0.5, 21)
        gx, gy = np.meshgrid(g, g, indexing="ij")
        top = self.terrain.height(np.stack([cx + gx.ravel(), cy + gy.ravel()], axis=1)).max()
        return np.array([cx, cy, top + c.spawn_clearance])

    def initialize_episode(self, sim, state, env_ids, rngs):
        c = self.cfg
        super().initialize_episode(sim, state, env_ids, rngs)
        for i, r in zip(env_ids, rngs):
            if c.domain_randomization:
                state["friction_scale"][i, 0] = r.uniform(*c.friction_scale)
                state["added_mass"][i, 0] = r.uniform(*c.added_base_mass)
                state["com_offset"][i] = r.uniform(-c.base_com_offset, c.base_com_offset, 3)
                state["kp_scale"][i, 0] = r.uniform(*c.kp_scale)
                state["kd_scale"][i, 0] = r.uniform(*c.kd_scale)
                state["motor_offset"][i] = r.uniform(-c.motor_offset, c.motor_offset, 12)
                state["push_schedule"][i] = r.uniform(-c.push_velocity, c.push_velocity, (self.n_pushes, 2))
            else:
                state["friction_scale"][i, 0] = 1.0
                state["kp_scale"][i, 0] = 1.0
                state["kd_scale"][i, 0] = 1.0
        # the history starts full of the first observation (tasks.md 4, item 5)
        state["history"][env_ids] = self.actor_vector(sim, state, env_ids)[:, None, :]

    def on_state_set(self, sim, state, env_ids):
        """Write the per-env DR parameters of the state into the per-env model fields."""
        if not self.cfg.domain_randomization:
            return  # the shared model holds the nominal values
        ids = np.asarray(env_ids)
        if len(ids) == 0:
            return
        fr = sim.expand("geom_friction")
        fr[np.ix_(ids, self.robot_geoms, [0])] = (state["friction_scale"][ids] * self.nominal_friction)[..., None]
        mass = sim.expand("body_mass")
        mass[ids, self.base_id] = self.nominal_mass + state["added_mass"][ids, 0]
        ipos = sim.expand("body_ipos")
        ipos[ids, self.base_id] = self.nominal_ipos + state["com_offset"][ids]
        gain = sim.expand("actuator_gainprm")
        bias = sim.expand("actuator_biasprm")
        kp = state["kp_scale"][ids]
        kd = state["kd_scale"][ids]
        gain[ids, :, 0] = self.nominal_gain * kp
        bias[ids, :, 1] = self.nominal_bias[:, 1] * kp
        bias[ids, :, 2] = self.nominal_bias[:, 2] * kd
        sim.set_const(ids)

    # ------------------------------------------------------------------ control
    def targets(self, state, action, env_ids):
        return self.q_default + self.cfg.action_scale * action + state["motor_offset"][env_ids]

    def apply_action(self, sim, state, action, env_ids):
        c = self.cfg
        super().apply_action(sim, state, action, env_ids)
        if not c.domain_randomization:
            return
        t = state["t"][env_ids, 0]
        due = (t > 0) & (t % c.push_interval == 0) & (t // c.push_interval <= self.n_pushes)
        if due.any():
            ids = np.asarray(env_ids)[due]
            k = t[due] // c.push_interval - 1
            sim.qvel[ids, 0:2] += state["push_schedule"][ids, k]

    # ------------------------------------------------------------------ observations
    def height_scan(self, sim, state, env_ids) -> np.ndarray:
        c = self.cfg
        pos, xmat = self.base_pose(sim, env_ids)
        yaw = yaw_of(xmat)
        cs, sn = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        px, py = self.scan_pts[None, :, 0], self.scan_pts[None, :, 1]
        world = np.stack([pos[:, :1] + cs * px - sn * py, pos[:, 1:2] + sn * px + cs * py], axis=-1)
        h = self.terrain.height(world)
        return np.clip(pos[:, 2:3] - c.scan_offset - h, -1.0, 1.0) * 5.0

    def observe(self, sim, state, env_ids):
        actor = self.actor_vector(sim, state, env_ids)
        priv = np.concatenate([2.0 * self.base_lin_vel_yaw(sim, env_ids), actor], axis=1)
        return {"proprio": state["history"][env_ids].reshape(len(env_ids), -1), "privileged": priv,
                "height_scan": self.height_scan(sim, state, env_ids)}

    def after_step(self, sim, state, action, env_ids):
        super().after_step(sim, state, action, env_ids)
        if self.cfg.curriculum:  # what the next reset of these envs reads (training only)
            walked = self.distance(sim, state, env_ids)
            mean_vx = state["cmd_schedule"][env_ids, :, 0].mean(axis=1)
            state["last_episode"][env_ids] = np.stack(
                [np.ones(len(walked)), state["level"][env_ids, 0].astype(np.float64), walked, mean_vx], axis=1)
        hist = state["history"]
        hist[env_ids, :-1] = hist[env_ids, 1:]
        hist[env_ids, -1] = self.actor_vector(sim, state, env_ids)

    # ------------------------------------------------------------------ reward
    def foot_height(self, sim, env_ids) -> np.ndarray:
        """Foot-centre heights above the local terrain (mean of 9 samples around each foot)."""
        feet = sim.site_xpos[env_ids][:, self.foot_sites]  # (k, 4, 3)
        pts = feet[:, :, None, :2] + self.foot_pts[None, None]
        ground = self.terrain.height(pts).mean(axis=2)
        return feet[:, :, 2] - ground

    def reward_terms(self, sim, state, action, env_ids):
        c = self.cfg
        terms = super().reward_terms(sim, state, action, env_ids)
        terms.pop("base_height")
        q = sim.qpos[env_ids][:, self.qadr]
        hip = np.sum((q[:, self.hips] - self.q_default[self.hips]) ** 2, axis=1)
        terms["hip_pos"] = c.w_hip_pos * hip * c.control_dt
        total = sum(terms.values())
        terms["clip_negative"] = np.maximum(0.0, -total)
        return terms

    # ------------------------------------------------------------------ success / failure
    def failure(self, sim, state, env_ids):
        c = self.cfg
        _, xmat = self.base_pose(sim, env_ids)
        roll, pitch = roll_pitch_of(xmat)
        base_hit = self.contact_norm(sim, env_ids, ["base_contact"])[:, 0] > c.base_contact_force
        return base_hit | (np.abs(roll) > c.max_roll) | (np.abs(pitch) > c.max_pitch)

    def evaluate(self, sim, state, env_ids):
        c = self.cfg
        failure = self.failure(sim, state, env_ids)
        dist = self.distance(sim, state, env_ids)
        steps = state["t"][env_ids, 0] + 1
        mean_err = (state["err_sum"][env_ids, 0] + self.tracking_error(sim, state, env_ids)) / steps
        level, col = state["level"][env_ids, 0], state["terrain_type"][env_ids, 0]
        ctr = self.terrain.center(level, col)
        uv = sim.xpos[env_ids, self.base_id, :2] - ctr
        crossed = self.terrain.features_crossed(level, col, state["spawn_xy"][env_ids] - ctr, uv)
        success = (dist >= c.success_distance) & ~failure
        return Evaluation(success, failure, {"distance": dist, "hurdles_cleared": crossed,
                                             "vel_tracking_error": mean_err, "fell": failure.astype(np.float64)})
