"""The repository reads behind the dashboard that no other face needs.

The list of jobs shows when each master was submitted and how long it ran; their status times
are in the ``times`` column of ``jobs``, read here for every master in one query without
decoding any job description or touching a subjob.
"""

from __future__ import annotations

import json

from .repository import Repository

__all__ = ["master_times"]


async def master_times(repository: Repository) -> dict[int, dict[str, float]]:
    """Each master's status times (``{"submitting": epoch, "completed": epoch, ...}``)."""
    async with repository.db.execute("SELECT id, times FROM jobs") as cur:
        return {job_id: json.loads(times or "{}") for job_id, times in await cur.fetchall()}
