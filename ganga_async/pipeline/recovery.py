"""Recovery: what an earlier engine left is resumed when an engine opens.

Interrupted splits are split again, (sub)jobs left with a backend are monitored again (those
the backend never received are submitted again, so nothing runs twice), and jobs held for
credentials wait at the gate again, and masters whose postprocessing an engine's end cut short
are postprocessed again. A backend that cannot answer is asked again every poll
interval; the jobs keep their status meanwhile.
"""

from __future__ import annotations

import anyio

from .._exceptions import GangaAsyncError, PluginError
from ..model import machine
from ..model.machine import ON_BACKEND
from ..model.record import JobRecord
from ..states import Status
from .context import Context, Live, engine_log
from .monitor import Active, Backends
from .postprocess import Postprocessing
from .retry import Retrier
from .store import JobStore
from .submit import Held

__all__ = ["recover"]

log = engine_log


async def recover(ctx: Context, store: JobStore, backends: Backends,
                  postprocessing: Postprocessing, retrier: Retrier) -> None:
    """Resume what an earlier engine left: finish submissions, monitor active jobs again.

    An engine with ``monitoring=False`` resumes nothing: it must not submit to a backend,
    nor load every active job (seconds for a master of 100,000 subjobs) to leave it alone.
    """
    if not ctx.monitoring:
        return
    names = [str(s) for s in (*ON_BACKEND, Status.HELD)]
    rows = await ctx.repository.job_rows(statuses=names)
    if not rows:
        return
    pending: dict[str, list[tuple[Live, int | None]]] = {}
    waiting: list[tuple[JobRecord, int | None, float]] = []
    for row in rows:
        try:
            live = await store.load(row)
        except GangaAsyncError as exc:  # a plugin it needs is no longer installed
            log.error("an active job cannot be loaded and stays as it is", job_id=row.id,
                      error=str(exc))
            continue
        if live.job.splitter is not None and row.n_subjobs is None:
            log.info("resuming an interrupted split", job_id=row.id)
            await ctx.split_inbox().send((live, None))
            continue
        record = live.record
        if (record.status is Status.COMPLETING and record.hold_final and record.table is not None
                and record.table.all_final()):
            log.info("postprocessing again what an earlier engine left unfinished", job_id=row.id)
            record.postprocessing = True
            postprocessing.start([record], redo=True)
            continue
        held: list[int | None] = []
        for index in machine.targets(live.record):
            status = live.record.status_of(index)
            if machine.waiting(record, index):
                waiting.append((record, index, _due(record, index)))
            elif machine.on_backend(record, index):
                pending.setdefault(live.job.backend.plugin_name, []).append((live, index))
            elif status is Status.HELD:
                held.append(index)
        if held:
            log.info("held jobs wait for their credentials again", job_id=row.id, count=len(held))
            ctx.credentials.hold(Held(ctx, live, held, ctx.credentials.requirements(live.job)))
    if waiting:
        log.info("retries wait out what is left of their backoff", count=len(waiting))
        retrier.schedule(waiting)
    for name, items in pending.items():
        entries = {}
        for live, index in items:
            record = live.record
            backend_id = record.backend_id if index is None or record.table is None else (
                record.table.backend_id[index])
            key = record.key(index)
            entries[key] = Active(live, index, backend_id or "", recovered=True)
        if not await _resume(ctx, backends, name, entries) and ctx.tg is not None:
            ctx.tg.start_soon(_resume_later, ctx, backends, name, entries)


def _due(record: JobRecord, index: int | None) -> float:
    if index is None or record.table is None:
        return record.retry_at
    return record.table.retry_at[index]


async def _resume(ctx: Context, backends: Backends, name: str, entries: dict[str, Active]) -> bool:
    """Take over the (sub)jobs an earlier engine left active on backend ``name``: monitor them
    again, the driver tracking them and sweeping them at once; the news say which it has, and
    those it never received (``NEW``) are submitted again. False when the backend could not
    answer; they keep their status meanwhile."""
    try:
        driver = await backends.driver(name)
        active = backends.active[name]
        handles = []
        for key, entry in entries.items():
            record = entry.live.record
            if record.status is Status.REMOVED or not machine.on_backend(record, entry.index):
                continue  # removed, killed or forced while the backend could not answer
            active[key] = entry
            handles.append(entry.handle)
        with anyio.fail_after(ctx.config["Monitoring"]["command_timeout"]):
            await driver.track(handles)
            await driver.sweep()
    except PluginError as exc:
        log.error("jobs of a backend that cannot be loaded stay as they are", backend=name,
                  count=len(entries), error=str(exc))
        return True
    except (GangaAsyncError, TimeoutError, OSError) as exc:
        log.warning("cannot ask the backend about the jobs an earlier engine left; asking "
                    "again every poll interval", backend=name, count=len(entries), error=str(exc))
        return False
    log.info("monitoring resumed", backend=name, active=len(active))
    return True


async def _resume_later(ctx: Context, backends: Backends, name: str,
                        entries: dict[str, Active]) -> None:
    """Retry :func:`_resume` every poll interval until the backend answers, for the (sub)jobs
    still waiting for it (not those its news ended or sent back to submission)."""
    while True:
        await anyio.sleep(ctx.config["Monitoring"]["poll_interval"])
        active = backends.active.get(name, {})
        entries = {k: e for k, e in entries.items() if active.get(k) is e}
        if not entries or await _resume(ctx, backends, name, entries):
            return
