"""The reads behind ``jobs``, ``jobs.select(...)`` and ``engine.summary()``: selections answered
by the database (status index, id range) without listing every job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ganga_async.persistence.queries import job_ids, select_job_ids, summary_rows
from ganga_async.persistence.repository import Repository

pytestmark = pytest.mark.anyio

JOBS = [  # name, status, application, backend, n_subjobs
    ("sim-1", "completed", "Executable", "Local", None),
    ("sim-2", "failed", "Executable", "Slurm", 3),
    ("reco", "failed", "Executable", "Local", None),
    ("sim-10", "new", "Other", "Local", None),
    ("Sim-3", "failed", "Executable", "Local", None),
]


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[Repository]:
    repository = Repository(tmp_path / "jobs.sqlite")
    await repository.open()
    for name, status, application, backend, n in JOBS:
        await repository.insert_job({"name": name, "comment": "", "status": status,
                                     "application": application, "backend": backend,
                                     "spec": {}, "times": {}, "n_subjobs": n})
    yield repository
    await repository.aclose()


async def test_select_by_status_range_plugins_and_a_case_sensitive_name_pattern(
        repo: Repository) -> None:
    assert await job_ids(repo) == [0, 1, 2, 3, 4]
    assert await select_job_ids(repo) == [0, 1, 2, 3, 4]
    assert await select_job_ids(repo, statuses=["failed"]) == [1, 2, 4]
    assert await select_job_ids(repo, statuses=["failed"], minid=2, maxid=3) == [2]
    assert await select_job_ids(repo, name="sim-*") == [0, 1, 3]
    assert await select_job_ids(repo, name="sim-?") == [0, 1]
    assert await select_job_ids(repo, name="[sS]im-[13]") == [0, 4]
    assert await select_job_ids(repo, application="Executable", backend="Local") == [0, 2, 4]
    assert await select_job_ids(repo, statuses=["killed"]) == []


async def test_summary_rows_filter_keep_the_order_of_ids_and_take_the_live_status(
        repo: Repository) -> None:
    rows = await summary_rows(repo, {})
    assert rows[1] == (1, "failed", "sim-2", 3, "Executable", "Slurm", None, "")
    assert rows[0][3] == 0  # no subjobs
    assert [r[0] for r in await summary_rows(repo, {}, status="failed")] == [1, 2, 4]
    assert [r[0] for r in await summary_rows(repo, {}, name="reco")] == [2]
    assert [r[0] for r in await summary_rows(repo, {}, ids=[4, 0, 2, 99])] == [4, 0, 2]
    assert await summary_rows(repo, {}, ids=[]) == []
    live = {2: "submitting", 3: "new"}
    assert [r[:2] for r in await summary_rows(repo, live, ids=[2, 3])] == \
        [(2, "submitting"), (3, "new")]
    assert [r[0] for r in await summary_rows(repo, live, status="failed")] == [1, 4]
