"""Jobs: the description a user fills in, and the state the engine keeps for it.

A :class:`Job` holds an application (what to run), a backend (where), an optional splitter (how
to cut it into subjobs), input files, output file patterns and the credentials it needs. Before
submission every field is editable and checked on assignment; once submitted only ``comment``
may change.

Subjobs are not stored as Job objects. A master keeps a compact :class:`SubjobTable` (status
codes, backend ids, exit codes, timestamps and the splitter's overrides as JSON text); indexing
``job.subjobs[i]`` builds a read-only Job view of subjob *i* on demand.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from array import array
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .._component import build_component, check_value, freeze
from .._exceptions import JobSpecError, JobStateError
from .._workspace import output_dir, work_dir
from ..applications.base import Application
from ..backends.base import Backend
from ..credentials.base import Credential
from ..splitters.base import Overrides, Splitter
from ..states import FINAL, Status

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = ["Job", "JobInfo", "JobTimes", "SubjobTable", "SubjobList", "output_dir", "work_dir"]

COMPONENT_BASES: dict[str, type[Application | Backend | Splitter]] = {
    "application": Application, "backend": Backend, "splitter": Splitter,
}
"""The plugin base class of each component field of a job, by field (and category) name."""

_EDITABLE_WHEN_SUBMITTED = frozenset({"comment"})
FIELDS = ("name", "comment", "application", "backend", "splitter", "inputfiles", "outputfiles",
          "credentials")


@dataclasses.dataclass
class JobInfo:
    """Bookkeeping Ganga users find under ``job.info``."""

    submit_counter: int = 0


class JobTimes(Mapping[str, datetime]):
    """When a job entered each status: ``job.time["submitted"]`` or ``job.time.submitted()``."""

    def __init__(self, stamps: Mapping[str, float]) -> None:
        self._stamps = dict(stamps)

    @property
    def timestamps(self) -> dict[str, datetime]:
        return {k: datetime.fromtimestamp(v) for k, v in self._stamps.items()}

    def __getitem__(self, key: str) -> datetime:
        return datetime.fromtimestamp(self._stamps[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._stamps)

    def __len__(self) -> int:
        return len(self._stamps)

    def __getattr__(self, name: str) -> Any:
        if name in Status._value2member_map_:
            return lambda: self.get(name)
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"JobTimes({ {k: v.isoformat(' ', 'seconds') for k, v in self.timestamps.items()} })"


class SubjobTable:
    """The state of a master's subjobs, held in parallel compact arrays (about 150 bytes each).

    ``counts[status.code]`` is kept in step with ``status`` so the master's derived status
    costs nothing to recompute.
    """

    __slots__ = ("status", "overrides", "backend_id", "exitcode", "reason", "submit_counter",
                 "t_submitted", "t_running", "t_final", "counts")

    def __init__(self) -> None:
        self.status = bytearray()
        self.overrides: list[str | None] = []
        self.backend_id: list[str | None] = []
        self.exitcode: list[int | None] = []
        self.reason: dict[int, str] = {}
        self.submit_counter = array("H")
        self.t_submitted = array("d")
        self.t_running = array("d")
        self.t_final = array("d")
        self.counts = [0] * len(Status)

    def __len__(self) -> int:
        return len(self.status)

    def append(self, status: Status, overrides: str | None, submit_counter: int = 0,
               backend_id: str | None = None, exitcode: int | None = None, reason: str | None = None,
               t_submitted: float = 0.0, t_running: float = 0.0, t_final: float = 0.0) -> None:
        index = len(self.status)
        self.status.append(status.code)
        self.counts[status.code] += 1
        self.overrides.append(overrides)
        self.backend_id.append(backend_id)
        self.exitcode.append(exitcode)
        if reason:
            self.reason[index] = reason
        self.submit_counter.append(submit_counter)
        self.t_submitted.append(t_submitted)
        self.t_running.append(t_running)
        self.t_final.append(t_final)

    def get_status(self, index: int) -> Status:
        return Status.from_code(self.status[index])

    def set_status(self, index: int, status: Status) -> Status:
        """Record ``status`` for subjob ``index`` and return the previous one."""
        old = self.status[index]
        self.status[index] = status.code
        self.counts[old] -= 1
        self.counts[status.code] += 1
        return Status.from_code(old)

    def indices(self, statuses: frozenset[Status] | set[Status]) -> list[int]:
        codes = bytes(s.code for s in statuses)
        return [i for i, code in enumerate(self.status) if code in codes]

    def all_final(self) -> bool:
        return sum(self.counts[s.code] for s in FINAL) == len(self.status)


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

    _id: int | None
    _status: Status
    _master: Job | None
    _index: int | None
    _table: SubjobTable | None
    _times: dict[str, float]
    _info: JobInfo
    _backend_id: str | None
    _exitcode: int | None
    _reason: str | None
    _workspace: Path | None
    _engine: Engine | None

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
    ) -> None:
        from ..applications.executable import Executable
        from ..backends.local import Local

        state: dict[str, Any] = {
            "_id": None, "_status": Status.NEW, "_master": None, "_index": None, "_table": None,
            "_times": {}, "_info": JobInfo(), "_backend_id": None, "_exitcode": None,
            "_reason": None, "_workspace": None, "_engine": None,
        }
        for key, value in state.items():
            object.__setattr__(self, key, value)
        self.name = name
        self.comment = comment
        self.application = application if application is not None else Executable()
        self.backend = backend if backend is not None else Local()
        self.splitter = splitter
        self.inputfiles = [os.fspath(path) for path in inputfiles or []]
        self.outputfiles = list(outputfiles or [])
        self.credentials = list(credentials or [])

    _TYPES: ClassVar[dict[str, Any]] = {
        "name": str, "comment": str, "application": Application, "backend": Backend,
        "splitter": Splitter | None, "inputfiles": list[str], "outputfiles": list[str],
        "credentials": list[Credential],
    }

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name not in self._TYPES:
            raise JobSpecError(name, f"Job has no attribute {name!r}; valid: {', '.join(FIELDS)}")
        if self._status is not Status.NEW and name not in _EDITABLE_WHEN_SUBMITTED:
            raise JobStateError(
                f"job {self.fqid} is {self._status}: only comment may change; "
                "make an editable copy with job.copy()"
            )
        if self._master is not None:
            raise JobStateError(f"subjob {self.fqid} is read-only; change the master job instead")
        value = check_value(value, self._TYPES[name], name)
        previous = self.__dict__.get(name)
        if name == "outputfiles":
            for i, pattern in enumerate(value):
                if os.path.isabs(pattern) or ".." in Path(pattern).parts:
                    raise JobSpecError(
                        f"outputfiles[{i}]",
                        f"{pattern!r} must be a pattern relative to the working directory",
                    )
        object.__setattr__(self, name, value)
        if name == "comment" and self._engine is not None:
            self._engine._on_comment(self)
        elif name == "application" and self._engine is not None and previous is not value:
            self._engine._on_application(self, previous)

    # -- identity and state -------------------------------------------------------------

    @property
    def id(self) -> int | None:
        """The repository id (``None`` until the job is added to an engine); a subjob's index."""
        return self._index if self._master is not None else self._id

    @property
    def fqid(self) -> str:
        """The fully qualified id: ``"3"``, or ``"3.17"`` for subjob 17 of job 3."""
        if self._master is not None:
            return f"{self._master.fqid}.{self._index}"
        return "?" if self._id is None else str(self._id)

    @property
    def master(self) -> Job | None:
        return self._master

    def _subjob_row(self) -> tuple[SubjobTable, int] | None:
        """The master's table and this subjob's index, or None for a master."""
        if self._master is None or self._index is None:
            return None
        table = self._master._table
        if table is None:
            raise JobStateError(f"job {self._master.fqid} has no subjobs")
        return table, self._index

    @property
    def status(self) -> Status:
        row = self._subjob_row()
        return self._status if row is None else row[0].get_status(row[1])

    @property
    def info(self) -> JobInfo:
        row = self._subjob_row()
        return self._info if row is None else JobInfo(submit_counter=row[0].submit_counter[row[1]])

    @property
    def time(self) -> JobTimes:
        row = self._subjob_row()
        if row is None or self._master is None:
            return JobTimes(self._times)
        table, i = row
        master_new = self._master._times.get("new")
        stamps = {"new": master_new} if master_new else {}
        if table.t_submitted[i]:
            stamps["submitted"] = table.t_submitted[i]
        if table.t_running[i]:
            stamps["running"] = table.t_running[i]
        if table.t_final[i]:
            stamps[str(table.get_status(i))] = table.t_final[i]
        return JobTimes(stamps)

    @property
    def backend_id(self) -> str | None:
        row = self._subjob_row()
        return self._backend_id if row is None else row[0].backend_id[row[1]]

    @property
    def exitcode(self) -> int | None:
        row = self._subjob_row()
        return self._exitcode if row is None else row[0].exitcode[row[1]]

    @property
    def reason(self) -> str | None:
        row = self._subjob_row()
        return self._reason if row is None else row[0].reason.get(row[1])

    @property
    def subjobs(self) -> SubjobList:
        """The subjobs, built on demand: ``job.subjobs[0]``, ``len(job.subjobs)``, iteration."""
        return SubjobList(self)

    # -- directories --------------------------------------------------------------------

    def _dir(self) -> Path:
        if self._master is not None:
            return self._master._dir() / str(self._index)
        if self._workspace is None or self._id is None:
            raise JobStateError("the job has no workspace until it is added to an engine")
        return self._workspace / str(self._id)

    @property
    def inputdir(self) -> Path:
        """Where the job's input sandbox is kept; subjobs share their master's."""
        if self._master is not None:
            return self._master.inputdir
        return self._dir() / "input"

    @property
    def outputdir(self) -> Path:
        """Where stdout, stderr and the copied-back output files are kept: a subjob's own
        directory (``3/17``), or ``output`` in a job's directory (``3/output``)."""
        if self._master is not None:
            return output_dir(self._master._dir(), self._index)
        return output_dir(self._dir(), None)

    @property
    def workdir(self) -> Path:
        """Where the (sub)job's working directory is kept when its backend keeps it (Slurm;
        Local with ``[Local] remove_workdir = false``). Otherwise a (sub)job runs in a scratch
        directory under its job's ``work/``, emptied once its outputs are copied back."""
        if self._master is not None:
            return work_dir(self._master._dir(), self._index)
        return work_dir(self._dir(), None)

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
        )

    def copy(self, unprepare: bool | None = None) -> Job:
        """A new job in status ``new`` with the same description (deep-copied).

        A prepared application's copy references the same ShareDir (its count goes up); with
        ``unprepare=True`` the copy is unprepared. ``None`` means ``[Preparable]
        unprepare_on_copy`` of the engine's configuration (or the loaded one).
        """
        if unprepare is None:
            from ..config import load_config

            config = self._engine.config if self._engine is not None else load_config()
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
        )
        return clone

    def _freeze(self) -> None:
        reason = f"job {self.fqid} is {self._status}"
        freeze(self.application, reason)
        freeze(self.backend, reason)
        if self.splitter is not None:
            freeze(self.splitter, reason)
        for credential in self.credentials:
            freeze(credential, reason)

    def __repr__(self) -> str:
        parts = [f"fqid={self.fqid}", f"status={self.status}"]
        if self.name:
            parts.append(f"name={self.name!r}")
        parts.append(f"application={self.application!r}")
        parts.append(f"backend={self.backend!r}")
        if self._master is None and self.splitter is not None:
            parts.append(f"splitter={type(self.splitter).__name__}, subjobs={len(self.subjobs)}")
        return f"Job({', '.join(parts)})"


