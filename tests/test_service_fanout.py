"""The events fan-out's rules, on a stand-in connection (the real daemon's are in
test_service_events.py): a client that keeps up gets every line whole and in order, in writes
of bounded size; one that takes nothing is dropped once the backlog fills, with no second
backlog hidden in the write in flight."""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from ganga_async._exceptions import SlowClientError
from ganga_async.events import EventHub, JobEvent
from ganga_async.service import _fanout as fanout
from ganga_async.states import Status

pytestmark = pytest.mark.anyio


class Connection:
    """Records each write; with ``stalled`` no write ever completes (a client reading nothing)."""

    def __init__(self, *, stalled: bool = False) -> None:
        self.pid = 1
        self.closed = False
        self.stalled = stalled
        self.writes: list[bytes] = []
        self.attempted: list[bytes] = []

    async def send_bytes(self, data: bytes) -> None:
        self.attempted.append(data)
        if self.stalled:
            await anyio.sleep_forever()
        self.writes.append(data)

    async def hang_up(self) -> None:
        self.closed = True


def event(i: int) -> JobEvent:
    return JobEvent(f"1.{i}", 1, i, Status.RUNNING, Status.COMPLETED, float(i))


def message(e: JobEvent) -> dict[str, Any]:
    return {"type": "status", "fqid": e.fqid, "pad": "x" * 100}


async def test_a_client_that_keeps_up_gets_every_line_in_order_in_bounded_writes() -> None:
    hub = EventHub()
    stream = hub.subscribe(0, JobEvent)
    connection = Connection()
    result: dict[str, Any] = {}

    async def run() -> None:
        result.update(await fanout.follow(connection, 7, ["status"], [(stream, message)],
                                          backlog=100_000, drop_timeout=5, cache=fanout.LineCache()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await anyio.lowlevel.checkpoint()
        for i in range(5000):
            hub.publish(event(i))
        hub.close()

    assert result == {"lost": 0}
    assert max(len(w) for w in connection.writes) < fanout._WRITE_BYTES + 200
    assert len(connection.writes) > 5000 * 100 // fanout._WRITE_BYTES
    lines = [json.loads(line) for line in b"".join(connection.writes).splitlines()]
    assert all(line["id"] == 7 for line in lines)
    assert lines[0]["event"]["type"] == "subscribed"
    assert [line["event"]["fqid"] for line in lines[1:]] == [f"1.{i}" for i in range(5000)]


async def test_a_client_that_takes_nothing_is_dropped_once_the_backlog_is_full() -> None:
    hub = EventHub()
    stream = hub.subscribe(0, JobEvent)
    connection = Connection(stalled=True)
    backlog = 1000
    published = 0

    errors: list[SlowClientError] = []

    async def run() -> None:
        try:
            await fanout.follow(connection, 7, ["status"], [(stream, message)], backlog=backlog,
                                drop_timeout=0.5, cache=fanout.LineCache())
        except SlowClientError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        # Once the client is dropped nothing reads the engine's events any more.
        while stream.pending < 10 and published < 10 * backlog:
            hub.publish(event(published))
            published += 1
            await anyio.lowlevel.checkpoint()
    read = published - stream.pending

    assert "fell more than 1000 events behind" in str(errors[0])

    # The write in flight took at most its bound: the client was dropped at the backlog plus
    # one bounded write, not at twice the backlog; and the write nobody took closed the
    # connection after drop_timeout.
    assert len(connection.attempted) == 1
    assert len(connection.attempted[0]) < fanout._WRITE_BYTES + 200
    in_flight = connection.attempted[0].count(b"\n")
    assert backlog < read <= in_flight + backlog + 1
    assert connection.closed


def test_take_returns_whole_lines_up_to_the_limit_and_at_least_one() -> None:
    lines = [b"a" * 10 + b"\n"] * 5
    assert fanout._take(lines, 25) == b"a" * 10 + b"\n" + b"a" * 10 + b"\n" + b"a" * 10 + b"\n"
    assert len(lines) == 2
    big = [b"b" * 100 + b"\n", b"c\n"]
    assert fanout._take(big, 10) == b"b" * 100 + b"\n"
    assert big == [b"c\n"]
