"""The retry policy on real Local jobs: failures of the kinds it names are submitted again
by themselves, every attempt is kept, a pending backoff survives a restart, and what is not
worth retrying is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganga_async import (
    ArgSplitter,
    Config,
    Engine,
    Executable,
    FileChecker,
    Job,
    Local,
    Retry,
    Status,
)

pytestmark = pytest.mark.anyio

FIRST_RUN_FAILS = 'n=$(cat "$2/$1" 2>/dev/null || echo 0); echo $((n + 1)) > "$2/$1"; '
"""Counts the runs of subjob $1 in directory $2 (``runs``), for the script that follows."""


def job(script: str, indices: range, marks: Path, **kwargs: object) -> Job:
    marks.mkdir(exist_ok=True)
    return Job(application=Executable(exe="/bin/sh"), backend=Local(max_concurrent=8),
               splitter=ArgSplitter(args=[["-c", FIRST_RUN_FAILS + script, "sh", str(i), str(marks)]
                                          for i in indices]), **kwargs)  # type: ignore[arg-type]


def runs(marks: Path, index: int) -> int:
    return int((marks / str(index)).read_text())


async def test_a_checker_fails_some_of_100_subjobs_and_the_retry_takes_them(
        gangadir: Path, config: Config, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    bad = [i for i in range(100) if i % 7 == 0]
    j = job('if [ $n = 0 ] && [ $(($1 % 7)) = 0 ]; then echo "ERROR first run"; else echo ok; fi',
            range(100), marks, retry=Retry(max_attempts=2, backoff="0s"),
            postprocessors=[FileChecker(files=["stdout"], searchStrings=["ERROR"])])
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(j)
        await engine.wait(j, timeout=120)
        assert j.status is Status.COMPLETED, j.subjobs.counts()
        assert [i for i in range(100) if runs(marks, i) == 2] == bad
        attempts = j.subjobs[7].attempts
        assert [(a.n, a.status) for a in attempts] == [(1, "failed"), (2, "completed")]
        assert attempts[0].reason == "FileChecker: 'ERROR' found in stdout"
        assert attempts[0].t_final <= attempts[1].t_submitted
        assert [a.n for a in j.subjobs[8].attempts] == [1]
        assert (j.subjobs[7].outputdir / "stdout").read_text() == "ok\n"
    async with Engine(gangadir, config=config) as engine:
        again = await engine.get(j.id)  # type: ignore[arg-type]
        assert [(a.n, a.status, a.reason) for a in again.subjobs[14].attempts] == [
            (1, "failed", "FileChecker: 'ERROR' found in stdout"), (2, "completed", None)]


async def test_do_auto_resubmit_keeps_gangas_meaning(gangadir: Path, config: Config,
                                                    tmp_path: Path) -> None:
    """Plain failures are retried up to [PollThread] MaxNumResubmits times; a command that
    cannot be found (exit code 127) is not worth retrying."""
    config["PollThread"]["MaxNumResubmits"] = 2
    config["PollThread"]["MaxFracForResubmit"] = 0.9
    marks = tmp_path / "marks"
    j = job('case $1 in 0) [ $n -ge 1 ] || exit 3;; 1) exit 5;; 2) exit 127;; esac', range(4),
            marks, do_auto_resubmit=True)
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(j)
        await engine.wait(j, timeout=60)
        assert [s.status for s in j.subjobs] == ["completed", "failed", "failed", "completed"]
        assert [runs(marks, i) for i in range(4)] == [2, 3, 1, 1]
        assert [a.exitcode for a in j.subjobs[1].attempts] == [5, 5, 5]
        assert j.subjobs[1].info.submit_counter == 3


async def test_a_retry_waiting_out_its_backoff_survives_a_restart_and_runs_once(
        gangadir: Path, config: Config, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    j = job('[ $n -ge 1 ] || exit 1', range(2), marks, retry=Retry(max_attempts=3, backoff="2s"))
    async with Engine(gangadir, config=config) as engine:
        events = engine.events()
        await engine.submit(j)
        async with events:
            async for event in events:
                if event.new is Status.SUBMITTING and event.index is not None and len(
                        [s for s in j.subjobs if s.status is Status.SUBMITTING]) == 2:
                    assert event.reason is not None and "attempt 2 of 3 in" in event.reason
                    break
        job_id = j.id
    assert [runs(marks, i) for i in range(2)] == [1, 1]
    async with Engine(gangadir, config=config) as engine:
        again = await engine.get(job_id)  # type: ignore[arg-type]
        assert again.subjobs.counts() == {"submitting": 2}
        await engine.wait(again, timeout=60)
        assert again.status is Status.COMPLETED
        assert [runs(marks, i) for i in range(2)] == [2, 2]
        assert [[a.n for a in s.attempts] for s in again.subjobs] == [[1, 2], [1, 2]]


async def test_a_job_without_subjobs_is_retried_too(gangadir: Path, config: Config,
                                                    tmp_path: Path) -> None:
    mark = tmp_path / "ran"
    j = Job(application=Executable(exe="/bin/sh", args=[
        "-c", f'[ -e {mark} ] || {{ touch {mark}; kill -KILL $$; }}; echo second']),
        retry=Retry(backoff="0s", on=["killed-by-backend"]))
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(j)
        await engine.wait(j, timeout=60)
        assert j.status is Status.COMPLETED
        assert [(a.n, a.status, a.reason) for a in j.attempts] == [
            (1, "failed", "killed by signal SIGKILL"), (2, "completed", None)]
        assert (j.outputdir / "stdout").read_text() == "second\n"
