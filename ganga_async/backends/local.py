"""Local: run jobs as processes on this machine.

Processes are started by the *local runner* (``workers/local_runner.py``), a small
standard-library process the driver starts on first use. The runner outlives the engine: a job
keeps running when the engine closes or dies, its exit code is written to the job's status log
(``STATUS_LOG`` in the job's directory), and the next engine picks the result up. Each
process runs in its own session, so a kill (SIGTERM, then SIGKILL after ``[Local]
kill_grace`` seconds) reaches its whole process group.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import SocketAttribute, TaskGroup, TaskStatus, UNIXSocketStream

from .._exceptions import BackendError, JobSpecError
from .._log import get_logger
from .._resources import shipped
from .._workspace import job_dir_of
from ..states import Status
from ._local_readers import reading_runners
from .base import (
    Backend,
    BackendStatus,
    DriverContext,
    Handle,
    SubmitUnit,
    Tracked,
    TrackingDriver,
    final_status,
)

if TYPE_CHECKING:
    from .._component import JobView

__all__ = ["Local", "LocalDriver", "STATUS_LOG", "KILL_FILE", "read_status"]

STATUS_LOG = "__localstatus__.jsonl"
"""The status log in a job's directory: one JSON line per accepted, started and exited (sub)job,
appended by the local runner (see ``workers/local_runner.py``)."""
KILL_FILE = "__kill__"
"""Asks an earlier engine's runner not to start a (sub)job it still holds in its queue."""

log = get_logger(__name__)

READ_PAUSE = 0.010
"""Seconds the driver waits after each read of the runner's events before reading again, so
that what came meanwhile is read, decoded and applied at once. Each read wakes the engine's
reader, monitor and finalise stage: when the engine kept up with the runner, the events of
short processes came one or two per read (up to 1,200 reads for 1,000 ``/bin/echo``), each
costing about 0.25 ms of the event loop's CPU beyond the news it brought. The runner never
waits for the engine (see ``workers/local_runner.py``), so the pause only delays what the
engine learns, by at most this; a hang-up ends it at once."""

_QUEUED = BackendStatus(Status.SUBMITTED)
"""What the driver knows of a unit the runner has not started yet (frozen, so shared)."""


@dataclasses.dataclass(kw_only=True, repr=False)
class Local(Backend):
    """Run each (sub)job as a process on this machine, in its own working directory.

    ``max_concurrent`` caps how many subjobs of one job run at once (0: ``[Local]
    max_concurrent``, whose 0 means one per CPU); the others wait in ``submitted``.
    stdout and stderr are kept in the (sub)job's ``outputdir``; pid, start, end and exit code
    in the repository and in the job's status log.
    """

    max_concurrent: int = 0

    def validate(self, job: JobView) -> None:
        if self.max_concurrent < 0:
            raise JobSpecError("backend.max_concurrent", "must be 0 (the configured default) or more")

    @classmethod
    def make_driver(cls, context: DriverContext) -> LocalDriver:
        return LocalDriver(context)


