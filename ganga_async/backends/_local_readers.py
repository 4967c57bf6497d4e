"""Which local runners may still hold commands they have not read.

A runner's first process makes ``<gangadir>/logs/runner-<pid>.reading`` before the engine may
send it anything; the runner removes it once its input reached its end, every command read and
logged as accepted (see ``workers/local_runner.py``). Until then a command the engine sent may
sit unread in the runner's socket buffer, with no record in any status log: an engine killed
right after sending leaves it there, and the runner, which outlives its engine, reads and runs
it later. So a restarted engine concludes "never received" only when no such runner lives.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .._exceptions import BackendError

PREFIX, SUFFIX = "runner-", ".reading"


def reading_runners(logdir: Path, own: int | None, is_runner: Callable[[object], bool]) -> list[int]:
    """The pids of the live runners other than ``own`` that may hold unread commands. A marker
    whose runner is gone (killed with commands unread, which it then never runs) is stale and
    removed. One directory listing, and a /proc read per marker."""
    try:
        with os.scandir(logdir) as entries:
            names = [e.name for e in entries if e.name.startswith(PREFIX) and e.name.endswith(SUFFIX)]
    except FileNotFoundError:
        return []  # no runner was ever started for this gangadir
    except OSError as exc:  # unknown is not "none": the sweep fails, and is made again
        raise BackendError(f"cannot list {logdir} for local runners still reading: {exc}") from exc
    reading: list[int] = []
    for name in names:
        try:
            pid = int(name[len(PREFIX):-len(SUFFIX)])
        except ValueError:
            continue  # not one of ours
        if pid == own:
            continue
        if is_runner(pid):
            reading.append(pid)
            continue
        try:
            (logdir / name).unlink()
        except OSError:
            pass  # gone already, or not ours to remove: either way a dead runner's
    return reading
