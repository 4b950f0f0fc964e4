"""The small shared helpers: what a user reads of a failure or a duration, files written whole,
and dependency order with its cycles."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablate.util import LINE_LIMIT, Cycle, atomic_write, dependency_order, duration, first_cycle, one_line


def test_an_exception_is_one_line_of_bounded_length() -> None:
    assert one_line(ValueError("bad value\n  at line 3")) == "ValueError: bad value"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(OSError("x" * 5000)).startswith("OSError: x") and len(one_line(OSError("x" * 5000))) == LINE_LIMIT
    assert one_line(RuntimeError("first\nsecond"), with_type=False) == "first"


@pytest.mark.parametrize("seconds,text", [(None, "-"), (0.01, "<0.1 s"), (4.25, "4.2 s"), (42, "42 s"),
                                          (125, "2:05"), (3 * 3600 + 130, "3:02:10"), (float("nan"), "-")])
def test_durations_read_the_same_everywhere(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_atomic_write_replaces_the_whole_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write(path, "old")
    atomic_write(path, "new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_dependency_order_keeps_the_given_order_where_it_can() -> None:
    graph = {"student": ["teacher"], "teacher": [], "other": []}
    assert dependency_order(graph, ["student", "other", "teacher"]) == ["other", "teacher", "student"]


def test_a_cycle_is_given_in_waiting_order() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "free": []}
    cycle = first_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["a", "b", "c"]
    assert all(after in graph[before] for before, after in zip(cycle, cycle[1:]))  # each waits for the next
    with pytest.raises(Cycle, match="circular dependency: "):
        dependency_order(graph)
    assert first_cycle({"a": [], "b": ["a"]}) is None
