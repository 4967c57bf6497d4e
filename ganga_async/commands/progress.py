"""The progress bar of ``submit --wait``, ``resubmit --wait``, ``wait`` and ``demo``: how many
of a job's subjobs are final and how many failed, counted from the ``events`` stream's status
dicts (or from the job's counts once the daemon dropped the stream). rich is imported only to
draw it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import SlowClientError
from ..states import FINAL, Status

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["JobProgress", "progress_bar"]


class JobProgress:
    """How far a job is, drawn as a progress bar: how many of its subjobs (or the job itself,
    unsplit) are final and how many failed, counted from its status transitions (the
    ``"status"`` dicts of an ``events`` stream).
    """

    def __init__(self, fqid: str, subjobs: int, counts: Mapping[str, int]) -> None:
        """``subjobs`` is the job's number of subjobs (0 if it is not split) and ``counts``
        its subjobs per status when its transitions began to be followed."""
        self.fqid = fqid
        self.split = subjobs > 0
        self.total = subjobs or 1
        self.done = sum(n for status, n in counts.items() if Status(status) in FINAL)
        self.failed = counts.get("failed", 0)

    def count(self, event: Mapping[str, Any]) -> bool:
        """Count ``event`` if it is a transition of one of the job's subjobs (of the job
        itself if it is not split); whether it was."""
        fqid = str(event["fqid"])
        owner = fqid.rpartition(".")[0] if self.split else fqid
        if owner != self.fqid:
            return False
        old, new = Status(event["old"]), Status(event["new"])
        self.done += (new in FINAL) - (old in FINAL)
        self.failed += (new is Status.FAILED) - (old is Status.FAILED)
        return True

    def take(self, summary: Mapping[str, Any]) -> None:
        """Take the counts of the job's :func:`~ganga_async._describe.summarise` now."""
        if self.split:
            counts = summary.get("subjob_counts", {})
            self.done = sum(n for status, n in counts.items() if Status(status) in FINAL)
            self.failed = counts.get("failed", 0)
        else:
            self.done = int(Status(summary["status"]) in FINAL)
            self.failed = int(summary["status"] == str(Status.FAILED))

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Take the exact counts from the final job's summary (events may have been dropped
        on the way)."""
        self.take(summary)
        self.done = self.total

    async def follow(self, progress: Progress | None,
                     events: AsyncIterable[Mapping[str, Any]] | None,
                     wait: Callable[[], Awaitable[dict[str, Any]]],
                     look: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """Return what ``wait()`` returns (the final job's summary), drawing the ``progress``
        bar meanwhile from ``events``, or from the job's summary ``look()`` returns every half
        second once the daemon dropped the stream (a burst of transitions larger than its
        ``event_backlog``: a job of 10^6 subjobs); no bar without either."""
        if progress is None or events is None:
            return await wait()
        with progress:
            task = progress.add_task(f"job {self.fqid}", total=self.total, completed=self._done(),
                                     failed=max(0, self.failed))
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._draw, progress, task, events, look)
                summary = await wait()
                tg.cancel_scope.cancel()
            self.finish(summary)
            self._show(progress, task)
        return summary

    async def _draw(self, progress: Progress, task: TaskID,
                    events: AsyncIterable[Mapping[str, Any]],
                    look: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        try:
            async for event in events:
                if self.count(event):
                    self._show(progress, task)
        except SlowClientError:
            pass
        while True:
            self.take(await look())
            self._show(progress, task)
            await anyio.sleep(0.5)

    def _show(self, progress: Progress, task: TaskID) -> None:
        progress.update(task, completed=self._done(), failed=max(0, self.failed))

    def _done(self) -> int:
        # Clamped: a daemon's counts at the start may already include an event still on its way.
        return max(0, min(self.done, self.total))


def progress_bar(args: argparse.Namespace) -> Progress | None:
    """A progress bar on stderr; none for JSON output or JSON log lines, nor off a terminal."""
    if args.json or args.log_json or not _may_be_terminal():
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        return None
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=console,
    )


def _may_be_terminal() -> bool:
    """False when rich would surely find stderr no terminal: it is no TTY and neither
    ``TTY_COMPATIBLE`` nor ``FORCE_COLOR`` (which rich obeys first) is set. Off a terminal (a
    script, a pipe) a command then does not import rich to learn that: 20-40 ms of
    ``submit --wait``'s start (figure 1 of docs/benchmarks.md)."""
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return True
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # no file behind it, or a closed one
        return False
