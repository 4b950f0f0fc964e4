"""Read a study file: safe YAML, pydantic validation, then checks against the real files.

Every problem comes back as a `field.path: message` line in one StudyError, before anything
runs or is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import ValidationError

from ablate.errors import StudyError
from ablate.study.designs import TrialDesign, dependency_problems, expand
from ablate.study.schema import StudySpec


@dataclass(frozen=True)
class Study:
    """A validated study with its profile applied and its paths made absolute."""

    spec: StudySpec
    source: Path
    profile: Optional[str]
    base: Path
    data_root: Path
    designs: tuple[TrialDesign, ...] = ()

    def path(self, value: str) -> Path:
        """A path the study names, resolved like every other (cwd first, then the study's folder)."""
        return resolve_path(value, self.source.parent)

    @property
    def name(self) -> str:
        return self.spec.name


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise StudyError(str(path), [("", "study file not found; check the path")])
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "file"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StudyError(str(path), [(where, f"invalid YAML: {problem}")]) from None


def resolve_path(value: str, study_dir: Path) -> Path:
    """Relative paths mean the working directory first, then the study file's folder."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    here = (Path.cwd() / path).resolve()
    if here.exists():
        return here
    beside = (study_dir / path).resolve()
    return beside if beside.exists() else here


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
    merged: dict[str, Any] = {}
    for index, name in enumerate(files or []):
        path = resolve_path(str(name), source.resolve().parent)
        if not path.is_file():
            raise StudyError(str(source), [(f"include[{index}]", f"file '{name}' not found")])
        part = _read_yaml(path)
        if not isinstance(part, dict):
            raise StudyError(str(source), [(f"include[{index}]", f"'{name}' must be a YAML mapping")])
        merged = _merge(merged, part)
    return _merge(merged, raw)


def validate(raw: Any, source: str) -> StudySpec:
    if not isinstance(raw, dict):
        raise StudyError(source, [("", "a study file must be a YAML mapping (name:, base:, data:, trials:, ...)")])
    try:
        return StudySpec.model_validate(raw)
    except ValidationError as exc:
        problems = [(_loc(err["loc"]), err["msg"]) for err in exc.errors()]
        raise StudyError(source, problems) from None


def load_study(path: str | Path, profile: Optional[str] = None, check_files: bool = True) -> Study:
    """Parse, validate and check a study file; raises StudyError listing every problem."""
    source = Path(path)
    spec = validate(expand_includes(_read_yaml(source), source), str(source))
    origin = {"base": "base", "data": "data"}
    if profile is not None:
        if profile not in spec.profiles:
            known = ", ".join(sorted(spec.profiles)) or "none defined"
            raise StudyError(str(source), [("profiles", f"no profile '{profile}' (available: {known})")])
        chosen = spec.profiles[profile]
        if chosen.base is not None:
            origin["base"] = f"profiles.{profile}.base"
        if chosen.data is not None and chosen.data.root is not None:
            origin["data"] = f"profiles.{profile}.data"
        spec = spec.with_profile(profile)
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
    )
    if check_files:
        problems = check_study_files(study, origin)
        if problems:
            raise StudyError(str(source), problems)
    return study


def _missing_data(study: Study, data: Any, field: str) -> list[tuple[str, str]]:
    if data is None or data.synth is not None or study.path(data.root).exists():
        return []
    return [(
        f"{field}.root",
        f"dataset folder '{data.root}' not found; create it with `ablate data synth --out ...` / "
        "`ablate data kitti RAW --out ...`, or add `synth:`",
    )]


def _missing_file(study: Study, value: Optional[str], field: str, what: str) -> list[tuple[str, str]]:
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
    problems += _missing_file(study, spec.encoder, "encoder", "encoder checkpoint")
    for i, entry in enumerate(spec.pretrain):
        problems += _missing_file(study, entry.checkpoint, f"pretrain[{i}].checkpoint", "checkpoint")
        problems += _missing_file(study, entry.base, f"pretrain[{i}].base", "config file")
        problems += _missing_data(study, entry.data, f"pretrain[{i}].data")
    pretrain_names = {p.name for p in spec.pretrain}
    for i, entry in enumerate(spec.zoo):
        problems += _missing_file(study, entry.config, f"zoo[{i}].config", "config file")
        problems += _missing_file(study, entry.encoder, f"zoo[{i}].encoder", "encoder checkpoint")
        if entry.decoder not in pretrain_names:
            problems += _missing_file(study, entry.decoder, f"zoo[{i}].decoder", "checkpoint (or pretrain entry)")
    for design in study.designs:
        for trick in design.tricks:
            checkpoint = getattr(trick.params, "checkpoint", None)
            if trick.name == "transfer" and checkpoint and not design.shape == "zoo":
                problems += _missing_file(study, checkpoint, f"{trick.path}.checkpoint", "checkpoint")
    if problems:
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
    for key, msg in iter_problems(base_cfg, spec.overrides):
        problems.append((f"overrides.{key}", msg))
    if not problems and spec.overrides:  # trial keys may refer to what study-level `+key`s added
        import copy

        from ablate.config import apply_overrides

        base_cfg = copy.deepcopy(base_cfg)
        apply_overrides(base_cfg, spec.overrides)
    for index, entry in enumerate(spec.trials):
        for key, msg in iter_problems(base_cfg, entry.overrides):
            problems.append((f"trials[{index}].overrides.{key}", msg))
    for index, entry in enumerate(spec.zoo):
        cfg = configs[str(study.path(entry.config))]
        for key, msg in iter_problems(cfg, entry.overrides):
            problems.append((f"zoo[{index}].overrides.{key}", msg))
    if spec.search is not None:
        for key, msg in iter_problems(base_cfg, {k: None for k in spec.search.params if not k.startswith("tricks.")}):
            problems.append((f"search.params.{key}", msg))
    for index, entry in enumerate(spec.pretrain):
        if entry.checkpoint is None:
            cfg = configs[str(study.path(entry.base) if entry.base else study.base)]
            for key, msg in iter_problems(cfg, entry.overrides):
                problems.append((f"pretrain[{index}].overrides.{key}", msg))
    return problems
