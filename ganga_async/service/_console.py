"""``send_cmd``: Python code run in the daemon, in one namespace that persists like a shell session.

The namespace holds the plain-Python interface (``from ganga_async.gpi import *``) bound to the
daemon's own engine. Each piece of code runs in a worker thread, so a long one blocks nobody;
what it prints (stdout and stderr, interleaved as a terminal shows them) is captured for its
request alone, and an exception comes back as its traceback text. When the code's last
statement is an expression its value is printed, as at an interactive prompt.

Interruption, when the client asks for it: ``KeyboardInterrupt`` is raised in the code's
thread, and any engine call the code is waiting on (``j.wait()``, ``j.submit()``) is cancelled
so that the exception arrives at once. Code blocked inside one long C call (``time.sleep(3600)``)
only sees it when that call returns; the request is then answered after a grace period and the
thread is left to end on its own.
"""

from __future__ import annotations

import ast
import builtins
import ctypes
import inspect
import linecache
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, TextIO, cast

import anyio
from anyio.from_thread import BlockingPortal

from .._log import get_logger

__all__ = ["Console", "Execution", "InterruptiblePortal", "install_output_router"]

log = get_logger(__name__)

_local = threading.local()
"""``_local.execution``: the :class:`Execution` the current thread runs, if any."""


class _Interrupted(Exception):
    """An engine call cancelled because its send_cmd was interrupted."""


class _Output:
    """What one execution printed, up to ``limit`` characters (the rest is counted, not kept)."""

    def __init__(self, limit: int) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._limit = limit
        self.dropped = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            room = self._limit - self._size
            if room <= 0:
                self.dropped += len(text)
                return
            self._parts.append(text[:room])
            self._size += min(len(text), room)
            self.dropped += max(len(text) - room, 0)

    def text(self) -> str:
        with self._lock:
            text = "".join(self._parts)
            if self.dropped:
                text += f"\n[output truncated: {self.dropped} more characters were printed]\n"
            return text


class _Router:
    """Stands in for ``sys.stdout`` or ``sys.stderr`` in the daemon: what a send_cmd thread
    writes goes to its execution's output, everything else to the original stream."""

    def __init__(self, original: TextIO) -> None:
        self._original = original

    def write(self, text: str) -> int:
        execution: Execution | None = getattr(_local, "execution", None)
        if execution is None:
            return self._original.write(text)
        execution.output.write(text)
        return len(text)

    def flush(self) -> None:
        if getattr(_local, "execution", None) is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def install_output_router() -> None:
    """Route this process's ``sys.stdout`` and ``sys.stderr`` per thread (the daemon's own)."""
    if not isinstance(sys.stdout, _Router):
        sys.stdout = cast(TextIO, _Router(sys.stdout))
    if not isinstance(sys.stderr, _Router):
        sys.stderr = cast(TextIO, _Router(sys.stderr))


class Execution:
    """One send_cmd: its output, the thread running it, and the means to interrupt it.

    The state changes under a lock, so that ``KeyboardInterrupt`` is raised into the thread
    only while it runs the user's code, never once it has moved on to other work.
    """

    def __init__(self, output_limit: int) -> None:
        self.output = _Output(output_limit)
        self.interrupted = False
        self.scopes: set[anyio.CancelScope] = set()
        self._lock = threading.Lock()
        self._thread: int | None = None
        self._running = False
        self._done = False

    def begin(self) -> None:
        """Called by the worker thread before the code runs."""
        with self._lock:
            self._thread = threading.get_ident()
            self._running = True
            if self.interrupted:
                raise KeyboardInterrupt

    def end(self) -> None:
        """Called by the worker thread once the code ended; an interruption still pending
        is withdrawn."""
        with self._lock:
            if self._running and self.interrupted and self._thread is not None:
                _raise_in_thread(self._thread, None)
            self._running = False
            self._done = True

    def interrupt(self) -> None:
        """Raise KeyboardInterrupt in the code (once) and cancel the engine calls it waits on.
        Call it in the event loop's thread."""
        with self._lock:
            if self.interrupted or self._done:
                return
            self.interrupted = True
            if self._running and self._thread is not None:
                _raise_in_thread(self._thread, KeyboardInterrupt)
        for scope in list(self.scopes):
            scope.cancel()


