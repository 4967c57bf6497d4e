"""The Condor driver: the shared batch driver, its IO through a schedd client in worker threads."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio

from ..._exceptions import BackendError, BackendUnavailableError
from ..._log import get_logger
from ...states import Status
from .._batch import BatchDriver, CommandResult, SubmitRequest
from ..base import BackendStatus, DriverContext, Handle
from ._client import BindingsClient, Client, CommandsClient, bindings_available
from ._system import PROJECTION, CondorSystem

__all__ = ["CondorDriver"]

log = get_logger(__name__)

_TRANSIENT = re.compile(r"connect|locate|timed? ?out|communicat|refused|unavailable|try again|fetch|secman|"
                        r"failed to (send|receive|read)|no route|reset by peer|authenticat",
                        re.IGNORECASE)

T = TypeVar("T")


class _Unanswered(BackendUnavailableError):
    """The schedd did not answer in time: what was asked may have been done."""


def _clusters(job_ids: Sequence[str]) -> str:
    return f"member(ClusterId, {{{', '.join(str(int(j)) for j in job_ids)}}})"


class CondorDriver(BatchDriver):
    """The batch driver, talking to the schedd through a :class:`~._client.Client`: the
    ``htcondor2`` bindings, or HTCondor's command-line tools where they are missing (``[Condor]
    client``).

    Each call runs in a worker thread within ``[Condor] command_timeout``, ``max_commands`` at
    once. A schedd that does not answer (or answers that it cannot be reached) makes the call
    raise :class:`~ganga_async.BackendUnavailableError`: a sweep is tried again, a submission
    retried. ``schedd`` replaces the client in unit tests.
    """

    def __init__(self, context: DriverContext, schedd: Client | None = None) -> None:
        self.condor: CondorSystem = CondorSystem()
        super().__init__(context, self.condor, "Condor", runner=_no_commands)
        self._schedd = schedd
        self._injected = schedd is not None
        self._calls = anyio.CapacityLimiter(max(1, int(context.config["Condor"]["max_commands"])))
        self.calls = 0

    def _connect(self) -> Client:
        if self._schedd is None:
            choice = str(self._option("client"))
            if choice == "bindings" or (choice == "auto" and bindings_available()):
                try:
                    self._schedd = BindingsClient()
                except ImportError as exc:
                    raise BackendError("the Condor backend's [Condor] client = 'bindings' needs "
                                       "htcondor2: pip install 'ganga-async[condor]'") from exc
            else:
                self._schedd = CommandsClient(float(self._option("command_timeout")))
        return self._schedd

    async def _call(self, what: str, work: Callable[[Client], T]) -> T:
        """Run ``work(client)`` in a worker thread, within ``command_timeout``."""
        seconds = float(self._option("command_timeout"))

        def call() -> T:
            try:
                return work(self._connect())
            except BackendError:
                raise
            except TimeoutError as exc:
                raise _Unanswered(f"the HTCondor schedd did not answer {what}: {exc}") from exc
            except Exception as exc:  # the bindings raise HTCondorException and plain errors
                message = f"HTCondor {what}: {' '.join(str(exc).split())}"
                if _TRANSIENT.search(str(exc)):
                    if not self._injected:
                        self._schedd = None  # find the schedd again: it may have moved
                    raise BackendUnavailableError(message) from exc
                raise BackendError(message) from exc

        self.calls += 1
        try:
            with anyio.fail_after(seconds):
                return await anyio.to_thread.run_sync(call, abandon_on_cancel=True,
                                                      limiter=self._calls)
        except TimeoutError:
            raise _Unanswered(f"the HTCondor schedd did not answer {what} within {seconds:g} s") from None

    # -- the batch driver's IO, through the bindings ----------------------------------------

    async def max_array(self) -> int:
        return self.condor.default_max_array

    async def _query(self, job_ids: list[str]) -> dict[str, BackendStatus]:
        found: dict[str, BackendStatus] = {}
        for start in range(0, len(job_ids), 500):
            constraint = _clusters(job_ids[start:start + 500])

            def query(schedd: Client, constraint: str = constraint) -> Sequence[Mapping[str, Any]]:
                return schedd.query(constraint, PROJECTION)

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

            def history(schedd: Client, constraint: str = constraint,
                        count: int = count) -> Sequence[Mapping[str, Any]]:
                return schedd.history(constraint, PROJECTION, match=count)

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
        constraint = f"{_clusters(sorted({n.partition('.')[0] for n in natives}))} && " \
                     "JobMaterializeLimit isnt undefined"

        def query(schedd: Client) -> Sequence[Mapping[str, Any]]:
            return schedd.query(constraint, ["ClusterId", "ProcId"])

        highest: dict[str, int] = {}
        for ad in await self._call("query", query):
            cluster = str(ad["ClusterId"])
            highest[cluster] = max(highest.get(cluster, -1), int(ad["ProcId"]))
        waiting = []
        for native in natives:
            cluster, _, proc = native.partition(".")
            if cluster in highest and int(proc) > highest[cluster]:
                waiting.append(native)
        return waiting

    async def _submit_once(self, request: SubmitRequest) -> tuple[str | None, str]:
        description = self.condor.submit_description(request)
        count = _count(request.array) if request.array else 1

        def submit(schedd: Client) -> str:
            return str(schedd.submit(description, count))

        try:
            return await self._call("submit", submit), ""
        except _Unanswered:
            raise  # it may have been made: looked for by its batch name before another try
        except BackendUnavailableError as exc:
            return None, str(exc)

    async def _find(self, name: str) -> str | None:
        constraint = f"JobBatchName == {_quote(name)}"

        def in_queue(schedd: Client) -> Sequence[Mapping[str, Any]]:
            return schedd.query(constraint, ["ClusterId"], limit=1)

        def in_history(schedd: Client) -> Sequence[Mapping[str, Any]]:
            return schedd.history(constraint, ["ClusterId"], match=1)

        for what, look in (("query", in_queue), ("history", in_history)):
            ads = await self._call(what, look)
            if ads:
                return str(int(ads[0]["ClusterId"]))
        return None

    async def _cancel(self, natives: list[str]) -> None:
        try:
            await self._act("Remove", natives)
        except BackendUnavailableError:
            raise
        except BackendError as exc:  # some were gone already: their end comes as news
            log.warning("removal reported a problem", backend="Condor", error=str(exc))

    async def _act(self, action: str, natives: list[str]) -> None:
        def act(schedd: Client) -> None:
            schedd.act(action, list(natives))

        await self._call(action.lower(), act)
        log.info(f"{action.lower()} requested", backend="Condor", jobs=len(natives))

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
