"""Where a job's files are kept in its workspace, ``<gangadir>/workspace/<user>/<id>/``.

A job's directory holds ``input/`` (the input sandbox), ``output/`` or, once split, one
directory per subjob (``0/``, ``1/``, ...) for stdout, stderr and the copied-back output files,
and ``work/`` for working directories. The model and the backends both follow this layout.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["job_dir", "job_dir_of", "output_dir", "tail_text", "work_dir"]


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


def tail_text(path: Path, limit: int) -> str:
    """The file's text, or its last ``limit`` bytes after a line saying what was left out (so
    that reading a job's gigabyte stdout never fills memory)."""
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size <= limit:
            return file.read().decode(errors="replace")
        file.seek(size - limit)
        tail = file.read(limit).decode(errors="replace")
    return f"[the first {size - limit} of {size} bytes are not shown; the whole file is {path}]\n{tail}"
