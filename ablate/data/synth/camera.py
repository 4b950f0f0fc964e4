"""Projection from road coordinates to pixels, and the polygon shapes drawn with it."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CAM_H = 1.65  # camera height over the road in metres, as on the KITTI rig
Z_BEND = 150.0  # road curvature stops growing beyond this depth

Points = np.ndarray  # (N, 2) float pixel coordinates, pixel centres at integers


@dataclass(frozen=True)
class Camera:
    """Pinhole camera over a flat road; X right, Y up (from the road), z forward, all in metres."""

    f: float
    x_v: float
    y_h: float
    curv: float  # lateral road offset grows as curv * z**2

    def pts(self, X: Any, Y: Any, z: Any) -> Points:
        X, Y, z = np.broadcast_arrays(np.asarray(X, float), np.asarray(Y, float), np.asarray(z, float))
        z = np.maximum(z, 0.5)
        zb = np.minimum(z, Z_BEND)
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


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 20, wobble: np.ndarray | None = None) -> Points:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    r = 1.0 if wobble is None else wobble
    return np.stack([cx + rx * r * np.cos(t), cy + ry * r * np.sin(t)], axis=-1)


def rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
