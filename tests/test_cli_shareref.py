"""``ganga-async shareref`` and ``ganga-async box``, run for real on the test's own gangadir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio

from ganga_async import Engine, Executable, Job, load_config


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ganga_async.cli", *args],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))


def prepared_job_in_the_box(tmp_path: Path) -> str:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)

    async def main() -> str:
        async with Engine(config=load_config()) as engine:
            job = Job(application=Executable(exe=str(script)))
            await engine.add(job)
            sharedir = await engine.prepare(job)
            await engine.box.add(job, "template")
            return sharedir.name

    return anyio.run(main, backend="asyncio")


def test_shareref_shows_the_table_the_counts_the_files_and_the_owners(tmp_path: Path) -> None:
    name = prepared_job_in_the_box(tmp_path)
    table = cli("shareref")
    assert table.returncode == 0, table.stderr
    header, rule, row, *_ = table.stdout.splitlines()
    assert [c.strip() for c in header.split("|")] == ["Shared directory", "Date created",
                                                       "Reference count"]
    assert row.split("|")[0].strip() == name and row.split("|")[2].strip() == "2"
    assert json.loads(cli("--json", "shareref").stdout) == {name: 2}
    assert json.loads(cli("shareref", "--json").stdout) == {name: 2}
    assert cli("shareref", "ls", name).stdout == f"{name}/\n|  run.sh\n"
    assert cli("shareref", "lookup", name).stdout.splitlines() == [
        f"ShareDir {name} is referenced by item #0 in job repository",
        f"ShareDir {name} is referenced by item #template in box repository",
        f"2 item(s) found referencing ShareDir {name}",
    ]
    listed = cli("box")
    assert listed.stdout.split() == ["name", "kind", "type", "sharedir",
                                     "template", "job", "Job(Executable)", name]


def test_rebuild_unprepares_owners_whose_sharedir_is_gone(tmp_path: Path) -> None:
    name = prepared_job_in_the_box(tmp_path)
    gangadir = Path(os.environ["GANGA_ASYNC_GANGADIR"])
    (next(gangadir.glob(f"shared/*/{name}")) / "run.sh").unlink()
    next(gangadir.glob(f"shared/*/{name}")).rmdir()
    rebuilt = cli("--json", "shareref", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout) == {}
    assert json.loads(cli("--json", "box").stdout)[0]["sharedir"] is None


def test_a_name_that_is_not_a_sharedir_exits_2_and_touches_nothing() -> None:
    for args in (("shareref", "ls", "../.."), ("shareref", "lookup", "/etc")):
        result = cli(*args)
        assert result.returncode == 2
        assert result.stderr.startswith("error: ") and "is not a ShareDir name" in result.stderr
