"""`ablate report` on a store filled with known numbers: exact table values, files, links, errors."""

from __future__ import annotations

import csv
import itertools
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from ablate import tracking
from ablate.cli.report import report_command
from ablate.data import CLASSES
from ablate.errors import AblateError
from ablate.report import (
    build_report,
    collect,
    compare,
    holm,
    ladder_tables,
    ladders,
    model_rows,
    pareto_front,
    permutation_p,
    power,
    seeds_for_power,
    welch,
)

ZOO, LADDER, LOO = "zoo-study", "ladder-study", "loo-study"
ZOO_MODELS = {  # name: (enc, dec, flops, params, mIoU per seed)
    "unet-s5": ("no", "no", 30.0, 29.0, [40.0, 44.0]),
    "segformer-b2*": ("yes", "yes", 60.0, 27.5, [70.0, 71.0]),
    "pspnet-r18": ("no", "no", 200.0, 12.9, [55.0, 58.0]),
}
# name: (latency ms, precision tags): another order than FLOPs, so the two fronts differ;
# unet asked for bf16 and fell back to fp32
GPU = "NVIDIA H100 80GB HBM3"
FALLBACK = "no accelerator: trained in fp32"
ZOO_SPEED = {
    "unet-s5": (40.0, {"ablate.amp": "bf16", "ablate.precision": "fp32", "ablate.amp_fallback": FALLBACK}),
    "segformer-b2*": (25.0, {"ablate.amp": "bf16", "ablate.precision": "bf16"}),
    "pspnet-r18": (20.0, {"ablate.amp": "off", "ablate.precision": "fp32"}),
}
# Seeds 0, 1, 2 on every rung, with a seed effect shared by all rungs (seed 1 high, seed 2 low), as
# on real ladders: pairing by seed removes it. transfer: +6 for sure; poly_lr: +0.4 within the
# noise; class_balanced_loss: nothing.
LADDER_RUNGS = [
    ("base", [60.0, 63.0, 58.0]),
    ("transfer", [66.2, 68.8, 64.1]),
    ("poly_lr", [66.9, 69.1, 64.4]),
    ("class_balanced_loss", [66.5, 69.6, 64.0]),
]
# Per-class effects on top of the mIoU change, from the rung that adds the trick on (levels).
LADDER_CLASS_SHIFT = {1: {"sky": -14.0}, 2: {"rider": 5.0}}
# seed -> mIoU: minus-ohem has one seed (no test), minus-aux_head other seeds than the full recipe (Welch)
LOO_ROWS = [
    ("full", {0: 70.0, 1: 71.5, 2: 69.0}),
    ("transfer", {0: 60.5, 1: 61.0, 2: 59.0}),
    ("ohem", {0: 70.5}),
    ("aux_head", {3: 69.0, 4: 70.0}),
]
ABSENT = "train"  # a class no run saw: NaN everywhere


def _class_metrics(miou: float, shift: Optional[dict[str, float]] = None, jitter: int = -1) -> dict[str, float]:
    """Per-class IoU = mIoU + a fixed class offset (+ a shift, + a small per-run wobble when
    `jitter` >= 0), so class deltas follow the mIoU deltas except where shifted."""
    out = {}
    for i, name in enumerate(CLASSES):
        key = name.replace(" ", "_")
        wobble = 0.05 * (((jitter + 2 * i) % 5) - 2) if jitter >= 0 else 0.0
        value = miou + (i - 9) * 0.5 + (shift or {}).get(name, 0.0) + wobble
        out[f"IoU.{key}"] = float("nan") if name == ABSENT else value
        out[f"Acc.{key}"] = float("nan") if name == ABSENT else min(100.0, miou + 10)
    return out


def _ladder_shift(rung: int) -> dict[str, float]:
    shift: dict[str, float] = {}
    for start, effects in LADDER_CLASS_SHIFT.items():
        if rung >= start:
            shift.update(effects)
    return shift


def _png(path: Path, colour: tuple[int, int, int]) -> Path:
    from PIL import Image

    arr = np.zeros((16, 48, 3), dtype=np.uint8)
    arr[:8] = colour
    arr[8:, :24] = (255 - colour[0], 30, 200)
    Image.fromarray(arr).save(path)
    return path


