"""``/api/jobs/{fqid}/files/{name}``: a file of a (sub)job, only from its own directories.

Ganga's web GUI let a crafted name read any file (its PR #2025). Here a name is refused (400)
when it is absolute, holds ``..`` or a NUL, and a file is read only when its real path, all
symbolic links followed, lies inside the real path of the (sub)job's output or working
directory (404 otherwise). It is opened without following a last symbolic link, and checked
again once open, so a link swapped in between is not followed either.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from .._exceptions import JobNotFoundError
from ..engine import Engine
from ._api import BadRequest, int_param

__all__ = ["job_file", "read_inside"]

MAX_LIMIT = 1 << 20


class _Outside(Exception):
    """The name leads out of the job's directories, or to nothing readable."""


def _check_name(name: str) -> None:
    parts = PurePosixPath(name).parts
    if not name or "\x00" in name or name.startswith("/") or ".." in parts or "\\" in name:
        raise BadRequest(f"file name {name!r} is refused: give a name inside the job's output "
                         "directory (such as stdout, stderr or out/result.txt), without '..'")


def read_inside(places: list[Path], name: str, limit: int) -> dict[str, Any]:
    """The last ``limit`` bytes of ``name`` in the first of ``places`` holding it (blocking)."""
    for place in places:
        try:
            base = place.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            continue
        target = (place / name).resolve()
        if not target.is_relative_to(base) or target == base:
            raise _Outside(f"{name!r} leads outside the job's directory")
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise _Outside(f"{name!r} cannot be read: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise _Outside(f"{name!r} is not a regular file")
            if not Path(os.readlink(f"/proc/self/fd/{file.fileno()}")).is_relative_to(base):
                raise _Outside(f"{name!r} leads outside the job's directory")
            size = info.st_size
            truncated = size > limit
            if truncated:
                file.seek(size - limit)
            data = file.read(limit)
        return {"name": name, "text": data.decode(errors="replace"), "truncated": truncated,
                "size": size}
    raise _Outside(f"the job has no file {name!r} (yet)")


async def job_file(request: Request) -> JSONResponse:
    """``/api/jobs/{fqid}/files/{name}?limit=65536``."""
    engine: Engine = request.app.state.engine
    name = request.path_params["name"]
    _check_name(name)
    limit = int_param(request, "limit", 65536, 1, MAX_LIMIT)
    try:
        job = await engine.get(request.path_params["id"])
    except JobNotFoundError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    places = [Path(job.outputdir), Path(job.workdir)]
    try:
        found = await anyio.to_thread.run_sync(read_inside, places, name, limit)
    except _Outside as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    return JSONResponse(found)