def _raise_in_thread(thread_id: int, exc_type: type[BaseException] | None) -> None:
    """Raise ``exc_type`` in the thread at its next Python instruction (None withdraws it)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type) if exc_type is not None else None)


class InterruptiblePortal(BlockingPortal):
    """A blocking portal whose calls from a send_cmd thread end with KeyboardInterrupt as soon
    as that send_cmd is interrupted, instead of when the engine call returns."""

    def call(self, func: Callable[..., Any], *args: Any) -> Any:  # type: ignore[override]
        execution: Execution | None = getattr(_local, "execution", None)
        if execution is None:
            return super().call(func, *args)
        try:
            return super().call(_guarded, execution, func, *args)
        except _Interrupted:
            raise KeyboardInterrupt from None


async def _guarded(execution: Execution, func: Callable[..., Any], *args: Any) -> Any:
    with anyio.CancelScope() as scope:
        if execution.interrupted:
            scope.cancel()
        execution.scopes.add(scope)
        try:
            result = func(*args)
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            execution.scopes.discard(scope)
    raise _Interrupted


SOURCES_KEPT = 1000
"""How many of the last ``send_cmd`` programs keep their source for tracebacks."""


class Console:
    """The persistent namespace and the worker threads that run code in it."""

    def __init__(self, *, max_running: int, output_limit: int) -> None:
        self.namespace: dict[str, Any] = {"__name__": "__ganga__", "__builtins__": builtins}
        exec("from ganga_async.gpi import *", self.namespace)
        self._limiter = anyio.CapacityLimiter(max_running)
        self._output_limit = output_limit
        self._count = 0

    def execution(self) -> Execution:
        return Execution(self._output_limit)

    async def run(self, execution: Execution, code: str) -> str:
        """Run ``code`` and return what it printed. If the surrounding scope is cancelled the
        thread is abandoned (it runs on until its code returns) and the output so far is kept."""
        self._count += 1
        filename = f"<send_cmd {self._count}>"
        done = anyio.Event()
        token = anyio.lowlevel.current_token()

        def target() -> None:
            try:
                self._work(execution, code, filename)
            finally:
                try:
                    anyio.from_thread.run_sync(done.set, token=token)
                except (anyio.RunFinishedError, RuntimeError):
                    pass

        async with self._limiter:
            # A daemon thread of its own, not anyio's worker pool: an abandoned thread must
            # not keep the daemon's process from exiting.
            threading.Thread(target=target, name=filename, daemon=True).start()
            await done.wait()
        return execution.output.text()

    def _work(self, execution: Execution, code: str, filename: str) -> None:
        _local.execution = execution
        try:
            try:
                execution.begin()
                self._exec(code, filename)
            finally:
                _end(execution)
        except BaseException as exc:
            execution.output.write("".join(traceback.format_exception(
                type(exc), exc, _user_frames(exc.__traceback__))))
        finally:
            _local.execution = None

    def _exec(self, code: str, filename: str) -> None:
        linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
        # The source of the last SOURCES_KEPT runs only: a daemon driven by send_cmd for weeks
        # would otherwise keep every program it was sent (older ones' tracebacks lose their lines).
        number = int(filename.removeprefix("<send_cmd ").removesuffix(">"))
        linecache.cache.pop(f"<send_cmd {number - SOURCES_KEPT}>", None)
        tree = ast.parse(code, filename, "exec")
        last: ast.Expression | None = None
        final = tree.body[-1] if tree.body else None
        if isinstance(final, ast.Expr):
            tree.body.pop()
            last = ast.Expression(final.value)
        exec(compile(tree, filename, "exec"), self.namespace)
        if last is not None:
            value = eval(compile(last, filename, "eval"), self.namespace)
            if value is not None:
                print(repr(value))


def _end(execution: Execution) -> None:
    """Run ``execution.end()`` to its end, even if the interruption lands in the middle of it."""
    while True:
        try:
            execution.end()
            return
        except KeyboardInterrupt:
            continue


def _user_frames(tb: Any) -> Any:
    """The traceback from the user's code on, without this module's frames."""
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return tb
