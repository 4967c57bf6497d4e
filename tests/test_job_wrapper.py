"""The job wrapper (workers/job_wrapper.py) run for real, as a batch script runs it on a worker node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ganga_async._resources import shipped

WRAPPER = shipped("workers", "job_wrapper.py")


def manifest(tmp_path: Path, **entry: Any) -> tuple[Path, dict[str, Any]]:
    task = {"task": 4, "key": "3.4", "argv": ["/bin/sh", "-c", "echo hi"], "env": {},
            "workdir": str(tmp_path / "4" / "work"), "outputdir": str(tmp_path / "4" / "output"),
            "inputs": [], "outputs": [], "heartbeat": 0.2, **entry}
    other = {**task, "task": 5, "key": "3.5", "argv": ["/bin/false"]}
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(other) + "\n" + json.dumps(task) + "\n")
    return path, task


def run(path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-I", "-S", str(WRAPPER), str(path), *args], capture_output=True,
                          text=True, timeout=30, env={**os.environ, **(env or {})})


def record(task: dict[str, Any]) -> dict[str, Any]:
    return json.loads((Path(task["outputdir"]) / "__jobstatus__.json").read_text())  # type: ignore[no-any-return]


def test_it_stages_inputs_runs_its_task_with_the_environment_and_copies_outputs_back(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("input\n")
    path, task = manifest(
        tmp_path, inputs=[str(data)], outputs=["*.out"], env={"GREETING": "hello"},
        argv=["/bin/sh", "-c", 'cat data.txt; echo "$GREETING $HOME" > result.out; echo oops >&2'])
    done = run(path, env={"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_JOB_ID": "77"})
    assert done.returncode == 0, done.stderr
    output = Path(task["outputdir"])
    assert (output / "stdout").read_text() == "input\n"
    assert (output / "stderr").read_text() == "oops\n"
    assert (output / "result.out").read_text() == f"hello {os.environ['HOME']}\n"
    status = record(task)
    assert status["key"] == "3.4" and status["batch_id"] == "77_4"
    assert status["exitcode"] == 0 and status["killed"] is False and status["error"] is None
    assert status["start"] <= status["end"] and isinstance(status["pid"], int) and status["host"]
    assert not (output / "__heartbeat__").exists()


def test_it_exits_with_the_applications_exit_code(tmp_path: Path) -> None:
    path, task = manifest(tmp_path, argv=["/bin/sh", "-c", "exit 3"])
    assert run(path, "4").returncode == 3
    assert record(task)["exitcode"] == 3


def test_sigterm_reaches_the_application_and_is_recorded_as_killed(tmp_path: Path) -> None:
    path, task = manifest(tmp_path, argv=["/bin/sh", "-c", "echo up; exec sleep 60"])
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(WRAPPER), str(path), "4"])
    stdout = Path(task["outputdir"]) / "stdout"
    deadline = time.monotonic() + 10
    while not stdout.exists() or stdout.read_text() != "up\n":
        assert time.monotonic() < deadline, "the application never started"
        time.sleep(0.05)
    assert (Path(task["outputdir"]) / "__heartbeat__").exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 128 + signal.SIGTERM
    status = record(task)
    assert status["killed"] is True and status["exitcode"] == -signal.SIGTERM


def test_a_program_that_cannot_start_is_recorded_with_the_reason(tmp_path: Path) -> None:
    path, task = manifest(tmp_path, argv=["/no/such/program"])
    assert run(path, "4").returncode == 1
    status = record(task)
    assert status["exitcode"] is None and status["error"].startswith("cannot start /no/such/program")


def test_a_task_missing_from_the_manifest_is_an_error_on_stderr(tmp_path: Path) -> None:
    path, _ = manifest(tmp_path)
    done = run(path, "9")
    assert done.returncode == 2 and "task 9 is not in" in done.stderr
