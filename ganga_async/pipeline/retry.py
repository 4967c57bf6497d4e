"""Retries: (sub)jobs the retry policy sends back to ``submitting`` wait out their backoff
here, then go to the submit stage.

The state machine decides (:func:`~ganga_async.model.machine.finish`): the failure is kept
as an attempt and the (sub)job waits in ``submitting`` with the time it is due, both
persisted. When it is due the backend forgets the earlier run, the wait is cleared (and
written) and the (sub)job is submitted. An engine that opens finds those still waiting and
waits out what is left of their backoff (:func:`~ganga_async.pipeline.recovery.recover`), so
a retry is never lost nor made twice across a restart.
"""

from __future__ import annotations

import time

import anyio

from .._workspace import output_dir
from ..backends.base import Handle
from ..config import Config
from ..model import machine
from ..model.job import Job
from ..model.record import JobRecord
from ..model.retry import Retry
from .context import Context, Live, engine_log, indices_of
from .monitor import Backends

__all__ = ["Retrier", "retry_policy"]

log = engine_log

_TOGETHER = 0.05
"""Seconds within which (sub)jobs due about together are submitted in one chunk."""


def retry_policy(job: Job, config: Config) -> Retry | None:
    """The job's retry policy: its ``retry``, else Ganga's ``do_auto_resubmit`` with
    ``[PollThread] MaxNumResubmits`` and ``MaxFracForResubmit``, else None."""
    if job.retry is not None:
        return job.retry
    if job.do_auto_resubmit:
        poll = config["PollThread"]
        return Retry.ganga(int(poll["MaxNumResubmits"]), float(poll["MaxFracForResubmit"]))
    return None


class Retrier:
    """Waits out each retry's backoff, then submits the (sub)jobs again: one task per job
    with retries waiting, which takes every one that is due at once (retries decided while
    it submits the last ones join the next batch)."""

    def __init__(self, ctx: Context, backends: Backends) -> None:
        self.ctx = ctx
        self.backends = backends
        self.waiting: dict[int, list[tuple[float, int | None]]] = {}
        self.wake: dict[int, anyio.Event] = {}

    def schedule(self, retries: list[tuple[JobRecord, int | None, float]]) -> None:
        """Submit these (sub)jobs again once each is due (the state machine decided)."""
        tg = self.ctx.tg
        if tg is None:
            return  # the engine closes: the next one finds them waiting
        jobs = self.ctx.registry.jobs
        for record, index, due in retries:
            live = jobs.get(record.id) if record.id is not None else None
            if live is None:
                continue
            items = self.waiting.get(live.id)
            if items is None:
                items = self.waiting[live.id] = []
                self.wake[live.id] = anyio.Event()
                tg.start_soon(self._wait, live, items)
            items.append((due, index))
            self.wake[live.id].set()

    async def _wait(self, live: Live, items: list[tuple[float, int | None]]) -> None:
        try:
            while items:
                with anyio.move_on_after(max(0.0, min(due for due, _ in items) - time.time())):
                    await self.wake[live.id].wait()  # an earlier one may come meanwhile
                self.wake[live.id] = anyio.Event()
                now = time.time() + _TOGETHER
                ready = [index for due, index in items if due <= now]
                items[:] = [(due, index) for due, index in items if due > now]
                if ready:
                    await self._submit_again(live, ready)
        except Exception as exc:  # noqa: BLE001 (a backend error must not stop the engine)
            log.error("retrying failed; the (sub)jobs wait for the next engine", job_id=live.id,
                      error=str(exc))
        finally:
            self.waiting.pop(live.id, None)
            self.wake.pop(live.id, None)

    async def _submit_again(self, live: Live, indices: list[int | None]) -> None:
        ctx, record = self.ctx, live.record
        chosen = [i for i in indices if machine.waiting(record, i)]
        if not chosen or record.status.value == "removed":
            return
        driver = await self.backends.driver(live.job.backend.plugin_name)
        jobdir = record.jobdir
        await driver.forget([Handle(record.key(i), "", output_dir(jobdir, i)) for i in chosen])
        changes = machine.Changes()
        chosen = [i for i in chosen if machine.retry_due(changes, record, i)]
        ctx.commit(changes)
        await ctx.repository.flush()
        if chosen:
            log.info("retrying", job_id=live.id, count=len(chosen))
            await ctx.submit_inbox().send((live, indices_of(chosen)))
