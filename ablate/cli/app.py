"""`ablate` command line. Errors a user can fix are caught here, once, and printed on one line
(exit 2); `--debug` shows the traceback instead."""

from __future__ import annotations

import gc
import json
import sys
import traceback
import warnings
from pathlib import Path

import click
import typer
from rich.table import Table

from ablate.cli.console import err, out
from ablate.cli.diff import diff_command
from ablate.cli.plan import plan_command
from ablate.cli.report import report_command
from ablate.cli.run import run_command
from ablate.cli.server import server_command
from ablate.cli.tune import tune_command
from ablate.errors import AblateError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Declarative ablation studies for MMSegmentation.")
data_app = typer.Typer(no_args_is_help=True, help="Create, convert and inspect datasets.")
app.add_typer(data_app, name="data")


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    """Declarative ablation studies for MMSegmentation."""


@data_app.command("synth")
def data_synth(
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the dataset to."),
    train: int = typer.Option(150, min=1),
    test: int = typer.Option(50, min=1),
    height: int = typer.Option(375, min=32),
    width: int = typer.Option(1242, min=32),
    seed: int = typer.Option(0),
    domain: str = typer.Option("kitti", help="kitti, or city: a second appearance for pretraining."),
    overwrite: bool = typer.Option(False, help="Replace an existing dataset at --out."),
    layout: str = typer.Option(
        "kitti",
        "--format",
        help="kitti (img_dir/ann_dir, Cityscapes train ids), ade20k (images/annotations, 150 classes) "
        "or voc (JPEGImages/SegmentationClass + ImageSets split lists, 21 classes).",
    ),
) -> None:
    """Generate the deterministic synthetic road-scene dataset (KITTI layout, or ADE20K's / Pascal VOC's)."""
    from ablate import data

    root = data.synthesize(
        out_dir,
        train=train,
        test=test,
        height=height,
        width=width,
        seed=seed,
        domain=domain,
        overwrite=overwrite,
        format=layout,
    )
    shown = "" if layout == "kitti" else f", {layout} format"
    out.print(f"synthetic dataset: {root} ({train} train / {test} val, {height}x{width}, seed {seed}{shown})")


@data_app.command("kitti")
def data_kitti(
    raw_dir: Path = typer.Argument(..., help="KITTI semantics download (holds training/image_2, training/semantic)."),
    out_dir: Path = typer.Option(..., "--out"),
    train: int = typer.Option(150, min=1),
    test: int = typer.Option(50, min=1),
    seed: int = typer.Option(0),
    overwrite: bool = typer.Option(False),
) -> None:
    """Convert the official KITTI semantics download to the mmseg layout (label ids -> train ids)."""
    from ablate import data

    root = data.convert_kitti(raw_dir, out_dir, train=train, test=test, seed=seed, overwrite=overwrite)
    out.print(f"KITTI dataset: {root} ({train} train / {test} val, split seed {seed})")


@data_app.command("cityscapes")
def data_cityscapes(
    raw_dir: Path = typer.Argument(..., help="Cityscapes download (holds leftImg8bit/ and gtFine/)."),
    out_dir: Path = typer.Option(..., "--out"),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Threads converting labels (default: CPUs + 4)."),
    overwrite: bool = typer.Option(False),
) -> None:
    """Convert the official Cityscapes train/val download to the mmseg layout (label ids -> train ids)."""
    from ablate import data

    root = data.convert_cityscapes(raw_dir, out_dir, overwrite=overwrite, workers=workers)
    counts = json.loads((root / "dataset.json").read_text())["counts"]
    out.print(f"Cityscapes dataset: {root} ({counts['train']} train / {counts['val']} val)")


@data_app.command("stats")
def data_stats(
    root: Path = typer.Argument(
        ..., help="A study file, an mmseg config, or a dataset folder in the KITTI layout (img_dir/ann_dir)."
    ),
    split: str = typer.Option("train", "--split", help="train or val."),
    profile: str | None = typer.Option(None, "--profile", help="The study's profile (with a study file)."),
    data_root: Path | None = typer.Option(None, "--data-root", help="Replaces the config's data_root (with a config)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Per-class pixel counts and frequencies of a split, labels read as the dataset reads them."""
    from ablate import config, data

    ignore = data.IGNORE_INDEX
    if root.is_file() and root.suffix in (".yaml", ".yml", ".py"):
        if root.suffix == ".py":
            cfg = config.load_base(root)
            if data_root is not None:
                config.set_data_root(cfg, data_root)
        else:
            from ablate.study import dataset_config, load_study

            cfg = dataset_config(load_study(root, profile, check_files=False))
        stats = data.split_stats(cfg, split)
        ignore = data.config_meta(cfg, split).ignore_index
        where = f"{root} ({cfg.get('data_root') or 'its data_root'})"
    else:
        stats = data.class_stats(root, split)
        where = str(root)
    if as_json:
        out.print_json(json.dumps(stats.to_dict()))
        return
    table = Table(title=f"{where} - {split} split, {stats.images} images")
    for col in ("id", "class", "pixels", "share"):
        table.add_column(col, justify="right" if col != "class" else "left")
    for i, (name, count, freq) in enumerate(zip(stats.classes, stats.pixel_counts, stats.frequencies)):
        table.add_row(str(i), name, f"{count:,}", f"{freq:.2%}")
    out.print(table)
    out.print(f"ignored ({ignore}) pixels: {stats.ignored_pixels:,}")


@app.command("flops")
def flops(
    config_file: Path = typer.Argument(..., help="mmseg config file."),
    shape: tuple[int, int] = typer.Option((375, 1242), "--shape", help="Input height and width."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """FLOPs (G) and parameters (M) of one inference forward pass at H x W."""
    from ablate import analysis, config

    cfg = config.load_base(config_file)
    info = analysis.count_config(cfg, *shape)
    if as_json:
        out.print_json(json.dumps({"config": str(config_file), **info.to_dict()}))
    else:
        out.print(
            f"{config_file}: {info.flops_g:.3f} GFLOPs, {info.params_m:.3f} M params at {info.height}x{info.width}"
        )


app.command("run")(run_command)
app.command("tune")(tune_command)
app.command(
    "plan",
    help=(
        "Every trial a run would train: id, rung/model, seed, dependencies, cost, estimated time and GPU-hours, "
        "cached/pending; runs and writes nothing."
    ),
)(plan_command)
app.command("report", help="Rebuild Table 1, the ladder, the figures and index.html from MLflow.")(report_command)
app.command("diff", help="What differs between two trial runs: config, dataset, environment, metrics.")(diff_command)
app.command("server", help="An MLflow tracking server every machine of a cluster reaches; prints its URI.")(
    server_command
)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if not debug:  # the OpenMMLab stack warns about its own deprecations on every import
        for category in (UserWarning, DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
    try:
        # Not standalone, so errors reach the handlers below; typer then *returns* the exit
        # code of `typer.Exit` and of an interrupt (130) instead of exiting.
        code = app(args=args, prog_name="ablate", standalone_mode=False)
    except AblateError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        code = 130
    code = code if isinstance(code, int) else 0
    if code == 130:
        err.print("interrupted: finished trials are kept; run the same command again to resume the rest")
    gc.freeze()  # skip the interpreter's last full collection of torch/mmseg objects (~1 s)
    sys.exit(code)
