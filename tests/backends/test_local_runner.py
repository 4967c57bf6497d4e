"""The local runner as the Local driver starts it: a real process fed over a real socket."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ganga_async._resources import shipped
from ganga_async.backends.base import STATUS_FILE, Handle
from ganga_async.backends.local import _orphan_statuses, _start_runner
from ganga_async.states import Status


class Runner:
    """A runner started with ``rundir`` for its journal; ``engine`` is the engine's end."""

    def __init__(self, rundir: Path, *, send_buffer: int | None = None) -> None:
        rundir.mkdir(parents=True, exist_ok=True)
        self.rundir = rundir
        self.engine, theirs = socket.socketpair()
        if send_buffer is not None:
            theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        with theirs:
            assert _start_runner(shipped("workers", "local_runner.py"), theirs, rundir) == 0
        self.buffer = b""

    def send(self, *commands: dict[str, object]) -> None:
        self.engine.sendall(b"".join(json.dumps(c).encode() + b"\n" for c in commands))

    def events(self, n: int, timeout: float = 30) -> list[dict[str, object]]:
        self.engine.settimeout(timeout)
        while self.buffer.count(b"\n") < n:
            data = self.engine.recv(1 << 16)
            assert data, "the runner closed the connection"
            self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        return [json.loads(line) for line in lines]

    def journals(self) -> list[Path]:
        return sorted(self.rundir.glob("local_runner-*.accepted"))


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    started = Runner(tmp_path / "logs")
    yield started
    started.engine.close()


def run(key: str, base: Path, argv: list[str], limit: int = 8) -> dict[str, object]:
    return {"op": "run", "key": key, "group": "1", "limit": limit, "argv": argv, "env": {},
            "workdir": str(base / key / "work"), "outputdir": str(base / key / "output"),
            "inputs": [], "outputs": []}


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def ended(outputdir: Path) -> bool:
    try:
        return "end" in json.loads((outputdir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return False


def test_a_command_the_runner_holds_without_a_status_file_is_submitted_until_the_runner_ends(
    runner: Runner, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # Its outputdir cannot be made, so it never gets a status file; the journal still has it.
    runner.send(run("1.0", blocker, ["/bin/true"]))
    (event,) = runner.events(1)
    assert event["ev"] == "exited" and "cannot prepare it" in str(event["error"])
    handle = Handle("1.0", "1.0", blocker / "1.0" / "output")
    (journal,) = runner.journals()
    assert journal.read_text().split() == ["1.0"]
    assert _orphan_statuses([handle], set(), runner.rundir)["1.0"].status is Status.SUBMITTED

    runner.engine.close()
    wait_for(lambda: not runner.journals())
    never = _orphan_statuses([handle], set(), runner.rundir)["1.0"]
    assert (never.status, never.reason) == (Status.NEW, "never started")


def test_a_journal_left_by_a_killed_runner_is_ignored_and_removed(tmp_path: Path) -> None:
    rundir = tmp_path / "logs"
    rundir.mkdir()
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    journal = rundir / f"local_runner-{dead}.accepted"
    journal.write_text("1.0\n")
    handle = Handle("1.0", "1.0", tmp_path / "1.0" / "output")
    assert _orphan_statuses([handle], set(), rundir)["1.0"].status is Status.NEW
    assert not journal.exists()


def test_events_wait_for_an_engine_that_reads_slowly(tmp_path: Path) -> None:
    # A socket buffer far smaller than the events: the runner must wait for the engine to read,
    # never take a full buffer for a dead engine.
    slow = Runner(tmp_path / "logs", send_buffer=4096)
    try:
        n = 300
        slow.send(*(run(f"1.{i}", tmp_path, ["/bin/true"]) for i in range(n)))
        wait_for(lambda: all(ended(tmp_path / f"1.{i}" / "output") for i in range(n)), timeout=60)
        events = slow.events(2 * n)
        assert sorted(e["ev"] for e in events) == ["exited"] * n + ["started"] * n
        assert all(e["code"] == 0 for e in events if e["ev"] == "exited")
    finally:
        slow.engine.close()


def test_commands_of_one_group_run_in_order_never_more_than_its_limit_at_once(
    runner: Runner, tmp_path: Path
) -> None:
    n, limit = 24, 3
    runner.send(*(run(f"1.{i}", tmp_path, ["/bin/sleep", "0.05"], limit) for i in range(n)))
    running, most, started = 0, 0, set()
    for event in runner.events(2 * n):
        if event["ev"] == "started":
            running += 1
            started.add(event["key"])
        else:
            assert event["code"] == 0
            running -= 1
        most = max(most, running)
    assert most == limit
    assert started == {f"1.{i}" for i in range(n)}
    starts = [json.loads((tmp_path / f"1.{i}" / "output" / STATUS_FILE).read_text())["start"]
              for i in range(n)]
    # Taken in order by `limit` threads: each command starts after all those `limit` before it.
    assert all(starts[i] > starts[i - limit] for i in range(limit, n))
