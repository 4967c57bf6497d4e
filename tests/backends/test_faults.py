"""The fault suite (benchmarks/faults.py) at a small size: kill -9 of the engine, of the daemon and
of the whole machine mid-submission, and a Slurm whose commands fail or hang 30% of the time;
nothing may be lost, run twice, stuck or left unsound. ``make faults`` runs it at full size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_faults(*args: str, tmp_path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.faults", "--json", "--tmpdir", str(tmp_path), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip(), done.stderr[-3000:]
    counts: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return counts


def assert_sound(counts: list[dict[str, Any]]) -> None:
    for loop in counts:
        assert loop["skipped"] is None, loop
        assert loop["trials"] > 0, loop
        bad = {k: loop[k] for k in ("lost", "twice", "stuck", "integrity") if loop[k]}
        assert not bad, f"{loop['loop']}: {bad}; {loop['notes']}"


def test_kill_9_of_the_engine_the_daemon_and_the_machine_loses_nothing_and_runs_nothing_twice(
    tmp_path: Path,
) -> None:
    counts = run_faults("--trials", "2", "--subjobs", "40", "--max-delay", "1",
                        "--stuck-after", "90", "--loop", "engine", "--loop", "daemon",
                        "--loop", "crash", tmp_path=tmp_path)
    assert [c["loop"] for c in counts] == ["engine", "daemon", "crash"]
    assert_sound(counts)


@pytest.mark.slow
@pytest.mark.usefixtures("slurm_cluster")
def test_a_slurm_whose_commands_fail_or_hang_30_percent_of_the_time_runs_each_task_once(
    tmp_path: Path,
) -> None:
    (counts,) = run_faults("--trials", "2", "--subjobs", "12", "--stuck-after", "180",
                           "--loop", "flaky", tmp_path=tmp_path)
    assert_sound([counts])
    assert counts["injected"] > 0, "no fault was injected"
