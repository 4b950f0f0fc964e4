"""Whether the runs trained long enough for their numbers to be about the tricks.

A demo trains each trial for a few dozen iterations so that the whole pipeline runs in minutes on
a CPU. Its models are far from converged, so one rung's mIoU against the next is the noise of the
first steps (the demo ladder reads 5.2, 9.2, 5.5, 5.4 ...), not what a trick does, and the tables
look just as authoritative as a real study's. The report says so, in one sentence, whenever a run
trained fewer than SHORT_ITERS iterations. mmseg's shortest packaged schedule trains 20,000
iterations (`schedule_20k`) and the paper's budget is the same; SHORT_ITERS is a twentieth of it,
so the sentence never appears on a real study and always on a demo or smoke budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ablate.tracking.records import TrialRun

SHORT_ITERS = 20_000 // 20


def _iters(run: TrialRun) -> int | None:
    try:
        return int(run.params.get("iters", ""))
    except ValueError:
        return None


def _passes(run: TrialRun, iters: int) -> str:
    """`, 0.27 passes over the 150 training images` when the run logged its batch and train split."""
    train = run.datasets[0].splits.get("train") if run.datasets else None
    batch = run.total_batch
    if not train or not batch:
        return ""
    passes = iters * batch / train
    shown = f"{passes:.2f}" if passes < 10 else f"{passes:.0f}"
    return f", {shown} passes over the {train} training images"


def short_budget_note(runs: Sequence[TrialRun]) -> str | None:
    """The sentence a report leads with when some of `runs` trained fewer than SHORT_ITERS
    iterations; None when every run trained at least that long (or logged no iteration count)."""
    short = sorted(
        ((it, run) for run in runs if (it := _iters(run)) is not None and it < SHORT_ITERS), key=lambda pair: pair[0]
    )
    if not short:
        return None
    fewest, run = short[0]
    which = "Every run" if len(short) == len(runs) else f"{len(short)} of {len(runs)} runs"
    return (
        f"Short training: {which} trained fewer than {SHORT_ITERS} iterations (as few as {fewest}"
        f"{_passes(run, fewest)}), far too few for the models to converge: these numbers show that the "
        "pipeline runs end to end, not the tricks' effects; train the study's full budget for those."
    )
