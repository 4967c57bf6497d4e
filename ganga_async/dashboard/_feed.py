"""The dashboard's live feed: the engine's events, kept, coalesced and fanned out to pages.

One :class:`Feed` per daemon subscribes once to each of the engine's event streams (status
transitions, credentials, postprocessors, retries), each queued up to ``[Pipeline]
event_buffer`` and dropped beyond it by the engine itself, so nothing here can slow the engine.
From them it keeps:

- the last ``[Service] dashboard_recent`` events (``/api/events/recent``);
- the masters whose counts changed: every ``dashboard_coalesce`` seconds one ``job`` message
  per such master, with its status and counts read from the engine's in-memory record;
- an ``event`` message per event, at most ``dashboard_event_rate`` a second; those over the
  rate are counted and announced by one ``dropped`` message at the next tick, as are events
  the engine dropped for the feed (after which every master seen gets a ``job`` message again).

Each page reading ``/api/stream`` is a :class:`Client` with a queue of
``dashboard_client_buffer`` messages. Messages are put on it without waiting; a page whose
queue is full (it stopped reading) is disconnected and counted, never waited for.
"""

from __future__ import annotations

import collections
import json
import time
from typing import Any

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._exceptions import JobNotFoundError
from .._log import get_logger
from ..config import Section
from ..engine import Engine
from ..events import EventStream, JobEvent
from ..service._operations import EventMessage, event_streams
from ..states import Status

__all__ = ["Client", "Feed", "job_counts"]

log = get_logger(__name__)

Message = tuple[str, str]
"""An SSE message: its event name and its data (JSON text)."""


class Client:
    """One page reading the stream: its queue, and the scope that ends its response."""

    def __init__(self, size: int) -> None:
        self.send: MemoryObjectSendStream[Message]
        self.receive: MemoryObjectReceiveStream[Message]
        self.send, self.receive = anyio.create_memory_object_stream[Message](size)
        self.scope = anyio.CancelScope()
        self.dropped = False


async def job_counts(engine: Engine, job_id: int) -> dict[str, Any]:
    """A master's status and counts from the engine's record (loaded once if it was not in
    memory); ``removed`` when it no longer exists."""
    try:
        job = await engine.get(job_id)
    except JobNotFoundError:
        return {"id": job_id, "status": str(Status.REMOVED), "counts": {}}
    counts = job.subjobs.counts() or {str(job.status): 1}
    return {"id": job_id, "status": str(job.status), "counts": counts}


class Feed:
    """The daemon's one subscription to its engine's events, for every dashboard page."""

    def __init__(self, engine: Engine, settings: Section) -> None:
        self.engine = engine
        self.coalesce = float(settings["dashboard_coalesce"])
        self.rate = int(settings["dashboard_event_rate"])
        self.client_buffer = int(settings["dashboard_client_buffer"])
        self.recent: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=int(settings["dashboard_recent"]))
        self.clients: set[Client] = set()
        self.dropped_clients = 0
        """Pages disconnected because they did not read their messages."""
        self.skipped = 0
        """Events not sent live (over the rate) since the last ``dropped`` message."""
        self.final_counts: dict[int, dict[str, int]] = {}
        """Counts of masters that were final when read from the repository; a master's events
        forget its entry."""
        self._seq = 0
        self._dirty: set[int] = set()
        self._seen: set[int] = set()
        self._lost_seen = 0
        self._window = (0, 0)
        self._streams: list[tuple[EventStream[Any], EventMessage]] = []

    @property
    def lost(self) -> int:
        """Events the engine dropped because the feed's queues were full."""
        return sum(stream.lost for stream, _ in self._streams)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Read the engine's events until cancelled (or the engine closes)."""
        self._streams = event_streams(self.engine, ["status", "credential", "postprocessed",
                                                    "retrying"], None, True)
        try:
            async with anyio.create_task_group() as tg:
                for stream, message in self._streams:
                    tg.start_soon(self._read, stream, message)
                tg.start_soon(self._tick)
                task_status.started()
        finally:
            for stream, _ in self._streams:
                stream.close()
            for client in list(self.clients):
                self._drop(client, counted=False)

    async def _read(self, stream: EventStream[Any], message: EventMessage) -> None:
        async for event in stream:
            entry = message(event)
            if entry is None:
                continue
            if isinstance(event, JobEvent):
                self._dirty.add(event.job_id)
                self._seen.add(event.job_id)
                self.final_counts.pop(event.job_id, None)
            self._seq += 1
            entry["seq"] = self._seq
            self.recent.append(entry)
            if entry["type"] == "credential":
                self.broadcast("credential", entry)
            self._offer_event(entry)

    def _offer_event(self, entry: dict[str, Any]) -> None:
        second = int(time.monotonic())
        start, sent = self._window
        if second != start:
            start, sent = second, 0
        if sent < self.rate:
            self.broadcast("event", entry)
            sent += 1
        else:
            self.skipped += 1
        self._window = (start, sent)

    async def _tick(self) -> None:
        while True:
            await anyio.sleep(self.coalesce)
            lost = self.lost - self._lost_seen
            if lost:
                # Which jobs the lost events were about is unknown: send every job seen again.
                self._lost_seen += lost
                self._dirty |= self._seen
                self.final_counts.clear()
            if self.skipped or lost:
                self.broadcast("dropped", {"skipped": self.skipped, "lost": lost})
                self.skipped = 0
            dirty, self._dirty = self._dirty, set()
            for job_id in sorted(dirty):
                try:
                    self.broadcast("job", await job_counts(self.engine, job_id))
                except Exception as exc:  # a job that cannot be read must not stop the feed
                    log.error("dashboard: cannot read a job's counts", job_id=job_id, error=repr(exc))

    def broadcast(self, name: str, data: dict[str, Any]) -> None:
        """Queue one message for every page, without waiting; a full queue drops its page."""
        if not self.clients:
            return
        message = (name, json.dumps(data))
        for client in list(self.clients):
            try:
                client.send.send_nowait(message)
            except anyio.WouldBlock:
                self._drop(client)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self.clients.discard(client)

    def subscribe(self) -> Client:
        client = Client(self.client_buffer)
        self.clients.add(client)
        return client

    def unsubscribe(self, client: Client) -> None:
        self.clients.discard(client)
        client.send.close()
        client.receive.close()

    def _drop(self, client: Client, *, counted: bool = True) -> None:
        if counted:
            self.dropped_clients += 1
            log.warning("dashboard page disconnected: it did not read its live updates",
                        queued=self.client_buffer)
        client.dropped = True
        self.unsubscribe(client)
        client.scope.cancel()

    def stats(self) -> dict[str, int]:
        return {"clients": len(self.clients), "dropped_clients": self.dropped_clients,
                "lost": self.lost, "recent": len(self.recent)}
