"""Read a study file: safe YAML, pydantic validation, then checks against the real files.

Every problem comes back as a `field.path: message` line in one StudyError, before anything
runs or is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ablate.errors import StudyError
from ablate.study.checkpoints import source_problems
from ablate.study.designs import dependency_problems, expand
from ablate.study.schema import StudySpec
from ablate.study.search_schema import CROP_PARAM
from ablate.study.study import Study, resolve_path
from ablate.util.text import one_line


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _msg(err: Any) -> str:
    """pydantic's message, without the "Value error, " it puts before a validator's own words."""
    return str(err["msg"]).removeprefix("Value error, ")


def _read_yaml(path: Path, source: str | None = None, field: str = "") -> Any:
    """Safe YAML from a file; every way the file can be unreadable is one StudyError line.

    `source`/`field` name the study and its `include[i]` when the file is an included one.
    """
    included = source is not None
    subject = f"'{path}' " if included else ""

    def fail(where: str, message: str) -> StudyError:
        return StudyError(source or str(path), [(field or where, subject + message)])

    if not path.is_file():
        raise fail("", "not found; check the path" if included else "study file not found; check the path")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail("", f"cannot be read ({exc.strerror or exc}); check its permissions") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise fail(
            "",
            f"{'is ' if included else ''}not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); a study file must be YAML text",
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark is not None else "file"
        problem = getattr(exc, "problem", None) or one_line(exc, with_type=False)
        raise fail(line, f"is invalid YAML at {line}: {problem}" if included else f"invalid YAML: {problem}") from None


def _merge(base: Any, top: Any) -> Any:
    if isinstance(base, dict) and isinstance(top, dict):
        return {**base, **{k: _merge(base.get(k), v) if k in base else v for k, v in top.items()}}
    return top


def expand_includes(raw: Any, source: Path) -> Any:
    """`include: [file, ...]`: YAML files merged under the study (the study's own keys win)."""
    if not isinstance(raw, dict) or "include" not in raw:
        return raw
    raw = dict(raw)
    files = raw.pop("include")
    files = [files] if isinstance(files, str) else files
    if files is not None and (not isinstance(files, list) or not all(isinstance(f, str) for f in files)):
        raise StudyError(str(source), [("include", "must be a file name or a list of file names")])
    merged: dict[str, Any] = {}
    for index, name in enumerate(files or []):
        field = f"include[{index}]"
        path = resolve_path(name, source.resolve().parent)
        if not path.is_file():
            raise StudyError(str(source), [(field, f"file '{name}' not found")])
        part = _read_yaml(path, str(source), field)
        if not isinstance(part, dict):
            raise StudyError(str(source), [(field, f"'{name}' must be a YAML mapping")])
        if "include" in part:
            raise StudyError(
                str(source), [(field, f"'{name}' has an include: of its own; include those files from the study")]
            )
        merged = _merge(merged, part)
    return _merge(merged, raw)


def validate(raw: Any, source: str) -> StudySpec:
    if not isinstance(raw, dict):
        raise StudyError(source, [("", "a study file must be a YAML mapping (name:, base:, data:, trials:, ...)")])
    try:
        return StudySpec.model_validate(raw)
    except ValidationError as exc:
        problems = [(_loc(err["loc"]), _msg(err)) for err in exc.errors()]
        raise StudyError(source, problems) from None


def trick_params_problems(spec: StudySpec) -> list[tuple[str, str]]:
    """`trick_params` must name known tricks and parameters, with valid values, whether or not
    the trick appears in this study (a tuned snippet may be included by several studies)."""
    from ablate.tricks import TRICKS

    problems: list[tuple[str, str]] = []
    for name, params in spec.trick_params.items():
        if name not in TRICKS:
            problems.append((f"trick_params.{name}", f"unknown trick '{name}' (known: {', '.join(sorted(TRICKS))})"))
            continue
        try:
            TRICKS[name].Params.model_validate(params)
        except ValidationError as exc:
            for err in exc.errors():
                if err["loc"]:  # whole-trick rules (transfer's one source) need the item's own keys too
                    problems.append((_loc(("trick_params", name, *err["loc"])), _msg(err)))
    return problems


def load_study(path: str | Path, profile: str | None = None, check_files: bool = True) -> Study:
    """Parse, validate and check a study file; raises StudyError listing every problem."""
    source = Path(path)
    spec = validate(expand_includes(_read_yaml(source), source), str(source))
    problems = trick_params_problems(spec)
    if problems:
        raise StudyError(str(source), problems)
    # where a checked field came from, so a profile's file problems name the profile's field
    origin = {key: key for key in ("base", "data", "encoder", "zoo", "pretrain")}
    if profile is not None:
        if profile not in spec.profiles:
            known = ", ".join(sorted(spec.profiles)) or "none defined"
            raise StudyError(str(source), [("profiles", f"no profile '{profile}' (available: {known})")])
        chosen = spec.profiles[profile]
        if chosen.base is not None:
            origin["base"] = f"profiles.{profile}.base"
        if chosen.data is not None and chosen.data.root is not None:
            origin["data"] = f"profiles.{profile}.data"
        for key in ("encoder", "zoo", "pretrain"):
            if key in chosen.model_fields_set:
                origin[key] = f"profiles.{profile}.{key}"
        try:
            spec = spec.with_profile(profile)
        except ValidationError as exc:
            problems = [(_loc(("profiles", profile, *err["loc"])), _msg(err)) for err in exc.errors()]
            raise StudyError(str(source), problems) from None
    study_dir = source.resolve().parent
    designs, problems = expand(spec)
    problems += dependency_problems(spec, designs)
    if problems:
        raise StudyError(str(source), problems)
    study = Study(
        spec=spec,
        source=source.resolve(),
        profile=profile,
        base=resolve_path(spec.base, study_dir),
        data_root=resolve_path(spec.data.root, study_dir),
        designs=tuple(designs),
        origin=origin,
    )
    if check_files:
        problems = check_study_files(study, origin)
        if problems:
            raise StudyError(str(source), problems)
    return study


def _missing_data(study: Study, data: Any, field: str) -> list[tuple[str, str]]:
    if data is None or data.synth is not None or study.path(data.root).exists():
        return []
    return [
        (
            f"{field}.root",
            f"dataset folder '{data.root}' not found; create it with `ablate data synth --out ...` / "
            "`ablate data kitti RAW --out ...`, or add `synth:`",
        )
    ]


def _missing_file(study: Study, value: str | None, field: str, what: str) -> list[tuple[str, str]]:
    if value is None or study.path(value).is_file():
        return []
    return [(field, f"{what} '{value}' not found")]


def check_study_files(study: Study, origin: dict[str, str]) -> list[tuple[str, str]]:
    """Problems with the files a study names: configs, data roots, checkpoints, override keys."""
    from ablate.config import iter_problems, load_base
    from ablate.errors import ConfigError

    spec = study.spec
    problems: list[tuple[str, str]] = []
    problems += _missing_file(study, spec.base, origin["base"], "config file")
    problems += _missing_data(study, spec.data, origin["data"])
    pretrain, zoo = origin["pretrain"], origin["zoo"]
    for i, entry in enumerate(spec.pretrain):
        problems += _missing_file(study, entry.base, f"{pretrain}[{i}].base", "config file")
        problems += _missing_data(study, entry.data, f"{pretrain}[{i}].data")
    for i, row in enumerate(spec.zoo):
        problems += _missing_file(study, row.config, f"{zoo}[{i}].config", "config file")
    for design in study.designs:
        for trick in design.tricks:
            for param, value, what in trick.trick.files(trick.params):  # checkpoints are the sources below
                found = _missing_file(study, value, f"{trick.path}.{param}", what)
                problems += [p for p in found if p not in problems]
    # every checkpoint: a file that exists, a URL that answers, or a well-formed runs:/ URI
    problems += source_problems(study, origin)
    if problems:
        return problems
    from ablate.study import plan_cache

    digest = plan_cache.inputs_digest(study)
    if plan_cache.checked(digest):  # these very configs, overrides and trick parameters passed before
        return problems
    configs: dict[str, Any] = {}
    for design in study.designs:
        path = study.path(design.base) if design.base else study.base
        if str(path) not in configs:
            try:
                configs[str(path)] = load_base(path)
            except ConfigError as exc:
                return [(origin["base"] if design.base is None else f"{design.name}.base", str(exc))]
    base_cfg = configs.get(str(study.base)) or load_base(study.base)
    problems += _trick_problems(study, configs, base_cfg)
    for key, msg in iter_problems(base_cfg, spec.overrides):
        problems.append((f"overrides.{key}", msg))
    if not problems and spec.overrides:  # trial keys may refer to what study-level `+key`s added
        import copy

        from ablate.config import apply_overrides

        base_cfg = copy.deepcopy(base_cfg)
        apply_overrides(base_cfg, spec.overrides)
    for index, trial in enumerate(spec.trials):
        for key, msg in iter_problems(base_cfg, trial.overrides):
            problems.append((f"trials[{index}].overrides.{key}", msg))
    for index, row in enumerate(spec.zoo):
        cfg = configs[str(study.path(row.config))]
        for key, msg in iter_problems(cfg, row.overrides):
            problems.append((f"zoo[{index}].overrides.{key}", msg))
    if spec.search is not None:
        config_keys = {k: None for k in spec.search.params if not k.startswith("tricks.") and k != CROP_PARAM}
        for key, msg in iter_problems(base_cfg, config_keys):
            problems.append((f"search.params.{key}", msg))
    for index, entry in enumerate(spec.pretrain):
        if entry.checkpoint is None:
            cfg = configs[str(study.path(entry.base) if entry.base else study.base)]
            for key, msg in iter_problems(cfg, entry.overrides):
                problems.append((f"pretrain[{index}].overrides.{key}", msg))
    if not problems:
        plan_cache.mark_checked(digest)
    return problems


def _trick_problems(study: Study, configs: dict[str, Any], base_cfg: Any) -> list[tuple[str, str]]:
    """Trick parameters that do not fit the config they are applied to (e.g. `aux_head.in_index`
    beyond the backbone's stages), once per field path and message."""
    from ablate.study.designs import parse_tricks
    from ablate.tricks import TRICKS

    uses = [(configs[str(study.path(d.base) if d.base else study.base)], t) for d in study.designs for t in d.tricks]
    if study.spec.search is not None:
        recipe, _ = parse_tricks(study.spec.search.recipe, "search.recipe", study.spec.trick_params)
        uses += [(base_cfg, t) for t in recipe]
    problems: list[tuple[str, str]] = []
    for cfg, trick in uses:
        for key, msg in TRICKS[trick.name].problems(cfg, trick.params):
            item = (f"{trick.path}.{key}" if key else trick.path, msg)
            if item not in problems:
                problems.append(item)
    return problems
