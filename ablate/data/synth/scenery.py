"""Everything that does not move: sky, road surface, the skyline, and what lines the road.

Ground classes are computed per pixel by back-projecting rows onto the road plane, so lane marks
and sidewalk edges converge exactly where the camera says they should; roadside objects are
returned as painters so the scene can order them by depth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ablate.data.synth.camera import CAM_H, Z_BEND, Camera, ellipse, rect
from ablate.data.synth.canvas import Canvas, shaded, smooth_noise
from ablate.data.synth.labels import BUILDING, FENCE, ROAD, SIDEWALK, SKY, TERRAIN, VEGETATION, WALL
from ablate.data.synth.styles import Style


@dataclass(frozen=True)
class Road:
    """Lateral extents in metres; asymmetric, since the camera drives in the right-hand lane."""

    left: float  # road extends from -left to +right metres
    right: float
    walk_left: float  # sidewalk widths (0 = none)
    walk_right: float
    lane_x: float  # centre line position
    centre_line: bool
    edge_lines: bool

    def half(self, side: int) -> float:
        return self.right if side > 0 else self.left

    def walk(self, side: int) -> float:
        return self.walk_right if side > 0 else self.walk_left

    def edge(self, side: int) -> float:
        """Lateral distance of the outer sidewalk edge (or road edge without a sidewalk)."""
        return self.half(side) + self.walk(side)


def paint_sky(cv: Canvas, rng: np.random.Generator, cam: Camera, style: Style) -> None:
    top = np.asarray(style.sky_top, np.float32) * (1.0 + rng.normal(0, style.jitter, 3)).astype(np.float32)
    hor = np.asarray(style.sky_horizon, np.float32) * (1.0 + rng.normal(0, style.jitter * 0.5, 3)).astype(np.float32)
    rows = np.arange(cv.h, dtype=np.float32)
    t = np.clip(rows / max(cam.y_h, 1.0), 0.0, 1.0) ** 0.6
    grad = top[None, :] * (1.0 - t[:, None]) + hor[None, :] * t[:, None]
    cv.img[:] = grad[:, None, :]
    cv.cls[:] = SKY


def paint_ground(cv: Canvas, rng: np.random.Generator, cam: Camera, road: Road, pal: np.ndarray) -> None:
    y0 = math.floor(cam.y_h) + 1
    if y0 >= cv.h:
        return
    dy = np.arange(y0, cv.h, dtype=np.float32) - np.float32(cam.y_h)
    z = np.minimum(np.float32(cam.f * CAM_H) / np.maximum(dy, 1e-3), 1e4)[:, None]
    cols = np.arange(cv.w, dtype=np.float32)[None, :] - np.float32(cam.x_v)
    zb = np.minimum(z, Z_BEND)
    X = cols * (z / np.float32(cam.f)) - np.float32(cam.curv) * zb * zb
    cls = np.full(X.shape, TERRAIN, np.uint8)
    on_road = (X >= -road.left) & (X <= road.right)
    cls[on_road] = ROAD
    walk_l = (X < -road.left) & (X >= -road.left - road.walk_left)
    walk_r = (X > road.right) & (X <= road.right + road.walk_right)
    cls[walk_l | walk_r] = SIDEWALK
    img = np.take(pal, cls, axis=0)

    marks = np.zeros(X.shape, bool)
    if road.centre_line:
        marks |= (np.abs(X - road.lane_x) < 0.07) & ((z % 9.0) < 3.5)
    if road.edge_lines:
        marks |= (np.abs(X - (road.right - 0.3)) < 0.07) | (np.abs(X + road.left - 0.3) < 0.07)
    marks &= on_road
    img[marks] = np.float32(rng.uniform(175, 225))

    walk = walk_l | walk_r
    near = z < 25.0
    tiles = walk & near & (((np.abs(X) * 2.5) % 1.0 < 0.08) | ((z * 2.5) % 1.0 < 0.08))
    img[tiles] *= np.float32(0.86)
    curb = (walk_l & (X > -road.left - 0.2)) | (walk_r & (X < road.right + 0.2))
    img[curb] *= np.float32(1.15)

    cv.cls[y0:] = cls
    cv.img[y0:] = img


def paint_skyline(cv: Canvas, rng: np.random.Generator, cam: Camera, style: Style, pal: np.ndarray) -> None:
    """Distant buildings and tree lines on the horizon, hazy towards the sky colour."""
    h, w = cv.h, cv.w
    top = np.full(w, np.inf, np.float32)
    kind = np.full(w, SKY, np.uint8)
    bright = np.ones(w, np.float32)
    x = 0
    while x < w:
        seg = max(2, int(w * rng.uniform(0.02, 0.16)))
        r = rng.random()
        if r < 0.45 * (style.p_building + 0.3):
            kind[x : x + seg] = BUILDING
            top[x : x + seg] = cam.y_h - h * rng.uniform(0.01, 0.08)
        elif r < 0.8:
            kind[x : x + seg] = VEGETATION
            top[x : x + seg] = cam.y_h - h * rng.uniform(0.01, 0.06)
        bright[x : x + seg] = rng.uniform(0.85, 1.1)
        x += seg
    veg = kind == VEGETATION
    bumps = np.abs(smooth_noise(rng, 1, w, max(2.0, w / 120.0)))[0] * h * 0.025
    top[veg] -= bumps[veg]
    bottom = math.floor(cam.y_h + max(1.0, 0.004 * h))
    start = int(max(0, math.floor(np.min(top)))) if np.isfinite(top).any() else bottom + 1
    if start > bottom or bottom < 0:
        return
    bottom = min(bottom, h - 1)
    rows = np.arange(start, bottom + 1, dtype=np.float32)[:, None]
    mask = rows >= top[None, :]
    haze = np.asarray(style.sky_horizon, np.float32)
    colour = (0.6 * pal[kind] * bright[:, None] + 0.4 * haze[None, :]).astype(np.float32)
    band_cls = cv.cls[start : bottom + 1]
    band_img = cv.img[start : bottom + 1]
    band_cls[mask] = np.broadcast_to(kind[None, :], mask.shape)[mask]
    band_img[mask] = np.broadcast_to(colour[None, :, :], (*mask.shape, 3))[mask]


def paint_roadside(
    cv: Canvas,
    rng: np.random.Generator,
    cam: Camera,
    road: Road,
    style: Style,
    pal: np.ndarray,
    side: int,
) -> list[tuple[tuple[int, float], Callable[[Canvas], None]]]:
    """Paints facades and forest on one side; returns trees and barriers with their paint order.

    Everything is ordered by lateral distance first (a nearer plane hides a farther one), then
    far to near: facades, then trees just beyond the sidewalk, then fences/walls/hedges on its edge.
    """
    edge = road.edge(side)
    light = 0.92 if side > 0 else 1.06
    planes: list[tuple[float, Callable[[], None]]] = []
    z = rng.uniform(1.0, 6.0)
    while z < 130.0:
        length = rng.uniform(8.0, 40.0)
        r = rng.random()
        if r < style.p_building:
            X = edge + rng.uniform(*style.setback)
            height = rng.uniform(*style.building_height)
            tint = np.asarray(style.building_tints[rng.integers(len(style.building_tints))], np.float32)
            colour = 0.5 * tint + 0.5 * pal[BUILDING]
            planes.append((X, _building(cv, rng, cam, side * X, z, z + length, height, colour, light)))
            z += length + rng.uniform(0.0, 4.0)
        elif r < style.p_building + style.p_forest:
            X = edge + rng.uniform(1.5, 8.0)
            height = rng.uniform(5.0, 14.0)
            planes.append((X, _forest(cv, rng, cam, side * X, z, z + length, height, pal[VEGETATION] * light)))
            z += length
        else:
            z += length * 0.6
    for _, paint in sorted(planes, key=lambda item: -item[0]):
        paint()

    items: list[tuple[tuple[int, float], Callable[[Canvas], None]]] = []
    z = rng.uniform(2.0, 10.0)
    while z < 70.0:
        if rng.random() < style.p_tree:
            X = side * (edge + rng.uniform(0.3, 1.0))
            items.append(((0, -z), _tree(rng, cam, X, z, pal[VEGETATION])))
        z += rng.uniform(5.0, 14.0)
    for kind, p in ((FENCE, style.p_fence), (WALL, style.p_wall), (VEGETATION, 0.25)):
        if rng.random() < p:
            za = rng.uniform(1.0, 25.0)
            zb = za + rng.uniform(10.0, 45.0)
            items.append(((1, -zb), _barrier(rng, cam, side * (edge + 0.15), za, zb, kind, pal[kind] * light)))
    return items


def _building(
    cv: Canvas,
    rng: np.random.Generator,
    cam: Camera,
    X: float,
    za: float,
    zb: float,
    height: float,
    colour: np.ndarray,
    light: float,
) -> Callable[[], None]:
    depth = rng.uniform(6.0, 15.0)
    side = 1.0 if X > 0 else -1.0
    floor_h = rng.uniform(2.8, 3.6)
    pitch = rng.uniform(2.2, 4.0)
    glass = np.asarray((rng.uniform(30, 70), rng.uniform(35, 75), rng.uniform(45, 90)), np.float32)
    win_w, win_h = pitch * rng.uniform(0.35, 0.6), floor_h * rng.uniform(0.35, 0.55)

    def paint() -> None:
        zs = np.geomspace(za, zb, 10)
        facade = np.concatenate([cam.pts(X, height, zs), cam.pts(X, 0.0, zs)[::-1]])
        cv.fill([facade], BUILDING, colour * light)
        end = cam.pts([X, X + side * depth, X + side * depth, X], [0.0, 0.0, height, height], za)
        cv.fill([end], BUILDING, colour * light * 0.8)
        cornice = np.concatenate([cam.pts(X, height, zs), cam.pts(X, height - 0.4, zs)[::-1]])
        cv.fill([cornice], None, colour * light * 0.7)
        if za < 70.0:
            z0 = np.arange(za + 0.8, zb - win_w - 0.3, pitch)
            y0 = np.arange(1.0, height - win_h - 0.6, floor_h)
            if z0.size and y0.size:
                zz, yy = np.meshgrid(z0, y0)
                zz, yy = zz.ravel(), yy.ravel()
                quads = np.stack(
                    [
                        cam.pts(X, yy, zz),
                        cam.pts(X, yy, zz + win_w),
                        cam.pts(X, yy + win_h, zz + win_w),
                        cam.pts(X, yy + win_h, zz),
                    ],
                    axis=1,
                )
                cv.fill_disjoint(list(quads), glass * light)

    return paint


def _forest(
    cv: Canvas,
    rng: np.random.Generator,
    cam: Camera,
    X: float,
    za: float,
    zb: float,
    height: float,
    colour: np.ndarray,
) -> Callable[[], None]:
    n = max(8, int((zb - za) / 1.5))
    tops = np.maximum(height + np.cumsum(rng.normal(0.0, 0.9, n)) + rng.normal(0.0, 0.6, n), 2.0)

    def paint() -> None:
        zs = np.linspace(za, zb, n)
        cv.fill([np.concatenate([cam.pts(X, tops, zs), cam.pts(X, 0.0, zs)[::-1]])], VEGETATION, colour)

    return paint


def _tree(rng: np.random.Generator, cam: Camera, X: float, z: float, colour: np.ndarray) -> Callable[[Canvas], None]:
    trunk_h = rng.uniform(1.5, 3.0)
    r = rng.uniform(1.2, 3.5)
    ry = r * rng.uniform(0.9, 1.4)
    wobble = 1.0 + 0.12 * rng.standard_normal(18)
    shade = rng.uniform(0.8, 1.15)

    def paint(cv: Canvas) -> None:
        p = cam.facing(X, z)
        cv.fill([p(rect(-0.15, 0.0, 0.15, trunk_h + 0.3))], VEGETATION, (70, 55, 40))
        c = p([(0.0, trunk_h + ry * 0.8)])[0]
        s = cam.f / z
        cv.fill([ellipse(c[0], c[1], r * s, ry * s, 18, wobble)], VEGETATION, colour * shade)
        cv.shade(cam.pts([X - r, X + r + 1.5, X + r + 1.5, X - r], 0.0, [z - r, z - r, z + r, z + r]), 0.8)

    return paint


def _barrier(
    rng: np.random.Generator, cam: Camera, X: float, za: float, zb: float, kind: int, colour: np.ndarray
) -> Callable[[Canvas], None]:
    height = {FENCE: rng.uniform(1.0, 2.0), WALL: rng.uniform(0.7, 3.0)}.get(kind, rng.uniform(0.6, 1.6))
    n = 12 if kind != VEGETATION else max(8, int((zb - za) / 0.8))
    tops = np.full(n, height) if kind != VEGETATION else np.maximum(height + 0.15 * rng.standard_normal(n), 0.3)
    posts = np.arange(za, zb, rng.uniform(1.5, 3.0))

    def paint(cv: Canvas) -> None:
        zs = np.geomspace(za, zb, n)
        cv.fill([np.concatenate([cam.pts(X, tops, zs), cam.pts(X, 0.0, zs)[::-1]])], kind, colour)
        if kind == FENCE:
            for y in (height * 0.15, height * 0.9):
                rail = np.concatenate([cam.pts(X, y + 0.08, zs), cam.pts(X, y - 0.08, zs)[::-1]])
                cv.fill([rail], None, shaded(colour, 0.6))
            for zp in posts:
                cv.fill(
                    [cam.pts(X, [0, 0, height, height], [zp, zp + 0.12, zp + 0.12, zp])],
                    None,
                    shaded(colour, 0.5),
                )
        elif kind == WALL:
            cap = np.concatenate([cam.pts(X, height, zs), cam.pts(X, height - 0.12, zs)[::-1]])
            cv.fill([cap], None, shaded(colour, 1.2))

    return paint
