"""Inference latency of the Table 1 models at 375x1242, batch 1, fp32 and bf16, on the device that
runs the script: the measured side of the accuracy/efficiency trade-off that FLOPs only count.

Each model is built from its config (plain BN, random weights: latency does not depend on them)
and timed by the same code a trial's `LatencyHook` uses (`ablate.analysis.measure_latency`:
warm-up, then timed passes until the median is stable or a time cap, CUDA synchronised), fp32
and under bf16 autocast. With CUDA every Table 1 model is timed; on a CPU the small ones
(SegFormer-B0, B2 and the two ResNet-18 models: the others take many seconds a pass), unless
`--all`. UNet runs at 368x1248, the nearest size it accepts (as in bench/zoo_flops.md).

`--threads N` sets torch's CPU threads (the device name says how many were used): on a shared
machine one thread per process is less disturbed by the others than all cores.

    .venv/bin/python bench/latency.py [--all] [--models "SegFormer B0,PSPNet & ResNet18"] [--max-s 20] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, Figure, fmt, load, load_note, write_result  # noqa: E402
from zoo_flops import ROWS, Row  # noqa: E402

PRECISIONS = ("fp32", "bf16")
CPU_MODELS = ("SegFormer B0", "SegFormer B2", "DeepLabV3+ & ResNet18", "PSPNet & ResNet18")


def build(config: Path) -> Any:
    """The config's model with plain BN and no weights loaded, in eval mode."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    from ablate import config as configs
    from ablate.registry import register_all

    register_all()
    if DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance("ablate-latency", scope_name="mmseg")
    cfg = configs.load_base(config)
    configs.use_plain_bn(cfg)
    model_cfg = cfg.model.copy()
    model_cfg.pop("pretrained", None)
    if isinstance(model_cfg.get("backbone"), dict):
        model_cfg.backbone.pop("init_cfg", None)
    return cfg, MODELS.build(model_cfg).eval()


