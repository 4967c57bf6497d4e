"""Submission tokens: a client's name for one submission, so that repeating it (a retry after a
lost reply, a restarted daemon) returns the job the first one made instead of making another.

A token is stored with its job in the transaction that accepts the job (see
:meth:`~ganga_async.persistence.repository.Repository.queue_token`), so after any crash either
the job was accepted and the token finds it, or neither happened and the repeat submits anew.
Repeats that arrive while the first is under way wait for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from .._exceptions import JobNotFoundError, JobSpecError
from ..model.job import Job
from ..persistence.repository import Repository
from ..states import Status

__all__ = ["MAX_TOKEN", "SubmitTokens", "check_token"]

MAX_TOKEN = 200
"""The longest token, in characters."""


def check_token(token: object) -> str:
    """``token`` if it is a usable submission token, else a one-line JobSpecError."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN or not token.isprintable():
        raise JobSpecError("token", f"{token!r} is not a submission token: give a string of 1 to "
                           f"{MAX_TOKEN} printable characters, the same for every repeat of one "
                           "submission (e.g. a uuid)")
    return token


class SubmitTokens:
    """The tokens of one engine's submissions: the stored ones, and those under way."""

    def __init__(self, repository: Repository, get: Callable[[int], Awaitable[Job]]) -> None:
        self._repository = repository
        self._get = get
        self._busy: dict[str, anyio.Event] = {}

    async def once(self, token: object, submit: Callable[[str], Awaitable[Job]]) -> Job:
        """The job submitted with ``token`` if there is one, else ``await submit(token)``."""
        token = check_token(token)
        while (busy := self._busy.get(token)) is not None:
            await busy.wait()
        self._busy[token] = done = anyio.Event()  # before any await: one look-up at a time
        try:
            job_id = await self._repository.token_job(token)
            if job_id is not None:
                try:
                    found = await self._get(job_id)
                except JobNotFoundError:
                    raise JobNotFoundError(
                        f"job {job_id}, which submission token {token!r} made, has been removed; "
                        "submit with a new token to run it again") from None
                if found.status is not Status.NEW:
                    return found
            return await submit(token)
        finally:
            del self._busy[token]
            done.set()
