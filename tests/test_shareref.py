"""The ShareRef actor on its own: a real repository and shared area, the engine's owner scan
and unprepare replaced by fakes given to its constructor."""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from ganga_async import EngineClosedError, ShareDirError, ShareRef
from ganga_async.persistence.repository import Repository
from ganga_async.prepared.sharedir import SharedArea

pytestmark = pytest.mark.anyio


class CountingRepository(Repository):
    """Counts the actor's write transactions."""

    writes = 0

    async def shareref_write(self, *args: Any, **kwargs: Any) -> None:
        self.writes += 1
        await super().shareref_write(*args, **kwargs)


class FakeOwners:
    """Stands for the engine: a fixed list of persisted owners; records what it unprepares."""

    def __init__(self) -> None:
        self.owners: list[tuple[str, str]] = []
        self.unprepared: list[str] = []

    async def scan(self) -> list[tuple[str, str]]:
        return list(self.owners)

    async def unprepare(self, holders: Sequence[str]) -> None:
        self.unprepared += holders


class Actor:
    def __init__(self, root: Path) -> None:
        self.repository = CountingRepository(root / "jobs.sqlite")
        self.area = SharedArea(root / "shared")
        self.owners = FakeOwners()
        self.shareref = ShareRef(self.repository, self.area, owners=self.owners.scan,
                                 unprepare=self.owners.unprepare, inbox_size=64)

    async def make_dirs(self, n: int) -> list[str]:
        return [(await self.area.create({})).name for _ in range(n)]

    def stored(self) -> dict[str, int]:
        db = sqlite3.connect(self.repository.path)
        counts = dict(db.execute(
            "SELECT s.name, COUNT(h.holder) FROM sharedirs s "
            "LEFT JOIN shareref_holders h ON h.name = s.name GROUP BY s.name"))
        db.close()
        return counts


@pytest.fixture
async def actor(tmp_path: Path) -> AsyncIterator[Actor]:
    act = Actor(tmp_path)
    await act.repository.open()
    async with anyio.create_task_group() as tg:
        await tg.start(act.shareref.run)
        yield act
        await act.shareref.aclose()
    await act.repository.aclose()


async def test_incref_counts_each_holder_once_and_decref_releases_it(actor: Actor) -> None:
    a, b = await actor.make_dirs(2)
    for _ in range(3):
        await actor.shareref.incref("job:1", a)
    await actor.shareref.incref("job:2", a)
    await actor.shareref.incref("box:x", b)
    assert await actor.shareref.counts() == {a: 2, b: 1}
    await actor.shareref.incref("job:2", b)
    await actor.shareref.decref("box:x")
    await actor.shareref.decref("never-held")
    assert await actor.shareref.counts() == {a: 1, b: 1}
    assert actor.stored() == {a: 1, b: 1}


async def test_all_messages_waiting_in_the_inbox_go_into_one_transaction(actor: Actor) -> None:
    (name,) = await actor.make_dirs(1)
    before = actor.repository.writes
    async with anyio.create_task_group() as tg:
        for i in range(500):
            tg.start_soon(actor.shareref.incref, f"job:{i}", name)
    assert await actor.shareref.counts() == {name: 500}
    assert actor.stored() == {name: 500}
    assert actor.repository.writes - before < 50


async def test_a_probe_is_read_when_applied_so_late_messages_cannot_undo_the_truth(actor: Actor) -> None:
    a, b = await actor.make_dirs(2)
    state = {"held": a}
    for _ in range(3):
        actor.shareref.refresh_soon("session:x", lambda: state["held"])
    state["held"] = b
    await actor.shareref.flush()
    assert await actor.shareref.counts() == {b: 1}


async def test_refresh_soon_from_another_thread_joins_the_next_commit(actor: Actor) -> None:
    (name,) = await actor.make_dirs(1)

    def post() -> None:
        for i in range(100):
            actor.shareref.refresh_soon(f"session:t{i}", lambda: name)

    thread = threading.Thread(target=post)
    thread.start()
    await anyio.to_thread.run_sync(thread.join)
    await actor.shareref.flush()
    assert await actor.shareref.counts() == {name: 100}
    assert actor.stored() == {name: 100}