def measure_row(row: Row, device: str, budget: Any) -> dict[str, Any]:
    import torch

    from ablate.analysis import cached_complexity, measure_latency

    cfg, model = build(REPO / row.config)
    model.to(device)
    height, width = row.shape
    flops = cached_complexity(cfg, height, width, model=model).flops_g
    out: dict[str, Any] = {"config": row.config, "shape": [height, width], "gflops": flops}
    for precision in PRECISIONS:
        try:
            got = measure_latency(model, height, width, precision, budget)
        except Exception as exc:  # e.g. an op without a bf16 kernel on this device: say so, go on
            out[precision] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
            continue
        out[precision] = {"median_ms": got.median_ms, "p90_ms": got.p90_ms, "fps": got.fps, "passes": got.passes,
                          # mmengine's FLOPs are multiply-adds: 2 floating-point operations each
                          "achieved_tflops": round(2 * flops / got.median_ms, 4), "load": load()}
        print(f"{row.model} {precision}: {got.median_ms:.1f} ms (p90 {got.p90_ms:.1f}, {got.passes} passes)", flush=True)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every Table 1 model even on a CPU")
    parser.add_argument("--models", default="", help="comma-separated Table 1 model names (as in bench/zoo_flops.py)")
    parser.add_argument("--max-s", type=float, default=None, help="time cap per model and precision (s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from ablate.analysis import device_label
    from ablate.analysis.latency import Budget

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
    else:
        names = [r.model for r in ROWS] if device == "cuda" or args.all else list(CPU_MODELS)
    rows = [r for r in ROWS if r.model in names]
    unknown = sorted(set(names) - {r.model for r in rows})
    if unknown:
        parser.error(f"unknown model(s): {', '.join(unknown)}")
    if device == "cuda":
        torch.backends.cudnn.benchmark = True  # as trials train and are timed (env_cfg.cudnn_benchmark)
        budget = Budget(max_s=args.max_s or 10.0)
    else:  # passes of seconds: fewer, still a median of several
        budget = Budget(warmup_passes=2, warmup_s=0.0, min_passes=10, floor_passes=7, max_s=args.max_s or 20.0)
    results = {row.model: measure_row(row, device, budget) for row in rows}
    write_result("latency", {
        "device": device_label(torch.device(device)),
        "torch": torch.__version__,
        "command": " ".join([".venv/bin/python bench/latency.py", *(argv if argv is not None else sys.argv[1:])]),
        "setup": {"input": "batch 1, 375x1242 (UNet 368x1248), random weights, eval mode, no gradients",
                  "forward": "the segmentor's logits resized to the input (what FLOPs count)",
                  "budget": {k: v for k, v in vars(budget).items()}},
        "results": results,
    })
    return 0


# -- RESULTS.md section ---------------------------------------------------------------------------
def _cell(r: dict[str, Any], key: str, digits: int = 1) -> str:
    return "error" if "error" in r else fmt(r.get(key), digits)


def summary(d: dict[str, Any]) -> list[Figure]:
    out = []
    for model in ("SegFormer B0", "SegFormer B2"):
        r = d["results"].get(model)
        if r:
            out.append(Figure(f"{model} latency at 375x1242, fp32 / bf16 ({d['device']})",
                              f"{_cell(r['fp32'], 'median_ms')} / {_cell(r['bf16'], 'median_ms')} ms"))
    return out


def render(d: dict[str, Any]) -> str:
    budget = d["setup"]["budget"]
    out = [
        "## Inference latency of the Table 1 models (`bench/latency.py`)",
        "",
        f"`{d.get('command', '.venv/bin/python bench/latency.py')}` on {d['device']}; torch {d['torch']}. "
        f"{d['setup']['input']}; {d['setup']['forward']}. Timed by "
        f"`ablate.analysis.measure_latency`, the code a trial's `LatencyHook` runs: {budget['warmup_passes']} warm-up "
        f"passes, then timed passes until the median moves less than {budget['tolerance']:.0%} between checks every "
        f"{budget['chunk']} passes (at least {budget['min_passes']}), or {budget['max_s']:.0f} s (at least "
        f"{budget['floor_passes']} passes). bf16: the same passes under `torch.autocast` with bfloat16. "
        "TFLOP/s: 2 x counted GFLOPs (multiply-adds) / median latency.",
        "",
        "| model | input | GFLOPs | fp32 median (ms) | fp32 p90 (ms) | fp32 FPS | bf16 median (ms) | bf16 p90 (ms) "
        "| bf16 FPS | bf16 / fp32 | fp32 TFLOP/s | bf16 TFLOP/s | passes fp32 / bf16 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, r in d["results"].items():
        fp32, bf16 = r["fp32"], r["bf16"]
        speedup = (fmt(round(bf16["median_ms"] / fp32["median_ms"], 3), 3)
                   if "median_ms" in fp32 and "median_ms" in bf16 else "-")
        out.append(
            f"| {model} | {r['shape'][0]}x{r['shape'][1]} | {fmt(r['gflops'], 1)} | {_cell(fp32, 'median_ms')} | "
            f"{_cell(fp32, 'p90_ms')} | {_cell(fp32, 'fps', 2)} | {_cell(bf16, 'median_ms')} | {_cell(bf16, 'p90_ms')} | "
            f"{_cell(bf16, 'fps', 2)} | {speedup} | {_cell(fp32, 'achieved_tflops', 3)} | "
            f"{_cell(bf16, 'achieved_tflops', 3)} | {fp32.get('passes', '-')} / {bf16.get('passes', '-')} |"
        )
    errors = [f"{model} {p}: {r[p]['error']}" for model, r in d["results"].items() for p in PRECISIONS if "error" in r[p]]
    if errors:
        out += ["", "Not measured: " + "; ".join(errors) + "."]
    out += ["", load_note(d)]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
