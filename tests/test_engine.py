"""The engine end to end, with real local processes."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from ganga_async import (
    ArgSplitter,
    BackendError,
    Config,
    Engine,
    EngineClosedError,
    Executable,
    FileSplitter,
    GenericSplitter,
    Job,
    JobSpecError,
    JobStateError,
    Local,
    Status,
    WaitTimeoutError,
    _plugins,
)
from ganga_async.backends import DriverContext, SubmitUnit
from ganga_async.backends.local import LocalDriver, read_status

pytestmark = pytest.mark.anyio


def sh(script: str, **kwargs: object) -> Job:
    return Job(application=Executable(exe="/bin/sh", args=["-c", script]), **kwargs)  # type: ignore[arg-type]


async def until_running(engine: Engine, job: Job) -> None:
    """Wait, on the engine's events, until ``job`` runs (10 s at most)."""
    async with engine.events() as events:
        if job.status is Status.RUNNING:
            return
        with anyio.fail_after(10):
            async for event in events:
                if event.fqid == job.fqid and event.new is Status.RUNNING:
                    return


async def test_thousand_subjobs_complete_with_outputs_kept(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(name="hello", application=Executable(exe="/bin/echo"), backend=Local(max_concurrent=8),
                  splitter=ArgSplitter(args=[[str(i)] for i in range(1000)]))
        await engine.submit(job)
        await engine.wait(job, timeout=120)
        assert job.status is Status.COMPLETED
        assert len(job.subjobs) == 1000
        assert all(s.status is Status.COMPLETED for s in job.subjobs)
        last = job.subjobs[999]
        assert (last.outputdir / "stdout").read_text() == "999\n"
        assert last.exitcode == 0
        assert last.info.submit_counter == 1
        assert set(last.time) >= {"submitted", "running", "completed"}


class _SlowHandOver(LocalDriver):
    """The Local driver, returning from ``bulk_submit`` only once the engine has been told that
    every process of the batch ended: as when a large batch is still being written to the
    runner while its first processes have already come and gone."""

    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        results = await super().bulk_submit(units)
        with anyio.fail_after(30):
            # The driver's own state, which has no event to wait on.
            while any(unit.key in self._dispatched for unit in units) or self._news:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        await anyio.sleep(0.1)  # the engine's monitor takes the news
        return results


@dataclasses.dataclass(kw_only=True, repr=False)
class SlowHandOverLocal(Local):
    @classmethod
    def make_driver(cls, context: DriverContext) -> LocalDriver:
        return _SlowHandOver(context)


async def test_news_arriving_before_the_submission_call_returns_is_applied_at_once(
    gangadir: Path, config: Config
) -> None:
    _plugins.register("backend", SlowHandOverLocal)
    config["Monitoring"]["poll_interval"] = 300.0  # no status sweep to fall back on
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/echo"), backend=SlowHandOverLocal(),
                  splitter=ArgSplitter(args=[[str(i)] for i in range(20)]))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert [s.status for s in job.subjobs] == [Status.COMPLETED] * 20
        assert all(set(s.time) >= {"submitted", "running", "completed"} for s in job.subjobs)


async def test_a_failing_exit_code_fails_the_subjob_and_the_master(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/sh"),
                  splitter=ArgSplitter(args=[["-c", "exit 0"], ["-c", "exit 3"]]))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert job.status is Status.FAILED
        assert job.subjobs[0].status is Status.COMPLETED
        failed = job.subjobs[1]
        assert failed.status is Status.FAILED
        assert failed.exitcode == 3
        assert failed.reason == "exit code 3"


async def test_missing_exe_is_refused_at_submit_and_the_job_stays_new(
    gangadir: Path, config: Config
) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="no-such-program-here"))
        with pytest.raises(JobSpecError, match="application.exe: 'no-such-program-here' is not an"):
            await engine.submit(job)
        assert job.status is Status.NEW
        job.application.exe = "/bin/true"
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert job.status is Status.COMPLETED


async def test_missing_inputfile_is_refused_naming_it(gangadir: Path, config: Config, tmp_path: Path) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(inputfiles=[tmp_path / "absent.txt"])
        with pytest.raises(JobSpecError, match=r"inputfiles\[0\]: .*absent.txt does not exist"):
            await engine.submit(job)
        assert job.status is Status.NEW