def add_run(
    client: Any, exp_id: str, study: str, name: str, seed: int, *, shape: str, miou: Optional[float],
    status: str = "FINISHED", flops: float = 60.0, params: float = 27.5, tags: Optional[dict[str, str]] = None,
    failure: str = "", class_metrics: Optional[dict[str, float]] = None, speed: Optional[dict[str, float]] = None,
) -> str:
    """One trial run written the way `ablate run` writes it (same tags, params and metric names)."""
    from mlflow.entities import Param

    all_tags = {
        tracking.tags.TRIAL_ID: f"{name}-{seed}", tracking.tags.STUDY: study, tracking.tags.KIND: "trial",
        "ablate.trial_name": name, "ablate.seed": str(seed), "ablate.shape": shape,
        "ablate.model": "segformer_mit-b2_kitti", "ablate.enc_pretrained": "yes", "ablate.dec_pretrained": "no",
        "ablate.tricks": "",
        **(tags or {}),
    }
    run_id = client.create_run(exp_id, run_name=f"{name}-s{seed}", tags=all_tags).info.run_id
    items = {"trial_name": name, "seed": seed, "iters": 20, "batch_size": 2, "dataset": "tiny@abc123", "profile": "None"}
    client.log_batch(run_id, params=[Param(k, str(v)) for k, v in tracking.param_items(items).items()])
    if miou is not None:
        store = tracking.RunStore.open(client.tracking_uri)
        # an earlier, better evaluation: the report must use the final one
        store.log_metrics(run_id, {"mIoU": miou + 5, "best_mIoU": miou + 5}, step=10)
        store.log_metrics(run_id, {"mIoU": miou, "mAcc": miou + 10, "aAcc": 90.0, **(class_metrics or _class_metrics(miou))}, step=20)
        store.log_metrics(run_id, {"flops_g": flops, "params_m": params}, step=0)
        if speed:
            store.log_metrics(run_id, speed, step=20)
    if failure:
        client.set_tag(run_id, "ablate.failure", failure)
    client.set_tag(run_id, "ablate.duration_s", f"{100.0 + seed * 20:.1f}")
    if status != "RUNNING":
        client.set_terminated(run_id, status=status)
    return run_id


