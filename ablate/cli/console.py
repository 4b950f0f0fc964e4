"""The command's two consoles: results on stdout, progress and errors on stderr.

A terminal gets its own width; pipes and log files get 200 columns, so ids and names are never
cut or wrapped where a script or a reader looks for them.
"""

from __future__ import annotations

import sys

from rich.console import Console

WIDTH = None if sys.stdout.isatty() else 200

out = Console(soft_wrap=True, width=WIDTH)
err = Console(stderr=True, soft_wrap=True, width=WIDTH)
