"""Local: run jobs as processes on this machine.

Processes are started by the *local runner* (``workers/local_runner.py``), a small
standard-library process the driver starts on first use. The runner outlives the engine: a job
keeps running when the engine closes or dies, its exit code is written to its status file, and
the next engine picks the result up. Each process runs in its own session, so a kill (SIGTERM,
then SIGKILL after ``[Local] kill_grace`` seconds) reaches its whole process group.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup, TaskStatus, UNIXSocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from .._exceptions import BackendError, JobSpecError
from .._log import get_logger
from .._resources import shipped
from ..states import Status
from .base import (
    STATUS_FILE,
    Backend,
    BackendDriver,
    BackendStatus,
    DriverContext,
    Handle,
    SubmitUnit,
)

if TYPE_CHECKING:
    from ..job import Job

__all__ = ["Local", "LocalDriver", "STATUS_FILE", "KILL_FILE"]

KILL_FILE = "__kill__"
"""Asks an earlier engine's runner not to start a (sub)job it still holds in its queue."""

log = get_logger(__name__)


@dataclasses.dataclass(kw_only=True, repr=False)
class Local(Backend):
    """Run each (sub)job as a process on this machine, in its own working directory.

    ``max_concurrent`` caps how many subjobs of one job run at once (0: ``[Local]
    max_concurrent``, whose 0 means one per CPU); the others wait in ``submitted``.
    stdout, stderr and ``__jobstatus__.json`` (pid, start, end, exit code) are kept in the
    (sub)job's ``outputdir``.
    """

    max_concurrent: int = 0

    def validate(self, job: Job) -> None:
        if self.max_concurrent < 0:
            raise JobSpecError("backend.max_concurrent", "must be 0 (the configured default) or more")

    @classmethod
    def make_driver(cls, context: DriverContext) -> LocalDriver:
        return LocalDriver(context)


