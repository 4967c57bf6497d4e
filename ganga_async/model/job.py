"""Jobs: the description a user fills in, and the state the engine keeps for it.

A :class:`Job` holds an application (what to run), a backend (where), an optional splitter (how
to cut it into subjobs), input files, output file patterns and the credentials it needs. Before
submission every field is editable and checked on assignment; once submitted only ``comment``
may change.

A job's state (status, times, ids, exit code, subjobs) is its
:class:`~ganga_async.model.record.JobRecord`, which the engine binds to the job when it stores
or loads it; the job only reads it. Subjobs are not stored as Job objects: a master's record
keeps a compact :class:`~ganga_async.model.subjobs.SubjobTable`, and indexing
``job.subjobs[i]`` builds a read-only Job view of subjob *i* on demand.

Edits of a stored job reach its engine through the :class:`JobObserver` bound with the record.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

from .._component import Component, build_component, check_value, freeze, owner_of, set_owner, thaw
from .._exceptions import JobSpecError, JobStateError
from .._workspace import output_dir, work_dir
from ..applications.base import Application
from ..backends.base import Backend
from ..config import Config, load_config
from ..credentials.base import Credential
from ..postprocessors.base import PostProcessor, PostprocessorResult, ordered
from ..splitters.base import Overrides, Splitter
from ..states import Status
from .machine import attempt_of
from .record import JobRecord
from .retry import Attempt, Retry
from .subjobs import SubjobColumns, SubjobTable
from .times import JobTimes

__all__ = ["Job", "JobInfo", "JobTimes", "JobObserver", "SubjobList", "apply_overrides",
           "freeze_description", "thaw_description"]

COMPONENT_BASES: dict[str, type[Application | Backend | Splitter]] = {
    "application": Application, "backend": Backend, "splitter": Splitter,
}
"""The plugin base class of each component field of a job, by field (and category) name."""

_EDITABLE_WHEN_SUBMITTED = frozenset({"comment"})
_COMPONENT_FIELDS = frozenset({"application", "backend", "splitter", "credentials", "postprocessors"})
FIELDS = ("name", "comment", "application", "backend", "splitter", "inputfiles", "outputfiles",
          "credentials", "postprocessors", "do_auto_resubmit", "retry")


SUMMARY_COLUMNS = ("id", "status", "name", "subjobs", "application", "backend", "backend_id",
                   "comment")
"""The keys of each row of the jobs summary (:meth:`~ganga_async.Engine.summary`), in table
order (here, not in the engine, for the faces that print it without one)."""


@dataclasses.dataclass
class JobInfo:
    """Bookkeeping Ganga users find under ``job.info``."""

    submit_counter: int = 0


class JobObserver(Protocol):
    """What a job tells the engine that stores it: an edit of a field (``comment`` at any time,
    any field of a new job), or ``"spec"`` when a field of one of its components was assigned.
    ``config`` is the engine's configuration."""

    config: Config

    def edited(self, job: Job, name: str, previous: Any) -> None:
        """Field ``name`` of stored ``job`` changed from ``previous`` (None for ``"spec"``);
        called from any thread."""


