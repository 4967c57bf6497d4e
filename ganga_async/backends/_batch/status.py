"""What a batch job's status is: the job wrapper's status file, weighed against the batch
system's view (:func:`resolve`)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...states import Status
from ..base import BackendStatus, final_status
from .system import ACTIVE_NATIVE

__all__ = ["HEARTBEAT_FILE", "KILL_FILE", "STATUS_FILE", "read_records", "remove_status_files", "resolve"]

STATUS_FILE = "__jobstatus__.json"
"""The job wrapper's record in a (sub)job's outputdir: pid, start, end, exit code, ``killed``
and ``error`` (the format is described in ``workers/job_wrapper.py``)."""

HEARTBEAT_FILE = "__heartbeat__"
"""Written by the job wrapper in the outputdir while the application runs: the last heartbeat."""

KILL_FILE = "__kill__"
"""Written by a driver in the outputdir to stop a run: the job wrapper looks for it before the
application starts and at every heartbeat."""


def _final_from_record(record: Mapping[str, Any]) -> BackendStatus:
    """A final status from a wrapper's record that has ``end``."""
    code = record.get("exitcode")
    error = record.get("error")
    return final_status(code if isinstance(code, int) else None, bool(record.get("killed")),
                        str(error) if error else None, started=_num(record.get("start")),
                        ended=_num(record.get("end")))


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def resolve(
    native_id: str,
    seen: BackendStatus | None,
    record: Mapping[str, Any] | None,
    heartbeat: float | None,
    *,
    now: float,
    missing_since: float,
    forget_after: float,
    heartbeat_timeout: float,
) -> BackendStatus | None:
    """Decide one job's status from the batch system's view and the wrapper's record.

    The batch system says whether the job is queued, running or over and why it ended (a
    cancellation, a time limit, a node failure); the wrapper's status file has the last word on
    the exit code. A job the batch system no longer knows (``seen`` is None) is decided by the
    record alone: ended, or running while ``heartbeat`` is younger than ``heartbeat_timeout``;
    failing that it fails once it has been missing for ``forget_after`` seconds. None: no
    decision yet.
    """
    ended = record is not None and "end" in record
    if seen is not None and seen.status in ACTIVE_NATIVE:
        return BackendStatus(seen.status, reason=seen.reason, started=seen.started)
    if seen is not None and seen.status is not Status.UNKNOWN:
        if not ended:
            code = seen.exitcode
            reason = seen.reason
            if seen.status is Status.FAILED and reason is None:
                reason = final_status(code, False, None).reason or "failed with exit code 0"
            if seen.status is Status.KILLED and record is None:
                reason = f"{reason} before it started" if reason else "cancelled before it started"
            return BackendStatus(seen.status, exitcode=code, reason=reason, started=seen.started,
                                 ended=seen.ended)
        assert record is not None
        mine = _final_from_record(record)
        if seen.status is Status.COMPLETED or (seen.status is Status.FAILED and seen.reason is None):
            return mine
        return BackendStatus(seen.status, exitcode=mine.exitcode, reason=seen.reason or mine.reason,
                             started=mine.started, ended=mine.ended)
    if ended:
        assert record is not None
        return _final_from_record(record)
    if record is not None and heartbeat is not None and now - heartbeat < heartbeat_timeout:
        return BackendStatus(Status.RUNNING, started=_num(record.get("start")))
    if now - missing_since < forget_after:
        return None
    if record is not None:
        last = heartbeat or _num(record.get("start"))
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else "?"
        return BackendStatus(
            Status.FAILED, started=_num(record.get("start")),
            reason=f"the batch system has no record of {native_id} any more and its job wrapper "
                   f"has been silent since {when}; its exit status cannot be known")
    return BackendStatus(
        Status.FAILED, reason=f"the batch system has no record of {native_id} and it never started")


def read_records(outputdirs: list[Path]) -> dict[Path, tuple[dict[str, Any] | None, float | None]]:
    """Each outputdir's wrapper record (None: none yet) and last heartbeat."""
    found: dict[Path, tuple[dict[str, Any] | None, float | None]] = {}
    for outputdir in outputdirs:
        record: dict[str, Any] | None
        try:
            with open(outputdir / STATUS_FILE, encoding="utf-8") as f:
                loaded = json.load(f)
            record = loaded if isinstance(loaded, dict) else None
        except (OSError, ValueError):
            record = None
        heartbeat = None
        if record is not None and "end" not in record:
            try:
                heartbeat = (outputdir / HEARTBEAT_FILE).stat().st_mtime
            except OSError:
                heartbeat = None
        found[outputdir] = (record, heartbeat)
    return found



def remove_status_files(outputdirs: list[Path]) -> None:
    """Remove what the job wrapper and a kill left of earlier runs (status and kill files)."""
    for outputdir in outputdirs:
        for name in (STATUS_FILE, KILL_FILE):
            try:
                os.unlink(outputdir / name)
            except FileNotFoundError:
                pass
