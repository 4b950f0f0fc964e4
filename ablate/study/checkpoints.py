"""Checkpoints a study names, checked before anything trains.

`encoder:`, `pretrain[].checkpoint`, a transfer's `checkpoint:`, `zoo[].encoder` / `decoder` and
a distillation teacher given as a file may each be a local path, an `http(s)://` URL (as mmseg's
own configs name their weights) or an MLflow artifact URI `runs:/<run_id>/<path>` (a checkpoint
of another study's run). Loading a study checks what it can alone: a path exists, a URL answers,
a `runs:/` URI is well formed. Before `ablate run` or `ablate tune` trains anything, the URLs are
downloaded into mmengine's cache (their SHA-256 prefix verified) and each `runs:/` run and
artifact is looked up in the tracking store. Trials then read the cached files
(`ablate.tracking.checkpoints`).
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Iterator

from ablate.errors import StudyError
from ablate.study.study import Study
from ablate.tracking.checkpoints import CheckpointError, is_runs_uri, is_url, parse_runs_uri
from ablate.util.text import one_line

PROBE_TIMEOUT_S = 5.0
Source = tuple[str, str, str]  # (field path, value as written, what it is)


def checkpoint_sources(study: Study, origin: dict[str, str] | None = None) -> list[Source]:
    """Every checkpoint the study names outside its own trials, once per field, with the field
    path that set it (`origin` maps a section to the profile field that replaced it)."""
    origin = {**{k: k for k in ("encoder", "zoo", "pretrain")}, **(origin or {})}
    spec = study.spec
    found: list[Source] = []

    def add(field: str, value: str | None, what: str) -> None:
        if value is not None and (field, value, what) not in found:
            found.append((field, value, what))

    add(origin["encoder"], spec.encoder, "encoder checkpoint")
    for i, entry in enumerate(spec.pretrain):
        add(f"{origin['pretrain']}[{i}].checkpoint", entry.checkpoint, "checkpoint")
    pretrain_names = {p.name for p in spec.pretrain}
    for i, row in enumerate(spec.zoo):
        add(f"{origin['zoo']}[{i}].encoder", row.encoder, "encoder checkpoint")
        if row.decoder not in pretrain_names:
            add(f"{origin['zoo']}[{i}].decoder", row.decoder, "checkpoint (or pretrain entry)")
    entries = frozenset(pretrain_names | {z.name for z in spec.zoo})
    for design in study.designs:
        for trick in design.tricks:
            if trick.path.startswith("zoo["):  # the transfer a zoo row's `decoder:` makes: named above
                continue
            named = trick.trick.checkpoint_file(trick.params, entries)
            if named is not None:
                param, value, what = named
                add(f"{trick.path}.{param}", value, what)
    return found


def probe_url(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why a URL cannot be downloaded (None: it answers). HEAD first; a server that refuses HEAD
    is asked for the first byte."""
    last: str | None = None
    for method, headers in (("HEAD", {}), ("GET", {"Range": "bytes=0-0"})):
        request = urllib.request.Request(url, method=method, headers={"User-Agent": "ablate", **headers})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s):
                return None
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return "not found there (HTTP 404)"
            last = f"HTTP {exc.code} {exc.reason}"
            if exc.code not in (405, 501):  # HEAD not allowed: try GET
                return last
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            return f"cannot be reached ({reason}; waited up to {timeout_s:g} s)"
    return last


def source_problem(study: Study, value: str, what: str, probed: dict[str, str | None] | None = None) -> str | None:
    """What is wrong with one checkpoint as far as the study alone can tell (None: nothing)."""
    if is_runs_uri(value):
        try:
            parse_runs_uri(value)
        except CheckpointError as exc:
            return str(exc)
        return None
    if is_url(value):
        probed = {} if probed is None else probed
        if value not in probed:
            probed[value] = probe_url(value)
        return f"{what} {value}: {probed[value]}" if probed[value] else None
    if study.path(value).is_file():
        return None
    return f"{what} '{value}' not found"


def source_problems(study: Study, origin: dict[str, str] | None = None) -> list[tuple[str, str]]:
    probed: dict[str, str | None] = {}
    problems = []
    for field, value, what in checkpoint_sources(study, origin):
        problem = source_problem(study, value, what, probed)
        if problem is not None:
            problems.append((field, problem))
    return problems


def _remote(study: Study) -> Iterator[Source]:
    for field, value, what in checkpoint_sources(study, study.origin):
        if is_url(value) or is_runs_uri(value):
            yield field, value, what


def _runs_problem(tracking_uri: str, value: str) -> str | None:
    """A `runs:/` checkpoint whose run or artifact the store does not hold."""
    import posixpath

    from ablate.tracking import RunStore, TrackingUnavailable, store_exists

    run_id, path = parse_runs_uri(value)
    if not store_exists(tracking_uri):  # opening it would create an empty store
        return f"{value}: there is no tracking store at {tracking_uri} yet (is --tracking-uri the store it ran in?)"
    store = RunStore.open(tracking_uri)
    if not store.has_run(run_id):  # an unreachable server raises TrackingUnavailable instead
        return f"{value}: no run {run_id} in the tracking store {tracking_uri} (is --tracking-uri the store it ran in?)"
    folder = posixpath.dirname(path)
    try:
        listed = {f.path for f in store.list_artifacts(run_id, folder or None)}
    except TrackingUnavailable:
        raise
    except Exception as exc:
        return f"{value}: cannot list the run's artifacts ({one_line(exc, with_type=False)})"
    if path not in listed:
        shown = ", ".join(sorted(listed)[:5]) or "none"
        return f"{value}: run {run_id} has no artifact '{path}' (in '{folder or '.'}': {shown})"
    return None


def fetch_sources(study: Study, tracking_uri: str) -> None:
    """Before training: download every URL the study names into mmengine's cache (verifying a
    SHA-256 prefix its name carries) and look each `runs:/` run and artifact up in the store; one
    StudyError lists every problem (exit 2)."""
    from ablate.tracking.checkpoints import fetch_url

    problems: list[tuple[str, str]] = []
    for field, value, _what in _remote(study):
        problem: str | None = None
        try:
            if is_runs_uri(value):
                problem = _runs_problem(tracking_uri, value)
            else:
                fetch_url(value)
        except CheckpointError as exc:
            problem = str(exc)
        if problem is not None:
            problems.append((field, problem))
    if problems:
        raise StudyError(str(study.source), problems)
