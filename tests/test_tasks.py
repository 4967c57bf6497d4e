"""Tasks on real Local processes: units get jobs within float as jobs end (no polling), a
failing unit is retried then fails with its reason, pause stops new jobs, and an engine
restart carries a task on without a second job for any unit."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from ganga_async import (
    ArgSplitter,
    Config,
    CoreTask,
    CoreTransform,
    Engine,
    Executable,
    GenericSplitter,
    JobSpecError,
    Local,
    Status,
    TaskChainInput,
    TaskStatus,
    UnitStatus,
)
from ganga_async.states import FINAL

pytestmark = pytest.mark.anyio


def sh_task(scripts: list[str], *, float_: int, run_limit: int = 3) -> CoreTask:
    trf = CoreTransform(name="sh", application=Executable(exe="/bin/sh"),
                        backend=Local(max_concurrent=8), run_limit=run_limit,
                        unit_splitter=ArgSplitter(args=[["-c", s] for s in scripts]))
    task = CoreTask(name="analysis", float=float_)
    task.appendTransform(trf)
    return task


async def test_a_task_of_five_units_completes_with_never_more_than_float_jobs_active(
        gangadir: Path, config: Config) -> None:
    task = sh_task(["sleep 0.2"] * 5, float_=2)
    async with Engine(gangadir, config=config) as engine:
        active: set[int] = set()
        most = 0

        events = engine.events()

        async def watch() -> None:
            nonlocal most
            async with events:
                async for event in events:
                    if event.index is None and event.new is Status.SUBMITTING:
                        active.add(event.job_id)
                    elif event.new in FINAL:
                        active.discard(event.job_id)
                    most = max(most, len(active))

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await engine.tasks.run(task)
            await engine.tasks.wait(task, timeout=60)
            tg.cancel_scope.cancel()
        assert task.status is TaskStatus.COMPLETED
        assert task.unit_counts()["0:sh"]["completed"] == 5
        assert most == 2 and events.lost == 0
        jobs = await engine.jobs()
        assert len(jobs) == 5 and all(j.status is Status.COMPLETED for j in jobs)
        assert jobs[3].application.args == ["-c", "sleep 0.2"] and "unit 3" in jobs[3].comment


async def test_a_failing_unit_is_retried_to_run_limit_then_fails_with_its_reason_until_retry_failed(
        gangadir: Path, config: Config) -> None:
    task = sh_task(["true", "exit 3", "true"], float_=3, run_limit=2)
    async with Engine(gangadir, config=config) as engine:
        await engine.tasks.run(task)
        await engine.tasks.wait(task, timeout=60)
        units = task.transforms[0].units
        assert [u.status for u in units] == [UnitStatus.COMPLETED, UnitStatus.FAILED,
                                             UnitStatus.COMPLETED]
        bad = units[1]
        assert len(bad.history) == 1 and bad.job_id is not None
        assert bad.reason is not None and "exit" in bad.reason and "run_limit 2" in bad.reason
        assert task.status is TaskStatus.RUNNING
        assert len(await engine.jobs()) == 4
        task.transforms[0].retryFailed()
        await engine.tasks.run(task)
        await engine.tasks.wait(task, timeout=60)
        assert bad.status is UnitStatus.FAILED and len(bad.history) == 3
        assert len(await engine.jobs()) == 6
        with pytest.raises(JobSpecError, match="float"):
            await engine.tasks.run(CoreTask(transforms=[CoreTransform()]))
        assert engine.tasks.all() == [task]


async def test_pause_stops_new_jobs_and_run_goes_on(gangadir: Path, config: Config) -> None:
    task = sh_task(["sleep 0.3"] * 3, float_=1)
    async with Engine(gangadir, config=config) as engine:
        await engine.tasks.run(task)
        await engine.tasks.pause(task)
        [first] = await engine.jobs()
        await engine.wait(first, timeout=30)
        await anyio.sleep(0.3)
        assert len(await engine.jobs()) == 1
        assert task.unit_counts()["0:sh"] == {"new": 2, "hold": 0, "running": 0, "completed": 1,
                                           "failed": 0}
        await engine.tasks.run(task)
        await engine.tasks.wait(task, timeout=60)
        assert task.status is TaskStatus.COMPLETED and len(await engine.jobs()) == 3


async def test_an_engine_restart_carries_the_task_on_without_a_second_job_per_unit(
        gangadir: Path, config: Config) -> None:
    task = sh_task(["sleep 0.5"] * 3, float_=1)
    async with Engine(gangadir, config=config) as engine:
        await engine.tasks.run(task)
        assert len(await engine.jobs()) == 1
    async with Engine(gangadir, config=config) as engine:
        [again] = engine.tasks.all()
        assert again.status is TaskStatus.RUNNING and again.id == task.id
        await engine.tasks.wait(again, timeout=60)
        assert again.status is TaskStatus.COMPLETED
        jobs = await engine.jobs()
        assert len(jobs) == 3 and all(j.status is Status.COMPLETED for j in jobs)
        assert sorted(u.job_id for u in again.transforms[0].units) == [j.id for j in jobs]


def test_the_gpi_runs_a_task_and_a_later_session_finds_it() -> None:
    from test_gpi import run_gpi

    out = run_gpi("""
        from ganga_async.gpi import *
        t = CoreTask(name="analysis")
        t.appendTransform(CoreTransform(name="echo", application=Executable(exe="/bin/echo"),
                                        unit_splitter=ArgSplitter(args=[["a"], ["b"], ["c"]])))
        t.float = 2
        t.run()
        t.wait(timeout=30)
        t.overview()
        print(len(jobs), tasks(t.id) is t)
    """, timeout=60)
    title, header, _, row, count = out.splitlines()
    assert title == "Task 0 (analysis): completed, float 2"
    assert [c.strip() for c in header.split("|")] == ["transform", "new", "hold", "running",
                                                     "completed", "failed"]
    assert [c.strip() for c in row.split("|")] == ["0:echo", "0", "0", "0", "3", "0"]
    assert count == "3 True"
    table = run_gpi("from ganga_async.gpi import *\nprint(tasks)")
    title, header, _, row = table.splitlines()
    assert title == "Registry: tasks (1 task)"
    assert [c.strip() for c in row.split("|")] == ["0", "analysis", "completed", "2",
                                                  "0", "0", "0", "3", "0"]


def chain_task(float_: int) -> CoreTask:
    parent = CoreTransform(name="make", application=Executable(exe="/bin/sh"),
                           outputfiles=["out.txt", "skip.log"], unit_splitter=ArgSplitter(args=[
                               ["-c", f"sleep 0.2; echo {word} > out.txt; echo no > skip.log"]
                               for word in ("alpha", "beta")]))
    child = CoreTransform(name="read", application=Executable(exe="/bin/sh", args=["-c", "cat *.*"]),
                          chain_input=TaskChainInput(input_trf=0, include_file_mask=[r"\.txt$"]))
    return CoreTask(name="chain", float=float_, transforms=[parent, child])


async def test_a_chain_gives_each_child_the_masked_outputs_of_its_parent(
        gangadir: Path, config: Config) -> None:
    task = chain_task(4)
    async with Engine(gangadir, config=config) as engine:
        await engine.tasks.run(task)
        await engine.tasks.wait(task, timeout=60)
        assert task.status is TaskStatus.COMPLETED
        children = task.transforms[1].units
        assert sorted(u.parents for u in children) == [[0], [1]]
        for unit in children:
            job = await engine.get(unit.job_id)  # type: ignore[arg-type]
            assert [Path(f).name for f in job.inputfiles] == ["out.txt"]
            parent = task.transforms[0].units[unit.parents[0]]
            word = ("alpha", "beta")[parent.index]
            assert (await engine.peek(job, "stdout")) == f"{word}\n"


async def test_a_restart_in_the_middle_of_a_chain_goes_on_with_no_second_job(
        gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        await engine.tasks.run(chain_task(1))
        assert len(await engine.jobs()) == 1
    async with Engine(gangadir, config=config) as engine:
        [task] = engine.tasks.all()
        await engine.tasks.wait(task, timeout=60)
        assert task.status is TaskStatus.COMPLETED
        jobs = await engine.jobs()
        assert len(jobs) == 4 and all(j.status is Status.COMPLETED for j in jobs)
        assert task.unit_counts()["1:read"]["completed"] == 2


async def test_a_unit_whose_job_is_refused_fails_with_why_and_the_rest_goes_on(
        gangadir: Path, config: Config) -> None:
    trf = CoreTransform(name="exe", unit_splitter=GenericSplitter(
        attribute="application.exe", values=["/bin/true", "/no/such/program", "/bin/true"]))
    task = CoreTask(name="mixed", float=3, transforms=[trf])
    async with Engine(gangadir, config=config) as engine:
        await engine.tasks.run(task)
        await engine.tasks.wait(task, timeout=60)
        assert [u.status for u in trf.units] == [UnitStatus.COMPLETED, UnitStatus.FAILED,
                                                 UnitStatus.COMPLETED]
        reason = trf.units[1].reason or ""
        assert "refused" in reason and "/no/such/program" in reason


async def test_shareref_counts_and_names_a_transform_holding_a_prepared_application(
        gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        app = Executable(exe="/bin/echo")
        sharedir = await engine.prepare(app)
        trf = CoreTransform(application=app, unit_splitter=ArgSplitter(args=[["a"], ["b"]]))
        task = CoreTask(name="prepared", float=2, transforms=[trf])
        await engine.tasks.add(task)
        assert "task:0.0" in await engine.shareref.lookup(sharedir.name)
        before = (await engine.shareref.counts())[sharedir.name]
        await engine.tasks.run(task)
        await engine.tasks.wait(task, timeout=60)
        assert task.status is TaskStatus.COMPLETED
        holders = await engine.shareref.lookup(sharedir.name)
        assert "task:0.0" in holders and sum(h.startswith("job:") for h in holders) == 2
        assert (await engine.shareref.rebuild())[sharedir.name] == before + 2
        await engine.tasks.remove(task)
        assert "task:0.0" not in await engine.shareref.lookup(sharedir.name)
        again = CoreTask(name="again", transforms=[CoreTransform(application=app)])
        await engine.tasks.add(again)
        await engine.shareref.lookup(sharedir.name, unprepare=True)
        assert again.transforms[0].application.is_prepared is None
    async with Engine(gangadir, config=config) as engine:
        [stored_again] = [t for t in engine.tasks.all() if t.name == "again"]
        assert stored_again.transforms[0].application.is_prepared is None


async def test_a_stored_task_that_cannot_be_read_is_left_out_and_the_engine_opens(
        gangadir: Path, config: Config) -> None:
    import sqlite3

    async with Engine(gangadir, config=config) as engine:
        await engine.tasks.add(sh_task(["true"], float_=1))
        await engine.tasks.add(sh_task(["true"], float_=1))
        path = engine.repository.path
    db = sqlite3.connect(path)
    db.execute("""UPDATE tasks SET transforms='[{"job": {"application": {"type": "NoSuchApp"}}}]'
                  WHERE id=0""")
    db.commit()
    db.close()
    async with Engine(gangadir, config=config) as engine:
        assert [t.id for t in engine.tasks.all()] == [1]


async def test_resetting_a_parent_unit_makes_its_child_again_from_the_new_outputs(
        gangadir: Path, config: Config) -> None:
    task = chain_task(4)
    async with Engine(gangadir, config=config) as engine:
        await engine.tasks.run(task)
        await engine.tasks.wait(task, timeout=60)
        task.transforms[0].resetUnit(0)
        await engine.tasks.run(task)
        await engine.tasks.wait(task, timeout=60)
        assert task.status is TaskStatus.COMPLETED
        children = task.transforms[1].units
        assert sorted(u.parents for u in children) == [[0], [1]] and len(children) == 2
        assert len(await engine.jobs()) == 6
    async with Engine(gangadir, config=config) as engine:
        [again] = engine.tasks.all()
        assert sorted(u.index for u in again.transforms[1].units) == sorted(u.index for u in children)


async def test_a_single_unit_chain_whose_parent_failed_says_why_and_goes_on_once_it_is_retried(
        gangadir: Path, config: Config, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    parent = CoreTransform(name="make", application=Executable(exe="/bin/sh"), run_limit=1,
                           outputfiles=["*.txt"], unit_splitter=ArgSplitter(args=[
                               ["-c", "echo a > a.txt"], ["-c", f"test -e {flag} && echo b > b.txt"]]))
    merge = CoreTransform(name="merge", application=Executable(exe="/bin/sh", args=["-c", "cat *.txt"]),
                          chain_input=TaskChainInput(include_file_mask=[r"\.txt$"], single_unit=True))
    task = CoreTask(name="merge", float=4, transforms=[parent, merge])
    async with Engine(gangadir, config=config) as engine:
        await engine.tasks.run(task)
        await engine.tasks.wait(task, timeout=60)
        [unit] = merge.units
        assert unit.status is UnitStatus.FAILED and unit.job_id is None
        assert "unit 1 failed: job 1 failed" in (unit.reason or "")
        assert (task.reason or "").startswith("transform 0 unit 1 failed (and 1 more failed)")
    async with Engine(gangadir, config=config) as engine:
        [task] = engine.tasks.all()
        assert task.transforms[1].units[0].reason == unit.reason
        flag.write_text("")
        task.transforms[0].retryFailed()
        await engine.tasks.run(task)
        await engine.tasks.wait(task, timeout=60)
        assert task.status is TaskStatus.COMPLETED and task.reason is None
        [unit] = task.transforms[1].units
        job = await engine.get(unit.job_id)  # type: ignore[arg-type]
        assert (await engine.peek(job, "stdout")) == "a\nb\n"
