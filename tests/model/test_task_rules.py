"""The task rules, without an engine: units from a splitter, float, retries, holds."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ganga_async import (
    ArgSplitter,
    Executable,
    FileSplitter,
    JobSpecError,
    JobStateError,
    Local,
    Retry,
)
from ganga_async.model.task import (
    CoreTask,
    CoreTransform,
    TaskChainInput,
    TaskStatus,
    UnitStatus,
    add_chained,
    chain_blocked,
    chain_pending,
    done,
    job_ended,
    release_held,
    to_submit,
)
from ganga_async.states import Status


def _task(n: int = 3, *, run_limit: int = 2, float_: int = 2) -> CoreTask:
    trf = CoreTransform(name="t", application=Executable(exe="/bin/echo"), backend=Local(),
                        unit_splitter=ArgSplitter(args=[[str(i)] for i in range(n)]),
                        run_limit=run_limit)
    task = CoreTask(name="a", float=float_, transforms=[trf])
    trf.make_units()
    task.status = TaskStatus.RUNNING
    return task


def _start(task: CoreTask) -> None:
    for _, unit in to_submit(task):
        unit.status, unit.job_id, unit.runs = UnitStatus.RUNNING, 100 + unit.index, unit.runs + 1


def test_units_come_from_the_unit_splitter_and_make_jobs_with_their_overrides() -> None:
    task = _task(3)
    trf = task.transforms[0]
    assert [u.overrides for u in trf.units] == [{"application.args": [str(i)]} for i in range(3)]
    job = trf.unit_job(trf.units[2], "a:0:2")
    assert job.application.args == ["2"] and job.name == "a:0:2"
    assert trf.template.application.args != ["2"]


def test_float_caps_the_units_given_a_job() -> None:
    task = _task(5, float_=2)
    assert [u.index for _, u in to_submit(task)] == [0, 1]
    _start(task)
    assert to_submit(task) == []
    task.status = TaskStatus.PAUSE
    unit = task.transforms[0].units[0]
    job_ended(task, task.transforms[0], unit, Status.COMPLETED, 0, None)
    assert to_submit(task) == []
    task.status = TaskStatus.RUNNING
    assert [u.index for _, u in to_submit(task)] == [2]


def test_a_failing_unit_gets_new_jobs_up_to_run_limit_then_fails_with_its_reason() -> None:
    task = _task(1, run_limit=2)
    trf, unit = task.transforms[0], task.transforms[0].units[0]
    _start(task)
    job_ended(task, trf, unit, Status.FAILED, 1, "exit code 1")
    assert unit.status is UnitStatus.NEW and unit.history == [100] and unit.job_id is None
    _start(task)
    job_ended(task, trf, unit, Status.FAILED, 1, "exit code 1")
    assert unit.status is UnitStatus.FAILED
    assert unit.reason == "job 100 failed: exit code 1 (after 2 of run_limit 2 runs)"
    assert task.status is TaskStatus.RUNNING
    trf.retryFailed()
    assert unit.status is UnitStatus.NEW and unit.runs == 0 and unit.history == [100, 100]


def test_failures_outside_the_retry_policy_fail_the_unit_at_once() -> None:
    task = _task(2, run_limit=5)
    trf = task.transforms[0]
    _start(task)
    job_ended(task, trf, trf.units[0], Status.FAILED, 127, "cannot start: no such file")
    assert trf.units[0].status is UnitStatus.FAILED and "not retried" in (trf.units[0].reason or "")
    trf.template.retry = Retry(on=["checker"])
    job_ended(task, trf, trf.units[1], Status.FAILED, 1, None)
    assert trf.units[1].status is UnitStatus.FAILED


def test_the_task_completes_with_its_last_unit() -> None:
    task = _task(2)
    trf = task.transforms[0]
    _start(task)
    job_ended(task, trf, trf.units[0], Status.COMPLETED, 0, None)
    assert task.status is TaskStatus.RUNNING
    job_ended(task, trf, trf.units[1], Status.COMPLETED, 0, None)
    assert task.status is TaskStatus.COMPLETED
    assert task.unit_counts() == {"0:t": {"new": 0, "hold": 0, "running": 0, "completed": 2, "failed": 0}}


def test_a_transform_requiring_another_holds_until_that_one_completed() -> None:
    task = _task(1, float_=5)
    second = CoreTransform(name="u", application=Executable(exe="/bin/echo"), requires=[0])
    task.appendTransform(second)
    second.make_units()
    release_held(task)
    assert second.units[0].status is UnitStatus.HOLD
    assert [(i, u.index) for i, u in to_submit(task)] == [(0, 0)]
    _start(task)
    job_ended(task, task.transforms[0], task.transforms[0].units[0], Status.COMPLETED, 0, None)
    assert release_held(task) == [(1, second.units[0])]
    assert [(i, u.index) for i, u in to_submit(task)] == [(1, 0)]


def test_descriptions_are_checked_by_field() -> None:
    with pytest.raises(JobSpecError, match="run_limit"):
        CoreTransform(run_limit=0)
    with pytest.raises(JobSpecError, match="transforms"):
        CoreTask().check()
    task = CoreTask(transforms=[CoreTransform(requires=[0])])
    with pytest.raises(JobSpecError, match=r"transforms\[0\].requires"):
        task.check()


def test_a_transform_survives_its_stored_form() -> None:
    trf = _task(2).transforms[0]
    again = CoreTransform.from_dict(trf.to_dict())
    again.make_units()
    assert again.to_dict() == trf.to_dict()
    assert [u.overrides for u in again.units] == [u.overrides for u in trf.units]


def test_a_chain_makes_one_child_per_completed_parent_and_the_task_waits_for_them() -> None:
    task = _task(2, float_=5)
    child = CoreTransform(name="c", chain_input=TaskChainInput(input_trf=0))
    task.appendTransform(child)
    child.make_units()
    assert child.units == [] and chain_pending(task) == []
    _start(task)
    first, second = task.transforms[0].units
    job_ended(task, task.transforms[0], first, Status.COMPLETED, 0, None)
    assert chain_pending(task) == [(1, [first])]
    made = add_chained(task, 1, [first], ["/out/a.txt"])
    assert (made.index, made.parents, made.overrides) == (0, [0], {"inputfiles": ["/out/a.txt"]})
    assert chain_pending(task) == []
    job_ended(task, task.transforms[0], second, Status.COMPLETED, 0, None)
    assert task.status is TaskStatus.RUNNING and chain_pending(task) == [(1, [second])]


def test_a_single_unit_chain_waits_for_every_parent() -> None:
    task = _task(2, float_=5)
    task.appendTransform(CoreTransform(chain_input=TaskChainInput(single_unit=True)))
    _start(task)
    first, second = task.transforms[0].units
    job_ended(task, task.transforms[0], first, Status.COMPLETED, 0, None)
    assert chain_pending(task) == []
    job_ended(task, task.transforms[0], second, Status.COMPLETED, 0, None)
    assert chain_pending(task) == [(1, [first, second])]


def test_chain_masks_are_regular_expressions_checked_by_field() -> None:
    chain = TaskChainInput(include_file_mask=[r"\.txt$"], exclude_file_mask=["^skip"])
    assert [chain.wants(n) for n in ("a.txt", "skip.txt", "a.log")] == [True, False, False]
    with pytest.raises(JobSpecError, match="include_file_mask"):
        TaskChainInput(include_file_mask=["("])
    with pytest.raises(JobSpecError, match="exclude_file_mask"):
        TaskChainInput(exclude_file_mask="x")  # type: ignore[arg-type]
    task = CoreTask(transforms=[CoreTransform(chain_input=TaskChainInput(input_trf=0))])
    with pytest.raises(JobSpecError, match="input_trf"):
        task.check()


def test_a_file_splitter_gives_each_unit_its_share_of_the_transforms_input_files(
        tmp_path: Path) -> None:
    files = [tmp_path / f"f{i}" for i in range(5)]
    for f in files:
        f.write_text("")
    trf = CoreTransform(inputfiles=[str(f) for f in files],
                        unit_splitter=FileSplitter(files_per_subjob=2))
    trf.make_units()
    assert [len(u.overrides["inputfiles"]) for u in trf.units] == [2, 2, 1]


def test_a_transforms_job_fields_are_set_as_in_gangas_scripts_and_checked() -> None:
    trf = CoreTransform()
    trf.application = Executable(exe="/bin/date")
    trf.backend = Local(max_concurrent=2)
    trf.outputfiles = ["*.txt"]
    assert trf.template.application.exe == "/bin/date" and trf.outputfiles == ["*.txt"]
    with pytest.raises(JobSpecError, match="outputfiles"):
        trf.outputfiles = "x.txt"  # type: ignore[assignment]
    with pytest.raises(AttributeError):
        trf.no_such_field  # noqa: B018


def test_resetting_a_parent_unit_drops_its_chain_children_which_are_made_again() -> None:
    task = _task(2, float_=5)
    child_trf = CoreTransform(chain_input=TaskChainInput(input_trf=0))
    grand_trf = CoreTransform(chain_input=TaskChainInput(input_trf=1))
    task.appendTransform(child_trf)
    task.appendTransform(grand_trf)
    parents = task.transforms[0]
    _start(task)
    for unit in parents.units:
        job_ended(task, parents, unit, Status.COMPLETED, 0, None)
    first, second = (add_chained(task, 1, [p], [f"/out/{p.index}"]) for p in parents.units)
    grand = add_chained(task, 2, [first], ["/out/g"])
    first.status = UnitStatus.RUNNING
    with pytest.raises(JobStateError, match="made from unit 0's outputs"):
        parents.resetUnit(0)
    first.status = UnitStatus.COMPLETED
    parents.resetUnit(0)
    assert child_trf.units == [second] and grand_trf.units == []
    assert task.dropped == [(1, first.index), (2, grand.index)]
    _start(task)
    job_ended(task, parents, parents.units[0], Status.COMPLETED, 0, None)
    assert chain_pending(task) == [(1, [parents.units[0]])]
    again = add_chained(task, 1, [parents.units[0]], ["/out/0-again"])
    assert again.index == 2 and child_trf.unit(2) is again


def test_a_single_unit_chain_with_a_failed_parent_fails_its_unit_saying_which_and_how_to_go_on() -> None:
    task = _task(3, run_limit=1, float_=5)
    chained = CoreTransform(chain_input=TaskChainInput(single_unit=True))
    task.appendTransform(chained)
    parents = task.transforms[0]
    _start(task)
    job_ended(task, parents, parents.units[0], Status.COMPLETED, 0, None)
    job_ended(task, parents, parents.units[1], Status.FAILED, 3, "exit code 3")
    assert not done(task) and chain_pending(task) == []
    [(i, unit)] = chain_blocked(task)
    assert (i, unit.status, unit.parents) == (1, UnitStatus.FAILED, [0, 1, 2])
    assert "unit 1 failed: job 101 failed: exit code 3" in (unit.reason or "")
    assert "resetUnit(1)" in (unit.reason or "")
    assert task.reason is not None and task.reason.startswith("transform 0 unit 1 failed (and 1 more")
    assert chain_blocked(task) == []
    job_ended(task, parents, parents.units[2], Status.COMPLETED, 0, None)
    assert done(task) and task.status is TaskStatus.RUNNING
    with pytest.raises(JobStateError, match="takes the outputs of unit 1 of transform 0"):
        chained.resetUnit(0)
    assert chained.retryFailed() == []
    assert parents.retryFailed() == [parents.units[1]] and chained.units == []
    assert task.dropped == [(1, 0)] and not done(task)
    _start(task)
    job_ended(task, parents, parents.units[1], Status.COMPLETED, 0, None)
    assert chain_pending(task) == [(1, parents.units)] and chain_blocked(task) == []


def test_the_unit_index_agrees_with_the_units_after_any_moves() -> None:
    rng = random.Random(16)
    task = _task(40, run_limit=3, float_=7)
    chained = CoreTransform(chain_input=TaskChainInput(input_trf=0))
    task.appendTransform(chained)
    parents = task.transforms[0]
    for _ in range(400):
        _start(task)
        running = [(i, u) for i, _, u in task.units() if u.status is UnitStatus.RUNNING]
        if running:
            i, unit = rng.choice(running)
            end = rng.choice([Status.COMPLETED, Status.FAILED])
            job_ended(task, task.transforms[i], unit, end, 0 if end is Status.COMPLETED else 1, None)
        for i, made in chain_pending(task):
            add_chained(task, i, made, [])
        if rng.random() < 0.05:
            done_parents = [u for u in parents.units if u.status is UnitStatus.COMPLETED
                            and all(c.status is not UnitStatus.RUNNING for c in chained.units)]
            if done_parents:
                parents.resetUnit(rng.choice(done_parents).index)
        index = task.index()
        for i, trf in enumerate(task.transforms):
            assert index.counts[i] == {s: sum(u.status is s for u in trf.units) for s in UnitStatus}
        covered = {p for u in chained.units for p in u.parents}
        assert sorted(index.uncovered[1]) == [u.index for u in parents.units
                                              if u.status is UnitStatus.COMPLETED
                                              and u.index not in covered]
        first_new = [(i, u) for i, _, u in task.units() if u.status is UnitStatus.NEW]
        assert index.first_new(3) == first_new[:3]