class LocalDriver(BackendDriver):
    """Hands units to the local runner (which queues them within each job's limit) and turns the
    runner's events into status news."""

    def __init__(self, context: DriverContext) -> None:
        self._context = context
        self._tg: TaskGroup | None = None
        self._stream: UNIXSocketStream | None = None
        self._runner_lock = anyio.Lock()
        self._send_lock = anyio.Lock()
        self._dispatched: set[str] = set()
        self._state: dict[str, BackendStatus] = {}
        self._killed: set[str] = set()
        self._news: dict[str, BackendStatus] = {}
        self._news_ready = anyio.Event()

    @property
    def _rundir(self) -> Path:
        """Where runners keep their journals and their log."""
        return self._context.gangadir / "logs"

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                await anyio.sleep_forever()
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
            logdir = self._rundir
            await anyio.Path(logdir).mkdir(parents=True, exist_ok=True)
            runner = shipped("workers", "local_runner.py")
            ours, theirs = socket.socketpair()
            try:
                try:
                    code = await anyio.to_thread.run_sync(_start_runner, runner, theirs, logdir)
                finally:
                    theirs.close()
                # The thread cannot be cancelled: an engine that closed meanwhile cancels here.
                await anyio.lowlevel.checkpoint()
                if code != 0:
                    raise BackendError(
                        f"the local runner failed to start (exit code {code}); see {logdir}")
                stream = await UNIXSocketStream.from_socket(ours)
            except OSError as exc:
                ours.close()
                raise BackendError(f"cannot start the local runner {runner}: {exc}") from exc
            except BaseException:
                # Also on cancellation (an engine closing while the runner starts): no socket leaks.
                ours.close()
                raise
            self._stream = stream
            self._tg.start_soon(self._read_events, stream)

    async def warm_up(self) -> None:
        await self._ensure_runner()

    async def _send(self, commands: list[dict[str, object]]) -> None:
        """Write commands to the runner; they are in its hands when this returns."""
        data = b"".join(json.dumps(c, separators=(",", ":")).encode() + b"\n" for c in commands)
        async with self._send_lock:
            if self._stream is None:
                raise BackendError("the local runner is not running")
            try:
                await self._stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise BackendError(f"the local runner went away: {exc}") from exc

    async def _read_events(self, stream: UNIXSocketStream) -> None:
        buffered = BufferedByteReceiveStream(stream)
        try:
            while True:
                line = await buffered.receive_until(b"\n", 1 << 20)
                self._on_event(json.loads(line))
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError,
                anyio.ClosedResourceError, OSError):
            pass
        if self._stream is stream:
            log.warning("local runner connection lost; its processes are checked through status files")
            self._stream = None
            for key in list(self._dispatched):
                self._state.pop(key, None)
            self._dispatched.clear()
            self._news_ready.set()

    def _on_event(self, event: dict[str, Any]) -> None:
        key = str(event["key"])
        if key not in self._dispatched:
            return
        t = float(event["t"])
        if event["ev"] == "started":
            status = BackendStatus(Status.RUNNING, started=t, native_id=str(event["pid"]))
        else:
            self._dispatched.discard(key)
            running = self._state.get(key)
            status = _final_status(event.get("code"), bool(event.get("killed")) or key in self._killed,
                                   event.get("error"), ended=t,
                                   started=running.started if running is not None else None)
            self._killed.discard(key)
        self._state[key] = status
        self._news[key] = status
        self._news_ready.set()

    # -- the contract -----------------------------------------------------------------

    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        await self._ensure_runner()
        commands: list[dict[str, object]] = []
        for unit in units:
            self._dispatched.add(unit.key)
            self._state[unit.key] = BackendStatus(Status.SUBMITTED)
            commands.append({
                "op": "run", "key": unit.key, "group": str(unit.job_id), "limit": self._limit(unit),
                "argv": unit.command.argv, "env": unit.command.env, "workdir": str(unit.workdir),
                "outputdir": str(unit.outputdir), "inputs": unit.inputfiles, "outputs": unit.outputfiles,
            })
        try:
            await self._send(commands)
        except BackendError:
            for unit in units:
                self._dispatched.discard(unit.key)
                self._state.pop(unit.key, None)
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
            self._killed.add(handle.key)
            if handle.key in self._dispatched and self._stream is not None:
                ours.append({"op": "kill", "key": handle.key, "grace": grace})
            else:
                orphans.append(handle)
        if orphans:
            records = await anyio.to_thread.run_sync(_kill_records, orphans, self._rundir)
            for handle, record in zip(orphans, records, strict=True):
                await self._kill_orphan(handle, record, grace)
        if ours:
            await self._send(ours)

    async def _kill_orphan(self, handle: Handle, record: dict[str, object] | None,
                           grace: float) -> None:
        if record is None or "end" in record:
            return
        pid = record.get("pid")
        if not isinstance(pid, int):
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

    async def status(self, handles: Sequence[Handle]) -> Mapping[str, BackendStatus]:
        result: dict[str, BackendStatus] = {}
        orphans: list[Handle] = []
        for handle in handles:
            known = self._state.get(handle.key)
            if known is not None:
                result[handle.key] = known
            else:
                orphans.append(handle)
        if orphans:
            killed = set(self._killed)
            found = await anyio.to_thread.run_sync(_orphan_statuses, orphans, killed, self._rundir)
            result.update(found)
        return result

    async def updates(self) -> Mapping[str, BackendStatus]:
        await self._news_ready.wait()
        self._news_ready = anyio.Event()
        news, self._news = self._news, {}
        for key, status in news.items():
            if status.status not in (Status.SUBMITTED, Status.RUNNING):
                self._state.pop(key, None)
        return news

    async def aclose(self) -> None:
        async with self._send_lock:
            if self._stream is not None:
                await self._stream.aclose()
                self._stream = None


def _start_runner(runner: Path, sock: socket.socket, logdir: Path) -> int:
    """Start the runner; it daemonises, so this returns (its first process's exit code) at once."""
    with (logdir / "local_runner.log").open("ab") as errlog:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(runner), str(logdir)],
            stdin=sock.fileno(), stdout=sock.fileno(), stderr=errlog, start_new_session=True,
        )
    return int(proc.wait())


