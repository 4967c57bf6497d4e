"""Clients of the daemon: :class:`AsyncGangaService` for async code, :class:`GangaService` for
everything else (scripts, IPython, other programs' Python).

::

    from ganga_async.service import GangaService

    gs = GangaService()
    gs.gangadir = "/home/me/gangadir-server"
    gs.prerun = "source ~/dirac_ui/bashrc"     # run before the daemon starts; its environment is kept
    print(gs.send_cmd("j = Job()\\nj.submit()\\nprint(j.id)"))
    job = gs.submit({"name": "scan", "application": {"type": "Executable", "exe": "/bin/echo"}})
    for event in gs.events(job=job["id"]):
        ...
    gs.kill_server()

Both start the daemon when none runs for the gangadir (``autostart=False`` to refuse that),
and reach it over its Unix socket; every request of one client shares one connection.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio
from anyio.abc import SocketStream, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._exceptions import CommandTimeoutError, ProtocolError, ServiceError
from .._portal_thread import PortalThread
from ..config import load_config
from . import _protocol as protocol
from ._control import connect, default_gangacmd, start_command
from ._methods import JobDescription, OperationMethods

__all__ = ["AsyncGangaService", "GangaService", "JobDescription"]

class _Pending:
    """A request waiting for its reply; a stream's items arrive on ``items``."""

    def __init__(self, streaming: bool) -> None:
        self.done = anyio.Event()
        self.reply: dict[str, Any] | None = None
        self.items: MemoryObjectSendStream[dict[str, Any]] | None = None
        self.receive: MemoryObjectReceiveStream[dict[str, Any]] | None = None
        if streaming:
            self.items, self.receive = anyio.create_memory_object_stream[dict[str, Any]](math.inf)

    def finish(self, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.done.set()
        if self.items is not None:
            self.items.close()

    def result(self) -> Any:
        reply = self.reply
        assert reply is not None
        if reply.get("ok"):
            return reply.get("result")
        raise protocol.exception_from(reply.get("error") or {})


class Subscription:
    """A stream of events from the daemon: ``async for event in subscription``; close it (or
    use ``async with``) to stop following."""

    def __init__(self, service: AsyncGangaService, request_id: int, pending: _Pending) -> None:
        self._service = service
        self._id = request_id
        self._pending = pending
        assert pending.receive is not None
        self._receive = pending.receive

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            error = (self._pending.reply or {}).get("error") or {}
            if error.get("type") == "SlowClientError":  # the daemon dropped us: say why
                raise protocol.exception_from(error) from None
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Stop following; returns once the daemon confirmed."""
        if not self._pending.done.is_set():
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._service.cancel(self._id)
                await self._pending.done.wait()
        self._receive.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncGangaService(OperationMethods):
    """A connection to the gangadir's daemon, for async code: ``async with AsyncGangaService()
    as gs: ...``.

    ``gangadir`` defaults to ``[Configuration] gangadir``. When no daemon runs and
    ``autostart`` is true, ``gangacmd service start`` starts one (``gangacmd`` defaults to this
    interpreter running ganga-async), after the shell snippet ``prerun`` if one is given: the
    daemon then keeps the environment ``prerun`` made (this is the one place a shell is used,
    because the user asks for it).

    Errors the daemon reports are raised as the same exception classes as in-process
    (``JobSpecError`` naming the field, ``JobNotFoundError``, ...). The typed operations
    (``submit``, ``jobs``, ``job``, ``kill``, ...) are those of
    :class:`~ganga_async.service._methods.OperationMethods`, over :meth:`call`.
    """

    def __init__(
        self,
        gangadir: str | os.PathLike[str] | None = None,
        *,
        prerun: str | None = None,
        gangacmd: str | None = None,
        autostart: bool = True,
    ) -> None:
        config = load_config()
        self.gangadir = Path(gangadir).expanduser() if gangadir is not None else config.gangadir
        self.prerun = prerun
        self.gangacmd = gangacmd or default_gangacmd()
        self.autostart = autostart
        self.start_timeout: float = config["Service"]["start_timeout"]
        self.daemon_pid: int | None = None
        self._stream: SocketStream | None = None
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._send_lock = anyio.Lock()
        self._lost: BaseException | None = None
        self._stack: AsyncExitStack | None = None

    # -- connection -------------------------------------------------------------------

    async def __aenter__(self) -> AsyncGangaService:
        if self._stack is not None:
            return self
        self.gangadir = self.gangadir.expanduser().absolute()
        stream = await connect(self.gangadir)
        if stream is None and self.autostart:
            await self._start_daemon()
            stream = await connect(self.gangadir)
        if stream is None:
            raise ServiceError(f"no ganga-async service runs for {self.gangadir}; start one with: "
                               f"ganga-async --gangadir {self.gangadir} service start")
        return await self._attach(stream)

    @classmethod
    async def running(cls, gangadir: str | os.PathLike[str]) -> AsyncGangaService | None:
        """A client connected to the daemon that runs for ``gangadir``, or None when none runs
        (none is started). Close it with :meth:`aclose`, or ``async with`` it."""
        client = cls(gangadir, autostart=False)
        client.gangadir = client.gangadir.expanduser().absolute()
        stream = await connect(client.gangadir)
        return None if stream is None else await client._attach(stream)

    async def _attach(self, stream: SocketStream) -> AsyncGangaService:
        """Serve this client over ``stream``, a connection :func:`connect` made to the daemon."""
        stack = AsyncExitStack()
        try:
            self._stream = await stack.enter_async_context(stream)
            tg: TaskGroup = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            tg.start_soon(self._read, stream)
            self.daemon_pid = (await self.ping())["pid"]
        except BaseException:
            await stack.aclose()
            self._stream = None
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection; what the daemon accepted goes on."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        self._stream = None

    async def _start_daemon(self) -> None:
        argv = start_command(self.gangacmd, self.gangadir, self.prerun)
        with anyio.fail_after(self.start_timeout + 10):
            result = await anyio.run_process(argv, check=False)
        if result.returncode not in (0, 1):
            message = result.stderr.decode(errors="replace").strip() or f"exit code {result.returncode}"
            raise ServiceError(f"starting the daemon with {self.gangacmd!r} failed: {message}")

    async def _read(self, stream: SocketStream) -> None:
        buffered = BufferedByteReceiveStream(stream)
        reason: BaseException
        try:
            while True:
                message = protocol.decode_reply(
                    await buffered.receive_until(b"\n", protocol.MAX_REPLY_BYTES))
                pending = self._pending.get(message["id"]) if message["id"] is not None else None
                if pending is None:
                    if message["id"] is None and message.get("ok") is False:
                        raise protocol.exception_from(message.get("error") or {})
                    continue
                if "event" in message:
                    if pending.items is not None:
                        pending.items.send_nowait(message["event"])
                    continue
                del self._pending[message["id"]]
                pending.finish(message)
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError,
                anyio.ClosedResourceError, OSError):
            reason = ServiceError("the connection to the daemon was lost")
        except anyio.DelimiterNotFound:
            reason = ProtocolError("too_large", "the daemon sent a reply over the size limit")
        except ServiceError as exc:
            reason = exc
        self._lost = reason
        for request_id, pending in list(self._pending.items()):
            del self._pending[request_id]
            pending.finish(protocol.error_reply(request_id, reason))

    async def _request(self, op: str, args: dict[str, Any], *, streaming: bool = False
                       ) -> tuple[int, _Pending]:
        if self._stream is None:
            raise ServiceError("not connected: use `async with AsyncGangaService(...) as gs:`")
        if self._lost is not None:
            raise self._lost
        request_id = next(self._ids)
        pending = _Pending(streaming)
        self._pending[request_id] = pending
        data = protocol.encode(protocol.request_message(request_id, op, args))
        if len(data) > protocol.MAX_REQUEST_BYTES:
            del self._pending[request_id]
            raise ProtocolError("too_large", f"the {op} request is {len(data)} bytes, over the limit "
                                f"of {protocol.MAX_REQUEST_BYTES}")
        async with self._send_lock:
            try:
                await self._stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                self._pending.pop(request_id, None)
                raise ServiceError(f"the connection to the daemon was lost: {exc}") from exc
        return request_id, pending

    async def cancel(self, request_id: int) -> None:
        """Ask the daemon to stop request ``request_id`` of this connection (an ``events``
        stream, a ``wait``, a ``send_cmd``); a connection already lost is no error."""
        try:
            await self._request("cancel", {"id": request_id})
        except ServiceError:
            pass

    async def call(self, /, op: str, **args: Any) -> Any:
        """Send operation ``op`` with ``args`` and return its result: the way to reach
        operations this class has no method for. If the caller is cancelled while a
        cancellable operation (``wait``, see :data:`._protocol.CANCELLABLE`) runs, the daemon is
        told to stop it."""
        request_id, pending = await self._request(op, args)
        try:
            await pending.done.wait()
        except BaseException:
            if op in protocol.CANCELLABLE and not pending.done.is_set():
                with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                    await self.cancel(request_id)
            raise
        return pending.result()

    # -- the operations ---------------------------------------------------------------

    async def ping(self) -> dict[str, Any]:
        """Who the daemon is: ``pid``, ``version``, ``protocol``, ``gangadir``, ``uptime``,
        ``connections``, ``in_progress`` (operations and send_cmd code running)."""
        result: dict[str, Any] = await self.call("ping")
        return result

    async def send_cmd(self, code: str, timeout: float | None = None) -> str:  # noqa: ASYNC109
        """Run Python ``code`` in the daemon's persistent namespace (the plain-Python interface:
        ``Job``, ``jobs``, ``config``, ...) and return what it printed, a traceback included.

        Cancelling the caller interrupts the code (KeyboardInterrupt in it); so does
        ``timeout`` (counted and enforced by the daemon, hence a parameter), which then raises
        :class:`CommandTimeoutError` carrying the output.
        """
        command = await self.start_cmd(code, timeout)
        try:
            return await command.result()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await command.interrupt()
            raise

    sendCmd = send_cmd

    async def start_cmd(self, code: str, timeout: float | None = None) -> Command:  # noqa: ASYNC109
        """Start ``send_cmd`` code and return its :class:`Command` at once."""
        request_id, pending = await self._request("send_cmd", {"code": code, "timeout": timeout})
        return Command(self, request_id, pending)

    @asynccontextmanager
    async def events(self, job: int | str | None = None, *, subjobs: bool = True,
                     types: Sequence[str] = protocol.EVENT_TYPES) -> AsyncIterator[Subscription]:
        """Follow status transitions and credential warnings: ``async with gs.events() as
        events: async for e in events: ...``. Each event is a dict whose ``type`` says what it
        is: ``"status"`` (``fqid``, ``job_id``, ``index``, ``old``, ``new``, ``time``,
        ``reason``) or ``"credential"`` (``kind``: expiring, short, expired, renewed,
        renewal_failed or valid; ``credential``, ``time_left``, ``time``, ``message``).
        ``types=["status"]`` or ``["credential"]`` follows one of them only. ``job`` and
        ``subjobs=False`` filter status events: one job's, and without the subjobs' own
        transitions (their master's still come). The subscription is active when the ``async
        with`` body starts, so nothing after that is missed."""
        args: dict[str, Any] = {"subjobs": subjobs, "types": list(types)}
        if job is not None:
            args["job"] = job
        request_id, pending = await self._request("events", args, streaming=True)
        async with Subscription(self, request_id, pending) as subscription:
            try:
                first = await subscription.__anext__()
            except StopAsyncIteration:
                pending.result()
                raise ServiceError("the daemon ended the subscription at once") from None
            if first.get("type") != "subscribed":
                raise ProtocolError("malformed", f"expected the subscription's confirmation, got {first}")
            yield subscription

    async def shutdown(self, *, wait: bool = True) -> None:
        """Stop the daemon: it lets accepted work finish and writes everything first. With
        ``wait`` this returns once the daemon's process has ended."""
        result = await self.call("shutdown")
        pid = int(result["pid"])
        if wait:
            await _process_exit(pid)

    async def kill_server(self) -> None:
        """Stop the daemon and wait until it has ended (Ganga's ``killServer``)."""
        await self.shutdown(wait=True)

    killServer = kill_server


class Command:
    """A ``send_cmd`` in progress: await :meth:`result`, or :meth:`interrupt` it."""

    def __init__(self, service: AsyncGangaService, request_id: int, pending: _Pending) -> None:
        self._service = service
        self.id = request_id
        self._pending = pending

    async def result(self) -> str:
        """What the code printed; raises :class:`CommandTimeoutError` if its timeout ran out."""
        await self._pending.done.wait()
        outcome: dict[str, Any] = self._pending.result()
        output = str(outcome["output"])
        reason = outcome.get("reason") or ""
        if reason.startswith("timeout"):
            raise CommandTimeoutError(f"send_cmd interrupted: {reason}", output)
        return output

    async def interrupt(self) -> str | None:
        """Raise KeyboardInterrupt in the code and return its output once the daemon answered
        (None if it did not within the grace period and a few seconds)."""
        if not self._pending.done.is_set():
            await self._service.cancel(self.id)
        with anyio.move_on_after(30):
            await self._pending.done.wait()
            try:
                outcome = self._pending.result()
            except ServiceError:
                return None
            return str(outcome["output"])
        return None


async def _process_exit(pid: int) -> None:
    """Return once process ``pid`` has ended."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        await anyio.wait_readable(fd)
    finally:
        os.close(fd)


_CLOSE_TIMEOUT = 10.0
"""Seconds :meth:`GangaService.close` waits for the connection to close and its thread to end."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _sync(method: Callable[Concatenate[AsyncGangaService, _P], Awaitable[_R]]
          ) -> Callable[Concatenate[GangaService, _P], _R]:
    """``method`` of :class:`AsyncGangaService` as a blocking method of :class:`GangaService`."""

    @functools.wraps(method)
    def blocking(self: GangaService, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        loop = self._open()

        async def call() -> _R:
            return await method(loop.value, *args, **kwargs)

        return loop.portal.call(call)

    return blocking


class GangaService:
    """The daemon's client for code without ``async``: the methods of
    :class:`AsyncGangaService`, blocking (``send_cmd``/``sendCmd``, ``kill_server``/
    ``killServer``, ``submit``, ``jobs``, ``job``, ``kill``, ``resubmit``, ``remove``, ``peek``,
    ``wait``, ``credentials``, ``renew_credentials``, ``shareref``, ``shareref_ls``,
    ``shareref_lookup``, ``shareref_rebuild``, ``box``, ``task_add``, ``shutdown``, ``events``,
    ``call``).

    Set ``gangadir``, ``prerun`` and ``gangacmd`` before the first call: it connects (starting
    the daemon if none runs) and keeps the connection until :meth:`close` or the end of the
    interpreter. Ctrl-C during ``send_cmd`` interrupts the code in the daemon and raises
    KeyboardInterrupt here; the daemon goes on.
    """

    def __init__(
        self,
        gangadir: str | os.PathLike[str] | None = None,
        *,
        prerun: str | None = None,
        gangacmd: str | None = None,
        autostart: bool = True,
    ) -> None:
        self.gangadir: str | os.PathLike[str] = (
            Path(gangadir).expanduser() if gangadir is not None else load_config().gangadir)
        self.prerun = prerun
        self.gangacmd = gangacmd or default_gangacmd()
        self.autostart = autostart
        self._loop: PortalThread[AsyncGangaService] | None = None
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def _open(self) -> PortalThread[AsyncGangaService]:
        with self._lock:
            if self._loop is None:
                service = functools.partial(AsyncGangaService, self.gangadir, prerun=self.prerun,
                                            gangacmd=self.gangacmd, autostart=self.autostart)
                self._loop = PortalThread(service, "ganga-async service client")
                self._finalizer = weakref.finalize(self, self._loop.close, _CLOSE_TIMEOUT)
            return self._loop

    def close(self) -> None:
        """Close the connection (the daemon runs on); the next call connects again. A call
        another thread is blocked in is cancelled."""
        with self._lock:
            finalizer, self._loop, self._finalizer = self._finalizer, None, None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> GangaService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    call = _sync(AsyncGangaService.call)
    ping = _sync(AsyncGangaService.ping)

    def send_cmd(self, code: str, timeout: float | None = None) -> str:
        """Run ``code`` in the daemon's namespace and return what it printed (see
        :meth:`AsyncGangaService.send_cmd`)."""
        loop = self._open()
        command = loop.portal.call(loop.value.start_cmd, code, timeout)
        try:
            return loop.portal.call(command.result)
        except KeyboardInterrupt:
            loop.portal.call(command.interrupt)
            raise

    sendCmd = send_cmd

    submit = _sync(AsyncGangaService.submit)
    task_add = _sync(AsyncGangaService.task_add)
    jobs = _sync(AsyncGangaService.jobs)
    job = _sync(AsyncGangaService.job)
    kill = _sync(AsyncGangaService.kill)
    resubmit = _sync(AsyncGangaService.resubmit)
    remove = _sync(AsyncGangaService.remove)
    peek = _sync(AsyncGangaService.peek)
    wait = _sync(AsyncGangaService.wait)
    credentials = _sync(AsyncGangaService.credentials)
    renew_credentials = _sync(AsyncGangaService.renew_credentials)
    shareref = _sync(AsyncGangaService.shareref)
    shareref_ls = _sync(AsyncGangaService.shareref_ls)
    shareref_lookup = _sync(AsyncGangaService.shareref_lookup)
    shareref_rebuild = _sync(AsyncGangaService.shareref_rebuild)
    box = _sync(AsyncGangaService.box)

    def events(self, job: int | str | None = None, *, subjobs: bool = True,
               types: Sequence[str] = protocol.EVENT_TYPES) -> Iterator[dict[str, Any]]:
        """Follow status transitions and credential warnings, blocking: ``for event in
        gs.events(job=3): ...``; leave the loop (or close the generator) to stop following.
        The arguments are those of :meth:`AsyncGangaService.events`."""
        loop = self._open()
        subscription = loop.value.events(job, subjobs=subjobs, types=types)
        with loop.portal.wrap_async_context_manager(subscription) as stream:
            while True:
                try:
                    yield loop.portal.call(stream.__anext__)
                except StopAsyncIteration:
                    return

    def shutdown(self, *, wait: bool = True) -> None:
        loop = self._open()
        loop.portal.call(lambda: loop.value.shutdown(wait=wait))
        self.close()

    def kill_server(self) -> None:
        """Stop the daemon and wait until it has ended (Ganga's ``killServer``)."""
        self.shutdown(wait=True)

    killServer = kill_server