async def test_a_name_that_is_not_a_sharedir_is_refused(actor: Actor) -> None:
    with pytest.raises(ShareDirError):
        await actor.shareref.incref("job:1", "../../etc")
    with pytest.raises(ShareDirError):
        await actor.shareref.refresh("job:1", lambda: "/etc")
    with pytest.raises(ShareDirError):
        await actor.shareref.ls("..")
    assert await actor.shareref.counts() == {}


async def test_rebuild_counts_the_owners_unprepares_the_missing_and_zeroes_orphans(
    actor: Actor,
) -> None:
    kept, orphan, gone = await actor.make_dirs(3)
    await actor.shareref.incref("job:1", kept)
    await actor.shareref.incref("job:9", kept)
    actor.owners.owners = [("job:1", kept), ("job:2", kept), ("box:t", kept), ("job:3", gone)]
    await actor.area.remove(gone)
    assert await actor.shareref.rebuild() == {kept: 3, orphan: 0}
    assert actor.owners.unprepared == ["job:3"]
    assert actor.stored() == {kept: 3, orphan: 0}


async def test_rebuild_without_unprepare_keeps_missing_owners_and_rmdir_deletes_orphans(
    actor: Actor,
) -> None:
    kept, orphan = await actor.make_dirs(2)
    missing = f"conf-{uuid.uuid4()}"
    actor.owners.owners = [("job:1", kept), ("job:2", missing)]
    assert await actor.shareref.rebuild(unprepare=False, rmdir=True) == {kept: 1, missing: 1}
    assert actor.owners.unprepared == []
    assert await actor.area.names() == [kept]
    table = {row.name: (row.count, row.exists) for row in await actor.shareref.table()}
    assert table == {kept: (1, True), missing: (1, False)}


async def test_lookup_logs_each_owner_then_how_many(actor: Actor, caplog: pytest.LogCaptureFixture) -> None:
    a, b = await actor.make_dirs(2)
    actor.owners.owners = [("job:4", a), ("box:analysis", a), ("job:5", b)]
    with caplog.at_level(logging.INFO, logger="ganga_async.user"):
        assert await actor.shareref.lookup(a) == ["job:4", "box:analysis"]
    assert [r.getMessage() for r in caplog.records] == [
        f"ShareDir {a} is referenced by item #4 in job repository",
        f"ShareDir {a} is referenced by item #analysis in box repository",
        f"2 item(s) found referencing ShareDir {a}",
    ]
    assert actor.owners.unprepared == []
    await actor.shareref.lookup(a, unprepare=True)
    assert actor.owners.unprepared == ["job:4", "box:analysis"]


async def test_cleanup_deletes_unreferenced_sharedirs_and_unprepares_owners_of_vanished_ones(
    tmp_path: Path,
) -> None:
    act = Actor(tmp_path)
    await act.repository.open()
    async with anyio.create_task_group() as tg:
        await tg.start(act.shareref.run)
        used, unused, session_only, vanished = await act.make_dirs(4)
        await act.shareref.incref("job:1", used)
        await act.shareref.incref("job:2", unused)
        await act.shareref.decref("job:2")
        await act.shareref.incref(act.shareref.new_session_holder(), session_only)
        await act.shareref.incref("job:3", vanished)
        await act.area.remove(vanished)
        await act.shareref.aclose()
    assert await act.area.names() == [used]
    assert act.owners.unprepared == ["job:3"]
    assert act.stored() == {used: 1}
    with pytest.raises(EngineClosedError):
        await act.shareref.counts()
    await act.repository.aclose()


async def test_concurrent_operations_end_with_the_counts_of_a_serial_replay(actor: Actor) -> None:
    names = await actor.make_dirs(8)
    rng = random.Random(7)
    plans = [[(f"job:{t}.{rng.randrange(5)}", rng.choice([*names, None])) for _ in range(50)]
             for t in range(200)]

    async def run(plan: list[tuple[str, str | None]]) -> None:
        for holder, name in plan:
            if name is None:
                await actor.shareref.decref(holder)
            else:
                await actor.shareref.incref(holder, name)

    async with anyio.create_task_group() as tg:
        for plan in plans:
            tg.start_soon(run, plan)
    final: dict[str, str] = {}
    for plan in plans:
        for holder, name in plan:
            if name is None:
                final.pop(holder, None)
            else:
                final[holder] = name
    expected = {name: 0 for name in names} | dict(Counter(final.values()))
    assert await actor.shareref.counts() == expected
    assert actor.stored() == expected
