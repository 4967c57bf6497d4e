"""The split stage: a master's subjobs streamed into compact rows, persisted in one transaction."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._exceptions import GangaAsyncError, JobSpecError
from .._log import bound
from ..model import machine
from ..model.subjobs import SubjobTable
from ..states import Status
from .accept import answer, refuse
from .context import Chunk, Context, Live, engine_log

__all__ = ["SplitStage", "FIRST_CHUNK"]

FIRST_CHUNK = 32
"""The most subjobs in the first chunk handed to a backend without job arrays."""

log = engine_log


class SplitStage:
    """Persists the subjobs of each accepted master (the splitter's overrides, streamed into
    rows in the database thread), answers its ``submit()`` (``reply``; None when recovery
    resumes an interrupted split), then feeds chunks of subjob indices to the submit stage."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def run(self, inbox: MemoryObjectReceiveStream[tuple[Live, MemoryObjectSendStream[Any] | None]],
                  *, task_status: TaskStatus[None]) -> None:
        task_status.started()
        async with inbox, self.ctx.submit_inbox() as outbox:
            async for live, reply in inbox:
                with bound(job_id=live.id):
                    await self._split(live, reply, outbox)
                # A stage waiting for its next item must not hold the last one: a job that
                # has ended would stay in memory with its subjobs until the next came, and
                # pin the allocator's arenas it was made in (figure 6, benchmarks/endurance.py).
                del live, reply

    async def _split(self, live: Live, reply: MemoryObjectSendStream[Any] | None,
                     outbox: MemoryObjectSendStream[Chunk]) -> None:
        ctx, job, record = self.ctx, live.job, live.record
        if job.splitter is None:
            if reply is not None:
                await answer(reply, None)
            await outbox.send((live, None))
            return
        table = SubjobTable()
        splitter = job.splitter
        code = Status.SUBMITTING.code

        def rows() -> Iterator[tuple[int, int, str]]:
            dumps = json.JSONEncoder(separators=(",", ":")).encode
            for index, overrides in enumerate(splitter.split(job)):
                text = dumps(overrides)
                table.append(Status.SUBMITTING, text, submit_counter=1)
                yield index, code, text

        started = time.perf_counter()
        try:
            # One transaction: the old subjobs of an interrupted split go, these and their
            # number in the job's row are stored; no flush of what other jobs queued.
            await ctx.repository.insert_subjobs(live.id, rows())
            if not len(table):
                raise JobSpecError("splitter", "made no subjobs; give it something to split")
        except Exception as exc:
            await ctx.repository.delete_subjobs(live.id)
            log.error("splitting failed", error=str(exc))
            error = exc if isinstance(exc, GangaAsyncError) else JobSpecError(
                "splitter", f"splitting failed: {exc!r}")
            if reply is None:
                changes = machine.Changes()
                machine.set_status(changes, record, None, Status.FAILED, time.time(), reason=str(error))
                ctx.commit(changes)
            else:
                await refuse(ctx, live, reply, error)
            return
        record.table = table
        log.info("job split", subjobs=len(table), seconds=round(time.perf_counter() - started, 3))
        if reply is not None:
            await answer(reply, None)
        arrays = job.backend.submit_batch
        batch = arrays or ctx.config["Pipeline"]["submit_batch"]
        # Without job arrays the first chunk is small: its processes start while the next
        # chunk is resolved (256 units took 4-8 ms before the first could start).
        first = batch if arrays else min(batch, FIRST_CHUNK)
        for start, end in itertools.pairwise([0, *range(first, len(table), batch), len(table)]):
            await outbox.send((live, list(range(start, end))))
