"""What the README and `--help` promise matches the code: the layout table names every package,
the shipped studies are the files in `studies/`, and `ablate run` says which dispatcher it picks."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from ablate.cli import app

REPO = Path(__file__).resolve().parents[1]


def _layout() -> str:
    text = (REPO / "README.md").read_text()
    return text[text.index("## Layout"):]


def test_layout_names_every_package_and_shipped_study() -> None:
    layout = _layout()
    packages = sorted(p.name for p in (REPO / "ablate").iterdir() if (p / "__init__.py").is_file())
    assert [p for p in packages if f"`ablate/{p}/`" not in layout] == []
    listed = re.search(r"the shipped studies: (.*) \|", layout)
    assert listed is not None
    shipped = sorted(p.stem for p in (REPO / "studies").glob("*.yaml"))
    assert sorted(re.findall(r"`([\w-]+)`", listed.group(1))) == shipped


def test_run_help_names_the_auto_dispatcher_not_ray_by_default() -> None:
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "one GPU per trial" not in text and "[default: auto]" in text
    assert "resources.gpus_per_trial GPUs each" in text and "--dispatcher auto, the default" in text
    assert "auto (default): local where only one trial could run at a time anyway" in text
