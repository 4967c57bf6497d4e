"""Where a job's files live: pure functions of its directory ``<workspace>/<id>``.

A job's directory holds ``input/`` (its sandbox), ``output/`` (an unsplit job's stdout, stderr
and copied-back files) and ``work/``; subjob ``i`` of a master has its own directory ``<i>/``,
which is its outputdir, with ``<i>/work`` as its kept working directory.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["job_dir", "output_dir", "work_dir", "job_dir_of"]


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
