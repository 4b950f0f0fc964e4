"""Procedural KITTI-like road scenes with Cityscapes train-id labels.

Ablation studies need a dataset that is free, small and reproducible, yet hard enough that
training tricks make a measurable difference. Scenes here are laid out with a pinhole camera over
a flat road (so sizes shrink towards a vanishing point and classes keep KITTI's strong imbalance),
and every shape is rasterised once into the image and once into the label with the same polygon,
so labels always agree with what is drawn. Appearance is randomised per image (colours, texture,
light, shadows, blur, sensor noise) so a model has to learn shapes and context, not colours.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ablate.data.classes import CLASSES, IGNORE_INDEX
from ablate.data.layout import ANN_DIR, IMG_DIR, save_png, write_dataset
from ablate.errors import DataError

GENERATOR = "ablate.synth/1"
"""Recorded in dataset.json; bump when the output changes so stale datasets are not reused."""

DOMAINS: tuple[str, ...] = ("kitti", "city")

_ID = {name: i for i, name in enumerate(CLASSES)}
ROAD, SIDEWALK, BUILDING, WALL, FENCE = (_ID[n] for n in ("road", "sidewalk", "building", "wall", "fence"))
POLE, LIGHT, SIGN, VEGETATION, TERRAIN = (
    _ID[n] for n in ("pole", "traffic light", "traffic sign", "vegetation", "terrain")
)
SKY, PERSON, RIDER, CAR, TRUCK = (_ID[n] for n in ("sky", "person", "rider", "car", "truck"))
BUS, TRAIN, MOTORCYCLE, BICYCLE = (_ID[n] for n in ("bus", "train", "motorcycle", "bicycle"))
IGNORE = IGNORE_INDEX

CAM_H = 1.65  # camera height over the road in metres, as on the KITTI rig
_Z_BEND = 150.0  # road curvature stops growing beyond this depth
_SHIFT = 3  # cv2 sub-pixel bits: thin far objects keep their true position
_SUB = float(1 << _SHIFT)

_SPLIT_CODE = {"train": 0, "val": 1}
_DOMAIN_CODE = {"kitti": 0, "city": 1}

Colour = tuple[float, float, float]
Points = np.ndarray  # (N, 2) float pixel coordinates, pixel centres at integers


# --------------------------------------------------------------------------------------- styles


@dataclass(frozen=True)
class _Style:
    """Everything that differs between the two domains: appearance first, then layout statistics."""

    colours: dict[int, Colour]
    sky_top: Colour
    sky_horizon: Colour
    building_tints: tuple[Colour, ...]
    car_paints: tuple[Colour, ...]
    clothes: tuple[Colour, ...]
    jitter: float  # relative std of the per-image, per-class colour shift, per channel
    tint: Colour  # global colour cast
    contrast: float
    texture: float  # multiplies every class's texture amplitude
    shadow: float  # strength of cast shadows; 0 is overcast
    grain: float  # sensor noise std at 8 bit
    blur: float  # blur sigma at 375 rows
    horizon: tuple[float, float]  # horizon row as a fraction of the height
    p_building: float
    p_forest: float
    building_height: tuple[float, float]
    setback: tuple[float, float]
    p_sidewalk: float
    p_tree: float
    p_fence: float
    p_wall: float
    p_parked: float  # chance a side has a row of parked cars
    moving_cars: float  # Poisson mean
    persons: float  # Poisson mean
    p_cyclist: float
    p_motorcyclist: float
    p_truck: float
    p_bus: float
    p_train: float
    poles: float  # Poisson mean per side
    hood: bool  # ego-vehicle bonnet at the bottom (labelled ignore, as in Cityscapes)


_KITTI = _Style(
    colours={
        ROAD: (84, 84, 82),
        SIDEWALK: (138, 130, 124),
        BUILDING: (150, 138, 124),
        WALL: (158, 152, 140),
        FENCE: (128, 116, 98),
        POLE: (118, 118, 112),
        LIGHT: (38, 38, 34),
        SIGN: (40, 84, 170),
        VEGETATION: (64, 94, 38),
        TERRAIN: (124, 128, 74),
        SKY: (205, 220, 236),
        PERSON: (90, 80, 75),
        RIDER: (90, 70, 70),
        CAR: (120, 120, 125),
        TRUCK: (205, 205, 198),
        BUS: (215, 190, 60),
        TRAIN: (180, 60, 50),
        MOTORCYCLE: (42, 40, 44),
        BICYCLE: (52, 50, 56),
        IGNORE: (100, 100, 95),
    },
    sky_top=(150, 185, 225),
    sky_horizon=(232, 238, 244),
    building_tints=((168, 150, 128), (196, 188, 172), (150, 90, 70), (128, 126, 122), (206, 196, 160)),
    car_paints=(
        (225, 225, 228),
        (160, 162, 168),
        (30, 30, 34),
        (150, 30, 30),
        (40, 60, 130),
        (90, 92, 96),
        (200, 200, 190),
        (70, 90, 70),
        (190, 160, 60),
    ),
    clothes=((30, 30, 40), (200, 200, 205), (140, 40, 40), (50, 70, 140), (90, 110, 70), (160, 140, 100)),
    jitter=0.06,
    tint=(1.04, 1.0, 0.94),
    contrast=1.08,
    texture=1.0,
    shadow=0.55,
    grain=3.0,
    blur=0.7,
    horizon=(0.38, 0.48),
    p_building=0.42,
    p_forest=0.38,
    building_height=(5.0, 14.0),
    setback=(1.2, 9.0),
    p_sidewalk=0.65,
    p_tree=0.45,
    p_fence=0.3,
    p_wall=0.15,
    p_parked=0.75,
    moving_cars=1.2,
    persons=0.5,
    p_cyclist=0.12,
    p_motorcyclist=0.03,
    p_truck=0.08,
    p_bus=0.03,
    p_train=0.02,
    poles=2.0,
    hood=False,
)

_CITY = _Style(
    colours={
        ROAD: (122, 114, 126),
        SIDEWALK: (170, 158, 164),
        BUILDING: (118, 116, 118),
        WALL: (138, 136, 132),
        FENCE: (104, 112, 100),
        POLE: (92, 98, 106),
        LIGHT: (30, 32, 36),
        SIGN: (200, 190, 60),
        VEGETATION: (86, 102, 68),
        TERRAIN: (104, 118, 86),
        SKY: (196, 202, 210),
        PERSON: (70, 72, 80),
        RIDER: (70, 60, 80),
        CAR: (100, 104, 112),
        TRUCK: (170, 172, 176),
        BUS: (230, 230, 226),
        TRAIN: (210, 190, 40),
        MOTORCYCLE: (30, 32, 38),
        BICYCLE: (40, 44, 50),
        IGNORE: (60, 64, 70),
    },
    sky_top=(176, 188, 202),
    sky_horizon=(210, 214, 220),
    building_tints=((130, 124, 120), (176, 170, 160), (108, 112, 120), (150, 136, 122), (92, 90, 96)),
    car_paints=(
        (40, 42, 48),
        (170, 174, 182),
        (210, 212, 216),
        (60, 70, 100),
        (110, 40, 45),
        (85, 88, 95),
        (130, 130, 120),
    ),
    clothes=((25, 25, 30), (60, 60, 70), (120, 110, 100), (40, 50, 80), (150, 150, 155)),
    jitter=0.04,
    tint=(0.94, 0.99, 1.08),
    contrast=0.9,
    texture=0.75,
    shadow=0.12,
    grain=1.5,
    blur=1.1,
    horizon=(0.33, 0.43),
    p_building=0.8,
    p_forest=0.08,
    building_height=(10.0, 24.0),
    setback=(1.2, 3.0),
    p_sidewalk=0.95,
    p_tree=0.3,
    p_fence=0.15,
    p_wall=0.2,
    p_parked=0.85,
    moving_cars=1.6,
    persons=2.0,
    p_cyclist=0.3,
    p_motorcyclist=0.06,
    p_truck=0.1,
    p_bus=0.08,
    p_train=0.05,
    poles=3.0,
    hood=True,
)

_STYLES = {"kitti": _KITTI, "city": _CITY}

# Texture amplitudes per class: relative luminance noise at three scales, then absolute colour
# noise, which mostly varies along the class's own colour axis (leaves go yellow-green, not purple).
_TEX_DEFAULT = (0.04, 0.04, 0.03, 3.0)
_TEX = {
    ROAD: (0.08, 0.05, 0.06, 2.0),
    SIDEWALK: (0.06, 0.06, 0.05, 2.0),
    BUILDING: (0.10, 0.05, 0.04, 4.0),
    WALL: (0.08, 0.06, 0.05, 3.0),
    FENCE: (0.06, 0.14, 0.12, 4.0),
    VEGETATION: (0.12, 0.24, 0.16, 16.0),
    TERRAIN: (0.12, 0.15, 0.12, 11.0),
    SKY: (0.07, 0.01, 0.004, 1.0),
    CAR: (0.03, 0.02, 0.02, 2.0),
}
_GROUND_LUT = np.zeros(256, np.float32)
_GROUND_LUT[[ROAD, SIDEWALK, TERRAIN]] = 1.0  # surfaces that receive cast shadows
_CHROMA_AXIS = {VEGETATION: (0.8, 1.0, 0.15), TERRAIN: (1.0, 0.85, 0.35), BUILDING: (1.0, 0.8, 0.6)}


def _texture_luts(scale: float) -> tuple[np.ndarray, ...]:
    luts = np.tile(np.array(_TEX_DEFAULT, np.float32), (256, 1))
    for cls, amps in _TEX.items():
        luts[cls] = amps
    luts[:, :3] *= scale
    axis = np.full((256, 3), 0.6, np.float32)
    for cls, rgb in _CHROMA_AXIS.items():
        axis[cls] = rgb
    axis *= luts[:, 3:4]
    return (*(np.ascontiguousarray(luts[:, i]) for i in range(4)), axis)


# --------------------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class _Camera:
    """Pinhole camera over a flat road; X right, Y up (from the road), z forward, all in metres."""

    f: float
    x_v: float
    y_h: float
    curv: float  # lateral road offset grows as curv * z**2

    def pts(self, X: Any, Y: Any, z: Any) -> Points:
        X, Y, z = np.broadcast_arrays(np.asarray(X, float), np.asarray(Y, float), np.asarray(z, float))
        z = np.maximum(z, 0.5)
        zb = np.minimum(z, _Z_BEND)
        x = self.x_v + (X + self.curv * zb * zb) * self.f / z
        y = self.y_h + (CAM_H - Y) * self.f / z
        return np.stack([x, y], axis=-1)

    def facing(self, X: float, z: float) -> Callable[[Sequence[tuple[float, float]] | np.ndarray], Points]:
        """Projector for a plane facing the camera at depth z, in (metres right, metres up) of (X, 0, z)."""
        base = self.pts(X, 0.0, z)
        s = self.f / max(z, 0.5)

        def proj(local: Sequence[tuple[float, float]] | np.ndarray) -> Points:
            a = np.asarray(local, float)
            return np.stack([base[0] + a[:, 0] * s, base[1] - a[:, 1] * s], axis=-1)

        return proj


def _ellipse(
    cx: float, cy: float, rx: float, ry: float, n: int = 20, wobble: np.ndarray | None = None
) -> Points:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    r = 1.0 if wobble is None else wobble
    return np.stack([cx + rx * r * np.cos(t), cy + ry * r * np.sin(t)], axis=-1)


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


class _Canvas:
    """Image and label rasterised from the same polygons; `cls=None` draws image-only detail."""

    def __init__(self, height: int, width: int) -> None:
        self.h, self.w = height, width
        self.img = np.zeros((height, width, 3), np.float32)
        self.cls = np.full((height, width), SKY, np.uint8)
        self.shadow = np.zeros((height, width), np.float32)

    @staticmethod
    def _fixed(poly: np.ndarray | Sequence[Any]) -> np.ndarray:
        p = np.clip(np.asarray(poly, float), -1e5, 1e5)
        return np.round(p * _SUB).astype(np.int32).reshape(-1, 1, 2)

    def fill(self, polys: Sequence[Any], cls: int | None, colour: Sequence[float]) -> None:
        # One cv2 call per polygon: a single call fills overlaps with the even-odd rule.
        rgb = tuple(float(c) for c in colour)
        for poly in polys:
            pts = [self._fixed(poly)]
            if cls is not None:
                cv2.fillPoly(self.cls, pts, int(cls), cv2.LINE_8, _SHIFT)
            cv2.fillPoly(self.img, pts, rgb, cv2.LINE_8, _SHIFT)

    def fill_disjoint(self, polys: Sequence[Any], colour: Sequence[float]) -> None:
        """Image-only batch for many small non-overlapping shapes (windows)."""
        if len(polys):
            cv2.fillPoly(
                self.img, [self._fixed(p) for p in polys], tuple(float(c) for c in colour), cv2.LINE_8, _SHIFT
            )

    def stroke(
        self,
        lines: Sequence[Any],
        cls: int | None,
        colour: Sequence[float],
        width: float,
        closed: bool = False,
    ) -> None:
        t = max(1, int(round(width)))
        pts = [self._fixed(p) for p in lines]
        if cls is not None:
            cv2.polylines(self.cls, pts, closed, int(cls), t, cv2.LINE_8, _SHIFT)
        cv2.polylines(self.img, pts, closed, tuple(float(c) for c in colour), t, cv2.LINE_8, _SHIFT)

    def shade(self, poly: Any, amount: float) -> None:
        cv2.fillPoly(self.shadow, [self._fixed(poly)], float(amount), cv2.LINE_8, _SHIFT)


def _shaded(colour: Sequence[float], k: float) -> Colour:
    return (colour[0] * k, colour[1] * k, colour[2] * k)


def _smooth_noise(
    rng: np.random.Generator, height: int, width: int, cell: float, channels: int = 0
) -> np.ndarray:
    """Band-limited noise: a coarse Gaussian grid upsampled, so its feature size is about `cell` pixels."""
    gh = max(2, math.ceil(height / cell) + 1)
    gw = max(2, math.ceil(width / cell) + 1)
    shape = (gh, gw, channels) if channels else (gh, gw)
    grid = rng.standard_normal(shape, dtype=np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


# --------------------------------------------------------------------------------------- scene


@dataclass(frozen=True)
class _Road:
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


def _palette(rng: np.random.Generator, style: _Style) -> np.ndarray:
    pal = np.zeros((256, 3), np.float32)
    for cls, rgb in style.colours.items():
        hue = 1.0 + np.clip(rng.normal(0.0, style.jitter, 3), -2.5 * style.jitter, 2.5 * style.jitter)
        pal[cls] = np.asarray(rgb, np.float32) * rng.uniform(0.85, 1.15) * hue
    return np.clip(pal, 0.0, 255.0)


def _paint_sky(cv: _Canvas, rng: np.random.Generator, cam: _Camera, style: _Style) -> None:
    top = np.asarray(style.sky_top, np.float32) * (1.0 + rng.normal(0, style.jitter, 3)).astype(np.float32)
    hor = np.asarray(style.sky_horizon, np.float32) * (1.0 + rng.normal(0, style.jitter * 0.5, 3)).astype(
        np.float32
    )
    rows = np.arange(cv.h, dtype=np.float32)
    t = np.clip(rows / max(cam.y_h, 1.0), 0.0, 1.0) ** 0.6
    grad = top[None, :] * (1.0 - t[:, None]) + hor[None, :] * t[:, None]
    cv.img[:] = grad[:, None, :]
    cv.cls[:] = SKY


def _paint_ground(cv: _Canvas, rng: np.random.Generator, cam: _Camera, road: _Road, pal: np.ndarray) -> None:
    y0 = math.floor(cam.y_h) + 1
    if y0 >= cv.h:
        return
    dy = np.arange(y0, cv.h, dtype=np.float32) - np.float32(cam.y_h)
    z = np.minimum(np.float32(cam.f * CAM_H) / np.maximum(dy, 1e-3), 1e4)[:, None]
    cols = np.arange(cv.w, dtype=np.float32)[None, :] - np.float32(cam.x_v)
    zb = np.minimum(z, _Z_BEND)
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


def _paint_skyline(
    cv: _Canvas, rng: np.random.Generator, cam: _Camera, style: _Style, pal: np.ndarray
) -> None:
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
    bumps = np.abs(_smooth_noise(rng, 1, w, max(2.0, w / 120.0)))[0] * h * 0.025
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


def _paint_roadside(
    cv: _Canvas,
    rng: np.random.Generator,
    cam: _Camera,
    road: _Road,
    style: _Style,
    pal: np.ndarray,
    side: int,
) -> list[tuple[tuple[int, float], Callable[[_Canvas], None]]]:
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
            planes.append(
                (X, _forest(cv, rng, cam, side * X, z, z + length, height, pal[VEGETATION] * light))
            )
            z += length
        else:
            z += length * 0.6
    for _, paint in sorted(planes, key=lambda item: -item[0]):
        paint()

    items: list[tuple[tuple[int, float], Callable[[_Canvas], None]]] = []
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
            items.append(
                ((1, -zb), _barrier(rng, cam, side * (edge + 0.15), za, zb, kind, pal[kind] * light))
            )
    return items


def _building(
    cv: _Canvas,
    rng: np.random.Generator,
    cam: _Camera,
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
    cv: _Canvas,
    rng: np.random.Generator,
    cam: _Camera,
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


def _tree(
    rng: np.random.Generator, cam: _Camera, X: float, z: float, colour: np.ndarray
) -> Callable[[_Canvas], None]:
    trunk_h = rng.uniform(1.5, 3.0)
    r = rng.uniform(1.2, 3.5)
    ry = r * rng.uniform(0.9, 1.4)
    wobble = 1.0 + 0.12 * rng.standard_normal(18)
    shade = rng.uniform(0.8, 1.15)

    def paint(cv: _Canvas) -> None:
        p = cam.facing(X, z)
        cv.fill([p(_rect(-0.15, 0.0, 0.15, trunk_h + 0.3))], VEGETATION, (70, 55, 40))
        c = p([(0.0, trunk_h + ry * 0.8)])[0]
        s = cam.f / z
        cv.fill([_ellipse(c[0], c[1], r * s, ry * s, 18, wobble)], VEGETATION, colour * shade)
        cv.shade(cam.pts([X - r, X + r + 1.5, X + r + 1.5, X - r], 0.0, [z - r, z - r, z + r, z + r]), 0.8)

    return paint


def _barrier(
    rng: np.random.Generator, cam: _Camera, X: float, za: float, zb: float, kind: int, colour: np.ndarray
) -> Callable[[_Canvas], None]:
    height = {FENCE: rng.uniform(1.0, 2.0), WALL: rng.uniform(0.7, 3.0)}.get(kind, rng.uniform(0.6, 1.6))
    n = 12 if kind != VEGETATION else max(8, int((zb - za) / 0.8))
    tops = (
        np.full(n, height) if kind != VEGETATION else np.maximum(height + 0.15 * rng.standard_normal(n), 0.3)
    )
    posts = np.arange(za, zb, rng.uniform(1.5, 3.0))

    def paint(cv: _Canvas) -> None:
        zs = np.geomspace(za, zb, n)
        cv.fill([np.concatenate([cam.pts(X, tops, zs), cam.pts(X, 0.0, zs)[::-1]])], kind, colour)
        if kind == FENCE:
            for y in (height * 0.15, height * 0.9):
                rail = np.concatenate([cam.pts(X, y + 0.08, zs), cam.pts(X, y - 0.08, zs)[::-1]])
                cv.fill([rail], None, _shaded(colour, 0.6))
            for zp in posts:
                cv.fill(
                    [cam.pts(X, [0, 0, height, height], [zp, zp + 0.12, zp + 0.12, zp])],
                    None,
                    _shaded(colour, 0.5),
                )
        elif kind == WALL:
            cap = np.concatenate([cam.pts(X, height, zs), cam.pts(X, height - 0.12, zs)[::-1]])
            cv.fill([cap], None, _shaded(colour, 1.2))

    return paint


# --------------------------------------------------------------------------------------- road users


def _vehicle(
    rng: np.random.Generator, cam: _Camera, X: float, z: float, kind: int, paint: Sequence[float]
) -> Callable[[_Canvas], None]:
    """Rear face plus the side that faces the camera axis; cars get a cabin, others a box."""
    if kind == CAR:
        w, h, L = rng.uniform(1.6, 1.9), rng.uniform(1.4, 1.65), rng.uniform(3.8, 4.8)
    elif kind == TRUCK:
        w, h, L = rng.uniform(2.2, 2.5), rng.uniform(2.6, 3.6), rng.uniform(6.0, 9.0)
    elif kind == BUS:
        w, h, L = 2.5, rng.uniform(3.0, 3.3), rng.uniform(10.0, 12.5)
    else:  # tram
        w, h, L = 2.6, 3.4, rng.uniform(20.0, 30.0)
    body = np.asarray(paint, np.float32)
    glass = np.asarray((rng.uniform(25, 60),) * 3, np.float32) * np.float32(rng.uniform(0.9, 1.2))
    dark = (22.0, 22.0, 24.0)
    s = float(np.sign(X)) if abs(X) > w / 2 + 0.1 else 0.0
    xs = X - s * w / 2
    bottom = 0.3 if kind == CAR else 0.45
    hb = h * 0.58 if kind == CAR else h

    def paint_fn(cv: _Canvas) -> None:
        cv.shade(
            cam.pts(
                [X - w / 2 - 0.3, X + w / 2 + 0.6, X + w / 2 + 0.6, X - w / 2 - 0.3],
                0.0,
                [z - 0.3, z - 0.3, z + L, z + L],
            ),
            1.0,
        )
        # Back to front: near side, lid, cabin, roof, rear window; the rear face goes last.
        if s:
            cv.fill([cam.pts(xs, [bottom, bottom, hb, hb], [z, z + L, z + L, z])], kind, body * 0.8)
            for zw in (
                (z + 0.16 * L, z + 0.84 * L) if kind == CAR else (z + 0.12 * L, z + 0.7 * L, z + 0.85 * L)
            ):
                t = np.linspace(0, 2 * math.pi, 14, endpoint=False)
                cv.fill([cam.pts(xs, 0.34 + 0.34 * np.sin(t), zw + 0.34 * np.cos(t))], kind, dark)
            if kind in (BUS, TRAIN):
                band = cam.pts(
                    xs, [h * 0.4, h * 0.4, h * 0.85, h * 0.85], [z + 0.5, z + L - 0.5, z + L - 0.5, z + 0.5]
                )
                cv.fill([band], None, glass)
            elif kind == TRUCK:
                cab = cam.pts(
                    xs, [bottom, bottom, h * 0.8, h * 0.8], [z + 0.78 * L, z + L, z + L, z + 0.78 * L]
                )
                cv.fill([cab], None, body * 0.65)
        if kind == CAR:
            lid = cam.pts([X - w / 2, X + w / 2, X + w / 2, X - w / 2], hb, [z, z, z + L, z + L])
            cv.fill([lid], kind, body * 0.95)
            if s:
                xc = X - s * w * 0.42
                cab = cam.pts(xc, [hb, h, h, hb], [z + 0.22 * L, z + 0.38 * L, z + 0.72 * L, z + 0.86 * L])
                cv.fill([cab], kind, body * 0.75)
                win = cam.pts(
                    xc,
                    [hb + 0.06, h - 0.06, h - 0.06, hb + 0.06],
                    [z + 0.26 * L, z + 0.4 * L, z + 0.7 * L, z + 0.82 * L],
                )
                cv.fill([win], None, glass)
            roof = cam.pts(
                [X - 0.4 * w, X + 0.4 * w, X + 0.4 * w, X - 0.4 * w],
                h,
                [z + 0.38 * L, z + 0.38 * L, z + 0.72 * L, z + 0.72 * L],
            )
            cv.fill([roof], kind, body * 1.08)
            rear_win = np.concatenate(
                [
                    cam.pts([X - 0.46 * w, X + 0.46 * w], hb, z + 0.04 * L),
                    cam.pts([X + 0.4 * w, X - 0.4 * w], h, z + 0.38 * L),
                ]
            )
            cv.fill([rear_win], kind, glass)
        for dx in (-w / 2 + 0.16, w / 2 - 0.44):
            cv.fill(
                [cam.pts([X + dx, X + dx + 0.28, X + dx + 0.28, X + dx], [0.0, 0.0, 0.45, 0.45], z + 0.3)],
                kind,
                dark,
            )
        p = cam.facing(X, z)
        cv.fill([p(_rect(-w / 2, bottom, w / 2, hb))], kind, body)
        cv.fill([p(_rect(-w / 2, bottom, w / 2, bottom + 0.15))], None, body * 0.55)
        if kind == CAR:
            for sx in (-1, 1):
                cv.fill(
                    [p(_rect(sx * (w / 2 - 0.05), hb * 0.72, sx * (w / 2 - 0.35), hb * 0.9))],
                    None,
                    (170, 25, 25),
                )
        elif kind in (BUS, TRAIN):
            cv.fill([p(_rect(-w / 2 + 0.2, h * 0.5, w / 2 - 0.2, h * 0.85))], None, glass)
        else:
            cv.fill([p(_rect(-0.03, bottom + 0.1, 0.03, h - 0.1))], None, body * 0.7)

    return paint_fn


def _person(
    rng: np.random.Generator, cam: _Camera, X: float, z: float, kind: int, style: _Style
) -> Callable[[_Canvas], None]:
    h = rng.uniform(1.55, 1.95) if kind == PERSON else rng.uniform(1.6, 1.85)
    top = np.asarray(style.clothes[rng.integers(len(style.clothes))], np.float32) * np.float32(
        rng.uniform(0.8, 1.2)
    )
    legs = np.asarray(style.clothes[rng.integers(len(style.clothes))], np.float32) * np.float32(
        rng.uniform(0.7, 1.1)
    )
    skin = (rng.uniform(150, 220), rng.uniform(110, 170), rng.uniform(90, 140))
    stride = rng.uniform(-0.18, 0.18)

    def paint(cv: _Canvas) -> None:
        p = cam.facing(X, z)
        hip, shoulder = 0.52 * h, 0.82 * h
        cv.shade(
            cam.pts([X - 0.3, X + 0.6, X + 0.6, X - 0.3], 0.0, [z - 0.2, z - 0.2, z + 0.4, z + 0.4]), 0.9
        )
        for sx in (-1, 1):
            cv.fill(
                [
                    p(
                        [
                            (sx * 0.04, hip),
                            (sx * 0.19, hip),
                            (sx * 0.12 + sx * stride, 0.0),
                            (sx * 0.02 + sx * stride, 0.0),
                        ]
                    )
                ],
                kind,
                legs,
            )
            cv.fill(
                [
                    p(
                        [
                            (sx * 0.2, shoulder),
                            (sx * 0.27, shoulder),
                            (sx * 0.24 + sx * 0.5 * stride, hip - 0.05),
                            (sx * 0.18 + sx * 0.5 * stride, hip - 0.05),
                        ]
                    )
                ],
                kind,
                top * 0.9,
            )
        cv.fill([p([(-0.2, hip), (0.2, hip), (0.22, shoulder), (-0.22, shoulder)])], kind, top)
        c = p([(0.0, h - 0.12)])[0]
        s = cam.f / z
        cv.fill([_ellipse(c[0], c[1], 0.1 * s, 0.12 * s, 12)], kind, skin)

    return paint


def _two_wheeler(
    rng: np.random.Generator, cam: _Camera, X: float, z: float, kind: int, ridden: bool, style: _Style
) -> Callable[[_Canvas], None]:
    """Side view of a bicycle or motorcycle, with its rider (labelled rider) when ridden."""
    r = 0.34 if kind == BICYCLE else 0.32
    base = (rng.uniform(0.5, 0.6) if kind == BICYCLE else rng.uniform(0.65, 0.75)) * rng.choice([-1.0, 1.0])
    frame = np.asarray(style.colours[kind], np.float32) * np.float32(rng.uniform(0.7, 2.2))
    jacket = np.asarray(style.clothes[rng.integers(len(style.clothes))], np.float32)
    skin = (rng.uniform(150, 220), rng.uniform(110, 170), rng.uniform(90, 140))

    def paint(cv: _Canvas) -> None:
        p = cam.facing(X, z)
        s = cam.f / z
        for cx in (-base, base):
            c = p([(cx, r)])[0]
            ring = _ellipse(c[0], c[1], r * s, r * s, 16)
            if kind == BICYCLE:
                cv.stroke([ring], kind, (25, 25, 25), max(1.0, 0.06 * s), closed=True)
            else:
                cv.fill([ring], kind, (22, 22, 22))
        if kind == BICYCLE:
            tube = p(
                [(-base, r), (0.0, r), (base * 0.75, 0.95), (-base * 0.1, 0.95), (0.0, r), (-base * 0.2, 1.0)]
            )
            cv.stroke([tube], kind, frame, max(1.0, 0.05 * s))
            cv.stroke([p([(base * 0.75, 0.95), (base, r)])], kind, frame, max(1.0, 0.05 * s))
        else:
            cv.fill(
                [p([(-base * 0.8, r), (base * 0.8, r), (base * 0.6, 0.95), (-base * 0.5, 1.0)])], kind, frame
            )
        if ridden:
            seat = 1.0 if kind == BICYCLE else 0.95
            lean = 0.25 * np.sign(base)
            cv.fill(
                [p([(-base * 0.25, seat), (0.05, 0.45), (0.12, 0.45), (-base * 0.05, seat)])],
                RIDER,
                jacket * 0.6,
            )
            cv.fill(
                [
                    p(
                        [
                            (-base * 0.35, seat),
                            (-base * 0.05, seat),
                            (lean + 0.1, seat + 0.62),
                            (lean - 0.15, seat + 0.6),
                        ]
                    )
                ],
                RIDER,
                jacket,
            )
            c = p([(lean, seat + 0.75)])[0]
            cv.fill(
                [_ellipse(c[0], c[1], 0.11 * s, 0.12 * s, 12)],
                RIDER,
                skin if kind == BICYCLE else (30, 30, 30),
            )

    return paint


def _pole(
    rng: np.random.Generator, cam: _Camera, X: float, z: float, side: int, pal: np.ndarray
) -> Callable[[_Canvas], None]:
    """A bare pole, or one carrying a sign, a traffic light on a boom, or a street lamp."""
    r = rng.random()
    topper = "sign" if r < 0.45 else ("light" if r < 0.6 else ("lamp" if r < 0.8 else None))
    height = rng.uniform(2.5, 3.5) if topper == "sign" else rng.uniform(4.5, 8.5)
    width = rng.uniform(0.1, 0.25)
    colour = pal[POLE] * np.float32(rng.uniform(0.8, 1.2))
    shape = rng.integers(3)
    sign_colour = [pal[SIGN], np.asarray((200, 30, 30), np.float32), np.asarray((230, 230, 225), np.float32)][
        rng.integers(3)
    ]
    arm = rng.uniform(2.0, 4.5)
    lit = rng.integers(3)

    def paint(cv: _Canvas) -> None:
        p = cam.facing(X, z)
        s = cam.f / z
        cv.fill([p(_rect(-width / 2, 0.0, width / 2, height))], POLE, colour)
        if topper == "sign":
            cy = height + 0.3
            if shape == 0:
                face = p(_rect(-0.32, cy - 0.32, 0.32, cy + 0.32))
                inner = p(_rect(-0.22, cy - 0.22, 0.22, cy + 0.22))
            elif shape == 1:
                c = p([(0.0, cy)])[0]
                face, inner = (
                    _ellipse(c[0], c[1], 0.35 * s, 0.35 * s, 16),
                    _ellipse(c[0], c[1], 0.24 * s, 0.24 * s, 16),
                )
            else:
                face = p([(-0.4, cy + 0.3), (0.4, cy + 0.3), (0.0, cy - 0.4)])
                inner = p([(-0.25, cy + 0.2), (0.25, cy + 0.2), (0.0, cy - 0.25)])
            cv.fill([face], SIGN, sign_colour)
            cv.fill([inner], None, 255.0 - sign_colour * 0.7)
        elif topper == "light":
            boom = -side * arm
            cv.fill([p(_rect(min(0.0, boom), height - 0.15, max(0.0, boom), height))], POLE, colour)
            box = p(_rect(boom - 0.17, height - 1.05, boom + 0.17, height - 0.1))
            cv.fill([box], LIGHT, pal[LIGHT])
            for i, rgb in enumerate(((220, 40, 30), (230, 170, 30), (40, 200, 80))):
                c = p([(boom, height - 0.3 - 0.28 * i)])[0]
                k = 1.0 if i == lit else 0.3
                cv.fill([_ellipse(c[0], c[1], 0.09 * s, 0.09 * s, 10)], None, _shaded(rgb, k))
        elif topper == "lamp":
            boom = -side * 1.2
            cv.fill([p(_rect(min(0.0, boom), height - 0.1, max(0.0, boom), height))], POLE, colour)
            cv.fill(
                [p(_rect(boom - 0.3, height - 0.22, boom + 0.1 * side, height - 0.05))], POLE, colour * 1.2
            )

    return paint


def _static(rng: np.random.Generator, cam: _Camera, X: float, z: float) -> Callable[[_Canvas], None]:
    """Bins, boxes and advertising pillars: Cityscapes calls them 'static' and they train as ignore."""
    w, h = rng.uniform(0.5, 1.3), rng.uniform(0.8, 2.8)
    colour = (rng.uniform(40, 200), rng.uniform(40, 200), rng.uniform(40, 200))

    def paint(cv: _Canvas) -> None:
        cv.fill([cam.facing(X, z)(_rect(-w / 2, 0.0, w / 2, h))], IGNORE, colour)

    return paint


def _street(
    rng: np.random.Generator, cam: _Camera, road: _Road, style: _Style, pal: np.ndarray, z_near: float
) -> list[tuple[float, Callable[[_Canvas], None]]]:
    items: list[tuple[float, Callable[[_Canvas], None]]] = []

    def paint_of(kind: int) -> np.ndarray:
        if kind == CAR:
            return np.asarray(style.car_paints[rng.integers(len(style.car_paints))], np.float32) * np.float32(
                rng.uniform(0.85, 1.15)
            )
        return pal[kind] * np.float32(rng.uniform(0.85, 1.15))

    for side in (-1, 1):
        half, walk = road.half(side), road.walk(side)
        if half > 3.0 and rng.random() < style.p_parked:
            z = z_near * rng.uniform(0.7, 1.6)
            fill = rng.uniform(0.5, 0.95)
            while z < 75.0:
                big = rng.random()
                kind = (
                    TRUCK
                    if big < style.p_truck * 0.1
                    else (BUS if big < style.p_truck * 0.1 + style.p_bus * 0.1 else CAR)
                )
                length = 4.4 if kind == CAR else 9.0
                if rng.random() < fill:
                    X = side * (half - rng.uniform(0.95, 1.25))
                    items.append((z, _vehicle(rng, cam, X, z, kind, paint_of(kind))))
                z += length + rng.uniform(0.4, 3.0)
        for _ in range(rng.poisson(style.poles)):
            z = rng.uniform(z_near, 60.0)
            X = side * (half + min(walk, 0.6) * rng.uniform(0.3, 0.9) + 0.15)
            items.append((z, _pole(rng, cam, X, z, side, pal)))
        if walk > 0.5:
            for _ in range(rng.poisson(0.35)):
                z = rng.uniform(z_near, 40.0)
                X = side * (half + rng.uniform(0.4, walk - 0.2))
                items.append((z, _static(rng, cam, X, z)))
            if rng.random() < style.p_cyclist * 0.4:
                z = rng.uniform(z_near * 1.2, 35.0)
                X = side * (half + rng.uniform(0.3, walk))
                items.append((z, _two_wheeler(rng, cam, X, z, BICYCLE, False, style)))

    n_persons = rng.poisson(style.persons)
    for _ in range(n_persons):
        side = int(rng.choice([-1, 1]))
        half, walk = road.half(side), road.walk(side)
        z = rng.uniform(z_near * 1.1, 45.0)
        X = side * (half + rng.uniform(0.2, max(walk, 0.6)))
        if rng.random() < 0.12:  # crossing the road
            X = rng.uniform(-road.left + 0.5, road.right - 0.5)
        items.append((z, _person(rng, cam, X, z, PERSON, style)))
    if n_persons and rng.random() < 0.4:  # pedestrians come in groups
        z = rng.uniform(z_near * 1.2, 30.0)
        side = int(rng.choice([-1, 1]))
        for k in range(int(rng.integers(2, 4))):
            X = side * (road.half(side) + 0.3 + 0.55 * k)
            items.append((z + 0.3 * k, _person(rng, cam, X, z + 0.3 * k, PERSON, style)))

    for kind, p in ((BICYCLE, style.p_cyclist), (MOTORCYCLE, style.p_motorcyclist)):
        if rng.random() < p:
            z = rng.uniform(z_near * 1.2, 40.0)
            X = road.right - rng.uniform(0.4, 1.2)
            items.append((z, _two_wheeler(rng, cam, X, z, kind, True, style)))

    for _ in range(rng.poisson(style.moving_cars)):
        same_lane = rng.random() < 0.5
        X = rng.uniform(-0.4, 0.4) if same_lane else road.lane_x - rng.uniform(1.4, 2.0)
        z = rng.uniform(max(z_near, 8.0), 70.0)
        items.append((z, _vehicle(rng, cam, X, z, CAR, paint_of(CAR))))
    for kind, p in ((TRUCK, style.p_truck), (BUS, style.p_bus), (TRAIN, style.p_train)):
        if rng.random() < p:
            X = (
                road.lane_x - 1.7
                if kind == TRAIN
                else (rng.uniform(-0.3, 0.3) if rng.random() < 0.5 else road.lane_x - 1.7)
            )
            z = rng.uniform(max(z_near, 10.0), 50.0)
            items.append((z, _vehicle(rng, cam, X, z, kind, paint_of(kind))))
    return items


def _paint_hood(cv: _Canvas, rng: np.random.Generator) -> None:
    h, w = cv.h, cv.w
    depth = h * rng.uniform(0.05, 0.08)
    xs = np.linspace(-0.1 * w, 1.1 * w, 24)
    ys = h - depth * (1.0 - 0.5 * ((xs - w / 2) / (0.6 * w)) ** 2)
    poly = np.concatenate([np.stack([xs, ys], -1), [(1.1 * w, h + 2.0), (-0.1 * w, h + 2.0)]])
    colour = (rng.uniform(20, 60),) * 3
    cv.fill([poly], IGNORE, colour)
    glare = np.concatenate(
        [
            np.stack([xs[6:18], ys[6:18] + 0.2 * depth], -1),
            np.stack([xs[17:5:-1], ys[17:5:-1] + 0.35 * depth], -1),
        ]
    )
    cv.fill([glare], None, _shaded(colour, 1.8))


def _uniform_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-mean, unit-variance noise; uniform is several times cheaper than Gaussian and looks alike."""
    return (rng.random(shape, dtype=np.float32) - np.float32(0.5)) * np.float32(math.sqrt(12.0))


