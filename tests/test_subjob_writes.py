"""Moved subjobs (status and timestamps only, a sweep's news) queued by table and index: after
a flush the repository holds what the table holds, whatever was queued between, and a failed
flush loses nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ganga_async import RepositoryError
from ganga_async.model.subjobs import SubjobTable
from ganga_async.persistence.repository import Repository
from ganga_async.persistence.subjob_writes import SubjobWrites
from ganga_async.states import Status

pytestmark = pytest.mark.anyio

N = 40


async def stored(tmp_path: Path) -> tuple[Repository, int, SubjobTable]:
    repo = Repository(tmp_path / "jobs.sqlite")
    await repo.open()
    job_id = await repo.insert_job({"name": "", "comment": "", "status": "submitted",
                                    "application": "Executable", "backend": "Local",
                                    "spec": {}, "times": {}})
    await repo.insert_subjobs(job_id, [(i, Status.SUBMITTED.code, None) for i in range(N)])
    table = SubjobTable()
    for i in range(N):
        table.append(Status.SUBMITTED, None, 1, f"id{i}", t_submitted=1.0)
    for i in range(N):
        repo.queue_subjob(job_id, i, table.row(i))
    await repo.flush()
    return repo, job_id, table


def move(table: SubjobTable, indices: range | list[int], status: Status, t: float) -> None:
    for i in indices:
        table.set_status(i, status)
        table.t_running[i] = t


async def as_stored(repo: Repository, job_id: int) -> list[tuple[object, ...]]:
    return [row[1:2] + row[3:] for row in await repo.subjob_rows(job_id)]


def in_memory(table: SubjobTable) -> list[tuple[object, ...]]:
    return [table.row(i) for i in range(len(table))]


@pytest.mark.parametrize("moved", [list(range(N)), [3, 4, 5, 9, 20, 21, 39], [7]])
async def test_a_flush_writes_the_moved_subjobs_as_the_table_holds_them(
        tmp_path: Path, moved: list[int]) -> None:
    repo, job_id, table = await stored(tmp_path)
    move(table, moved, Status.RUNNING, 5.0)
    repo.queue_moved(job_id, table, moved)
    if len(moved) > 2:  # moved again and a row queued one by one, before the flush
        move(table, moved[:2], Status.UNKNOWN, 6.0)
        repo.queue_moved(job_id, table, moved[:2])
        table.backend_id[moved[2]] = "new id"
        repo.queue_subjob(job_id, moved[2], table.row(moved[2]))
    await repo.flush()
    assert await as_stored(repo, job_id) == in_memory(table)
    await repo.aclose()


def test_runs_of_equal_moved_rows_are_one_statement_each() -> None:
    table = SubjobTable()
    for _ in range(10):
        table.append(Status.SUBMITTED, None)
    writes = SubjobWrites()
    move(table, range(10), Status.RUNNING, 5.0)
    table.t_running[6] = 7.0
    writes.queue_moved(3, table, [0, 1, 2, 3, 5, 6, 7, 8, 9])
    runs = [p[-3:] for p in writes.take().move_params()]
    assert runs == [(3, 0, 3), (3, 5, 5), (3, 6, 6), (3, 7, 9)]


async def test_moved_subjobs_a_failed_flush_did_not_write_are_written_by_the_next(
        tmp_path: Path) -> None:
    repo, job_id, table = await stored(tmp_path)
    move(table, range(N), Status.RUNNING, 5.0)
    repo.queue_moved(job_id, table, range(N))
    blocker = sqlite3.connect(tmp_path / "jobs.sqlite", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    await repo.db.execute("PRAGMA busy_timeout=0")
    with pytest.raises(RepositoryError):
        await repo.flush()
    blocker.rollback()
    blocker.close()
    await repo.flush()
    assert await as_stored(repo, job_id) == in_memory(table)
    await repo.aclose()
