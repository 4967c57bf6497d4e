"""The SQLite repository: schema versions, WAL mode, batched writes."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import anyio
import pytest

from ganga_async import RepositoryError, SchemaVersionError
from ganga_async.persistence._connection import CACHE_KIB
from ganga_async.persistence.repository import SCHEMA_VERSION, Repository

pytestmark = pytest.mark.anyio


def _job_row() -> dict[str, object]:
    return {"name": "a", "comment": "", "status": "new", "application": "Executable",
            "backend": "Local", "spec": {"application": {"type": "Executable"}}, "times": {}}


async def created(path: Path) -> Path:
    """A new repository at ``path``, closed again."""
    repo = Repository(path)
    await repo.open()
    await repo.aclose()
    return path


_UNDO_4 = ("ALTER TABLE jobs DROP COLUMN retry_at; ALTER TABLE subjobs DROP COLUMN retry_at; "
           "DROP TABLE attempts; ")
"""What version 4 added, taken away again to make an older repository."""
_UNDO_5 = "DROP TABLE submit_tokens; "
"""What version 5 added."""
_UNDO_6 = "DROP TABLE task_tokens; DROP TABLE task_units; DROP TABLE tasks; "
"""What versions 6 and 7 added."""


def stored_tokens(path: Path) -> dict[str, int]:
    """The submission tokens in the file, read by another connection."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT token, job_id FROM submit_tokens").fetchall())


