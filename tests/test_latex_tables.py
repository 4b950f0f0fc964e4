"""Paper LaTeX: one-column tables keep long names from widening them, and every variant compiles in
a two-column article without an overfull box (real pdflatex)."""

from __future__ import annotations

from pathlib import Path

from ablate.report import ladder_tables, latex, tables
from tests.latex_check import compile_in_paper
from tests.test_permutation_reach import _ladder, _rungs

LONG = "class_balanced_loss_with_a_long_name"


def _long_ladder() -> tuple[tables.Table, tables.Table]:
    rungs = _rungs(3, 2)
    rungs[1] = (LONG, rungs[1][1])
    ladder = _ladder(rungs)
    full = ladder_tables.ladder_table(ladder)
    return ladder_tables.paper_ladder(full, ladder, "ladder_full.tex"), full


def test_long_names_are_cut_with_a_legend() -> None:
    narrow, full = _long_ladder()
    assert narrow.header == ["Rung", "Trick", "mIoU (%)", "Δ prev.", "95% CI of Δ", "p (Holm)"]
    cut = "+" + LONG[: latex.LONG_NAME - 2] + "…"
    assert [row[1] for row in narrow.rows] == ["base", cut, "+trick1"]
    assert narrow.notes[-1] == f"{cut}: +{LONG}."
    assert f"+{LONG}" in [row[1] for row in full.rows]  # the full table keeps every name whole
    tex = narrow.latex()
    assert "+class\\_balanced\\_l\\ldots{}" in tex and "\\begin{table}[t]" in tex
    assert "\\begin{table*}[t]" in full.latex(wide=True)


def test_narrow_and_full_compile_without_overfull_boxes(tmp_path: Path) -> None:
    narrow, full = _long_ladder()
    for name, text in (("ladder.tex", narrow.latex()), ("ladder_full.tex", full.latex(wide=True))):
        tex = tmp_path / name
        tex.write_text(text)
        assert [w for w in compile_in_paper(tex, tmp_path / "build") if w > 1.0] == [], name
