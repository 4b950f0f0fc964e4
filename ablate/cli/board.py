"""The live view of a running study: one row per trial, redrawn while trials train.

On a terminal it is a rich Live table; in a log (no TTY) it prints one line per event and a
short status line every `heartbeat_s`, so a long phase never sits silent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ablate.trial.progress import read_progress
from ablate.trial.spec import TrialResult, TrialSpec, TrialState


@dataclass
class _Row:
    spec: TrialSpec
    state: str = TrialState.PENDING.value
    attempt: int = 0
    device: str = "-"
    iteration: int = 0
    miou: Optional[float] = None
    eta_s: Optional[float] = None
    note: str = ""
    started: float = field(default_factory=time.time)


def _eta(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


class ProgressBoard:
    def __init__(self, console: Console, title: str, live: Optional[bool] = None, heartbeat_s: float = 30.0) -> None:
        self.console = console
        self.title = title
        self.rows: dict[str, _Row] = {}
        self.live_enabled = console.is_terminal if live is None else live
        self.heartbeat_s = heartbeat_s
        self._live: Optional[Live] = None
        self._last_beat = time.time()

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> "ProgressBoard":
        if self.live_enabled:
            self._live = Live(self.render(), console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(*exc)
            self._live = None

    # -- events ---------------------------------------------------------------------------------
    def add(self, trials: Sequence[TrialSpec]) -> None:
        for spec in trials:
            self.rows.setdefault(spec.trial_id, _Row(spec))
        self._redraw()

    def on_start(self, spec: TrialSpec, attempt: int) -> None:
        row = self.rows.setdefault(spec.trial_id, _Row(spec))
        row.state, row.attempt, row.started = TrialState.RUNNING.value, attempt, time.time()
        self._say(f"start  {spec.label} [{spec.trial_id}]" + (f" (attempt {attempt})" if attempt > 1 else ""))
        self._redraw()

    def on_result(self, spec: TrialSpec, result: TrialResult) -> None:
        row = self.rows.setdefault(spec.trial_id, _Row(spec))
        row.state = result.state.value
        row.miou = result.miou if result.miou is not None else row.miou
        row.note = result.error or ""
        if result.state is not TrialState.CACHED:
            row.iteration = spec.iters if result.state is TrialState.FINISHED else row.iteration
        miou = f" mIoU {result.miou:.2f}" if result.miou is not None else ""
        self._say(f"{result.state.value.lower():8s} {spec.label} [{spec.trial_id}]{miou}" + (f" - {result.error}" if result.error else ""))
        self._redraw()

    def refresh(self) -> None:
        """Read the progress files of running trials; cheap enough to call every poll."""
        for row in self.rows.values():
            if row.state != TrialState.RUNNING.value:
                continue
            progress = read_progress(row.spec.work_dir)
            row.iteration = int(progress.get("iter", row.iteration))
            row.miou = progress.get("mIoU", row.miou)
            row.eta_s = progress.get("eta_s", row.eta_s)
            row.device = progress.get("device", row.device)
        if not self.live_enabled and time.time() - self._last_beat >= self.heartbeat_s:
            self._last_beat = time.time()
            counts: dict[str, int] = {}
            for row in self.rows.values():
                counts[row.state] = counts.get(row.state, 0) + 1
            running = [f"{r.spec.name}:{r.iteration}/{r.spec.iters}" for r in self.rows.values()
                       if r.state == TrialState.RUNNING.value]
            summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
            self._say(f"status {summary}" + (f" | {' '.join(running)}" if running else ""))
        self._redraw()

    # -- drawing --------------------------------------------------------------------------------
    def render(self) -> Table:
        table = Table(title=self.title)
        for col in ("trial", "seed", "id", "state", "device", "iter", "mIoU", "ETA"):
            table.add_column(col, no_wrap=col in ("id", "trial"))
        for row in self.rows.values():
            miou = f"{row.miou:.2f}" if row.miou is not None else "-"
            state = row.state + (f" #{row.attempt}" if row.attempt > 1 else "")
            if row.note:
                state += f": {row.note[:60]}"
            table.add_row(row.spec.name, str(row.spec.seed), row.spec.trial_id, state, row.device,
                          f"{row.iteration}/{row.spec.iters}", miou,
                          _eta(row.eta_s) if row.state == TrialState.RUNNING.value else "-")
        return table

    def _redraw(self) -> None:
        if self._live is not None:
            self._live.update(self.render())

    def _say(self, line: str) -> None:
        if not self.live_enabled:
            self.console.print(line, markup=False, highlight=False)
