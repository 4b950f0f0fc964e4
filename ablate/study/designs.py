"""Study shapes -> trial designs: explicit trials, a ladder, leave-one-out, a zoo, pretraining.

A design says *what* a trial is (base config, overrides, tricks, data, tags); `plan` turns it into
a resolved config and an id. Trick items are validated here so errors carry their field path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from ablate.study.schema import StudySpec, TrickItem
from ablate.tracking import tags as T
from ablate.tracking.tags import SHAPE_LADDER, SHAPE_LOO, SHAPE_PRETRAIN, SHAPE_TRIALS, SHAPE_ZOO
from ablate.tricks import TRICKS, StudyEntries, Trick, TrickParams
from ablate.util.graph import first_cycle


@dataclass(frozen=True)
class AppliedTrick:
    name: str
    params: TrickParams
    path: str  # where the study file set it, for error messages

    @property
    def trick(self) -> Trick:
        return TRICKS[self.name]

    @property
    def source(self) -> str | None:
        """The study entry or checkpoint the trick reads weights from, if any (`Trick.source`)."""
        return self.trick.source(self.params)


@dataclass
class TrialDesign:
    name: str
    shape: str
    base: str | None = None  # None: the study's base
    overrides: dict[str, Any] = field(default_factory=dict)
    tricks: list[AppliedTrick] = field(default_factory=list)
    encoder: str | None = None
    pretrain: Any | None = None  # the PretrainEntry this design trains
    tags: dict[str, str] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)  # budget keys this design changes (a searched crop)

    @property
    def depends_on(self) -> list[str]:
        return [t.source for t in self.tricks if t.source]


def parse_trick(
    item: TrickItem, path: str, overrides: dict[str, dict[str, Any]] | None = None
) -> tuple[AppliedTrick | None, list[tuple[str, str]]]:
    """One list item -> a validated trick, or the problems with their field paths.

    `overrides` (the study's `trick_params`) win over the item's own parameters.
    """
    raw: dict[str, Any]
    if isinstance(item, str):
        name, raw = item, {}
    elif len(item) == 1:
        name, given = next(iter(item.items()))
        raw = given or {}
    else:
        return None, [(path, f"one trick per item, got {sorted(item)}")]
    if name not in TRICKS:
        return None, [(path, f"unknown trick '{name}' (known: {', '.join(sorted(TRICKS))})")]
    raw = {**raw, **(overrides or {}).get(name, {})}
    try:
        params = TRICKS[name].Params.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if p != "__root__")
            problems.append((f"{path}.{name}" + (f".{loc}" if loc else ""), err["msg"]))
        return None, problems
    return AppliedTrick(name, params, f"{path}.{name}"), []


def parse_tricks(
    items: list[TrickItem], path: str, overrides: dict[str, dict[str, Any]] | None = None
) -> tuple[list[AppliedTrick], list[tuple[str, str]]]:
    tricks: list[AppliedTrick] = []
    problems: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        trick, errs = parse_trick(item, f"{path}[{index}]", overrides)
        problems += errs
        if trick is not None:
            tricks.append(trick)
    return tricks, problems


def _marks(encoder: str | None, tricks: list[AppliedTrick]) -> dict[str, str]:
    loaded = any(t.trick.loads_weights for t in tricks)
    teacher = next((t.trick.teacher(t.params) for t in tricks if t.trick.teacher(t.params)), None)
    return {
        T.ENC_PRETRAINED: "yes" if (encoder or loaded) else "no",
        T.DEC_PRETRAINED: "yes" if loaded else "no",
        **({T.TEACHER: teacher} if teacher else {}),
    }


def expand(spec: StudySpec) -> tuple[list[TrialDesign], list[tuple[str, str]]]:
    """All designs of a study (pretraining first), and every problem found on the way."""
    designs: list[TrialDesign] = []
    problems: list[tuple[str, str]] = []

    for index, entry in enumerate(spec.pretrain):
        if entry.checkpoint is not None:
            continue
        tricks, errs = parse_tricks(entry.tricks, f"pretrain[{index}].tricks", spec.trick_params)
        problems += errs
        designs.append(
            TrialDesign(
                name=f"pretrain-{entry.name}",
                shape=SHAPE_PRETRAIN,
                base=entry.base,
                overrides=dict(entry.overrides),
                tricks=tricks,
                pretrain=entry,
            )
        )

    for trial in spec.trials:
        designs.append(
            TrialDesign(
                trial.name,
                SHAPE_TRIALS,
                overrides=dict(trial.overrides),
                encoder=spec.encoder,
                tags=_marks(spec.encoder, []),
            )
        )

    if spec.ladder:
        tricks, errs = parse_tricks(spec.ladder, "ladder", spec.trick_params)
        problems += errs
        for rung in range(len(tricks) + 1):
            applied = tricks[:rung]
            added = applied[-1].name if applied else "base"
            designs.append(
                TrialDesign(
                    f"r{rung}-{added}",
                    SHAPE_LADDER,
                    tricks=applied,
                    encoder=spec.encoder,
                    tags={T.RUNG: str(rung), T.TRICK: added, **_marks(spec.encoder, applied)},
                )
            )

    recipe, errs = parse_tricks(spec.recipe, "recipe", spec.trick_params)
    problems += errs
    if spec.mode == "leave_one_out":
        designs.append(
            TrialDesign(
                "full",
                SHAPE_LOO,
                tricks=recipe,
                encoder=spec.encoder,
                tags={T.RUNG: "0", T.TRICK: "full", **_marks(spec.encoder, recipe)},
            )
        )
        for index, trick in enumerate(recipe):
            rest = recipe[:index] + recipe[index + 1 :]
            designs.append(
                TrialDesign(
                    f"minus-{trick.name}",
                    SHAPE_LOO,
                    tricks=rest,
                    encoder=spec.encoder,
                    tags={T.RUNG: str(index + 1), T.TRICK: trick.name, **_marks(spec.encoder, rest)},
                )
            )

    for index, row in enumerate(spec.zoo):
        tricks = list(recipe)
        if row.decoder is not None:
            source = (
                {"from": row.decoder} if row.decoder in {p.name for p in spec.pretrain} else {"checkpoint": row.decoder}
            )
            transfer, errs = parse_trick({"transfer": source}, f"zoo[{index}].decoder")
            problems += errs
            if transfer is not None:
                tricks.insert(0, transfer)
        designs.append(
            TrialDesign(
                row.name,
                SHAPE_ZOO,
                base=row.config,
                overrides=dict(row.overrides),
                tricks=tricks,
                encoder=row.encoder,
                tags={T.MODEL: row.name, **_marks(row.encoder, tricks)},
            )
        )
    if spec.search is not None:
        problems += search_problems(spec)
    return designs, problems


def search_problems(spec: StudySpec) -> list[tuple[str, str]]:
    """`tricks.<name>.<param>` keys must name a trick of the search recipe and one of its params."""
    search = spec.search
    assert search is not None  # only asked of a study with a `search:` block
    recipe, problems = parse_tricks(search.recipe, "search.recipe", spec.trick_params)
    names = {t.name: t for t in recipe}
    for key in search.params:
        if not key.startswith("tricks."):
            continue
        trick, _, param = key[len("tricks.") :].partition(".")
        where = f"search.params.{key}"
        if trick not in names:
            problems.append((where, f"trick '{trick}' is not in search.recipe ({', '.join(names) or 'empty'})"))
        elif param not in TRICKS[trick].Params.model_fields and param != "from":
            known = ", ".join(TRICKS[trick].Params.model_fields)
            problems.append((where, f"'{trick}' has no parameter '{param}' (known: {known})"))
    return problems


def provider(design: TrialDesign) -> str | None:
    """The name other trials use to read this design's checkpoint (a pretrain entry, a zoo row)."""
    if design.pretrain is not None:
        return design.pretrain.name
    return design.name if design.shape == SHAPE_ZOO else None


def dependency_graph(designs: Sequence[TrialDesign]) -> dict[int, list[int]]:
    """Design index -> the indices of the designs whose checkpoints it reads."""
    providers = {provider(d): i for i, d in enumerate(designs) if provider(d) is not None}
    return {
        i: [providers[s] for s in d.depends_on if s in providers and providers[s] != i] for i, d in enumerate(designs)
    }


def dependency_problems(spec: StudySpec, designs: list[TrialDesign]) -> list[tuple[str, str]]:
    """Sources a study cannot provide (`Trick.source_problems`), and entries that wait on each
    other in a circle (named at the field of the first one's tricks)."""
    entries = StudyEntries(
        pretrain=frozenset(p.name for p in spec.pretrain),
        files=frozenset(p.name for p in spec.pretrain if p.checkpoint is not None),
        zoo=frozenset(z.name for z in spec.zoo),
    )
    problems: list[tuple[str, str]] = []
    for design in designs:
        own = replace(entries, own=design.name if design.shape == SHAPE_ZOO else None)
        for trick in design.tricks:
            problems += trick.trick.source_problems(trick.params, trick.path, own)
    cycle = first_cycle(dependency_graph(designs))
    if cycle is not None:
        loop = cycle[:-1]
        start = loop.index(min(loop))  # the entry the study file lists first
        cycle = loop[start:] + loop[:start] + [loop[start]]
        first = designs[cycle[0]]
        names = " -> ".join(str(provider(designs[i])) for i in cycle)
        problems.append((_tricks_field(spec, first), f"circular dependency: {names}"))
    return problems


def _tricks_field(spec: StudySpec, design: TrialDesign) -> str:
    """Where the study sets the tricks of a design that reads another's checkpoint."""
    if design.pretrain is not None:
        index = next(i for i, p in enumerate(spec.pretrain) if p.name == design.pretrain.name)
        return f"pretrain[{index}].tricks"
    reading = next((t for t in design.tricks if t.source), None)
    return reading.path if reading is not None else design.name
