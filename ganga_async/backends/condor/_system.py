"""HTCondor's job states and ClassAds read into our statuses, and the submit description of a
cluster: no IO."""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from ...states import Status
from .._batch import BatchSystem, SubmitRequest
from ..base import BackendStatus

if TYPE_CHECKING:
    from . import Condor

__all__ = ["PROJECTION", "CondorSystem"]

_FIELDS = ("requirements", "request_cpus", "request_memory", "request_disk", "accounting_group")
"""Settings that are submit commands of the same name."""

PROJECTION = ["ClusterId", "ProcId", "JobStatus", "HoldReason", "ExitCode", "ExitBySignal", "ExitSignal",
              "JobCurrentStartDate", "CompletionDate", "EnteredCurrentStatus", "RemoveReason"]
"""The job attributes a sweep asks for."""


class CondorSystem(BatchSystem):
    """HTCondor's job states and ClassAds read into our statuses; the rest of the batch
    contract (the job wrapper's script) for the driver. It runs nothing: :class:`CondorDriver`
    talks to the schedd."""

    name = "Condor"
    task_separator = "."
    sparse_tasks = False
    default_max_array = 100_000
    states: ClassVar[Mapping[str, tuple[Status, str | None]]] = {
        "1": (Status.SUBMITTED, None),                      # Idle
        "2": (Status.RUNNING, None),                        # Running
        "3": (Status.KILLED, "removed in HTCondor (condor_rm)"),
        "4": (Status.COMPLETED, None),                      # Completed: by its exit code
        "5": (Status.HELD, "held by HTCondor"),
        "6": (Status.RUNNING, None),                        # Transferring output
        "7": (Status.RUNNING, None),                        # Suspended
    }

    def single_id(self, job: str) -> str:
        return f"{job}.0"

    def script(self, python: str, wrapper: Path, manifest: Path, array: bool) -> str:
        return (
            "#!/bin/sh\n"
            "# Written by ganga-async: runs one task of the manifest (the proc id) through the job wrapper.\n"
            f'exec {shlex.join([python, "-I", "-S", str(wrapper), str(manifest)])} "${{1:-0}}"\n'
        )

    def read_ad(self, ad: Mapping[str, Any]) -> tuple[str, BackendStatus] | None:
        """One job ClassAd (from the queue or the history) as ``(cluster.proc, status)``."""
        try:
            native = f"{int(ad['ClusterId'])}.{int(ad['ProcId'])}"
            state = str(int(ad["JobStatus"]))
        except (KeyError, TypeError, ValueError):
            return None
        started = _time(ad.get("JobCurrentStartDate"))
        observed = self.observe(state, started=started)
        status = observed.status
        if status is Status.HELD:
            why = str(ad.get("HoldReason") or "").strip()
            return native, dataclasses.replace(
                observed, reason=f"held by HTCondor: {why}" if why else "held by HTCondor")
        if status is Status.COMPLETED:
            code = _exitcode(ad)
            observed = BackendStatus(Status.COMPLETED if code == 0 else Status.FAILED, exitcode=code,
                                     started=started, ended=_time(ad.get("CompletionDate")))
        elif status is Status.KILLED:
            why = str(ad.get("RemoveReason") or "").strip()
            observed = dataclasses.replace(
                observed, ended=_time(ad.get("EnteredCurrentStatus")),
                reason=f"removed in HTCondor: {why}" if why else observed.reason)
        return native, observed

    def read_ads(self, ads: Sequence[Mapping[str, Any]]) -> dict[str, BackendStatus]:
        found: dict[str, BackendStatus] = {}
        for ad in ads:
            read = self.read_ad(ad)
            if read is not None:
                found[read[0]] = read[1]
        return found

    def submit_description(self, request: SubmitRequest) -> dict[str, str]:
        """The submit description of ``request``: the engine's commands, then the user's."""
        settings = cast("Condor", request.backend)
        log_name = request.log.name.replace("%a", "$(ProcId)")
        description = {
            "universe": settings.universe,
            "executable": str(request.script),
            "transfer_executable": "false",
            "arguments": "$(ProcId)",
            "initialdir": str(request.directory),
            "output": log_name.removesuffix(".log") + ".out",
            "error": log_name.removesuffix(".log") + ".err",
            "batch_name": request.name,
        }
        for field in _FIELDS:
            value = getattr(settings, field)
            if value:
                description[field] = str(value)
        if settings.max_running:
            description["max_materialize"] = str(settings.max_running)
        description.update(settings.extra_submit)
        return description


def _time(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _exitcode(ad: Mapping[str, Any]) -> int | None:
    """The exit code of a completed proc (negative: the signal that ended it)."""
    if ad.get("ExitBySignal") is True:
        try:
            return -int(ad["ExitSignal"])
        except (KeyError, TypeError, ValueError):
            return None
    try:
        return int(ad["ExitCode"])
    except (KeyError, TypeError, ValueError):
        return None
