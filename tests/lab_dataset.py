"""A dataset class of a lab's own, registered the way a lab would: imported by its configs'
`custom_imports` (tests/test_datasets.py names this module there)."""

from __future__ import annotations

from typing import Any

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class LabTilesDataset(BaseSegDataset):
    """Aerial tiles: `<name>.jpg` photos beside `<name>_gt.png` label maps of four classes."""

    METAINFO = dict(
        classes=("ground", "water", "roof", "car"),
        palette=[[120, 100, 60], [20, 60, 200], [200, 40, 40], [250, 250, 0]],
    )

    def __init__(self, img_suffix: str = ".jpg", seg_map_suffix: str = "_gt.png", **kwargs: Any) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
