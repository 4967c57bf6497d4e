"""The transition table and a master's derived status."""

import pytest

from ganga_async import JobStateError, Status
from ganga_async.states import allowed, check_transition, derive_master_status


def counts(**by_name: int) -> list[int]:
    result = [0] * len(Status)
    for name, n in by_name.items():
        result[Status(name).code] = n
    return result


def test_the_normal_life_of_a_job_is_allowed() -> None:
    path = ["new", "submitting", "submitted", "running", "completing", "completed"]
    for old, new in zip(path, path[1:], strict=False):
        check_transition(Status(old), Status(new))


def test_a_completed_job_cannot_go_back_to_running() -> None:
    with pytest.raises(JobStateError, match="cannot go from completed to running"):
        check_transition(Status.COMPLETED, Status.RUNNING)


def test_final_jobs_may_be_resubmitted_and_removed() -> None:
    for final in (Status.COMPLETED, Status.FAILED, Status.KILLED):
        assert allowed(final, Status.SUBMITTING)
        assert allowed(final, Status.REMOVED)
    assert not allowed(Status.REMOVED, Status.SUBMITTING)


def test_master_status_follows_ganga_priority() -> None:
    assert derive_master_status(counts(completed=5, running=1)) is Status.RUNNING
    assert derive_master_status(counts(submitting=1, running=3)) is Status.SUBMITTING
    assert derive_master_status(counts(submitted=1, running=3)) is Status.SUBMITTED
    assert derive_master_status(counts(completing=1, failed=1)) is Status.COMPLETING
    assert derive_master_status(counts(failed=1, killed=1, completed=9)) is Status.FAILED
    assert derive_master_status(counts(killed=1, completed=9)) is Status.KILLED
    assert derive_master_status(counts(completed=10)) is Status.COMPLETED
    assert derive_master_status(counts()) is Status.NEW


def test_an_unknown_status_name_lists_the_valid_ones() -> None:
    with pytest.raises(JobStateError, match="valid statuses: new, submitting"):
        Status.parse("finished")


def test_status_codes_round_trip() -> None:
    for status in Status:
        assert Status.from_code(status.code) is status
