"""The driver every batch backend shares: submission in arrays, sweeps, kills, recovery.

Sweeps: the driver tracks the jobs it submitted and those :meth:`BatchDriver.track` handed
over from an earlier engine. One :meth:`BatchDriver.sweep` is one queue query for them all
(plus one history query for the jobs that left the queue) and a read of the status files of
the jobs that ended or went missing; the engine calls it on its schedule, within
:meth:`BatchDriver.poll_bounds` (``poll_min``, ``poll_max``).

Faults: a command that times out or a batch system that cannot be reached
(:class:`~ganga_async.BackendUnavailableError`) makes a sweep fail, to be tried again by the
engine, and a submission retry for ``submit_retry`` seconds; a submission that timed out is
first looked for by its unique job name, so it is never made twice. A job the batch system no
longer knows is decided by its status file: ended, or alive while its heartbeat is fresh;
otherwise it fails after ``forget_after`` seconds with a reason, never staying active forever.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from ..._exceptions import BackendError, BackendUnavailableError
from ..._log import get_logger
from ..._resources import shipped
from ..._workspace import job_dir_of
from ...states import Status
from ..base import BackendStatus, DriverContext, Handle, SubmitUnit, Tracked, TrackingDriver
from .status import read_records, remove_status_files, resolve
from .system import (
    ACTIVE_NATIVE,
    BatchSystem,
    CommandResult,
    CommandRunner,
    CommandSystem,
    Runner,
    SubmitRequest,
    compact_ranges,
)

__all__ = ["BatchDriver", "install_wrapper", "manifest_entry", "write_manifest"]

_QUEUED = BackendStatus(Status.SUBMITTED)

log = get_logger(__name__)


class _Tracked(Tracked):
    """A (sub)job the driver watches: also its batch job (the array of a task), since when the
    batch system has not known it, and whether its native id was found here (after an earlier
    engine's crash) and is still to be told to the engine."""

    __slots__ = ("job", "missing_since", "found")

    def __init__(self, handle: Handle, job: str, last: BackendStatus | None = None, *,
                 found: bool = False) -> None:
        super().__init__(handle, last)
        self.job = job
        self.missing_since: float | None = None
        self.found = found


class BatchDriver(TrackingDriver[_Tracked]):
    """The runtime of a batch backend: one instance per engine, for all its jobs.

    ``section`` names the configuration section with the backend's options (``python``,
    ``poll_min``, ``poll_max``, ``command_timeout``, ``max_commands``, ``submit_retry``,
    ``heartbeat``, ``forget_after``). ``runner`` replaces the real command runner in unit tests.
    """

    def __init__(self, context: DriverContext, system: BatchSystem, section: str,
                 runner: Runner | None = None) -> None:
        super().__init__(context)
        self._system = system
        self._section = section
        options = context.config[section]
        self.runner: Runner = runner if runner is not None else CommandRunner(options["max_commands"])
        self._sweep_lock = anyio.Lock()
        self._max_array: int | None = None
        self._no_history = False
        self._wrappers: set[Path] = set()

    @property
    def _cli(self) -> CommandSystem:
        """The system's command builders; a driver for a system without command-line tools
        replaces every method that uses them."""
        if not isinstance(self._system, CommandSystem):
            raise TypeError(f"{type(self).__name__} must do its own IO: {self._system.name} has no commands")
        return self._system

    def _option(self, name: str) -> Any:
        return self._context.config[self._section][name]

    async def _run(self, argv: Sequence[str]) -> CommandResult:
        return await self.runner(argv, float(self._option("command_timeout")))

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Nothing runs in the background: the engine calls :meth:`sweep`."""
        task_status.started()

    def poll_bounds(self) -> tuple[float, float]:
        """``poll_min`` and ``poll_max`` of the backend's configuration section."""
        return float(self._option("poll_min")), float(self._option("poll_max"))

    # -- watching -------------------------------------------------------------------------

    async def sweep(self) -> int:
        async with self._sweep_lock:
            return await self.publish_sweep(await self._observe(list(self.tracked.values())))

    async def _observe(self, entries: list[_Tracked]) -> dict[str, BackendStatus]:
        """What changed for ``entries`` (those still tracked), from one query of the queue and,
        for the jobs that left it, one of the history and their status files."""
        entries = [e for e in entries if e.job and self.tracked.get(e.handle.key) is e]
        if not entries:
            return {}
        seen = await self._query(sorted({e.job for e in entries}))
        missing = [e for e in entries if e.handle.native_id not in seen]
        if missing:
            seen.update(await self._history(sorted({e.job for e in missing})))
        now = time.time()
        to_read = [e for e in entries if seen.get(e.handle.native_id) is None
                   or seen[e.handle.native_id].status not in ACTIVE_NATIVE]
        records = (await anyio.to_thread.run_sync(read_records, [e.handle.outputdir for e in to_read])
                   if to_read else {})
        forget_after = float(self._option("forget_after"))
        heartbeat_timeout = 3 * float(self._option("heartbeat"))
        news: dict[str, BackendStatus] = {}
        for entry in entries:
            native = entry.handle.native_id
            observed = seen.get(native)
            if observed is None:
                entry.missing_since = entry.missing_since or now
            else:
                entry.missing_since = None
            record, heartbeat = records.get(entry.handle.outputdir, (None, None))
            status = resolve(native, observed, record, heartbeat, now=now,
                             missing_since=entry.missing_since or now, forget_after=forget_after,
                             heartbeat_timeout=heartbeat_timeout)
            if status is None:
                if not entry.found:
                    continue
                status = _QUEUED
            if status.status in (Status.FAILED, Status.KILLED) and entry.killed:
                status = dataclasses.replace(status, status=Status.KILLED, reason="killed")
            if entry.found:
                status = dataclasses.replace(status, native_id=native)
                entry.found = False
            news[entry.handle.key] = status
        return news

    async def _query(self, job_ids: list[str]) -> dict[str, BackendStatus]:
        found: dict[str, BackendStatus] = {}
        for start in range(0, len(job_ids), 500):
            result = await self._run(self._cli.query_argv(job_ids[start:start + 500]))
            if result.returncode != 0:
                if self._cli.is_unknown_job(result):
                    continue
                raise self._error(result)
            found.update(self._cli.parse_query(result))
        return found

    async def _history(self, job_ids: list[str]) -> dict[str, BackendStatus]:
        if self._no_history:
            return {}
        found: dict[str, BackendStatus] = {}
        for start in range(0, len(job_ids), 500):
            argv = self._cli.history_argv(job_ids[start:start + 500])
            if argv is None:
                return found
            result = await self._run(argv)
            if result.returncode != 0:
                if self._cli.has_no_history(result):
                    log.info("no accounting: jobs that leave the queue are decided by their status files",
                             backend=self._system.name)
                    self._no_history = True
                    return found
                raise self._error(result)
            found.update(self._cli.parse_history(result))
        return found

    def _error(self, result: CommandResult) -> BackendError:
        if self._cli.is_transient(result):
            return BackendUnavailableError(result.message)
        return BackendError(result.message)

    # -- the contract ---------------------------------------------------------------------

    async def track(self, handles: Sequence[Handle]) -> None:
        """Watch these (sub)jobs from now on. One without a native id is looked for (see
        :meth:`_locate`): found, its id comes with its first news; not found, it is ``NEW``."""
        fresh = [h for h in handles if h.key not in self.tracked]
        if not fresh:
            return
        located = await self._locate([h for h in fresh if not h.native_id])
        news: dict[str, BackendStatus] = {}
        for handle in fresh:
            if handle.key in self.tracked:  # submitted again while the lookup ran
                continue
            if handle.native_id:
                self.tracked[handle.key] = self._entry(handle)
            elif handle.key in located:
                handle = dataclasses.replace(handle, native_id=located[handle.key])
                self.tracked[handle.key] = self._entry(handle, found=True)
            else:
                news[handle.key] = BackendStatus(Status.NEW, reason="never submitted")
        self.publish(news)

    def _entry(self, handle: Handle, last: BackendStatus | None = None, *, found: bool = False) -> _Tracked:
        return _Tracked(handle, self._system.job_of(handle.native_id), last, found=found)

    def _targets(self, handles: Sequence[Handle]) -> list[str]:
        """The native ids to act on for ``handles``: a whole array (cluster) when every one of
        its tasks the driver tracks is among them, else the tasks themselves."""
        keys = {h.key for h in handles if h.native_id}
        natives: list[str] = []
        by_job: dict[str, list[str]] = {}
        for handle in handles:
            if handle.native_id:
                by_job.setdefault(self._system.job_of(handle.native_id), []).append(handle.native_id)
        for job, ids in by_job.items():
            others = [e for e in self.tracked.values() if e.job == job and e.handle.key not in keys]
            natives.extend([job] if self._system.task_separator in ids[0] and not others else ids)
        return natives

    async def kill(self, handles: Sequence[Handle]) -> None:
        natives = self._targets(handles)
        if not natives:
            return
        for handle in handles:
            entry = self.tracked.get(handle.key)
            if entry is not None and handle.native_id:
                entry.killed = True
        await self._cancel(natives)

    async def _cancel(self, natives: list[str]) -> None:
        """Cancel these arrays or tasks in one command."""
        result = await self._run(self._cli.kill_argv(natives))
        if result.returncode != 0:
            if self._cli.is_transient(result):
                raise BackendUnavailableError(result.message)
            log.warning("cancel reported a problem", backend=self._system.name, error=result.message)

    async def forget(self, handles: Sequence[Handle]) -> None:
        """Stop tracking these (sub)jobs and remove the status files the job wrapper wrote in
        their earlier runs."""
        self.untrack(handle.key for handle in handles)
        await anyio.to_thread.run_sync(remove_status_files, [h.outputdir for h in handles])

    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        results: list[str | BaseException] = [BackendError("not submitted")] * len(units)
        groups: dict[str, list[int]] = {}
        settings: dict[int, str] = {}
        for position, unit in enumerate(units):
            text = settings.get(id(unit.backend))
            if text is None:
                text = settings[id(unit.backend)] = json.dumps(unit.backend.to_dict(), sort_keys=True)
            groups.setdefault(f"{unit.job_id}|{unit.index is None}|{text}", []).append(position)
        for positions in groups.values():
            chosen = [units[p] for p in positions]
            try:
                ids = await self._submit_group(chosen)
            except BackendError as exc:
                log.warning("submission refused", backend=self._system.name, error=str(exc))
                for position in positions:
                    results[position] = exc
                continue
            for position, unit, native in zip(positions, chosen, ids, strict=True):
                results[position] = native
                self.tracked[unit.key] = self._entry(Handle(unit.key, native, unit.outputdir), _QUEUED)
        return results

    # -- submission -----------------------------------------------------------------------

    async def max_array(self) -> int:
        """How many tasks one array may hold, read from the batch system once (the system's
        default when it cannot tell)."""
        if self._max_array is None:
            try:
                result = await self._run(self._cli.config_argv())
                self._max_array = self._cli.parse_max_array(result)
            except (BackendError, ValueError) as exc:
                log.warning("cannot read the array size limit; using the default",
                            backend=self._system.name, error=str(exc))
                self._max_array = self._system.default_max_array
        return self._max_array

    async def _submit_group(self, units: list[SubmitUnit]) -> list[str]:
        """Submit units that share their job and settings: one job, or as few arrays as fit."""
        folder = job_dir_of(units[0].outputdir) / self._system.name.lower()
        wrapper = await self._ensure_wrapper(folder)
        system = self._system
        if units[0].index is None:
            return [system.single_id(await self._submit_array(folder, wrapper, units, None))]
        limit = await self.max_array()
        indices = [u.index for u in units if u.index is not None]
        if max(indices) < limit and (sorted(indices) == indices if system.sparse_tasks
                                     else indices == list(range(len(indices)))):
            native = await self._submit_array(folder, wrapper, units, indices)
            return [system.task_id(native, i) for i in indices]
        ids: list[str] = []
        for start in range(0, len(units), limit):
            chunk = units[start:start + limit]
            native = await self._submit_array(folder, wrapper, chunk, list(range(len(chunk))))
            ids += [system.task_id(native, t) for t in range(len(chunk))]
        return ids

    async def _ensure_wrapper(self, folder: Path) -> Path:
        target = folder / "job_wrapper.py"
        if target not in self._wrappers:
            await anyio.to_thread.run_sync(install_wrapper, folder, target)
            self._wrappers.add(target)
        return target

    async def _submit_array(self, folder: Path, wrapper: Path, units: list[SubmitUnit],
                            tasks: list[int] | None) -> str:
        backend = units[0].backend
        stem = f"{units[0].job_id}-{secrets.token_hex(4)}"
        manifest = folder / f"{stem}.jsonl"
        script = folder / f"{stem}.sh"
        heartbeat = float(self._option("heartbeat"))
        entries = [manifest_entry(unit, task, heartbeat)
                   for unit, task in zip(units, tasks if tasks is not None else [0], strict=True)]
        text = self._system.script(str(self._option("python")), wrapper, manifest, tasks is not None)
        await anyio.to_thread.run_sync(_write_submission, manifest, entries, script, text)
        array = compact_ranges(tasks) if tasks is not None else None
        request = SubmitRequest(name=f"ga.{stem}", script=script,
                                log=folder / (f"{stem}_%a.log" if tasks is not None else f"{stem}.log"),
                                directory=folder, array=array, backend=backend)
        native = await self._submit_retrying(request)
        await anyio.Path(folder / f"{stem}.id").write_text(native + "\n")
        log.info("submitted", backend=self._system.name, native_id=native, tasks=len(units))
        return native

    async def _submit_retrying(self, request: SubmitRequest) -> str:
        """Submit, retrying while the batch system cannot answer, for up to ``submit_retry``
        seconds. A submission whose reply was lost may have been made: it is looked for by its
        unique name, and made again only once a search answered that it is not there, never
        while searches fail, so no job is ever submitted twice."""
        deadline = time.monotonic() + float(self._option("submit_retry"))
        delay = 1.0
        unsure = False
        while True:
            if unsure:
                try:
                    found = await self._find(request.name)
                except BackendUnavailableError as exc:
                    problem = f"the reply to a submission was lost, and looking for it failed: {exc}"
                else:
                    if found is not None:
                        return found
                    unsure = False
            if not unsure:
                try:
                    native, problem = await self._submit_once(request)
                except BackendUnavailableError as exc:
                    problem = str(exc)
                    unsure = True
                    continue  # look for it at once: it may have been made
                if native is not None:
                    return native
            if time.monotonic() + delay > deadline:
                maybe = (f"; it may have been made: look for jobs named {request.name}"
                         if unsure else "")
                raise BackendUnavailableError(
                    f"gave up after {self._option('submit_retry'):g} s: {problem}{maybe}")
            log.warning("submission retried", backend=self._system.name, error=problem, delay=delay)
            await anyio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _submit_once(self, request: SubmitRequest) -> tuple[str | None, str]:
        """One attempt: (the new id, "") or (None, why) when the batch system cannot answer now
        and surely did not make it. Raises :class:`~ganga_async.BackendError` when it refused
        the submission, :class:`~ganga_async.BackendUnavailableError` when it may have made it
        (no answer in time)."""
        result = await self._run(self._cli.submit_argv(request))
        if result.returncode == 0:
            return self._cli.parse_submit(result), ""
        if not self._cli.is_transient(result):
            raise BackendError(result.message)
        return None, result.message

    async def _find(self, name: str) -> str | None:
        """The id of the job called ``name``, from the queue or the accounting."""
        for argv in self._cli.find_argv(name):
            result = await self._run(argv)
            if result.returncode == 0:
                found = self._cli.parse_find(result)
                if found:
                    return found
            elif self._cli.is_transient(result):
                raise BackendUnavailableError(result.message)
        return None

    async def _locate(self, handles: list[Handle]) -> dict[str, str]:
        """The native ids of (sub)jobs an earlier engine may have submitted without recording them.

        The wrapper's status file names one if the job ran; otherwise the manifests written
        before each submission say which submission held it, and that submission's id file
        (written right after it) or a search by its job name gives the id. Each job's manifests
        are read once and each submission is looked up once, however many of its tasks are
        asked for. A key missing from the result was never submitted.
        """
        if not handles:
            return {}
        records = await anyio.to_thread.run_sync(read_records, [h.outputdir for h in handles])
        found: dict[str, str] = {}
        by_folder: dict[Path, set[str]] = {}
        for handle in handles:
            record, _ = records[handle.outputdir]
            if record and record.get("batch_id"):
                found[handle.key] = str(record["batch_id"])
                continue
            jobdir = job_dir_of(handle.outputdir)
            by_folder.setdefault(jobdir / self._system.name.lower(), set()).add(handle.key)
        for folder, keys in by_folder.items():
            placed = await anyio.to_thread.run_sync(_find_in_manifests, folder, keys)
            submissions: dict[str, str | None] = {}
            for key, (stem, task) in placed.items():
                if stem not in submissions:
                    submissions[stem] = await self._submission_id(folder, stem)
                native = submissions[stem]
                if native:
                    # Subjobs always go in arrays, unsplit jobs never.
                    found[key] = (self._system.task_id(native, task) if "." in key
                                  else self._system.single_id(native))
        return found

    async def _submission_id(self, folder: Path, stem: str) -> str | None:
        """The id of the submission ``stem``, from its id file or else by its job name."""
        id_file = anyio.Path(folder / f"{stem}.id")
        try:
            native = (await id_file.read_text()).strip()
        except FileNotFoundError:
            native = ""
        if not native:
            native = await self._find(f"ga.{stem}") or ""
            if native:
                await id_file.write_text(native + "\n")
        return native or None



def manifest_entry(unit: SubmitUnit, task: int, heartbeat: float) -> dict[str, Any]:
    """The manifest line of ``unit`` as task ``task`` (the format of ``workers/job_wrapper.py``)."""
    return {"task": task, "key": unit.key, "argv": unit.command.argv, "env": unit.command.env,
            "workdir": str(unit.workdir), "outputdir": str(unit.outputdir), "inputs": unit.inputfiles,
            "outputs": unit.outputfiles, "heartbeat": heartbeat}


def install_wrapper(folder: Path, target: Path) -> None:
    """Copy the shipped job wrapper to ``target`` in ``folder``, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    source = shipped("workers", "job_wrapper.py")
    tmp = target.with_suffix(".tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _write_submission(manifest: Path, entries: list[dict[str, Any]], script: Path, text: str) -> None:
    """Write the manifest and the batch script in full before anything is submitted."""
    write_manifest(manifest, entries)
    script.write_text(text)
    script.chmod(0o755)


def write_manifest(manifest: Path, entries: list[dict[str, Any]]) -> None:
    """Write a JSON Lines manifest in full (a temporary file renamed into place)."""
    encode = json.JSONEncoder(separators=(",", ":")).encode
    tmp = manifest.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(encode(entry) + "\n" for entry in entries)
    os.replace(tmp, manifest)


def _find_in_manifests(folder: Path, keys: set[str]) -> dict[str, tuple[str, int]]:
    """(stem, task) of the newest manifest in ``folder`` that holds each of ``keys``."""
    try:
        manifests = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return {}
    wanted = set(keys)
    placed: dict[str, tuple[str, int]] = {}
    for manifest in manifests:
        with open(manifest, encoding="utf-8") as f:
            for line in f:
                entry = json.loads(line)
                if entry["key"] in wanted:
                    wanted.discard(entry["key"])
                    placed[entry["key"]] = (manifest.stem, int(entry["task"]))
                    if not wanted:
                        return placed
    return placed
