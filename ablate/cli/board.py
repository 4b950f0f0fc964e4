"""The live view of a running study: one row per trial, redrawn while trials train.

On a terminal it is a rich Live table; in a log (no TTY) it prints one line per event and a
short status line every `heartbeat_s`, so a long phase never sits silent. A running trial shows
the phase its progress file names and that phase's own counter (`120/200` while training,
`tta 12/50` during a test-time-augmented evaluation), read by a background tick, so the view
moves whichever dispatcher trains the trial, even one that blocks this process while it does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ablate.study.estimate import estimated_seconds
from ablate.trial.progress_file import read_progress
from ablate.trial.spec import TrialResult, TrialSpec, TrialState
from ablate.util.text import duration

TRAIN = "train"


def progress_text(progress: Mapping[str, Any], iters: int) -> str:
    """`120/200` while training; otherwise the phase and its own counter, e.g. `tta 12/50`."""
    phase = progress.get("phase") or TRAIN
    if phase == TRAIN:
        return f"{int(progress.get('iter') or 0)}/{int(progress.get('max_iters') or iters)}"
    done, total = progress.get("phase_done"), progress.get("phase_total")
    if total:
        return f"{phase} {int(done or 0)}/{int(total)}"
    return f"{phase} {int(done)}" if done is not None else str(phase)


def placement_text(spec: TrialSpec) -> str:
    """What a trial holds: `1`, `0.5` GPU for one process; `4 DDP` for four GPU workers; `2 cpu
    DDP` for two CPU workers (the `device` column says what each process trained on)."""
    gpus = 1.0 if spec.gpus_per_worker is None else spec.gpus_per_worker
    if spec.workers == 1:
        return f"{gpus:g}"
    return f"{gpus * spec.workers:g} DDP" if gpus > 0 else f"{spec.workers} cpu DDP"


@dataclass
class _Row:
    spec: TrialSpec
    aliases: list[str] = field(default_factory=list)  # other names of the same trial id
    state: str = TrialState.PENDING.value
    attempt: int = 0
    device: str = "-"
    progress: dict[str, Any] = field(default_factory=dict)
    miou: float | None = None
    note: str = ""
    started: float = field(default_factory=time.time)

    @property
    def name(self) -> str:
        return self.spec.name + (f" (= {', '.join(self.aliases)})" if self.aliases else "")

    @property
    def counter(self) -> str:
        return progress_text(self.progress, self.spec.iters)

    @property
    def eta(self) -> str:
        """The measured rate's time left once the trial reports one; before that the launch
        estimate (`ablate.study.estimate`) less the time it has run, marked `~`; a pending
        trial shows its whole estimate."""
        estimate = estimated_seconds(self.spec)
        if self.state == TrialState.PENDING.value:
            return "-" if estimate is None else "~" + duration(estimate)
        training = (self.progress.get("phase") or TRAIN) == TRAIN
        if self.state != TrialState.RUNNING.value or not training:
            return "-"
        if self.progress.get("eta_s") is None and estimate is not None:
            return "~" + duration(max(0.0, estimate - (time.time() - self.started)))
        return duration(self.progress.get("eta_s"))


class ProgressBoard:
    def __init__(
        self, console: Console, title: str, live: bool | None = None, heartbeat_s: float = 30.0, tick_s: float = 2.0
    ) -> None:
        self.console = console
        self.title = title
        self.rows: dict[str, _Row] = {}
        self.live_enabled = console.is_terminal if live is None else live
        self.heartbeat_s = heartbeat_s
        self.tick_s = tick_s
        self._live: Live | None = None
        self._last_beat = time.time()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> ProgressBoard:
        if self.live_enabled:
            self._live = Live(self.render(), console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        if self.tick_s > 0:
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, name="progress-board", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(*exc)
            self._live = None

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.refresh()
            except Exception:  # a half-written file or a closed console: the next tick tries again
                pass

    # -- events ---------------------------------------------------------------------------------
    def callbacks(self) -> dict[str, Any]:
        """What `run_study` and `tune_study` call as trials are planned, start and end."""
        return {"on_start": self.on_start, "on_result": self.on_result, "on_planned": self.add}

    def add(self, trials: Sequence[TrialSpec]) -> None:
        with self._lock:
            for spec in trials:
                row = self.rows.setdefault(spec.trial_id, _Row(spec))
                if spec.name != row.spec.name and spec.name not in row.aliases:
                    row.aliases.append(spec.name)
            self._redraw()

    def on_start(self, spec: TrialSpec, attempt: int) -> None:
        with self._lock:
            row = self.rows.setdefault(spec.trial_id, _Row(spec))
            if spec.name != row.spec.name:  # the name that trains leads the row
                row.aliases = [row.spec.name] + [a for a in row.aliases if a != spec.name]
                row.spec = spec
            row.state, row.attempt, row.started = TrialState.RUNNING.value, attempt, time.time()
            row.progress = {}
            self._say(
                f"start  {spec.label} [{spec.trial_id}]"
                + (f" (attempt {attempt})" if attempt > 1 else "")
                + (f" on {placement_text(spec)}" if spec.workers > 1 else "")
            )
            self._redraw()

    def on_result(self, spec: TrialSpec, result: TrialResult) -> None:
        with self._lock:
            row = self.rows.setdefault(spec.trial_id, _Row(spec))
            row.state = result.state.value
            row.miou = result.miou if result.miou is not None else row.miou
            row.note = result.error or ""
            if result.state.is_done:  # finished now or in an earlier run
                row.progress = {"phase": TRAIN, "iter": spec.iters, "max_iters": spec.iters}
            miou = f" mIoU {result.miou:.2f}" if result.miou is not None else ""
            self._say(
                f"{result.state.value.lower():8s} {spec.label} [{spec.trial_id}]{miou}"
                + (f" - {result.error}" if result.error else "")
            )
            self._redraw()

    def on_round(self, found: Any) -> None:
        """A round of `seeds: auto` ended (`SeedRound`): its line goes to the log and the terminal."""
        with self._lock:
            self.console.print(found.describe(), markup=False, highlight=False)
            self._redraw()

    def refresh(self) -> None:
        """Read the progress files of running trials, and print the log's status line when due."""
        with self._lock:
            for row in self.rows.values():
                if row.state != TrialState.RUNNING.value:
                    continue
                progress = read_progress(row.spec.work_dir)
                if progress:
                    row.progress = progress
                    row.miou = progress.get("mIoU", row.miou)
                    row.device = progress.get("device", row.device)
            if not self.live_enabled and time.time() - self._last_beat >= self.heartbeat_s:
                self._last_beat = time.time()
                self._say(self.status_line())
            self._redraw()

    def status_line(self) -> str:
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row.state] = counts.get(row.state, 0) + 1
        running = [f"{r.spec.name}:{r.counter}" for r in self.rows.values() if r.state == TrialState.RUNNING.value]
        summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
        return f"status {summary}" + (f" | {' '.join(running)}" if running else "")

    # -- drawing --------------------------------------------------------------------------------
    def render(self) -> Table:
        table = Table(title=self.title)
        for col in ("trial", "seed", "id", "state", "GPUs", "device", "progress", "mIoU", "ETA"):
            table.add_column(col, no_wrap=col in ("id", "trial", "GPUs"))
        with self._lock:
            for row in self.rows.values():
                miou = f"{row.miou:.2f}" if row.miou is not None else "-"
                state = row.state + (f" #{row.attempt}" if row.attempt > 1 else "")
                if row.note:
                    state += f": {row.note[:60]}"
                table.add_row(
                    row.name,
                    str(row.spec.seed),
                    row.spec.trial_id,
                    state,
                    placement_text(row.spec),
                    row.device,
                    row.counter,
                    miou,
                    row.eta,
                )
        return table

    def _redraw(self) -> None:
        if self._live is not None:
            self._live.update(self.render())

    def _say(self, line: str) -> None:
        if not self.live_enabled:
            self.console.print(line, markup=False, highlight=False)
