"""Mixed precision and measured latency: `budget.amp` validated, planned and applied per device;
a real CPU trial asked for bf16 records its fp32 fallback, logs its latency, and a second seed of
the same model reads that latency from the cache."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from ablate.cli import main
from ablate.config import Accelerator, fit_to_device
from ablate.study import load_study, plan_trials, run_study
from ablate.tracking import TrialRun
from ablate.tracking import tags as T
from ablate.trial import TrialState
from tests.conftest import write_study

BUDGET = {"iters": 4, "val_interval": 2, "batch_size": 2, "crop": [32, 32], "log_interval": 1, "workers": 0}
FALLBACK = "no accelerator: trained in fp32"


# -- the study key ----------------------------------------------------------------------------

def test_bad_amp_exits_2_naming_the_field(tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, budget={**BUDGET, "amp": "fp8"})
    with pytest.raises(SystemExit) as info:
        main(["plan", str(path), "--no-cost"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    assert "budget.amp" in err and "'bf16', 'fp16' or 'off'" in err


def test_bare_yaml_off_is_off(tmp_path: Path, tiny_data: Path) -> None:
    path = write_study(tmp_path / "s.yaml", tiny_data, budget={**BUDGET, "amp": "bf16"})
    path.write_text(path.read_text().replace("amp: bf16", "amp: off"))  # YAML 1.1 reads this as False
    assert load_study(path).spec.budget.amp == "off"


def _plan(tmp_path: Path, tiny_data: Path, name: str, **budget: Any) -> dict[str, Any]:
    study = load_study(write_study(tmp_path / f"{name}.yaml", tiny_data, budget={**BUDGET, **budget}, ladder=["poly_lr"]))
    return {t.name: t for t in plan_trials(study, tmp_path / "runs", with_cost=False)}


def test_amp_is_part_of_the_id_compile_is_not(tmp_path: Path, tiny_data: Path) -> None:
    off = _plan(tmp_path, tiny_data, "off")
    bf16 = _plan(tmp_path, tiny_data, "bf16", amp="bf16")
    fp16 = _plan(tmp_path, tiny_data, "fp16", amp="fp16")
    compiled = _plan(tmp_path, tiny_data, "compiled", amp="bf16", compile=True, workers=2)
    for name in ("r0-base", "r1-poly_lr"):
        assert len({off[name].trial_id, bf16[name].trial_id, fp16[name].trial_id}) == 3
        assert compiled[name].trial_id == bf16[name].trial_id  # speed switches, same trial
        assert "ablate_amp" not in off[name].config_text and "compile" not in off[name].config_text
        assert "ablate_amp = 'bf16'" in bf16[name].config_text
        assert "compile = True" in compiled[name].config_text
        assert "cudnn_benchmark=True" in off[name].config_text.replace(" ", "")


def _runtime(trial: Any) -> Any:
    from mmengine.config import Config

    return Config.fromstring(trial.config_text, file_format=".py")


def test_the_worker_applies_amp_after_every_trick(tmp_path: Path, tiny_data: Path) -> None:
    """poly_lr replaces optim_wrapper when the trial is planned; the request survives it and the
    worker turns it into a valid AmpOptimWrapper on a GPU, plain fp32 where it cannot."""
    from mmengine.optim import AmpOptimWrapper

    trial = _plan(tmp_path, tiny_data, "bf16", amp="bf16", workers=2)["r1-poly_lr"]
    gpu = _runtime(trial)
    precision = fit_to_device(gpu, Accelerator("cuda", "a GPU", bf16=True))
    wrapper = dict(gpu.optim_wrapper)
    assert (precision.effective, precision.fallback) == ("bf16", "")
    assert wrapper["type"] == "AmpOptimWrapper" and wrapper["dtype"] == "bfloat16"
    assert wrapper["optimizer"]["type"] == "AdamW"  # poly_lr's optimizer, now in bf16
    inspect.signature(AmpOptimWrapper).bind(**{k: v for k, v in wrapper.items() if k != "type"})
    assert gpu.train_dataloader.pin_memory is True and gpu.train_dataloader.persistent_workers is True

    old_gpu = _runtime(trial)
    assert fit_to_device(old_gpu, Accelerator("cuda", "an old GPU", bf16=False)).fallback == "an old GPU has no bf16: trained in fp32"
    assert old_gpu.optim_wrapper.type == "OptimWrapper"

    cpu = _runtime(trial)
    assert fit_to_device(cpu, Accelerator("cpu")) == fit_to_device(_runtime(trial), Accelerator("cpu"))
    assert (fit_to_device(cpu, Accelerator("cpu")).effective, cpu.optim_wrapper.type) == ("fp32", "OptimWrapper")
    assert not cpu.train_dataloader.get("pin_memory", False)

    # a config's own AmpOptimWrapper (amp: off) becomes an explicit request, so its fallback shows too
    own = _runtime(_plan(tmp_path, tiny_data, "own", workers=2)["r0-base"])
    own.optim_wrapper.type = "AmpOptimWrapper"
    precision = fit_to_device(own, Accelerator("cpu"))
    assert (precision.requested, precision.effective, precision.fallback) == ("fp16", "fp32", FALLBACK)
    assert own.optim_wrapper.type == "OptimWrapper"


def test_losses_stay_correct_on_half_precision_logits() -> None:
    """Under autocast the decode head's logits are fp16/bf16: the class-balanced CE sums over every
    labelled pixel (past fp16's range here) and OHEM sorts probabilities; both must match fp32."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    import ablate.registry  # noqa: F401

    torch.manual_seed(0)
    head = MODELS.build(dict(
        type="FCNHead", in_channels=8, channels=8, num_convs=1, num_classes=19,
        sampler=dict(type="OHEMPixelSampler", thresh=0.7, min_kept=1000),
        loss_decode=dict(type="BalancedCrossEntropyLoss", class_weight=[float(i % 3 + 1) for i in range(19)]),
    ))
    samples = []
    for _ in range(2):
        label = torch.randint(0, 19, (1, 256, 256))
        label[:, :20] = 255
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    logits = torch.randn(2, 19, 64, 64) * 3
    reference = head.loss_by_feat(logits, samples)["loss_ce"]
    for dtype, tolerance in ((torch.float16, 1e-3), (torch.bfloat16, 1e-2)):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is torch.bfloat16):
            loss = head.loss_by_feat(logits.to(dtype), samples)["loss_ce"]
        assert torch.isfinite(loss) and loss.dtype == torch.float32
        assert loss.item() == pytest.approx(reference.item(), rel=tolerance)


