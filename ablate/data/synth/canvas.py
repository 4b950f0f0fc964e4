"""The image and label buffers every shape is drawn into, and the noise fields painted over them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ablate.data.synth.labels import SKY

_SHIFT = 3  # cv2 sub-pixel bits: thin far objects keep their true position
_SUB = float(1 << _SHIFT)

Colour = tuple[float, float, float]
# Palette rows arrive as numpy vectors, hand-written colours as tuples; drawing only indexes them.
ColourLike = Sequence[float] | npt.NDArray[np.floating[Any]]


def _fixed(poly: np.ndarray | Sequence[Any]) -> np.ndarray:
    p = np.clip(np.asarray(poly, float), -1e5, 1e5)
    return np.round(p * _SUB).astype(np.int32).reshape(-1, 1, 2)


class Canvas:
    """Image and label rasterised from the same polygons; `cls=None` draws image-only detail."""

    def __init__(self, height: int, width: int) -> None:
        self.h, self.w = height, width
        self.img = np.zeros((height, width, 3), np.float32)
        self.cls = np.full((height, width), SKY, np.uint8)
        self.shadow = np.zeros((height, width), np.float32)

    def fill(self, polys: Sequence[Any], cls: int | None, colour: ColourLike) -> None:
        # One cv2 call per polygon: a single call fills overlaps with the even-odd rule.
        rgb = tuple(float(c) for c in colour)
        for poly in polys:
            pts = [_fixed(poly)]
            if cls is not None:
                cv2.fillPoly(self.cls, pts, int(cls), cv2.LINE_8, _SHIFT)
            cv2.fillPoly(self.img, pts, rgb, cv2.LINE_8, _SHIFT)

    def fill_disjoint(self, polys: Sequence[Any], colour: ColourLike) -> None:
        """Image-only batch for many small non-overlapping shapes (windows)."""
        if len(polys):
            cv2.fillPoly(self.img, [_fixed(p) for p in polys], tuple(float(c) for c in colour), cv2.LINE_8, _SHIFT)

    def stroke(
        self,
        lines: Sequence[Any],
        cls: int,
        colour: ColourLike,
        width: float,
        closed: bool = False,
    ) -> None:
        t = max(1, int(round(width)))
        pts = [_fixed(p) for p in lines]
        cv2.polylines(self.cls, pts, closed, int(cls), t, cv2.LINE_8, _SHIFT)
        cv2.polylines(self.img, pts, closed, tuple(float(c) for c in colour), t, cv2.LINE_8, _SHIFT)

    def shade(self, poly: Any, amount: float) -> None:
        cv2.fillPoly(self.shadow, [_fixed(poly)], float(amount), cv2.LINE_8, _SHIFT)


def shaded(colour: ColourLike, k: float) -> Colour:
    return (colour[0] * k, colour[1] * k, colour[2] * k)


def fill_label(label: np.ndarray, poly: Any, cls: int) -> None:
    """Label-only fill, for annotation artefacts that have nothing to show in the image."""
    cv2.fillPoly(label, [_fixed(poly)], cls, cv2.LINE_8, _SHIFT)


def smooth_noise(rng: np.random.Generator, height: int, width: int, cell: float, channels: int = 0) -> np.ndarray:
    """Band-limited noise: a coarse Gaussian grid upsampled, so its feature size is about `cell` pixels."""
    gh = max(2, math.ceil(height / cell) + 1)
    gw = max(2, math.ceil(width / cell) + 1)
    shape = (gh, gw, channels) if channels else (gh, gw)
    grid = rng.standard_normal(shape, dtype=np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def uniform_noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Zero-mean, unit-variance noise; uniform is several times cheaper than Gaussian and looks alike."""
    return (rng.random(shape, dtype=np.float32) - np.float32(0.5)) * np.float32(math.sqrt(12.0))
