"""Postprocessors as plugins: names or objects, Ganga's order, stored with the job, in job
files and the GPI."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganga_async import FileChecker, Job, JobSpecError, Notifier, TextMerger
from ganga_async._jobfile import job_from_dict
from ganga_async.postprocessors import SmartMerger


def test_names_and_objects_run_in_gangas_order_whatever_the_list_order() -> None:
    job = Job(postprocessors=["Notifier", FileChecker(files=["stdout"], searchStrings=["x"]),
                              "SmartMerger", TextMerger(files=["a.txt"])])
    assert [type(p).__name__ for p in job.postprocessors] == [
        "SmartMerger", "TextMerger", "FileChecker", "Notifier"]
    clone = Job.from_spec(job.spec())
    assert [p.to_dict() for p in clone.postprocessors] == [p.to_dict() for p in job.postprocessors]
    assert job.copy().postprocessors[1] is not job.postprocessors[1]


def test_unknown_postprocessors_and_options_are_named() -> None:
    with pytest.raises(JobSpecError, match="unknown postprocessor 'Mailer'; available: .*TextMerger"):
        Job(postprocessors=["Mailer"])
    with pytest.raises(JobSpecError, match="TextMerger has no field 'compres'"):
        job_from_dict({"postprocessors": [{"type": "TextMerger", "compres": True}]}, "job.toml")
    with pytest.raises(JobSpecError, match=r"job.toml: postprocessors\[0\]"):
        job_from_dict({"postprocessors": [{"files": []}]}, "job.toml")


def test_job_files_take_postprocessor_tables_and_names(tmp_path: Path) -> None:
    job = job_from_dict({"postprocessors": [
        {"type": "Notifier", "address": "me@example.org"},
        {"type": "FileChecker", "files": ["stdout"], "searchStrings": ["ERROR"], "failIfFound": True},
        "SmartMerger"]}, "job.toml", basedir=tmp_path)
    assert [type(p).__name__ for p in job.postprocessors] == ["SmartMerger", "FileChecker", "Notifier"]
    assert isinstance(job.postprocessors[0], SmartMerger)
    assert job.postprocessors[2] == Notifier(address="me@example.org")


def test_the_gpi_exports_the_postprocessors_under_gangas_names() -> None:
    import ganga_async.gpi as gpi

    for name in ("TextMerger", "CustomMerger", "SmartMerger", "FileChecker", "CustomChecker",
                 "Notifier", "WebhookNotifier"):
        assert name in gpi.__all__ and getattr(gpi, name).category == "postprocessor"


def test_job_files_take_a_retry_table_and_do_auto_resubmit(tmp_path: Path) -> None:
    from ganga_async import Retry

    job = job_from_dict({"do_auto_resubmit": True, "retry": {"max_attempts": 4, "backoff": "1s..1m",
                                                             "on": ["failed", "checker"]}},
                        "job.toml", basedir=tmp_path)
    assert job.do_auto_resubmit is True
    assert job.retry == Retry(max_attempts=4, backoff="1s..1m", on=("failed", "checker"))
    assert Job.from_spec(job.spec()).retry == job.retry
    with pytest.raises(JobSpecError, match=r"job.toml: retry.on: unknown kind 'sometimes'"):
        job_from_dict({"retry": {"on": ["sometimes"]}}, "job.toml")


def test_notifiers_tell_of_ends_and_failures_the_retry_policy_does_not_take() -> None:
    from ganga_async.postprocessors import Notification

    quiet, verbose = Notifier(address="a@b.c"), Notifier(address="a@b.c", verbose=True)

    def note(new: str) -> Notification:
        return Notification("3", "", "running", new, None, 0.0)

    assert quiet.wants(note("completed"), subjob=False, final=True, retried=False)
    assert not quiet.wants(note("failed"), subjob=False, final=True, retried=True)
    assert quiet.wants(note("failed"), subjob=True, final=True, retried=False)
    assert not quiet.wants(note("failed"), subjob=True, final=True, retried=True)
    assert not quiet.wants(note("completed"), subjob=True, final=True, retried=False)
    assert not quiet.wants(note("running"), subjob=False, final=False, retried=False)
    assert verbose.wants(note("running"), subjob=True, final=False, retried=False)
