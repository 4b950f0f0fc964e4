"""The photometric pass over a drawn scene: texture, shadows, lighting, blur and sensor noise.

It runs after all shapes are drawn and picks each pixel's texture by its label, so every class
gets its own texture while shapes and labels stay exactly as rasterised.
"""

from __future__ import annotations

import cv2
import numpy as np

from ablate.data.synth.canvas import Canvas, smooth_noise, uniform_noise
from ablate.data.synth.labels import BUILDING, CAR, FENCE, ROAD, SIDEWALK, SKY, TERRAIN, VEGETATION, WALL
from ablate.data.synth.styles import Style

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


def finish(cv: Canvas, rng: np.random.Generator, style: Style) -> np.ndarray:
    """Texture, shadows, lighting, blur and sensor noise: everything that makes colours unreliable."""
    h, w = cv.h, cv.w
    cls = cv.cls
    low_lut, mid_lut, fine_lut, chroma_lut, axis_lut = _texture_luts(style.texture)
    lum = cv2.LUT(cls, low_lut) * smooth_noise(rng, h, w, max(4.0, h / 5.0))
    lum += cv2.LUT(cls, mid_lut) * smooth_noise(rng, h, w, max(1.5, h / 60.0))
    lum += cv2.LUT(cls, fine_lut) * uniform_noise(rng, (h, w))
    lum += np.float32(1.0)

    if style.shadow > 0:
        ground = cv2.LUT(cls, _GROUND_LUT)
        blotches = np.clip((smooth_noise(rng, h, w, max(4.0, h / 8.0)) - 0.5) * 2.5, 0.0, 1.0)
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
    img += np.take(axis_lut, cls, axis=0) * smooth_noise(rng, h, w, cell)[:, :, None]
    img += cv2.LUT(cls, 0.3 * chroma_lut)[:, :, None] * smooth_noise(rng, h, w, cell, channels=3)
    tint = np.asarray(style.tint, np.float32) * rng.uniform(0.96, 1.04, 3).astype(np.float32)
    contrast = np.float32(style.contrast * rng.uniform(0.9, 1.1))
    img *= tint * contrast
    img += np.float32(110.0) * (1.0 - contrast)

    sigma = style.blur * rng.uniform(0.7, 1.3) * h / 375.0
    if sigma >= 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img += uniform_noise(rng, (h, w, 3)) * np.float32(style.grain * rng.uniform(0.7, 1.3))
    img += np.float32(0.5)
    return np.clip(img, 0.0, 255.0, out=img).astype(np.uint8)
