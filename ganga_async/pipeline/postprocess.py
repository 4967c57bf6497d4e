"""Postprocessing: checkers on each (sub)job as it completes, mergers and checkers on a
master once its subjobs are final.

The state machine decides when (a completed (sub)job waits in ``completing`` for the finalise
stage; a master with postprocessors waits in ``completing`` once its subjobs are final, see
:func:`~ganga_async.model.machine.postprocessed`); this module does the work, in worker
threads (merging reads and writes whole files), and hands the outcome back to the machine.
Whatever a postprocessor raises becomes the job's reason: the engine goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from .._exceptions import GangaAsyncError, JobStateError
from ..backends.base import BackendStatus
from ..config import Config
from ..events import PostprocessEvent
from ..model import machine
from ..model.job import Job
from ..model.record import JobRecord
from ..postprocessors.base import PostProcessor, PostprocessorResult
from ..states import Status, derive_master_status
from .context import Context, Ended, Live, engine_log
from .results import write_results

if TYPE_CHECKING:
    from ..postprocessors.checkers import Checker
    from ..postprocessors.mergers import Merger

__all__ = ["Postprocessing", "holds_master", "check_ended"]

log = engine_log

_AT_ONCE = 4
"""Masters postprocessed at once (each in a worker thread)."""


def _kinds() -> tuple[type[Merger], type[Checker]]:
    """The mergers' and checkers' base classes, imported when a job first has postprocessors
    (most have none: a fresh process's first job need not import them)."""
    from ..postprocessors.checkers import Checker
    from ..postprocessors.mergers import Merger

    return Merger, Checker


def holds_master(processors: Sequence[PostProcessor]) -> bool:
    """Whether a master must wait in ``completing`` for these postprocessors: it has a
    merger, or a checker of the master."""
    if not processors:
        return False
    merger, checker = _kinds()
    return any(isinstance(p, merger) or (isinstance(p, checker) and p.checkMaster)
               for p in processors)


def _checkers(job: Job) -> list[Checker]:
    checker = _kinds()[1]
    return [p for p in job.postprocessors if isinstance(p, checker)]


def _named(processor: PostProcessor, exc: Exception) -> str:
    """The reason an error of ``processor`` gives a job: its message, naming it."""
    text = str(exc) if isinstance(exc, GangaAsyncError) else repr(exc)
    return text if text.startswith(processor.label) else f"{processor.label}: {text}"


def _check(job: Job, checkers: list[Checker], results: list[PostprocessorResult]) -> str | None:
    """The reason the first failing checker gives ``job``, or None (blocking); each checker
    that ran adds its result to ``results``."""
    for checker in checkers:
        if not checker.applies(job):
            continue
        try:
            reason = checker.check(job)
        except Exception as exc:  # a user's module may raise anything: it fails the job
            reason = _named(checker, exc)
        results.append(PostprocessorResult(checker.label, reason is None, reason or "",
                                           time.time()))
        if reason is not None:
            return reason
    return None


def publish(ctx: Context, live: Live, index: int | None, results: list[PostprocessorResult]) -> None:
    """Keep a (sub)job's results with its record and publish them as events."""
    if not results:
        return
    live.record.results[index] = results
    if ctx.hub.subscribers:
        for result in results:
            ctx.hub.publish(PostprocessEvent(live.record.key(index), live.id, index,
                                             result.postprocessor, result.ok, result.detail,
                                             result.time))


async def check_ended(ctx: Context, ended: list[Ended]) -> tuple[list[Ended], set[int]]:
    """``ended`` with each completed (sub)job that a checker fails turned into a failure with
    the checker's reason, and the positions of those; the checks run in a worker thread, and
    their results are written to the job's directory and published."""
    todo = [(n, live, index) for n, (live, index, end) in enumerate(ended)
            if end.status is Status.COMPLETED and live.job.postprocessors and _checkers(live.job)]
    if not todo:
        return ended, set()
    views = [(n, live, index, live.job if index is None else live.job.subjobs[index],
              _checkers(live.job)) for n, live, index in todo]

    def run() -> list[tuple[int, str | None, list[PostprocessorResult]]]:
        outcomes = []
        by_job: dict[int, tuple[Live, dict[int | None, list[PostprocessorResult]]]] = {}
        for n, live, index, view, checkers in views:
            results: list[PostprocessorResult] = []
            outcomes.append((n, _check(view, checkers, results), results))
            by_job.setdefault(live.id, (live, {}))[1][index] = results
        for live, results_of in by_job.values():
            write_results(live.record.jobdir, results_of)
        return outcomes

    results = list(ended)
    failed = set()
    for n, reason, found in await anyio.to_thread.run_sync(run):
        live, index, end = ended[n]
        publish(ctx, live, index, found)
        if reason is not None:
            failed.add(n)
            log.info("check failed", job_id=live.id, subjob=index, reason=reason)
            results[n] = (live, index, BackendStatus(Status.FAILED, exitcode=end.exitcode,
                                                     reason=reason, started=end.started,
                                                     ended=end.ended))
    return results, failed


def run_master(job: Job, target: Status, config: Config, redo: bool,
               results: list[PostprocessorResult]) -> str | None:
    """Merge and check a master whose subjobs ended in (derived) ``target``: the reason it
    fails, or None (blocking); each postprocessor that ran adds its result to ``results``.
    Mergers run on a completed master, or with ``ignorefailed`` on a failed or killed one; a
    redo after a crash may replace what the cut-short run wrote."""
    merger, checker = _kinds()
    for processor in job.postprocessors:
        try:
            if isinstance(processor, merger):
                if target is Status.COMPLETED or processor.ignorefailed:
                    written = processor.merge(job, overwrite=processor.overwrite or redo,
                                              config=config)
                    results.append(PostprocessorResult(
                        processor.label, True, ", ".join(str(path) for path in written),
                        time.time()))
            elif isinstance(processor, checker) and target is Status.COMPLETED:
                reason = _check(job, [processor], results)
                if reason is not None:
                    return reason
        except Exception as exc:
            reason = _named(processor, exc)
            results.append(PostprocessorResult(processor.label, False, reason, time.time()))
            return reason
    return None


async def merge_by_hand(job: Job, outputdir: str | os.PathLike[str] | None,
                        config: Config) -> list[Path]:
    """Run ``job``'s mergers now (``job.merge()``), in a worker thread."""
    merger = _kinds()[0]
    mergers = [p for p in job.postprocessors if isinstance(p, merger)]
    if not mergers:
        raise JobStateError(f"job {job.fqid} has no merger among its postprocessors; add one, "
                            "or call e.g. TextMerger(files=['stdout']).merge(job)")

    def run() -> list[Path]:
        written: list[Path] = []
        for merger in mergers:
            overwrite = True if outputdir is None else None
            written += merger.merge(job, outputdir, overwrite=overwrite, config=config)
        return written

    return await anyio.to_thread.run_sync(run)


class Postprocessing:
    """Runs the postprocessors of the masters the state machine holds in ``completing``, a
    few at a time, and gives the machine their outcome."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.limiter = anyio.CapacityLimiter(_AT_ONCE)

    def start(self, records: list[JobRecord], redo: bool = False) -> None:
        """Postprocess these masters in the background (the machine asked for it)."""
        tg = self.ctx.tg
        jobs = self.ctx.registry.jobs
        for record in records:
            live = jobs.get(record.id) if record.id is not None else None
            if tg is not None and live is not None:
                tg.start_soon(self._master, live, redo)

    def _run(self, live: Live, target: Status, redo: bool,
             results: list[PostprocessorResult]) -> str | None:
        """Run the master's postprocessors and write their results (blocking)."""
        try:
            return run_master(live.job, target, self.ctx.config, redo, results)
        finally:
            write_results(live.record.jobdir, {None: results})

    async def _master(self, live: Live, redo: bool) -> None:
        record = live.record
        assert record.table is not None
        target = derive_master_status(record.table.counts)
        async with self.limiter:
            log.info("postprocessing", job_id=live.id)
            results: list[PostprocessorResult] = []
            try:
                reason = await anyio.to_thread.run_sync(self._run, live, target, redo, results)
            except Exception as exc:  # noqa: BLE001 (nothing a postprocessor does may stop the engine)
                reason = f"postprocessing failed: {exc!r}"
        publish(self.ctx, live, None, results)
        changes = machine.Changes()
        if machine.postprocessed(changes, record, reason, time.time()):
            log.info("postprocessed", job_id=live.id, status=str(record.status), reason=reason)
        self.ctx.commit(changes)
