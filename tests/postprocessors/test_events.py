"""The ``postprocessed`` and ``retrying`` events and the postprocessors' results kept with the
job, on real Local jobs: through the engine, after a restart, in ``show`` and in the daemon's
event stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from _service_helpers import cli

from ganga_async import (
    ArgSplitter,
    Config,
    Engine,
    Executable,
    FileChecker,
    Job,
    Local,
    PostprocessEvent,
    Retry,
    RetryEvent,
    Status,
    TextMerger,
)
from ganga_async.pipeline.results import RESULTS_FILE
from ganga_async.service import AsyncGangaService
from ganga_async.service._paths import ServicePaths

pytestmark = pytest.mark.anyio

CHECKER = "postprocessors[FileChecker]"
MERGER = "postprocessors[TextMerger]"
SECOND_RUN_PASSES = 'if [ "$1" = 1 ] && [ ! -e "$2" ]; then touch "$2"; exit 3; fi; echo "line $1"'
"""Subjob 1 fails its first run (exit code 3), making marker file $2; every other run passes."""


def checked_and_merged(n: int) -> Job:
    """Subjob 1 of ``n`` writes ERROR: the checker fails it; the merger merges what is left."""
    return Job(application=Executable(exe="/bin/sh"), backend=Local(max_concurrent=4),
               splitter=ArgSplitter(args=[["-c", 'echo "line $1"; [ "$1" != 1 ] || echo ERROR',
                                           "sh", str(i)] for i in range(n)]),
               postprocessors=[FileChecker(files=["stdout"], searchStrings=["ERROR"]),
                               TextMerger(files=["stdout"], ignorefailed=True)])


async def test_a_merge_and_a_failing_checker_are_published_kept_and_shown(
        gangadir: Path, config: Config) -> None:
    job = checked_and_merged(3)
    seen: list[PostprocessEvent] = []
    async with Engine(gangadir, config=config) as engine:
        async with engine.postprocess_events() as events:
            await engine.submit(job)
            await engine.wait(job, timeout=60)
            with anyio.fail_after(10):
                async for event in events:
                    seen.append(event)
                    if event.index is None:
                        break
        assert job.status is Status.FAILED
        merged = str(job.outputdir / "stdout")
        by_fqid = {(e.fqid, e.postprocessor): (e.ok, e.detail) for e in seen}
        assert by_fqid == {
            ("0.0", CHECKER): (True, ""),
            ("0.1", CHECKER): (False, "FileChecker: 'ERROR' found in stdout"),
            ("0.2", CHECKER): (True, ""),
            ("0", MERGER): (True, merged),
        }
        assert [(r.postprocessor, r.ok, r.detail) for r in job.subjobs[1].postprocessor_results] \
            == [(CHECKER, False, "FileChecker: 'ERROR' found in stdout")]
        assert [(r.postprocessor, r.ok, r.detail) for r in job.postprocessor_results] == [
            (MERGER, True, merged)]
    async with Engine(gangadir, config=config) as engine:  # kept across a restart
        again = await engine.get(0)
        assert again.subjobs[1].postprocessor_results == job.subjobs[1].postprocessor_results
        assert again.postprocessor_results == job.postprocessor_results
        assert again.subjobs[0].postprocessor_results[0].ok
    shown = cli("show", "0")
    assert shown.returncode == 0, shown.stderr
    assert "  postprocessed\n" in shown.stdout
    assert f"    {MERGER:<30} ok     {merged}" in shown.stdout
    sub = json.loads(cli("--json", "show", "0.1").stdout)
    assert [(r["postprocessor"], r["ok"], r["detail"]) for r in sub["postprocessor_results"]] == [
        (CHECKER, False, "FileChecker: 'ERROR' found in stdout")]


def cut_short(gangadir: Path) -> None:
    """Leave a line half-written at the end of the results file, as a crash would."""
    (results,) = gangadir.rglob(RESULTS_FILE)
    with results.open("a") as file:
        file.write('{"index": 0, "results": [{"postprocessor": "postpro')


async def test_a_line_cut_short_by_a_crash_is_skipped(gangadir: Path, config: Config) -> None:
    job = checked_and_merged(2)
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(job)
        await engine.wait(job, timeout=60)
    cut_short(gangadir)
    async with Engine(gangadir, config=config) as engine:
        again = await engine.get(0)
        assert [r.ok for r in again.subjobs[0].postprocessor_results] == [True]
        assert [r.ok for r in again.subjobs[1].postprocessor_results] == [False]


PUBLISHED_AFTER = 0.02
"""A retry event's ``delay`` is the wait left when it is published (its ``time`` plus ``delay``
is when the retry is due), a moment after the policy chose the wait: it may be that much under
the policy's shortest (CI saw 0.04995 s for a shortest of 0.05 s)."""

