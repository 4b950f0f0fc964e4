"""The report folder: figure formats, the writer that records every file, the all-or-nothing swap.

Everything is written into a temporary sibling folder and moved into place at the end, so a
report folder is always complete: an error half-way leaves the previous report untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ablate.errors import AblateError
from ablate.util.files import replace_folder

FORMATS = ("png", "svg", "pdf")
MARKER = ".ablate-report"
FIGURES = "figures"


def parse_formats(value: str | Sequence[str]) -> tuple[str, ...]:
    """`png,svg` -> ("png", "svg"); unknown formats are an input error, not a matplotlib crash."""
    items = value.split(",") if isinstance(value, str) else list(value)
    chosen = []
    for item in (i.strip().lower().lstrip(".") for i in items):
        if not item:
            continue
        if item not in FORMATS:
            raise AblateError(f"--format: unknown figure format '{item}' (use {', '.join(FORMATS)})")
        if item not in chosen:
            chosen.append(item)
    if not chosen:
        raise AblateError(f"--format: no figure format given (use {', '.join(FORMATS)})")
    return tuple(chosen)


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "report"


@dataclass
class Writer:
    """Writes into the temporary folder and remembers every file, relative to it."""

    root: Path
    formats: tuple[str, ...]
    written: list[str] = field(default_factory=list)

    def text(self, name: str, content: str) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        self.written.append(name)
        return name

    def figure_stem(self, name: str) -> Path:
        (self.root / FIGURES).mkdir(exist_ok=True)
        return self.root / FIGURES / name

    def record(self, paths: Sequence[Path]) -> list[str]:
        rel = [p.relative_to(self.root).as_posix() for p in paths]
        self.written += rel
        return rel


def check_out(out: Path) -> None:
    """Only a report folder (or an empty one) is replaced: `--out .` must never wipe a project."""
    if out.exists() and not out.is_dir():
        raise AblateError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise AblateError(
            f"{out}: folder exists and was not written by `ablate report`; choose another --out or empty it"
        )


def move_into_place(tmp: Path, out: Path) -> None:
    replace_folder(tmp, out)
