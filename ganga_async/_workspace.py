"""Where a job's files are kept in its workspace, ``<gangadir>/workspace/<user>/<id>/``.

A job's directory holds ``input/`` (the input sandbox), ``output/`` or, once split, one
directory per subjob (``0/``, ``1/``, ...) for stdout, stderr and the copied-back output files,
and ``work/`` for working directories. The model and the backends both follow this layout.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio

__all__ = ["job_dir", "job_dir_of", "listing", "output_dir", "tail_of", "work_dir"]


def job_dir(workspace: Path, job_id: int) -> Path:
    """The directory of job ``job_id`` in ``workspace``."""
    return workspace / str(job_id)


def output_dir(jobdir: Path, index: int | None) -> Path:
    """The outputdir of the job whose directory is ``jobdir`` (index None) or of its subjob
    ``index``, without building the subjob."""
    return jobdir / ("output" if index is None else str(index))


def work_dir(jobdir: Path, index: int | None) -> Path:
    """The kept working directory of the job in ``jobdir`` (index None) or of its subjob."""
    return (jobdir if index is None else jobdir / str(index)) / "work"


def job_dir_of(outputdir: Path) -> Path:
    """The directory of the job an outputdir (of the job or of one of its subjobs) belongs to."""
    return outputdir.parent


def tail_of(path: Path, limit: int) -> str:
    """The file's text, or its last ``limit`` bytes after a line saying what was left out."""
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size <= limit:
            return file.read().decode(errors="replace")
        file.seek(size - limit)
        tail = file.read(limit).decode(errors="replace")
    return f"[the first {size - limit} of {size} bytes are not shown; the whole file is {path}]\n{tail}"


async def listing(directory: Path, prefix: str, *, skip_empty_dirs: bool = False) -> list[str]:
    """The names in ``directory`` (each after ``prefix``); none when it is not there, or went
    away while being read (a scratch working directory is emptied as its process ends). With
    ``skip_empty_dirs``, empty directories are left out: a Local slot's scratch directory is
    emptied before its subjob's end is told, and removed only when the slot ends."""
    try:
        entries = [p async for p in anyio.Path(directory).iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    if skip_empty_dirs:
        entries = [p for p in entries if not await _empty_dir(p)]
    return [prefix + p.name for p in entries]


async def _empty_dir(path: anyio.Path) -> bool:
    try:
        async for _ in path.iterdir():
            return False
    except OSError:  # not a directory, or gone meanwhile
        return not await path.exists()
    return True