async def test_env_is_added_to_the_inherited_environment(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = sh('echo "$GANGA_TEST_VAR:$PATH"')
        job.application.env = {"GANGA_TEST_VAR": "set"}
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        text = await engine.peek(job)
        assert text.startswith("set:") and os.environ["PATH"] in text


async def test_args_are_argv_never_a_shell(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="echo", args=["$HOME; echo injected", "*"]))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert await engine.peek(job) == "$HOME; echo injected *\n"


@pytest.mark.parametrize("remove_workdir", [True, False])
async def test_exe_among_inputfiles_runs_the_staged_copy_in_a_scratch_or_kept_workdir(
    gangadir: Path, config: Config, tmp_path: Path, remove_workdir: bool
) -> None:
    config["Local"]["remove_workdir"] = remove_workdir
    script = tmp_path / "analysis.sh"
    script.write_text("#!/bin/sh\necho staged $1 in $(pwd)\ntouch left-behind\n")
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="analysis.sh", args=["ok"]), inputfiles=[script],
                  outputfiles=["left-*"])
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert job.status is Status.COMPLETED, job.reason
        ran_in = Path((await engine.peek(job)).removeprefix("staged ok in ").strip())
        assert (job.outputdir / "left-behind").exists()
        if remove_workdir:
            # a scratch directory under the job's work/, removed with everything in it
            assert ran_in.parent == job.outputdir.parent / "work"
            # removed as its slot ends, just after the slot told of the process's end
            with anyio.fail_after(30):
                while ran_in.parent.exists():  # noqa: ASYNC110 (a directory has nothing to wait on)
                    await anyio.sleep(0.02)
        else:
            assert ran_in == job.workdir
            assert sorted(p.name for p in job.workdir.iterdir()) == ["analysis.sh", "left-behind"]


