"""Postprocessors on real Local jobs: mergers on the master once its subjobs are final,
checkers on each subjob as it completes, and the restart of a cut-short merge."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ganga_async import (
    ArgSplitter,
    Config,
    CustomChecker,
    Engine,
    Executable,
    FileChecker,
    Job,
    JobSpecError,
    Local,
    Notifier,
    Status,
    TextMerger,
)
from ganga_async.model import machine

pytestmark = pytest.mark.anyio


def sh(script: str, n: int, **kwargs: object) -> Job:
    """A job of ``n`` subjobs each running ``script`` with its index as $1."""
    return Job(application=Executable(exe="/bin/sh"), backend=Local(max_concurrent=4),
               splitter=ArgSplitter(args=[["-c", script, "sh", str(i)] for i in range(n)]),
               **kwargs)  # type: ignore[arg-type]


async def test_merge_runs_once_on_the_master_after_every_subjob(gangadir: Path, config: Config) -> None:
    job = sh('echo "line $1"; echo "log $1" > run.log', 6, outputfiles=["run.log"],
             postprocessors=[FileChecker(files=["stdout"], searchStrings=["ERROR"]),
                             TextMerger(files=["stdout"]), TextMerger(files=["*.log"], compress=True)])
    assert [type(p).__name__ for p in job.postprocessors] == ["TextMerger", "TextMerger", "FileChecker"]
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.COMPLETED, job.reason
        merged = (job.outputdir / "stdout").read_text()
        assert [line for line in merged.splitlines() if not line.startswith("#")] == [
            f"line {i}" for i in range(6)]
        assert merged.startswith("# Ganga TextMergeTool - ")
        assert merged.endswith("# Ganga Merge Ended Successfully #\n")
        assert f"# Start of file {job.subjobs[0].outputdir / 'stdout'} #" in merged
        with gzip.open(job.outputdir / "run.log.gz", "rt") as file:
            assert "log 5" in file.read()
        summary = (job.outputdir / "stdout.merge_summary").read_text().splitlines()
        assert summary[1:-1] == [str(job.subjobs[i].outputdir / "stdout") for i in range(6)]
        assert not [p for p in job.outputdir.iterdir() if p.name.startswith(".tmp-")]


async def test_checker_fails_the_subjobs_whose_output_matches(gangadir: Path, config: Config) -> None:
    job = sh('if [ $(($1 % 3)) = 0 ]; then echo "ERROR in $1"; else echo fine; fi', 9,
             postprocessors=[FileChecker(files=["stdout"], searchStrings=["ERR(OR)?"])])
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        assert job.subjobs.indices("failed") == [0, 3, 6]
        assert job.subjobs[3].reason == "FileChecker: 'ERR(OR)?' found in stdout"
        assert job.subjobs[3].exitcode == 0
        assert job.status is Status.FAILED
    async with Engine(gangadir, config=config) as engine:  # the failures were stored
        again = await engine.get(job.id)  # type: ignore[arg-type]
        assert again.subjobs.indices("failed") == [0, 3, 6]
        assert again.subjobs[6].reason == "FileChecker: 'ERR(OR)?' found in stdout"


async def test_failed_merge_fails_the_master_with_the_reason(gangadir: Path, config: Config) -> None:
    job = sh("echo hi", 3, postprocessors=[TextMerger(files=["missing.txt"])])
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.FAILED
        assert job.reason is not None and "postprocessors[TextMerger]" in job.reason
        assert "no file matches 'missing.txt' in job 0.0" in job.reason
        assert job.subjobs.counts() == {"completed": 3}


async def test_a_checker_that_raises_fails_the_job_visibly(gangadir: Path, config: Config,
                                                           tmp_path: Path) -> None:
    module = tmp_path / "check.py"
    module.write_text("def check(job):\n    raise RuntimeError('cannot read ' + job.fqid)\n")
    job = Job(application=Executable(exe="/bin/echo"), postprocessors=[CustomChecker(module=str(module))])
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.FAILED
        assert job.reason == ("postprocessors[CustomChecker].module: check() raised "
                              "RuntimeError('cannot read 0')")


async def test_a_master_without_outputs_is_not_failed_by_its_checker(gangadir: Path, config: Config) -> None:
    """ganga-devs/ganga#2448: the master has no stdout of its own; each subjob was checked."""
    job = sh("echo fine", 2, postprocessors=[FileChecker(files=["stdout"], searchStrings=["ERROR"])])
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.COMPLETED, job.reason


async def test_misconfigured_postprocessors_are_refused_at_submit(gangadir: Path, config: Config) -> None:
    async with Engine(gangadir, config=config) as engine:
        for processor, field in ((TextMerger(files=["../x"]), "postprocessors[TextMerger].files[0]"),
                                 (FileChecker(files=["stdout"], searchStrings=["("]),
                                  "postprocessors[FileChecker].searchStrings[0]"),
                                 (Notifier(address="nobody"), "postprocessors[Notifier].address")):
            job = Job(postprocessors=[processor])
            with pytest.raises(JobSpecError) as caught:
                await engine.submit(job)
            assert caught.value.field == field
            assert job.status is Status.NEW


async def test_merge_cut_short_by_the_engine_end_is_redone(gangadir: Path, config: Config) -> None:
    """A master left in completing with every subjob final is postprocessed when an engine opens."""
    job = sh("echo out $1", 3, postprocessors=[TextMerger(files=["stdout"])])
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        job_id = job.id
        assert (job.outputdir / "stdout").exists()
        changes = machine.Changes()  # as an engine that died in the middle of the merge left it
        machine.set_status(changes, job._record, None, Status.COMPLETING, 0.0, force=True)  # noqa: SLF001
        engine._ctx.commit(changes)  # noqa: SLF001
        (job.outputdir / "stdout").write_text("half")
    async with Engine(gangadir, config=config) as engine:
        again = await engine.get(job_id)  # type: ignore[arg-type]
        await engine.wait(again, timeout=30)
        assert again.status is Status.COMPLETED, again.reason
        assert "out 2" in (again.outputdir / "stdout").read_text()


async def test_merge_by_hand(gangadir: Path, config: Config, tmp_path: Path) -> None:
    job = sh("echo by hand $1", 2, postprocessors=[])
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        written = TextMerger(files=["stdout"]).merge(job, tmp_path / "merged")
        assert written == [tmp_path / "merged" / "stdout"]
        assert "by hand 1" in written[0].read_text()
        written = TextMerger(files=["stdout"]).merge(list(job.subjobs), tmp_path / "list")
        assert "by hand 0" in written[0].read_text()
