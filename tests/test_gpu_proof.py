"""bench/gpu_proof.sh, the one script that proves the CUDA path on a lent GPU, as far as a CPU can
test it: without CUDA it stops at once, writing nothing; a dry run (every step's command a
stand-in) records each step in the JSON and the RESULTS.md section, and a failing or hanging
step does not stop the next; the checks that judge the real steps read a real MLflow store and
the benchmarks' JSON as a GPU run would leave them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_proof.sh"
sys.path.insert(0, str(REPO / "bench"))

import _gpu_checks as checks  # noqa: E402
import gpu_proof  # noqa: E402

H200 = "NVIDIA H200"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABLATE_GPU_PROOF_")}
    env.update(extra)
    return env


def _tree(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")} if root.exists() else {}


# -- no CUDA: one line, exit 3, nothing written ---------------------------------------------------
@pytest.mark.parametrize("smi", ["missing", "no GPU"])
def test_without_cuda_it_stops_at_once_and_writes_nothing(tmp_path: Path, smi: str) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    if smi == "missing":
        if shutil.which("nvidia-smi"):
            pytest.skip("this machine has a real nvidia-smi")
    else:  # what nvidia-smi says on a machine whose driver finds no GPU
        (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'No devices were found'\nexit 6\n")
        (fake / "nvidia-smi").chmod(0o755)
    results, md = REPO / "bench" / "results", REPO / "bench" / "RESULTS.md"
    before, md_before = _tree(results), md.stat().st_mtime
    done = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env=_env(PATH=f"{fake}:{os.environ['PATH']}"))
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("gpu_proof: no CUDA here (")
    assert ("nvidia-smi not found" if smi == "missing" else "lists no GPU") in done.stderr
    assert _tree(results) == before and md.stat().st_mtime == md_before


def test_bad_usage_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(SCRIPT), "--only", "smoke,warp"], capture_output=True, text=True, timeout=60,
                          env=_env())
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "gpu_proof: --only: unknown step 'warp' (steps: env smoke fractional latency throughput ladder ddp)"]


# -- a dry run: the plumbing, with one failing and one hanging step --------------------------------
@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("gpu-proof")
    results = REPO / "bench" / "results"
    before = _tree(results)
    done = subprocess.run(["bash", str(SCRIPT)], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=_env(ABLATE_GPU_PROOF_DRY_RUN="1", ABLATE_GPU_PROOF_WORK=str(work),
                                   ABLATE_GPU_PROOF_DRY_FAIL="latency", ABLATE_GPU_PROOF_DRY_HANG="ladder"))
    return {"done": done, "work": work, "doc": json.loads((work / "gpu_proof.json").read_text()),
            "md": (work / "RESULTS.md").read_text(), "results_untouched": _tree(results) == before}


def test_dry_run_records_every_step_and_goes_on_past_failures(dry_run: dict[str, Any]) -> None:
    done, doc = dry_run["done"], dry_run["doc"]
    assert done.returncode == 1, done.stderr  # a step failed: nothing is proven
    steps = doc["steps"]
    assert list(steps) == list(gpu_proof.STEPS)
    assert {name: s["status"] for name, s in steps.items()} == {
        "env": "passed", "smoke": "passed", "fractional": "passed", "latency": "failed",
        "throughput": "passed", "ladder": "timeout", "ddp": "skipped"}
    assert "fails on purpose" in steps["latency"]["log_tail"] and steps["latency"]["problems"] == ["exit code 1"]
    assert steps["ladder"]["problems"] == ["stopped at its time limit"]
    assert steps["ddp"]["summary"] == "needs 2 GPUs; this machine has 0"
    assert all(steps[n]["seconds"] >= 0 for n in steps if n != "ddp")
    assert doc["dry_run"] is True and doc["machine"]["gpu"] == "none" and doc["machine"]["torch"]
    assert (dry_run["work"] / "logs" / "throughput.log").read_text().startswith("stand-in for the throughput step")
    assert dry_run["results_untouched"]  # a dry run writes into its work folder only


def test_dry_run_writes_the_results_md_section(dry_run: dict[str, Any]) -> None:
    md = dry_run["md"]
    assert md.count("GPU proof (`bench/gpu_proof.sh`)") == 1
    assert "**Dry run**" in md
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert "**failed**" in rows["latency"] and "**timeout**" in rows["ladder"] and "| skipped |" in rows["ddp"]
    assert "- **latency** (failed): exit code 1" in md and "the latency stand-in fails on purpose" in md
    assert "gpu_proof: some steps failed or did not run (exit 1)" in dry_run["done"].stdout


def test_only_reruns_some_steps_and_keeps_the_others(dry_run: dict[str, Any], tmp_path: Path) -> None:
    results, md = tmp_path / "gpu_proof.json", tmp_path / "RESULTS.md"
    results.write_text(json.dumps(dry_run["doc"]))
    md.write_text("# Benchmarks\n\n## 7. GPU training throughput\n\nold\n\n## 8. `bench/gpu_proof.py`\n\n"
                  "No result (not run).\n\n## Other benchmarks\n\n- links\n")
    done = subprocess.run(["bash", str(SCRIPT), "--only", "latency"], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=_env(ABLATE_GPU_PROOF_DRY_RUN="1", ABLATE_GPU_PROOF_WORK=str(tmp_path),
                                                ABLATE_GPU_PROOF_RESULTS=str(results), ABLATE_GPU_PROOF_MD=str(md)))
    assert done.returncode == 1, done.stderr  # the ladder's earlier timeout still stands
    steps = json.loads(results.read_text())["steps"]
    assert steps["latency"]["status"] == "passed" and steps["ladder"]["status"] == "timeout"
    text = md.read_text()
    assert "No result (not run)" not in text and text.count("GPU proof (`bench/gpu_proof.sh`)") == 1
    assert text.index("## 7. GPU training throughput") < text.index("GPU proof") < text.index("## Other benchmarks")
    assert "(earlier run, " in next(line for line in text.splitlines() if line.startswith("| ladder |"))


# -- the checks, on a real MLflow store --------------------------------------------------------------
def _store(tmp_path: Path, trials: list[dict[str, Any]]) -> Path:
    """MLflow runs tagged as ablate tags a trial, and the `ablate run --json` document naming them."""
    from mlflow import MlflowClient

    from ablate.tracking import tags as T

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("gpu_proof_test")
    reported = []
    for i, t in enumerate(trials):
        run = client.create_run(experiment, start_time=t.get("start", 1000 * (i + 1)))
        for key, value in {T.DEVICES: t.get("devices", "cuda:0"), T.GPU: t.get("gpu", H200),
                           T.PRECISION: t.get("precision", "fp32"), T.WORLD_SIZE: "1"}.items():
            client.set_tag(run.info.run_id, key, value)
        for key, value in t.get("metrics", {"system/gpu_0_utilization_percentage": 87.0}).items():
            client.log_metric(run.info.run_id, key, value)
        client.set_terminated(run.info.run_id, "FINISHED", end_time=t.get("end", 1000 * (i + 1) + 500))
        reported.append({"trial_id": f"t{i}", "name": "base", "seed": i, "state": t.get("state", "FINISHED"),
                         "mIoU": 12.5, "run_id": run.info.run_id, "error": None, "duration_s": 3.0})
    doc = {"study": "s", "experiment_id": experiment, "parent_run_id": None, "tracking_uri": uri, "trials": reported}
    (tmp_path / "run.json").write_text("study s: tracking to ...\n" + json.dumps(doc))
    return tmp_path


def test_smoke_check_passes_on_gpu_runs_and_names_what_is_missing(tmp_path: Path) -> None:
    good = checks.check_smoke(_store(tmp_path / "good", [{}, {}]), [H200])
    assert good.ok, good.problems
    assert good.numbers["gpu_metric_keys"] == ["system/gpu_0_utilization_percentage"]
    assert good.summary.startswith(f"2/2 FINISHED on cuda:0 ({H200})")
    bad = checks.check_smoke(_store(tmp_path / "bad", [{"devices": "cpu", "gpu": "none", "metrics": {}},
                                                       {"state": "FAILED"}]), [H200])
    assert bad.problems == ["trial base (seed 0): tag ablate.devices is 'cpu', not one of cuda:0..cuda:0",
                            "trial base (seed 0): no system/gpu_* system metrics", "trial base (seed 1): FAILED"]


def test_fractional_check_needs_trials_training_side_by_side(tmp_path: Path) -> None:
    together = [{"start": 1000 + i, "end": 9000 + i, "precision": "bf16"} for i in range(4)]
    shared = checks.check_fractional(_store(tmp_path / "shared", together), [H200])
    assert shared.ok, shared.problems
    assert shared.numbers["max_trials_at_once"] == 4
    one_by_one = [{"start": 1000 * (i + 1), "end": 1000 * (i + 1) + 900, "precision": "bf16"} for i in range(4)]
    serial = checks.check_fractional(_store(tmp_path / "serial", one_by_one), [H200])
    assert serial.problems == ["at most 1 trial trained at a time: the GPU was not shared"]


def test_a_step_without_output_fails_with_the_reason(tmp_path: Path) -> None:
    out = checks.check_smoke(tmp_path, [H200])
    assert not out.ok and out.problems[0].startswith("`ablate run --json` printed no result")


# -- the benchmarks' GPU results -------------------------------------------------------------------
def _throughput_doc(ratio: float, fp32: float, bf16: float) -> dict[str, Any]:
    def precision(images_per_s: float) -> dict[str, Any]:
        return {"ablate": {"state": "FINISHED", "error": None, "trial_duration_s": 30.0, "iter_s": 2 / images_per_s,
                           "images_per_s": images_per_s, "samples": 4},
                "bare": {"rc": 0, "train_s": 9.0, "wall_s": 20.0, "device": "cuda:0", "iter_s": 0.01,
                         "images_per_s": round(images_per_s / ratio, 3), "samples": 4},
                "ablate_over_bare_images_per_s": ratio, "load": {"load1": 1.0}}

    model = {"forward_gflops_at_crop": 8.4, "fp32": precision(fp32), "bf16": precision(bf16),
             "ablate_command_wall_s": 60.0}
    return {"benchmark": "gpu_throughput", "date": "2026-12-03T17:00:00+00:00", "device": H200,
            "load_after": {"load1": 1.0, "load5": 1.0, "load15": 1.0},
            "peak_tflops": {"fp32": 66.9, "bf16": 989.4},
            "setup": {"data": "synthetic", "batch_size": 2, "iters": 60, "warmup_iters": 20, "measure": "median"},
            "results": {"segformer_b0": model, "segformer_b2": model}}


def _latency_doc() -> dict[str, Any]:
    cell = {"median_ms": 6.1, "p90_ms": 6.5, "fps": 163.9, "passes": 120, "achieved_tflops": 5.1,
            "load": {"load1": 1.0}}
    return {"benchmark": "latency", "date": "2026-12-03T17:00:00+00:00", "device": H200, "torch": "2.13.0+cu128",
            "command": ".venv/bin/python bench/latency.py --max-s 3", "load_after": {"load1": 1.0},
            "setup": {"input": "batch 1, 375x1242", "forward": "logits",
                      "budget": {"warmup_passes": 10, "warmup_s": 0.5, "min_passes": 30, "floor_passes": 10,
                                 "max_passes": 300, "max_s": 3.0, "tolerance": 0.01, "chunk": 10}},
            "results": {"SegFormer B0": {"config": "configs/segformer/segformer_mit-b0_kitti.py", "shape": [375, 1242],
                                         "gflops": 15.6, "fp32": dict(cell), "bf16": {"error": "RuntimeError: no"}}}}


def _bench(tmp_path: Path, name: str, doc: dict[str, Any]) -> Path:
    (tmp_path / "results").mkdir(parents=True)
    (tmp_path / "results" / f"{name}.json").write_text(json.dumps(doc))
    return tmp_path


def test_throughput_check_reports_the_targets(tmp_path: Path) -> None:
    out = checks.check_throughput(_bench(tmp_path / "a", "gpu_throughput", _throughput_doc(0.99, 40.0, 70.0)), [H200])
    assert out.ok, out.problems
    assert out.numbers["targets"] == {"ablate_over_bare >= 0.98": True, "bf16_over_fp32 >= 1.5": True}
    assert out.numbers["segformer_b0"]["bf16_over_fp32"] == 1.75
    slow = checks.check_throughput(_bench(tmp_path / "b", "gpu_throughput", _throughput_doc(0.9, 40.0, 50.0)), [H200])
    assert slow.ok  # it ran and measured; missed targets are figures, shown as such
    assert slow.numbers["targets"] == {"ablate_over_bare >= 0.98": False, "bf16_over_fp32 >= 1.5": False}
    skipped = checks.check_throughput(_bench(tmp_path / "c", "gpu_throughput", {"skipped": "no CUDA device"}), [H200])
    assert skipped.problems == ["skipped: no CUDA device"]


def test_latency_check_names_each_missing_measurement(tmp_path: Path) -> None:
    out = checks.check_latency(_bench(tmp_path, "latency", _latency_doc()), [H200])
    assert out.problems == ["SegFormer B0 bf16: RuntimeError: no"]
    assert out.numbers["SegFormer B0"] == {"fp32_ms": 6.1, "bf16_ms": None}


def test_a_gpu_result_renders_with_the_benchmarks_own_tables(tmp_path: Path) -> None:
    measured = _bench(tmp_path / "t", "gpu_throughput", _throughput_doc(0.99, 40, 70))
    throughput = checks.check_throughput(measured, [H200])
    latency = checks.check_latency(_bench(tmp_path / "l", "latency", _latency_doc()), [H200])
    doc = {"date": "2026-12-03T17:00:00+00:00", "budget_s": 465, "elapsed_s": 402, "load_after": {"load1": 1.0},
           "machine": {"gpu": H200, "gpus": [H200], "driver": "580.159.03", "cuda_driver": "13.0", "cuda": "12.8",
                       "torch": "2.13.0+cu128", "python": "3.12.3", "host_cores": 16,
                       "smi": {"gpus": [H200], "driver": "580.159.03", "memory_mib": ["143771"]}},
           "steps": {"env": {"status": "passed", "seconds": 20.0, "summary": "ok"},
                     "latency": {"status": "failed", "seconds": 50.0, "summary": latency.summary,
                                 "numbers": latency.numbers, "problems": latency.problems, "log_tail": "tail"},
                     "throughput": {"status": "passed", "seconds": 150.0, "summary": throughput.summary,
                                    "numbers": throughput.numbers},
                     "ddp": {"status": "skipped", "summary": "needs 2 GPUs; this machine has 1"}}}
    text = gpu_proof.render(doc)
    assert f"on **{H200}** (143771 MiB), driver 580.159.03, CUDA 13.0 (driver) / 12.8 (torch build)" in text
    assert "### GPU training throughput (`bench/gpu_throughput.py`)" in text
    assert "### Inference latency of the Table 1 models (`bench/latency.py`)" in text
    assert "ablate_over_bare >= 0.98: yes" in text and "| smoke |" in text and "not in this run" in text
    rows = gpu_proof.summary(doc)
    assert [r.measured for r in rows] == ["3/7", "0.990", "1.75"] and rows[0].met == "**no**"
    md = tmp_path / "RESULTS.md"
    gpu_proof.update_markdown(doc, md)
    gpu_proof.update_markdown(doc, md)
    assert md.read_text().count("GPU proof (`bench/gpu_proof.sh`)") == 1


def test_an_offline_install_says_how_to_give_pip_its_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_proof, "RESULT_FILE", tmp_path / "gpu_proof.json")
    gpu_proof.start([], dry_run=False, budget=465, work=str(tmp_path), command="bash bench/gpu_proof.sh")
    log = tmp_path / "env.log"
    log.write_text("ERROR: Could not find a version that satisfies the requirement mmengine==0.10.7\n"
                   "ERROR: No matching distribution found for mmengine==0.10.7\nmake: *** [Makefile:17] Error 1\n")
    entry = gpu_proof.record("env", rc=2, started=0.0, ended=12.0, log=log, work=tmp_path / "env")
    assert entry["status"] == "failed" and entry["seconds"] == 12.0
    assert entry["problems"][0] == "exit code 2"
    assert "PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR" in entry["problems"][-1]
    assert "No matching distribution found" in entry["log_tail"]
    assert gpu_proof.exit_code(gpu_proof.read()) == 1
