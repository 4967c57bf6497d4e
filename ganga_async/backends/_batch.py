"""What every batch backend shares: running its commands, submitting arrays, polling, states.

A batch backend is two small things, kept apart from the IO:

- a :class:`BatchSystem`: builds the argv of each command (submit, query, history, kill,
  find by name, read the configuration) and parses what they print into
  :class:`~ganga_async.backends.BackendStatus` values, through its table of native states;
- the :class:`BatchDriver` here runs those commands (through :class:`CommandRunner`: no shell,
  a timeout, a per-backend limit on commands at once), writes what the worker nodes read (the
  job wrapper ``workers/job_wrapper.py`` and a JSON Lines manifest of the tasks, next to the
  job), polls adaptively and decides each job's status from the batch system's view and the
  wrapper's status file (:func:`resolve`), once for every batch system.

Polling: the driver keeps its own register of the jobs it watches. It sweeps them with one
query (plus one history query for the jobs that left the queue) ``poll_min`` seconds after a
submission or a kill, and stretches the interval by half each time nothing changed, up to
``poll_max``. Changes reach the engine through :meth:`BatchDriver.updates`. The engine's own
``status()`` calls register jobs an earlier engine submitted and tell the driver which jobs the
engine still cares about.

Faults: a command that times out or a batch system that cannot be reached
(:class:`~ganga_async.BackendUnavailableError`) makes a sweep retry later and a submission
retry for ``submit_retry`` seconds; a submission that timed out is first looked for by its
unique job name, so it is never made twice. A job the batch system no longer knows is decided
by its status file: ended, or alive while its heartbeat is fresh; otherwise it fails after
``forget_after`` seconds with a reason, never staying active forever.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import math
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskStatus

from .._exceptions import BackendError, BackendUnavailableError
from .._log import get_logger
from .._resources import shipped
from .._workspace import job_dir_of
from ..states import Status
from .base import Backend, BackendDriver, BackendStatus, DriverContext, Handle, SubmitUnit, final_status

__all__ = [
    "BatchDriver", "BatchSystem", "CommandResult", "CommandRunner", "HEARTBEAT_FILE", "STATUS_FILE",
    "SubmitRequest", "compact_ranges", "resolve",
]

STATUS_FILE = "__jobstatus__.json"
"""The job wrapper's record in a (sub)job's outputdir: pid, start, end, exit code, ``killed``
and ``error`` (the format is described in ``workers/job_wrapper.py``)."""

HEARTBEAT_FILE = "__heartbeat__"
"""Written by the job wrapper in the outputdir while the application runs: the last heartbeat."""

ACTIVE_NATIVE = frozenset({Status.SUBMITTED, Status.RUNNING})
_QUEUED = BackendStatus(Status.SUBMITTED)

log = get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class CommandResult:
    """What one batch command did."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def message(self) -> str:
        """The command's own words about what went wrong, on one line."""
        text = " ".join(line.strip() for line in (self.stderr or self.stdout).splitlines() if line.strip())
        return text or f"{self.argv[0]} exited with code {self.returncode}"