class LocalDriver(TrackingDriver[Tracked]):
    """Hands units to the local runner (which queues them within each job's limit) and turns the
    runner's events into news.

    The units this engine's runner holds (``_dispatched``) get their news pushed by it as they
    start and end. The others it tracks (an earlier engine's, or this engine's once the
    connection to its runner was lost) are answered by :meth:`sweep` from their job's status
    log: whether the runner that accepted them still lives, and what it wrote.
    """

    def __init__(self, context: DriverContext) -> None:
        super().__init__(context)
        self._tg: TaskGroup | None = None
        self._stream: UNIXSocketStream | None = None
        self._reader_done: anyio.Event | None = None
        self._hanging_up = anyio.Event()
        """Set by :meth:`_hang_up`: ends the reader's pause between reads at once."""
        self._hung_up = False
        self._runner_lock = anyio.Lock()
        self._send_lock = anyio.Lock()
        self._sweep_lock = anyio.Lock()
        self._dispatched: set[str] = set()
        self._logs = _StatusLogs()
        self._runner_pid: int | None = None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._hung_up = False
        self._hanging_up = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                try:
                    await anyio.sleep_forever()
                finally:
                    self._tg = None
                    self._hang_up()  # the reader ends by itself; the task group waits for it
        finally:
            self._tg = None
            if self._stream is not None:
                with anyio.CancelScope(shield=True):
                    await self._stream.aclose()
                self._stream = None

    # -- the runner -------------------------------------------------------------------

    async def _ensure_runner(self) -> None:
        async with self._runner_lock:
            if self._stream is not None:
                return
            if self._tg is None:
                raise BackendError("the Local driver is not running")
            logdir = self._context.gangadir / "logs"  # the runners' own messages
            await anyio.Path(logdir).mkdir(parents=True, exist_ok=True)
            runner = shipped("workers", "local_runner.py")
            ours, theirs = socket.socketpair()
            try:
                try:
                    pid = await anyio.to_thread.run_sync(_start_runner, runner, theirs, logdir)
                finally:
                    theirs.close()
                # The thread cannot be cancelled: an engine that closed meanwhile cancels here.
                await anyio.lowlevel.checkpoint()
                stream = await UNIXSocketStream.from_socket(ours)
            except OSError as exc:
                ours.close()
                raise BackendError(f"cannot start the local runner {runner}: {exc}") from exc
            except BaseException:
                # Also on cancellation (an engine closing while the runner starts): no socket leaks.
                ours.close()
                raise
            if self._tg is None or self._hung_up:
                await stream.aclose()
                raise BackendError("the Local driver is closing")
            self._stream = stream
            self._runner_pid = pid
            self._reader_done = anyio.Event()
            self._tg.start_soon(self._read_events, stream, self._reader_done)

    def _hang_up(self) -> None:
        """Shut the runner connection down so that its reader meets the end of the stream and
        stops by itself. Cancelling (or closing the stream under) a task waiting in ``receive()``
        can race with anyio's own reader callback, which then completes a finished future
        ("InvalidStateError" from the loop: agronholm/anyio#1267). The runner and its processes
        go on: only this engine's connection ends."""
        self._hung_up = True
        self._hanging_up.set()
        if self._stream is not None:
            try:
                self._stream.extra(SocketAttribute.raw_socket).shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    async def warm_up(self) -> None:
        await self._ensure_runner()

    async def _send(self, commands: list[dict[str, object]]) -> None:
        """Write commands to the runner; they are in its hands when this returns."""
        await self._send_lines(b"".join(_encode(c) + b"\n" for c in commands))

    async def _send_lines(self, data: bytes) -> None:
        async with self._send_lock:
            if self._stream is None:
                raise BackendError("the local runner is not running")
            try:
                await self._stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise BackendError(f"the local runner went away: {exc}") from exc

    async def _read_events(self, stream: UNIXSocketStream, done: anyio.Event) -> None:
        # Shielded: it ends when the connection does (_hang_up when the driver stops).
        with anyio.CancelScope(shield=True):
            try:
                await self._read_from(stream)
            finally:
                done.set()

    async def _read_from(self, stream: UNIXSocketStream) -> None:
        pending = b""
        try:
            while True:
                # Events come in bursts; one receive takes all that arrived, one decode reads them.
                *lines, pending = (pending + await stream.receive()).split(b"\n")
                if lines:
                    self._on_events(lines)
                del lines  # the last burst is not kept while waiting for the next
                with anyio.move_on_after(READ_PAUSE):
                    await self._hanging_up.wait()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        if self._stream is stream and not self._hung_up:
            # What it held stays tracked, and sweeps read it from the status logs from now on.
            log.warning("local runner connection lost; its processes are checked through status logs")
            self._stream = None
            self._dispatched.clear()

    def _on_events(self, lines: list[bytes]) -> None:
        """Turn one read's events into news. A start read with its process's end is not told
        on its own: the end carries its time and pid (one piece of news instead of two, and
        most processes start and end between two reads)."""
        news: dict[str, BackendStatus] = {}
        started: dict[str, tuple[float, str]] = {}
        tracked, dispatched = self.tracked, self._dispatched
        for event in json.loads(b"[%b]" % b",".join(lines)):
            key = str(event["key"])
            entry = tracked.get(key)
            if entry is None or key not in dispatched:
                continue
            if event["ev"] == "started":
                started[key] = (float(event["t"]), str(event["pid"]))
                continue
            dispatched.discard(key)
            start, pid = started.pop(key, (None, None))
            if start is None and entry.last is not None:
                start = entry.last.started
            news[key] = final_status(event.get("code"), bool(event.get("killed")) or entry.killed,
                                     event.get("error"), ended=float(event["t"]), native_id=pid,
                                     started=start)
        for key, (start, pid) in started.items():
            news[key] = BackendStatus(Status.RUNNING, started=start, native_id=pid)
        self.publish(news)

    # -- the contract -----------------------------------------------------------------

    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        await self._ensure_runner()
        scratch = bool(self._context.config["Local"]["remove_workdir"])
        lines: list[bytes] = []
        # The fields the units of a job mostly share are encoded once per run of equal ones.
        shared_as: tuple[object, ...] = ()
        shared = b""
        tracked = self.tracked
        backend: Backend | None = None
        limit = 0
        for unit in units:
            self._dispatched.add(unit.key)
            tracked[unit.key] = Tracked(Handle(unit.key, unit.key, unit.outputdir), _QUEUED)
            if unit.backend is not backend:  # the subjobs of a job mostly share their master's
                backend, limit = unit.backend, self._limit(unit)
            these = (unit.job_id, limit, unit.command.env, unit.inputfiles, unit.outputfiles)
            if these != shared_as:
                jobdir = job_dir_of(unit.outputdir)
                shared_as, shared = these, _encode({
                    "op": "run", "group": str(unit.job_id), "limit": limit,
                    "log": str(jobdir / STATUS_LOG), "env": unit.command.env,
                    "scratch": str(jobdir / "work") if scratch else None,
                    "inputs": unit.inputfiles, "outputs": unit.outputfiles,
                })[:-1]
            own = _encode({"key": unit.key, "argv": unit.command.argv, "workdir": str(unit.workdir),
                           "outputdir": str(unit.outputdir)})
            lines.append(b"%b,%b\n" % (shared, own[1:]))
        try:
            await self._send_lines(b"".join(lines))
        except BackendError:
            self.untrack(unit.key for unit in units)
            raise
        return [unit.key for unit in units]

    def _limit(self, unit: SubmitUnit) -> int:
        own = getattr(unit.backend, "max_concurrent", 0)
        return int(own or self._context.config["Local"]["max_concurrent"] or os.cpu_count() or 1)

    async def kill(self, handles: Sequence[Handle]) -> None:
        grace = float(self._context.config["Local"]["kill_grace"])
        ours: list[dict[str, object]] = []
        orphans: list[Handle] = []
        for handle in handles:
            entry = self.tracked.get(handle.key)
            if entry is not None:
                entry.killed = True
            if handle.key in self._dispatched and self._stream is not None:
                ours.append({"op": "kill", "key": handle.key, "grace": grace})
            else:
                orphans.append(handle)
        if orphans:
            records = await anyio.to_thread.run_sync(self._logs.records, orphans)
            is_runner = functools.cache(_is_runner)
            for handle, record in zip(orphans, records, strict=True):
                await self._kill_orphan(handle, record, grace, is_runner)
        if ours:
            await self._send(ours)

    async def _kill_orphan(self, handle: Handle, record: dict[str, object] | None,
                           grace: float, is_runner: Callable[[object], bool]) -> None:
        if record is None or "end" in record:
            return
        pid = record.get("pid")
        if not isinstance(pid, int):
            if is_runner(record.get("runner_pid")):
                # Queued in an earlier engine's runner: it checks for this file before starting.
                await anyio.Path(handle.outputdir).mkdir(parents=True, exist_ok=True)
                await anyio.Path(handle.outputdir / KILL_FILE).touch()
            return
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return
        if self._tg is not None:
            self._tg.start_soon(_kill_later, pid, grace)

    async def track(self, handles: Sequence[Handle]) -> None:
        tracked = self.tracked
        for handle in handles:
            if handle.key not in tracked:
                tracked[handle.key] = Tracked(handle)

    def untrack(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        super().untrack(keys)
        self._dispatched.difference_update(keys)

    async def sweep(self) -> int:
        """Read the status logs of the tracked (sub)jobs this engine's runner does not hold."""
        async with self._sweep_lock:
            if len(self.tracked) == len(self._dispatched):
                return 0
            orphans = {key: entry for key, entry in self.tracked.items() if key not in self._dispatched}
            killed = {key for key, entry in orphans.items() if entry.killed}
            # Our own runner reads all we send while we are connected: only others may hold
            # commands unread (see _local_readers).
            own = self._runner_pid if self._stream is not None else None
            found = await anyio.to_thread.run_sync(functools.partial(
                _orphan_statuses, [entry.handle for entry in orphans.values()], killed, self._logs,
                logdir=self._context.gangadir / "logs", own_runner=own))
            # Untracked, or submitted again to this engine's runner, while the logs were read.
            news = {key: status for key, status in found.items()
                    if self.tracked.get(key) is orphans[key] and key not in self._dispatched}
            return self.publish(news)

    async def forget(self, handles: Sequence[Handle]) -> None:
        self.untrack(handle.key for handle in handles)
        await anyio.to_thread.run_sync(_reset_logs, handles)

    async def aclose(self) -> None:
        self._hang_up()
        if self._reader_done is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._reader_done.wait()
        async with self._send_lock:
            if self._stream is not None:
                await self._stream.aclose()
                self._stream = None


_ENCODER = json.JSONEncoder(separators=(",", ":"))
"""``json.dumps`` with these separators makes an encoder per call: one for all (one command
per subjob)."""


def _encode(command: dict[str, object]) -> bytes:
    """One command as the runner reads it: a JSON object on one line (without the newline)."""
    return _ENCODER.encode(command).encode()


_RUN_RUNNER = ("import sys; sys.path.insert(0, sys.argv[1].rpartition('/')[0]); "
               "import local_runner; local_runner.main(sys.argv[2])")
"""How the runner is started: imported, so that it runs from bytecode cached beside it (pip
compiles it at installation) rather than being compiled for every engine, which took 7 ms of
its first submission. Its path stays on its command line, where :func:`_is_runner` looks."""


def _start_runner(runner: Path, sock: socket.socket, logdir: Path) -> int:
    """Start the runner, with ``logdir`` for its messages and its reading marker; it daemonises,
    so this returns at once: the pid of the runner its first process left behind."""
    with (logdir / "local_runner.log").open("ab") as errlog:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _RUN_RUNNER, str(runner), str(logdir)],
            stdin=sock.fileno(), stdout=subprocess.PIPE, stderr=errlog, start_new_session=True,
        )
    assert proc.stdout is not None
    with proc.stdout:
        said = proc.stdout.readline()  # written before its first process exits
    code = proc.wait()
    if code != 0 or not said.strip().isdigit():
        raise BackendError(f"the local runner failed to start (exit code {code}); see {logdir}")
    return int(said)


