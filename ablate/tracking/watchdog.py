"""Ends an `mlflow server` process group once the `ablate server` that started it is gone, however it went.

`ablate server` starts `mlflow server` in a session of its own, so a Ctrl-C meant for one does
not half-stop the other, and stops that whole group itself on Ctrl-C or SIGTERM. Killed outright
(SIGKILL, the OOM killer, a closed terminal's SIGHUP) it runs no code at all, and the server with
its web-server workers would keep the port. This script, started beside the server in a session
of its own, holds the read end of a pipe whose only writer is `ablate server`: the kernel closes
the write end however that process ends, and the read returns. A byte before the end means "I
stopped it myself"; a bare end means it died, and this process signals the server's whole group,
SIGTERM then SIGKILL after a grace period.

Why this rather than Linux's `PR_SET_PDEATHSIG` on the child: the death signal reaches only the
direct child (`mlflow server`), not the uvicorn supervisor and workers it spawns, which would keep
the port; it fires when the forking *thread* ends, not the process; and it is Linux only. The
group signal reaches every process of the tree, and the pipe works on every POSIX system.

Run as a script with the interpreter isolated (`python -I -S watchdog.py PGID GRACE_S`): it needs
the standard library only, and importing the `ablate` package would cost a second of CPU and
memory for a process that waits on one read.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def end_group(pgid: int, grace_s: float) -> None:
    """SIGTERM to every process of the group, SIGKILL to whatever is left after `grace_s`."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def watch(pgid: int, grace_s: float, fd: int = 0) -> bool:
    """Wait for the writer of `fd` to go; end the group unless it said it had. True: it was ended here."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # only the pipe's end decides
    told = b""
    while True:
        chunk = os.read(fd, 64)
        if not chunk:
            break
        told += chunk
    if told:
        return False
    end_group(pgid, grace_s)
    return True


if __name__ == "__main__":
    watch(int(sys.argv[1]), float(sys.argv[2]))
