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
import math
import shutil
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from mmengine.dist import is_main_process
from mmengine.registry import HOOKS

from ablate.config import keys
from ablate.data import IGNORE_INDEX, PALETTE
from ablate.metrics.iou import PER_IMAGE_INFO, image_scores
from ablate.statistics.per_image import PER_IMAGE_FILE, WORST_DIR, PerImageTable, write_table
from ablate.tracking.hook import TrackedHook, numbers
from ablate.trial.progress_file import PHASE_INFO

PREDICTIONS_DIR = "predictions"
WORST_IMAGES = 4
# PNG encoding releases the GIL: the images are written beside the evaluation, not after it.
_WRITERS = 4


def colorize(label: np.ndarray, palette: Sequence[Sequence[int]] = PALETTE) -> Any:
    """Train ids -> the dataset's palette (Cityscapes' by default); ignore (255) stays black."""
    from PIL import Image

    lut = np.zeros((256, 3), dtype=np.uint8)
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:255]
    lut[: len(colours)] = colours
    return Image.fromarray(lut[label.astype(np.uint8)])


def dataset_palette(cfg: Any) -> tuple[tuple[int, int, int], ...]:
    """The palette of the config's dataset, as the trial's run logs it (`dataset_meta.json`)."""
    from ablate.data import config_meta
    from ablate.errors import AblateError

    try:
        return config_meta(cfg, "val").palette
    except AblateError:  # a config whose dataset names no classes: the KITTI layout's colours
        return PALETTE


def final(runner: Any) -> bool:
    return runner.iter >= runner.max_iters


def tta_follows(runner: Any) -> bool:
    """The test-time-augmented test after training will be the final evaluation."""
    return runner.cfg.get(keys.FINAL_EVAL) == keys.FINAL_EVAL_TTA


@dataclass(frozen=True)
class _Candidate:
    """One of the worst images seen so far, with what its three PNGs need."""

    key: tuple[float, str]
    img_path: str
    truth: np.ndarray
    pred: np.ndarray


