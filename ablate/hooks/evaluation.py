"""The trial's final evaluation, and the predictions saved while it runs.

The training loop's last validation (at `max_iters`) is the final evaluation. Two cases need
more, and both are handled here as mmengine hooks so that a plain `Runner.from_cfg(cfg).train()`
of a trial's dumped config behaves the same:
* a trial resumed from a checkpoint that had already finished training runs no loop iteration
  and so no validation: the final weights are evaluated after training instead (a run is never
  finished without its numbers);
* `multiscale_test` asks for test-time augmentation: the final weights are evaluated once more
  through mmseg's `SegTTAModel`, in an mmengine `TestLoop`, and those numbers become the run's
  final ones (single-scale stays as `ss_mIoU`).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any, Optional

import numpy as np
from mmengine.registry import HOOKS

from ablate.data import PALETTE
from ablate.tracking.hook import TrackedHook, numbers
from ablate.trial.progress_file import PHASE_INFO

PREDICTIONS_DIR = "predictions"


def colorize(label: np.ndarray) -> Any:
    """Train ids -> Cityscapes palette; ignore (255) stays black."""
    from PIL import Image

    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(PALETTE)] = np.asarray(PALETTE, dtype=np.uint8)
    return Image.fromarray(lut[label.astype(np.uint8)])


def final(runner: Any) -> bool:
    return runner.iter >= runner.max_iters


@HOOKS.register_module()
class PredictionHook(TrackedHook):
    """Writes image / ground truth / prediction PNGs of the first `count` images of the final
    evaluation (validation at `max_iters`, or the test-time-augmented test) and logs them."""

    priority = "LOW"

    def __init__(self, count: int = 3, tracking_uri: Optional[str] = None, run_id: Optional[str] = None) -> None:
        super().__init__(tracking_uri, run_id)
        self.count = count
        self._saved = 0

    def _start(self, runner: Any) -> None:
        self._saved = 0

    def _save(self, runner: Any, outputs: Any) -> None:
        from PIL import Image

        out_dir = Path(runner.work_dir) / PREDICTIONS_DIR
        for sample in outputs or []:
            if self._saved >= self.count:
                return
            img_path, gt_path = sample.metainfo.get("img_path"), sample.metainfo.get("seg_map_path")
            if not img_path or not gt_path:
                continue
            out_dir.mkdir(parents=True, exist_ok=True)
            pred = sample.pred_sem_seg.data[0].cpu().numpy()
            gt = np.array(Image.open(gt_path))
            if pred.shape != gt.shape:  # keep all three the size of the image
                pred = np.array(Image.fromarray(pred.astype(np.uint8)).resize(gt.shape[::-1], Image.NEAREST))
            stem = Path(img_path).stem
            shutil.copyfile(img_path, out_dir / f"{stem}_img.png")
            colorize(gt).save(out_dir / f"{stem}_gt.png")
            colorize(pred).save(out_dir / f"{stem}_pred.png")
            self._saved += 1

    def _finish(self, runner: Any) -> None:
        folder = Path(runner.work_dir) / PREDICTIONS_DIR
        if self._saved and folder.is_dir():
            self.log_artifacts(str(folder), PREDICTIONS_DIR)

    def before_val_epoch(self, runner: Any) -> None:
        self._start(runner)

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if final(runner):
            self._save(runner, outputs)

    def after_val_epoch(self, runner: Any, metrics: Optional[dict] = None) -> None:
        if final(runner):
            self._finish(runner)

    def before_test_epoch(self, runner: Any) -> None:
        self._start(runner)

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._save(runner, outputs)

    def after_test_epoch(self, runner: Any, metrics: Optional[dict] = None) -> None:
        self._finish(runner)


@HOOKS.register_module()
class FinalEvalHook(TrackedHook):
    """After training: evaluate the final weights if the loop did not, and run test-time
    augmentation when the config carries `tta_model` / `tta_pipeline` with `ablate_final_eval='tta'`."""

    priority = "LOWEST"

    def __init__(self, tracking_uri: Optional[str] = None, run_id: Optional[str] = None) -> None:
        super().__init__(tracking_uri, run_id)
        self._final_metrics: Optional[dict[str, float]] = None

    def after_val_epoch(self, runner: Any, metrics: Optional[dict] = None) -> None:
        if final(runner) and metrics:
            self._final_metrics = numbers(metrics)

    def after_train(self, runner: Any) -> None:
        if self._final_metrics is None and runner.val_loop is not None:
            runner.val_loop.run()  # the other hooks log it as the final evaluation
        if runner.cfg.get("ablate_final_eval") == "tta":
            self._tta(runner)

    def _tta(self, runner: Any) -> None:
        from mmengine.runner import TestLoop
        from mmseg.registry import MODELS

        cfg = runner.cfg
        loader = copy.deepcopy(cfg.test_dataloader)
        loader.dataset.pipeline = copy.deepcopy(cfg.tta_pipeline)
        tta_cfg = dict(copy.deepcopy(cfg.tta_model))
        model = runner.model
        tta = MODELS.get(tta_cfg.pop("type"))(module=model, **tta_cfg)  # wraps the trained model, no copy
        loop = TestLoop(runner, loader, copy.deepcopy(cfg.test_evaluator))
        runner.message_hub.update_info(PHASE_INFO, {"phase": "tta", "total": len(loop.dataloader)})
        runner.model = tta
        try:
            metrics = numbers(loop.run())
        finally:
            runner.model = model
            runner.message_hub.update_info(PHASE_INFO, None)
        single = (self._final_metrics or {}).get("mIoU")
        if single is not None:
            metrics["ss_mIoU"] = single
        self.log_final_evaluation(metrics, runner.iter, "tta")