@dataclasses.dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One submission: a single job, or an array when ``array`` holds its task ids as ranges
    (``"0-999"``, ``"3,17-18"``). ``backend`` is the job's settings, for the system's own options."""

    name: str
    script: Path
    log: Path
    directory: Path
    array: str | None
    backend: Backend


class BatchSystem(abc.ABC):
    """The command builders and output parsers of one batch system; no IO of its own.

    ``states`` maps each native state name to our status and, for final states that are not a
    plain success or failure by exit code, the reason in words. The parsers give the batch
    system's view of each job as a :class:`~ganga_async.backends.BackendStatus` (:meth:`observe`),
    which :func:`resolve` weighs against the job wrapper's status file.
    """

    name: ClassVar[str]
    states: ClassVar[Mapping[str, tuple[Status, str | None]]]
    default_max_array: ClassVar[int] = 1000

    @abc.abstractmethod
    def script(self, python: str, wrapper: Path, manifest: Path, array: bool) -> str:
        """The batch script that runs the job wrapper for one task of ``manifest``."""

    @abc.abstractmethod
    def submit_argv(self, request: SubmitRequest) -> list[str]:
        """The command that submits ``request`` and prints the new job's id."""

    @abc.abstractmethod
    def parse_submit(self, result: CommandResult) -> str:
        """The id of the job (or array) that :meth:`submit_argv` made."""

    @abc.abstractmethod
    def query_argv(self, job_ids: Sequence[str]) -> list[str]:
        """One query of the queue for these jobs (every array task on its own line)."""

    @abc.abstractmethod
    def parse_query(self, result: CommandResult) -> dict[str, BackendStatus]:
        """What the query says of each job, keyed by native id (``1234`` or ``1234_17``); {} when
        none are known."""

    def history_argv(self, job_ids: Sequence[str]) -> list[str] | None:
        """The accounting query for jobs that left the queue, or None when there is none."""
        return None

    def parse_history(self, result: CommandResult) -> dict[str, BackendStatus]:
        return {}

    @abc.abstractmethod
    def kill_argv(self, native_ids: Sequence[str]) -> list[str]:
        """One command cancelling these jobs, arrays (``1234``) or array tasks (``1234_17``)."""

    @abc.abstractmethod
    def find_argv(self, name: str) -> list[list[str]]:
        """Commands that print the id of the job named ``name``, tried in order."""

    @abc.abstractmethod
    def parse_find(self, result: CommandResult) -> str | None:
        """The job id found by a :meth:`find_argv` command, or None."""

    @abc.abstractmethod
    def config_argv(self) -> list[str]:
        """The command that prints the system's configuration."""

    @abc.abstractmethod
    def parse_max_array(self, result: CommandResult) -> int:
        """How many tasks one array may hold (task ids run from 0 to this minus one)."""

    @abc.abstractmethod
    def is_transient(self, result: CommandResult) -> bool:
        """True when a failed command should be retried (the controller is down or restarting)."""

    def is_unknown_job(self, result: CommandResult) -> bool:
        """True when a failed query only means that none of the jobs is known any more."""
        return False

    def has_no_history(self, result: CommandResult) -> bool:
        """True when the history command failed because the site keeps no accounting."""
        return False

    def observe(self, state: str, *, exitcode: int | None = None, started: float | None = None,
                ended: float | None = None) -> BackendStatus:
        """Map a native state through :attr:`states` (an unknown state is ``unknown``)."""
        status, why = self.states.get(state, (Status.UNKNOWN, f"unknown {self.name} state {state}"))
        return BackendStatus(status, exitcode=exitcode, reason=why, started=started, ended=ended)


Runner = Callable[[Sequence[str], float], Awaitable[CommandResult]]


class CommandRunner:
    """Runs batch commands without a shell, each within ``seconds``, ``limit`` at once.

    A command that does not answer in time is killed and raises
    :class:`~ganga_async.BackendUnavailableError`; ``calls`` counts the commands run.
    """

    def __init__(self, limit: int) -> None:
        self._limit = anyio.Semaphore(max(1, limit))
        self.calls = 0

    async def __call__(self, argv: Sequence[str], seconds: float) -> CommandResult:
        async with self._limit:
            self.calls += 1
            try:
                with anyio.fail_after(seconds):
                    done = await anyio.run_process(list(argv), check=False, stdin=subprocess.DEVNULL)
            except TimeoutError:
                raise BackendUnavailableError(
                    f"{argv[0]} did not answer within {seconds:g} s") from None
            except OSError as exc:
                raise BackendError(
                    f"cannot run {argv[0]}: {exc.strerror or exc}; is it installed and on PATH?") from exc
        return CommandResult(list(argv), done.returncode, done.stdout.decode(errors="replace"),
                             done.stderr.decode(errors="replace"))


