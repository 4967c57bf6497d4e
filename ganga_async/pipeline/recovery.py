"""Recovery: what an earlier engine left is resumed when an engine opens.

Interrupted splits are split again, (sub)jobs left with a backend are monitored again (those
the backend never received are submitted again, so nothing runs twice), and jobs held for
credentials wait at the gate again, and masters whose postprocessing an engine's end cut short
are postprocessed again. A backend that cannot answer is asked again every poll
interval; the jobs keep their status meanwhile.

A master of 10^6 subjobs is looked at :data:`SLICE` subjobs at a time, the event loop free
between slices, so that an engine (or the daemon holding it) opening on it goes on answering.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

import anyio
import anyio.lowlevel

from .._exceptions import GangaAsyncError, PluginError
from .._workspace import output_dir
from ..backends.base import Handle
from ..model import machine
from ..model.machine import ON_BACKEND
from ..model.record import JobRecord
from ..persistence.active_rows import job_rows_by_status
from ..states import Status
from .context import Context, Live, engine_log
from .monitor import Backends
from .postprocess import Postprocessing
from .retry import Retrier
from .store import JobStore
from .submit import Held

__all__ = ["recover"]

log = engine_log

SLICE = 10_000
"""Subjobs looked at between two checkpoints of the event loop (a few ms of work)."""

Group = tuple[Live, list[int | None]]
"""A job and those of its (sub)jobs (indices; None: the job itself) a backend may hold."""

_ON_BACKEND = frozenset(s.code for s in ON_BACKEND)
_SUBMITTING, _HELD = Status.SUBMITTING.code, Status.HELD.code


async def recover(ctx: Context, store: JobStore, backends: Backends,
                  postprocessing: Postprocessing, retrier: Retrier) -> None:
    """Resume what an earlier engine left: finish submissions, monitor active jobs again.

    An engine with ``monitoring=False`` resumes nothing: it must not submit to a backend,
    nor load every active job (seconds for a master of 100,000 subjobs) to leave it alone.
    """
    if not ctx.monitoring:
        return
    names = [str(s) for s in (*ON_BACKEND, Status.HELD)]
    rows = await job_rows_by_status(ctx.repository, names)
    if not rows:
        return
    pending: dict[str, list[Group]] = {}
    waiting: list[tuple[JobRecord, int | None, float]] = []
    for row in rows:
        try:
            live = await store.load(row)
        except GangaAsyncError as exc:  # a plugin it needs is no longer installed
            log.error("an active job cannot be loaded and stays as it is", job_id=row.id,
                      error=str(exc))
            continue
        finally:
            row.spec = {}  # the Job has its own copy: 10^6 decoded lists go now, not at the end
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
        on_backend, held = await _sort(record, waiting)
        if on_backend:
            pending.setdefault(live.job.backend.plugin_name, []).append((live, on_backend))
        if held:
            log.info("held jobs wait for their credentials again", job_id=row.id, count=len(held))
            ctx.credentials.hold(Held(ctx, live, held, ctx.credentials.requirements(live.job)))
    if waiting:
        log.info("retries wait out what is left of their backoff", count=len(waiting))
        retrier.schedule(waiting)
    for name, groups in pending.items():
        if not await _resume(ctx, backends, name, groups) and ctx.tg is not None:
            ctx.tg.start_soon(_resume_later, ctx, backends, name, groups)


async def _sort(record: JobRecord, waiting: list[tuple[JobRecord, int | None, float]]
                ) -> tuple[list[int | None], list[int | None]]:
    """The (sub)jobs of ``record`` a backend may hold and those held at the credential gate;
    those waiting out a retry's backoff go to ``waiting`` with their due time. The rules of
    :func:`machine.waiting`, :func:`machine.on_backend` and :func:`machine.held_by_backend`,
    read from the subjob table's columns, :data:`SLICE` subjobs between two checkpoints."""
    table = record.table
    if not record.split or table is None:
        if machine.waiting(record, None):
            waiting.append((record, None, record.retry_at))
            return [], []
        if machine.on_backend(record, None):
            return [None], []
        return [], [None] if record.status is Status.HELD else []
    on_backend: list[int | None] = []
    held: list[int | None] = []
    codes, due, backend_id = table.status, table.retry_at, table.backend_id
    for start in range(0, len(codes), SLICE):
        if start:
            await anyio.lowlevel.checkpoint()
        for index, code in enumerate(codes[start:start + SLICE], start):
            if code in _ON_BACKEND:
                if code == _SUBMITTING and index in due:
                    waiting.append((record, index, due[index]))
                else:
                    on_backend.append(index)
            elif code == _HELD:
                (on_backend if backend_id[index] else held).append(index)
    return on_backend, held


