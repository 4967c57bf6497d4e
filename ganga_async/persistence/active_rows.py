"""The rows of the masters an opening engine resumes, read without holding the event loop:
their descriptions (one of 10^6 argument lists is a text of 10 MB, 0.5 s in one
``json.loads``) are decoded with :func:`encoding.decode`, a slice at a time."""

from __future__ import annotations

import json
from collections.abc import Sequence

from . import encoding
from .repository import JOB_COLUMNS, JobRow, Repository

__all__ = ["job_rows_by_status"]

_COLUMNS = ", ".join(("id", *JOB_COLUMNS))


async def job_rows_by_status(repository: Repository, statuses: Sequence[str]) -> list[JobRow]:
    """The masters in one of ``statuses``, in id order, as ``Repository.job_rows`` gives them."""
    marks = ", ".join("?" for _ in statuses)
    async with repository.db.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE status IN ({marks}) ORDER BY id",  # noqa: S608
        list(statuses),
    ) as cursor:
        rows = await cursor.fetchall()
    found: list[JobRow] = []
    for (job_id, name, comment, status, application, backend, spec, n_subjobs, backend_id,
         exitcode, reason, submit_counter, times, retry_at) in rows:
        found.append(JobRow(
            id=job_id, name=name, comment=comment, status=status, application=application,
            backend=backend, spec=await encoding.decode(spec), n_subjobs=n_subjobs,
            backend_id=backend_id, exitcode=exitcode, reason=reason,
            submit_counter=submit_counter, times=json.loads(times), retry_at=retry_at))
    return found
