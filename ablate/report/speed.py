"""mIoU against measured latency, drawn beside Figure 1 (mIoU against FLOPs).

Latencies only compare on one device: the figure shows the models timed on the device most of
them were timed on, and names the others. Like Figure 1 it compares models: the zoo when there
is one, else every Table 1 row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ablate.report import figures
from ablate.report.folder import Writer
from ablate.report.groups import ModelRow
from ablate.report.html import FigureRef, Section
from ablate.statistics import pareto_front


@dataclass(frozen=True)
class LatencyView:
    rows: list[ModelRow] = field(default_factory=list)  # timed on `device`
    device: str = ""
    front: list[str] = field(default_factory=list)  # labels on the Pareto front, fastest first
    elsewhere: list[str] = field(default_factory=list)  # labels timed on another device

    def __bool__(self) -> bool:
        return bool(self.rows)


def latency_view(rows: Sequence[ModelRow]) -> LatencyView:
    zoo = [r for r in rows if r.shape == "zoo"]
    timed = [r for r in zoo or rows if r.latency_ms > 0]
    single = [r for r in timed if len(r.latency_devices) == 1]  # seeds timed on two kinds of device: no place
    devices = Counter(r.latency_devices[0] for r in single)
    if not devices:
        return LatencyView()
    device = devices.most_common(1)[0][0]
    chosen = [r for r in single if r.latency_devices[0] == device]
    front = pareto_front([(r.label, r.latency_ms, r.miou.mean) for r in chosen])
    shown = {id(r) for r in chosen}
    return LatencyView(chosen, device, front, [r.label for r in timed if id(r) not in shown])


def add_figure(section: Section, view: LatencyView, writer: Writer) -> None:
    """The latency figure, its front and what it leaves out, into Figure 1's section."""
    if not view:
        return
    scope = "zoo models" if any(r.shape == "zoo" for r in view.rows) else "table rows"
    section.paragraphs.append(
        f"Pareto front against latency on {view.device} (highest mIoU for the latency, fastest first): "
        + ", ".join(view.front)
        + "."
    )
    paths = figures.miou_vs_latency(
        view.rows, view.front, writer.figure_stem("miou_vs_latency"), writer.formats, view.device
    )
    section.figures.append(
        FigureRef(
            f"mIoU of the {scope} against measured latency (batch 1, image size, each row's precision; log scale) on "
            f"{view.device}; error bars: std over seeds; dashed: Pareto front",
            writer.record(paths),
        )
    )
    if view.elsewhere:
        section.notes.append(
            f"timed on another device than {view.device}, not plotted against latency: " + ", ".join(view.elsewhere)
        )