class Job:
    """A job: ``Job(name=..., application=..., backend=..., splitter=..., inputfiles=[...],
    outputfiles=[...], credentials=[...])``.

    The defaults are Ganga's: ``Executable(exe="echo", args=["Hello World"])`` on ``Local()``.
    Every assignment is checked; an unknown attribute or a value of the wrong type raises
    :class:`~ganga_async.JobSpecError` naming the field. Submit it with
    :meth:`Engine.submit <ganga_async.Engine.submit>` (or ``job.submit()`` in the plain-Python
    interface). Once submitted the job is read-only except ``comment``.

    ``credentials`` lists what the job needs (``[VomsProxy(vo="lhcb"), AFSToken()]``), on top of
    what its backend and ``[Credentials] defaults`` require; a job whose credentials are short
    waits in status ``held`` instead of failing.

    Read-only state: ``id``, ``fqid`` (``"3"`` or ``"3.17"`` for a subjob), ``status``,
    ``time`` (when each status was entered), ``info.submit_counter``, ``backend_id`` (the
    backend's own id), ``exitcode``, ``reason`` (why a job failed or waits), ``subjobs``,
    ``master``, ``inputdir``, ``outputdir`` and ``workdir``.
    """

    name: str
    comment: str
    application: Application
    backend: Backend
    splitter: Splitter | None
    inputfiles: list[str]
    outputfiles: list[str]
    credentials: list[Credential]
    postprocessors: list[PostProcessor]
    do_auto_resubmit: bool
    retry: Retry | None

    _record: JobRecord
    _observer: JobObserver | None
    _master: Job | None
    _index: int | None

    def __init__(
        self,
        *,
        name: str = "",
        comment: str = "",
        application: Application | None = None,
        backend: Backend | None = None,
        splitter: Splitter | None = None,
        inputfiles: Sequence[str | os.PathLike[str]] | None = None,
        outputfiles: Sequence[str] | None = None,
        credentials: Sequence[Credential] | None = None,
        postprocessors: Sequence[PostProcessor | str] | None = None,
        do_auto_resubmit: bool = False,
        retry: Retry | None = None,
    ) -> None:
        from ..applications.executable import Executable
        from ..backends.local import Local

        for key, value in (("_record", JobRecord()), ("_observer", None), ("_master", None),
                           ("_index", None)):
            object.__setattr__(self, key, value)
        self.name = name
        self.comment = comment
        self.application = application if application is not None else Executable()
        self.backend = backend if backend is not None else Local()
        self.splitter = splitter
        self.inputfiles = _as_list(inputfiles)
        self.outputfiles = _as_list(outputfiles)
        self.credentials = _as_list(credentials)
        self.postprocessors = _as_list(postprocessors)
        self.do_auto_resubmit = do_auto_resubmit
        self.retry = retry

    _TYPES: ClassVar[dict[str, Any]] = {
        "name": str, "comment": str, "application": Application, "backend": Backend,
        "splitter": Splitter | None, "inputfiles": list[str], "outputfiles": list[str],
        "credentials": list[Credential], "postprocessors": list[PostProcessor],
        "do_auto_resubmit": bool, "retry": Retry | None,
    }

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name not in self._TYPES:
            raise JobSpecError(name, f"Job has no attribute {name!r}; valid: {', '.join(FIELDS)}")
        if self._record.status is not Status.NEW and name not in _EDITABLE_WHEN_SUBMITTED:
            raise JobStateError(
                f"job {self.fqid} is {self._record.status}: only comment may change; "
                "make an editable copy with job.copy()"
            )
        if self._master is not None:
            raise JobStateError(f"subjob {self.fqid} is read-only; change the master job instead")
        value = check_value(_by_name(name, value), self._TYPES[name], name)
        if name == "postprocessors":
            value = ordered(value)
        if name in _COMPONENT_FIELDS:
            value = self._own(name, value)
        previous = self.__dict__.get(name)
        if name == "outputfiles":
            for i, pattern in enumerate(value):
                if os.path.isabs(pattern) or ".." in Path(pattern).parts:
                    raise JobSpecError(
                        f"outputfiles[{i}]",
                        f"{pattern!r} must be a pattern relative to the working directory",
                    )
        object.__setattr__(self, name, value)
        if previous is not None and previous is not value:
            for component in previous if isinstance(previous, list) else [previous]:
                if isinstance(component, Component) and owner_of(component) is self:
                    set_owner(component, None)
        if self._observer is not None and previous is not value:
            self._observer.edited(self, name, previous)

    def _own(self, name: str, value: Any) -> Any:
        """``value`` (a component, or a list of credentials) made this job's: a component that
        belongs to another job is copied first (Ganga copies on assignment), so that editing
        or submitting one job never changes another."""
        if value is None:
            return None
        owned = []
        for component in value if isinstance(value, list) else [value]:
            owner = owner_of(component)
            if owner is not None and owner is not self:
                component = component.copy()
            set_owner(component, self, self._component_edited)
            owned.append(component)
        return owned if isinstance(value, list) else owned[0]

    def _component_edited(self) -> None:
        """A field of one of this job's components was assigned: the stored description
        changed."""
        if self._observer is not None and self._master is None:
            self._observer.edited(self, "spec", None)

    def bind(self, record: JobRecord, observer: JobObserver) -> None:
        """Attach the state an engine keeps for this job when it stores or loads it (the
        engine's business: a user never calls this). A job is bound once; its description is
        read-only unless the record says ``new``."""
        if self._record.id is not None or self._master is not None:
            raise JobStateError(f"job {self.fqid} already belongs to an engine")
        object.__setattr__(self, "_record", record)
        object.__setattr__(self, "_observer", observer)
        if record.status is not Status.NEW:
            freeze_description(self)

    # -- identity and state -------------------------------------------------------------

    @property
    def id(self) -> int | None:
        """The repository id (``None`` until the job is added to an engine); a subjob's index."""
        return self._index if self._master is not None else self._record.id

    @property
    def fqid(self) -> str:
        """The fully qualified id: ``"3"``, or ``"3.17"`` for subjob 17 of job 3."""
        if self._master is not None:
            return f"{self._master.fqid}.{self._index}"
        return "?" if self._record.id is None else str(self._record.id)

    @property
    def master(self) -> Job | None:
        return self._master

    @property
    def status(self) -> Status:
        return self._record.status_of(self._index)

    @property
    def info(self) -> JobInfo:
        record, i = self._record, self._index
        if i is None or record.table is None:
            return JobInfo(submit_counter=record.submit_counter)
        return JobInfo(submit_counter=record.table.submit_counter[i])

    @property
    def time(self) -> JobTimes:
        """When the (sub)job entered each status, as Ganga's ``job.time`` (see
        :class:`~ganga_async.model.times.JobTimes`)."""
        return JobTimes(self._record, self._index, type(self.backend).__name__)

    @property
    def backend_id(self) -> str | None:
        record, i = self._record, self._index
        return record.backend_id if i is None or record.table is None else record.table.backend_id[i]

    @property
    def exitcode(self) -> int | None:
        record, i = self._record, self._index
        return record.exitcode if i is None or record.table is None else record.table.exitcode[i]

    @property
    def reason(self) -> str | None:
        record, i = self._record, self._index
        return record.reason if i is None or record.table is None else record.table.reason.get(i)

    @property
    def attempts(self) -> list[Attempt]:
        """Every run of the (sub)job, first to last (the last is the current one), each with
        its backend id, exit code, reason and times; retries and resubmissions add to it."""
        record, i = self._record, self._index
        earlier = list(record.attempts.get(i, []))
        if self.info.submit_counter:
            earlier.append(attempt_of(record, i))
        return earlier

    @property
    def postprocessor_results(self) -> list[PostprocessorResult]:
        """What the postprocessors did to this (sub)job when it last ended, in the order
        they ran: each with the postprocessor, ``ok``, and the files merged or why it failed."""
        return list(self._record.results.get(self._index, []))

    @property
    def subjobs(self) -> SubjobList:
        """The subjobs, built on demand: ``job.subjobs[0]``, ``len(job.subjobs)``, iteration."""
        if self._master is not None:
            return SubjobList(self.fqid, None, self._subjob)
        return SubjobList(self.fqid, self._record.table, self._subjob)

    def _subjob(self, index: int) -> Job:
        """A read-only view of subjob ``index``, of the master's own class: the master's
        fields with the splitter's overrides applied, reading its state from the master's
        record."""
        table = self._record.table
        if table is None:
            raise JobStateError(f"job {self.fqid} has no subjobs")
        raw = table.overrides[index]
        fields = apply_overrides(self, json.loads(raw) if raw else {})
        sub = type(self).__new__(type(self))
        for key, value in (("_record", self._record), ("_observer", self._observer),
                           ("_master", self), ("_index", index), ("splitter", None),
                           *fields.items()):
            object.__setattr__(sub, key, value)
        return sub

    # -- directories --------------------------------------------------------------------

    @property
    def inputdir(self) -> Path:
        """Where the job's input sandbox is kept; subjobs share their master's."""
        return self._record.jobdir / "input"

    @property
    def outputdir(self) -> Path:
        """Where stdout, stderr and the copied-back output files are kept: a subjob's own
        directory (``3/17``), or ``output`` in a job's directory (``3/output``)."""
        return output_dir(self._record.jobdir, self._index)

    @property
    def workdir(self) -> Path:
        """Where the (sub)job's working directory is kept when its backend keeps it (Slurm;
        Local with ``[Local] remove_workdir = false``). Otherwise a (sub)job runs in a scratch
        directory under its job's ``work/``, emptied once its outputs are copied back."""
        return work_dir(self._record.jobdir, self._index)

    # -- description --------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        """The serialisable description (everything but name, comment and state)."""
        return {
            "application": self.application.to_dict(),
            "backend": self.backend.to_dict(),
            "splitter": self.splitter.to_dict() if self.splitter is not None else None,
            "inputfiles": list(self.inputfiles),
            "outputfiles": list(self.outputfiles),
            "credentials": [c.to_dict() for c in self.credentials],
            "postprocessors": [p.to_dict() for p in self.postprocessors],
            "do_auto_resubmit": self.do_auto_resubmit,
            "retry": self.retry.to_dict() if self.retry is not None else None,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], *, name: str = "", comment: str = "") -> Job:
        """A new job from the form :meth:`spec` gives, with ``name`` and ``comment``."""
        return cls(
            name=name,
            comment=comment,
            application=build_component(Application, spec["application"]),
            backend=build_component(Backend, spec["backend"]),
            splitter=build_component(Splitter, spec["splitter"]) if spec.get("splitter") else None,
            inputfiles=spec.get("inputfiles", []),
            outputfiles=spec.get("outputfiles", []),
            credentials=[build_component(Credential, c) for c in spec.get("credentials", [])],
            postprocessors=[build_component(PostProcessor, p)
                            for p in spec.get("postprocessors", [])],
            do_auto_resubmit=spec.get("do_auto_resubmit", False),
            retry=Retry.from_dict(spec["retry"]) if spec.get("retry") else None,
        )

    def copy(self, unprepare: bool | None = None) -> Job:
        """A new job in status ``new`` with the same description (deep-copied).

        A prepared application's copy references the same ShareDir (its count goes up); with
        ``unprepare=True`` the copy is unprepared. ``None`` means ``[Preparable]
        unprepare_on_copy`` of the engine's configuration (or the loaded one).
        """
        if unprepare is None:
            config = self._observer.config if self._observer is not None else load_config()
            unprepare = bool(config["Preparable"]["unprepare_on_copy"])
        source = self._master if self._master is not None else self
        clone = type(self).__new__(type(self))
        Job.__init__(
            clone,
            name=self.name,
            comment=self.comment,
            application=self.application.copy(unprepare=unprepare),
            backend=self.backend.copy(),
            splitter=source.splitter.copy() if self._master is None and source.splitter else None,
            inputfiles=list(self.inputfiles),
            outputfiles=list(self.outputfiles),
            credentials=[c.copy() for c in self.credentials],
            postprocessors=[p.copy() for p in self.postprocessors],
            do_auto_resubmit=self.do_auto_resubmit,
            retry=self.retry,
        )
        return clone

    def __eq__(self, other: object) -> bool:
        """Ganga's equality: the same status and description (name, comment, id and times
        are not compared), so a new job equals its copy."""
        if other is self:
            return True
        if not isinstance(other, Job):
            return NotImplemented
        return self.status == other.status and self.spec() == other.spec()

    __hash__ = object.__hash__  # by identity, as a job's fqid (Ganga's hash) is unique

    def __repr__(self) -> str:
        parts = [f"fqid={self.fqid}", f"status={self.status}"]
        if self.name:
            parts.append(f"name={self.name!r}")
        parts.append(f"application={self.application!r}")
        parts.append(f"backend={self.backend!r}")
        if self._master is None and self.splitter is not None:
            parts.append(f"splitter={type(self.splitter).__name__}, subjobs={len(self.subjobs)}")
        return f"Job({', '.join(parts)})"