async def _kill_later(pid: int, grace: float) -> None:
    await anyio.sleep(grace)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _status_log(outputdir: Path) -> Path:
    """The status log of the job a (sub)job belongs to, in the job's directory."""
    return job_dir_of(outputdir) / STATUS_LOG


class _StatusLogs:
    """The status logs read so far, each read on from where the last reading stopped (a
    restarted engine asks about the same running jobs every poll interval)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logs: dict[Path, tuple[int, int, dict[str, dict[str, Any]]]] = {}

    def records(self, handles: Sequence[Handle]) -> list[dict[str, Any] | None]:
        """What the logs say of each handle's current run: the fields of its last ``accepted``
        record and of the ``started`` and ``exited`` ones after it (``runner_pid``, ``host``,
        ``pid``, ``start``, ``end``, ``exitcode``, ``killed``, ``error``); None for one no
        runner accepted."""
        paths = [_status_log(handle.outputdir) for handle in handles]
        with self._lock:
            logs = {path: self._read(path) for path in set(paths)}
        return [logs[path].get(handle.key) for handle, path in zip(handles, paths, strict=True)]

    def _read(self, path: Path) -> dict[str, dict[str, Any]]:
        try:
            with open(path, "rb") as f:
                inode = os.fstat(f.fileno()).st_ino
                known_inode, offset, found = self._logs.get(path, (inode, 0, {}))
                if known_inode != inode:  # a new job with a removed one's id
                    offset, found = 0, {}
                f.seek(offset)
                data = f.read()
        except (FileNotFoundError, NotADirectoryError):
            self._logs.pop(path, None)
            return {}
        complete = data.rfind(b"\n") + 1  # a line still being written is read next time
        _fold(data[:complete].splitlines(), found)
        self._logs[path] = (inode, offset + complete, found)
        return found


def read_status(key: str, outputdir: Path) -> dict[str, Any] | None:
    """What the status log says of (sub)job ``key``'s current run (see
    :meth:`_StatusLogs.records`), or None when no runner accepted it."""
    return _StatusLogs().records([Handle(key, "", outputdir)])[0]


def _fold(lines: list[bytes], found: dict[str, dict[str, Any]]) -> None:
    for line in lines:
        try:
            record = json.loads(line)
            key = record["key"]
            event = record["ev"]
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash
        if event == "accepted":
            found[key] = {"runner_pid": record.get("runner_pid"), "host": record.get("host")}
        elif event == "reset":
            found.pop(key, None)
        elif key in found and event == "launching":
            found[key]["launching"] = record.get("t")
        elif key in found and event == "started":
            found[key].update(pid=record.get("pid"), start=record.get("t"))
        elif key in found and event == "exited":
            found[key].update(end=record.get("t"), exitcode=record.get("code"),
                              killed=record.get("killed"), error=record.get("error"))


def _reset_logs(handles: Sequence[Handle]) -> None:
    """Append a ``reset`` record for each handle: its earlier runs are forgotten."""
    by_log: dict[Path, list[str]] = {}
    for handle in handles:
        by_log.setdefault(_status_log(handle.outputdir), []).append(handle.key)
    for path, keys in by_log.items():
        if not path.exists():
            continue
        with open(path, "ab") as f:
            f.write(b"".join(_encode({"ev": "reset", "key": key}) + b"\n" for key in keys))


def _is_runner(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"local_runner.py" in f.read()
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _orphan_statuses(handles: Sequence[Handle], killed: set[str], logs: _StatusLogs | None = None,
                     *, logdir: Path | None = None, own_runner: int | None = None,
                     ) -> dict[str, BackendStatus]:
    """Statuses of (sub)jobs started by an earlier engine, read from their status logs. With the
    gangadir's ``logdir``, one that looks never received (``NEW``) is left out, to be asked again
    next sweep, while a live runner other than ``own_runner`` may still hold unread commands:
    it may yet read and run it."""
    logs = logs or _StatusLogs()
    result = _read_statuses(handles, killed, logs)
    unsure = [handle for handle in handles if result[handle.key].status is Status.NEW]
    if logdir is None or not unsure:
        return result
    if reading_runners(logdir, own_runner, _is_runner):
        for handle in unsure:
            del result[handle.key]
        return result
    # No runner was reading at the listing: what any had read is logged by now, so read again.
    result.update(_read_statuses(unsure, killed, logs))
    return result


def _read_statuses(handles: Sequence[Handle], killed: set[str],
                   logs: _StatusLogs) -> dict[str, BackendStatus]:
    # Whether a runner lives is asked before its log is read (again): one found gone had logged
    # all it did before it went, while one that ends between a reading and the question would
    # leave its last commands looking launched or queued by a dead runner, and so failed or
    # started a second time. One found alive that ends meanwhile is read again next sweep.
    pids = {r.get("runner_pid") for r in logs.records(handles) if r is not None}
    alive = {pid: _is_runner(pid) for pid in pids if isinstance(pid, int)}
    records = logs.records(handles)

    def is_runner(pid: object) -> bool:
        return alive.get(pid, True) if isinstance(pid, int) else False

    result: dict[str, BackendStatus] = {}
    for handle, record in zip(handles, records, strict=True):
        result[handle.key] = _orphan_status(record, handle.key in killed, is_runner)
    return result


def _orphan_status(record: dict[str, Any] | None, killed: bool,
                   is_runner: Callable[[object], bool]) -> BackendStatus:
    if record is None:
        return BackendStatus(Status.NEW, reason="never started")
    started = record.get("start")
    pid = record.get("pid")
    if "end" in record:
        return final_status(record.get("exitcode"), bool(record.get("killed")) or killed,
                            record.get("error"), ended=record.get("end"), started=started)
    if is_runner(record.get("runner_pid")):
        status = Status.RUNNING if isinstance(pid, int) else Status.SUBMITTED
        return BackendStatus(status, started=started, native_id=str(pid) if pid else None)
    if not isinstance(pid, int) and "launching" in record:
        return BackendStatus(
            Status.FAILED,
            reason="its local runner stopped as it was starting the process, which may have run "
                   "(look at its stdout); resubmit it if it did not",
        )
    if not isinstance(pid, int):
        return BackendStatus(Status.NEW, reason="its runner stopped before starting it")
    if _alive(pid):
        return BackendStatus(
            Status.FAILED, started=started,
            reason=f"its local runner is gone, so its exit status cannot be known; the process "
                   f"still runs as pid {pid} (stop it with: kill -- -{pid})",
        )
    return BackendStatus(
        Status.FAILED, started=started,
        reason="the process ended while no local runner watched it; its exit status is unknown",
    )
