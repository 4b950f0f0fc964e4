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
from ablate.study.schema import StudySpec


@dataclass(frozen=True)
class Study:
    """A validated study with its profile applied and its paths made absolute."""

    spec: StudySpec
    source: Path
    profile: Optional[str]
    base: Path
    data_root: Path

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
    spec = validate(_read_yaml(source), str(source))
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
    study = Study(
        spec=spec,
        source=source.resolve(),
        profile=profile,
        base=resolve_path(spec.base, study_dir),
        data_root=resolve_path(spec.data.root, study_dir),
    )
    if check_files:
        problems = check_study_files(study, origin)
        if problems:
            raise StudyError(str(source), problems)
    return study


def check_study_files(study: Study, origin: dict[str, str]) -> list[tuple[str, str]]:
    """Problems with the files a study names: base config, data root, override keys."""
    from ablate.config import iter_problems, load_base
    from ablate.errors import ConfigError

    problems: list[tuple[str, str]] = []
    if not study.base.is_file():
        problems.append((origin["base"], f"config file '{study.spec.base}' not found"))
    if not study.data_root.exists() and study.spec.data.synth is None:
        problems.append(
            (
                f"{origin['data']}.root",
                f"dataset folder '{study.spec.data.root}' not found; create it with "
                "`ablate data synth --out ...` / `ablate data kitti RAW --out ...`, or add `synth:`",
            )
        )
    if problems:
        return problems
    try:
        cfg = load_base(study.base)
    except ConfigError as exc:
        return [(origin["base"], str(exc))]
    for key, msg in iter_problems(cfg, study.spec.overrides):
        problems.append((f"overrides.{key}", msg))
    for index, entry in enumerate(study.spec.trials):
        for key, msg in iter_problems(cfg, entry.overrides):
            problems.append((f"trials[{index}].overrides.{key}", msg))
    return problems
