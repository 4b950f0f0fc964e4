"""Train ids by name, so drawing code reads `CAR` where mmseg stores 13."""

from __future__ import annotations

from ablate.data.classes import CLASSES, IGNORE_INDEX

_ID = {name: i for i, name in enumerate(CLASSES)}
ROAD, SIDEWALK, BUILDING, WALL, FENCE = (_ID[n] for n in ("road", "sidewalk", "building", "wall", "fence"))
POLE, LIGHT, SIGN, VEGETATION, TERRAIN = (
    _ID[n] for n in ("pole", "traffic light", "traffic sign", "vegetation", "terrain")
)
SKY, PERSON, RIDER, CAR, TRUCK = (_ID[n] for n in ("sky", "person", "rider", "car", "truck"))
BUS, TRAIN, MOTORCYCLE, BICYCLE = (_ID[n] for n in ("bus", "train", "motorcycle", "bicycle"))
IGNORE = IGNORE_INDEX
