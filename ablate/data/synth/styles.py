"""The two domains a study can train and test across: same classes, different look and layout.

Everything about how `kitti` (sunny, rural-suburban, sharp) and `city` (overcast, dense, soft, with
the ego bonnet in view) look and are laid out lives in their `Style`; the drawing code is shared, so
a domain-shift ablation tests exactly these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ablate.data.synth.canvas import Colour
from ablate.data.synth.labels import (
    BICYCLE,
    BUILDING,
    BUS,
    CAR,
    FENCE,
    IGNORE,
    LIGHT,
    MOTORCYCLE,
    PERSON,
    POLE,
    RIDER,
    ROAD,
    SIDEWALK,
    SIGN,
    SKY,
    TERRAIN,
    TRAIN,
    TRUCK,
    VEGETATION,
    WALL,
)


@dataclass(frozen=True)
class Style:
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


KITTI = Style(
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

CITY = Style(
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

STYLES = {"kitti": KITTI, "city": CITY}


def palette(rng: np.random.Generator, style: Style) -> np.ndarray:
    """Per-image class colours: the same class never has exactly the same colour twice."""
    pal = np.zeros((256, 3), np.float32)
    for cls, rgb in style.colours.items():
        hue = 1.0 + np.clip(rng.normal(0.0, style.jitter, 3), -2.5 * style.jitter, 2.5 * style.jitter)
        pal[cls] = np.asarray(rgb, np.float32) * rng.uniform(0.85, 1.15) * hue
    return np.clip(pal, 0.0, 255.0)


DOMAINS: tuple[str, ...] = tuple(STYLES)
