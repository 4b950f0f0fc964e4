"""One scene from one random stream: camera and road first, then scenery, actors and the finish.

The order of random draws is the generator's contract: `render` draws in a fixed sequence, so
an image depends only on its seed, never on the thread or the order it was rendered in. Changing
what is drawn, or in which order, changes every dataset; bump `GENERATOR` in `dataset.py` when it does.
"""

from __future__ import annotations

import numpy as np

from ablate.data.synth.actors import street
from ablate.data.synth.camera import CAM_H, Camera, ellipse
from ablate.data.synth.canvas import Canvas, fill_label, shaded
from ablate.data.synth.finish import finish
from ablate.data.synth.labels import IGNORE
from ablate.data.synth.scenery import Road, paint_ground, paint_roadside, paint_sky, paint_skyline
from ablate.data.synth.styles import STYLES, palette


def _paint_hood(cv: Canvas, rng: np.random.Generator) -> None:
    """The ego-vehicle bonnet, labelled ignore as in Cityscapes."""
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
    cv.fill([glare], None, shaded(colour, 1.8))


def render(rng: np.random.Generator, height: int, width: int, domain: str = "kitti") -> tuple[np.ndarray, np.ndarray]:
    """One scene: (RGB uint8 HxWx3, train-id uint8 HxW). Deterministic given the generator state."""
    style = STYLES[domain]
    h, w = height, width
    cam = Camera(
        f=0.58 * w * rng.uniform(0.92, 1.08),
        x_v=w * rng.uniform(0.4, 0.6),
        y_h=h * rng.uniform(*style.horizon),
        curv=rng.uniform(-1.0, 1.0) * 0.0012,
    )
    # Depth seen at the bottom row; capped so very wide images still get objects in their placement ranges.
    z_near = min(cam.f * CAM_H / max(h - 1 - cam.y_h, 1.0), 20.0)
    has_walk = (rng.random() < style.p_sidewalk, rng.random() < style.p_sidewalk)
    road = Road(
        left=rng.uniform(4.5, 8.0),
        right=rng.uniform(2.2, 5.0),
        walk_left=rng.uniform(1.5, 4.0) if has_walk[0] else 0.0,
        walk_right=rng.uniform(1.5, 4.0) if has_walk[1] else 0.0,
        lane_x=rng.uniform(-1.9, -1.5),
        centre_line=bool(rng.random() < 0.7),
        edge_lines=bool(rng.random() < 0.4),
    )
    pal = palette(rng, style)
    cv = Canvas(h, w)
    paint_sky(cv, rng, cam, style)
    paint_ground(cv, rng, cam, road, pal)
    paint_skyline(cv, rng, cam, style, pal)
    side_items = paint_roadside(cv, rng, cam, road, style, pal, -1)
    side_items += paint_roadside(cv, rng, cam, road, style, pal, 1)
    for _, paint in sorted(side_items, key=lambda item: item[0]):
        paint(cv)
    # Road users and street furniture stand nearer the road than anything above: far to near.
    for _, paint in sorted(street(rng, cam, road, style, pal, z_near), key=lambda item: -item[0]):
        paint(cv)
    if style.hood:
        _paint_hood(cv, rng)
    rgb = finish(cv, rng, style)
    label = cv.cls.copy()
    if rng.random() < 0.2:  # an unlabelled patch, as annotators leave in real datasets
        blob = ellipse(
            rng.uniform(0, w),
            rng.uniform(cam.y_h, h),
            w * rng.uniform(0.01, 0.05),
            h * rng.uniform(0.02, 0.08),
            16,
        )
        fill_label(label, blob, IGNORE)
    return rgb, label