def _search(tmp: Path, client: Any, exp_id: str) -> None:
    """A tune parent run pointing at a small Optuna study, and its trial runs."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{tmp / 'optuna.db'}"
    study = optuna.create_study(study_name="zoo-search", storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: 60 + 10 * t.suggest_float("lr", 1e-5, 1e-3, log=True) * 1e3 - t.suggest_int("warmup", 0, 5), n_trials=6)
    client.create_run(exp_id, run_name="tune", tags={tracking.tags.KIND: "tune", tracking.tags.STUDY: ZOO,
                                                       "ablate.optuna_storage": storage, "ablate.optuna_study": "zoo-search"})
    for number in range(3):
        add_run(client, exp_id, ZOO, f"tune-{number}", 0, shape="trials", miou=50.0 + number,
                tags={"ablate.optuna_trial": str(number), "ablate.optuna_state": "COMPLETE"})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("report")
    uri = f"sqlite:///{tmp / 'mlruns.db'}"
    client = MlflowClient(uri)
    zoo = tracking.RunStore.open(uri).ensure_experiment(ZOO)
    best_run = ""
    for name, (enc, dec, flops, params, values) in ZOO_MODELS.items():
        for seed, value in enumerate(values):
            latency, precision = ZOO_SPEED[name]
            run_id = add_run(client, zoo, ZOO, name, seed, shape="zoo", miou=value, flops=flops, params=params,
                             tags={"ablate.model": name, "ablate.enc_pretrained": enc, "ablate.dec_pretrained": dec,
                                   "ablate.latency_device": GPU, **precision},
                             speed={"latency_ms": latency + seed, "latency_p90_ms": latency + 3, "fps": 1000 / (latency + seed)})
            if name == "segformer-b2*" and seed == 1:
                best_run = run_id
    add_run(client, zoo, ZOO, "swin-t", 0, shape="zoo", miou=None, status="FAILED", failure="RuntimeError: CUDA out of memory",
            tags={"ablate.model": "swin-t"})
    add_run(client, zoo, ZOO, "deeplabv3plus-r50", 0, shape="zoo", miou=None, status="RUNNING",
            tags={"ablate.model": "deeplabv3plus-r50"})
    add_run(client, zoo, ZOO, "pretrain-city", 0, shape="pretrain", miou=80.0, tags={"ablate.pretrain": "city"})
    preds = tmp / "preds"
    preds.mkdir()
    for file, colour in (("a_img", (200, 10, 10)), ("a_gt", (10, 200, 10)), ("a_pred", (10, 10, 200)), ("b_pred", (90, 90, 0))):
        client.log_artifact(best_run, str(_png(preds / f"{file}.png", colour)), artifact_path="predictions")
    _search(tmp, client, zoo)

    ladder = tracking.RunStore.open(uri).ensure_experiment(LADDER)
    for rung, (trick, values) in enumerate(LADDER_RUNGS):
        for seed, value in enumerate(values):
            add_run(client, ladder, LADDER, f"r{rung}-{trick}", seed, shape="ladder", miou=value,
                    tags={"ablate.rung": str(rung), "ablate.trick": trick},
                    class_metrics=_class_metrics(value, _ladder_shift(rung), jitter=7 * rung + 3 * seed))
    loo = tracking.RunStore.open(uri).ensure_experiment(LOO)
    for rung, (trick, by_seed) in enumerate(LOO_ROWS):
        for seed, value in by_seed.items():
            add_run(client, loo, LOO, "full" if rung == 0 else f"minus-{trick}", seed, shape="leave_one_out", miou=value,
                    tags={"ablate.rung": str(rung), "ablate.trick": trick})
    study_file = tmp / "zoo.yaml"
    study_file.write_text(yaml.safe_dump({
        "name": ZOO, "base": "configs/segformer/segformer_mit-b2_kitti.py", "data": {"root": str(tiny_data)},
        "zoo": [{"name": n, "config": f"configs/{n}.py"} for n in ZOO_MODELS],
        "reference": {"segformer-b2*": 78.45, "unet-s5": 52.1},
    }, sort_keys=False))
    return {"tmp": tmp, "uri": uri, "study": study_file}


@pytest.fixture(scope="module")
def zoo_report(store: dict[str, Any]) -> tuple[Path, list[Path]]:
    out = store["tmp"] / "out-zoo"
    return out, build_report(study=store["study"], out=out, tracking_uri=store["uri"])


@pytest.fixture(scope="module")
def ladder_report(store: dict[str, Any]) -> tuple[Path, list[Path]]:
    out = store["tmp"] / "out-ladder"
    return out, build_report([LADDER, LOO], out=out, tracking_uri=store["uri"], formats="png,svg")


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


# -- statistics -------------------------------------------------------------------------------

def test_permutation_tests_are_exact_for_small_groups() -> None:
    # 6 relabelings of [60, 62 | 66, 68]: |diff| 6, 2, 0, 0, 2, 6 -> 2 of 6 as extreme as observed
    assert permutation_p([60.0, 62.0], [66.0, 68.0]) == pytest.approx(1 / 3)
    # sign flips of the 3 pair differences, all 8 of them enumerated here
    a, b = [60.0, 63.0, 58.0], [61.0, 66.0, 57.5]
    diffs = np.subtract(b, a)
    flipped = [abs(np.mean(diffs * signs)) for signs in itertools.product([1, -1], repeat=3)]
    exact = sum(f >= abs(diffs.mean()) - 1e-12 for f in flipped) / 8
    assert permutation_p(a, b, paired=True) == pytest.approx(exact)
    assert compare([1.0], [2.0, 3.0]) is None  # one value on a side: no spread, no interval


def test_welch_matches_its_formula() -> None:
    from scipy import stats as sps

    a, b = [60.0, 62.0], [66.0, 68.0]
    got = welch(a, b)
    se = math.sqrt(2.0 / 2 + 2.0 / 2)
    df = (1.0 + 1.0) ** 2 / (1.0 / 1 + 1.0 / 1)
    assert got.delta == pytest.approx(6.0) and got.method == "welch"
    assert got.ci_high - got.delta == pytest.approx(sps.t.ppf(0.975, df) * se)
    assert got.p_value == pytest.approx(sps.ttest_ind(b, a, equal_var=False).pvalue)


def test_holm_hand_computed() -> None:
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone: 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped
    got = holm([float("nan"), 0.2, 0.01])  # untested entries stay untested and are not counted
    assert math.isnan(got[0]) and got[1:] == pytest.approx([0.2, 0.02])


def test_seeds_for_power() -> None:
    from scipy import stats as sps

    # Cohen's tables: paired t-test d=0.5 -> 34 pairs, d=1 -> 10; two groups d=0.5 -> 64 each
    assert (seeds_for_power(0.5), seeds_for_power(1.0), seeds_for_power(0.5, paired=False)) == (34, 10, 64)
    effect = 0.37
    n = int(seeds_for_power(effect))
    critical = sps.t.ppf(0.975, n - 1)
    direct = sps.nct.sf(critical, n - 1, effect * math.sqrt(n)) + sps.nct.cdf(-critical, n - 1, effect * math.sqrt(n))
    assert direct >= 0.8 > float(power(effect, n - 1))
    assert seeds_for_power(0.0) == math.inf
    # every seed moved by exactly +6: no spread, so neither a p-value nor a seed budget
    flat = compare([60.0, 62.0], [66.0, 68.0], [0, 1], [0, 1])
    assert flat is not None and flat.paired and math.isnan(flat.p_value) and flat.seeds_needed is None
    assert ladder_tables.fmt_seeds(flat) == "n/a" and ladder_tables.fmt_p(flat.p_value) == "n/a"


def test_pareto_front() -> None:
    points = [("a", 10.0, 50.0), ("b", 20.0, 60.0), ("c", 30.0, 55.0), ("d", 5.0, 40.0), ("e", 20.0, 60.0), ("f", float("nan"), 99.0)]
    assert pareto_front(points) == ["d", "a", "b", "e"]


# -- tables -----------------------------------------------------------------------------------

def test_table1_values_order_and_exclusions(store: dict[str, Any]) -> None:
    collection = collect(store["uri"], [ZOO])
    rows = model_rows(collection, {"segformer-b2*": 78.45})
    # family order: UNet, SegFormer, PSPNet (search and pretraining runs are not rows)
    assert [r.label for r in rows] == ["unet-s5", "segformer-b2*", "pspnet-r18"]
    unet, segformer, psp = rows
    assert (unet.miou.mean, unet.miou.std, unet.miou.n) == (42.0, pytest.approx(math.sqrt(8)), 2)
    assert (segformer.miou.mean, segformer.miou.std) == (70.5, pytest.approx(math.sqrt(0.5)))
    assert psp.miou.mean == 56.5 and psp.miou.std == pytest.approx(math.sqrt(4.5))
    assert (segformer.flops_g, segformer.params_m, segformer.reference) == (60.0, 27.5, 78.45)
    assert segformer.enc_pretrained and segformer.dec_pretrained and not unet.enc_pretrained
    assert unet.duration_s == pytest.approx(110.0)
    assert pareto_front([(r.label, r.flops_g, r.miou.mean) for r in rows]) == ["unet-s5", "segformer-b2*"]
    assert (segformer.latency_ms, segformer.fps) == (25.5, pytest.approx((1000 / 25 + 1000 / 26) / 2))
    assert [(r.precision, r.amp_fallback, r.latency_devices) for r in rows] == [
        ("fp32", True, [GPU]), ("bf16", False, [GPU]), ("fp32", False, [GPU])]
    assert pareto_front([(r.label, r.latency_ms, r.miou.mean) for r in rows]) == ["pspnet-r18", "segformer-b2*"]
    excluded = {e.run.name: (e.run.status, e.reason) for e in collection.excluded}
    assert excluded == {"swin-t": ("FAILED", "RuntimeError: CUDA out of memory"), "deeplabv3plus-r50": ("RUNNING", "still running")}


def test_ladder_is_tested_paired_by_seed(store: dict[str, Any]) -> None:
    from scipy import stats as sps

    (ladder,) = ladders(collect(store["uri"], [LADDER]).table_runs, CLASSES)
    means = [float(np.mean(values)) for _, values in LADDER_RUNGS]
    assert [s.miou.mean for s in ladder.steps] == pytest.approx(means)
    assert ladder.steps[0].delta is None and ladder.steps[0].comparison is None
    assert [s.delta for s in ladder.steps[1:]] == pytest.approx(np.diff(means))
    assert [s.cumulative for s in ladder.steps[1:]] == pytest.approx(np.subtract(means[1:], means[0]))
    raw = []
    for step, (_, before), (_, after) in zip(ladder.steps[1:], LADDER_RUNGS, LADDER_RUNGS[1:]):
        c = step.comparison
        expected = sps.ttest_rel(after, before)
        ci = expected.confidence_interval(0.95)
        assert c is not None and c.method == "paired" and c.n == 3
        assert (c.p_value, c.ci_low, c.ci_high) == pytest.approx((expected.pvalue, ci.low, ci.high))
        assert c.delta == pytest.approx(np.mean(np.subtract(after, before)))
        assert c.noise == pytest.approx(math.sqrt((np.var(before, ddof=1) + np.var(after, ddof=1)) / 2))
        raw.append(expected.pvalue)
    assert [s.comparison.p_holm for s in ladder.steps[1:]] == pytest.approx(holm(raw))
    # the seed effect hides +6 from Welch's test; pairing by seed removes it
    transfer, poly, balanced = (s.comparison for s in ladder.steps[1:])
    assert transfer.significant and transfer.p_value < welch(LADDER_RUNGS[0][1], LADDER_RUNGS[1][1]).p_value
    assert not poly.significant and not balanced.significant
    # seed budget and noise: +0.4 and -0.1 are within one seed sd, +6 is not
    assert [c.below_noise for c in (transfer, poly, balanced)] == [False, True, True]
    diffs = np.subtract(LADDER_RUNGS[2][1], LADDER_RUNGS[1][1])
    assert poly.seeds_needed == seeds_for_power(abs(diffs.mean()) / np.std(diffs, ddof=1))
    assert ladder.noisy == ["+poly_lr", "+class_balanced_loss"]


def test_per_class_significance(store: dict[str, Any]) -> None:
    (ladder,) = ladders(collect(store["uri"], [LADDER]).table_runs, CLASSES)
    road, sky, rider, absent = (CLASSES.index(c) for c in ("road", "sky", "rider", ABSENT))
    transfer, poly, balanced = ladder.steps[1:]
    assert transfer.class_delta[road] == pytest.approx(transfer.delta, abs=0.2)
    assert math.isnan(transfer.class_delta[absent]) and transfer.class_tests[absent] is None
    helped, hurt = ladder.class_effects(transfer)
    assert [c for c, _ in hurt] == ["sky"] and hurt[0][1] == pytest.approx(transfer.class_delta[sky])
    assert "road" in dict(helped)
    # Holm across the rung's classes: the p-values of one rung are one family
    tested = [t for t in poly.class_tests if t is not None]
    assert [t.p_holm for t in tested] == pytest.approx(holm([t.p_value for t in tested]))
    assert ladder.class_effects(poly) == ([("rider", pytest.approx(poly.class_delta[rider]))], [])
    assert ladder.class_effects(balanced) == ([], [])


def test_leave_one_out_vs_full(store: dict[str, Any]) -> None:
    from scipy import stats as sps

    (loo,) = ladders(collect(store["uri"], [LOO]).table_runs, CLASSES)
    full = list(LOO_ROWS[0][1].values())
    assert loo.is_loo and loo.step_labels == ["full recipe", "-transfer", "-ohem", "-aux_head"]
    assert [s.delta for s in loo.steps[1:]] == pytest.approx([np.mean(list(v.values())) - np.mean(full) for _, v in LOO_ROWS[1:]])
    assert all(s.cumulative is None for s in loo.steps)
    minus_transfer, minus_ohem, minus_aux = loo.steps[1:]
    assert minus_transfer.comparison.method == "paired"
    assert minus_ohem.comparison is None and not minus_ohem.class_tested  # one seed: no test
    aux = list(LOO_ROWS[3][1].values())
    assert minus_aux.comparison.method == "welch"  # seeds 3, 4 vs 0, 1, 2: nothing to pair
    assert minus_aux.comparison.p_value == pytest.approx(sps.ttest_ind(aux, full, equal_var=False).pvalue)
    helped, hurt = loo.class_effects(minus_transfer)  # removing transfer costs every class: it helps them
    assert len(helped) == len(CLASSES) - 1 and not hurt and all(d > 0 for _, d in helped)


def test_table_files(zoo_report: tuple[Path, list[Path]]) -> None:
    out, written = zoo_report
    rows = _csv(out / "table1.csv")
    assert [r["model"] for r in rows] == ["unet-s5", "segformer-b2*", "pspnet-r18"]
    assert [float(r["miou_mean"]) for r in rows] == [42.0, 70.5, 56.5]
    assert float(rows[1]["miou_std"]) == pytest.approx(math.sqrt(0.5), abs=1e-6)
    assert [r["reference_miou"] for r in rows] == ["52.1", "78.45", ""]
    assert [r["pareto"] for r in rows] == ["True", "True", "False"]
    assert [r["pareto_latency"] for r in rows] == ["False", "True", "True"]
    assert [(r["precision"], r["amp_fallback"], r["latency_ms"]) for r in rows] == [
        ("fp32", "True", "40.5"), ("bf16", "False", "25.5"), ("fp32", "False", "20.5")]
    assert {r["latency_device"] for r in rows} == {GPU}
    md = (out / "table1.md").read_text()
    assert "| segformer-b2\\* | ✓ | ✓ | 70.50 ± 0.71 | 2 | 60.0 | 27.50 | bf16 | 25.5 | 39.2 |" in md
    assert "| unet-s5 | ✗ | ✗ | 42.00 ± 2.83 | 2 | 30.0 | 29.00 | fp32‡ | 40.5 | 24.7 |" in md
    assert f"precision on {GPU}, mean over seeds" in md and f"‡ bf16 mixed precision requested, not available ({FALLBACK})." in md
    assert "swin-t" not in md and "deeplabv3plus" not in md and "tune-0" not in md

    tex = (out / "table1_full.tex").read_text()
    assert tex.count("{") == tex.count("}") and "\\begin{table*}" in tex
    body = tex[tex.index("\\begin{tabular}"): tex.index("\\end{tabular}")]
    assert body.index("\\toprule") < body.index("\\midrule") < body.index("\\bottomrule")
    assert "mIoU (\\%)" in tex and "70.50 $\\pm$ 0.71" in tex and "fp32$^\\ddagger$" in tex
    assert all(line.endswith("\\\\") for line in body.splitlines()[2:] if "&" in line)
    assert len({line.count("&") for line in body.splitlines() if "&" in line}) == 1
    # the one-column Table 1 a paper prints: the models differ, so their parameters are in it
    narrow = (out / "table1.tex").read_text()
    assert "\\begin{table}[t]" in narrow and "\\usepackage{booktabs}, \\usepackage{amssymb}" in narrow
    assert "Model & Enc. & Dec. & mIoU (\\%) & FLOPs (G) & Params (M) \\\\" in narrow
    assert "segformer-b2$^*$ & \\checkmark & \\checkmark & 70.50 $\\pm$ 0.71 & 60.0 & 27.50 \\\\" in narrow


def test_ladder_files_escape_and_caption(ladder_report: tuple[Path, list[Path]]) -> None:
    out, written = ladder_report
    names = {p.relative_to(out).as_posix() for p in written}
    assert {"ladder-ladder-study.md", "ladder-ladder-study.tex", "ladder-ladder-study.csv",
            "leave_one_out-loo-study.csv", "table1.csv"} <= names
    means = [float(np.mean(values)) for _, values in LADDER_RUNGS]
    rows = _csv(out / "ladder-ladder-study.csv")
    assert rows[0]["delta"] == "" and [float(r["delta"]) for r in rows[1:]] == pytest.approx(np.diff(means), abs=1e-6)
    assert [r["test"] for r in rows] == ["", "paired", "paired", "paired"]
    assert [r["significant"] for r in rows[1:]] == ["True", "False", "False"]
    assert [r["below_noise"] for r in rows[1:]] == ["False", "True", "True"]
    assert all(int(r["seeds_for_80_power"]) >= 2 for r in rows[1:])
    assert "+class\\_balanced\\_loss" in (out / "ladder-ladder-study.tex").read_text()
    tex = (out / "ladder-ladder-study_full.tex").read_text()
    assert "class\\_balanced\\_loss" in tex and "ttest\\_rel" in tex and "Holm" in tex and "95\\%" in tex
    assert tex.count("{") == tex.count("}")
    md = (out / "ladder-ladder-study.md").read_text()
    assert f"{means[1] - means[0]:+.2f}\\*" in md  # the significant delta is marked
    assert f"{means[2] - means[1]:+.2f} |" in md  # the noisy one is not
    assert "paired n=3" in md and "Welch" not in md
    # 3 seeds: the sign-flip test cannot give p below 0.25, so it shows that instead of a p
    assert md.count("| n/a: min p 0.25 with 3 seeds |") == 3 and "it needs 7 seeds shared by both rows (6 for" in md
    assert [(r["p_permutation_min"], r["permutation_can_reach"]) for r in rows[1:]] == [("0.25", "False")] * 3
    loo = _csv(out / "leave_one_out-loo-study.csv")
    assert [r["test"] for r in loo] == ["", "paired", "", "welch"]
    loo_md = (out / "leave_one_out-loo-study.md").read_text()
    assert 'Test "Welch"' in loo_md and "| n/a: min p 0.2 with 3+2 seeds |" in loo_md


def test_every_tex_fits_a_two_column_paper(zoo_report: tuple[Path, list[Path]],
                                            ladder_report: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """Each .tex compiles in a two-column article with no box wider than its column (or the page)."""
    from tests.latex_check import compile_in_paper

    written = [p for _, files in (zoo_report, ladder_report) for p in files if p.suffix == ".tex"]
    names = {p.name for p in written}
    assert {"table1.tex", "table1_full.tex", "choice.tex", "ladder-ladder-study.tex",
            "ladder-ladder-study_full.tex", "leave_one_out-loo-study_full.tex"} <= names
    for tex in written:
        overfull = [w for w in compile_in_paper(tex, tmp_path / tex.parent.name) if w > 1.0]
        assert not overfull, f"{tex.name}: Overfull \\hbox of {overfull} pt"
    narrow = (ladder_report[0] / "ladder-ladder-study.tex").read_text()
    assert "Rung & Trick & mIoU (\\%) & $\\Delta$ prev. & 95\\% CI of $\\Delta$ & p (Holm) \\\\" in narrow


def test_report_marks_significant_classes(ladder_report: tuple[Path, list[Path]]) -> None:
    out, _ = ladder_report
    rows = _csv(out / "ladder-ladder-study_class_delta.csv")
    significant = [(r["trick"], r["class"]) for r in rows if r["significant"] == "True"]
    assert ("transfer", "sky") in significant and ("poly_lr", "rider") in significant
    assert not any(trick == "class_balanced_loss" for trick, _ in significant)
    # the heatmap frames exactly those cells (rows: rungs 1..3, columns: classes)
    svg = (out / "figures" / "ladder-ladder-study_class_delta.svg").read_text()
    framed = sorted(re.findall(r'id="significant-(\d+)-(\d+)"', svg))
    tricks = [trick for trick, _ in LADDER_RUNGS[1:]]
    assert framed == sorted((str(tricks.index(t)), str(CLASSES.index(c))) for t, c in significant)
    html = (out / "index.html").read_text()
    listing = html[html.index("Classes helped and hurt (ladder-study)"):]
    assert re.search(r"<td>transfer</td><td>[^<]*road \(\+[\d.]+\)[^<]*</td><td>sky \(-[\d.]+\)</td>", listing)
    assert "<td>class_balanced_loss</td><td>none significant</td><td>none significant</td>" in listing
    assert "<td>ohem</td><td>not tested: fewer than two seeds to compare</td>" in html
    assert "smaller than the seed-to-seed sd" in html and "+poly_lr" in html


# -- figures, html, errors --------------------------------------------------------------------

def _non_blank(path: Path) -> bool:
    from PIL import Image

    with Image.open(path) as image:
        return float(np.asarray(image.convert("L"), dtype=float).std()) > 1.0


def test_every_figure_is_drawn(zoo_report: tuple[Path, list[Path]], ladder_report: tuple[Path, list[Path]]) -> None:
    zoo_out, zoo_files = zoo_report
    names = {p.relative_to(zoo_out).as_posix() for p in zoo_files}
    for name in ("miou_vs_flops", "miou_vs_latency", "per_class_heatmap", "per_class_bars", "class_distribution", "qualitative",
                 "search_0_zoo-search_history", "search_0_zoo-search_importance", "search_0_zoo-search_slice"):
        assert f"figures/{name}.png" in names, name
    ladder_out, ladder_files = ladder_report
    ladder_names = {p.relative_to(ladder_out).as_posix() for p in ladder_files}
    for name in ("ladder-ladder-study_waterfall", "ladder-ladder-study_class_delta", "leave_one_out-loo-study_deltas",
                 "leave_one_out-loo-study_class_delta"):
        assert f"figures/{name}.png" in ladder_names and f"figures/{name}.svg" in ladder_names, name
    pngs = [p for p in zoo_files + ladder_files if p.suffix == ".png"]
    assert pngs and all(p.is_file() and _non_blank(p) for p in pngs)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        for key, value in attrs:
            if key in ("href", "src") and value:
                self.targets.append(value)


def test_index_links_resolve_and_lists_failures(zoo_report: tuple[Path, list[Path]]) -> None:
    out, written = zoo_report
    assert all(p.is_file() for p in written)
    html = (out / "index.html").read_text()
    parser = _Links()
    parser.feed(html)
    files = [t for t in parser.targets if not t.startswith("#")]
    assert len(files) > 10
    for target in files:
        assert not re.match(r"^[a-z]+:", target) and not target.startswith("/"), target
        assert (out / target).is_file(), target
    for text in ("swin-t", "RuntimeError: CUDA out of memory", "deeplabv3plus-r50", "RUNNING"):
        assert text in html
    readme = (out / "README.md").read_text()
    assert "swin-t" in readme and "figures/miou_vs_flops.png" in readme
    # every run here logged 20 iterations: the report says its numbers are not the tricks' effects
    short = "Every run trained fewer than 1000 iterations (as few as 20), far too few for the models to converge"
    assert short in html and short in readme and "not the tricks&#x27; effects" in html
    assert "<script" not in html and "http" not in html.replace(store_uri_text(html), "")


def store_uri_text(html: str) -> str:
    """The tracking URI may legitimately be an http(s) address; nothing else may be."""
    match = re.search(r"tracking URI</b>: ([^<]*)", html)
    return match.group(1) if match else ""


def test_unknown_or_empty_experiment(store: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(AblateError, match="no-such-study: no such experiment"):
        build_report(["no-such-study"], out=tmp_path / "x", tracking_uri=store["uri"])
    client = MlflowClient(store["uri"])
    empty = tracking.RunStore.open(store["uri"]).ensure_experiment("empty-study")
    add_run(client, empty, "empty-study", "broken", 0, shape="trials", miou=None, status="FAILED", failure="boom")
    with pytest.raises(AblateError, match=r"empty-study: no finished trials in sqlite:///.*; run `ablate run"):
        build_report(["empty-study"], out=tmp_path / "y", tracking_uri=store["uri"])
    with pytest.raises(AblateError, match="no MLflow store"):
        build_report(["x"], out=tmp_path / "z", tracking_uri=f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "x").exists() and not (tmp_path / "missing.db").exists()
    with pytest.raises(AblateError, match=f"{LADDER}: no finished trials for profile demo"):
        build_report([LADDER], out=tmp_path / "v", tracking_uri=store["uri"], profile="demo")
    with pytest.raises(AblateError, match="--format"):
        build_report([LADDER], out=tmp_path / "w", tracking_uri=store["uri"], formats="png,bmp")


def test_refuses_to_replace_a_foreign_folder(store: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(AblateError, match="not written by `ablate report`"):
        build_report([LOO], out=tmp_path, tracking_uri=store["uri"])
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_cli_lists_written_files(store: dict[str, Any], tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    app.command("report")(report_command)
    app.command("noop")(lambda: None)  # two commands keep "report" as a sub-command name
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["report", "--experiment", LOO, "--out", str(out), "--tracking-uri", store["uri"]])
    assert result.exit_code == 0, result.output
    listed = [Path(line) for line in result.stdout.splitlines() if line.strip()]
    assert out / "index.html" in listed and out / "table1.csv" in listed
    assert all(p.is_file() for p in listed)
    # a second run replaces the folder whole
    again = CliRunner().invoke(app, ["report", "-e", LOO, "--out", str(out), "--tracking-uri", store["uri"]])
    assert again.exit_code == 0 and not any(p.name.startswith(".cli.") for p in tmp_path.iterdir())
