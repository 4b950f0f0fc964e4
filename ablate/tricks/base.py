"""What a trick is: a named, parameterised, validated transform of an mmseg config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

from pydantic import BaseModel, ConfigDict


class TrickParams(BaseModel):
    """Base of every trick's parameters: unknown keys are refused, defaults are the paper's."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class TrickContext:
    """What a trick may need beyond the config: the study's budget, data and references."""

    iters: int
    data_root: Path
    crop: Optional[tuple[int, int]] = None
    # resolves `transfer: {from: NAME}` to the checkpoint that trial will write
    checkpoint_of: Callable[[str], Path] = field(default=lambda name: Path(name))
    # the resolved model config of a trained study entry (`distill: {teacher: NAME}`); None if unknown
    model_of: Callable[[str], Optional[Any]] = field(default=lambda name: None)
    # a path the study names, resolved as the study resolves its own (cwd first, then its folder)
    path_of: Callable[[str], Path] = field(default=Path)
    # False while `plan` describes a dataset it has not generated: tricks that read the data
    # (class pixel counts) leave those values out instead of failing.
    data_ready: bool = True


class Trick:
    """Subclasses set `name` and `Params` and implement `apply` (in place on the Config)."""

    name: ClassVar[str]
    Params: ClassVar[type[TrickParams]] = TrickParams
    summary: ClassVar[str] = ""

    def apply(self, cfg: Any, params: TrickParams, ctx: TrickContext) -> None:
        raise NotImplementedError

    def problems(self, cfg: Any, params: TrickParams) -> list[tuple[str, str]]:
        """(parameter, message) for parameters that do not fit this config, e.g. a stage index
        beyond the backbone's; the study loader reports them under the trick's field path
        before anything runs."""
        return []

    def check(self, cfg: Any, params: TrickParams) -> None:
        """`problems` as a ConfigError, for callers that apply a trick without the loader."""
        found = self.problems(cfg, params)
        if found:
            from ablate.errors import ConfigError

            raise ConfigError("; ".join(f"{self.name}{'.' + key if key else ''}: {msg}" for key, msg in found))


TRICKS: dict[str, Trick] = {}


def register_trick(cls: type[Trick]) -> type[Trick]:
    """Class decorator: one registry, so a study can name any trick and `plan` can list them."""
    if cls.name in TRICKS:
        raise ValueError(f"trick '{cls.name}' registered twice")
    TRICKS[cls.name] = cls()
    return cls


def get_trick(name: str) -> Trick:
    try:
        return TRICKS[name]
    except KeyError:
        known = ", ".join(sorted(TRICKS))
        raise KeyError(f"unknown trick '{name}' (known: {known})") from None


def decode_heads(cfg: Any) -> list[dict]:
    """The main decode head(s) of an EncoderDecoder / CascadeEncoderDecoder config."""
    head = cfg.model.get("decode_head")
    if head is None:
        return []
    return list(head) if isinstance(head, (list, tuple)) else [head]


def head_losses(head: dict) -> list[dict]:
    loss = head.get("loss_decode")
    if loss is None:
        return []
    return list(loss) if isinstance(loss, (list, tuple)) else [loss]
