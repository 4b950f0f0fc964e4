"""Study shapes -> trial designs: explicit trials, a ladder, leave-one-out, a zoo, pretraining.

A design says *what* a trial is (base config, overrides, tricks, data, tags); `plan` turns it into
a resolved config and an id. Trick items are validated here so errors carry their field path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from pydantic import ValidationError

from ablate.study.schema import StudySpec, TrickItem
from ablate.tracking import tags as T
from ablate.tracking.tags import SHAPE_LADDER, SHAPE_LOO, SHAPE_PRETRAIN, SHAPE_TRIALS, SHAPE_ZOO
from ablate.tricks import TRICKS, TrickParams


@dataclass(frozen=True)
class AppliedTrick:
    name: str
    params: TrickParams
    path: str  # where the study file set it, for error messages

    @property
    def source(self) -> Optional[str]:
        """The study entry the trick reads from, if any: a transfer's `from`, a distill's teacher."""
        named = getattr(self.params, "source", None)
        return named if named is not None else getattr(self.params, "from_", None)


@dataclass
class TrialDesign:
    name: str
    shape: str
    base: Optional[str] = None  # None: the study's base
    overrides: dict[str, Any] = field(default_factory=dict)
    tricks: list[AppliedTrick] = field(default_factory=list)
    encoder: Optional[str] = None
    pretrain: Optional[Any] = None  # the PretrainEntry this design trains
    tags: dict[str, str] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)  # budget keys this design changes (a searched crop)

    @property
    def depends_on(self) -> list[str]:
        return [t.source for t in self.tricks if t.source]


def parse_trick(
    item: TrickItem, path: str, overrides: Optional[dict[str, dict[str, Any]]] = None
) -> tuple[Optional[AppliedTrick], list[tuple[str, str]]]:
    """One list item -> a validated trick, or the problems with their field paths.

    `overrides` (the study's `trick_params`) win over the item's own parameters.
    """
    if isinstance(item, str):
        name, raw = item, {}
    elif len(item) == 1:
        name, raw = next(iter(item.items()))
        raw = raw or {}
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
    items: list[TrickItem], path: str, overrides: Optional[dict[str, dict[str, Any]]] = None
) -> tuple[list[AppliedTrick], list[tuple[str, str]]]:
    tricks: list[AppliedTrick] = []
    problems: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        trick, errs = parse_trick(item, f"{path}[{index}]", overrides)
        problems += errs
        if trick is not None:
            tricks.append(trick)
    return tricks, problems


def _marks(encoder: Optional[str], tricks: list[AppliedTrick]) -> dict[str, str]:
    transfer = any(t.name == "transfer" for t in tricks)
    teacher = next((t.source for t in tricks if t.name == "distill"), None)
    return {
        T.ENC_PRETRAINED: "yes" if (encoder or transfer) else "no",
        T.DEC_PRETRAINED: "yes" if transfer else "no",
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
                name=f"pretrain-{entry.name}", shape=SHAPE_PRETRAIN, base=entry.base, overrides=dict(entry.overrides),
                tricks=tricks, pretrain=entry, tags={T.PRETRAIN: entry.name},
            )
        )

    for entry in spec.trials:
        designs.append(
            TrialDesign(entry.name, SHAPE_TRIALS, overrides=dict(entry.overrides), encoder=spec.encoder,
                        tags=_marks(spec.encoder, []))
        )

    if spec.ladder:
        tricks, errs = parse_tricks(spec.ladder, "ladder", spec.trick_params)
        problems += errs
        for rung in range(len(tricks) + 1):
            applied = tricks[:rung]
            added = applied[-1].name if applied else "base"
            designs.append(
                TrialDesign(
                    f"r{rung}-{added}", SHAPE_LADDER, tricks=applied, encoder=spec.encoder,
                    tags={T.RUNG: str(rung), T.TRICK: added, **_marks(spec.encoder, applied)},
                )
            )

    recipe, errs = parse_tricks(spec.recipe, "recipe", spec.trick_params)
    problems += errs
    if spec.mode == "leave_one_out":
        designs.append(
            TrialDesign("full", SHAPE_LOO, tricks=recipe, encoder=spec.encoder,
                        tags={T.RUNG: "0", T.TRICK: "full", **_marks(spec.encoder, recipe)})
        )
        for index, trick in enumerate(recipe):
            rest = recipe[:index] + recipe[index + 1:]
            designs.append(
                TrialDesign(f"minus-{trick.name}", SHAPE_LOO, tricks=rest, encoder=spec.encoder,
                            tags={T.RUNG: str(index + 1), T.TRICK: trick.name,
                                  **_marks(spec.encoder, rest)})
            )

    for index, entry in enumerate(spec.zoo):
        tricks = list(recipe)
        if entry.decoder is not None:
            source = {"from": entry.decoder} if entry.decoder in {p.name for p in spec.pretrain} else {"checkpoint": entry.decoder}
            trick, errs = parse_trick({"transfer": source}, f"zoo[{index}].decoder")
            problems += errs
            if trick is not None:
                tricks.insert(0, trick)
        designs.append(
            TrialDesign(entry.name, SHAPE_ZOO, base=entry.config, overrides=dict(entry.overrides), tricks=tricks,
                        encoder=entry.encoder, tags={T.MODEL: entry.name, **_marks(entry.encoder, tricks)})
        )
    if spec.search is not None:
        problems += search_problems(spec)
    return designs, problems


def search_problems(spec: StudySpec) -> list[tuple[str, str]]:
    """`tricks.<name>.<param>` keys must name a trick of the search recipe and one of its params."""
    recipe, problems = parse_tricks(spec.search.recipe, "search.recipe", spec.trick_params)
    names = {t.name: t for t in recipe}
    for key in spec.search.params:
        if not key.startswith("tricks."):
            continue
        trick, _, param = key[len("tricks."):].partition(".")
        where = f"search.params.{key}"
        if trick not in names:
            problems.append((where, f"trick '{trick}' is not in search.recipe ({', '.join(names) or 'empty'})"))
        elif param not in TRICKS[trick].Params.model_fields and param != "from":
            known = ", ".join(TRICKS[trick].Params.model_fields)
            problems.append((where, f"'{trick}' has no parameter '{param}' (known: {known})"))
    return problems


def dependency_problems(spec: StudySpec, designs: list[TrialDesign]) -> list[tuple[str, str]]:
    """Unknown `transfer: {from: ...}` names and circular pretraining."""
    names = {p.name for p in spec.pretrain}
    problems: list[tuple[str, str]] = []
    for design in designs:
        for trick in design.tricks:
            if trick.name == "distill":
                problems += teacher_problems(spec, design, trick)
            elif trick.source and trick.source not in names:
                problems.append((f"{trick.path}.from", f"no pretrain entry named '{trick.source}' (known: {', '.join(sorted(names)) or 'none'})"))
    graph = {d.pretrain.name: [t.source for t in d.tricks if t.source] for d in designs if d.pretrain is not None}
    for start in graph:
        chain, node = [start], start
        while graph.get(node):
            node = graph[node][0]
            if node in chain:
                cycle = " -> ".join(chain[chain.index(node):] + [node])
                index = next(i for i, p in enumerate(spec.pretrain) if p.name == start)
                problems.append((f"pretrain[{index}].tricks", f"circular dependency: {cycle}"))
                break
            chain.append(node)
    return problems


def teacher_problems(spec: StudySpec, design: TrialDesign, trick: AppliedTrick) -> list[tuple[str, str]]:
    """A distill teacher is a trained pretrain entry or zoo row, or a checkpoint file with `config:`."""
    teacher, config = trick.source, getattr(trick.params, "config", None)
    files = {p.name for p in spec.pretrain if p.checkpoint is not None}
    trained = {p.name for p in spec.pretrain if p.checkpoint is None} | {z.name for z in spec.zoo}
    if teacher == design.name and design.shape == SHAPE_ZOO:
        return [(f"{trick.path}.teacher", f"zoo row '{teacher}' would distill from itself (the recipe applies to "
                                          "every zoo row): put distill in a ladder, or the teacher under pretrain:")]
    if teacher in files and config is None:
        return [(f"{trick.path}.config", f"pretrain entry '{teacher}' is a checkpoint file: give the teacher's mmseg config")]
    if teacher not in trained | files and config is None:
        known = ", ".join(sorted(trained | files)) or "none"
        return [(f"{trick.path}.teacher", f"no pretrain entry or zoo row named '{teacher}' (known: {known}); "
                                          "a checkpoint file as teacher also needs `config:` (its mmseg config)")]
    return []
