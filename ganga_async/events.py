"""What happens, as it happens: ``async for event in engine.events(): ...`` for status
transitions, ``engine.credential_events()`` for credentials running short, renewed or expired,
``engine.postprocess_events()`` for each postprocessor's outcome on a (sub)job and
``engine.retry_events()`` for each retry the retry policy decides."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ._log import get_logger
from .states import Status

__all__ = ["JobEvent", "CredentialEvent", "PostprocessEvent", "RetryEvent", "EventStream", "EventHub"]
log = get_logger(__name__)

E = TypeVar("E")


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


@dataclasses.dataclass(frozen=True, slots=True)
class CredentialEvent:
    """Something that happened to a credential the engine watches.

    ``kind`` is one of ``expiring`` (under ``min_time_left`` plus ``renew_margin`` and the
    engine cannot renew it), ``short`` (under ``min_time_left``: jobs needing it are held),
    ``expired``, ``renewed``, ``renewal_failed`` and ``valid`` (usable again).
    ``credential`` describes it (``"VomsProxy vo=lhcb"``); ``message`` says what to do. Neither
    ever holds the credential's contents.
    """

    kind: str
    credential: str
    time_left: float
    time: float
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class PostprocessEvent:
    """A postprocessor ran on a job or subjob: ``postprocessor`` names it
    (``postprocessors[TextMerger]``), ``ok`` says whether it passed and ``detail`` what it did:
    the files a merger wrote, or why it failed (a checker's reason, a merger's error)."""

    fqid: str
    job_id: int
    index: int | None
    postprocessor: str
    ok: bool
    detail: str
    time: float


@dataclasses.dataclass(frozen=True, slots=True)
class RetryEvent:
    """The retry policy sends a failed job or subjob back: attempt number ``attempt`` (2 for
    the first retry) is submitted after ``delay`` seconds; ``reason`` says why."""

    fqid: str
    job_id: int
    index: int | None
    attempt: int
    delay: float
    time: float
    reason: str | None = None


class EventStream(Generic[E]):
    """A subscription to an engine's events; iterate it, and close it (or use ``async with``).

    Events are queued per subscriber up to ``[Pipeline] event_buffer``; events arriving while the
    queue is full are dropped for this subscriber and ``lost`` counts them. Iteration ends when
    the engine closes. With ``masters_only`` it receives no subjob's events (``index`` set),
    and the engine does not even make them while no other subscriber wants them.
    """

    def __init__(self, hub: EventHub, size: float, kind: type[E], masters_only: bool = False) -> None:
        send, self._receive = anyio.create_memory_object_stream[E](size)
        self._subscription = _Subscription(send, kind, masters_only)
        self._hub = hub
        hub.subscribers.add(self._subscription)

    @property
    def kind(self) -> type[E]:
        """The type of the events it receives."""
        return self._subscription.kind

    @property
    def pending(self) -> int:
        """How many events are queued, not read yet."""
        return self._receive.statistics().current_buffer_used

    @property
    def lost(self) -> int:
        """How many events were dropped because the queue was full."""
        return self._subscription.lost

    def __aiter__(self) -> EventStream[E]:
        return self

    async def __anext__(self) -> E:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self.close()
            raise StopAsyncIteration from None

    def queued(self, limit: int) -> list[E]:
        """Up to ``limit`` of the events queued now, at once (none if none is)."""
        events: list[E] = []
        receive = self._receive
        try:
            while len(events) < limit:
                events.append(receive.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
            pass
        return events

    def close(self) -> None:
        self._hub.subscribers.discard(self._subscription)
        self._subscription.send.close()
        self._receive.close()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> EventStream[E]:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


class _Subscription(Generic[E]):
    """The hub's side of one EventStream: where its events go, and how many were lost."""

    def __init__(self, send: MemoryObjectSendStream[E], kind: type[E], masters_only: bool) -> None:
        self.send = send
        self.kind = kind
        self.masters_only = masters_only
        self.lost = 0

    def offer(self, event: object) -> bool:
        """Queue ``event`` if it is of this subscription's kind; False once the subscriber
        has gone."""
        if not isinstance(event, self.kind) or (
                self.masters_only and getattr(event, "index", None) is not None):
            return True
        try:
            self.send.send_nowait(event)
        except anyio.WouldBlock:
            self.lost += 1
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True


class EventHub:
    """The engine's fan-out of events to its subscribers."""

    def __init__(self) -> None:
        self.subscribers: set[_Subscription[Any]] = set()

    def publish(self, event: JobEvent | CredentialEvent | PostprocessEvent | RetryEvent) -> None:
        for subscriber in list(self.subscribers):
            if not subscriber.offer(event):
                self.subscribers.discard(subscriber)

    def subscribe(self, size: int, kind: type[E], masters_only: bool = False) -> EventStream[E]:
        return EventStream(self, size if size > 0 else math.inf, kind, masters_only)

    def wants(self, kind: type, *, subjobs: bool) -> bool:
        """Whether a subscriber takes events of ``kind`` (of subjobs too, with ``subjobs``):
        an event nobody takes need not be made."""
        return any(issubclass(kind, s.kind) and not (subjobs and s.masters_only)
                   for s in self.subscribers)

    def close(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.send.close()
        self.subscribers.clear()
