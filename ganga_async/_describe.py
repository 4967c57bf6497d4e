"""Jobs and credentials as plain dicts, for JSON output: what ``ganga-async show`` and
``credentials`` print and the service reports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model.job import Job

if TYPE_CHECKING:
    from .credentials.base import CredentialInfo
    from .credentials.store import CredentialStore

__all__ = ["credential_row", "credential_rows", "describe", "summarise"]


def describe(job: Job) -> dict[str, Any]:
    """Everything ``show`` prints about a job or subjob."""
    master = job.master
    info: dict[str, Any] = {
        "fqid": job.fqid,
        "status": str(job.status),
        "master": master.fqid if master is not None else None,
        "name": job.name,
        "comment": job.comment,
        **job.spec(),  # a subjob's splitter is None
        "backend_id": job.backend_id,
        "exitcode": job.exitcode,
        "reason": job.reason,
        "submit_counter": job.info.submit_counter,
        "time": {status: stamp.isoformat(" ", "seconds")
                 for status, stamp in job.time.timestamps.items()},
        "inputdir": str(Path(job.inputdir)),
        "outputdir": str(Path(job.outputdir)),
        "workdir": str(job.workdir),
    }
    attempts = job.attempts
    if len(attempts) > 1:
        info["attempts"] = [attempt._asdict() for attempt in attempts]
    results = job.postprocessor_results
    if results:
        info["postprocessor_results"] = [result._asdict() for result in results]
    counts = job.subjobs.counts()
    if counts:
        info["subjobs"] = len(job.subjobs)
        info["subjob_counts"] = counts
    return info


def summarise(job: Job, elapsed: float | None = None) -> dict[str, Any]:
    """A final (or any) job in brief: id, status, whether it (or a subjob) ever reached its
    backend, subjob counts or exit code, where outputs are."""
    info: dict[str, Any] = {"id": job.id if job.master is None else job.fqid,
                            "status": str(job.status),
                            "reached_backend": "submitted" in job.time}
    if elapsed is not None:
        info["elapsed"] = round(elapsed, 3)
    counts = job.subjobs.counts()
    if counts:
        info["subjobs"] = len(job.subjobs)
        info["subjob_counts"] = counts
        info["outputs"] = str(Path(job.outputdir).parent / "<subjob>")
    else:
        info.update(exitcode=job.exitcode, reason=job.reason, outputs=str(Path(job.outputdir)))
    return info


def credential_row(info: CredentialInfo, store: CredentialStore) -> dict[str, Any]:
    """A credential's state and the backends it is valid for; never what it contains."""
    return {**info.to_dict(), "valid_for": store.valid_for(info)}


async def credential_rows(store: CredentialStore, type_name: str | None = None) -> list[dict[str, Any]]:
    """One :func:`credential_row` per credential ``store`` finds (configured defaults that are
    missing included), or per one of ``type_name`` only: ``credentials --json``."""
    rows = []
    for credential in await store.get_credentials(include_missing=True):
        if type_name is None or credential.plugin_name == type_name:
            rows.append(credential_row(await credential.info(), store))
    return rows