def _as_list(value: Any) -> Any:
    """A list field as given to the constructor: None is empty, a sequence a new list, and
    anything else (a lone string, a number) is left for the field's check to refuse by name."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else value


def _by_name(field: str, value: Any) -> Any:
    """Ganga's plugin names for components: ``backend="Local"`` is ``Local()``,
    ``splitter="ArgSplitter"`` is ``ArgSplitter()``."""
    if field in COMPONENT_BASES and isinstance(value, str):
        return build_component(COMPONENT_BASES[field], {"type": value})
    if field == "postprocessors" and isinstance(value, list | tuple):
        return [build_component(PostProcessor, {"type": v}) if isinstance(v, str) else v
                for v in value]
    return value


def freeze_description(job: Job) -> None:
    """Make a job's components read-only: it left ``new`` (the fields of the job itself are
    guarded by its status)."""
    reason = f"job {job.fqid} is {job.status}"
    for component in _components(job):
        freeze(component, reason)


def thaw_description(job: Job) -> None:
    """Make a job's components editable again: it went back to ``new``."""
    for component in _components(job):
        thaw(component)


def _components(job: Job) -> list[Any]:
    found: list[Any] = [job.application, job.backend, *job.credentials, *job.postprocessors]
    if job.splitter is not None:
        found.append(job.splitter)
    return found


