"""Status transitions as they happen: ``async for event in engine.events(): ...``."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._log import get_logger
from .states import Status

__all__ = ["JobEvent", "EventStream"]
log = get_logger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class JobEvent:
    """One status transition of a job or subjob."""

    fqid: str
    job_id: int
    index: int | None
    old: Status
    new: Status
    time: float
    reason: str | None = None


class EventStream:
    """A subscription to an engine's events; iterate it, and close it (or use ``async with``).

    Events are queued per subscriber up to ``[Pipeline] event_buffer``; events arriving while the
    queue is full are dropped for this subscriber and ``lost`` counts them. Iteration ends when
    the engine closes.
    """

    def __init__(self, hub: _Hub, size: float) -> None:
        self._send: MemoryObjectSendStream[JobEvent]
        self._receive: MemoryObjectReceiveStream[JobEvent]
        self._send, self._receive = anyio.create_memory_object_stream[JobEvent](size)
        self._hub = hub
        self.lost = 0
        hub.subscribers.add(self)

    def _offer(self, event: JobEvent) -> None:
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            self.lost += 1
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._hub.subscribers.discard(self)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> JobEvent:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self.close()
            raise StopAsyncIteration from None

    def close(self) -> None:
        self._hub.subscribers.discard(self)
        self._send.close()
        self._receive.close()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class _Hub:
    """The engine's fan-out of events to its subscribers."""

    def __init__(self) -> None:
        self.subscribers: set[EventStream] = set()

    def publish(self, event: JobEvent) -> None:
        for subscriber in list(self.subscribers):
            subscriber._offer(event)

    def subscribe(self, size: int) -> EventStream:
        return EventStream(self, size if size > 0 else math.inf)

    def close(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber._send.close()
        self.subscribers.clear()
