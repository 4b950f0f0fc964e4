"""The data commands as a user types them: output, JSON, and one-line errors with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ablate.cli import main
from ablate.data import CLASSES, class_stats


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code)


def test_synth_then_stats_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "d"
    assert _run(["data", "synth", "--out", str(root), "--train", "3", "--test", "2", "--height", "48", "--width", "96"]) == 0
    assert sorted(p.name for p in (root / "img_dir" / "train").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    capsys.readouterr()
    assert _run(["data", "stats", str(root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == class_stats(root).to_dict()
    assert len(doc["pixel_counts"]) == len(CLASSES) and sum(doc["pixel_counts"]) > 0


def test_data_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert _run(["data", "stats", str(tmp_path / "missing")]) == 2
    assert _run(["data", "kitti", str(tmp_path / "nowhere"), "--out", str(tmp_path / "k")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "Traceback" not in err
    assert "nowhere" in err and not (tmp_path / "k").exists()