async def test_a_retried_subjob_is_published_with_its_attempt_and_delay(
        gangadir: Path, config: Config, tmp_path: Path) -> None:
    job = Job(application=Executable(exe="/bin/sh"), backend=Local(max_concurrent=4),
              splitter=ArgSplitter(args=[["-c", SECOND_RUN_PASSES, "sh", str(i),
                                          str(tmp_path / "ran")] for i in range(2)]),
              retry=Retry(max_attempts=2, backoff="0.4s", on=["failed"]))
    async with Engine(gangadir, config=config) as engine:
        async with engine.retry_events() as events:
            await engine.submit(job)
            await engine.wait(job, timeout=60)
            with anyio.fail_after(30):
                event: RetryEvent = await events.__anext__()
    assert job.status is Status.COMPLETED
    assert (event.fqid, event.index, event.attempt) == ("0.1", 1, 2)
    assert 0.2 - PUBLISHED_AFTER <= event.delay <= 0.4
    assert event.reason is not None and "attempt 2 of 2" in event.reason


def gpi_job(tmp_path: Path) -> dict[str, Any]:
    """A job description for the daemon: subjob 1 fails once and is retried, subjob 2 fails
    the checker (the master does not give up: it may come first); stdout is merged."""
    script = SECOND_RUN_PASSES + '; [ "$1" != 2 ] || echo ERROR'
    return {"application": {"type": "Executable", "exe": "/bin/sh"},
            "backend": {"type": "Local"},
            "splitter": {"type": "ArgSplitter",
                         "args": [["-c", script, "sh", str(i), str(tmp_path / "ran")]
                                  for i in range(3)]},
            "postprocessors": [{"type": "FileChecker", "files": ["stdout"],
                                "searchStrings": ["ERROR"]},
                               {"type": "TextMerger", "files": ["stdout"], "ignorefailed": True}],
            "retry": {"max_attempts": 2, "backoff": "0.1s", "on": ["failed"], "give_up_fraction": 1.0}}


async def test_the_daemons_event_stream_carries_both(daemon: ServicePaths, tmp_path: Path) -> None:
    async with AsyncGangaService(daemon.gangadir) as gs:
        async with gs.events(types=["postprocessed", "retrying"]) as events:
            job = await gs.submit(gpi_job(tmp_path))
            seen: list[dict[str, Any]] = []
            with anyio.fail_after(60):
                async for event in events:
                    seen.append(event)
                    if event["type"] == "postprocessed" and event["index"] is None:
                        break
    (retry,) = [e for e in seen if e["type"] == "retrying"]
    assert (retry["fqid"], retry["attempt"]) == (f"{job['id']}.1", 2)
    assert 0.05 - PUBLISHED_AFTER <= retry["delay"] <= 0.1
    outcomes = {(e["fqid"], e["postprocessor"], e["ok"]) for e in seen if e["type"] == "postprocessed"}
    assert {(f"{job['id']}.2", CHECKER, False), (f"{job['id']}", MERGER, True)} <= outcomes
    assert (f"{job['id']}.1", CHECKER, True) in outcomes
