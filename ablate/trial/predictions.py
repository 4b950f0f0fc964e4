"""A few colour-coded test predictions per trial, for the report's qualitative figure (Figure 2)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

PREDICTIONS_DIR = "predictions"


def colorize(label: np.ndarray) -> Image.Image:
    """Train ids -> Cityscapes palette; ignore (255) stays black."""
    from ablate.data import PALETTE

    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(PALETTE)] = np.asarray(PALETTE, dtype=np.uint8)
    return Image.fromarray(lut[label.astype(np.uint8)])


def save_predictions(runner: Any, out_dir: Path, count: int = 3) -> list[Path]:
    """Predict the first `count` test images with the trained model; write img/gt/pred PNGs."""
    import torch
    from mmengine.dataset import pseudo_collate

    dataset = runner.val_dataloader.dataset
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    model = runner.model
    was_training = model.training
    model.eval()
    try:
        for index in range(min(count, len(dataset))):
            sample = dataset[index]
            info = dataset.get_data_info(index)
            stem = Path(info["img_path"]).stem
            with torch.no_grad():
                (result,) = model.test_step(pseudo_collate([sample]))
            pred = result.pred_sem_seg.data[0].cpu().numpy()
            gt = np.array(Image.open(info["seg_map_path"]))
            image = Image.open(info["img_path"]).convert("RGB")
            if pred.shape != gt.shape:  # predictions come back at the original size; keep all equal
                pred = np.array(Image.fromarray(pred.astype(np.uint8)).resize(gt.shape[::-1], Image.NEAREST))
            paths = (out_dir / f"{stem}_img.png", out_dir / f"{stem}_gt.png", out_dir / f"{stem}_pred.png")
            shutil.copyfile(info["img_path"], paths[0]) if image.mode == "RGB" else image.save(paths[0])
            colorize(gt).save(paths[1])
            colorize(pred).save(paths[2])
            written.extend(paths)
    finally:
        model.train(was_training)
    return written
