"""The plain-Python interface's Job (Ganga's methods, each a blocking call to the session's
engine), and Ganga's registry and its slices: ``jobs``, ``jobs.select(...)``, ``j.subjobs``.

A slice is a selection of jobs (or of one master's subjobs) with Ganga's interface: ``s(3)`` by
id, ``s[0]``, ``s[-1]`` and ``s[2:5]`` by position, ``len(s)``, iteration, ``s.ids()``,
``s.select(...)`` (a smaller slice), the collective operations ``submit``, ``kill``,
``resubmit``, ``remove`` and ``copy`` (each stops at the first error unless
``keep_going=True``) and its own table as its repr. ``jobs`` is the slice of every stored job;
the others are fixed when made, as Ganga's.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import anyio

from .._exceptions import GangaAsyncError, JobNotFoundError, JobSpecError, WaitTimeoutError
from .._log import get_logger
from ..applications.base import Application
from ..backends.base import Backend
from ..credentials import base as _credentials
from ..engine import SUMMARY_COLUMNS, Engine
from ..model import job as _core
from ..model.retry import Retry
from ..persistence.queries import job_ids, select_job_ids
from ..postprocessors.base import PostProcessor
from ..splitters.base import Splitter
from ..states import Status
from ._display import job_html, job_text
from ._session import Text as _Text
from ._session import config
from ._session import run as _run

__all__ = ["Job", "JobRegistry", "JobSlice", "SubjobSlice", "adopt", "jobs"]

class Job(_core.Job):
    """A job, as in Ganga: ``Job(name=..., application=..., backend=..., splitter=...,
    inputfiles=[...], outputfiles=[...])``.

    The defaults are Ganga's: ``Executable(exe="echo", args=["Hello World"])`` on ``Local()``.
    Constructing a job stores it in the repository at once: it gets an ``id`` and appears in
    ``jobs`` with status ``new``. Fields stay editable until :meth:`submit`; after that only
    ``comment`` may change (anything else raises :class:`~ganga_async.JobStateError`).

    ``Job(j)`` is a new job copying ``j``'s description (as ``j.copy()``), ``Job(j, name="x")``
    one with the fields given replaced. Two jobs are equal (``==``) when their status and
    description are (name, comment, id and times aside), as Ganga's: ``Job(j) == j`` for a new
    ``j``.

    Jobs returned by ``jobs(...)`` and subjob views (``j.subjobs[3]``) are of this class too.
    A subjob supports :meth:`wait`, :meth:`kill`, :meth:`resubmit`, :meth:`peek` and
    :meth:`force_status`; :meth:`submit` and :meth:`remove` act on whole jobs only.
    Read-only state (``status``, ``time``, ``exitcode``, ``reason``, ``outputdir``, ...) is
    described on :class:`ganga_async.Job`.
    """

    def __init__(
        self,
        prev_job: _core.Job | None = None,
        /,
        *,
        name: str = "",
        comment: str = "",
        application: Application | None = None,
        backend: Backend | None = None,
        splitter: Splitter | None = None,
        inputfiles: Sequence[str | os.PathLike[str]] | None = None,
        outputfiles: Sequence[str] | None = None,
        credentials: Sequence[_credentials.Credential] | None = None,
        postprocessors: Sequence[PostProcessor | str] | None = None,
        do_auto_resubmit: bool = False,
        retry: Retry | None = None,
    ) -> None:
        if prev_job is not None:
            if not isinstance(prev_job, _core.Job):
                raise JobSpecError("Job", f"Job() takes one positional argument, a job to copy, "
                                          f"not {type(prev_job).__name__}; give fields by name")
            source = _core.Job.copy(prev_job)  # Ganga's Job(j): a copy, its own times
            name = name or source.name
            comment = comment or source.comment
            application = source.application if application is None else application
            backend = source.backend if backend is None else backend
            splitter = source.splitter if splitter is None else splitter
            inputfiles = source.inputfiles if inputfiles is None else inputfiles
            outputfiles = source.outputfiles if outputfiles is None else outputfiles
            credentials = source.credentials if credentials is None else credentials
            postprocessors = source.postprocessors if postprocessors is None else postprocessors
            retry = source.retry if retry is None else retry
            do_auto_resubmit = do_auto_resubmit or source.do_auto_resubmit
        super().__init__(
            name=name, comment=comment, application=application, backend=backend,
            splitter=splitter, inputfiles=inputfiles, outputfiles=outputfiles,
            credentials=credentials, postprocessors=postprocessors,
            do_auto_resubmit=do_auto_resubmit, retry=retry,
        )
        _run(lambda engine: engine.add(self))

    @property
    def inputdir(self) -> Dir:  # type: ignore[override]
        """Where the job's input sandbox is kept, as Ganga's: a string ending in ``/``."""
        return Dir(super().inputdir)

    @property
    def outputdir(self) -> Dir:  # type: ignore[override]
        """Where stdout, stderr and the output files are kept, as Ganga's: a string ending in
        ``/`` (``j.outputdir + "stdout"``; ``j.outputdir / "stdout"`` gives a Path)."""
        return Dir(super().outputdir)

    @property
    def subjobs(self) -> SubjobSlice:  # type: ignore[override]
        """The subjobs, as Ganga's: ``j.subjobs(3)``, ``j.subjobs[3]``, ``len``, iteration,
        ``j.subjobs.select(status="failed")`` and collective ``kill()``, ``resubmit()``..."""
        return SubjobSlice(self, super().subjobs)

    def submit(self) -> Job:
        """Submit the job; returns once it (every subjob) is with its backend, as Ganga's, or
        held at the credential gate (the reason is printed).

        An invalid description (a missing executable, an input file that does not exist)
        raises :class:`~ganga_async.JobSpecError` and the job stays ``new``, editable.
        """
        _run(lambda engine: _submitted(engine, self))
        if self.status == Status.HELD:
            print(f"job {self.fqid} is held: {self.reason}", file=sys.stderr)
        return self

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job (every subjob) reaches a final status.

        Raises :class:`~ganga_async.WaitTimeoutError` once ``timeout`` seconds have passed; the
        job carries on regardless. Monitoring runs in the background whether or not you wait.
        """
        _run(lambda engine: engine.wait(self, timeout))
        return self

    def kill(self) -> None:
        """Kill the job (every active subjob), or this subjob; returns once it is killed, as
        Ganga's (or after ``[Local] kill_grace`` and a few seconds more, if the backend is slow
        to tell).

        Raises :class:`~ganga_async.JobStateError` when nothing is active (a new job was
        never submitted: there is nothing to kill).
        """
        _run(lambda engine: _killed(engine, self))

    def release(self) -> Job:
        """Let the job (every subjob its batch system holds, HTCondor's Held) or this subjob go
        on; as ``j.backend.release()``. Raises :class:`~ganga_async.JobStateError` when nothing
        is held by its backend."""
        _run(lambda engine: engine.release(self))
        return self

    def resubmit(self, *, statuses: Sequence[str | Status] | None = None) -> Job:
        """Submit again the subjobs in ``statuses``, or this final unsplit job or subjob. By
        default, as Ganga's: the failed subjobs, or every final one when
        ``config["Configuration"]["resubmitOnlyFailedSubjobs"]`` is false. Raises
        :class:`~ganga_async.JobStateError` when none qualifies."""
        if statuses is None:
            only_failed = config["Configuration"]["resubmitOnlyFailedSubjobs"]
            statuses = ("failed",) if only_failed else ("failed", "killed", "completed")
        chosen = statuses
        _run(lambda engine: engine.resubmit(self, statuses=chosen))
        return self

    def remove(self) -> None:
        """Kill the job if it is active, then delete it and its workspace; it leaves ``jobs``."""
        _run(lambda engine: engine.remove(self))

    def copy(self, unprepare: bool | None = None) -> Job:
        """A new job with the same description (deep-copied), stored at once with status
        ``new``; a subjob's copy is an unsplit job. A prepared application's copy references
        the same ShareDir; ``unprepare=True`` gives an unprepared copy (``None``:
        ``config["Preparable"]["unprepare_on_copy"]``)."""
        clone = adopt(super().copy(unprepare))
        _run(lambda engine: engine.add(clone))
        return clone

    def prepare(self, force: bool = False) -> Job:
        """Prepare the job's application (as ``j.application.prepare()``): copy the files it
        needs into a new ShareDir. Submitting prepares an unprepared job by itself."""
        _run(lambda engine: engine.prepare(self, force=force))
        return self

    def unprepare(self) -> Job:
        """Unprepare the job's application, releasing its ShareDir reference."""
        _run(lambda engine: engine.unprepare(self))
        return self

    def peek(self, filename: str = "") -> str:
        """As Ganga's: ``j.peek()`` lists the output (or working) directory, ``j.peek("stdout")``
        is what the job printed, ``j.peek("stderr")`` its errors. It never raises: a file that is
        not there (yet), or a job without a directory, is said so in one line."""
        try:
            return _Text(_run(lambda engine: engine.peek(self, filename)))
        except (FileNotFoundError, GangaAsyncError) as exc:
            return _Text(str(exc).split("\n", 1)[0])

    def merge(self, outputdir: str | None = None) -> list[str]:
        """Run the job's mergers now (by hand), into ``outputdir`` (default: the job's output
        directory, replacing earlier results); returns the files written. Raises
        :class:`~ganga_async.PostProcessError` saying why a merge cannot be done."""
        return [str(p) for p in _run(lambda engine: engine.merge(self, outputdir))]

    def __repr__(self) -> str:
        """Ganga's nested view of the job (``print(j)``, ``j`` at the prompt)."""
        return job_text(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(job_text(self))

    def _repr_html_(self) -> str:
        """The job as an HTML table, for Jupyter."""
        return job_html(self)

    def __dir__(self) -> list[str]:
        """What a user reads and calls (tab completion): fields, state and methods."""
        return sorted(name for name in {*super().__dir__()} if not name.startswith("_")
                      and name not in ("bind", "spec", "from_spec"))

    def force_status(self, status: str | Status, force: bool = False) -> None:
        """Force the job (all its subjobs), or this subjob, into ``"failed"`` or
        ``"completed"``, as Ganga's ``force_status``: active ones are killed at their backend
        first, unless ``force=True`` (then no attempt is made to kill them; they are only no
        longer monitored)."""
        _run(lambda engine: engine.force_status(self, status, kill=not force))


async def _subjob_counts(engine: Engine, job_ids: list[int]) -> dict[int, dict[str, int]]:
    """``{master id: {status: count}}`` of these masters' subjobs, in one read of the stored
    rows (queued changes written first)."""
    await engine.repository.flush()
    counts = await engine.repository.subjob_counts(job_ids)
    return {job_id: {str(Status.from_code(code)): n for code, n in by_code.items()}
            for job_id, by_code in counts.items()}


async def _submitted(engine: Engine, job: Job) -> None:
    """Submit ``job`` and return once it has left ``submitting`` (with its backend, held, or
    already further). Events wake the check; a short timeout re-checks if one was dropped."""
    async with engine.events() as events:
        await engine.submit(job)
        while job.status == Status.SUBMITTING:
            with anyio.move_on_after(_RECHECK):
                async for _ in events:
                    if job.status != Status.SUBMITTING:
                        break


async def _killed(engine: Engine, job: Job) -> None:
    """Kill ``job`` and return once it is final (at most the kill grace and a margin)."""
    await engine.kill(job)
    grace = float(engine.config["Local"]["kill_grace"]) + _KILL_MARGIN
    with contextlib.suppress(WaitTimeoutError):
        await engine.wait(job, timeout=grace)


class Dir(str):
    """A directory as Ganga gives it: its path as a string ending in ``/``, so that
    ``j.outputdir + "stdout"`` names a file in it; ``/`` joins as a :class:`~pathlib.Path`."""

    __slots__ = ()

    def __new__(cls, path: str | os.PathLike[str]) -> Dir:
        return super().__new__(cls, os.path.join(os.fspath(path), ""))

    def __truediv__(self, other: str | os.PathLike[str]) -> Path:
        return Path(self) / other

    def __fspath__(self) -> str:
        return str(self)


def adopt(job: _core.Job) -> Job:
    """Give a job the engine returned, and its master, the GPI methods; it stays the same object."""
    if job.master is not None:
        job.master.__class__ = Job
    job.__class__ = Job
    return cast(Job, job)


log = get_logger("ganga_async.gpi")

_RECHECK = 0.25
"""Seconds between checks of a submission's status when no event came (one may be dropped)."""

_KILL_MARGIN = 5.0
"""Seconds after the kill grace that kill() waits for the backend to report the end."""

_HEADERS = (*("fqid" if column == "id" else column for column in SUMMARY_COLUMNS), "subjob status")
"""Ganga's columns (``backend_id`` for its ``backend.actualCE``), with its ``subjob status``:
running/failed+killed/completing/completed subjobs."""


def _subjob_status(counts: dict[str, int] | None) -> str:
    if not counts:
        return ""
    get = counts.get
    return f"{get('running', 0)}/{get('failed', 0) + get('killed', 0)}/{get('completing', 0)}/" \
           f"{get('completed', 0)}"


class _Bulk:
    """Ganga's collective operations over the members of a selection."""

    def _members(self) -> Iterator[Job]:
        raise NotImplementedError

    def _each(self, verb: str, keep_going: bool) -> list[Any]:
        results = []
        for job in self._members():
            try:
                results.append(getattr(job, verb)())
            except GangaAsyncError as exc:
                if not keep_going:
                    raise
                log.warning(f"{verb} of job {job.fqid} failed: {exc}")
        return results

    def submit(self, keep_going: bool = False) -> None:
        """Submit every job of the selection."""
        self._each("submit", keep_going)

    def kill(self, keep_going: bool = False) -> None:
        """Kill every job (subjob) of the selection."""
        self._each("kill", keep_going)

    def resubmit(self, keep_going: bool = False) -> None:
        """Resubmit every job (subjob) of the selection."""
        self._each("resubmit", keep_going)

    def remove(self, keep_going: bool = False) -> None:
        """Remove every job of the selection."""
        self._each("remove", keep_going)

    def copy(self, keep_going: bool = False) -> JobSlice:
        """A copy of every job (subjob) of the selection, as a slice of the new jobs."""
        copies = self._each("copy", keep_going)
        return JobSlice([job.id for job in copies], "copies")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _table(title: str, rows: list[list[str]]) -> str:
    widths = [max(map(len, column)) for column in zip(_HEADERS, *rows, strict=True)]
    line = " | ".join(f"{{:>{width}}}" for width in widths).format
    header = line(*_HEADERS)
    count = f"{len(rows)} {'job' if len(rows) == 1 else 'jobs'}"
    return "\n".join([f"{title} ({count})", header, "-" * len(header), *(line(*r) for r in rows)])


def _cell(column: str, entry: dict[str, Any]) -> str:
    value = entry[column]
    if value is None or (column == "subjobs" and not value):
        return ""
    return str(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _plugin(value: Any) -> str | None:
    """A plugin filter given by name (``"Local"``) or as an object (``Local()``) or class."""
    if value is None or isinstance(value, str):
        return value
    return value.__name__ if isinstance(value, type) else type(value).__name__


class JobSlice(_Bulk):
    """A selection of stored jobs, as Ganga's registry slice (see the module's docstring)."""

    def __init__(self, ids: Sequence[int] | None, title: str) -> None:
        self._ids = None if ids is None else list(ids)
        self._title = title

    def _entries(self) -> list[dict[str, Any]]:
        return _run(lambda engine: engine.summary(ids=self._ids))

    def ids(self) -> list[int]:
        """The ids of the jobs in the selection, in order."""
        if self._ids is None:
            return _run(lambda engine: job_ids(engine.repository))
        return list(self._ids)

    def __call__(self, job_id: int | str) -> Job:
        """The job with this id, or the subjob with this fqid (``"3.17"``); raises
        :class:`~ganga_async.JobNotFoundError` when the selection has none."""
        if self._ids is not None and int(str(job_id).partition(".")[0]) not in self._ids:
            raise JobNotFoundError(f"no job {job_id} in {self._title}")
        return adopt(_run(lambda engine: engine.get(job_id)))

    def __getitem__(self, key: int | str | slice) -> Any:
        """By position, as Ganga documents it: ``jobs[0]`` the oldest, ``jobs[-1]`` the newest;
        ``jobs["name"]`` the one job of that name; a slice gives a slice (``jobs[2:5]``)."""
        ids = self.ids()
        if isinstance(key, slice):
            return JobSlice(ids[key], f"{self._title}[{key.start or ''}:{key.stop or ''}]")
        if isinstance(key, str):
            named = [e["id"] for e in self._entries() if e["name"] == key]
            if len(named) != 1:
                found = "is not unique" if named else "is not found"
                raise JobNotFoundError(f"a job named {key!r} {found} in {self._title}")
            return self(named[0])
        try:
            return self(ids[key])
        except IndexError:
            raise IndexError(f"{self._title} has {len(ids)} jobs; no position {key}") from None

    def __len__(self) -> int:
        return len(self.ids())

    def __iter__(self) -> Iterator[Job]:
        for job_id in self.ids():
            try:
                yield self(job_id)
            except JobNotFoundError:
                continue

    def _members(self) -> Iterator[Job]:
        return iter(self)

    def __contains__(self, item: object) -> bool:
        job_id = item.id if isinstance(item, _core.Job) else item
        return job_id in self.ids()

    def select(self, minid: int | None = None, maxid: int | None = None, *,
               status: str | Status | None = None, name: str | None = None,
               application: Any = None, backend: Any = None) -> JobSlice:
        """The jobs with ``minid <= id <= maxid``, in ``status``, whose name matches ``name``
        (wildcards ``*``, ``?``), running ``application`` on ``backend`` (plugin names or
        objects); all of them when nothing is given."""
        wanted = None if status is None else str(Status.parse(status))
        app, back = _plugin(application), _plugin(backend)
        ids = _run(lambda engine: select_job_ids(
            engine.repository, minid=minid, maxid=maxid,
            statuses=None if wanted is None else [wanted], name=name, application=app,
            backend=back))
        if self._ids is not None:
            chosen = set(ids)
            ids = [job_id for job_id in self._ids if job_id in chosen]
        given = {"minid": minid, "maxid": maxid, "status": wanted, "name": name,
                 "application": app, "backend": back}
        args = ", ".join(f"{k}={v!r}" for k, v in given.items() if v is not None)
        return JobSlice(ids, f"{self._title}.select({args})")

    def _rows(self) -> list[list[str]]:
        entries = self._entries()
        split = [e["id"] for e in entries if e["subjobs"]]
        counts = _run(lambda engine: _subjob_counts(engine, split)) if split else {}
        return [[str(e["id"]), e["status"], e["name"], str(e["subjobs"]) if e["subjobs"] else "",
                 e["application"], e["backend"], _text(e["backend_id"]), _text(e["comment"]),
                 _subjob_status(counts.get(e["id"])) if e["subjobs"] else ""]
                for e in entries]

    def __repr__(self) -> str:
        return _table(f"Registry Slice: {self._title}", self._rows())


class JobRegistry(JobSlice):
    """Every job in the repository, as Ganga's ``jobs``: ``jobs(3)`` is job 3 (the same object
    each time while it is loaded), ``jobs("3.17")`` its subjob 17, ``jobs[-1]`` the last one;
    its repr is a table of all jobs, read without loading any of them."""

    def __init__(self) -> None:
        super().__init__(None, "jobs")

    def __repr__(self) -> str:
        return _table("Registry: jobs", self._rows())


jobs = JobRegistry()
"""Every job in the repository: ``jobs(3)``, ``jobs[-1]``, ``jobs.select(status=...)``."""


class SubjobSlice(Sequence[Job], _Bulk):
    """The subjobs of a master (or a selection of them), as Ganga's ``j.subjobs``:
    ``j.subjobs(3)`` and ``j.subjobs[3]``, ``len``, iteration, ``counts()``,
    ``select(status="failed")`` and the collective operations."""

    def __init__(self, master: Job, subjobs: _core.SubjobList, indices: list[int] | None = None,
                 title: str | None = None) -> None:
        self._master = master
        self._subjobs = subjobs
        self._indices = indices
        self._title = title or f"jobs({master.fqid}).subjobs"

    def ids(self) -> list[int]:
        """The subjob ids (indices) in the selection."""
        return list(range(len(self._subjobs))) if self._indices is None else list(self._indices)

    def __len__(self) -> int:
        return len(self._subjobs) if self._indices is None else len(self._indices)

    def __call__(self, index: int) -> Job:
        """The subjob with this id."""
        if self._indices is not None and index not in self._indices:
            raise JobNotFoundError(f"no subjob {index} in {self._title}")
        return adopt(self._subjobs[index])

    def __getitem__(self, key: int | slice) -> Any:
        if self._indices is None and isinstance(key, int):
            return adopt(self._subjobs[key])
        ids = self.ids()
        if isinstance(key, slice):
            return SubjobSlice(self._master, self._subjobs, ids[key], self._title)
        try:
            return self(ids[key])
        except IndexError:
            raise IndexError(f"{self._title} has {len(ids)} subjobs; no position {key}") from None

    def __iter__(self) -> Iterator[Job]:
        for index in self.ids():
            yield adopt(self._subjobs[index])

    def _members(self) -> Iterator[Job]:
        return iter(self)

    def counts(self) -> dict[str, int]:
        """How many subjobs of the master are in each status, at no cost."""
        return self._subjobs.counts()

    def select(self, status: str | Status | None = None) -> SubjobSlice:
        """The subjobs in ``status`` (all when ``None``)."""
        chosen = self._subjobs.indices(status)
        if self._indices is not None:
            keep = set(self._indices)
            chosen = [i for i in chosen if i in keep]
        return SubjobSlice(self._master, self._subjobs, chosen,
                           f"{self._title}.select(status={status!s})")

    def __repr__(self) -> str:
        rows = []
        for sub in self:
            entry = {"id": sub.fqid, "status": sub.status, "name": sub.name, "subjobs": 0,
                     "application": sub.application.plugin_name,
                     "backend": sub.backend.plugin_name, "backend_id": sub.backend_id,
                     "comment": sub.comment}
            rows.append([*(_cell(column, entry) for column in SUMMARY_COLUMNS), ""])
        return _table(f"Registry Slice: {self._title}", rows)
