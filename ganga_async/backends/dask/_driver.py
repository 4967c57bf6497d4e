"""The Dask driver: submission as fire-and-forget tasks, the scheduler as the fast path, status
files as the truth.

Submission: the units of one job and settings are written to a JSON Lines manifest (the batch
backends' format, with ``once`` and ``watch_parent`` set and each task's Dask key and scheduler
address), then handed over in one ``client.map`` of ``subprocess.run`` calls that run the job
wrapper on that manifest's line, keyed ``ganga-<fqid>-<attempt>`` and fire-and-forget, so the
scheduler runs them even when this engine goes away. ``max_running`` holds the rest back and
feeds them in as tasks end.

Watching: the engine keeps the futures it submitted and learns each end at once (the fast
path); :meth:`DaskDriver.sweep` asks each scheduler for the state of every tracked key in one
call and reads the status files, then :func:`decide` says what that means. A task the
scheduler lost (it died or restarted before the task started: no status file) is submitted
again once under the next attempt's key; the wrapper's exclusive status file makes sure no
(sub)job runs twice even if an old copy of the task were still to run.

Kills: a ``__kill__`` file in the outputdir (read by the wrapper before it starts the
application and at every heartbeat), the queued task cancelled, and SIGTERM sent to the
wrapper through the worker that runs it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import anyio
from anyio.abc import TaskGroup, TaskStatus
from distributed import Client, Future, Security, SpecCluster, as_completed, fire_and_forget
from distributed.deploy.subprocess import SubprocessCluster

from ..._exceptions import BackendError, BackendUnavailableError
from ..._log import get_logger
from ..._workspace import job_dir_of
from ...states import Status
from .._batch import (
    KILL_FILE,
    install_wrapper,
    manifest_entry,
    read_records,
    remove_status_files,
    resolve,
    write_manifest,
)
from ..base import BackendStatus, DriverContext, Handle, SubmitUnit, Tracked, TrackingDriver
from . import Dask

__all__ = ["DaskDriver", "decide"]

log = get_logger(__name__)

_QUEUED = BackendStatus(Status.SUBMITTED)
_WAITING_STATES = frozenset({"released", "waiting", "queued", "no-worker", "processing"})
NO_DASHBOARD = {"dashboard_address": ":0"}
"""A LocalCluster's scheduler serves HTTP even without a dashboard, by default on port 8787: a
free port instead, so that an engine never clashes with another cluster (or a notebook's)."""

LOST = BackendStatus(Status.UNKNOWN, reason="lost")
"""What :func:`decide` returns for a task its scheduler does not know and that never started."""


def dask_key(fqid: str, attempt: int) -> str:
    return f"ganga-{fqid}-{attempt}"


def attempt_of(key: str) -> int:
    return int(key.rpartition("-")[2])


def decide(key: str, state: str | None, record: Mapping[str, Any] | None, heartbeat: float | None, *,
           now: float, silent_since: float, forget_after: float, heartbeat_timeout: float,
           error: str | None = None) -> BackendStatus | None:
    """One task's status from its scheduler state (None: the scheduler does not know it, as
    after it ended fire-and-forget) and the job wrapper's record; None means no decision yet.

    A record decides whenever there is one: ended, running while its heartbeat is fresh, and
    failed once it has been silent for ``forget_after`` seconds (its worker died with it). With
    no record, a task waiting or assigned is ``submitted``, one that erred failed with
    ``error``, one that finished without a record failed, and one unknown is :data:`LOST`.
    """
    if record is not None:
        return resolve(key, None, record, heartbeat, now=now, missing_since=silent_since,
                       forget_after=forget_after, heartbeat_timeout=heartbeat_timeout)
    if state in _WAITING_STATES:
        return _QUEUED
    if state == "erred":
        why = error or "no reason given"
        return BackendStatus(Status.FAILED, reason=f"the Dask task {key} failed: {why}")
    if state is None or state == "forgotten":
        return LOST
    why = f": {error}" if error else ""
    return BackendStatus(Status.FAILED,
                         reason=f"the Dask task {key} ended without running the job wrapper{why}")


class _Tracked(Tracked):
    """A (sub)job the driver watches: also its scheduler, its manifest line, the future this
    engine holds (None after a restart), since when its wrapper has been silent or its task
    unknown, and whether it was already submitted again once."""

    __slots__ = ("address", "manifest", "task", "future", "silent_since", "lost_since", "again", "found",
                 "resources", "security", "max_running", "held")

    def __init__(self, handle: Handle, entry: Mapping[str, Any], manifest: Path,
                 last: BackendStatus | None = None, *, found: bool = False) -> None:
        super().__init__(handle, last)
        self.address = str(entry.get("address") or "")
        self.resources: dict[str, float] = dict(entry.get("resources") or {})
        self.security: dict[str, str] = dict(entry.get("security") or {})
        self.max_running = int(entry.get("max_running") or 0)
        self.held = False
        self.manifest = manifest
        self.task = int(entry["task"])
        self.future: Future[Any] | None = None
        self.silent_since: float | None = None
        self.lost_since: float | None = None
        self.again = False
        self.found = found


class DaskDriver(TrackingDriver[_Tracked]):
    """The runtime of the Dask backend: one per engine, one client per scheduler address (and
    the engine's own LocalCluster for jobs without one)."""

    def __init__(self, context: DriverContext) -> None:
        super().__init__(context)
        self._clients: dict[str, Client] = {}
        self._cluster: SpecCluster | None = None
        self._connect_lock = anyio.Lock()
        self._sweep_lock = anyio.Lock()
        self._tg: TaskGroup | None = None
        self._wrappers: set[Path] = set()

    def _option(self, name: str) -> Any:
        return self._context.config["Dask"][name]

    def poll_bounds(self) -> tuple[float, float]:
        """``poll_min`` and ``poll_max`` of ``[Dask]``."""
        return float(self._option("poll_min")), float(self._option("poll_max"))

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Host the watchers of submitted futures (the fast path) until the engine stops."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tg = None

    async def aclose(self) -> None:
        """Close the clients, then the engine's own LocalCluster (its tasks end with it)."""
        clients, self._clients = self._clients, {}
        with anyio.CancelScope(shield=True):
            for client in clients.values():
                try:
                    await cast(Awaitable[None], client.close())
                except (OSError, RuntimeError) as exc:
                    log.warning("closing a Dask client failed", error=str(exc))
            if self._cluster is not None:
                cluster, self._cluster = self._cluster, None
                await cast(Awaitable[None], cluster.close())

    # -- connections ----------------------------------------------------------------------

    async def _client(self, address: str, security: Mapping[str, str] | None = None) -> Client:
        """The client of ``address`` ("" for the engine's LocalCluster), connected on first use."""
        client = self._clients.get(address)
        if client is not None:
            return client
        async with self._connect_lock:
            client = self._clients.get(address)
            if client is None:
                client = await self._connect(address, security or {})
                self._clients[address] = client
        return client

    async def _connect(self, address: str, security: Mapping[str, str]) -> Client:
        timeout = float(self._option("connect_timeout"))
        if not address:
            workers = int(self._option("local_workers")) or os.cpu_count() or 1
            # Subprocesses of their own, not multiprocessing children: those import the user's
            # script again (as __mp_main__), and a script without a __main__ guard reruns there.
            self._cluster = await SubprocessCluster(n_workers=workers, threads_per_worker=1,
                                                    dashboard_address=NO_DASHBOARD["dashboard_address"],
                                                    asynchronous=True)
            log.info("started a local Dask cluster", workers=workers, address=self._cluster.scheduler_address)
            client: Client = await Client(self._cluster, asynchronous=True)
            return client
        options: dict[str, Any] = dict(security)
        if "require_encryption" in options:
            options["require_encryption"] = str(options["require_encryption"]).lower() in ("1", "true", "yes")
        try:
            with anyio.fail_after(timeout + 5):
                remote: Client = await Client(address, asynchronous=True, timeout=timeout,
                                              security=Security(**options) if options else None)
                return remote
        except (OSError, TimeoutError) as exc:
            raise BackendUnavailableError(
                f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({exc}); check "
                "the address and that the scheduler runs") from None

    # -- submission -----------------------------------------------------------------------

    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        results: list[str | BaseException] = [BackendError("not submitted")] * len(units)
        groups: dict[str, list[int]] = {}
        for position, unit in enumerate(units):
            text = json.dumps(unit.backend.to_dict(), sort_keys=True)
            groups.setdefault(f"{unit.job_id}|{text}", []).append(position)
        for positions in groups.values():
            chosen = [units[p] for p in positions]
            try:
                keys = await self._submit_group(chosen)
            except BackendError as exc:
                log.warning("submission refused", backend="Dask", error=str(exc))
                for position in positions:
                    results[position] = exc
                continue
            for position, key in zip(positions, keys, strict=True):
                results[position] = key
        return results

    async def _submit_group(self, units: list[SubmitUnit]) -> list[str]:
        settings = units[0].backend
        assert isinstance(settings, Dask)
        address = settings.address or ""
        client = await self._client(address, settings.security)
        folder = job_dir_of(units[0].outputdir) / "dask"
        wrapper = folder / "job_wrapper.py"
        if wrapper not in self._wrappers:
            await anyio.to_thread.run_sync(install_wrapper, folder, wrapper)
            self._wrappers.add(wrapper)
        attempts = await anyio.to_thread.run_sync(_attempts, folder, {u.key for u in units})
        heartbeat = float(self._option("heartbeat"))
        stem = f"{units[0].job_id}-{time.time_ns():x}"
        manifest = folder / f"{stem}.jsonl"
        entries = []
        for task, unit in enumerate(units):
            entry = manifest_entry(unit, task, heartbeat)
            entry.update(once=True, watch_parent=True, dask_key=dask_key(unit.key, attempts.get(unit.key, 0)),
                         address=address, resources=settings.resources, security=settings.security,
                         max_running=settings.max_running)
            entries.append(entry)
        await anyio.to_thread.run_sync(write_manifest, manifest, entries)
        tracked = []
        for unit, entry in zip(units, entries, strict=True):
            item = _Tracked(Handle(unit.key, entry["dask_key"], unit.outputdir), entry, manifest, _QUEUED)
            self.tracked[unit.key] = item
            tracked.append(item)
        self._feed(client, tracked, settings.max_running)
        log.info("submitted", backend="Dask", tasks=len(units), address=address or "local")
        return [str(e["dask_key"]) for e in entries]

    def _python(self, address: str) -> str:
        return sys.executable if not address else str(self._option("python"))

    def _feed(self, client: Client, items: list[_Tracked], cap: int) -> None:
        """Hand ``items`` over, at most ``cap`` at once (0: all), the rest as others end."""
        cap = cap or len(items)
        for item in items[cap:]:
            item.held = True
        self._hand_over(client, items[:cap])
        if self._tg is not None:
            self._tg.start_soon(self._watch, client, items[:cap], deque(items[cap:]))

    def _hand_over(self, client: Client, items: Sequence[_Tracked]) -> None:
        """Submit ``items`` in one ``client.map``, fire-and-forget, keeping their futures."""
        if not items:
            return
        python = self._python(items[0].address)
        argvs = [[python, "-I", "-S", str(i.manifest.parent / "job_wrapper.py"), str(i.manifest), str(i.task)]
                 for i in items]
        futures = client.map(subprocess.run, argvs, key=[i.handle.native_id for i in items], pure=False,
                             resources=items[0].resources or None, capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, check=False)
        fire_and_forget(futures)
        for item, future in zip(items, futures, strict=True):
            item.future = future
            item.held = False

    async def _watch(self, client: Client, started: list[_Tracked], pending: deque[_Tracked]) -> None:
        """The fast path: settle each task this engine submitted as soon as its future ends,
        and hand the ones held back by ``max_running`` over as others end. Should it fail, the
        sweeps go on alone, and take what it still held back for lost tasks to submit again."""
        try:
            await self._follow(client, started, pending)
        except Exception as exc:
            log.warning("the Dask fast path stopped; sweeps carry on", error=repr(exc))
            for item in pending:
                item.held = False

    async def _follow(self, client: Client, started: list[_Tracked], pending: deque[_Tracked]) -> None:
        futures = [i.future for i in started if i.future is not None]
        by_key = {i.handle.native_id: i for i in started}
        completed = as_completed(futures)
        async for first in completed:
            done = [first, *completed.next_batch(block=False)]
            items = [by_key.pop(f.key) for f in done if f.key in by_key]
            fresh: list[_Tracked] = []
            while pending and len(fresh) < len(done):
                item = pending.popleft()
                if self.tracked.get(item.handle.key) is item and not item.killed:
                    fresh.append(item)
            self._hand_over(client, fresh)
            for item in fresh:
                assert item.future is not None
                by_key[item.handle.native_id] = item
                completed.add(item.future)
            await self._settle(items)

    async def _settle(self, items: list[_Tracked]) -> None:
        """Publish the end of tasks whose futures finished, from their status files; a task's
        result (the wrapper's stderr) or error is fetched only when it left no record. A future
        cancelled (the client lost its scheduler) says nothing: the sweeps decide."""
        ended = [i for i in items if i.future is not None and i.future.status in ("finished", "error")
                 and self.tracked.get(i.handle.key) is i]
        records = (await anyio.to_thread.run_sync(read_records, [i.handle.outputdir for i in ended])
                   if ended else {})
        errors: dict[str, str | None] = {}
        states: dict[str, str | None] = {}
        for item in ended:
            future = item.future
            assert future is not None
            key = item.handle.key
            states[key] = "erred" if future.status == "error" else "memory"
            if records.get(item.handle.outputdir, (None, None))[0] is None:
                try:
                    if future.status == "error":
                        exc = await future.exception()
                        errors[key] = f"{type(exc).__name__}: {exc}"
                    else:
                        done = await future.result()
                        errors[key] = (done.stderr or "").strip()[-500:] or f"exit code {done.returncode}"
                except Exception as exc:  # the result went with its worker or scheduler
                    del states[key]
                    log.info("a task's result is gone; the sweeps decide", key=key, error=repr(exc))
        for item in items:
            if item.future is not None:
                item.future.release()
                item.future = None
        live = [i for i in ended if i.handle.key in states]
        if live:
            async with self._sweep_lock:
                self.publish(await self._observe(live, states, errors, records))

    # -- watching -------------------------------------------------------------------------

    async def sweep(self) -> int:
        async with self._sweep_lock:
            entries = list(self.tracked.values())
            states: dict[str, str | None] = {}
            by_address: dict[str, list[_Tracked]] = {}
            for entry in entries:
                by_address.setdefault(entry.address, []).append(entry)
            for address, group in by_address.items():
                client = await self._client(address, group[0].security)
                keys = [e.handle.native_id for e in group]
                try:
                    assert client.scheduler is not None
                    found = await client.scheduler.get_task_status(keys=keys)
                except OSError as exc:
                    where = address or "the local cluster"
                    raise BackendUnavailableError(
                        f"the Dask scheduler at {where} did not answer: {exc}") from None
                for entry in group:
                    states[entry.handle.key] = found.get(entry.handle.native_id)
            return await self.publish_sweep(await self._observe(entries, states, {}))

    async def _observe(self, entries: list[_Tracked], states: Mapping[str, str | None],
                       errors: Mapping[str, str | None],
                       records: Mapping[Path, tuple[dict[str, Any] | None, float | None]] | None = None,
                       ) -> dict[str, BackendStatus]:
        entries = [e for e in entries if self.tracked.get(e.handle.key) is e]
        if not entries:
            return {}
        if records is None:
            records = await anyio.to_thread.run_sync(read_records, [e.handle.outputdir for e in entries])
        now = time.time()
        forget_after = float(self._option("forget_after"))
        heartbeat_timeout = 3 * float(self._option("heartbeat"))
        lost_after = float(self._option("lost_after"))
        news: dict[str, BackendStatus] = {}
        again: list[_Tracked] = []
        for entry in entries:
            key = entry.handle.key
            record, heartbeat = records.get(entry.handle.outputdir, (None, None))
            fresh = heartbeat is not None and now - heartbeat < heartbeat_timeout
            if record is None or "end" in record or fresh:
                entry.silent_since = None
            else:
                entry.silent_since = entry.silent_since or now
            state = states.get(key)
            status = decide(entry.handle.native_id, state, record, heartbeat, now=now,
                            silent_since=entry.silent_since or now, forget_after=forget_after,
                            heartbeat_timeout=heartbeat_timeout, error=errors.get(key))
            if status is LOST and entry.held and not entry.killed:
                status = None
            elif status is LOST:
                entry.lost_since = entry.lost_since or now
                if entry.killed:
                    status = BackendStatus(Status.KILLED, reason="cancelled before it started")
                elif now - entry.lost_since < lost_after:
                    status = None
                elif not entry.again:
                    again.append(entry)
                    continue
                else:
                    status = BackendStatus(Status.FAILED, reason=(
                        f"its Dask task was lost twice before it started ({entry.handle.native_id}); "
                        "is the scheduler restarting?"))
            else:
                entry.lost_since = None
            if status is None:
                if not entry.found:
                    continue
                status = _QUEUED
            if status.status in (Status.FAILED, Status.KILLED) and entry.killed:
                status = dataclasses.replace(status, status=Status.KILLED, reason="killed")
            if entry.found:
                status = dataclasses.replace(status, native_id=entry.handle.native_id)
                entry.found = False
            news[key] = status
        if again:
            news.update(await self._again(again))
        return news

    async def _again(self, entries: list[_Tracked]) -> dict[str, BackendStatus]:
        """Submit again, once, tasks their scheduler lost before they started, under the next
        attempt's key; news carry the new key as the native id."""
        news: dict[str, BackendStatus] = {}
        by_manifest: dict[Path, list[_Tracked]] = {}
        for entry in entries:
            entry.again = True
            entry.lost_since = None
            entry.handle = dataclasses.replace(
                entry.handle, native_id=dask_key(entry.handle.key, attempt_of(entry.handle.native_id) + 1))
            by_manifest.setdefault(entry.manifest, []).append(entry)
            news[entry.handle.key] = BackendStatus(Status.SUBMITTED, native_id=entry.handle.native_id)
        for group in by_manifest.values():
            client = await self._client(group[0].address, group[0].security)
            self._feed(client, group, group[0].max_running)
            log.warning("tasks lost by the Dask scheduler before they started are submitted again",
                        count=len(group), address=group[0].address or "local")
        return news

    # -- the rest of the contract -----------------------------------------------------------

    async def track(self, handles: Sequence[Handle]) -> None:
        """Watch (sub)jobs an earlier engine submitted, found again in the manifests by fqid
        (and, without a native id, given the Dask key of their newest attempt)."""
        fresh = [h for h in handles if h.key not in self.tracked]
        if not fresh:
            return
        by_folder: dict[Path, set[str]] = {}
        for handle in fresh:
            by_folder.setdefault(job_dir_of(handle.outputdir) / "dask", set()).add(handle.key)
        placed: dict[str, tuple[Path, dict[str, Any]]] = {}
        for folder, keys in by_folder.items():
            placed.update(await anyio.to_thread.run_sync(_find_entries, folder, keys))
        news: dict[str, BackendStatus] = {}
        for handle in fresh:
            if handle.key in self.tracked:
                continue
            if handle.key not in placed:
                news[handle.key] = BackendStatus(Status.NEW, reason="never submitted")
                continue
            manifest, entry = placed[handle.key]
            if handle.native_id:
                self.tracked[handle.key] = _Tracked(handle, entry, manifest)
            else:
                handle = dataclasses.replace(handle, native_id=str(entry["dask_key"]))
                self.tracked[handle.key] = _Tracked(handle, entry, manifest, found=True)
        self.publish(news)

    async def kill(self, handles: Sequence[Handle]) -> None:
        """Write each kill file, cancel the queued tasks and SIGTERM the wrappers that run."""
        entries = [self.tracked[h.key] for h in handles if h.key in self.tracked]
        if not entries:
            return
        for entry in entries:
            entry.killed = True
        await anyio.to_thread.run_sync(_write_kill_files, [e.handle.outputdir for e in entries])
        by_address: dict[str, list[_Tracked]] = {}
        for entry in entries:
            by_address.setdefault(entry.address, []).append(entry)
        for address, group in by_address.items():
            try:
                await self._stop(await self._client(address, group[0].security), group)
            except (OSError, BackendError) as exc:
                log.warning("the Dask scheduler did not take the kill; the wrappers see their kill "
                            "files at their next heartbeat", error=str(exc))

    async def _stop(self, client: Client, group: list[_Tracked]) -> None:
        keys = {e.handle.native_id: e for e in group}
        processing: dict[str, list[str]] = await client.processing()
        records = await anyio.to_thread.run_sync(read_records, [e.handle.outputdir for e in group])
        futures = [e.future or Future(e.handle.native_id, client) for e in group]
        await client.cancel(futures, force=True)
        for worker, running in processing.items():
            for native in running:
                entry = keys.get(native)
                if entry is None:
                    continue
                record, _ = records.get(entry.handle.outputdir, (None, None))
                pid = record.get("wrapper_pid") if record else None
                if isinstance(pid, int) and "end" not in (record or {}):
                    try:
                        await client.run(os.kill, pid, signal.SIGTERM, workers=[worker])
                    except (OSError, KeyError) as exc:
                        log.info("the wrapper had already ended", key=entry.handle.key, error=str(exc))

    async def forget(self, handles: Sequence[Handle]) -> None:
        """Stop tracking these (sub)jobs and remove their earlier runs' status and kill files."""
        self.untrack(handle.key for handle in handles)
        await anyio.to_thread.run_sync(remove_status_files, [h.outputdir for h in handles])

    def untrack(self, keys: Iterable[str]) -> None:
        for key in keys:
            entry = self.tracked.pop(key, None)
            if entry is not None and entry.future is not None:
                entry.future.release()
                entry.future = None


def _manifests(folder: Path) -> list[Path]:
    """The manifests in ``folder``, newest first."""
    try:
        return sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    except OSError:
        return []


def _attempts(folder: Path, keys: set[str]) -> dict[str, int]:
    """The next attempt of each of ``keys`` that earlier manifests in ``folder`` hold."""
    if not folder.exists():
        return {}
    found: dict[str, int] = {}
    for manifest in _manifests(folder):
        with open(manifest, encoding="utf-8") as f:
            for line in f:
                entry = json.loads(line)
                if entry["key"] in keys:
                    # Engine submissions take even attempts; a lost task's resubmission the odd one after.
                    after = attempt_of(str(entry["dask_key"])) // 2 * 2 + 2
                    found[entry["key"]] = max(found.get(entry["key"], 0), after)
    return found


def _find_entries(folder: Path, keys: set[str]) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The newest manifest line of each of ``keys`` in ``folder``, with its manifest."""
    wanted = set(keys)
    placed: dict[str, tuple[Path, dict[str, Any]]] = {}
    for manifest in _manifests(folder):
        with open(manifest, encoding="utf-8") as f:
            for line in f:
                entry = json.loads(line)
                if entry["key"] in wanted:
                    wanted.discard(entry["key"])
                    placed[entry["key"]] = (manifest, entry)
        if not wanted:
            break
    return placed


def _write_kill_files(outputdirs: list[Path]) -> None:
    for outputdir in outputdirs:
        outputdir.mkdir(parents=True, exist_ok=True)
        (outputdir / KILL_FILE).write_text("kill\n")
