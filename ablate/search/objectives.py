"""What Optuna is told about a finished trial: its objective values and constraint violations,
read from the metrics the trial logged (mIoU from the evaluation, `flops_g`, `latency_ms` and
the rest from ablate's hooks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ablate.study.search_schema import SearchSpec, violation


@dataclass(frozen=True)
class Scores:
    """One trial against a search: `values` in objective order (None when one is missing),
    `violations` by constrained metric (Optuna's convention: <= 0 is feasible)."""

    values: list[float] | None
    violations: dict[str, float] = field(default_factory=dict)
    missing: tuple[str, ...] = ()

    @property
    def note(self) -> str:
        """Why the trial cannot be told COMPLETE ("" when it can)."""
        if not self.missing:
            return ""
        names = ", ".join(f"'{m}'" for m in self.missing)
        return (
            f"metric {names} not logged by the trial; an objective or constraint needs every metric it names "
            "(e.g. mIoU, flops_g, latency_ms)"
        )


def score(search: SearchSpec, metrics: dict[str, float]) -> Scores:
    """The objective values and constraint violations of a trial with these final metrics."""
    missing = [name for name in dict.fromkeys([*search.objective_names, *search.constraints]) if name not in metrics]
    violations = {
        name: violation(op, bound, float(metrics[name]))
        for name, (op, bound) in search.bounds.items()
        if name in metrics
    }
    values = (
        None
        if any(n in missing for n in search.objective_names)
        else [float(metrics[n]) for n in search.objective_names]
    )
    return Scores(values, violations, tuple(missing))


def objectives_text(search: SearchSpec) -> str:
    """`mIoU (maximize), flops_g (minimize)`."""
    return ", ".join(f"{n} ({d})" for n, d in zip(search.objective_names, search.directions))


def describe(search: SearchSpec) -> str:
    """`mIoU (maximize), flops_g (minimize); constraints flops_g <= 60` for headers and logs."""
    text = objectives_text(search)
    if search.constraints:
        text += "; constraints " + ", ".join(f"{n} {b.strip()}" for n, b in search.constraints.items())
    return text
