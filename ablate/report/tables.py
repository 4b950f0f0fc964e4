"""The report's tables: a captioned grid of text cells, its Markdown, and the cell formats every table shares.

Cells are built once as Unicode text (±, ✓, Δ ...) and each output escapes and translates them,
so Markdown, LaTeX and CSV can never disagree on a number. CSVs carry unrounded values for re-use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ablate.report.latex import abbreviations, legend_note, table_float
from ablate.util.text import duration

CHECK, CROSS = "✓", "✗"
_MD_SPECIAL = "\\`*_|<>[]"


def markdown_escape(text: str) -> str:
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)


@dataclass
class Table:
    """A captioned grid of text cells; `align` is one LaTeX column letter per column.

    `title` is for Markdown/HTML only: LaTeX numbers its own tables. `short`, when set, is the
    LaTeX caption, and `caption` goes under the table in footnote size with the notes: a paper's
    caption stays one line while the explanation stays with the table.
    """

    title: str
    caption: str
    header: list[str]
    rows: list[list[str]]
    align: str
    label: str
    notes: list[str] = field(default_factory=list)
    short: str = ""

    def select(self, columns: Sequence[str], short: str, caption: str, notes: Sequence[str] = ()) -> Table:
        """The same rows with only `columns` (by header, in table order): a paper's narrow version."""
        keep = [i for i, name in enumerate(self.header) if name in columns]
        return Table(
            self.title,
            caption,
            [self.header[i] for i in keep],
            [[row[i] for i in keep] for row in self.rows],
            "".join(self.align[i] for i in keep),
            self.label,
            list(notes),
            short,
        )

    def abbreviated(self, column: str) -> Table:
        """Names in `column` longer than `latex.LONG_NAME` cut, with a legend note (see `abbreviations`)."""
        if column not in self.header:
            return self
        i = self.header.index(column)
        legend = abbreviations(row[i] for row in self.rows)
        if not legend:
            return self
        rows = [[legend.get(c, c) if j == i else c for j, c in enumerate(row)] for row in self.rows]
        return Table(
            self.title,
            self.caption,
            self.header,
            rows,
            self.align,
            self.label,
            [*self.notes, legend_note(legend)],
            self.short,
        )

    def markdown(self) -> str:
        lines = [f"**{markdown_escape(self.title)}.** {markdown_escape(self.caption)}", ""]
        lines.append("| " + " | ".join(markdown_escape(h) for h in self.header) + " |")
        lines.append("|" + "|".join({"l": ":---", "c": ":---:", "r": "---:"}[a] for a in self.align) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(markdown_escape(c) for c in row) + " |")
        lines += [""] + [markdown_escape(n) for n in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def latex(self, wide: bool = False) -> str:
        """A `table` one column wide, or with `wide` a `table*` across the page (see `table_float`);
        with `short` as the caption, the long one goes under the table with the notes."""
        below = ([self.caption] if self.short else []) + self.notes
        return table_float(self.header, self.rows, self.align, self.label, self.short or self.caption, below, wide)


def fmt(value: float | None, digits: int = 2, signed: bool = False) -> str:
    """Blank for unknown values: a missing number must not read as zero."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_mean_std(mean: float, std: float | None, digits: int = 2) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def fmt_duration(seconds: float | None) -> str:
    return duration(seconds, unknown="")


def raw_number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(round(float(value), 6))
