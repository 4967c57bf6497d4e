"""An event loop in a daemon thread holding one async resource, reached through a blocking portal.

The sync faces of the library use it: the plain-Python interface's engine (:mod:`ganga_async.gpi`)
and the blocking service client (:class:`~ganga_async.service.GangaService`).

A daemon thread closed by its owner (from ``atexit`` or ``weakref.finalize``), rather than
``anyio.from_thread.start_blocking_portal``: threading's shutdown joins that one's thread before
``atexit`` handlers run, so nothing would ever tell it to stop and the interpreter would hang at
exit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Generic, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from ._log import get_logger

__all__ = ["PortalThread"]

log = get_logger(__name__)

T = TypeVar("T")


class PortalThread(Generic[T]):
    """Enter ``factory()`` in a new event loop in a daemon thread called ``name``, and keep it
    entered until :meth:`close`; other threads reach it through :attr:`portal`.

    The constructor returns once the resource is entered, with :attr:`value` what it gave, or
    raises what prevented that. ``factory`` runs in the loop's thread, so the resource is made
    where it lives. Should the loop end on an error later, :attr:`failure` holds it.
    """

    def __init__(self, factory: Callable[[], AbstractAsyncContextManager[T]], name: str) -> None:
        self.failure: BaseException | None = None
        ready: queue.SimpleQueue[tuple[BlockingPortal, T] | BaseException] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, args=(factory, ready), name=name,
                                        daemon=True)
        self._thread.start()
        outcome = ready.get()
        if isinstance(outcome, BaseException):
            self._thread.join()
            raise outcome
        self.portal, self.value = outcome

    def _run(self, factory: Callable[[], AbstractAsyncContextManager[T]],
             ready: queue.SimpleQueue[tuple[BlockingPortal, T] | BaseException]) -> None:
        answered = False

        async def main() -> None:
            nonlocal answered
            async with BlockingPortal() as portal, AsyncExitStack() as stack:
                try:
                    value = await stack.enter_async_context(factory())
                except BaseException as exc:
                    # Caught here, not in the portal's task group, which would wrap it in a group.
                    answered = True
                    ready.put(exc)
                    return
                answered = True
                ready.put((portal, value))
                await portal.sleep_until_stopped()
                await stack.aclose()
                await portal.stop(cancel_remaining=True)

        try:
            anyio.run(main, backend="asyncio")
        except BaseException as exc:
            if not answered:
                ready.put(exc)
                return
            self.failure = exc
            log.error("an event loop thread stopped after an error", thread=self._thread.name,
                      error=repr(exc))

    def close(self, timeout: float) -> bool:
        """Leave the resource, then cancel the calls other threads still wait for, and end the
        loop; wait at most ``timeout`` seconds. True once the thread has ended."""
        try:
            self.portal.start_task_soon(self.portal.stop)
        except RuntimeError:
            pass  # the loop has stopped already
        self._thread.join(timeout)
        return not self._thread.is_alive()
