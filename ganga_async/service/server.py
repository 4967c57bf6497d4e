"""The daemon: an engine that keeps monitoring, served to the owner's programs over a Unix socket.

One daemon per gangadir. It holds an exclusive lock on ``<gangadir>/service/daemon.pid`` for
as long as it lives (a second daemon is refused; a pid file left by a crash is recognised by
its free lock and cleaned, with its socket), listens on ``<gangadir>/service/socket`` (mode
0600 in a directory of mode 0700) and accepts a connection only from a process of its own
uid, as the kernel reports it (``SO_PEERCRED``); anyone else is refused and logged. Nothing
listens on TCP but an addon asked for (the dashboard, on 127.0.0.1 behind its token).

Requests (see :mod:`._protocol`) are served concurrently, many per connection:

- the operations of :data:`._operations.OPERATIONS` (``submit``, ``jobs``, ``kill``, ...) and
  ``send_cmd`` run in the daemon's own task group: once a request has been read whole, its
  client may go away and it still runs to its end;
- ``events`` streams (job status transitions and credential warnings) and ``wait`` belong to
  their connection and end with it;
- ``cancel`` ends a stream or a ``wait``, or interrupts a ``send_cmd``; ``ping`` says who the
  daemon is; ``shutdown`` stops it.

Stopping (``shutdown``, SIGTERM or SIGINT) closes the socket to new connections, refuses new
requests, ends the streams, lets accepted operations and ``send_cmd`` code finish (code still
running after ``[Service] stop_timeout`` seconds is interrupted), closes the engine (which
writes every queued change to the repository) and removes the socket and the pid file.

The daemon configures logging (the library never does): one JSON object per line in
``<gangadir>/logs/service.log``, and console lines on stderr in the foreground.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream

from .. import __version__, gpi
from .._exceptions import (
    GangaAsyncError,
    ProtocolError,
    ServiceAccessError,
    ServiceError,
    ServiceRunningError,
)
from .._log import JsonFormatter, get_logger
from ..config import Config
from ..engine import Engine
from . import _fanout as fanout
from . import _protocol as protocol
from ._console import Console, Execution, InterruptiblePortal, install_output_router
from ._operations import OPERATIONS, Arguments, event_streams
from ._paths import ServicePaths, peer_uid, private_append, read_pid

__all__ = ["Addon", "Server", "configure_logging", "run_daemon"]

Addon = Callable[..., Any]
"""A service the daemon runs beside its socket (the dashboard): ``await addon(engine,
task_status=...)`` in the daemon's task group, ready once it calls ``task_status.started()``,
cancelled when the daemon stops."""

log = get_logger(__name__)

_SERVER_OPS = ("ping", "send_cmd", "events", "cancel", "shutdown")


class _Connection:
    """One client's connection: replies are written whole, one at a time."""

    def __init__(self, stream: SocketStream, pid: int) -> None:
        self.stream = stream
        self.pid = pid
        self.closed = False
        self.cancellers: dict[protocol.RequestId, Callable[[], None]] = {}
        self.in_flight: set[protocol.RequestId] = set()
        """Ids of this connection's requests not answered yet: an id is refused while in use."""
        self.unanswered = 0
        self.answered = anyio.Event()
        self.followers: TaskGroup | None = None
        self._lock = anyio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        data = protocol.encode(message)
        if len(data) > protocol.MAX_REPLY_BYTES:
            data = protocol.encode(protocol.error_reply(message.get("id"), ProtocolError(
                "too_large", f"the reply would be {len(data)} bytes, over the limit of "
                f"{protocol.MAX_REPLY_BYTES}; ask for less (e.g. peek a smaller file)")))
        await self.send_bytes(data)

    async def send_bytes(self, data: bytes) -> None:
        """Write whole lines (a write is handed to the transport whole, or not at all)."""
        async with self._lock:
            if self.closed:
                return
            try:
                await self.stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                self.closed = True

    async def hang_up(self) -> None:
        self.closed = True
        with anyio.CancelScope(shield=True):
            await self.stream.aclose()

    def shut_down(self) -> None:
        """End the connection both ways, so that its reader meets the end of the stream and
        stops by itself: cancelling a task waiting in ``receive()`` can race with anyio's
        reader callback (agronholm/anyio#1267), as in the Local driver."""
        try:
            self.stream.extra(SocketAttribute.raw_socket).shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Server:
    """The daemon for one gangadir; :meth:`serve` runs it until it is asked to stop."""

    def __init__(self, gangadir: str | os.PathLike[str], config: Config,
                 addons: Sequence[Addon] = ()) -> None:
        self.gangadir = Path(gangadir).expanduser().absolute()
        self.config = config
        self.paths = ServicePaths(self.gangadir)
        self.owner = os.getuid()
        self.started = time.time()
        self._settings = config["Service"]
        self._stop = anyio.Event()
        self._stopping = False
        self._busy = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._executions: set[Execution] = set()
        self._connections: set[_Connection] = set()
        self._unconnected = anyio.Event()  # set when the last connection ends
        self._engine: Engine | None = None
        self._console: Console | None = None
        self._work: TaskGroup | None = None
        self._addons = tuple(addons)
        self._lines = fanout.LineCache()

    # -- lifecycle --------------------------------------------------------------------

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Claim the gangadir, start the engine and serve until :meth:`stop` (or a signal);
        ``on_ready`` is called once clients can connect."""
        lock = self._claim()
        try:
            async with InterruptiblePortal() as portal, \
                    Engine(self.gangadir, config=self.config) as engine:
                self._engine = engine
                gpi.attach(portal, engine)
                self._console = Console(max_running=self._settings["max_commands"],
                                        output_limit=protocol.MAX_REPLY_BYTES // 4)
                listener = await SocketListener.from_socket(self._listen())
                async with anyio.create_task_group() as work:
                    self._work = work
                    for addon in self._addons:
                        await work.start(addon, engine)
                    async with anyio.create_task_group() as front:
                        front.start_soon(self._watch_signals)
                        accepting = anyio.CancelScope()
                        front.start_soon(self._accept, listener, front, accepting)
                        log.info("service ready", pid=os.getpid(), gangadir=str(self.gangadir),
                                 version=__version__)
                        if on_ready is not None:
                            on_ready()
                        await self._stop.wait()
                        accepting.cancel()
                        await self._drain(listener)
                        front.cancel_scope.cancel()
                    work.cancel_scope.cancel()
                log.info("service stopping: closing the engine")
        finally:
            self._release(lock)
        log.info("service stopped", pid=os.getpid())

    def stop(self) -> None:
        """Ask the daemon to stop (see the module's documentation for what that means)."""
        self._stop.set()

    async def _drain(self, listener: SocketListener) -> None:
        self._stopping = True
        log.info("service stopping", running=self._busy)
        await listener.aclose()
        for connection in list(self._connections):
            if connection.followers is not None:
                connection.followers.cancel_scope.cancel()
        with anyio.move_on_after(self._settings["stop_timeout"]):
            await self._idle.wait()
        if self._busy:
            log.warning("interrupting send_cmd code still running at stop", count=len(self._executions))
            for execution in list(self._executions):
                execution.interrupt()
            with anyio.move_on_after(self._settings["interrupt_grace"]):
                await self._idle.wait()
        for connection in list(self._connections):
            with anyio.move_on_after(1):
                await connection.send(protocol.error_reply(
                    None, ServiceError("the daemon stopped")))
            connection.shut_down()
        with anyio.move_on_after(1 if self._connections else 0):
            await self._unconnected.wait()

    def _claim(self) -> int:
        """Take the pid file's lock, cleaning what a dead daemon left; refuse if one runs."""
        paths = self.paths
        paths.make_directory()
        fd = os.open(paths.pidfile, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = read_pid(fd)
            os.close(fd)
            raise ServiceRunningError(
                f"a ganga-async service already runs for {self.gangadir} (pid {pid}); stop it "
                f"with: ganga-async --gangadir {self.gangadir} service stop", pid) from None
        stale = read_pid(fd)
        if stale is not None:
            log.warning("removed the pid file of a daemon that died", pid=stale)
        if os.path.lexists(paths.socket):
            os.unlink(paths.socket)
            log.warning("removed a stale socket", path=str(paths.socket))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        return fd

    def _release(self, lock: int) -> None:
        for path in (self.paths.socket, self.paths.pidfile):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        os.close(lock)

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.fchmod(sock.fileno(), 0o600)
            with self.paths.socket_address() as address:
                sock.bind(address)
            os.chmod(self.paths.socket, 0o600)
            sock.listen(socket.SOMAXCONN)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("stop requested by signal", signal=signal.Signals(signum).name)
                self.stop()

    # -- connections ------------------------------------------------------------------

    async def _accept(self, listener: SocketListener, tg: TaskGroup, scope: anyio.CancelScope) -> None:
        with scope:
            while True:
                try:
                    stream = await listener.accept()
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return
                except OSError as exc:
                    log.error("cannot accept a connection", error=str(exc))
                    await anyio.sleep(0.1)
                    continue
                tg.start_soon(self._serve_connection, stream)

    async def _serve_connection(self, stream: SocketStream) -> None:
        async with stream:
            uid, pid = peer_uid(stream.extra(SocketAttribute.raw_socket))
            if uid != self.owner:
                log.warning("connection refused: another user", uid=uid, pid=pid, owner=self.owner)
                connection = _Connection(stream, pid)
                with anyio.move_on_after(1):
                    await connection.send(protocol.error_reply(None, ServiceAccessError(
                        f"this daemon serves uid {self.owner} only; connection from uid {uid} "
                        "refused")))
                await _hang_up(stream)
                return
            connection = _Connection(stream, pid)
            self._connections.add(connection)
            self._unconnected = anyio.Event()
            try:
                async with anyio.create_task_group() as followers:
                    connection.followers = followers
                    await self._read_requests(connection)
                    followers.cancel_scope.cancel()
                while connection.unanswered and not connection.closed:
                    connection.answered = anyio.Event()
                    await connection.answered.wait()
            finally:
                connection.closed = True
                self._connections.discard(connection)
                if not self._connections:
                    self._unconnected.set()

    async def _read_requests(self, connection: _Connection) -> None:
        """Read requests until the client closes its side, or breaks the protocol."""
        buffered = BufferedByteReceiveStream(connection.stream)
        limit = protocol.MAX_REQUEST_BYTES
        while True:
            try:
                line = await buffered.receive_until(b"\n", limit + 1)
                if len(line) > limit:
                    raise anyio.DelimiterNotFound(limit)
            except anyio.IncompleteRead:
                if buffered.buffer:
                    await self._refuse(connection, ProtocolError(
                        "truncated", "the connection closed in the middle of a message; end "
                        "every message with a newline"))
                return
            except anyio.DelimiterNotFound:
                await self._refuse(connection, ProtocolError(
                    "too_large", f"a request may have at most {limit} bytes"))
                return
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return
            if not line.strip():
                continue
            try:
                request = protocol.decode_request(line)
            except ProtocolError as exc:
                await self._refuse(connection, exc)
                return
            await self._dispatch(connection, request)

    async def _refuse(self, connection: _Connection, exc: ProtocolError) -> None:
        log.warning("protocol error; closing the connection", code=exc.code, error=str(exc),
                    pid=connection.pid)
        await connection.send(protocol.error_reply(None, exc))
        await _hang_up(connection.stream)

    # -- requests ---------------------------------------------------------------------

    async def _dispatch(self, connection: _Connection, request: protocol.Request) -> None:
        """Start or answer one request. Nothing it raises may end the connection or the
        daemon: a failure here is the request's error reply."""
        try:
            await self._start(connection, request)
        except Exception as exc:
            await connection.send(self._failure(request, exc))

    async def _start(self, connection: _Connection, request: protocol.Request) -> None:
        rid, op = request.id, request.op
        if op == "cancel":
            await connection.send(protocol.ok_reply(rid, self._cancel(connection, request)))
            return
        if rid in connection.in_flight:
            await connection.send(protocol.error_reply(rid, ProtocolError(
                "duplicate_id", f"request id {rid!r} is already in use on this connection")))
            return
        if self._stopping:
            await connection.send(protocol.error_reply(rid, ServiceError(
                "the daemon is stopping and takes no new requests")))
            return
        if op == "ping":
            await connection.send(protocol.ok_reply(rid, self._ping()))
        elif op == "shutdown":
            log.info("stop requested by a client", pid=connection.pid)
            await connection.send(protocol.ok_reply(rid, {"pid": os.getpid()}))
            self.stop()
        elif op == "events" or op in protocol.CANCELLABLE:
            assert connection.followers is not None
            connection.in_flight.add(rid)
            connection.followers.start_soon(self._follow, connection, request)
        elif op == "send_cmd" or op in OPERATIONS:
            self._accepted(connection)
            connection.in_flight.add(rid)
            assert self._work is not None
            self._work.start_soon(self._run, connection, request)
        else:
            valid = ", ".join(sorted([*_SERVER_OPS, *OPERATIONS]))
            await connection.send(protocol.error_reply(rid, ProtocolError(
                "unknown_op", f"unknown operation {op!r}; valid: {valid}")))

    def _accepted(self, connection: _Connection) -> None:
        self._busy += 1
        self._idle = anyio.Event() if self._idle.is_set() else self._idle
        connection.unanswered += 1

    def _finished(self, connection: _Connection) -> None:
        self._busy -= 1
        if not self._busy:
            self._idle.set()
        connection.unanswered -= 1
        connection.answered.set()

    def _ping(self) -> dict[str, Any]:
        return {"service": "ganga-async", "version": __version__, "protocol": protocol.VERSION,
                "pid": os.getpid(), "gangadir": str(self.gangadir), "uptime": time.time() - self.started,
                "connections": len(self._connections), "in_progress": self._busy}

    def _cancel(self, connection: _Connection, request: protocol.Request) -> dict[str, Any]:
        args = Arguments("cancel", request.args)
        args.check_known("id")
        target = args.get("id", (int, str))
        canceller = connection.cancellers.get(target)
        if canceller is not None:
            canceller()
        return {"id": target, "cancelled": canceller is not None}

    async def _run(self, connection: _Connection, request: protocol.Request) -> None:
        """An operation or send_cmd: it runs to its end whatever becomes of its client."""
        reply = await self._answer(connection, request)
        try:
            await connection.send(reply)
        finally:
            connection.in_flight.discard(request.id)
            self._finished(connection)

    async def _follow(self, connection: _Connection, request: protocol.Request) -> None:
        """A stream of events, or a wait: cancellable, and ended with its connection."""
        with anyio.CancelScope() as scope:
            connection.cancellers[request.id] = scope.cancel
            reply = await self._answer(connection, request)
        if scope.cancelled_caught:
            reply = protocol.error_reply(request.id, ServiceError(
                "the daemon is stopping" if self._stopping else "cancelled by the client"))
        with anyio.CancelScope(shield=True), anyio.move_on_after(5) as sending:
            try:
                await connection.send(reply)
            finally:
                connection.in_flight.discard(request.id)
        if sending.cancelled_caught:  # the client reads nothing: it would wait forever
            await connection.hang_up()

    async def _answer(self, connection: _Connection, request: protocol.Request) -> dict[str, Any]:
        """The reply to a request the daemon runs: its result, or the error that ended it."""
        try:
            if request.op == "send_cmd":
                result: Any = await self._send_cmd(connection, request)
            elif request.op == "events":
                result = await self._events(connection, request)
            else:
                assert self._engine is not None
                result = await OPERATIONS[request.op](self._engine, Arguments(request.op, request.args))
            return protocol.ok_reply(request.id, result)
        except Exception as exc:
            return self._failure(request, exc)
        finally:
            connection.cancellers.pop(request.id, None)

    def _failure(self, request: protocol.Request, exc: Exception) -> dict[str, Any]:
        if isinstance(exc, GangaAsyncError | FileNotFoundError):
            log.info("request failed", op=request.op, error=str(exc))
            return protocol.error_reply(request.id, exc)
        log.error("request failed unexpectedly", op=request.op, error=repr(exc), exc_info=exc)
        return protocol.error_reply(request.id, ServiceError(
            f"{request.op} failed inside the daemon: {exc!r} (see {self.paths.log})"))

    async def _events(self, connection: _Connection, request: protocol.Request) -> dict[str, Any]:
        args = Arguments("events", request.args)
        args.check_known("job", "subjobs", "types")
        job = args.get("job", (int, str), None)
        subjobs = args.get("subjobs", bool, True)
        types = _event_types(args)
        if job is not None and (isinstance(job, bool) or not str(job).isdecimal()):
            raise ProtocolError("bad_args", f"events: argument 'job' must be a job id such as 3, "
                                f"not {job!r}")
        job_id = int(job) if job is not None else None

        assert self._engine is not None
        streams = event_streams(self._engine, types, job_id, subjobs)
        try:
            return await fanout.follow(connection, request.id, types, streams,
                                       backlog=self._settings["event_backlog"],
                                       drop_timeout=self._settings["drop_timeout"], cache=self._lines)
        finally:
            for stream, _ in streams:
                stream.close()

    async def _send_cmd(self, connection: _Connection, request: protocol.Request) -> dict[str, Any]:
        args = Arguments("send_cmd", request.args)
        args.check_known("code", "timeout")
        code = args.get("code", str)
        timeout = args.get("timeout", (int, float), None)
        assert self._console is not None
        execution = self._console.execution()
        reasons: list[str] = []
        self._executions.add(execution)
        try:
            with anyio.CancelScope() as abandon:

                def interrupt(reason: str) -> None:
                    if execution.interrupted:
                        return
                    reasons.append(reason)
                    execution.interrupt()
                    abandon.deadline = anyio.current_time() + self._settings["interrupt_grace"]

                connection.cancellers[request.id] = lambda: interrupt("cancelled by the client")
                async with anyio.create_task_group() as timer:
                    if timeout is not None:
                        timer.start_soon(self._interrupt_after, timeout, interrupt)
                    output = await self._console.run(execution, code)
                    timer.cancel_scope.cancel()
            if abandon.cancelled_caught:
                log.warning("interrupted send_cmd code did not stop; its thread is left to finish")
                output = execution.output.text() + (
                    "\n[interrupted, but the code did not stop within "
                    f"{self._settings['interrupt_grace']} s: it is blocked in a call; its thread "
                    "was left to finish on its own]\n")
        finally:
            self._executions.discard(execution)
        return {"output": output, "interrupted": execution.interrupted,
                "reason": reasons[0] if reasons else None}

    @staticmethod
    async def _interrupt_after(delay: float, interrupt: Callable[[str], None]) -> None:
        await anyio.sleep(delay)
        interrupt(f"timeout: still running after {delay} s")


async def _hang_up(stream: SocketStream) -> None:
    """End our side, then read what the client still sends for a moment: closing a socket with
    unread data resets the connection, and the client could lose the error reply."""
    with anyio.move_on_after(1):
        try:
            await stream.send_eof()
            for _ in range(64):
                await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass


def _event_types(args: Arguments) -> list[str]:
    """The ``types`` argument of ``events``: which of :data:`protocol.EVENT_TYPES` the client follows."""
    types = args.get("types", list, list(protocol.EVENT_TYPES))
    unknown = [t for t in types if t not in protocol.EVENT_TYPES]
    if not types or unknown:
        raise ProtocolError("bad_args", f"events: argument 'types' must list one or more of "
                            f"{', '.join(map(repr, protocol.EVENT_TYPES))}, not {types!r}")
    return [t for t in protocol.EVENT_TYPES if t in types]


def configure_logging(paths: ServicePaths, *, foreground: bool, verbose: int = 0) -> None:
    """The daemon's logging: JSON lines in the service log, and the console in the foreground."""
    logger = logging.getLogger("ganga_async")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    paths.log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    to_file = logging.StreamHandler(private_append(paths.log))
    to_file.setFormatter(JsonFormatter())
    logger.addHandler(to_file)
    if foreground:
        console = logging.StreamHandler(sys.__stderr__)
        console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(console)
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    logger.propagate = False


def run_daemon(gangadir: Path, config: Config, *, foreground: bool, ready_fd: int | None = None,
               verbose: int = 0, addons: Sequence[Addon] = ()) -> int:
    """Run the daemon in this process until it stops; returns the exit code.

    ``ready_fd`` is a pipe to tell whoever started the daemon that it serves (``ready <pid>``)
    or why it could not start (``error: ...``). ``addons`` run beside the socket (see
    :data:`Addon`).
    """
    paths = ServicePaths(gangadir)
    server = Server(gangadir, config, addons)

    def tell(text: str) -> None:
        nonlocal ready_fd
        if ready_fd is not None:
            try:
                os.write(ready_fd, text.encode() + b"\n")
            except OSError:
                pass
            os.close(ready_fd)
            ready_fd = None

    try:
        paths.make_directory()
        configure_logging(paths, foreground=foreground, verbose=verbose)
        install_output_router()
        config["Configuration"]["gangadir"] = str(server.gangadir)
        anyio.run(server.serve, lambda: tell(f"ready {os.getpid()}"), backend="asyncio")
    except GangaAsyncError as exc:
        log.error("service failed", error=str(exc))
        tell(f"error: {exc}")
        print(f"error: {exc}", file=sys.__stderr__)
        return 1
    except BaseException as exc:
        tell(f"error: the daemon failed: {exc!r}; see {paths.errlog}")
        raise
    return 0