async def _kill_later(pid: int, grace: float) -> None:
    await anyio.sleep(grace)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _final_status(code: int | None, killed: bool, error: str | None, *, ended: float | None,
                  started: float | None = None) -> BackendStatus:
    if killed:
        return BackendStatus(Status.KILLED, exitcode=code, reason="killed", started=started, ended=ended)
    if error:
        return BackendStatus(Status.FAILED, reason=error, started=started, ended=ended)
    if code == 0:
        return BackendStatus(Status.COMPLETED, exitcode=0, started=started, ended=ended)
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        reason = f"killed by signal {name}"
    else:
        reason = f"exit code {code}"
    return BackendStatus(Status.FAILED, exitcode=code, reason=reason, started=started, ended=ended)


def _read_status(outputdir: Path) -> dict[str, object] | None:
    try:
        with open(outputdir / STATUS_FILE) as f:
            record = json.load(f)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _is_runner(pid: int) -> bool:
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


def _journalled(rundir: Path) -> set[str]:
    """The keys in the journals of the local runners still alive: commands a runner received,
    some of which it may not have prepared yet. Journals of dead runners are removed."""
    keys: set[str] = set()
    for journal in rundir.glob("local_runner-*.accepted"):
        try:
            pid = int(journal.name.removeprefix("local_runner-").removesuffix(".accepted"))
        except ValueError:
            continue
        try:
            if _is_runner(pid):
                keys.update(journal.read_text().split())
            else:
                journal.unlink()
        except OSError:
            continue
    return keys


def _kill_records(handles: Sequence[Handle], rundir: Path) -> list[dict[str, object] | None]:
    """The status records of (sub)jobs to kill that this driver did not start: ``{}`` for one a
    live runner journalled but has not prepared yet, None for one no runner has."""
    records = [_read_status(handle.outputdir) for handle in handles]
    if any(record is None for record in records):
        journalled = _journalled(rundir)
        records = [{} if record is None and handle.key in journalled else record
                   for handle, record in zip(handles, records, strict=True)]
    return records


def _orphan_statuses(handles: Sequence[Handle], killed: set[str],
                     rundir: Path) -> dict[str, BackendStatus]:
    """Statuses of (sub)jobs started by an earlier engine, read from their status files."""
    result: dict[str, BackendStatus] = {}
    journalled: set[str] | None = None
    for handle in handles:
        record = _read_status(handle.outputdir)
        if record is None:
            if journalled is None:
                journalled = _journalled(rundir)
            if handle.key in journalled:
                result[handle.key] = BackendStatus(Status.SUBMITTED)
            else:
                result[handle.key] = BackendStatus(Status.NEW, reason="never started")
            continue
        if not record:
            result[handle.key] = BackendStatus(Status.FAILED, reason=f"unreadable {STATUS_FILE}")
            continue
        started = record.get("start")
        pid = record.get("pid")
        if "end" in record:
            result[handle.key] = _final_status(
                record.get("exitcode"), bool(record.get("killed")) or handle.key in killed,  # type: ignore[arg-type]
                record.get("error"), ended=record.get("end"), started=started,  # type: ignore[arg-type]
            )
        elif isinstance(record.get("runner_pid"), int) and _is_runner(record["runner_pid"]):  # type: ignore[arg-type]
            status = Status.RUNNING if isinstance(pid, int) else Status.SUBMITTED
            result[handle.key] = BackendStatus(status, started=started,  # type: ignore[arg-type]
                                               native_id=str(pid) if pid else None)
        elif not isinstance(pid, int):
            result[handle.key] = BackendStatus(Status.NEW, reason="its runner stopped before starting it")
        elif _alive(pid):
            result[handle.key] = BackendStatus(
                Status.FAILED, started=started,  # type: ignore[arg-type]
                reason=f"its local runner is gone, so its exit status cannot be known; the process "
                       f"still runs as pid {pid} (stop it with: kill -- -{pid})",
            )
        else:
            result[handle.key] = BackendStatus(
                Status.FAILED, started=started,  # type: ignore[arg-type]
                reason="the process ended while no local runner watched it; its exit status is unknown",
            )
    return result