def apply_overrides(master: Job, overrides: Overrides) -> dict[str, Any]:
    """The fields of a subjob: the master's, with the splitter's overrides applied."""
    fields: dict[str, Any] = {
        "name": master.name, "comment": master.comment, "application": master.application,
        "backend": master.backend, "inputfiles": master.inputfiles,
        "outputfiles": master.outputfiles, "credentials": master.credentials,
        "postprocessors": master.postprocessors, "do_auto_resubmit": master.do_auto_resubmit,
        "retry": master.retry,
    }
    changed: dict[str, dict[str, Any]] = {}
    for path, value in overrides.items():
        head, _, rest = path.partition(".")
        if rest:
            changed.setdefault(head, {})[rest] = value
        else:
            fields[head] = value
    for head, values in changed.items():
        # The splitter's values were checked against these fields when the job was submitted.
        component = _shallow_copy(fields[head])
        for name, value in values.items():
            object.__setattr__(component, name, value)
        fields[head] = component
    return fields


def _shallow_copy(component: Any) -> Any:
    """``copy.copy`` for a component, several times faster (one per subjob submitted)."""
    if not hasattr(component, "__dict__"):
        return copy.copy(component)
    twin = object.__new__(type(component))
    twin.__dict__.update(component.__dict__)
    return twin


