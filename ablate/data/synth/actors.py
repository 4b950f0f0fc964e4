"""Road users and street furniture: how each looks, and where `street` places them.

Every actor is built in two steps: its random parameters are drawn when it is placed, and a
painter is returned that draws it later, so the scene can paint far to near without the paint
order changing which random numbers each actor gets.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ablate.data.synth.camera import Camera, ellipse, rect
from ablate.data.synth.canvas import Canvas, ColourLike, shaded
from ablate.data.synth.labels import (
    BICYCLE,
    BUS,
    CAR,
    IGNORE,
    LIGHT,
    MOTORCYCLE,
    PERSON,
    POLE,
    RIDER,
    SIGN,
    TRAIN,
    TRUCK,
)
from ablate.data.synth.scenery import Road
from ablate.data.synth.styles import Style


def _vehicle(
    rng: np.random.Generator, cam: Camera, X: float, z: float, kind: int, paint: ColourLike
) -> Callable[[Canvas], None]:
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

    def paint_fn(cv: Canvas) -> None:
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
            for zw in (z + 0.16 * L, z + 0.84 * L) if kind == CAR else (z + 0.12 * L, z + 0.7 * L, z + 0.85 * L):
                t = np.linspace(0, 2 * math.pi, 14, endpoint=False)
                cv.fill([cam.pts(xs, 0.34 + 0.34 * np.sin(t), zw + 0.34 * np.cos(t))], kind, dark)
            if kind in (BUS, TRAIN):
                band = cam.pts(xs, [h * 0.4, h * 0.4, h * 0.85, h * 0.85], [z + 0.5, z + L - 0.5, z + L - 0.5, z + 0.5])
                cv.fill([band], None, glass)
            elif kind == TRUCK:
                cab = cam.pts(xs, [bottom, bottom, h * 0.8, h * 0.8], [z + 0.78 * L, z + L, z + L, z + 0.78 * L])
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
        cv.fill([p(rect(-w / 2, bottom, w / 2, hb))], kind, body)
        cv.fill([p(rect(-w / 2, bottom, w / 2, bottom + 0.15))], None, body * 0.55)
        if kind == CAR:
            for sx in (-1, 1):
                cv.fill(
                    [p(rect(sx * (w / 2 - 0.05), hb * 0.72, sx * (w / 2 - 0.35), hb * 0.9))],
                    None,
                    (170, 25, 25),
                )
        elif kind in (BUS, TRAIN):
            cv.fill([p(rect(-w / 2 + 0.2, h * 0.5, w / 2 - 0.2, h * 0.85))], None, glass)
        else:
            cv.fill([p(rect(-0.03, bottom + 0.1, 0.03, h - 0.1))], None, body * 0.7)

    return paint_fn


def _person(rng: np.random.Generator, cam: Camera, X: float, z: float, style: Style) -> Callable[[Canvas], None]:
    """A pedestrian; riders are drawn with their bicycle or motorcycle instead."""
    h = rng.uniform(1.55, 1.95)
    top = np.asarray(style.clothes[rng.integers(len(style.clothes))], np.float32) * np.float32(rng.uniform(0.8, 1.2))
    legs = np.asarray(style.clothes[rng.integers(len(style.clothes))], np.float32) * np.float32(rng.uniform(0.7, 1.1))
    skin = (rng.uniform(150, 220), rng.uniform(110, 170), rng.uniform(90, 140))
    stride = rng.uniform(-0.18, 0.18)

    def paint(cv: Canvas) -> None:
        p = cam.facing(X, z)
        hip, shoulder = 0.52 * h, 0.82 * h
        cv.shade(cam.pts([X - 0.3, X + 0.6, X + 0.6, X - 0.3], 0.0, [z - 0.2, z - 0.2, z + 0.4, z + 0.4]), 0.9)
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
                PERSON,
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
                PERSON,
                top * 0.9,
            )
        cv.fill([p([(-0.2, hip), (0.2, hip), (0.22, shoulder), (-0.22, shoulder)])], PERSON, top)
        c = p([(0.0, h - 0.12)])[0]
        s = cam.f / z
        cv.fill([ellipse(c[0], c[1], 0.1 * s, 0.12 * s, 12)], PERSON, skin)

    return paint


def _two_wheeler(
    rng: np.random.Generator, cam: Camera, X: float, z: float, kind: int, ridden: bool, style: Style
) -> Callable[[Canvas], None]:
    """Side view of a bicycle or motorcycle, with its rider (labelled rider) when ridden."""
    r = 0.34 if kind == BICYCLE else 0.32
    base = (rng.uniform(0.5, 0.6) if kind == BICYCLE else rng.uniform(0.65, 0.75)) * rng.choice([-1.0, 1.0])
    frame = np.asarray(style.colours[kind], np.float32) * np.float32(rng.uniform(0.7, 2.2))
    jacket = np.asarray(style.clothes[rng.integers(len(style.clothes))], np.float32)
    skin = (rng.uniform(150, 220), rng.uniform(110, 170), rng.uniform(90, 140))

    def paint(cv: Canvas) -> None:
        p = cam.facing(X, z)
        s = cam.f / z
        for cx in (-base, base):
            c = p([(cx, r)])[0]
            ring = ellipse(c[0], c[1], r * s, r * s, 16)
            if kind == BICYCLE:
                cv.stroke([ring], kind, (25, 25, 25), max(1.0, 0.06 * s), closed=True)
            else:
                cv.fill([ring], kind, (22, 22, 22))
        if kind == BICYCLE:
            tube = p([(-base, r), (0.0, r), (base * 0.75, 0.95), (-base * 0.1, 0.95), (0.0, r), (-base * 0.2, 1.0)])
            cv.stroke([tube], kind, frame, max(1.0, 0.05 * s))
            cv.stroke([p([(base * 0.75, 0.95), (base, r)])], kind, frame, max(1.0, 0.05 * s))
        else:
            cv.fill([p([(-base * 0.8, r), (base * 0.8, r), (base * 0.6, 0.95), (-base * 0.5, 1.0)])], kind, frame)
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
                [ellipse(c[0], c[1], 0.11 * s, 0.12 * s, 12)],
                RIDER,
                skin if kind == BICYCLE else (30, 30, 30),
            )

    return paint


def _pole(
    rng: np.random.Generator, cam: Camera, X: float, z: float, side: int, pal: np.ndarray
) -> Callable[[Canvas], None]:
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

    def paint(cv: Canvas) -> None:
        p = cam.facing(X, z)
        s = cam.f / z
        cv.fill([p(rect(-width / 2, 0.0, width / 2, height))], POLE, colour)
        if topper == "sign":
            cy = height + 0.3
            if shape == 0:
                face = p(rect(-0.32, cy - 0.32, 0.32, cy + 0.32))
                inner = p(rect(-0.22, cy - 0.22, 0.22, cy + 0.22))
            elif shape == 1:
                c = p([(0.0, cy)])[0]
                face, inner = (
                    ellipse(c[0], c[1], 0.35 * s, 0.35 * s, 16),
                    ellipse(c[0], c[1], 0.24 * s, 0.24 * s, 16),
                )
            else:
                face = p([(-0.4, cy + 0.3), (0.4, cy + 0.3), (0.0, cy - 0.4)])
                inner = p([(-0.25, cy + 0.2), (0.25, cy + 0.2), (0.0, cy - 0.25)])
            cv.fill([face], SIGN, sign_colour)
            cv.fill([inner], None, 255.0 - sign_colour * 0.7)
        elif topper == "light":
            boom = -side * arm
            cv.fill([p(rect(min(0.0, boom), height - 0.15, max(0.0, boom), height))], POLE, colour)
            box = p(rect(boom - 0.17, height - 1.05, boom + 0.17, height - 0.1))
            cv.fill([box], LIGHT, pal[LIGHT])
            for i, rgb in enumerate(((220, 40, 30), (230, 170, 30), (40, 200, 80))):
                c = p([(boom, height - 0.3 - 0.28 * i)])[0]
                k = 1.0 if i == lit else 0.3
                cv.fill([ellipse(c[0], c[1], 0.09 * s, 0.09 * s, 10)], None, shaded(rgb, k))
        elif topper == "lamp":
            boom = -side * 1.2
            cv.fill([p(rect(min(0.0, boom), height - 0.1, max(0.0, boom), height))], POLE, colour)
            cv.fill([p(rect(boom - 0.3, height - 0.22, boom + 0.1 * side, height - 0.05))], POLE, colour * 1.2)

    return paint


def _static(rng: np.random.Generator, cam: Camera, X: float, z: float) -> Callable[[Canvas], None]:
    """Bins, boxes and advertising pillars: Cityscapes calls them 'static' and they train as ignore."""
    w, h = rng.uniform(0.5, 1.3), rng.uniform(0.8, 2.8)
    colour = (rng.uniform(40, 200), rng.uniform(40, 200), rng.uniform(40, 200))

    def paint(cv: Canvas) -> None:
        cv.fill([cam.facing(X, z)(rect(-w / 2, 0.0, w / 2, h))], IGNORE, colour)

    return paint


def street(
    rng: np.random.Generator, cam: Camera, road: Road, style: Style, pal: np.ndarray, z_near: float
) -> list[tuple[float, Callable[[Canvas], None]]]:
    items: list[tuple[float, Callable[[Canvas], None]]] = []

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
        items.append((z, _person(rng, cam, X, z, style)))
    if n_persons and rng.random() < 0.4:  # pedestrians come in groups
        z = rng.uniform(z_near * 1.2, 30.0)
        side = int(rng.choice([-1, 1]))
        for k in range(int(rng.integers(2, 4))):
            X = side * (road.half(side) + 0.3 + 0.55 * k)
            items.append((z + 0.3 * k, _person(rng, cam, X, z + 0.3 * k, style)))

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
