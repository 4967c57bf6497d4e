"""The state the engine keeps for a stored job: its record.

A :class:`JobRecord` is created by the engine when a job is stored or loaded and bound to the
:class:`~ganga_async.model.job.Job` the user holds, which reads it and never writes it. Whoever
holds the record may change it, and in the engine that is the state machine
(:mod:`ganga_async.model.machine`) for everything about status; the job object offers no way
to reach it.
"""

from __future__ import annotations

from pathlib import Path

from .._exceptions import JobNotFoundError, JobStateError
from .._workspace import job_dir
from ..postprocessors.base import PostprocessorResult
from ..states import Status
from .retry import Attempt, Retry
from .subjobs import SubjobTable

__all__ = ["JobRecord", "MAX_ID", "parse_fqid"]


class JobRecord:
    """A job's state: id, status, the time it entered each status, submissions, the backend's
    id, exit code, reason (why it failed or waits) and, for a master, its subjob table."""

    __slots__ = ("id", "status", "times", "submit_counter", "backend_id", "exitcode", "reason",
                 "table", "workspace", "hold_final", "postprocessing", "retry", "retry_at",
                 "attempts", "results")

    def __init__(self, job_id: int | None = None, workspace: Path | None = None, *,
                 status: Status = Status.NEW, times: dict[str, float] | None = None,
                 submit_counter: int = 0, backend_id: str | None = None,
                 exitcode: int | None = None, reason: str | None = None,
                 table: SubjobTable | None = None) -> None:
        self.id = job_id
        self.workspace = workspace
        self.status = status
        self.times: dict[str, float] = times if times is not None else {}
        self.submit_counter = submit_counter
        self.backend_id = backend_id
        self.exitcode = exitcode
        self.reason = reason
        self.table = table
        self.hold_final = False
        """A master whose postprocessors (mergers, checkers of the master) must run before it
        is final: it waits in ``completing`` once its subjobs are all final."""
        self.postprocessing = False
        """Its postprocessors were asked for and have not answered yet."""
        self.retry: Retry | None = None
        """The retry policy of the job's (sub)jobs, if any."""
        self.retry_at = 0.0
        """When the job (unsplit) waiting to be retried is due; 0 when it is not waiting."""
        self.attempts: dict[int | None, list[Attempt]] = {}
        """The earlier attempts of the job (None) and of each subjob that has had any."""
        self.results: dict[int | None, list[PostprocessorResult]] = {}
        """The latest postprocessors' results of the job (None) and of each subjob."""

    @property
    def jobdir(self) -> Path:
        """The job's directory in its workspace."""
        if self.workspace is None or self.id is None:
            raise JobStateError("the job has no workspace until it is added to an engine")
        return job_dir(self.workspace, self.id)

    @property
    def split(self) -> bool:
        """Whether the job has subjobs."""
        return self.table is not None and len(self.table) > 0

    def key(self, index: int | None) -> str:
        """The fqid of the job (index None) or of its subjob ``index``."""
        return str(self.id) if index is None else f"{self.id}.{index}"

    def status_of(self, index: int | None) -> Status:
        """The status of the job (index None) or of its subjob ``index``."""
        if index is None:
            return self.status
        if self.table is None:
            raise JobStateError(f"job {self.id} has no subjobs")
        return self.table.get_status(index)


MAX_ID = 2**63 - 1
"""The largest id the repository can hold (SQLite's integers)."""


def parse_fqid(value: int | str) -> tuple[int, int | None]:
    """A job id (``3``, ``"3"``) or subjob fqid (``"3.17"``) as (job id, subjob index)."""
    head, _, tail = str(value).partition(".")
    if isinstance(value, bool) or not head.isdecimal() or not (tail.isdecimal() or not tail) or (
            "." in str(value) and not tail):
        raise JobNotFoundError(f"{value!r} is not a job id; use e.g. 3 or 3.17")
    job_id, index = int(head), (int(tail) if tail else None)
    if job_id > MAX_ID or (index is not None and index > MAX_ID):
        raise JobNotFoundError(f"no job {value}: ids go up to {MAX_ID}")
    return job_id, index