def test_timing_stops_at_its_caps() -> None:
    import time

    from ablate.analysis.latency import Budget, time_passes

    never_stable = dict(warmup_passes=1, warmup_s=0.0, tolerance=-1.0)
    capped = Budget(max_s=0.2, **never_stable)
    start = time.perf_counter()
    times = time_passes(lambda: time.sleep(0.001), lambda: None, capped)
    # the cap is checked after every pass: a loaded machine overshoots by about one pass, not a chunk
    assert time.perf_counter() - start < capped.max_s + 1.0
    assert capped.floor_passes <= len(times) < capped.max_passes and sum(times) >= capped.max_s * 0.9
    assert len(time_passes(lambda: None, lambda: None, Budget(max_passes=30, max_s=60.0, **never_stable))) == 30
    # stable at the first check past min_passes: a constant-time step needs no more
    assert len(time_passes(lambda: None, lambda: None, Budget(warmup_s=0.0, tolerance=1.0))) == 20


# -- one real trial on the CPU ------------------------------------------------------------------

@pytest.fixture(scope="module")
def cpu_bf16(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> dict[str, Any]:
    """A real tiny SegFormer-B0 trial asking for bf16 on a machine without an accelerator."""
    tmp = tmp_path_factory.mktemp("speed")
    cache = tmp / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ABLATE_CACHE_DIR", str(cache))
        path = write_study(tmp / "s.yaml", tiny_data, budget={**BUDGET, "amp": "bf16"})
        uri = f"sqlite:///{tmp / 'mlruns.db'}"
        outcome = run_study(load_study(path), uri, runs_dir=tmp / "runs")
    (result,) = outcome.results
    assert result.state is TrialState.FINISHED, result.error
    run = MlflowClient(uri).get_run(result.run_id)
    return {"tmp": tmp, "cache": cache, "path": path, "uri": uri, "result": result, "run": run}


def test_cpu_fallback_is_recorded_on_the_run(cpu_bf16: dict[str, Any]) -> None:
    run, result = cpu_bf16["run"], cpu_bf16["result"]
    tags = run.data.tags
    assert (tags[T.AMP], tags[T.PRECISION], tags[T.AMP_FALLBACK]) == ("bf16", "fp32", FALLBACK)
    record = TrialRun.from_mlflow(run)
    assert (record.amp, record.precision, record.amp_fallback) == ("bf16", "fp32", FALLBACK)
    work_dir = cpu_bf16["tmp"] / "runs" / "tiny" / result.trial_id
    config = (work_dir / "config.py").read_text()
    assert "ablate_amp = 'bf16'" in config and "AmpOptimWrapper" not in config
    log = "\n".join(p.read_text() for p in work_dir.glob("*/*.log"))
    assert f"budget.amp is bf16, but {FALLBACK}" in log
    progress = json.loads((work_dir / "progress.json").read_text())  # what the board shows
    assert progress["device"] == "cpu fp32 (bf16 requested)"


def test_latency_is_logged_and_cached(cpu_bf16: dict[str, Any]) -> None:
    run = cpu_bf16["run"]
    metrics = run.data.metrics
    assert 0 < metrics["latency_ms"] <= metrics["latency_p90_ms"]
    assert metrics["fps"] == pytest.approx(1000 / metrics["latency_ms"], rel=1e-3)
    device = run.data.tags[T.LATENCY_DEVICE]
    assert device.startswith("cpu:") and "threads" in device
    record = TrialRun.from_mlflow(run)
    assert (record.latency_ms, record.fps, record.latency_device) == (metrics["latency_ms"], metrics["fps"], device)
    (entry,) = json.loads((cpu_bf16["cache"] / "latency.json").read_text()).values()
    assert entry["median_ms"] == metrics["latency_ms"] and entry["device"] == device
    assert (entry["precision"], entry["height"], entry["width"]) == ("fp32", 64, 192)  # timed as trained, at image size


def test_another_trial_of_the_same_model_reads_latency_from_the_cache(
    cpu_bf16: dict[str, Any], tiny_data: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ladder on the same model: rung 0 is the trial above (cached, not retrained); rung 1 adds
    OHEM, a training-only change, so it trains but its latency comes from the cache."""
    from ablate.analysis import latency

    timed: list[Any] = []

    def timer(*args: Any, **kwargs: Any) -> None:
        timed.append(args)
        raise AssertionError("timed again")

    monkeypatch.setenv("ABLATE_CACHE_DIR", str(cpu_bf16["cache"]))
    monkeypatch.setattr(latency, "measure_latency", timer)
    path = write_study(cpu_bf16["tmp"] / "s2.yaml", tiny_data, budget={**BUDGET, "amp": "bf16"}, trials=[], ladder=["ohem"])
    outcome = run_study(load_study(path), cpu_bf16["uri"], runs_dir=cpu_bf16["tmp"] / "runs")
    assert [(r.name, r.state) for r in outcome.results] == [("r0-base", TrialState.CACHED), ("r1-ohem", TrialState.FINISHED)]
    assert outcome.results[0].run_id == cpu_bf16["result"].run_id
    second = MlflowClient(cpu_bf16["uri"]).get_run(outcome.results[1].run_id)
    assert timed == [] and T.LATENCY_ERROR not in second.data.tags
    first = cpu_bf16["run"].data.metrics
    keys = ("latency_ms", "latency_p90_ms", "fps")
    assert {k: second.data.metrics[k] for k in keys} == {k: first[k] for k in keys}
    assert len(json.loads((cpu_bf16["cache"] / "latency.json").read_text())) == 1
