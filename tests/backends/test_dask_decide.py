"""The Dask driver's decision from a scheduler state and the job wrapper's record (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from _dask_helpers import require_distributed

from ganga_async import Status

require_distributed()

from ganga_async.backends.dask._driver import LOST, decide  # noqa: E402

NOW = 1_000.0


def at(state: str | None, record: dict[str, Any] | None = None, heartbeat: float | None = None,
       silent_since: float = NOW, error: str | None = None) -> Any:
    return decide("ganga-3.1-0", state, record, heartbeat, now=NOW, silent_since=silent_since,
                  forget_after=60.0, heartbeat_timeout=30.0, error=error)


@pytest.mark.parametrize("state", ["released", "waiting", "queued", "no-worker", "processing"])
def test_a_task_waiting_or_assigned_without_a_record_is_submitted(state: str) -> None:
    assert at(state).status is Status.SUBMITTED


@pytest.mark.parametrize("state", [None, "queued", "processing", "memory", "erred"])
def test_an_ended_record_decides_whatever_the_scheduler_says(state: str | None) -> None:
    status = at(state, {"start": 1.0, "end": 2.0, "exitcode": 3, "killed": False})
    assert (status.status, status.exitcode, status.reason) == (Status.FAILED, 3, "exit code 3")
    assert at(state, {"start": 1.0, "end": 2.0, "exitcode": 0}).status is Status.COMPLETED


def test_a_record_with_a_fresh_heartbeat_is_running_even_when_the_scheduler_forgot_it() -> None:
    assert at(None, {"start": 1.0}, heartbeat=NOW - 5).status is Status.RUNNING


def test_a_silent_wrapper_fails_only_after_forget_after_with_a_reason() -> None:
    assert at("no-worker", {"start": 1.0}, heartbeat=NOW - 100, silent_since=NOW - 10) is None
    status = at("no-worker", {"start": 1.0}, heartbeat=NOW - 100, silent_since=NOW - 61)
    assert status.status is Status.FAILED and "silent since" in status.reason


def test_an_erred_task_without_a_record_fails_with_the_error() -> None:
    status = at("erred", error="FileNotFoundError: python3")
    assert status.status is Status.FAILED and "FileNotFoundError: python3" in status.reason


def test_a_task_finished_without_a_record_fails_saying_the_wrapper_never_ran() -> None:
    status = at("memory", error="job_wrapper: task 4 is not in m.jsonl")
    assert status.status is Status.FAILED and "without running the job wrapper" in status.reason


@pytest.mark.parametrize("state", [None, "forgotten"])
def test_a_task_the_scheduler_does_not_know_and_that_never_started_is_lost(state: str | None) -> None:
    assert at(state) is LOST
