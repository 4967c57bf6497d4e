"""Prepared applications through the engine, with real files, real processes and a real
repository: what is copied, what runs, what is counted, what is cleaned up."""

from __future__ import annotations

import functools
import gc
import logging
import sqlite3
from collections import Counter
from pathlib import Path

import anyio
import pytest
from shareref_load import prepared_jobs, worker

from ganga_async import (
    ArgSplitter,
    BoxEntryNotFoundError,
    Config,
    Engine,
    Executable,
    Job,
    JobSpecError,
    JobStateError,
    ShareDir,
    ShareDirError,
    Status,
    VomsProxy,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "analysis.sh"
    path.write_text('#!/bin/sh\necho "version 1: $(cat "$1")"\n')
    path.chmod(0o755)
    (tmp_path / "cuts.txt").write_text("pt > 20")
    return path


def app_of(script: Path) -> Executable:
    return Executable(exe=str(script), args=[str(script.parent / "cuts.txt")])


async def test_prepare_copies_the_script_and_its_file_argument_and_the_job_runs_the_copies(
    gangadir: Path, config: Config, script: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with Engine(gangadir, config=config) as engine:
        app = app_of(script)
        assert app.is_prepared is None
        with caplog.at_level(logging.INFO, logger="ganga_async"):
            sharedir = await engine.prepare(app)
        assert app.is_prepared == sharedir == ShareDir(name=sharedir.name)
        shared = gangadir / "shared" / config.user / sharedir.name
        messages = [r.getMessage() for r in caplog.records]
        assert messages[:2] == ["Preparing Executable application.",
                                f"Created shared directory: {shared}"]
        assert sorted(p.name for p in shared.iterdir()) == ["analysis.sh", "cuts.txt"]
        await anyio.Path(script).write_text("#!/bin/sh\necho version 2\n")
        await anyio.Path(script.parent / "cuts.txt").write_text("changed")
        job = Job(application=app)
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert job.status is Status.COMPLETED, job.reason
        assert await engine.peek(job) == "version 1: pt > 20\n"
        assert await engine.shareref.counts() == {sharedir.name: 1}


async def test_protected_fields_are_read_only_once_prepared_and_editable_after_unprepare(
    gangadir: Path, config: Config, script: Path
) -> None:
    async with Engine(gangadir, config=config) as engine:
        app = app_of(script)
        await engine.prepare(app)
        for field, value in (("exe", "/bin/true"), ("args", ["other"])):
            with pytest.raises(JobStateError, match=rf"application.{field} is read-only: the "
                               r"application is prepared .*call unprepare\(\) first, or make an "
                               r"editable copy with copy\(unprepare=True\)"):
                setattr(app, field, value)
        app.env = {"ALLOWED": "1"}
        with pytest.raises(JobStateError, match="already prepared"):
            await engine.prepare(app)
        name = app.is_prepared.name  # type: ignore[union-attr]
        app.unprepare()
        assert app.is_prepared is None
        app.exe = "/bin/true"
        await engine.shareref.flush()
        assert await engine.shareref.counts() == {name: 0}


async def test_args_naming_no_file_stay_editable_when_prepared(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        app = Executable(exe="/bin/echo", args=["hello"])
        sharedir = await engine.prepare(app)
        assert sharedir.files == {}
        app.args = ["bye"]
        with pytest.raises(JobStateError):
            app.exe = "/bin/true"


async def test_assigning_a_sharedir_to_is_prepared_is_refused(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        app = Executable()
        await engine.prepare(app)
        with pytest.raises(JobSpecError, match="can only be set to None"):
            app.is_prepared = ShareDir(name="conf-0f6c3b8e-1d2a-4c5b-9e8f-7a6b5c4d3e2f")


async def test_submit_prepares_a_job_and_the_count_follows_copies_and_removal(
    gangadir: Path, config: Config, script: Path
) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=app_of(script),
                  splitter=ArgSplitter(args=[[str(script.parent / "cuts.txt")]] * 5))
        await engine.submit(job)
        name = job.application.is_prepared.name  # type: ignore[union-attr]
        assert await engine.shareref.counts() == {name: 1}, "one reference however many subjobs"
        copy = job.copy()
        await engine.add(copy)
        unprepared = job.copy(unprepare=True)
        assert unprepared.application.is_prepared is None
        await engine.add(unprepared)
        assert await engine.shareref.counts() == {name: 2}
        await engine.wait(job, timeout=30)
        await engine.remove(job)
        assert await engine.shareref.counts() == {name: 1}
        await engine.remove(copy)
        assert await engine.shareref.counts() == {name: 0}


async def test_a_copy_alive_in_the_session_counts_until_it_is_gone(
    gangadir: Path, config: Config
) -> None:
    async with Engine(gangadir, config=config) as engine:
        app = Executable()
        name = (await engine.prepare(app)).name
        twin = app.copy()
        await engine.shareref.flush()
        assert await engine.shareref.counts() == {name: 2}
        del twin
        gc.collect()
        await engine.shareref.flush()
        assert await engine.shareref.counts() == {name: 1}
        job = Job(application=app)
        await engine.add(job)
        assert await engine.shareref.counts() == {name: 1}, "the job now owns the application"


async def test_unprepare_on_copy_makes_copies_unprepared_by_default(
    gangadir: Path, config: Config
) -> None:
    config["Preparable"]["unprepare_on_copy"] = True
    async with Engine(gangadir, config=config) as engine:
        job = Job()
        await engine.prepare(job)
        await engine.add(job)
        assert job.copy().application.is_prepared is None
        assert job.copy(unprepare=False).application.is_prepared == job.application.is_prepared


async def test_a_failed_prepare_leaves_no_directory_and_no_count(
    gangadir: Path, config: Config, tmp_path: Path, script: Path
) -> None:
    async with Engine(gangadir, config=config) as engine:
        missing = Job(application=Executable(exe=str(tmp_path / "nowhere.sh")))
        with pytest.raises(JobSpecError, match="nowhere.sh does not exist"):
            await engine.submit(missing)
        # Reading /proc/self/mem from its start fails with EIO, as a failing disk would.
        broken = Job(application=Executable(exe=str(script), args=["/proc/self/mem"]))
        with pytest.raises(ShareDirError, match="while copying /proc/self/mem .*nothing was kept"):
            await engine.submit(broken)
        assert broken.status is Status.NEW and broken.application.is_prepared is None
        assert await engine.shareref.counts() == {}
        shared = gangadir / "shared" / config.user
        assert not shared.exists() or list(shared.iterdir()) == []


async def test_a_refused_submission_unprepares_what_it_prepared(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="no-such-program"))
        with pytest.raises(JobSpecError):
            await engine.submit(job)
        assert job.application.is_prepared is None
        job.application.exe = "/bin/true"
        await engine.submit(job)


async def test_unreferenced_sharedirs_are_deleted_at_close_and_referenced_ones_persist(
    gangadir: Path, config: Config
) -> None:
    async with Engine(gangadir, config=config) as engine:
        alone = Executable()
        lonely = (await engine.prepare(alone)).name
        job = Job()
        await engine.add(job)
        kept = (await engine.prepare(job)).name
    shared = gangadir / "shared" / config.user
    assert [p.name for p in shared.iterdir()] == [kept]
    async with Engine(gangadir, config=config) as engine:
        again = await engine.get(job.id)  # type: ignore[arg-type]
        assert again.application.is_prepared == ShareDir(name=kept)
        assert await engine.shareref.counts() == {kept: 1}
        assert lonely not in await engine.shareref.counts()


async def test_a_sharedir_vanished_from_disk_unprepares_its_owners_at_close(
    gangadir: Path, config: Config
) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job()
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        name = job.application.is_prepared.name  # type: ignore[union-attr]
        await engine.shared.remove(name)
    async with Engine(gangadir, config=config) as engine:
        again = await engine.get(job.id)  # type: ignore[arg-type]
        assert again.application.is_prepared is None
        assert await engine.shareref.counts() == {}


async def test_rebuild_and_lookup_find_the_stored_owners(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job()
        await engine.add(job)
        name = (await engine.prepare(job)).name
        await engine.box.add(job, "template")
        db = sqlite3.connect(engine.repository.path)
        db.execute("DELETE FROM shareref_holders")
        db.commit()
        db.close()
        assert await engine.shareref.rebuild() == {name: 2}
        assert await engine.shareref.lookup(name) == ["job:0", "box:template"]
        await engine.shareref.lookup(name, unprepare=True)
        assert job.application.is_prepared is None
        assert (await engine.box.entries())[0].sharedir is None
        assert await engine.shareref.counts() == {name: 0}


async def test_the_box_keeps_copies_that_hold_a_reference_until_removed(
    gangadir: Path, config: Config, script: Path
) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(name="analysis", application=app_of(script))
        await engine.add(job)
        name = (await engine.prepare(job)).name
        await engine.box.add(job, "analysis")
        await engine.box.add(Executable(exe="/bin/date"), "date")
        with pytest.raises(JobSpecError, match="already has an entry 'analysis'"):
            await engine.box.add(job, "analysis")
        assert await engine.shareref.counts() == {name: 2}
        await engine.remove(job)
        assert await engine.shareref.counts() == {name: 1}
    async with Engine(gangadir, config=config) as engine:
        entries = [(e.name, e.kind, e.type, e.sharedir) for e in await engine.box.entries()]
        assert entries == [("analysis", "job", "Job(Executable)", name),
                           ("date", "application", "Executable", None)]
        template = await engine.box.get("analysis")
        assert isinstance(template, Job) and template.name == "analysis"
        assert template.application.is_prepared == ShareDir(name=name)
        await engine.submit(template)
        await engine.wait(template, timeout=30)
        assert await engine.peek(template) == "version 1: pt > 20\n"
        assert await engine.shareref.counts() == {name: 2}
        await engine.box.remove("analysis")
        with pytest.raises(BoxEntryNotFoundError, match="no entry 'analysis'; entries: 'date'"):
            await engine.box.remove("analysis")
        assert await engine.shareref.counts() == {name: 1}


async def test_a_job_from_the_box_keeps_its_credentials(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        await engine.box.add(Job(credentials=[VomsProxy(vo="lhcb")]), "grid")
        template = await engine.box.get("grid")
        assert isinstance(template, Job) and template.credentials == [VomsProxy(vo="lhcb")]


async def test_a_prepared_application_whose_sharedir_is_gone_is_refused_at_submit(
    gangadir: Path, config: Config
) -> None:
    async with Engine(gangadir, config=config) as engine:
        app = Executable()
        name = (await engine.prepare(app)).name
        await engine.shared.remove(name)
        with pytest.raises(JobSpecError, match=rf"application.is_prepared: ShareDir {name} does not"):
            await engine.submit(Job(application=app))


async def test_many_tasks_preparing_copying_removing_and_boxing_end_with_exact_counts(
    gangadir: Path, config: Config
) -> None:
    async with Engine(gangadir, config=config) as engine:
        bases = await prepared_jobs(engine, 3)
        async with anyio.create_task_group() as tg:
            for seed in range(20):
                tg.start_soon(functools.partial(worker, engine, seed, bases, steps=12))
        owners = Counter(j.application.is_prepared.name for j in await engine.jobs())  # type: ignore[union-attr]
        owners.update(e.sharedir for e in await engine.box.entries())
        assert await engine.shareref.counts() == dict(owners)
        db = sqlite3.connect(engine.repository.path)
        stored = dict(db.execute("SELECT name, COUNT(*) FROM shareref_holders GROUP BY name"))
        db.close()
        assert stored == dict(owners)
