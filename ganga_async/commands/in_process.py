"""The session of a command that runs its own engine: the daemon's operations, in this process.

:class:`EngineSession` offers what the daemon's client offers (:class:`~ganga_async.service.
AsyncGangaService`): the same typed methods (:class:`~ganga_async.service._methods.
OperationMethods`), answered by the very functions the daemon runs
(:data:`~ganga_async.service._operations.OPERATIONS`) on an :class:`~ganga_async.Engine` that
the caller opened, and an ``events`` stream of the daemon's event dicts. Arguments and results
pass through JSON as they would on the socket, so a command prints the same whether a daemon
answered it or not. Errors are raised as they are, never wrapped.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import ObjectSendStream

from .._exceptions import ProtocolError
from ..engine import Engine
from ..events import EventStream
from ..service import _protocol as protocol
from ..service._methods import OperationMethods
from ..service._operations import OPERATIONS, Arguments, event_streams

__all__ = ["EngineSession"]


class EngineSession(OperationMethods):
    """The operations of the service on ``engine``, which the caller has opened and closes."""

    daemon_pid: int | None = None
    """Always None: no daemon follows the jobs once this session's engine closes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.gangadir: Path = engine.gangadir

    async def call(self, /, op: str, **args: Any) -> Any:
        """Run operation ``op`` of :data:`~ganga_async.service._operations.OPERATIONS` on the
        engine and return its result as the daemon would send it."""
        operation = OPERATIONS.get(op)
        if operation is None:
            raise ProtocolError("unknown_op", f"unknown operation {op!r}; valid: "
                                f"{', '.join(sorted(OPERATIONS))}")
        result = await operation(self.engine, Arguments(op, _through_json(args)))
        return result if op in _PLAIN else _through_json(result)

    @asynccontextmanager
    async def events(self, job: int | str | None = None, *, subjobs: bool = True,
                     types: Sequence[str] = protocol.EVENT_TYPES
                     ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """The engine's status transitions, credential warnings, postprocessors' outcomes and
        retries from now on, as the
        daemon's ``events`` stream carries them (same filters); the stream ends with the
        ``async with`` block."""
        job_id = int(job) if job is not None else None
        streams = event_streams(self.engine, types, job_id, subjobs)
        send, receive = anyio.create_memory_object_stream[dict[str, Any]]()
        try:
            async with anyio.create_task_group() as tg, receive:
                for stream, message in streams:
                    tg.start_soon(_forward, stream, message, send.clone())
                send.close()
                yield receive
                tg.cancel_scope.cancel()
        finally:
            for stream, _ in streams:
                stream.close()


async def _forward(stream: EventStream[Any], message: Callable[[Any], dict[str, Any] | None],
                   send: ObjectSendStream[dict[str, Any]]) -> None:
    async with send:
        async for event in stream:
            item = message(event)
            if item is not None:
                try:
                    await send.send(item)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    return  # the reader has left the block: it wants no more events


_PLAIN = frozenset({"jobs"})
"""Operations whose results are made of JSON's own types already (``engine.summary()``: dicts
of str, int and None), which the round trip would give back unchanged: for 100,000 jobs it
was a third of ``ganga-async jobs``."""


def _through_json(data: Any) -> Any:
    """``data`` as it arrives at the other end of the daemon's socket."""
    return json.loads(json.dumps(data, default=str))
