"""The command line with postprocessors and a retry policy from a job file: ``show`` lists
them and every attempt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _service_helpers import cli

pytestmark = pytest.mark.slow


def test_show_lists_the_postprocessors_and_each_attempt(tmp_path: Path) -> None:
    mark = tmp_path / "ran"
    path = tmp_path / "job.toml"
    path.write_text(f"""
name = "checked"
do_auto_resubmit = false

[application]
type = "Executable"
exe = "/bin/sh"
args = ["-c", "[ -e {mark} ] && echo fine || {{ touch {mark}; echo ERROR; }}"]

[retry]
max_attempts = 2
backoff = "0s"
on = ["checker"]

[[postprocessors]]
type = "FileChecker"
files = ["stdout"]
searchStrings = ["ERROR"]
""")
    submitted = cli("submit", str(path), "--wait")
    assert submitted.returncode == 0, submitted.stderr
    shown = cli("show", "0")
    assert shown.returncode == 0, shown.stderr
    assert "postprocessors FileChecker(" in shown.stdout
    assert "1   failed     exit code 0   FileChecker: 'ERROR' found in stdout" in shown.stdout
    info = json.loads(cli("--json", "show", "0").stdout)
    assert [(a["n"], a["status"]) for a in info["attempts"]] == [(1, "failed"), (2, "completed")]
    assert info["retry"]["on"] == ["checker"]
