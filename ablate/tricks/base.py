"""What a trick is: a named, parameterised, validated transform of an mmseg config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict


class TrickParams(BaseModel):
    """Base of every trick's parameters: unknown keys are refused, defaults are the paper's."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class TrickContext:
    """What a trick may need beyond the config: the study's budget, data and references."""

    iters: int
    data_root: Path
    crop: tuple[int, int] | None = None
    # resolves `transfer: {from: NAME}` to the checkpoint that trial will write (or, for a
    # pretrain entry that is a checkpoint, its path, URL or runs:/ URI)
    checkpoint_of: Callable[[str], Path | str] = field(default=lambda name: Path(name))
    # the resolved model config of a trained study entry (`distill: {teacher: NAME}`); None if unknown
    model_of: Callable[[str], Any | None] = field(default=lambda name: None)
    # a path the study names, resolved as the study resolves its own (cwd first, then its folder)
    path_of: Callable[[str], Path] = field(default=Path)
    # False while `plan` describes a dataset it has not generated: tricks that read the data
    # (class pixel counts) leave those values out instead of failing.
    data_ready: bool = True
    # the label space of the trial's dataset (`ablate.data.DatasetMeta`); None: not known here
    dataset_meta: Any = None


@dataclass(frozen=True)
class StudyEntries:
    """The entries of a study a trick may read weights from, for `Trick.source_problems`."""

    pretrain: frozenset[str] = frozenset()  # every pretrain entry
    files: frozenset[str] = frozenset()  # pretrain entries that are checkpoint files (nothing trains them)
    zoo: frozenset[str] = frozenset()  # zoo rows
    own: str | None = None  # the zoo row the trick is applied to (a recipe reaches every row)

    @property
    def trained(self) -> frozenset[str]:
        return (self.pretrain - self.files) | self.zoo


# each trick reads its own parameter model; the registry holds them as Trick[Any]
ParamsT = TypeVar("ParamsT", bound=TrickParams)


class Trick(Generic[ParamsT]):
    """Subclasses set `name` and `Params` and implement `apply` (in place on the Config).

    What a study, its plan and its checks need to know of a trick beyond its config change is
    asked of the trick here (what it reads, what it marks), never decided from its name.
    """

    name: ClassVar[str]
    Params: ClassVar[type[TrickParams]] = TrickParams
    summary: ClassVar[str] = ""
    # starts the whole segmentor (encoder and decoder) from a checkpoint: the trial counts as
    # pretrained on both sides in the tables
    loads_weights: ClassVar[bool] = False

    def source(self, params: ParamsT) -> str | None:
        """The study entry (pretrain entry, zoo row) or checkpoint this trick reads weights from,
        as written; None when it reads none. A study entry named here trains first."""
        return None

    def teacher(self, params: ParamsT) -> str | None:
        """The teacher a distilled trial learns from, as written (shown beside the trial)."""
        return None

    def files(self, params: ParamsT) -> list[tuple[str, str, str]]:
        """(parameter, path, what) of the files besides checkpoints this trick reads, so that a
        missing one is refused when the study loads."""
        return []

    def checkpoint_file(self, params: ParamsT, entries: frozenset[str]) -> tuple[str, str, str] | None:
        """(parameter, value, what) of a checkpoint this trick names outside the study's own
        `entries` (a path, URL or runs:/ URI), checked and fetched before anything trains."""
        return None

    def source_problems(self, params: ParamsT, path: str, entries: StudyEntries) -> list[tuple[str, str]]:
        """(field path, message) for a source this study cannot provide."""
        return []

    def apply(self, cfg: Any, params: ParamsT, ctx: TrickContext) -> None:
        raise NotImplementedError

    def problems(self, cfg: Any, params: ParamsT) -> list[tuple[str, str]]:
        """(parameter, message) for parameters that do not fit this config, e.g. a stage index
        beyond the backbone's; the study loader reports them under the trick's field path
        before anything runs."""
        return []

    def check(self, cfg: Any, params: ParamsT) -> None:
        """`problems` as a ConfigError, for callers that apply a trick without the loader."""
        found = self.problems(cfg, params)
        if found:
            from ablate.errors import ConfigError

            raise ConfigError("; ".join(f"{self.name}{'.' + key if key else ''}: {msg}" for key, msg in found))


TRICKS: dict[str, Trick[Any]] = {}

_TrickT = TypeVar("_TrickT", bound=Trick[Any])


def register_trick(cls: type[_TrickT]) -> type[_TrickT]:
    """Class decorator: one registry, so a study can name any trick and `plan` can list them."""
    if cls.name in TRICKS:
        raise ValueError(f"trick '{cls.name}' registered twice")
    TRICKS[cls.name] = cls()
    return cls


def decode_heads(cfg: Any) -> list[dict]:
    """The main decode head(s) of an EncoderDecoder / CascadeEncoderDecoder config."""
    head = cfg.model.get("decode_head")
    if head is None:
        return []
    return list(head) if isinstance(head, (list, tuple)) else [head]


def head_classes(cfg: Any) -> list[tuple[str, int | None]]:
    """(config field, num_classes) of every decode and auxiliary head of the model."""
    out: list[tuple[str, int | None]] = []
    for part in ("decode_head", "auxiliary_head"):
        node = cfg.model.get(part)
        heads = list(node) if isinstance(node, (list, tuple)) else [node] if node else []
        for i, head in enumerate(heads):
            field = f"model.{part}[{i}].num_classes" if isinstance(node, (list, tuple)) else f"model.{part}.num_classes"
            count = head.get("num_classes") if isinstance(head, dict) else None
            out.append((field, int(count) if isinstance(count, int) else None))
    return out


def head_losses(head: dict) -> list[dict]:
    loss = head.get("loss_decode")
    if loss is None:
        return []
    return list(loss) if isinstance(loss, (list, tuple)) else [loss]