def _finish(cv: _Canvas, rng: np.random.Generator, style: _Style) -> np.ndarray:
    """Texture, shadows, lighting, blur and sensor noise: everything that makes colours unreliable."""
    h, w = cv.h, cv.w
    cls = cv.cls
    low_lut, mid_lut, fine_lut, chroma_lut, axis_lut = _texture_luts(style.texture)
    lum = cv2.LUT(cls, low_lut) * _smooth_noise(rng, h, w, max(4.0, h / 5.0))
    lum += cv2.LUT(cls, mid_lut) * _smooth_noise(rng, h, w, max(1.5, h / 60.0))
    lum += cv2.LUT(cls, fine_lut) * _uniform_noise(rng, (h, w))
    lum += np.float32(1.0)

    if style.shadow > 0:
        ground = cv2.LUT(cls, _GROUND_LUT)
        blotches = np.clip((_smooth_noise(rng, h, w, max(4.0, h / 8.0)) - 0.5) * 2.5, 0.0, 1.0)
        shadow = np.clip(cv.shadow + blotches * np.float32(rng.uniform(0.0, 1.0)), 0.0, 1.0)
        lum *= 1.0 - np.float32(style.shadow) * shadow * ground

    gx = np.linspace(-0.5, 0.5, w, dtype=np.float32) * np.float32(rng.uniform(-0.35, 0.35))
    gy = np.linspace(-0.5, 0.5, h, dtype=np.float32) * np.float32(rng.uniform(-0.25, 0.25))
    vx = np.linspace(-1.0, 1.0, w, dtype=np.float32) ** 2
    vy = np.linspace(-1.0, 1.0, h, dtype=np.float32) ** 2
    vig = np.float32(rng.uniform(0.05, 0.25))
    gain = (1.0 + gy[:, None] + gx[None, :]) * (1.0 - vig * 0.5 * (vy[:, None] + vx[None, :]))
    lum *= gain * np.float32(rng.uniform(0.8, 1.15))

    img = cv.img * lum[:, :, None]
    cell = max(1.5, h / 50.0)
    img += np.take(axis_lut, cls, axis=0) * _smooth_noise(rng, h, w, cell)[:, :, None]
    img += cv2.LUT(cls, 0.3 * chroma_lut)[:, :, None] * _smooth_noise(rng, h, w, cell, channels=3)
    tint = np.asarray(style.tint, np.float32) * rng.uniform(0.96, 1.04, 3).astype(np.float32)
    contrast = np.float32(style.contrast * rng.uniform(0.9, 1.1))
    img *= tint * contrast
    img += np.float32(110.0) * (1.0 - contrast)

    sigma = style.blur * rng.uniform(0.7, 1.3) * h / 375.0
    if sigma >= 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img += _uniform_noise(rng, (h, w, 3)) * np.float32(style.grain * rng.uniform(0.7, 1.3))
    img += np.float32(0.5)
    return np.clip(img, 0.0, 255.0, out=img).astype(np.uint8)


