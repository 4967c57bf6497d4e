"""The retry policy: which failed (sub)jobs are submitted again by themselves, when, and when a
master gives up; and the record of every attempt.

``Retry(max_attempts=3, backoff="30s..10m", on=["failed", "killed-by-backend", "checker"],
give_up_fraction=0.25)`` says it precisely; Ganga's ``do_auto_resubmit = True`` is
``Retry(max_attempts=1 + [PollThread] MaxNumResubmits, backoff="0s", on=["failed"],
give_up_fraction=[PollThread] MaxFracForResubmit)``.

Each failure has a kind (:func:`failure_kind`), and only the kinds in ``on`` are retried:

``failed``            the program ended with a non-zero exit code (or its outputs were lost)
``killed-by-backend`` it was ended by a signal nobody here asked for (a batch limit, the OOM killer)
``checker``           a checker postprocessor failed its outputs
``lost``              its end cannot be known (an engine or runner died while it ran): retrying
                      may run it twice, so only when asked for

A program that could not be started (a missing executable: ``cannot start``, exit code 126 or
127) and a (sub)job killed on request are never retried. The ``n``-th retry waits a random time
between half and all of ``min * 2**(n-1)`` (at most ``max``): exponential backoff with jitter,
so that a thousand subjobs failing together do not all come back at once. A master gives up
(retries nothing more) once ``give_up_fraction`` of its subjobs have failed for good (Ganga's
``MaxFracForResubmit``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

from .._duration import parse_duration
from .._exceptions import JobSpecError
from ..states import Status

__all__ = ["Retry", "Attempt", "KINDS", "failure_kind"]

_UNKNOWN_END = ("may have run", "cannot be known")
"""What the reasons of (sub)jobs whose end is not known say (see the backends)."""

KINDS = ("failed", "killed-by-backend", "checker", "lost")
"""The kinds of failure a policy may retry."""


class Attempt(NamedTuple):
    """One run of a (sub)job: its number (1 for the first submission), how it ended, the
    backend's id, exit code, reason and when it was submitted, started and ended (0: never)."""

    n: int
    status: str
    backend_id: str | None
    exitcode: int | None
    reason: str | None
    t_submitted: float
    t_running: float
    t_final: float


def failure_kind(end: Status, exitcode: int | None, reason: str | None, *,
                 checker: bool = False) -> str | None:
    """The kind of a failure (one of :data:`KINDS`), or None when it is not worth retrying."""
    if checker:
        return "checker"
    if end is not Status.FAILED:
        return None
    if exitcode in (126, 127) or (reason or "").startswith("cannot start"):
        return None
    if exitcode is None:
        unknown = any(words in (reason or "") for words in _UNKNOWN_END)
        return "lost" if unknown else "failed"
    return "killed-by-backend" if exitcode < 0 else "failed"


@dataclasses.dataclass(frozen=True)
class Retry:
    """A job's retry policy (see the module's documentation). Every field is checked when it
    is made; a mistake is a JobSpecError naming ``retry.<field>``."""

    max_attempts: int = 3
    backoff: str = "30s..10m"
    on: tuple[str, ...] = ("failed", "killed-by-backend", "checker")
    give_up_fraction: float = 0.25

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or (
                self.max_attempts < 1):
            raise JobSpecError("retry.max_attempts",
                               f"{self.max_attempts!r} must be a whole number, 1 or more")
        self.bounds()
        on = (self.on,) if isinstance(self.on, str) else tuple(self.on)
        for kind in on:
            if kind not in KINDS:
                raise JobSpecError("retry.on", f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
        object.__setattr__(self, "on", on)
        fraction = self.give_up_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
            raise JobSpecError("retry.give_up_fraction", f"{fraction!r} must be over 0 and at most 1")

    def bounds(self) -> tuple[float, float]:
        """The shortest and longest wait before a retry, in seconds."""
        low, _, high = str(self.backoff).partition("..")
        try:
            shortest = parse_duration(low, "retry.backoff")
            longest = parse_duration(high, "retry.backoff") if high else shortest
        except ValueError as exc:
            raise JobSpecError("retry.backoff", f"{exc}; write it as \"30s..10m\" (shortest.."
                               "longest) or one duration") from None
        if longest < shortest:
            raise JobSpecError("retry.backoff", f"{self.backoff!r}: the longest wait is shorter "
                               "than the shortest")
        return shortest, longest

    def delay(self, retry: int, jitter: float) -> float:
        """Seconds before retry number ``retry`` (1 for the first), ``jitter`` in [0, 1)."""
        shortest, longest = self.bounds()
        ceiling = min(longest, shortest * 2.0 ** (retry - 1))
        return float(ceiling * (0.5 + 0.5 * jitter))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["on"] = list(self.on)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Retry:
        """A policy from its stored form or a job file's ``[retry]`` table."""
        if not isinstance(data, Mapping):
            raise JobSpecError("retry", 'must be a table: [retry] with max_attempts = 3, '
                               'backoff = "30s..10m", ...')
        valid = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in valid:
                raise JobSpecError(f"retry.{key}", f"unknown field; valid fields: {', '.join(valid)}")
        return cls(**data)

    @classmethod
    def ganga(cls, max_resubmits: int, max_fraction: float) -> Retry:
        """Ganga's ``do_auto_resubmit``: ``[PollThread] MaxNumResubmits`` retries of plain
        failures, at once, until ``MaxFracForResubmit`` of the subjobs failed."""
        return cls(max_attempts=1 + max_resubmits, backoff="0s", on=("failed",),
                   give_up_fraction=max_fraction)