async def _resume(ctx: Context, backends: Backends, name: str, groups: list[Group],
                  again: bool = False) -> bool:
    """Take over the (sub)jobs an earlier engine left active on backend ``name``: monitor them
    again, the driver tracking them and sweeping them at once; the news say which it has, and
    those it never received (``NEW``) are submitted again. False when the backend could not
    answer; they keep their status meanwhile. ``again``: a retry, for those still waiting for
    the backend (not those its news ended or sent back to submission meanwhile).

    Their entries and handles are made :data:`SLICE` at a time, the loop free between."""
    count = sum(len(indices) for _, indices in groups)
    try:
        driver = await backends.driver(name)
        active = backends.active[name]
        entries = active.entries
        handles = _Handles()
        for live, indices in groups:
            record = live.record
            table = record.table
            keys, natives, chosen = handles.group(record.jobdir)
            for start in range(0, len(indices), SLICE):
                if start:
                    await anyio.lowlevel.checkpoint()
                if record.status is Status.REMOVED:
                    break
                for index in indices[start:start + SLICE]:
                    if not machine.on_backend(record, index):
                        continue  # killed or forced while the backend could not answer
                    key = record.key(index)
                    entry = entries.get(key)
                    if again:
                        if entry is None or not entry[3]:
                            continue
                        native = entry[2]
                    elif entry is None:
                        native = (record.backend_id if index is None or table is None
                                  else table.backend_id[index]) or ""
                        active.add(key, live, index, native, recovered=True)
                    else:
                        native = entry[2]
                    keys.append(key)
                    natives.append(native)
                    chosen.append(index)
            await anyio.lowlevel.checkpoint()
        if again and not len(handles):
            return True
        with anyio.fail_after(ctx.config["Monitoring"]["command_timeout"]):
            await driver.track(handles)
            await driver.sweep()
    except PluginError as exc:
        log.error("jobs of a backend that cannot be loaded stay as they are", backend=name,
                  count=count, error=str(exc))
        return True
    except (GangaAsyncError, TimeoutError, OSError) as exc:
        log.warning("cannot ask the backend about the jobs an earlier engine left; asking "
                    "again every poll interval", backend=name, count=count, error=str(exc))
        return False
    log.info("monitoring resumed", backend=name, active=len(active))
    return True


class _Handles(Sequence[Handle]):
    """The handles of the (sub)jobs to track, each made when the driver reads it: a driver
    that keeps nothing of them (or only some fields) does not have 10^6 handles (each with
    its path) made for it, all of which a full garbage collection would walk."""

    def __init__(self) -> None:
        self._groups: list[tuple[Path, list[str], list[str], list[int | None]]] = []

    def group(self, jobdir: Path) -> tuple[list[str], list[str], list[int | None]]:
        """The lists to append the keys, native ids and indices of one job's (sub)jobs to."""
        keys: list[str] = []
        natives: list[str] = []
        indices: list[int | None] = []
        self._groups.append((jobdir, keys, natives, indices))
        return keys, natives, indices

    def __len__(self) -> int:
        return sum(len(keys) for _, keys, _, _ in self._groups)

    def __iter__(self) -> Iterator[Handle]:
        for jobdir, keys, natives, indices in self._groups:
            for key, native, index in zip(keys, natives, indices, strict=True):
                yield Handle(key, native, output_dir(jobdir, index))

    @overload
    def __getitem__(self, item: int) -> Handle: ...

    @overload
    def __getitem__(self, item: slice) -> list[Handle]: ...

    def __getitem__(self, item: int | slice) -> Handle | list[Handle]:
        if isinstance(item, slice):
            return list(self)[item]
        position = item + len(self) if item < 0 else item
        if position >= 0:
            for jobdir, keys, natives, indices in self._groups:
                if position < len(keys):
                    return Handle(keys[position], natives[position],
                                  output_dir(jobdir, indices[position]))
                position -= len(keys)
        raise IndexError(item)


async def _resume_later(ctx: Context, backends: Backends, name: str, groups: list[Group]) -> None:
    """Retry :func:`_resume` every poll interval until the backend answers, for the (sub)jobs
    still waiting for it."""
    while True:
        await anyio.sleep(ctx.config["Monitoring"]["poll_interval"])
        if await _resume(ctx, backends, name, groups, again=True):
            return