def render(
    rng: np.random.Generator, height: int, width: int, domain: str = "kitti"
) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (RGB uint8 HxWx3, train-id uint8 HxW). Deterministic given the generator state."""
    style = _STYLES[domain]
    h, w = height, width
    cam = _Camera(
        f=0.58 * w * rng.uniform(0.92, 1.08),
        x_v=w * rng.uniform(0.4, 0.6),
        y_h=h * rng.uniform(*style.horizon),
        curv=rng.uniform(-1.0, 1.0) * 0.0012,
    )
    # Depth seen at the bottom row; capped so very wide images still get objects in their placement ranges.
    z_near = min(cam.f * CAM_H / max(h - 1 - cam.y_h, 1.0), 20.0)
    has_walk = (rng.random() < style.p_sidewalk, rng.random() < style.p_sidewalk)
    road = _Road(
        left=rng.uniform(4.5, 8.0),
        right=rng.uniform(2.2, 5.0),
        walk_left=rng.uniform(1.5, 4.0) if has_walk[0] else 0.0,
        walk_right=rng.uniform(1.5, 4.0) if has_walk[1] else 0.0,
        lane_x=rng.uniform(-1.9, -1.5),
        centre_line=bool(rng.random() < 0.7),
        edge_lines=bool(rng.random() < 0.4),
    )
    pal = _palette(rng, style)
    cv = _Canvas(h, w)
    _paint_sky(cv, rng, cam, style)
    _paint_ground(cv, rng, cam, road, pal)
    _paint_skyline(cv, rng, cam, style, pal)
    side_items = _paint_roadside(cv, rng, cam, road, style, pal, -1)
    side_items += _paint_roadside(cv, rng, cam, road, style, pal, 1)
    for _, paint in sorted(side_items, key=lambda item: item[0]):
        paint(cv)
    # Road users and street furniture stand nearer the road than anything above: far to near.
    for _, paint in sorted(_street(rng, cam, road, style, pal, z_near), key=lambda item: -item[0]):
        paint(cv)
    if style.hood:
        _paint_hood(cv, rng)
    rgb = _finish(cv, rng, style)
    label = cv.cls.copy()
    if rng.random() < 0.2:  # an unlabelled patch, as annotators leave in real datasets
        blob = _ellipse(
            rng.uniform(0, w),
            rng.uniform(cam.y_h, h),
            w * rng.uniform(0.01, 0.05),
            h * rng.uniform(0.02, 0.08),
            16,
        )
        cv2.fillPoly(label, [_Canvas._fixed(blob)], IGNORE, cv2.LINE_8, _SHIFT)
    return rgb, label


# --------------------------------------------------------------------------------------- dataset


def _check(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise DataError(
            f"synth.{field}: {value!r} is not an integer >= {minimum}; pass --{field} {minimum} or more"
        )
    return int(value)


def image_seed(seed: int, split: str, index: int, domain: str) -> np.random.SeedSequence:
    """Each image has its own stream, so any subset can be regenerated (or generated in parallel) alone."""
    return np.random.SeedSequence([seed, _SPLIT_CODE[split], index, _DOMAIN_CODE[domain]])


def synthesize(
    out: Path,
    train: int = 150,
    test: int = 50,
    height: int = 375,
    width: int = 1242,
    seed: int = 0,
    domain: str = "kitti",
    overwrite: bool = False,
) -> Path:
    """Write a synthetic road-scene dataset in mmseg layout; same arguments give byte-identical files."""
    train = _check("train", train, 1)
    test = _check("test", test, 1)
    height = _check("height", height, 32)
    width = _check("width", width, 32)
    seed = _check("seed", seed, 0)
    if domain not in DOMAINS:
        raise DataError(
            f"synth.domain: {domain!r} is not one of {', '.join(DOMAINS)}; "
            "pass --domain kitti or --domain city"
        )
    parameters = {
        "generator": GENERATOR,
        "train": train,
        "test": test,
        "height": height,
        "width": width,
        "seed": seed,
        "domain": domain,
    }
    jobs = [("train", i) for i in range(train)] + [("val", i) for i in range(test)]

    def build(tmp: Path) -> dict[str, Any]:
        def one(job: tuple[str, int]) -> None:
            split, index = job
            rgb, label = render(
                np.random.default_rng(image_seed(seed, split, index, domain)), height, width, domain
            )
            stem = f"{index:06d}.png"
            save_png(tmp / IMG_DIR / split / stem, rgb)
            save_png(tmp / ANN_DIR / split / stem, label)

        # numpy, cv2 and zlib release the GIL for the heavy parts; every image has its own seed,
        # so the thread count never changes the output.
        workers = max(1, min(4, os.cpu_count() or 1, len(jobs)))
        if workers == 1:
            for job in jobs:
                one(job)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(one, jobs):
                    pass
        return {"counts": {"train": train, "val": test}}

    return write_dataset(out, "synth", parameters, build, overwrite=overwrite)
