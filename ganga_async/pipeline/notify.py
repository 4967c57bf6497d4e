"""Notifications: the job's notifier postprocessors hear its status transitions.

The stage reads the engine's own event stream (so a job submitted through the daemon is told
by the daemon, one through the engine by the engine) and hands each notification a notifier
wants to a worker thread: a slow mail server never holds up the event loop, and a failure to
send is logged, never raised into the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from ..events import EventHub, EventStream, JobEvent
from ..model.job import Job
from ..states import FINAL, Status
from .context import Context, Live, engine_log

if TYPE_CHECKING:
    from ..postprocessors.notifiers import Notification, NotifierBase

__all__ = ["NotifyStage"]

log = engine_log

_AT_ONCE = 4
"""Notifications sent at once."""


def _notifiers(job: Job) -> list[NotifierBase]:
    """The job's notifiers; their module is imported once a job has postprocessors (most
    have none: a fresh process's first job need not import it)."""
    if not job.postprocessors:
        return []
    from ..postprocessors.notifiers import NotifierBase

    return [p for p in job.postprocessors if isinstance(p, NotifierBase)]


class NotifyStage:
    """Tells each job's notifiers of the transitions they want. It listens only once a job
    with a notifier is accepted or loaded (:meth:`watch`): events cost nothing to an engine
    nobody listens to.

    While it listens, the engine keeps a finished job with a notifier in memory until the
    stage has read every event queued for it (see
    :class:`~ganga_async.pipeline.context.LiveJobs`): a notification is never dropped because
    its job's user let go of the job before the stage read its last transition."""

    def __init__(self, ctx: Context, hub: EventHub) -> None:
        self.ctx = ctx
        self.hub = hub
        self.limiter = anyio.CapacityLimiter(_AT_ONCE)
        self.listening = False
        self.ended: set[int] = set()
        """Jobs of which the stage read a transition to a final status."""

    def watch(self, job: Job) -> None:
        """Listen from now on if ``job`` has a notifier."""
        tg = self.ctx.tg
        if self.listening or tg is None or not _notifiers(job):
            return
        self.listening = True
        stream = self.hub.subscribe(self.ctx.config["Pipeline"]["event_buffer"], JobEvent)
        self.ctx.registry.jobs.keep = _has_notifier
        tg.start_soon(self._run, stream)

    async def _run(self, stream: EventStream[JobEvent]) -> None:
        try:
            await self._listen(stream)
        finally:
            self.listening = False
            self.ctx.registry.jobs.keep = None
            self._release()

    def _release(self) -> None:
        """Let the jobs whose events were all read rest (those final by now)."""
        jobs = self.ctx.registry.jobs
        for job_id in self.ended:
            jobs.release(job_id)
        self.ended.clear()

    async def _listen(self, stream: EventStream[JobEvent]) -> None:
        async with stream, anyio.create_task_group() as tg:
            async for event in stream:
                self._tell(event, tg)
                if self.ended and not stream.pending:
                    self._release()

    def _tell(self, event: JobEvent, tg: TaskGroup) -> None:
        """Start sending the notifications ``event`` makes."""
        live = self.ctx.registry.jobs.get(event.job_id)
        if live is None or not live.job.postprocessors:
            return
        notifiers = _notifiers(live.job)
        if not notifiers:
            return
        if event.new in FINAL:
            self.ended.add(event.job_id)
        subjob = event.index is not None
        # A failure the retry policy took has already left failed.
        retried = event.new is Status.FAILED and (
            live.record.status_of(event.index) is not Status.FAILED)
        from ..postprocessors.notifiers import Notification

        note = Notification(event.fqid, live.job.name, str(event.old), str(event.new),
                            event.reason, event.time)
        for notifier in notifiers:
            if notifier.wants(note, subjob=subjob, final=event.new in FINAL,
                              retried=retried):
                tg.start_soon(self._send, notifier, note)

    async def _send(self, notifier: NotifierBase, note: Notification) -> None:
        async with self.limiter:
            try:
                await anyio.to_thread.run_sync(notifier.send, note, self.ctx.config)
            except Exception as exc:  # noqa: BLE001 (a notification must never stop the engine)
                log.error("notification failed", fqid=note.fqid, notifier=notifier.plugin_name,
                          error=str(exc))
            else:
                log.info("notified", fqid=note.fqid, notifier=notifier.plugin_name, status=note.new)


def _has_notifier(live: Live) -> bool:
    return bool(_notifiers(live.job))
