"""The fault suite (benchmarks/faults.py) at a small size: kill -9 of the engine, of the daemon and
of the whole machine mid-submission, and a Slurm whose commands fail or hang 30% of the time;
nothing may be lost, run twice, stuck or left unsound. ``make faults`` runs it at full size."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from ganga_async import ArgSplitter, Config, Engine, Executable, Job, Slurm, Status

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


LOST_REPLY = """#!/bin/bash
# The first call does its real work, then never answers (its reply is lost); later ones pass.
echo "$0 $*" >> {calls}
if mkdir {state}/$(basename "$0").first 2>/dev/null; then
  {first}
fi
exec {real} "$@"
"""


@pytest.mark.slow
@pytest.mark.usefixtures("slurm_cluster")
def test_a_lost_sbatch_reply_and_a_failing_search_on_the_real_cluster_submit_once(
    tmp_path: Path, gangadir: Path, slurm_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    shims, calls, ledger = tmp_path / "shims", tmp_path / "calls", tmp_path / "ledger"
    shims.mkdir()
    unreachable = "squeue: error: Unable to contact slurm controller (connect failure)"
    first = {"sbatch": '{real} "$@"; exec sleep 600',  # submitted, but the answer never comes
             "squeue": f'echo "{unreachable}" >&2; exit 1'}  # and the search for it fails once
    for name in ("sbatch", "squeue", "sacct", "scancel", "scontrol"):
        real = shutil.which(name)
        assert real is not None
        text = LOST_REPLY.replace("{first}", first.get(name, ":")).replace("{real}", real)
        (shims / name).write_text(text.replace("{calls}", str(calls)).replace("{state}", str(tmp_path)))
        (shims / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{os.environ['PATH']}")
    slurm_config["Slurm"]["command_timeout"] = 2.0

    async def main() -> Job:
        async with Engine(gangadir, config=slurm_config) as engine:
            job = Job(application=Executable(exe="/bin/sh"), backend=Slurm(time="10"),
                      splitter=ArgSplitter(args=[["-c", f'echo "$1" >> {ledger}', "sh", str(i)]
                                                 for i in range(5)]))
            await engine.submit(job)
            await engine.wait(job, timeout=180)
            return job

    job = anyio.run(main, backend="asyncio")
    assert job.status is Status.COMPLETED
    assert sorted(ledger.read_text().split()) == ["0", "1", "2", "3", "4"], "a task ran twice or never"
    sbatches = [line for line in calls.read_text().splitlines() if line.split()[0].endswith("sbatch")]
    assert len(sbatches) == 1, f"submitted again: {sbatches}"