def compact_ranges(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` as ``"0-2,5,7-8"`` (indices sorted ascending)."""
    parts: list[str] = []
    start = prev = indices[0]
    for i in [*indices[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(parts)


def _final_from_record(record: Mapping[str, Any]) -> BackendStatus:
    """A final status from a wrapper's record that has ``end``."""
    code = record.get("exitcode")
    error = record.get("error")
    return final_status(code if isinstance(code, int) else None, bool(record.get("killed")),
                        str(error) if error else None, started=_num(record.get("start")),
                        ended=_num(record.get("end")))


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def resolve(
    native_id: str,
    seen: BackendStatus | None,
    record: Mapping[str, Any] | None,
    heartbeat: float | None,
    *,
    now: float,
    missing_since: float,
    forget_after: float,
    heartbeat_timeout: float,
) -> BackendStatus | None:
    """Decide one job's status from the batch system's view and the wrapper's record.

    The batch system says whether the job is queued, running or over and why it ended (a
    cancellation, a time limit, a node failure); the wrapper's status file has the last word on
    the exit code. A job the batch system no longer knows (``seen`` is None) is decided by the
    record alone: ended, or running while ``heartbeat`` is younger than ``heartbeat_timeout``;
    failing that it fails once it has been missing for ``forget_after`` seconds. None: no
    decision yet.
    """
    ended = record is not None and "end" in record
    if seen is not None and seen.status in ACTIVE_NATIVE:
        return BackendStatus(seen.status, started=seen.started)
    if seen is not None and seen.status is not Status.UNKNOWN:
        if not ended:
            code = seen.exitcode
            reason = seen.reason
            if seen.status is Status.FAILED and reason is None:
                reason = final_status(code, False, None).reason or "failed with exit code 0"
            if seen.status is Status.KILLED and record is None:
                reason = f"{reason} before it started" if reason else "cancelled before it started"
            return BackendStatus(seen.status, exitcode=code, reason=reason, started=seen.started,
                                 ended=seen.ended)
        assert record is not None
        mine = _final_from_record(record)
        if seen.status is Status.COMPLETED or (seen.status is Status.FAILED and seen.reason is None):
            return mine
        return BackendStatus(seen.status, exitcode=mine.exitcode, reason=seen.reason or mine.reason,
                             started=mine.started, ended=mine.ended)
    if ended:
        assert record is not None
        return _final_from_record(record)
    if record is not None and heartbeat is not None and now - heartbeat < heartbeat_timeout:
        return BackendStatus(Status.RUNNING, started=_num(record.get("start")))
    if now - missing_since < forget_after:
        return None
    if record is not None:
        last = heartbeat or _num(record.get("start"))
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else "?"
        return BackendStatus(
            Status.FAILED, started=_num(record.get("start")),
            reason=f"the batch system has no record of {native_id} any more and its job wrapper "
                   f"has been silent since {when}; its exit status cannot be known")
    return BackendStatus(
        Status.FAILED, reason=f"the batch system has no record of {native_id} and it never started")


class _Tracked:
    """A (sub)job the driver watches."""

    __slots__ = ("handle", "job", "committed", "missing_since", "last")

    def __init__(self, handle: Handle, committed: bool) -> None:
        self.handle = handle
        self.job = handle.native_id.partition("_")[0]
        self.committed = committed
        self.missing_since: float | None = None
        self.last: BackendStatus | None = None


class BatchDriver(BackendDriver):
    """The runtime of a batch backend: one instance per engine, for all its jobs.

    ``section`` names the configuration section with the backend's options (``python``,
    ``poll_min``, ``poll_max``, ``command_timeout``, ``max_commands``, ``submit_retry``,
    ``heartbeat``, ``forget_after``). ``runner`` replaces the real command runner in unit tests.
    """

    def __init__(self, context: DriverContext, system: BatchSystem, section: str,
                 runner: Runner | None = None) -> None:
        self._context = context
        self._system = system
        self._section = section
        options = context.config[section]
        self.runner: Runner = runner if runner is not None else CommandRunner(options["max_commands"])
        self._tracked: dict[str, _Tracked] = {}
        self._killed: set[str] = set()
        self._news: dict[str, BackendStatus] = {}
        self._news_ready = anyio.Event()
        self._wakeup = anyio.Event()
        self._sweep_lock = anyio.Lock()
        self._max_array: int | None = None
        self._no_history = False
        self._wrappers: set[Path] = set()

    def _option(self, name: str) -> Any:
        return self._context.config[self._section][name]

    async def _run(self, argv: Sequence[str]) -> CommandResult:
        return await self.runner(argv, float(self._option("command_timeout")))

    # -- polling --------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        interval = next_sweep = math.inf
        while True:
            wait = max(0.0, next_sweep - time.monotonic()) if self._tracked else math.inf
            with anyio.move_on_after(wait):
                await self._wakeup.wait()
            poll_min = float(self._option("poll_min"))
            if self._wakeup.is_set():
                self._wakeup = anyio.Event()
                interval = poll_min
                next_sweep = min(next_sweep, time.monotonic() + poll_min)
                continue
            if not self._tracked:
                next_sweep = math.inf
                continue
            try:
                changed = await self.poll() > 0
            except BackendError as exc:
                log.warning("status sweep failed; retrying", backend=self._system.name, error=str(exc))
                changed = False
            interval = poll_min if changed else min(interval * 1.5, float(self._option("poll_max")))
            next_sweep = time.monotonic() + interval

    def _publish(self, news: Mapping[str, BackendStatus]) -> None:
        if news:
            self._news.update(news)
            self._news_ready.set()

    async def updates(self) -> Mapping[str, BackendStatus]:
        await self._news_ready.wait()
        self._news_ready = anyio.Event()
        news, self._news = self._news, {}
        return news

    async def poll(self) -> int:
        """Sweep every job the driver watches now, outside the schedule; return how many changed."""
        async with self._sweep_lock:
            news = await self._observe(list(self._tracked.values()))
        self._publish(news)
        return len(news)

    async def _observe(self, entries: list[_Tracked]) -> dict[str, BackendStatus]:
        entries = [e for e in entries if e.job and self._tracked.get(e.handle.key) is e]
        if not entries:
            return {}
        seen = await self._query(sorted({e.job for e in entries}))
        missing = [e for e in entries if e.handle.native_id not in seen]
        if missing:
            seen.update(await self._history(sorted({e.job for e in missing})))
        now = time.time()
        to_read = [e for e in entries if seen.get(e.handle.native_id) is None
                   or seen[e.handle.native_id].status not in ACTIVE_NATIVE]
        records = (await anyio.to_thread.run_sync(_read_records, [e.handle.outputdir for e in to_read])
                   if to_read else {})
        forget_after = float(self._option("forget_after"))
        heartbeat_timeout = 3 * float(self._option("heartbeat"))
        news: dict[str, BackendStatus] = {}
        for entry in entries:
            native = entry.handle.native_id
            observed = seen.get(native)
            if observed is None:
                entry.missing_since = entry.missing_since or now
            else:
                entry.missing_since = None
            record, heartbeat = records.get(entry.handle.outputdir, (None, None))
            status = resolve(native, observed, record, heartbeat, now=now,
                             missing_since=entry.missing_since or now, forget_after=forget_after,
                             heartbeat_timeout=heartbeat_timeout)
            if status is None or status == entry.last:
                continue
            if status.status in (Status.FAILED, Status.KILLED) and entry.handle.key in self._killed:
                status = dataclasses.replace(status, status=Status.KILLED, reason="killed")
            entry.last = status
            news[entry.handle.key] = status
            if status.status not in ACTIVE_NATIVE:
                del self._tracked[entry.handle.key]
                self._killed.discard(entry.handle.key)
        return news

    async def _query(self, job_ids: list[str]) -> dict[str, BackendStatus]:
        found: dict[str, BackendStatus] = {}
        for start in range(0, len(job_ids), 500):
            result = await self._run(self._system.query_argv(job_ids[start:start + 500]))
            if result.returncode != 0:
                if self._system.is_unknown_job(result):
                    continue
                raise self._error(result)
            found.update(self._system.parse_query(result))
        return found

    async def _history(self, job_ids: list[str]) -> dict[str, BackendStatus]:
        if self._no_history:
            return {}
        found: dict[str, BackendStatus] = {}
        for start in range(0, len(job_ids), 500):
            argv = self._system.history_argv(job_ids[start:start + 500])
            if argv is None:
                return found
            result = await self._run(argv)
            if result.returncode != 0:
                if self._system.has_no_history(result):
                    log.info("no accounting: jobs that leave the queue are decided by their status files",
                             backend=self._system.name)
                    self._no_history = True
                    return found
                raise self._error(result)
            found.update(self._system.parse_history(result))
        return found

    def _error(self, result: CommandResult) -> BackendError:
        if self._system.is_transient(result):
            return BackendUnavailableError(result.message)
        return BackendError(result.message)

    # -- the contract ---------------------------------------------------------------------

    async def status(self, handles: Sequence[Handle]) -> Mapping[str, BackendStatus]:
        """Register the handles the driver does not watch yet and answer for those; news of the
        others come through :meth:`updates`. ``handles`` is every active job of this backend the
        engine cares about: jobs it no longer lists (removed, forced) are dropped."""
        wanted = {h.key for h in handles}
        for key in [k for k, e in self._tracked.items() if e.committed and k not in wanted]:
            del self._tracked[key]
        fresh = [h for h in handles if h.key not in self._tracked]
        if not fresh:
            return {}
        located = await self._locate([h for h in fresh if not h.native_id])
        result: dict[str, BackendStatus] = {}
        entries = []
        for handle in fresh:
            if not handle.native_id:
                if handle.key not in located:
                    result[handle.key] = BackendStatus(Status.NEW, reason="never submitted")
                    continue
                handle = dataclasses.replace(handle, native_id=located[handle.key])
            entry = self._tracked[handle.key] = _Tracked(handle, committed=True)
            entries.append(entry)
        if entries:
            try:
                async with self._sweep_lock:
                    news = await self._observe(entries)
            except BackendError as exc:
                log.warning("status query failed; retrying", backend=self._system.name, error=str(exc))
                news = {}
            for entry in entries:
                status = news.get(entry.handle.key)
                if status is None and entry.handle.key in located:
                    status = BackendStatus(Status.SUBMITTED)
                if status is not None:
                    entry.last = status
                    result[entry.handle.key] = dataclasses.replace(status, native_id=entry.handle.native_id)
            self._wakeup.set()
        return result

    async def kill(self, handles: Sequence[Handle]) -> None:
        keys = {h.key for h in handles if h.native_id}
        if not keys:
            return
        natives: list[str] = []
        by_job: dict[str, list[str]] = {}
        for handle in handles:
            if handle.native_id:
                by_job.setdefault(handle.native_id.partition("_")[0], []).append(handle.native_id)
        for job, ids in by_job.items():
            others = [e for e in self._tracked.values() if e.job == job and e.handle.key not in keys]
            natives.extend([job] if "_" in ids[0] and not others else ids)
        self._killed |= keys
        result = await self._run(self._system.kill_argv(natives))
        self._wakeup.set()
        if result.returncode != 0:
            if self._system.is_transient(result):
                raise BackendUnavailableError(result.message)
            log.warning("cancel reported a problem", backend=self._system.name, error=result.message)

    async def forget(self, handles: Sequence[Handle]) -> None:
        """Remove the status files the job wrapper wrote in these (sub)jobs' earlier runs."""
        await anyio.to_thread.run_sync(_remove_status_files, [h.outputdir for h in handles])

    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        results: list[str | BaseException] = [BackendError("not submitted")] * len(units)
        groups: dict[str, list[int]] = {}
        settings: dict[int, str] = {}
        for position, unit in enumerate(units):
            text = settings.get(id(unit.backend))
            if text is None:
                text = settings[id(unit.backend)] = json.dumps(unit.backend.to_dict(), sort_keys=True)
            groups.setdefault(f"{unit.job_id}|{unit.index is None}|{text}", []).append(position)
        fresh: list[_Tracked] = []
        for positions in groups.values():
            chosen = [units[p] for p in positions]
            try:
                ids = await self._submit_group(chosen)
            except BackendError as exc:
                log.warning("submission refused", backend=self._system.name, error=str(exc))
                for position in positions:
                    results[position] = exc
                continue
            for position, unit, native in zip(positions, chosen, ids, strict=True):
                results[position] = native
                entry = _Tracked(Handle(unit.key, native, unit.outputdir), committed=False)
                entry.last = _QUEUED
                self._tracked[unit.key] = entry
                fresh.append(entry)
        for entry in fresh:
            entry.committed = True
        if fresh:
            self._wakeup.set()
        return results

    # -- submission -----------------------------------------------------------------------

    async def max_array(self) -> int:
        """How many tasks one array may hold, read from the batch system once (the system's
        default when it cannot tell)."""
        if self._max_array is None:
            try:
                result = await self._run(self._system.config_argv())
                self._max_array = self._system.parse_max_array(result)
            except (BackendError, ValueError) as exc:
                log.warning("cannot read the array size limit; using the default",
                            backend=self._system.name, error=str(exc))
                self._max_array = self._system.default_max_array
        return self._max_array

    async def _submit_group(self, units: list[SubmitUnit]) -> list[str]:
        """Submit units that share their job and settings: one job, or as few arrays as fit."""
        folder = job_dir_of(units[0].outputdir) / self._system.name.lower()
        wrapper = await self._ensure_wrapper(folder)
        if units[0].index is None:
            return [await self._submit_array(folder, wrapper, units, None)]
        limit = await self.max_array()
        indices = [u.index for u in units if u.index is not None]
        if max(indices) < limit and sorted(indices) == indices:
            native = await self._submit_array(folder, wrapper, units, indices)
            return [f"{native}_{i}" for i in indices]
        ids: list[str] = []
        for start in range(0, len(units), limit):
            chunk = units[start:start + limit]
            native = await self._submit_array(folder, wrapper, chunk, list(range(len(chunk))))
            ids += [f"{native}_{t}" for t in range(len(chunk))]
        return ids

    async def _ensure_wrapper(self, folder: Path) -> Path:
        target = folder / "job_wrapper.py"
        if target not in self._wrappers:
            await anyio.to_thread.run_sync(_install_wrapper, folder, target)
            self._wrappers.add(target)
        return target

    async def _submit_array(self, folder: Path, wrapper: Path, units: list[SubmitUnit],
                            tasks: list[int] | None) -> str:
        backend = units[0].backend
        stem = f"{units[0].job_id}-{secrets.token_hex(4)}"
        manifest = folder / f"{stem}.jsonl"
        script = folder / f"{stem}.sh"
        heartbeat = float(self._option("heartbeat"))
        entries = [_manifest_entry(unit, task, heartbeat)
                   for unit, task in zip(units, tasks if tasks is not None else [0], strict=True)]
        text = self._system.script(str(self._option("python")), wrapper, manifest, tasks is not None)
        await anyio.to_thread.run_sync(_write_submission, manifest, entries, script, text)
        array = compact_ranges(tasks) if tasks is not None else None
        request = SubmitRequest(name=f"ga.{stem}", script=script,
                                log=folder / (f"{stem}_%a.log" if tasks is not None else f"{stem}.log"),
                                directory=folder, array=array, backend=backend)
        native = await self._submit_retrying(request)
        await anyio.Path(folder / f"{stem}.id").write_text(native + "\n")
        log.info("submitted", backend=self._system.name, native_id=native, tasks=len(units))
        return native

    async def _submit_retrying(self, request: SubmitRequest) -> str:
        deadline = time.monotonic() + float(self._option("submit_retry"))
        delay = 1.0
        argv = self._system.submit_argv(request)
        while True:
            try:
                result = await self._run(argv)
            except BackendUnavailableError as exc:
                problem = str(exc)
                found = await self._find_quietly(request.name)
                if found is not None:
                    return found
            else:
                if result.returncode == 0:
                    return self._system.parse_submit(result)
                if not self._system.is_transient(result):
                    raise BackendError(result.message)
                problem = result.message
            if time.monotonic() + delay > deadline:
                raise BackendUnavailableError(
                    f"gave up after {self._option('submit_retry'):g} s: {problem}")
            log.warning("submission retried", backend=self._system.name, error=problem, delay=delay)
            await anyio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _find(self, name: str) -> str | None:
        """The id of the job called ``name``, from the queue or the accounting."""
        for argv in self._system.find_argv(name):
            result = await self._run(argv)
            if result.returncode == 0:
                found = self._system.parse_find(result)
                if found:
                    return found
            elif self._system.is_transient(result):
                raise BackendUnavailableError(result.message)
        return None

    async def _find_quietly(self, name: str) -> str | None:
        try:
            return await self._find(name)
        except BackendError:
            return None

    async def _locate(self, handles: list[Handle]) -> dict[str, str]:
        """The native ids of (sub)jobs an earlier engine may have submitted without recording them.

        The wrapper's status file names one if the job ran; otherwise the manifests written
        before each submission say which submission held it, and that submission's id file
        (written right after it) or a search by its job name gives the id. Each job's manifests
        are read once and each submission is looked up once, however many of its tasks are
        asked for. A key missing from the result was never submitted.
        """
        if not handles:
            return {}
        records = await anyio.to_thread.run_sync(_read_records, [h.outputdir for h in handles])
        found: dict[str, str] = {}
        by_folder: dict[Path, set[str]] = {}
        for handle in handles:
            record, _ = records[handle.outputdir]
            if record and record.get("batch_id"):
                found[handle.key] = str(record["batch_id"])
                continue
            jobdir = job_dir_of(handle.outputdir)
            by_folder.setdefault(jobdir / self._system.name.lower(), set()).add(handle.key)
        for folder, keys in by_folder.items():
            placed = await anyio.to_thread.run_sync(_find_in_manifests, folder, keys)
            submissions: dict[str, str | None] = {}
            for key, (stem, task) in placed.items():
                if stem not in submissions:
                    submissions[stem] = await self._submission_id(folder, stem)
                native = submissions[stem]
                if native:
                    # Subjobs always go in arrays, unsplit jobs never.
                    found[key] = f"{native}_{task}" if "." in key else native
        return found

    async def _submission_id(self, folder: Path, stem: str) -> str | None:
        """The id of the submission ``stem``, from its id file or else by its job name."""
        id_file = anyio.Path(folder / f"{stem}.id")
        try:
            native = (await id_file.read_text()).strip()
        except FileNotFoundError:
            native = ""
        if not native:
            native = await self._find(f"ga.{stem}") or ""
            if native:
                await id_file.write_text(native + "\n")
        return native or None


def _manifest_entry(unit: SubmitUnit, task: int, heartbeat: float) -> dict[str, Any]:
    return {"task": task, "key": unit.key, "argv": unit.command.argv, "env": unit.command.env,
            "workdir": str(unit.workdir), "outputdir": str(unit.outputdir), "inputs": unit.inputfiles,
            "outputs": unit.outputfiles, "heartbeat": heartbeat}


def _install_wrapper(folder: Path, target: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    source = shipped("workers", "job_wrapper.py")
    tmp = target.with_suffix(".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _write_submission(manifest: Path, entries: list[dict[str, Any]], script: Path, text: str) -> None:
    """Write the manifest and the batch script in full before anything is submitted."""
    encode = json.JSONEncoder(separators=(",", ":")).encode
    tmp = manifest.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(encode(entry) + "\n" for entry in entries)
    os.replace(tmp, manifest)
    script.write_text(text)
    script.chmod(0o755)


def _read_records(outputdirs: list[Path]) -> dict[Path, tuple[dict[str, Any] | None, float | None]]:
    """Each outputdir's wrapper record (None: none yet) and last heartbeat."""
    found: dict[Path, tuple[dict[str, Any] | None, float | None]] = {}
    for outputdir in outputdirs:
        record: dict[str, Any] | None
        try:
            with open(outputdir / STATUS_FILE, encoding="utf-8") as f:
                loaded = json.load(f)
            record = loaded if isinstance(loaded, dict) else None
        except (OSError, ValueError):
            record = None
        heartbeat = None
        if record is not None and "end" not in record:
            try:
                heartbeat = (outputdir / HEARTBEAT_FILE).stat().st_mtime
            except OSError:
                heartbeat = None
        found[outputdir] = (record, heartbeat)
    return found


def _find_in_manifests(folder: Path, keys: set[str]) -> dict[str, tuple[str, int]]:
    """(stem, task) of the newest manifest in ``folder`` that holds each of ``keys``."""
    try:
        manifests = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return {}
    wanted = set(keys)
    placed: dict[str, tuple[str, int]] = {}
    for manifest in manifests:
        with open(manifest, encoding="utf-8") as f:
            for line in f:
                entry = json.loads(line)
                if entry["key"] in wanted:
                    wanted.discard(entry["key"])
                    placed[entry["key"]] = (manifest.stem, int(entry["task"]))
                    if not wanted:
                        return placed
    return placed


def _remove_status_files(outputdirs: list[Path]) -> None:
    for outputdir in outputdirs:
        try:
            os.unlink(outputdir / STATUS_FILE)
        except FileNotFoundError:
            pass