def stored_status(path: Path, job_id: int) -> str:
    """The status of job ``job_id`` as another connection reads it from the file."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        status: str = db.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()[0]
    return status


def set_schema_version(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
    db.commit()
    db.close()


async def assert_refused_untouched(path: Path, match: str | None = None) -> None:
    before = await anyio.Path(path).read_bytes()
    with pytest.raises(SchemaVersionError, match=match):
        await Repository(path).open()
    assert await anyio.Path(path).read_bytes() == before


async def test_new_repository_is_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    db = sqlite3.connect(await created(tmp_path / "jobs.sqlite"))
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    assert version == str(SCHEMA_VERSION)


async def test_the_open_connection_has_a_bounded_page_cache_and_enforces_foreign_keys(
        tmp_path: Path) -> None:
    repo = Repository(tmp_path / "jobs.sqlite")
    await repo.open()
    try:
        async with repo.db.execute("PRAGMA cache_size") as cur:
            assert await cur.fetchone() == (-CACHE_KIB,)
        async with repo.db.execute("PRAGMA foreign_keys") as cur:
            assert await cur.fetchone() == (1,)
    finally:
        await repo.aclose()


async def test_repository_of_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = await created(tmp_path / "jobs.sqlite")
    set_schema_version(path, 99)
    await assert_refused_untouched(path, match="newer ganga-async .schema version 99")


async def test_a_version_1_repository_is_upgraded_in_place_and_a_newer_one_refused(
    tmp_path: Path,
) -> None:
    path = await created(tmp_path / "jobs.sqlite")
    db = sqlite3.connect(path)
    db.executescript(_UNDO_6 + _UNDO_5 + _UNDO_4 + "DROP TABLE box; DROP TABLE shareref_holders; "
                     "DROP TABLE sharedirs; "
                     "UPDATE meta SET value='1' WHERE key='schema_version';")
    db.execute("INSERT INTO jobs (status, application, backend, spec) VALUES "
               "('new', 'Executable', 'Local', '{}')")
    db.commit()
    db.close()
    repo = Repository(path)
    await repo.open()
    assert await repo.box_rows() == [] and await repo.shareref_rows() == ({}, {})
    assert len(await repo.job_rows()) == 1
    await repo.aclose()
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
    db.close()
    set_schema_version(path, SCHEMA_VERSION + 1)
    await assert_refused_untouched(path)


async def test_ids_start_at_0_and_a_removed_id_is_never_given_again(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "jobs.sqlite")
    await repo.open()
    first, second = await repo.insert_job(_job_row()), await repo.insert_job(_job_row())
    await repo.delete_job(second)
    third = await repo.insert_job(_job_row())
    await repo.aclose()
    assert (first, second, third) == (0, 1, 2)


async def test_a_version_2_repository_upgraded_to_3_goes_on_after_its_highest_id(tmp_path: Path) -> None:
    path = await created(tmp_path / "jobs.sqlite")
    db = sqlite3.connect(path)
    db.executescript(_UNDO_6 + _UNDO_5 + _UNDO_4 + "DELETE FROM meta WHERE key='next_job_id'; "
                     "UPDATE meta SET value='2' WHERE key='schema_version';")
    db.executemany("INSERT INTO jobs (id, status, application, backend, spec) VALUES "
                   "(?, 'new', 'Executable', 'Local', '{}')", [(1,), (7,)])
    db.commit()
    db.close()
    repo = Repository(path)
    await repo.open()
    assert await repo.insert_job(_job_row()) == 8
    await repo.aclose()


async def test_a_version_3_repository_gains_the_retry_state_and_keeps_its_jobs(tmp_path: Path) -> None:
    """Version 4 (issue 15): retry_at on jobs and subjobs, and the attempts table."""
    path = await created(tmp_path / "jobs.sqlite")
    db = sqlite3.connect(path)
    db.executescript(_UNDO_6 + _UNDO_5 + _UNDO_4 + "UPDATE meta SET value='3' WHERE key='schema_version';")
    db.execute("INSERT INTO jobs (id, status, application, backend, spec, n_subjobs) VALUES "
               "(0, 'failed', 'Executable', 'Local', '{}', 1)")
    db.execute("INSERT INTO subjobs (job_id, idx, status, submit_counter) VALUES (0, 0, 6, 1)")
    db.commit()
    db.close()
    repo = Repository(path)
    await repo.open()
    [row] = await repo.job_rows()
    assert (row.status, row.retry_at) == ("failed", 0.0)
    assert (await repo.subjob_rows(0))[0][10] == 0.0
    repo.queue_attempt(0, 0, (1, "failed", "123", 3, "exit code 3", 1.0, 2.0, 3.0))
    repo.queue_subjob(0, 0, (1, None, None, None, 2, 0.0, 0.0, 0.0, 99.0))
    await repo.flush()
    assert await repo.attempt_rows(0) == {0: [(1, "failed", "123", 3, "exit code 3", 1.0, 2.0, 3.0)]}
    assert (await repo.subjob_rows(0))[0][10] == 99.0
    await repo.delete_job(0)
    assert await repo.attempt_rows(0) == {}
    await repo.aclose()


async def test_a_file_that_is_not_a_repository_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RepositoryError, match="not a ganga-async repository"):
        await Repository(path).open()


async def test_queued_updates_coalesce_and_flush_in_one_go(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "jobs.sqlite")
    await repo.open()
    job_id = await repo.insert_job(_job_row())
    await repo.insert_subjobs(job_id, [(0, 1, None), (1, 1, None)])
    repo.queue_subjob(job_id, 0, (2, "x", None, None, 1, 1.0, 0.0, 0.0, 0.0))
    repo.queue_subjob(job_id, 0, (3, "x", None, None, 1, 1.0, 2.0, 0.0, 0.0))
    repo.queue_job(job_id, status="running")
    await repo.flush()
    rows = await repo.subjob_rows(job_id)
    assert rows[0][1] == 3 and rows[0][8] == 2.0
    assert (await repo.job_rows([job_id]))[0].status == "running"
    await repo.aclose()


async def test_the_writer_goes_on_writing_after_another_task_flushed_while_it_waited(
        tmp_path: Path) -> None:
    """A flush by a stage (the split stage flushes after each split) while the periodic writer
    waits for work must not leave the writer waiting for good: what is queued afterwards is
    still written within its interval, not at the next stage's flush."""
    path = tmp_path / "jobs.sqlite"
    repo = Repository(path, flush_interval=0.01)
    await repo.open()
    job_id = await repo.insert_job(_job_row())
    async with anyio.create_task_group() as tg:
        await tg.start(repo.run)
        await repo.flush()
        repo.queue_job(job_id, status="running")
        with anyio.fail_after(30):
            # another connection's view of the file: there is no event to wait for
            while stored_status(path, job_id) != "running":  # noqa: ASYNC110
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    await repo.aclose()


async def test_a_failed_split_insert_leaves_no_subjobs(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "jobs.sqlite")
    await repo.open()
    job_id = await repo.insert_job(_job_row())

    def rows():  # type: ignore[no-untyped-def]
        yield (0, 1, None)
        raise ValueError("splitter broke")

    with pytest.raises(ValueError, match="splitter broke"):
        await repo.insert_subjobs(job_id, rows())
    assert await repo.subjob_rows(job_id) == []
    await repo.aclose()


async def test_a_split_is_stored_with_its_number_of_subjobs_in_one_transaction(tmp_path: Path) -> None:
    """The split stage answers submit() once ``insert_subjobs`` returns, without a flush: the
    master's number of subjobs is in that same transaction, and the rows of an interrupted
    split are replaced."""
    path = tmp_path / "jobs.sqlite"
    repo = Repository(path)
    await repo.open()
    job_id = await repo.insert_job(_job_row())
    await repo.insert_subjobs(job_id, [(i, 1, None) for i in range(5)])
    await repo.insert_subjobs(job_id, [(i, 1, None) for i in range(3)])
    with contextlib.closing(sqlite3.connect(path)) as db:  # what a crash now would leave
        assert db.execute("SELECT n_subjobs FROM jobs WHERE id=?", (job_id,)).fetchone() == (3,)
        assert db.execute("SELECT COUNT(*) FROM subjobs WHERE job_id=?", (job_id,)).fetchone() == (3,)
    await repo.aclose()


