"""The live board and the log's status lines: each running trial shows its phase and that
phase's own counter from its progress file, and the view moves on its own while a trial trains."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Callable

from rich.console import Console

from ablate.cli.board import ProgressBoard, progress_text
from ablate.trial import TrialResult, TrialSpec, TrialState


def _spec(tmp_path: Path, name: str, trial_id: str = "", iters: int = 200) -> TrialSpec:
    tid = trial_id or name
    work_dir = tmp_path / tid
    work_dir.mkdir(exist_ok=True)
    return TrialSpec(study="s", name=name, trial_id=tid, seed=0, base="b.py", config_text="", overrides={},
                     work_dir=work_dir, data_root=tmp_path, data_fingerprint="x", iters=iters, batch_size=1,
                     image_size=(8, 8))


def _progress(spec: TrialSpec, **state: object) -> None:
    (spec.work_dir / "progress.json").write_text(json.dumps(state))


def _until(happened: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Returns as soon as `happened()`; the board's tick runs on its own thread."""
    deadline = time.monotonic() + timeout_s
    while not happened():
        assert time.monotonic() < deadline, f"not within {timeout_s:g} s"
        time.sleep(0.02)


def _column(board: ProgressBoard, name: str) -> list[str]:
    table = board.render()
    column = next(c for c in table.columns if c.header == name)
    return [str(cell) for cell in column._cells]


def test_the_counter_follows_the_phase() -> None:
    assert progress_text({"phase": "train", "iter": 120, "max_iters": 200}, 200) == "120/200"
    assert progress_text({}, 200) == "0/200"
    assert progress_text({"phase": "tta", "phase_done": 12, "phase_total": 50, "iter": 200}, 200) == "tta 12/50"
    assert progress_text({"phase": "predict", "phase_done": 3}, 200) == "predict 3"
    assert progress_text({"phase": "test"}, 200) == "test"


def test_table_and_status_line_show_each_trial_where_it_is(tmp_path: Path) -> None:
    log = io.StringIO()
    board = ProgressBoard(Console(file=log, width=200), "demo", live=False, heartbeat_s=0, tick_s=0)
    training, evaluating = _spec(tmp_path, "lr1"), _spec(tmp_path, "r0-base", "x1")
    board.add([training, _spec(tmp_path, "pretrain-same", "x1"), evaluating])
    for spec in (training, evaluating):
        board.on_start(spec, 1)
    _progress(training, phase="train", iter=120, max_iters=200, eta_s=75, device="cuda:1", mIoU=41.5)
    _progress(evaluating, phase="tta", phase_done=12, phase_total=50, iter=200, max_iters=200, eta_s=0.0,
              device="cpu", mIoU=55.25)
    board.refresh()
    assert _column(board, "trial") == ["lr1", "r0-base (= pretrain-same)"]  # one row per trial id
    assert _column(board, "progress") == ["120/200", "tta 12/50"]
    assert _column(board, "ETA") == ["1:15", "-"]  # training's ETA says nothing about an evaluation
    assert _column(board, "device") == ["cuda:1", "cpu"]
    assert _column(board, "mIoU") == ["41.50", "55.25"]
    assert "status 2 running | lr1:120/200 r0-base:tta 12/50" in log.getvalue().splitlines()

    board.on_result(training, TrialResult("lr1", "lr1", 0, TrialState.FINISHED, metrics={"mIoU": 42.0}))
    board.on_result(evaluating, TrialResult("x1", "r0-base", 0, TrialState.FAILED, error="CUDA out of memory"))
    assert _column(board, "progress")[0] == "200/200"
    assert _column(board, "state") == ["FINISHED", "FAILED: CUDA out of memory"]
    lines = log.getvalue().splitlines()
    assert "start  lr1 (seed 0) [lr1]" in lines
    assert "finished lr1 (seed 0) [lr1] mIoU 42.00" in lines
    assert "failed   r0-base (seed 0) [x1] - CUDA out of memory" in lines


def test_the_log_keeps_beating_while_the_driver_is_blocked(tmp_path: Path) -> None:
    """In-process training blocks the driver; the board's own tick still reads and reports."""
    log = io.StringIO()
    spec = _spec(tmp_path, "slow")
    with ProgressBoard(Console(file=log, width=200), "demo", live=False, heartbeat_s=0.1, tick_s=0.05) as board:
        board.add([spec])
        board.on_start(spec, 2)
        _progress(spec, phase="test", phase_done=7, phase_total=50)
        # the driver would be inside a poll here: the board's own tick writes the beat
        _until(lambda: "status 1 running | slow:test 7/50" in log.getvalue().splitlines())
    beats = [line for line in log.getvalue().splitlines() if line.startswith("status ")]
    assert beats and beats[-1] == "status 1 running | slow:test 7/50"
    assert "start  slow (seed 0) [slow] (attempt 2)" in log.getvalue()


def test_live_table_on_a_terminal_updates_itself(tmp_path: Path) -> None:
    screen = io.StringIO()
    spec = _spec(tmp_path, "b0", iters=20)
    console = Console(file=screen, width=160, force_terminal=True, color_system=None)
    with ProgressBoard(console, "demo", tick_s=0.05) as board:
        assert board.live_enabled
        board.add([spec])
        board.on_start(spec, 1)
        _progress(spec, phase="predict", phase_done=4, phase_total=9, device="cpu")
        _until(lambda: _column(board, "progress") == ["predict 4/9"] and "predict 4/9" in screen.getvalue())
    drawn = screen.getvalue()
    assert "predict 4/9" in drawn and "b0" in drawn
    assert "start  b0" not in drawn  # a terminal gets the table, not the log lines
