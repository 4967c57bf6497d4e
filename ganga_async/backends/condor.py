"""HTCondor: run jobs in an HTCondor pool, a split job as one cluster of procs.

The settings a user puts on a job are :class:`Condor`; :class:`CondorSystem` reads job ClassAds
into our statuses (no IO); :class:`CondorDriver` is the shared batch driver
(:mod:`ganga_async.backends._batch`) talking to the schedd through the ``htcondor2`` bindings
(``pip install 'ganga-async[condor]'``), each blocking call in a worker thread:

- a submission is one ``Schedd.submit(..., count=N)``: a cluster of N procs, each running the
  job wrapper on its line of the manifest (``arguments = $(ProcId)``), named
  ``JobBatchName = ga.<job>-<token>`` so that a submission whose reply was lost is found;
- one sweep is one ``Schedd.query`` for every active cluster, one ``Schedd.history`` for the
  procs that left the queue, and the wrapper's status files for those that ended;
- a kill is one ``Schedd.act(JobAction.Remove, ...)`` for whole clusters or listed procs, a
  release one ``Schedd.act(JobAction.Release, ...)``.

The pool is found the way every HTCondor tool finds it (``CONDOR_CONFIG``, ``_CONDOR_*``), and
authentication is the pool's (IDTOKENS, Kerberos, ...).
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import anyio

from .._component import owner_of
from .._exceptions import BackendError, BackendUnavailableError, JobSpecError, JobStateError
from .._log import get_logger
from ..states import Status
from ._batch import BatchDriver, BatchSystem, CommandResult, SubmitRequest
from .base import Backend, BackendStatus, DriverContext, Handle

if TYPE_CHECKING:
    from .._component import JobView

__all__ = ["Condor", "CondorDriver", "CondorSystem"]

log = get_logger(__name__)

RESERVED = ("executable", "arguments", "output", "error", "log", "queue", "initialdir", "batch_name",
            "jobbatchname", "transfer_executable", "universe")
"""Submit commands the engine sets itself to keep track of the job."""

_FIELDS = {"requirements": "requirements", "request_cpus": "request_cpus",
           "request_memory": "request_memory", "request_disk": "request_disk",
           "accounting_group": "accounting_group"}

PROJECTION = ["ClusterId", "ProcId", "JobStatus", "HoldReason", "ExitCode", "ExitBySignal", "ExitSignal",
              "JobCurrentStartDate", "CompletionDate", "EnteredCurrentStatus", "RemoveReason"]
"""The job attributes a sweep asks for."""


@dataclasses.dataclass(kw_only=True, repr=False)
class Condor(Backend):
    """Run each (sub)job in an HTCondor pool; a split job is one cluster of procs.

    ``requirements`` (a ClassAd expression), ``request_cpus``, ``request_memory`` (MiB, or with
    a unit: ``"2GB"``), ``request_disk`` (KiB, or ``"1GB"``), ``universe`` (``"vanilla"``) and
    ``accounting_group`` become the submit commands of the same names when set;
    ``extra_submit`` adds any others (``{"+MaxRuntime": "3600"}``), except those the engine's
    bookkeeping depends on (``executable``, ``arguments``, ``output``, ``error``, ``log``,
    ``queue``, ``initialdir``, ``batch_name``, ``transfer_executable``). ``max_running`` caps
    how many procs of one cluster are in the queue at once (``max_materialize``; 0: no cap).

    The schedd is found through the pool's configuration (``CONDOR_CONFIG``); the gangadir must
    be on a file system the execute nodes share. See docs/condor.md.
    """

    submit_batch: ClassVar[int] = 10_000

    requirements: str = ""
    request_cpus: int = 0
    request_memory: str = ""
    request_disk: str = ""
    universe: str = "vanilla"
    accounting_group: str = ""
    extra_submit: dict[str, str] = dataclasses.field(default_factory=dict)
    max_running: int = 0

    def validate(self, job: JobView) -> None:
        if self.request_cpus < 0:
            raise JobSpecError("backend.request_cpus", "must be 0 (the pool's default) or more")
        if self.max_running < 0:
            raise JobSpecError("backend.max_running", "must be 0 (no cap) or more")
        if self.universe not in ("vanilla", "docker", "container", "parallel", "java", "vm"):
            raise JobSpecError("backend.universe", f"{self.universe!r} is not a universe the job "
                               "wrapper can run in; give 'vanilla' (the default)")
        for name in ("requirements", "request_memory", "request_disk", "accounting_group"):
            value = getattr(self, name)
            if "\n" in value:
                raise JobSpecError(f"backend.{name}", "must be one line")
        for key, value in self.extra_submit.items():
            bare = key.strip().lstrip("+").lower()
            if not isinstance(value, str) or not key.strip() or "\n" in key + str(value):
                raise JobSpecError(f"backend.extra_submit[{key!r}]",
                                   "give submit commands as one-line strings, e.g. {'+MaxRuntime': '3600'}")
            if bare in RESERVED or bare.startswith("queue"):
                raise JobSpecError(
                    f"backend.extra_submit[{key!r}]",
                    f"{key!r} is refused: the engine sets it itself to keep track of the job; "
                    "remove it (the job's outputs are in its outputdir)")

    def release(self) -> None:
        """Release the procs HTCondor holds of this backend's job (Ganga's
        ``j.backend.release()``), through the plain-Python interface's session
        (``ganga_async.gpi``); with the async API, call ``engine.release(job)``."""
        job = owner_of(self)
        release = getattr(job, "release", None)
        if release is None:
            raise JobStateError("j.backend.release() works on a job of the plain-Python interface "
                                "(ganga_async.gpi); with the async API call await engine.release(job)")
        release()

    @classmethod
    def make_driver(cls, context: DriverContext) -> CondorDriver:
        return CondorDriver(context)


class CondorSystem(BatchSystem):
    """HTCondor's job states and ClassAds read into our statuses; the rest of the batch
    contract (the job wrapper's script) for the driver. It runs nothing: :class:`CondorDriver`
    talks to the schedd."""

    name = "Condor"
    task_separator = "."
    sparse_tasks = False
    default_max_array = 100_000
    states: ClassVar[Mapping[str, tuple[Status, str | None]]] = {
        "1": (Status.SUBMITTED, None),                      # Idle
        "2": (Status.RUNNING, None),                        # Running
        "3": (Status.KILLED, "removed in HTCondor (condor_rm)"),
        "4": (Status.COMPLETED, None),                      # Completed: by its exit code
        "5": (Status.HELD, "held by HTCondor"),
        "6": (Status.RUNNING, None),                        # Transferring output
        "7": (Status.RUNNING, None),                        # Suspended
    }

    def single_id(self, job: str) -> str:
        return f"{job}.0"

    def script(self, python: str, wrapper: Path, manifest: Path, array: bool) -> str:
        return (
            "#!/bin/sh\n"
            "# Written by ganga-async: runs one task of the manifest (the proc id) through the job wrapper.\n"
            f'exec {shlex.join([python, "-I", "-S", str(wrapper), str(manifest)])} "${{1:-0}}"\n'
        )

    def read_ad(self, ad: Mapping[str, Any]) -> tuple[str, BackendStatus] | None:
        """One job ClassAd (from the queue or the history) as ``(cluster.proc, status)``."""
        try:
            native = f"{int(ad['ClusterId'])}.{int(ad['ProcId'])}"
            state = str(int(ad["JobStatus"]))
        except (KeyError, TypeError, ValueError):
            return None
        started = _time(ad.get("JobCurrentStartDate"))
        observed = self.observe(state, started=started)
        status = observed.status
        if status is Status.HELD:
            why = str(ad.get("HoldReason") or "").strip()
            return native, dataclasses.replace(
                observed, reason=f"held by HTCondor: {why}" if why else "held by HTCondor")
        if status is Status.COMPLETED:
            code = _exitcode(ad)
            observed = BackendStatus(Status.COMPLETED if code == 0 else Status.FAILED, exitcode=code,
                                     started=started, ended=_time(ad.get("CompletionDate")))
        elif status is Status.KILLED:
            why = str(ad.get("RemoveReason") or "").strip()
            observed = dataclasses.replace(
                observed, ended=_time(ad.get("EnteredCurrentStatus")),
                reason=f"removed in HTCondor: {why}" if why else observed.reason)
        return native, observed

    def read_ads(self, ads: Sequence[Mapping[str, Any]]) -> dict[str, BackendStatus]:
        found: dict[str, BackendStatus] = {}
        for ad in ads:
            read = self.read_ad(ad)
            if read is not None:
                found[read[0]] = read[1]
        return found

    def submit_description(self, request: SubmitRequest) -> dict[str, str]:
        """The submit description of ``request``: the engine's commands, then the user's."""
        settings = cast(Condor, request.backend)
        log_name = request.log.name.replace("%a", "$(ProcId)")
        description = {
            "universe": settings.universe,
            "executable": str(request.script),
            "transfer_executable": "false",
            "arguments": "$(ProcId)",
            "initialdir": str(request.directory),
            "output": log_name.removesuffix(".log") + ".out",
            "error": log_name.removesuffix(".log") + ".err",
            "batch_name": request.name,
        }
        for field, command in _FIELDS.items():
            value = getattr(settings, field)
            if value:
                description[command] = str(value)
        if settings.max_running:
            description["max_materialize"] = str(settings.max_running)
        description.update(settings.extra_submit)
        return description


def _time(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _exitcode(ad: Mapping[str, Any]) -> int | None:
    """The exit code of a completed proc (negative: the signal that ended it)."""
    if ad.get("ExitBySignal") is True:
        try:
            return -int(ad["ExitSignal"])
        except (KeyError, TypeError, ValueError):
            return None
    try:
        return int(ad["ExitCode"])
    except (KeyError, TypeError, ValueError):
        return None


_TRANSIENT = re.compile(r"connect|locate|timed? ?out|communicat|refused|unavailable|try again|"
                        r"failed to (send|receive|read)|no route|reset by peer|authenticat",
                        re.IGNORECASE)

T = TypeVar("T")


def _clusters(job_ids: Sequence[str]) -> str:
    return f"member(ClusterId, {{{', '.join(str(int(j)) for j in job_ids)}}})"


class CondorDriver(BatchDriver):
    """The batch driver, talking to the schedd through the ``htcondor2`` bindings.

    Each binding call runs in a worker thread within ``[Condor] command_timeout``, one at a
    time. A schedd that does not answer (or answers that it cannot be reached) makes the call
    raise :class:`~ganga_async.BackendUnavailableError`: a sweep is tried again, a submission
    retried. ``schedd`` replaces the real schedd in unit tests.
    """

    def __init__(self, context: DriverContext, schedd: Any = None) -> None:
        super().__init__(context, CondorSystem(), "Condor", runner=_no_commands)
        self.condor: CondorSystem = CondorSystem()
        self._schedd = schedd
        self._calls = anyio.CapacityLimiter(max(1, int(context.config["Condor"]["max_commands"])))
        self.calls = 0

    def _connect(self) -> Any:
        if self._schedd is None:
            try:
                import htcondor2
            except ImportError as exc:
                raise BackendError("the Condor backend needs the htcondor2 bindings: "
                                   "pip install 'ganga-async[condor]'") from exc
            self._schedd = htcondor2.Schedd()
        return self._schedd

    async def _call(self, what: str, work: Callable[[Any], T]) -> T:
        """Run ``work(schedd)`` in a worker thread, within ``command_timeout``."""
        seconds = float(self._option("command_timeout"))

        def call() -> T:
            try:
                return work(self._connect())
            except BackendError:
                raise
            except Exception as exc:  # the bindings raise HTCondorException and plain errors
                message = f"HTCondor {what}: {' '.join(str(exc).split())}"
                if _TRANSIENT.search(str(exc)):
                    self._schedd = None  # find the schedd again: it may have moved
                    raise BackendUnavailableError(message) from exc
                raise BackendError(message) from exc

        self.calls += 1
        try:
            with anyio.fail_after(seconds):
                return await anyio.to_thread.run_sync(call, abandon_on_cancel=True,
                                                      limiter=self._calls)
        except TimeoutError:
            raise BackendUnavailableError(f"the HTCondor schedd did not answer {what} within "
                                          f"{seconds:g} s") from None

    # -- the batch driver's IO, through the bindings ----------------------------------------

    async def max_array(self) -> int:
        return self.condor.default_max_array

    async def _query(self, job_ids: list[str]) -> dict[str, BackendStatus]:
        found: dict[str, BackendStatus] = {}
        for start in range(0, len(job_ids), 500):
            constraint = _clusters(job_ids[start:start + 500])

            def query(schedd: Any, constraint: str = constraint) -> list[Any]:
                return list(schedd.query(constraint, PROJECTION))

            found.update(self.condor.read_ads(await self._call("query", query)))
        return found

    async def _history(self, job_ids: list[str]) -> dict[str, BackendStatus]:
        """The history of these clusters' procs that left the queue; procs of a cluster still
        in the queue that are not there yet (``max_materialize``) are queued."""
        found: dict[str, BackendStatus] = {}
        wanted = set(job_ids)
        entries = [e for e in self.tracked.values() if e.job in wanted]
        for start in range(0, len(job_ids), 500):
            chunk = set(job_ids[start:start + 500])
            count = max(1, sum(1 for e in entries if e.job in chunk))
            constraint = _clusters(sorted(chunk))

            def history(schedd: Any, constraint: str = constraint, count: int = count) -> list[Any]:
                return list(schedd.history(constraint, PROJECTION, match=count))

            found.update(self.condor.read_ads(await self._call("history", history)))
        waiting = await self._unmaterialized([e.handle.native_id for e in entries
                                              if e.handle.native_id not in found])
        for native in waiting:
            found[native] = BackendStatus(Status.SUBMITTED)
        return found

    async def _unmaterialized(self, natives: list[str]) -> list[str]:
        """Those of ``natives`` whose cluster is still being materialized (``max_materialize``):
        its procs above the highest one in the queue are still to come."""
        if not natives:
            return []
        clusters = sorted({n.partition(".")[0] for n in natives})
        ads = await self._call("query", lambda schedd: schedd.query(
            f"{_clusters(clusters)} && JobMaterializeLimit isnt undefined", ["ClusterId", "ProcId"]))
        highest: dict[str, int] = {}
        for ad in ads:
            cluster, proc = str(ad["ClusterId"]), int(ad["ProcId"])
            highest[cluster] = max(highest.get(cluster, -1), proc)
        return [n for n in natives
                if n.partition(".")[0] in highest and int(n.partition(".")[2]) > highest[n.partition(".")[0]]]

    async def _submit_once(self, request: SubmitRequest) -> tuple[str | None, str]:
        description = self.condor.submit_description(request)
        count = _count(request.array) if request.array else 1

        def submit(schedd: Any) -> str:
            import htcondor2
            return str(schedd.submit(htcondor2.Submit(description), count=count).cluster())

        try:
            return await self._call("submit", submit), ""
        except BackendUnavailableError as exc:
            if "did not answer" in str(exc):
                raise  # it may have been made
            return None, str(exc)

    async def _find(self, name: str) -> str | None:
        constraint = f"JobBatchName == {_quote(name)}"
        for what in ("query", "history"):
            def look(schedd: Any, what: str = what) -> list[Any]:
                if what == "query":
                    return list(schedd.query(constraint, ["ClusterId"], limit=1))
                return list(schedd.history(constraint, ["ClusterId"], match=1))
            ads = await self._call(what, look)
            if ads:
                return str(int(ads[0]["ClusterId"]))
        return None

    async def _cancel(self, natives: list[str]) -> None:
        await self._act("Remove", natives)

    async def _act(self, action: str, natives: list[str]) -> None:
        def act(schedd: Any) -> Any:
            import htcondor2
            return schedd.act(getattr(htcondor2.JobAction, action), list(natives))

        result = await self._call(action.lower(), act)
        log.info(f"{action.lower()} requested", backend="Condor", jobs=len(natives),
                 result=str(result).replace("\n", " ")[:200])

    async def release(self, handles: Sequence[Handle]) -> None:
        """Release these held (sub)jobs, whole clusters or listed procs in one action."""
        natives = self._targets(handles)
        if natives:
            await self._act("Release", natives)


async def _no_commands(argv: Sequence[str], seconds: float) -> CommandResult:
    raise BackendError(f"the Condor backend runs no commands ({argv[0]}): it uses the bindings")


def _count(ranges: str) -> int:
    total = 0
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        total += int(last or first) - int(first) + 1
    return total


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