def _same_size(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The prediction at the ground truth's size, so the three images of a row line up."""
    if pred.shape == truth.shape:
        return pred
    from PIL import Image

    return np.array(Image.fromarray(pred.astype(np.uint8)).resize(truth.shape[::-1], Image.Resampling.NEAREST))


def _write(
    out_dir: Path,
    stem: str,
    img_path: str,
    truth: np.ndarray,
    pred: np.ndarray,
    *,
    palette: Sequence[Sequence[int]] = PALETTE,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(img_path, out_dir / f"{stem}_img.png")
    colorize(truth, palette).save(out_dir / f"{stem}_gt.png")
    colorize(_same_size(pred, truth), palette).save(out_dir / f"{stem}_pred.png")


def image_miou(sample: Any, ignore_index: int) -> float:
    """The sample's per-image mIoU, from the tensors the metric scores and with its function."""
    from mmseg.evaluation.metrics import IoUMetric

    pred = sample.pred_sem_seg.data.squeeze()
    label = sample.gt_sem_seg.data.squeeze().to(pred)
    valid = label[label != ignore_index]
    top = max(int(pred.max()), int(valid.max()) if valid.numel() else 0)
    # Classes above `top` are in neither map: their areas are zero and they leave the mean alone.
    areas = IoUMetric.intersect_and_union(pred, label, top + 1, ignore_index)
    return float(image_scores(*(part.unsqueeze(0) for part in areas)).miou[0])


@HOOKS.register_module()
class PredictionHook(TrackedHook):
    """The final evaluation's artifacts (validation at `max_iters`, or the test-time-augmented
    test): image / ground truth / prediction PNGs of its first `count` images and of its `worst`
    images by per-image mIoU (`worst_predictions/`), and the metric's per-image table
    (`per_image.csv`).

    The worst images are picked while the evaluation runs, holding at most `worst` predictions, so
    the failure gallery costs no second pass over the data. The PNGs are encoded in a few threads
    while the evaluation goes on, and all written before any is logged."""

    priority = "LOW"

    def __init__(
        self,
        count: int = 3,
        worst: int = WORST_IMAGES,
        tracking_uri: str | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(tracking_uri, run_id)
        self.count = count
        self.worst = worst
        self._saved = 0
        self._worst: list[_Candidate] = []
        self._ignore_index = IGNORE_INDEX
        self._palette: tuple[tuple[int, int, int], ...] = PALETTE
        self._pool: ThreadPoolExecutor | None = None
        self._writes: list[Future] = []

    def _write(self, *args: Any) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=_WRITERS, thread_name_prefix="ablate-predictions")
        self._writes.append(self._pool.submit(_write, *args, palette=self._palette))

    def _written(self) -> None:
        """Every PNG submitted so far is on disk (a failed write raises here, as it did inline)."""
        writes, self._writes = self._writes, []
        try:
            for write in writes:
                write.result()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def _start(self, runner: Any) -> None:
        self._saved = 0
        self._worst = []
        evaluator = runner.cfg.get("val_evaluator") or {}
        self._ignore_index = (
            int(evaluator.get("ignore_index", IGNORE_INDEX)) if isinstance(evaluator, dict) else IGNORE_INDEX
        )
        self._palette = dataset_palette(runner.cfg)
        if is_main_process():
            shutil.rmtree(Path(runner.work_dir) / WORST_DIR, ignore_errors=True)
        runner.message_hub.update_info(PER_IMAGE_INFO, None, resumed=False)

    def _save(self, runner: Any, outputs: Any) -> None:
        from PIL import Image

        out_dir = Path(runner.work_dir) / PREDICTIONS_DIR
        for sample in outputs or []:
            img_path = sample.metainfo.get("img_path")
            if not img_path:
                continue
            stem = Path(img_path).stem
            gt_path = sample.metainfo.get("seg_map_path")
            if self._saved < self.count and gt_path and is_main_process():  # rank 0's share, in DDP
                # the labels as the dataset reads them (reduce_zero_label, label map), else the file
                truth = (
                    sample.gt_sem_seg.data[0].cpu().numpy().astype(np.uint8)
                    if "gt_sem_seg" in sample
                    else np.array(Image.open(gt_path))
                )
                self._write(out_dir, stem, img_path, truth, sample.pred_sem_seg.data[0].cpu().numpy().copy())
                self._saved += 1
            if self.worst > 0 and "gt_sem_seg" in sample:
                self._consider(stem, img_path, sample)

    def _consider(self, stem: str, img_path: str, sample: Any) -> None:
        score = image_miou(sample, self._ignore_index)
        if math.isnan(score):
            return
        key = (score, stem)
        if len(self._worst) >= self.worst and key >= self._worst[-1].key:
            return
        truth = sample.gt_sem_seg.data[0].cpu().numpy().astype(np.uint8)
        pred = sample.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
        self._worst.append(_Candidate(key, img_path, truth, pred))
        self._worst = sorted(self._worst, key=lambda c: c.key)[: self.worst]

    def _finish(self, runner: Any) -> None:
        from mmengine.dist import all_gather_object

        work_dir = Path(runner.work_dir)
        # DDP: each rank saw its share of the images; rank 0 keeps the worst over all of them
        seen = {c.key: c for part in all_gather_object(self._worst) for c in part}  # padding repeats images
        self._worst = sorted(seen.values(), key=lambda c: c.key)[: self.worst] if is_main_process() else []
        for candidate in self._worst:
            self._write(work_dir / WORST_DIR, candidate.key[1], candidate.img_path, candidate.truth, candidate.pred)
        self._worst = []
        self._written()
        for name in (PREDICTIONS_DIR, WORST_DIR):
            if (work_dir / name).is_dir() and any((work_dir / name).iterdir()):
                self.log_artifacts(str(work_dir / name), name)
        table = runner.message_hub.get_info(PER_IMAGE_INFO)
        if isinstance(table, PerImageTable) and is_main_process():
            self.log_artifact(str(write_table(work_dir / PER_IMAGE_FILE, table)))
        runner.message_hub.update_info(PER_IMAGE_INFO, None, resumed=False)

    def _final_val(self, runner: Any) -> bool:
        """Artifacts already logged cannot be taken back: with TTA to come, validation logs none."""
        return final(runner) and not tta_follows(runner)

    def before_val_epoch(self, runner: Any) -> None:
        if self._final_val(runner):
            self._start(runner)

    def after_val_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        if self._final_val(runner):
            self._save(runner, outputs)

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        if self._final_val(runner):
            self._finish(runner)

    def before_test_epoch(self, runner: Any) -> None:
        self._start(runner)

    def after_test_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._save(runner, outputs)

    def after_test_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        self._finish(runner)


@HOOKS.register_module()
class FinalEvalHook(TrackedHook):
    """After training: evaluate the final weights if the loop did not, and run test-time
    augmentation when the config carries `tta_model` / `tta_pipeline` with `ablate_final_eval='tta'`."""

    priority = "LOWEST"

    def __init__(self, tracking_uri: str | None = None, run_id: str | None = None) -> None:
        super().__init__(tracking_uri, run_id)
        self._final_metrics: dict[str, float] | None = None

    def after_val_epoch(self, runner: Any, metrics: dict | None = None) -> None:
        if final(runner) and metrics:
            self._final_metrics = numbers(metrics)

    def after_train(self, runner: Any) -> None:
        if self._final_metrics is None and runner.val_loop is not None:
            runner.val_loop.run()  # the other hooks log it as the final evaluation
        if tta_follows(runner):
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
