"""The `ablate` command: the only place user errors become one-line messages and exit codes."""

from ablate.cli.app import app, main

__all__ = ["app", "main"]
