"""The dashboard's reads of a master's subjob table (pure functions over a copy of it), and its
feed's rate limit and dropping of a page that does not read."""

from __future__ import annotations

from typing import cast

import anyio
import pytest

from ganga_async import Engine, load_config
from ganga_async.dashboard import _subjobs
from ganga_async.dashboard._feed import Feed
from ganga_async.model.subjobs import SubjobTable
from ganga_async.states import Status


def _table() -> SubjobTable:
    table = SubjobTable()
    table.append(Status.COMPLETED, None, 1, "10", 0, None, 100.0, 100.0, 110.0)
    table.append(Status.FAILED, None, 2, "11", 3, "exit code 3", 100.0, 105.0, 120.0)
    table.append(Status.RUNNING, None, 1, "12", None, None, 100.0, 115.0, 0.0)
    table.append(Status.FAILED, None, 1, "13", 3, "exit code 3", 100.0, 101.0, 102.0)
    table.append(Status.FAILED, None, 1, "14", 9, "killed by signal 9", 100.0, 106.0, 107.0)
    table.append(Status.NEW, None)
    return table


def test_cells_are_one_character_per_subjob_in_the_legends_order() -> None:
    codes = _subjobs.cells(_table().snapshot())
    assert [_subjobs.LEGEND[ord(c) - 48] for c in codes] == [
        "completed", "failed", "running", "failed", "failed", "new"]


def test_a_page_filters_by_status_and_text_and_counts_every_match() -> None:
    columns = _table().snapshot()
    failed = _subjobs.page(columns, 7, status=Status.FAILED, q=None, offset=1, limit=1)
    assert failed["total"] == 3 and [r["fqid"] for r in failed["rows"]] == ["7.3"]
    assert failed["rows"][0] == {"index": 3, "fqid": "7.3", "status": "failed", "backend_id": "13",
                                 "reason": "exit code 3", "attempts": 1, "started": 101.0, "ended": 102.0}
    assert _subjobs.page(columns, 7, status=None, q="signal", offset=0, limit=10)["total"] == 1
    by_index = _subjobs.page(columns, 7, status=None, q="2", offset=0, limit=10)
    assert [r["index"] for r in by_index["rows"]] == [2]
    assert _subjobs.page(columns, 7, status=None, q=None, offset=5, limit=10)["rows"][0]["started"] is None


def test_reasons_are_grouped_most_frequent_first_and_attempts_summed() -> None:
    columns = _table().snapshot()
    assert _subjobs.reasons(columns, 7) == [
        {"reason": "exit code 3", "count": 2, "example": "7.1"},
        {"reason": "killed by signal 9", "count": 1, "example": "7.4"}]
    assert _subjobs.attempts(columns) == {"max": 2, "total": 6}


def test_the_timeline_counts_starts_and_ends_per_bucket_until_now_while_one_runs() -> None:
    line = _subjobs.timeline(_table().snapshot(), 4, now=140.0)
    assert line["t0"] == 100.0 and line["t1"] == 140.0 and len(line["edges"]) == 5
    assert line["started"] == [4, 1, 0, 0] and line["ended"] == [2, 1, 1, 0]
    assert line["running"] == [2, 2, 1, 1]
    assert _subjobs.timeline(SubjobTable().snapshot(), 4, now=1.0)["edges"] == []


@pytest.mark.anyio
async def test_the_feed_sends_events_up_to_its_rate_and_drops_a_page_whose_queue_is_full() -> None:
    settings = load_config()["Service"]
    settings["dashboard_event_rate"] = 3
    settings["dashboard_client_buffer"] = 4
    feed = Feed(cast(Engine, None), settings)  # the engine is read only by run()
    page = feed.subscribe()
    for n in range(10):
        feed._offer_event({"type": "status", "n": n})
    assert feed.skipped >= 7 - 3  # a new second may have begun in between
    sent = []
    while True:
        try:
            sent.append(page.receive.receive_nowait())
        except anyio.WouldBlock:
            break
    assert [name for name, _ in sent] == ["event"] * len(sent) and 3 <= len(sent) <= 4
    for n in range(5):
        feed.broadcast("job", {"id": n})
    assert page.dropped and feed.dropped_clients == 1 and not feed.clients
    assert page.scope.cancel_called
