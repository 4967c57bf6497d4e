"""How an ``events`` stream reaches its client: every event, in order, or a clear drop.

Per ``events`` request the daemon runs two tasks. The *reader* drains the engine's
subscriptions as events come (the engine only ever queues them, never waits), turns each into
its line on the wire and appends it to the stream's backlog; the *writer* sends what the
backlog holds, up to ``_WRITE_BYTES`` a write, as fast as the client reads. A client that keeps
up therefore sees every event, in the order the engine published it, however many others
follow; one that falls more than ``[Service] event_backlog`` lines behind (it stopped reading,
or reads slower than the engine works) is dropped: its stream ends with an error saying so and
what to do, and the daemon logs it. A write is never cut short (a cut line would garble the
connection): one the client does not take within ``[Service] drop_timeout`` seconds (it reads
nothing at all) closes the connection instead. Either way the engine and the other clients
never wait for it, and what the daemon keeps for it is bounded: the backlog, and one write in
flight, itself bounded so that the backlog counts what the connection's buffers could not take.

A status event's line is encoded once, whoever follows it (:class:`LineCache`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import anyio

from .._exceptions import SlowClientError
from .._log import get_logger
from ..events import EventStream
from . import _protocol as protocol

__all__ = ["follow", "LineCache"]

log = get_logger(__name__)

EventMessage = Callable[[Any], dict[str, Any] | None]

_CHUNK = 512
"""Events a reader takes at once: well under :class:`LineCache`'s size."""

_WRITE_BYTES = 64 * 1024
"""What the writer takes from the backlog for one write, at most (plus the last line's end).
Taking it all would let a client that stopped reading hold a second backlog in flight before
the first counts against it."""


class Connection(Protocol):
    """What the fan-out needs of the daemon's connection."""

    pid: int
    closed: bool

    async def send_bytes(self, data: bytes) -> None: ...

    async def hang_up(self) -> None: ...


class LineCache:
    """The body of the last events' lines, by event: with 100 clients following one stream
    of events, each event is encoded once rather than 100 times."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._lines: dict[tuple[int, Any], bytes] = {}

    def body(self, event: Any, item: dict[str, Any]) -> bytes:
        """The JSON of ``item``, the message ``event`` makes (unfiltered, so the same for all)."""
        key = (id(type(event)), event)
        body = self._lines.get(key)
        if body is None:
            if len(self._lines) >= self.size:
                self._lines.clear()
            body = self._lines[key] = json.dumps(item, separators=(",", ":"), default=str).encode()
        return body


async def follow(connection: Connection, request_id: protocol.RequestId, types: Sequence[str],
                 streams: Sequence[tuple[EventStream[Any], EventMessage]], *, backlog: int,
                 drop_timeout: float, cache: LineCache) -> dict[str, Any]:
    """Forward the events of ``streams`` to the client until it cancels, the connection ends
    or the client falls ``backlog`` lines behind (raises
    :class:`~ganga_async._exceptions.SlowClientError` once the write in flight is done).
    Returns the stream's final result ``{"lost": n}``: events
    the engine dropped before the reader read them (0 unless the daemon itself is overloaded)."""
    prefix = protocol.encode(protocol.event_message(request_id, {}))[:-4]  # up to "event":
    subscribed = {"type": "subscribed", "types": list(types)}
    lines: list[bytes] = [prefix + json.dumps(subscribed).encode() + b"}\n"]
    ready = anyio.Event()
    ready.set()
    dropped: list[str] = []

    async def read(stream: EventStream[Any], message: EventMessage, readers: anyio.CancelScope) -> None:
        async for first in stream:
            # What came, in chunks: every follower's reader takes its turn on each chunk, so
            # the line cache encodes each event once for them all.
            for event in (first, *stream.queued(_CHUNK)):
                item = message(event)
                if item is not None:
                    lines.append(prefix + cache.body(event, item) + b"}\n")
            if len(lines) > backlog:
                lines.clear()
                dropped.append(
                    f"the events stream was dropped: this client fell more than {backlog} events "
                    "behind (the daemon's [Service] event_backlog); read events as they come, or "
                    "follow fewer (job=..., subjobs=False, types=[...])")
                readers.cancel()
                return
            ready.set()

    async def write(readers: anyio.CancelScope) -> None:
        nonlocal ready
        while True:
            if not lines:
                if done:
                    return
                await ready.wait()
                ready = anyio.Event()
                continue
            batch = _take(lines, _WRITE_BYTES)
            # A line cut by a cancellation would garble what follows it: a write ends whole,
            # or the connection does after drop_timeout of nothing read.
            with anyio.CancelScope(shield=True) as sending:
                sending.deadline = anyio.current_time() + drop_timeout
                await connection.send_bytes(batch)
            if sending.cancelled_caught:
                log.warning("closed the connection of a client that reads nothing",
                            pid=connection.pid, seconds=drop_timeout)
                await connection.hang_up()
            if connection.closed:
                readers.cancel()
                return

    done = False
    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as readers:
            tg.start_soon(write, readers.cancel_scope)
            for stream, message in streams:
                readers.start_soon(read, stream, message, readers.cancel_scope)
        done = True
        ready.set()
    if dropped:
        log.warning("dropped a client that fell behind on events", pid=connection.pid,
                    backlog=backlog)
        raise SlowClientError(dropped[0])
    return {"lost": sum(stream.lost for stream, _ in streams)}


def _take(lines: list[bytes], limit: int) -> bytes:
    """The first of ``lines`` up to ``limit`` bytes (at least one line), removed from them."""
    size = count = 0
    for line in lines:
        size += len(line)
        count += 1
        if size >= limit:
            break
    batch = b"".join(lines[:count])
    del lines[:count]
    return batch
