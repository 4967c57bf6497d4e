"""Tasks through the daemon: ``ganga-async tasks add FILE`` (and ``submit`` of a task file)
hands a TOML task to the running daemon, which runs it between commands; the client's
``task_add`` with a token adds one task however often it is repeated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from _service_helpers import cli

from ganga_async.service import AsyncGangaService
from ganga_async.service._paths import ServicePaths

pytestmark = [pytest.mark.anyio]

TASK_FILE = """\
[task]
name = "words"
float = 2

[[task.transforms]]
name = "write"
inputfiles = ["words.txt"]
outputfiles = ["*.txt"]
application = { type = "Executable", exe = "/bin/sh" }
unit_splitter = { type = "ArgSplitter", args = [["-c", "head -1 words.txt > first.txt"],
                                                ["-c", "tail -1 words.txt > last.txt"]] }

[[task.transforms]]
name = "merge"
application = { type = "Executable", exe = "/bin/sh", args = ["-c", "cat first.txt last.txt"] }
chain_input = { include_file_mask = ['\\.txt$'], exclude_file_mask = ["^words"], single_unit = true }
"""


async def finished(gs: AsyncGangaService, task_id: int) -> dict[str, Any]:
    """The task's row once no unit is new, held or running (woken by the daemon's events)."""
    with anyio.fail_after(60):
        async with gs.events(types=["status"]) as events:
            while True:
                row: dict[str, Any] = await gs.call("task", id=task_id)
                if not any(row["units"][s] for s in ("new", "hold", "running")) and \
                        row["transforms"]["1:merge"]["completed"] + row["transforms"]["1:merge"]["failed"]:
                    return row
                await events.__anext__()


async def test_a_toml_task_added_from_the_command_line_runs_in_the_daemon(
        daemon: ServicePaths, tmp_path: Path) -> None:
    (tmp_path / "words.txt").write_text("alpha\nbeta\ngamma\n")
    (tmp_path / "task.toml").write_text(TASK_FILE)
    added = cli("tasks", "add", str(tmp_path / "task.toml"))
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[1].split()[:4] == ["0", "words", "running", "2"]
    async with AsyncGangaService(daemon.gangadir) as gs:
        row = await finished(gs, 0)
        assert row["status"] == "completed" and row["reason"] is None
        merge = [u for u in row["unit_list"] if u["transform"] == 1]
        assert len(merge) == 1
        assert await gs.peek(merge[0]["job_id"]) == "alpha\ngamma\n"


async def test_submit_of_a_task_file_adds_it_and_a_token_adds_one_task_however_often_repeated(
        daemon: ServicePaths, tmp_path: Path) -> None:
    (tmp_path / "words.txt").write_text("one\ntwo\n")
    (tmp_path / "task.toml").write_text(TASK_FILE)
    submitted = cli("--json", "submit", str(tmp_path / "task.toml"), "--token", "t-1")
    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout)["id"] == 0
    again = cli("--json", "tasks", "add", str(tmp_path / "task.toml"), "--token", "t-1")
    assert json.loads(again.stdout)["id"] == 0
    async with AsyncGangaService(daemon.gangadir) as gs:
        table = {"name": "client", "float": 1, "transforms": [
            {"application": {"type": "Executable", "exe": "/bin/echo"}}]}
        first = await gs.task_add(table, token="t-2")
        assert (await gs.task_add(table, token="t-2"))["id"] == first["id"] == 1
        assert [t["id"] for t in await gs.call("tasks")] == [0, 1]
        stored = await gs.task_add(table, run=False)
        assert stored["status"] == "new" and stored["id"] == 2
        row = await finished(gs, 0)
        assert row["status"] == "completed"


def test_a_task_file_with_a_mistake_is_refused_in_one_line_naming_the_field(
        daemon: ServicePaths, tmp_path: Path) -> None:
    (tmp_path / "task.toml").write_text(TASK_FILE.replace("single_unit = true", "single_unit = 2"))
    refused = cli("tasks", "add", str(tmp_path / "task.toml"))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].endswith(
        "task.toml: task.transforms[1].chain_input.single_unit: expected bool, got int 2")
    (tmp_path / "job.toml").write_text('[application]\nexe = "/bin/true"\n')
    assert "is not a task file" in cli("tasks", "add", str(tmp_path / "job.toml")).stderr
    assert json.loads(cli("--json", "tasks").stdout) == []