async def test_outputfiles_are_copied_back_to_the_outputdir(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = sh("echo result > out.txt; echo other > skip.log", outputfiles=["*.txt"])
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert (job.outputdir / "out.txt").read_text() == "result\n"
        assert not (job.outputdir / "skip.log").exists()


async def test_file_splitter_shares_out_inputfiles(gangadir: Path, config: Config, tmp_path: Path) -> None:
    files = []
    for i in range(5):
        f = tmp_path / f"in{i}.txt"
        f.write_text(f"{i}\n")
        files.append(f)
    async with Engine(gangadir, config=config) as engine:
        job = sh("cat in*.txt", inputfiles=files, splitter=FileSplitter(files_per_subjob=2))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert len(job.subjobs) == 3
        assert await engine.peek(job.subjobs[1]) == "2\n3\n"


async def test_generic_splitter_sets_each_subjobs_attribute(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = sh('echo "$X"', splitter=GenericSplitter(
            attribute="application.env", values=[{"X": "a"}, {"X": "b"}]))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert [await engine.peek(s) for s in job.subjobs] == ["a\n", "b\n"]


async def test_events_report_every_transition(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        events = engine.events()
        job = Job(application=Executable(exe="/bin/true"))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        seen = []
        with anyio.move_on_after(1):
            async for event in events:
                seen.append(str(event.new))
                if event.new is Status.COMPLETED:
                    break
        events.close()
        assert seen == ["submitting", "submitted", "running", "completing", "completed"]


async def test_events_of_masters_only_leave_out_subjobs(gangadir: Path, config: Config) -> None:
    """A ``masters_only`` subscriber hears the master's transitions and none of its subjobs';
    another subscriber at the same time still hears the subjobs'."""
    async with Engine(gangadir, config=config) as engine:
        masters, everything = engine.events(masters_only=True), engine.events()
        job = Job(application=Executable(exe="/bin/true"), splitter=ArgSplitter(args=[["a"], ["b"]]))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        heard: dict[str, list[str]] = {"masters": [], "everything": []}
        for name, events in (("masters", masters), ("everything", everything)):
            with anyio.move_on_after(1):
                async for event in events:
                    heard[name].append(event.fqid)
                    if event.fqid == job.fqid and event.new is Status.COMPLETED:
                        break
            events.close()
        assert set(heard["masters"]) == {job.fqid}
        assert heard["masters"][-1] == job.fqid and len(heard["masters"]) >= 3
        assert {f"{job.id}.0", f"{job.id}.1"} <= set(heard["everything"])


async def test_wait_timeout_raises_and_kill_terminates_the_process_group(
    gangadir: Path, config: Config
) -> None:
    config["Local"]["kill_grace"] = 2.0
    async with Engine(gangadir, config=config) as engine:
        job = sh("sleep 60 & sleep 60; wait")
        await engine.submit(job)
        await until_running(engine, job)
        with pytest.raises(WaitTimeoutError, match="still running"):
            await engine.wait(job, timeout=0.2)
        pid = int(job.backend_id or 0)
        await engine.kill(job)
        await engine.wait(job, timeout=10)
        assert job.status is Status.KILLED
        # The group's other members got the same SIGTERM; each is gone a moment later.
        with anyio.fail_after(30):
            while _live_members(pid):  # noqa: ASYNC110 (/proc has nothing to wait on)
                await anyio.sleep(0.05)
        with pytest.raises(JobStateError, match="nothing to kill"):
            await engine.kill(job)


async def test_submitted_job_is_read_only_except_comment(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/true"))
        await engine.submit(job)
        with pytest.raises(JobStateError):
            job.name = "renamed"
        with pytest.raises(JobStateError, match="only new jobs are submitted"):
            await engine.submit(job)
        job.comment = "kept"
        await engine.wait(job, timeout=30)
    async with Engine(gangadir, config=config) as engine:
        assert (await engine.get(job.id)).comment == "kept"  # type: ignore[arg-type]


async def test_resubmit_runs_only_the_failed_subjobs(gangadir: Path, config: Config, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/sh"), splitter=ArgSplitter(
            args=[["-c", "true"], ["-c", f"test -e {flag}"], ["-c", "true"]]))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert job.status is Status.FAILED
        flag.touch()
        await engine.resubmit(job)
        await engine.wait(job, timeout=30)
        assert job.status is Status.COMPLETED
        assert [s.info.submit_counter for s in job.subjobs] == [1, 2, 1]
        with pytest.raises(JobStateError, match="nothing in failed to resubmit"):
            await engine.resubmit(job)


async def test_remove_deletes_the_job_and_its_workspace(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/true"))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        workspace = job.outputdir.parent
        assert workspace.exists()
        await engine.remove(job)
        assert job.status is Status.REMOVED
        assert not workspace.exists()
        assert await engine.jobs() == []


async def test_force_status_marks_a_running_job_failed(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = sh("sleep 60")
        await engine.submit(job)
        await until_running(engine, job)
        await engine.force_status(job, "failed")
        assert job.status is Status.FAILED
        with pytest.raises(JobStateError, match="'failed' or 'completed'"):
            await engine.force_status(job, "running")


async def test_peek_names_what_exists_when_the_file_does_not(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/true"))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert "stdout" in (await engine.peek(job, "")).split("\n")
        with pytest.raises(FileNotFoundError, match="lists what there is"):
            await engine.peek(job, "nothing.txt")


async def test_reopened_engine_lists_every_job_with_its_state(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        ok = Job(name="ok", application=Executable(exe="/bin/true"))
        bad = Job(name="bad", application=Executable(exe="/bin/false"))
        split = Job(application=Executable(exe="/bin/echo"), splitter=ArgSplitter(args=[["a"], ["b"]]))
        for job in (ok, bad, split):
            await engine.submit(job)
            await engine.wait(job, timeout=30)
    async with Engine(gangadir, config=config) as engine:
        jobs = await engine.jobs()
        assert [(j.name, j.status) for j in jobs] == [
            ("ok", Status.COMPLETED), ("bad", Status.FAILED), ("", Status.COMPLETED)]
        assert (await engine.get("2.1")).application.args == ["b"]
        assert [j.name for j in await engine.jobs(status="failed")] == ["bad"]


async def test_local_job_outliving_its_engine_is_adopted_with_its_exit_code(
    gangadir: Path, config: Config
) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = sh("sleep 1; exit 4")
        await engine.submit(job)
        await until_running(engine, job)
    async with Engine(gangadir, config=config) as engine:
        again = await engine.get(job.id)  # type: ignore[arg-type]
        await engine.wait(again, timeout=30)
        assert again.status is Status.FAILED
        assert again.exitcode == 4


class _Unreachable(LocalDriver):
    """The Local driver, as a backend whose status query fails while ``down`` is set (a batch
    system that does not answer when an engine opens)."""

    down = threading.Event()

    async def sweep(self) -> int:
        if self.down.is_set():
            raise BackendError("the backend does not answer")
        return await super().sweep()


@dataclasses.dataclass(kw_only=True, repr=False)
class UnreachableLocal(Local):
    @classmethod
    def make_driver(cls, context: DriverContext) -> LocalDriver:
        return _Unreachable(context)


async def test_an_engine_opens_while_a_backend_cannot_answer_and_takes_its_jobs_over_later(
    gangadir: Path, config: Config
) -> None:
    _plugins.register("backend", UnreachableLocal)
    config["Monitoring"]["poll_interval"] = 0.2
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/sh", args=["-c", "sleep 1; exit 3"]),
                  backend=UnreachableLocal())
        await engine.submit(job)
        await until_running(engine, job)
    _Unreachable.down.set()
    try:
        async with Engine(gangadir, config=config) as engine:
            again = await engine.get(job.id)  # type: ignore[arg-type]
            await anyio.sleep(1.5)  # the process ends meanwhile; nobody can tell yet
            assert again.status is Status.RUNNING
            _Unreachable.down.clear()
            await engine.wait(again, timeout=10)
            assert again.status is Status.FAILED
            assert again.exitcode == 3
    finally:
        _Unreachable.down.clear()


@dataclasses.dataclass(kw_only=True, repr=False)
class UninstalledLocal(Local):
    """Local under a name whose plugin the test takes away."""


async def test_an_active_job_whose_backend_is_no_longer_installed_does_not_stop_the_engine(
    gangadir: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    _plugins.register("backend", UninstalledLocal)
    async with Engine(gangadir, config=config) as engine:
        gone = sh("sleep 1", backend=UninstalledLocal())
        await engine.submit(gone)
        await until_running(engine, gone)
    monkeypatch.delitem(_plugins._loaded, ("backend", "UninstalledLocal"))
    with anyio.fail_after(30):
        async with Engine(gangadir, config=config) as engine:
            with pytest.raises(JobSpecError, match="unknown backend 'UninstalledLocal'"):
                await engine.get(gone.id)  # type: ignore[arg-type]
            job = Job()
            await engine.submit(job)
            await engine.wait(job, timeout=30)
            assert job.status is Status.COMPLETED


def _live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (PID 1 here reaps orphans late)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _kill_runner_of(job: Job) -> int:
    record = read_status(job.fqid, job.outputdir)
    assert record is not None
    os.kill(record["runner_pid"], signal.SIGKILL)
    return int(record["pid"])


async def test_process_whose_runner_died_is_failed_with_a_reason(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = sh("sleep 60")
        await engine.submit(job)
        await until_running(engine, job)
    pid = _kill_runner_of(job)
    try:
        async with Engine(gangadir, config=config) as engine:
            again = await engine.get(job.id)  # type: ignore[arg-type]
            await engine.wait(again, timeout=10)
            assert again.status is Status.FAILED
            assert f"still runs as pid {pid}" in (again.reason or "")
    finally:
        os.killpg(pid, signal.SIGKILL)
    async with Engine(gangadir, config=config) as engine:
        again = await engine.get(job.id)  # type: ignore[arg-type]
        assert again.status is Status.FAILED


async def test_engine_api_needs_a_running_engine(gangadir: Path, config: Config) -> None:
    engine = Engine(gangadir, config=config)
    with pytest.raises(EngineClosedError, match="async with Engine"):
        await engine.submit(Job())


async def test_queued_subjobs_still_run_after_their_engine_closes(
    gangadir: Path, config: Config, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/sh"), backend=Local(max_concurrent=2),
                  splitter=ArgSplitter(args=[["-c", f"echo {i} >> {ledger}; sleep 0.3"]
                                             for i in range(6)]))
        await engine.submit(job)
    async with Engine(gangadir, config=config) as engine:
        again = await engine.get(job.id)  # type: ignore[arg-type]
        await engine.wait(again, timeout=30)
        assert again.status is Status.COMPLETED
    assert sorted(int(x) for x in ledger.read_text().split()) == list(range(6))


async def test_a_subjob_queued_by_an_earlier_engine_can_be_killed(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/sleep"), backend=Local(max_concurrent=1),
                  splitter=ArgSplitter(args=[["2"], ["30"]]))
        await engine.submit(job)
    async with Engine(gangadir, config=config) as engine:
        again = await engine.get(job.id)  # type: ignore[arg-type]
        await engine.kill(again.subjobs[1])
        await engine.wait(again, timeout=30)
        assert again.subjobs[0].status is Status.COMPLETED
        assert again.subjobs[1].status is Status.KILLED
        assert not (again.subjobs[1].outputdir / "stdout").exists()


async def test_a_splitter_failing_midway_is_raised_from_submit_and_leaves_the_job_new(
    gangadir: Path, config: Config
) -> None:
    from ganga_async import Splitter

    @dataclasses.dataclass(kw_only=True, repr=False)
    class BrokenSplitter(Splitter):
        def split(self, job: Job) -> Iterator[dict[str, object]]:
            yield {"application.args": ["1"]}
            raise RuntimeError("the catalogue went away")

    _plugins.register("splitter", BrokenSplitter)
    async with Engine(gangadir, config=config) as engine:
        job = Job(splitter=BrokenSplitter())
        with pytest.raises(JobSpecError, match="splitting failed: RuntimeError"):
            await engine.submit(job)
        assert job.status is Status.NEW
        assert len(job.subjobs) == 0
    async with Engine(gangadir, config=config) as engine:
        again = await engine.get(job.id)  # type: ignore[arg-type]
        assert again.status is Status.NEW


class _GatedSplitter(ArgSplitter):
    """An ArgSplitter that holds the split stage until the test opens its gate."""

    def split(self, job: Job) -> Iterator[dict[str, Any]]:
        self._entered.set()
        self._gate.wait(10)
        yield from super().split(job)


async def test_a_submit_cancelled_before_acceptance_leaves_the_engine_running_and_the_job_goes_on(
    gangadir: Path, config: Config
) -> None:
    splitter = _GatedSplitter(args=[["a"], ["b"]])
    splitter._entered, splitter._gate = threading.Event(), threading.Event()
    job = Job(application=Executable(exe="/bin/echo"), splitter=splitter)
    async with Engine(gangadir, config=config) as engine:
        async with anyio.create_task_group() as tg:
            tg.start_soon(engine.submit, job)
            await anyio.to_thread.run_sync(splitter._entered.wait, 10)
            tg.cancel_scope.cancel()
        splitter._gate.set()
        await engine.wait(job, timeout=30)
        assert job.status is Status.COMPLETED
        assert (await engine.submit(sh("true"))).status is not Status.NEW


@pytest.mark.anyio
async def test_an_input_directory_holding_the_gangadir_is_refused_by_name(
        tmp_path: Path, config: Config) -> None:
    """Copying it into the job's working directory would copy the gangadir into itself (and once
    hung the job for ever); the job stays new."""
    gangadir = tmp_path / "analysis" / "gangadir"
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/ls"), inputfiles=[tmp_path / "analysis"])
        with pytest.raises(JobSpecError, match=r"inputfiles\[0\]: .* holds the gangadir"):
            await engine.submit(job)
        assert job.status is Status.NEW


@pytest.mark.anyio
async def test_peek_of_a_file_over_its_limit_reads_only_its_tail_and_says_so(
        gangadir: Path, config: Config) -> None:
    """A stdout of gigabytes is never read whole (the daemon once held 918 MB for one peek)."""
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/sh", args=["-c", "seq 1 100000"]))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        whole = await engine.peek(job)
        assert whole.endswith("99999\n100000\n") and whole.startswith("1\n2\n")
        tail = await engine.peek(job, limit=13)
        first, rest = tail.split("\n", 1)
        assert rest == "99999\n100000\n"
        assert first.startswith(f"[the first {len(whole) - 13} of {len(whole)} bytes are not shown")
        assert str(job.outputdir / "stdout") in first
