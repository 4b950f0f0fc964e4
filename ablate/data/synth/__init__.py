"""Procedural KITTI-like road scenes with Cityscapes train-id labels.

Ablation studies need a dataset that is free, small and reproducible, yet hard enough that
training tricks make a measurable difference. Scenes here are laid out with a pinhole camera over
a flat road (so sizes shrink towards a vanishing point and classes keep KITTI's strong imbalance),
and every shape is rasterised once into the image and once into the label with the same polygon,
so labels always agree with what is drawn. Appearance is randomised per image (colours, texture,
light, shadows, blur, sensor noise) so a model has to learn shapes and context, not colours.
"""

from ablate.data.synth.dataset import GENERATOR, image_seed, synthesize
from ablate.data.synth.formats import ADE20K, FORMATS, VOC, SynthFormat
from ablate.data.synth.scene import render
from ablate.data.synth.styles import DOMAINS

__all__ = ["ADE20K", "DOMAINS", "FORMATS", "GENERATOR", "VOC", "SynthFormat", "image_seed", "render", "synthesize"]
