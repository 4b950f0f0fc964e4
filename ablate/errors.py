"""One exception family, caught once at the CLI boundary and printed as one line (exit 2)."""

from __future__ import annotations


class AblateError(Exception):
    """Base of every error a user can fix by changing input; the CLI prints it and exits 2."""

    exit_code = 2


class DataError(AblateError):
    """A dataset folder or file is missing, unpaired or malformed."""


class ConfigError(AblateError):
    """An mmseg config or a dotted override cannot be resolved."""


class StudyError(AblateError):
    """A study file failed validation; carries every `field.path: message` line."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        if len(problems) == 1 and not problems[0][0]:
            super().__init__(f"{source}: {problems[0][1]}")
            return
        lines = [f"{path}: {msg}" if path else msg for path, msg in problems]
        super().__init__(f"{source}: invalid study\n" + "\n".join(lines))


class TrialPruned(Exception):
    """A search's pruner stopped the trial early; not a user error (the trial ends PRUNED)."""
