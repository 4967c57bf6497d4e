"""The ``ganga-async`` command, run for real as a subprocess on the test's own gangadir.

The autouse fixture of conftest.py sets GANGA_ASYNC_GANGADIR and GANGA_ASYNC_CONFIG in
``os.environ``, which every command inherits.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from _service_helpers import cli

from ganga_async.backends.local import read_status

pytestmark = pytest.mark.slow


def show(fqid: object) -> dict[str, Any]:
    result = cli("--json", "show", str(fqid))
    assert result.returncode == 0, result.stderr
    info: dict[str, Any] = json.loads(result.stdout)
    return info


def job_file(tmp_path: Path, text: str, name: str = "job.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def echo_job(tmp_path: Path) -> Path:
    return job_file(tmp_path, """
name = "hello"

[application]
type = "Executable"
exe = "/bin/echo"
args = ["hello from the cli"]
""")


def split_job(tmp_path: Path, count: int, *, max_concurrent: int = 4) -> Path:
    args = ", ".join(f'["subjob {i}"]' for i in range(count))
    return job_file(tmp_path, f"""
name = "split"

[application]
type = "Executable"
exe = "/bin/echo"
args = []

[backend]
type = "Local"
max_concurrent = {max_concurrent}

[splitter]
type = "ArgSplitter"
args = [{args}]
""")


def started_pid(job_id: int) -> int:
    """The pid of job ``job_id``'s process, once its status log records it (10 s at most)."""
    gangadir = Path(os.environ["GANGA_ASYNC_GANGADIR"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for path in gangadir.glob(f"workspace/*/{job_id}/output"):
            record = read_status(str(job_id), path)
            if record is not None and "pid" in record:
                return int(record["pid"])
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not start within 10 s")


def fast_monitoring() -> None:
    """Sweep often and kill quickly, so that outcomes seen only by a sweep come fast."""
    Path(os.environ["GANGA_ASYNC_CONFIG"]).write_text(
        "[Monitoring]\npoll_interval = 0.3\n\n[Local]\nkill_grace = 1.0\n"
    )


def test_submit_wait_completes_then_jobs_lists_it_and_peek_prints_its_stdout(
    tmp_path: Path,
) -> None:
    submitted = cli("submit", str(echo_job(tmp_path)), "--wait")
    assert submitted.returncode == 0, submitted.stderr
    assert submitted.stdout.startswith("job 0 completed")

    listed = cli("--json", "jobs")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["id"] == 0
    assert row["status"] == "completed"
    assert (row["name"], row["application"], row["backend"]) == ("hello", "Executable", "Local")

    peeked = cli("peek", "0")
    assert (peeked.returncode, peeked.stdout) == (0, "hello from the cli\n")


def test_jobs_prints_a_table_filtered_by_status(tmp_path: Path) -> None:
    assert cli("submit", str(echo_job(tmp_path)), "--wait").returncode == 0
    table = cli("jobs")
    assert table.returncode == 0, table.stderr
    assert "fqid" in table.stdout
    assert "completed" in table.stdout
    assert "hello" in table.stdout
    none_failed = cli("jobs", "--status", "failed")
    assert none_failed.stdout.startswith("no failed jobs")


def test_a_failing_job_exits_1_and_show_names_the_reason(tmp_path: Path) -> None:
    path = job_file(tmp_path, """
[application]
type = "Executable"
exe = "/bin/sh"
args = ["-c", "echo oops >&2; exit 3"]
""")
    submitted = cli("submit", str(path), "--wait")
    assert submitted.returncode == 1, submitted.stderr
    assert submitted.stdout.startswith("job 0 failed")

    shown = cli("show", "0")
    assert shown.returncode == 0, shown.stderr
    assert "job 0: failed" in shown.stdout
    assert "reason         exit code 3" in shown.stdout
    assert cli("peek", "0", "stderr").stdout == "oops\n"


def test_resubmit_runs_a_failed_job_again(tmp_path: Path) -> None:
    path = job_file(tmp_path, '[application]\ntype = "Executable"\nexe = "false"\nargs = []\n')
    assert cli("submit", str(path), "--wait").returncode == 1
    resubmitted = cli("--json", "resubmit", "0", "--wait")
    assert resubmitted.returncode == 1, resubmitted.stderr
    assert json.loads(resubmitted.stdout)["status"] == "failed"
    assert show(0)["submit_counter"] == 2


def test_submit_of_a_toml_syntax_error_exits_2_naming_the_line(tmp_path: Path) -> None:
    path = job_file(tmp_path, 'name = "broken"\n\n[application]\nexe = \n')
    result = cli("submit", str(path))
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {path}: Invalid value (at line 4, column 7); fix the TOML syntax at line 4\n"
    )


def test_submit_of_an_unknown_field_exits_2_naming_the_field(tmp_path: Path) -> None:
    path = job_file(tmp_path, '[application]\ntype = "Executable"\nexe_name = "ls"\n')
    result = cli("submit", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {path}: application.exe_name: ")
    assert "valid fields: exe, args, env" in result.stderr
    assert result.stdout == ""


def test_an_unknown_job_id_is_one_error_line_with_exit_code_2() -> None:
    result = cli("show", "42")
    assert result.returncode == 2
    assert result.stderr.startswith("error: no job 42")
    assert len(result.stderr.splitlines()) == 1


def test_kill_stops_a_running_job_submitted_without_wait(tmp_path: Path) -> None:
    fast_monitoring()
    path = job_file(tmp_path, '[application]\ntype = "Executable"\nexe = "sleep"\nargs = ["30"]\n')
    submitted = cli("--json", "submit", str(path))
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    pid = started_pid(job_id)
    try:
        killed = cli("kill", str(job_id))
        assert killed.returncode == 0, killed.stderr
        assert killed.stdout == f"job {job_id} killed\n"
        assert show(job_id)["status"] == "killed"
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        if show(job_id)["status"] != "killed":
            os.killpg(pid, signal.SIGKILL)


def test_wait_runs_the_subjobs_a_submit_without_wait_left_queued(tmp_path: Path) -> None:
    submitted = cli("submit", str(split_job(tmp_path, 4, max_concurrent=1)))
    assert (submitted.returncode, submitted.stdout) == (0, "0\n")
    assert "ganga-async wait 0" in submitted.stderr
    waited = cli("wait", "0")
    assert waited.returncode == 0, waited.stderr
    assert "completed  4" in waited.stdout
    assert cli("peek", "0.3").stdout == "subjob 3\n"


def test_remove_deletes_the_job_and_its_workspace(tmp_path: Path) -> None:
    assert cli("submit", str(echo_job(tmp_path)), "--wait").returncode == 0
    workspace = Path(show(0)["outputdir"]).parent
    assert workspace.is_dir()
    removed = cli("remove", "0")
    assert (removed.returncode, removed.stdout) == (0, "job 0 removed\n")
    assert not workspace.exists()
    assert json.loads(cli("--json", "jobs").stdout) == []
    assert cli("show", "0").returncode == 2


def test_demo_finishes_with_a_summary() -> None:
    result = cli("demo", "--subjobs", "50")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "job 0: 50 subjobs of /bin/echo on Local(max_concurrent=8)" in out
    assert "job 0 completed in" in out
    assert "completed  50" in out
    assert "subjobs/s" in out
    assert "stdout of 0.0: hello from subjob 0" in out


def test_wait_on_a_terminal_draws_a_progress_bar(tmp_path: Path) -> None:
    terminal = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "100"}
    result = cli("submit", str(split_job(tmp_path, 5)), "--wait", env=terminal)
    assert result.returncode == 0, result.stderr
    assert "5/5" in result.stderr
    assert "0 failed" in result.stderr


def test_log_json_writes_one_json_object_per_stderr_line(tmp_path: Path) -> None:
    result = cli("-v", "--log-json", "submit", str(echo_job(tmp_path)), "--wait")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"event", "level", "logger", "timestamp"} <= set(records[0])
    accepted = [r for r in records if r["event"] == "job accepted"]
    assert accepted and accepted[0]["job_id"] == 0
    assert accepted[0]["level"] == "info"
    assert accepted[0]["logger"] == "ganga_async.engine"


def test_log_json_reports_an_error_as_a_json_line(tmp_path: Path) -> None:
    result = cli("--log-json", "submit", str(tmp_path / "absent.toml"))
    assert result.returncode == 2
    (record,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert record["level"] == "error"
    assert "cannot read the job file" in record["error"]
