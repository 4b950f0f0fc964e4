"""Text a user reads on one line: an exception, a duration."""

from __future__ import annotations

import math

LINE_LIMIT = 400  # characters of an exception's first line kept in tags, tables and notes


def one_line(exc: BaseException, limit: int = LINE_LIMIT, with_type: bool = True) -> str:
    """`TypeName: first line of the message`, cut to `limit` characters: what a run tag, the
    board or a report note can show of a failure (the traceback goes to a file)."""
    message = str(exc).strip()
    first = message.splitlines()[0] if message else ""
    text = f"{type(exc).__name__}: {first}" if with_type else first
    if with_type and not first:
        text = type(exc).__name__
    return text[:limit]


def duration(seconds: float | None, unknown: str = "-") -> str:
    """`0.4 s`, `42 s`, `12:05`, `3:02:10`; `unknown` when not known."""
    if seconds is None or math.isnan(seconds):
        return unknown
    if seconds < 60:
        return "<0.1 s" if 0 < seconds < 0.05 else f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"
