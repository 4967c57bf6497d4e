"""Every command that lists or waits prints what is true now: it starts the gangadir's daemon
when none runs ([Service] autostart), which then follows the jobs between commands. Run
through the installed ``ganga-async`` entry point."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _service_helpers import stop_daemon
from test_cli_conventions import job_file, run

from ganga_async.service._paths import ServicePaths

pytestmark = pytest.mark.slow

AUTOSTART = {"GANGA_ASYNC_SERVICE_AUTOSTART": "true"}


@pytest.fixture
def stopped_afterwards(paths: ServicePaths) -> Iterator[ServicePaths]:
    """Whatever daemon the test's commands start is stopped at the end."""
    try:
        yield paths
    finally:
        stop_daemon(paths)


def test_a_job_that_ends_while_no_command_runs_is_listed_as_ended(
        tmp_path: Path, stopped_afterwards: ServicePaths) -> None:
    go = tmp_path / "go"
    path = job_file(tmp_path, f'exe = "/bin/sh"\nargs = ["-c", "while [ ! -e {go} ]; do sleep 0.05; done"]')
    submitted = run("submit", str(path), env=AUTOSTART)
    assert submitted.returncode == 0, submitted.stderr
    job = int(submitted.stdout)
    first, *_ = submitted.stderr.splitlines()
    assert first.startswith(f"started the ganga-async service for {stopped_afterwards.gangadir}")
    assert "ganga-async service stop" in first
    assert stopped_afterwards.running_pid() is not None

    try:
        running = run("jobs", "--status", "running,submitted", "--json", env=AUTOSTART)
        assert [row["id"] for row in json.loads(running.stdout)] == [job]
    finally:
        go.touch()  # the job ends now
    time.sleep(3)  # no command runs meanwhile
    listed = run("jobs", "--json", env=AUTOSTART)
    assert listed.stderr == ""  # the daemon runs already: nothing started, nothing said
    assert [(row["id"], row["status"]) for row in json.loads(listed.stdout)] == [(job, "completed")]
    assert json.loads(run("show", str(job), "--json", env=AUTOSTART).stdout)["status"] == "completed"
    assert run("jobs", "--status", "running", "--json", env=AUTOSTART).stdout == "[]\n"


def test_without_autostart_no_daemon_is_started(tmp_path: Path, paths: ServicePaths) -> None:
    result = run("jobs")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert paths.running_pid() is None


def test_the_commands_that_only_read_files_start_no_daemon(paths: ServicePaths) -> None:
    for words in (["box"], ["shareref"], ["credentials"], ["completion", "bash"]):
        result = run(*words, env=AUTOSTART)
        assert result.returncode == 0, result.stderr
        assert "started the ganga-async service" not in result.stderr
    assert paths.running_pid() is None
