"""A loaded study: its validated spec with the profile applied, its paths made absolute and its
trial designs. `loader` makes one; planning, checks and runs read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ablate.study.designs import TrialDesign
from ablate.study.schema import StudySpec


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


@dataclass(frozen=True)
class Study:
    """A validated study with its profile applied and its paths made absolute."""

    spec: StudySpec
    source: Path
    profile: str | None
    base: Path
    data_root: Path
    designs: tuple[TrialDesign, ...] = ()
    origin: dict[str, str] = field(default_factory=dict, compare=False)  # section -> the field that set it

    def path(self, value: str) -> Path:
        """A path the study names, resolved like every other (cwd first, then the study's folder)."""
        return resolve_path(value, self.source.parent)

    def checkpoint(self, value: str) -> str:
        """A checkpoint the study names, as trials read it: an http(s) URL or `runs:/` URI as
        written (fetched where the trial trains), a path resolved like `path`."""
        from ablate.tracking.checkpoints import is_remote

        return value if is_remote(value) else str(self.path(value))

    @property
    def name(self) -> str:
        return self.spec.name
