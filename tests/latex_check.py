"""Compile a report's `.tex` tables the way a paper would include them, with a real pdflatex."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ablate.report.latex import LATEX_PACKAGES

# A plain two-column article, as the tables are meant for.
DOCUMENT = r"""\documentclass[10pt,twocolumn]{article}
%s
\begin{document}
Text before the tables.
\input{%s}
\end{document}
"""
OVERFULL = re.compile(r"Overfull \\hbox \(([\d.]+)pt too wide\)")


def compile_in_paper(tex: Path, work: Path) -> list[float]:
    """pdflatex a two-column article holding `tex`; the widths (pt) of its overfull boxes."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (`make test` installs it as root where apt-get exists)")
    work.mkdir(parents=True, exist_ok=True)
    packages = "\n".join(f"\\usepackage{{{name}}}" for name in LATEX_PACKAGES)
    main = work / f"paper-{tex.stem}.tex"
    main.write_text(DOCUMENT % (packages, tex.resolve().as_posix()))
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", main.name], cwd=work,
        capture_output=True, text=True, timeout=120,
    )
    log = (work / f"{main.stem}.log").read_text(errors="replace")
    assert done.returncode == 0, f"{tex.name}: pdflatex failed\n{log[-3000:]}"
    return [float(width) for width in OVERFULL.findall(log)]
