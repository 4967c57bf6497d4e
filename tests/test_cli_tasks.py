"""``ganga-async tasks``: list, show, run, pause and remove a task, each a real command on the
test's own gangadir (its own engine: the tests turn the daemon's autostart off)."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
from test_cli_shareref import cli

from ganga_async import ArgSplitter, CoreTask, CoreTransform, Engine, Executable, load_config


def stored_task() -> None:
    async def main() -> None:
        async with Engine(config=load_config()) as engine:
            trf = CoreTransform(name="echo", application=Executable(exe="/bin/echo"),
                                unit_splitter=ArgSplitter(args=[["a"], ["b"], ["c"]]))
            await engine.tasks.add(CoreTask(name="analysis", float=1, transforms=[trf]))

    anyio.run(main, backend="asyncio")


def test_tasks_are_listed_shown_run_paused_and_removed_from_the_command_line() -> None:
    stored_task()
    listed = cli("tasks")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["id", "name", "status", "float", "new", "hold", "running",
                              "completed", "failed"]
    assert row.split() == ["0", "analysis", "new", "1", "3", "0", "0", "0", "0"]
    ran = cli("tasks", "run", "0")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[1].split()[:3] == ["0", "analysis", "running"]
    shown = json.loads(cli("--json", "tasks", "show", "0").stdout)
    first = shown["unit_list"][0]
    assert (first["transform"], first["unit"], first["job_id"]) == (0, 0, 0)
    assert shown["transforms"]["0:echo"]["new"] + shown["transforms"]["0:echo"]["running"] + \
        shown["transforms"]["0:echo"]["completed"] == 3
    paused = cli("tasks", "pause", "0")
    assert paused.stdout.splitlines()[1].split()[2] in ("pause", "completed")
    assert cli("tasks", "remove", "0").returncode == 0
    assert json.loads(cli("--json", "tasks").stdout) == []
    missing = cli("tasks", "show", "9")
    assert missing.returncode == 2 and "no task 9" in missing.stderr


def test_a_task_file_is_added_without_a_daemon_and_submit_wait_of_it_is_refused(tmp_path: Path) -> None:
    (tmp_path / "task.toml").write_text(
        '[task]\nname = "files"\nfloat = 1\n[[task.transforms]]\nname = "echo"\n'
        'application = { type = "Executable", exe = "/bin/echo" }\n'
        'unit_splitter = { type = "ArgSplitter", args = [["a"], ["b"]] }\n')
    added = cli("--json", "tasks", "add", str(tmp_path / "task.toml"), "--no-run")
    assert added.returncode == 0, added.stderr
    assert (json.loads(added.stdout)["status"], json.loads(added.stdout)["units"]["new"]) == ("new", 2)
    waited = cli("submit", str(tmp_path / "task.toml"), "--wait")
    assert waited.returncode == 2 and "--wait follows one job" in waited.stderr
    assert [t["name"] for t in json.loads(cli("--json", "tasks").stdout)] == ["files"]