def apply_overrides(master: Job, overrides: Overrides) -> dict[str, Any]:
    """The fields of a subjob: the master's, with the splitter's overrides applied."""
    fields: dict[str, Any] = {
        "name": master.name, "comment": master.comment, "application": master.application,
        "backend": master.backend, "inputfiles": master.inputfiles,
        "outputfiles": master.outputfiles, "credentials": master.credentials,
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


def make_subjob(master: Job, index: int) -> Job:
    """A read-only Job view of subjob ``index`` of ``master``."""
    table = master._table
    if table is None:
        raise JobStateError(f"job {master.fqid} has no subjobs")
    raw = table.overrides[index]
    fields = apply_overrides(master, json.loads(raw) if raw else {})
    sub = Job.__new__(Job)
    state: dict[str, Any] = {
        "_id": master._id, "_status": Status.NEW, "_master": master, "_index": index,
        "_table": None, "_times": {}, "_info": JobInfo(), "_backend_id": None, "_exitcode": None,
        "_reason": None, "_workspace": master._workspace, "_engine": master._engine,
        "splitter": None,
    }
    for key, value in state.items():
        object.__setattr__(sub, key, value)
    for key, value in fields.items():
        object.__setattr__(sub, key, value)
    return sub


class SubjobList(Sequence[Job]):
    """The subjobs of a master, each built on demand from the compact table."""

    def __init__(self, master: Job) -> None:
        self._master = master

    def __len__(self) -> int:
        table = self._master._table
        return 0 if table is None else len(table)

    def __getitem__(self, index: int) -> Job:  # type: ignore[override]
        size = len(self)
        if isinstance(index, slice):
            raise TypeError("subjobs cannot be sliced; iterate or use select(status=...)")
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"job {self._master.fqid} has {size} subjobs; no subjob {index}")
        return make_subjob(self._master, index)

    def counts(self) -> dict[str, int]:
        """How many subjobs are in each status (``{"completed": 998, "failed": 2}``), at no cost."""
        table = self._master._table
        if table is None:
            return {}
        return {str(Status.from_code(code)): n for code, n in enumerate(table.counts) if n}

    def select(self, status: str | Status | None = None) -> list[Job]:
        """The subjobs in ``status`` (all when ``None``)."""
        table = self._master._table
        if table is None:
            return []
        if status is None:
            return list(self)
        wanted = Status.parse(status).code
        return [make_subjob(self._master, i) for i, c in enumerate(table.status) if c == wanted]

    def __repr__(self) -> str:
        table = self._master._table
        if table is None or not len(table):
            return "[]"
        summary = ", ".join(f"{Status.from_code(c)}: {n}" for c, n in enumerate(table.counts) if n)
        return f"<{len(table)} subjobs of job {self._master.fqid}: {summary}>"