class SubjobList(Sequence[Job]):
    """The subjobs of a master, each built on demand from the compact table."""

    def __init__(self, fqid: str, table: SubjobTable | None, build: Callable[[int], Job]) -> None:
        self._fqid = fqid
        self._table = table
        self._build = build

    def __len__(self) -> int:
        return 0 if self._table is None else len(self._table)

    def __getitem__(self, index: int) -> Job:  # type: ignore[override]
        size = len(self)
        if isinstance(index, slice):
            raise TypeError("subjobs cannot be sliced; iterate or use select(status=...)")
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"job {self._fqid} has {size} subjobs; no subjob {index}")
        return self._build(index)

    def counts(self) -> dict[str, int]:
        """How many subjobs are in each status (``{"completed": 998, "failed": 2}``), at no cost."""
        if self._table is None:
            return {}
        return {str(Status.from_code(code)): n for code, n in enumerate(self._table.counts) if n}

    def columns(self) -> SubjobColumns:
        """A copy of every subjob's status, backend id, reason, submissions and times, taken
        now, without building any subjob (:class:`~.subjobs.SubjobColumns`)."""
        return (self._table if self._table is not None else SubjobTable()).snapshot()

    def __call__(self, index: int) -> Job:
        """The subjob with this id (its index), as Ganga's ``j.subjobs(3)``."""
        return self[index]

    def indices(self, status: str | Status | None = None) -> list[int]:
        """The ids of the subjobs in ``status`` (all when ``None``), without building them."""
        if self._table is None:
            return []
        if status is None:
            return list(range(len(self._table)))
        wanted = Status.parse(status).code
        return [i for i, c in enumerate(self._table.status) if c == wanted]

    def select(self, status: str | Status | None = None) -> list[Job]:
        """The subjobs in ``status`` (all when ``None``)."""
        return [self._build(i) for i in self.indices(status)]

    def __repr__(self) -> str:
        table = self._table
        if table is None or not len(table):
            return "[]"
        summary = ", ".join(f"{Status.from_code(c)}: {n}" for c, n in enumerate(table.counts) if n)
        return f"<{len(table)} subjobs of job {self._fqid}: {summary}>"
