"""The guards on a job's input files, checked when the job is accepted (before anything is
copied): every file is a regular file or a directory (symbolic links are followed, as the copy
follows them), no directory is reached twice (a symbolic link loop) or holds the gangadir, and
all of them together stay within ``[Pipeline] max_input_size`` bytes.

Each refusal is a one-line :class:`~ganga_async.JobSpecError` naming ``inputfiles[i]``, the
file, and the fix. The walk reads only metadata (``stat``), never contents.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from .._exceptions import JobSpecError

__all__ = ["check_inputs"]

_KINDS = {stat.S_IFIFO: "named pipe (fifo)", stat.S_IFSOCK: "socket", stat.S_IFCHR: "character device",
          stat.S_IFBLK: "block device"}


def check_inputs(paths: Sequence[str], gangadir: Path, limit: int) -> int:
    """Check the absolute input ``paths`` of a job; their total size in bytes. ``limit`` 0
    means no size limit."""
    home = os.path.realpath(gangadir)
    total = 0
    seen: set[tuple[int, int]] = set()
    for i, top in enumerate(paths):
        field = f"inputfiles[{i}]"
        stack = [top]
        while stack:
            path = stack.pop()
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise JobSpecError(field, f"{path} is a symbolic link to nothing (or vanished); "
                                   "remove it or fix its target") from None
            except OSError as exc:
                raise JobSpecError(field, f"cannot read {path}: {exc.strerror or exc}; fix its "
                                   "permissions or leave it out") from None
            if stat.S_ISDIR(st.st_mode):
                stack.extend(_directory(field, path, st, home, seen))
            elif stat.S_ISREG(st.st_mode):
                total += st.st_size
                if limit and total > limit:
                    raise JobSpecError(
                        field, f"the job's inputs reach {total} bytes with {path} ({st.st_size} "
                        f"bytes), over [Pipeline] max_input_size = {limit}; raise the limit (e.g. "
                        "GANGA_ASYNC_PIPELINE_MAX_INPUT_SIZE, 0 for none) or give fewer files")
            else:
                kind = _KINDS.get(stat.S_IFMT(st.st_mode), "special file")
                raise JobSpecError(field, f"{path} is a {kind}, which cannot be copied into the "
                                   "job's working directory; leave it out of the inputs")
    return total


def _directory(field: str, path: str, st: os.stat_result, home: str,
               seen: set[tuple[int, int]]) -> list[str]:
    real = os.path.realpath(path)
    if os.path.commonpath([real, home]) == real:
        through = "" if real == os.path.abspath(path) else f" (a symbolic link to {real})"
        raise JobSpecError(field, f"{path}{through} holds the gangadir {home}: copying it would "
                           "copy the gangadir into itself; give files or directories that do not "
                           "contain it")
    key = (st.st_dev, st.st_ino)
    if key in seen:
        raise JobSpecError(field, f"{path} reaches {real} a second time (a symbolic link loop, or "
                           "two links to one directory), so its copy would never end or repeat "
                           "itself; remove the link")
    seen.add(key)
    try:
        with os.scandir(path) as entries:
            return [entry.path for entry in entries]
    except OSError as exc:
        raise JobSpecError(field, f"cannot list {path}: {exc.strerror or exc}; fix its permissions "
                           "or leave it out") from None