async def test_flushing_one_job_writes_its_columns_and_tokens_and_leaves_the_others_queued(
        tmp_path: Path) -> None:
    """Accepting a job makes its own row durable without writing what running jobs queued
    (thousands of status rows under load): the others are written by the next full flush."""
    path = tmp_path / "jobs.sqlite"
    repo = Repository(path)
    await repo.open()
    busy = await repo.insert_job(_job_row())
    await repo.insert_subjobs(busy, [(0, 1, None)])
    new = await repo.insert_job(_job_row())
    repo.queue_job(busy, status="running")
    repo.queue_subjob(busy, 0, (3, "x", None, None, 1, 1.0, 2.0, 0.0, 0.0))
    repo.queue_token("busy-token", busy, 1.0)
    repo.queue_job(new, status="submitting")
    repo.queue_token("new-token", new, 2.0)
    await repo.flush(new)
    assert stored_status(path, new) == "submitting"
    assert stored_status(path, busy) != "running"
    assert stored_tokens(path) == {"new-token": new}
    await repo.flush()
    assert stored_status(path, busy) == "running"
    assert stored_tokens(path) == {"new-token": new, "busy-token": busy}
    assert (await repo.subjob_rows(busy))[0][1] == 3
    await repo.aclose()


async def test_a_version_4_repository_upgraded_to_5_keeps_its_jobs_and_stores_tokens(
    tmp_path: Path,
) -> None:
    path = await created(tmp_path / "jobs.sqlite")
    db = sqlite3.connect(path)
    db.executescript(_UNDO_6 + _UNDO_5 + "UPDATE meta SET value='4' WHERE key='schema_version';")
    db.execute("INSERT INTO jobs (id, status, application, backend, spec) VALUES "
               "(0, 'completed', 'Executable', 'Local', '{}')")
    db.commit()
    db.close()
    repo = Repository(path)
    await repo.open()
    assert [r.id for r in await repo.job_rows()] == [0]
    assert await repo.token_job("t-1") is None
    repo.queue_token("t-1", 0, 1.0)
    await repo.flush()
    await repo.aclose()
    repo = Repository(path)
    await repo.open()
    assert await repo.token_job("t-1") == 0
    await repo.aclose()


async def test_a_version_5_repository_upgraded_to_6_keeps_its_jobs_and_stores_tasks(
    tmp_path: Path,
) -> None:
    from ganga_async import ArgSplitter, Executable
    from ganga_async.model.task import CoreTask, CoreTransform, UnitStatus
    from ganga_async.persistence import tasks as stored

    path = await created(tmp_path / "jobs.sqlite")
    db = sqlite3.connect(path)
    db.executescript(_UNDO_6 + "UPDATE meta SET value='5' WHERE key='schema_version';")
    db.execute("INSERT INTO jobs (id, status, application, backend, spec) VALUES "
               "(0, 'completed', 'Executable', 'Local', '{}')")
    db.commit()
    db.close()
    repo = Repository(path)
    await repo.open()
    assert [r.id for r in await repo.job_rows()] == [0]
    trf = CoreTransform(name="t", application=Executable(exe="/bin/echo"),
                        unit_splitter=ArgSplitter(args=[["a"], ["b"]]), run_limit=3)
    task = CoreTask(name="analysis", float=4, transforms=[trf])
    trf.make_units()
    task.id = await stored.insert_task(repo, task)
    unit = trf.units[1]
    unit.status, unit.job_id, unit.history, unit.runs, unit.reason = (
        UnitStatus.RUNNING, 7, [3], 2, "job 3 failed")
    await stored.save_units(repo, task, [(0, unit)])
    await repo.aclose()
    repo = Repository(path)
    await repo.open()
    [again] = await stored.load_tasks(repo)
    assert (again.id, again.name, again.float, str(again.status)) == (0, "analysis", 4, "new")
    assert again.transforms[0].to_dict() == trf.to_dict()
    second = again.transforms[0].units[1]
    assert (second.status, second.job_id, second.history, second.runs, second.reason) == (
        UnitStatus.RUNNING, 7, [3], 2, "job 3 failed")
    await stored.delete_task(repo, 0)
    assert await stored.load_tasks(repo) == []
    await repo.aclose()
