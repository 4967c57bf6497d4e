"""The local runner as the Local driver starts it: a real process fed over a real socket."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ganga_async._resources import shipped
from ganga_async.backends import local
from ganga_async.backends.base import Handle
from ganga_async.backends.local import STATUS_LOG, _orphan_statuses, _reset_logs, _start_runner
from ganga_async.states import Status


class Runner:
    """A started runner; ``engine`` is the engine's end of its socket."""

    def __init__(self, logdir: Path, *, send_buffer: int | None = None) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        self.engine, theirs = socket.socketpair()
        if send_buffer is not None:
            theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        with theirs:
            self.pid = _start_runner(shipped("workers", "local_runner.py"), theirs, logdir)
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


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    started = Runner(tmp_path / "logs")
    yield started
    started.engine.close()


def run(key: str, base: Path, argv: list[str], limit: int = 8) -> dict[str, object]:
    """A command of job 1, laid out as the engine lays out subjob ``key`` of a job in ``base``."""
    index = key.split(".")[1]
    return {"op": "run", "key": key, "group": "1", "limit": limit, "log": str(base / STATUS_LOG),
            "argv": argv, "env": {}, "workdir": str(base / index / "work"),
            "scratch": str(base / "work"), "outputdir": str(base / index), "inputs": [],
            "outputs": []}


def handle(key: str, base: Path) -> Handle:
    return Handle(key, key, base / key.split(".")[1])


def log_records(base: Path) -> list[dict[str, object]]:
    path = base / STATUS_LOG
    # Only whole lines: the runner may be in the middle of appending the next.
    return [json.loads(line) for line in path.read_bytes().split(b"\n")[:-1]] if path.exists() else []


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def runner_pid(base: Path) -> int:
    pid = log_records(base)[0]["runner_pid"]
    assert isinstance(pid, int)
    return pid


def test_the_log_records_acceptance_start_and_end_and_the_engine_reads_them_back(
    runner: Runner, tmp_path: Path
) -> None:
    runner.send(run("1.0", tmp_path, ["/bin/sh", "-c", "exit 3"]))
    started, exited = runner.events(2)
    assert (started["ev"], exited["ev"], exited["code"]) == ("started", "exited", 3)
    records = log_records(tmp_path)
    assert [r["ev"] for r in records] == ["accepted", "launching", "started", "exited"]
    assert records[2]["pid"] == started["pid"] and records[3]["t"] == exited["t"]
    status = _orphan_statuses([handle("1.0", tmp_path)], set())["1.0"]
    assert (status.status, status.exitcode, status.reason) == (Status.FAILED, 3, "exit code 3")
    assert status.started == started["t"] and status.ended == exited["t"]


def test_a_command_queued_in_a_live_runner_is_submitted_and_never_started_once_it_is_gone(
    runner: Runner, tmp_path: Path
) -> None:
    runner.send(run("1.0", tmp_path, ["/bin/sleep", "60"], limit=1),
                run("1.1", tmp_path, ["/bin/true"], limit=1))
    (started,) = runner.events(1)
    assert started["key"] == "1.0"
    statuses = _orphan_statuses([handle("1.0", tmp_path), handle("1.1", tmp_path)], set())
    assert statuses["1.0"].status is Status.RUNNING and statuses["1.0"].native_id == str(started["pid"])
    assert statuses["1.1"].status is Status.SUBMITTED

    # The runner dies (not a clean exit) with 1.1 still queued and 1.0 still running.
    pid = runner_pid(tmp_path)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"))
    statuses = _orphan_statuses([handle("1.0", tmp_path), handle("1.1", tmp_path)], set())
    assert (statuses["1.1"].status, statuses["1.1"].reason) == (
        Status.NEW, "its runner stopped before starting it")
    assert statuses["1.0"].status is Status.FAILED and "still runs as pid" in str(statuses["1.0"].reason)
    os.killpg(int(str(started["pid"])), signal.SIGKILL)


def test_a_command_whose_runner_died_as_it_launched_it_may_have_run_and_is_not_started_again(
    tmp_path: Path
) -> None:
    """A machine crash: the runner logged the launch, not the start (the process may have
    started in between); the subjob fails saying so instead of being submitted again."""
    (tmp_path / STATUS_LOG).write_bytes(
        b'{"ev":"accepted","key":"1.0","runner_pid":999999999,"host":"h","t":1.0}\n'
        b'{"ev":"launching","key":"1.0","t":2.0}\n')
    status = _orphan_statuses([handle("1.0", tmp_path)], set())["1.0"]
    assert status.status is Status.FAILED and "may have run" in str(status.reason)


def test_a_runner_that_ends_as_a_restarted_engine_reads_its_log_is_not_taken_for_dead_mid_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the fault suite (benchmarks/faults.py, engine loop): the engine read the log,
    then asked whether the runner lived; the runner had finished its last commands and exited
    in between, so one was failed as 'may have run' and the queued ones ran a second time."""
    log = tmp_path / STATUS_LOG
    log.write_bytes(b'{"ev":"accepted","key":"1.0","runner_pid":4242,"host":"h","t":1.0}\n'
                    b'{"ev":"accepted","key":"1.1","runner_pid":4242,"host":"h","t":1.0}\n'
                    b'{"ev":"launching","key":"1.0","t":2.0}\n')

    def ends_as_it_is_asked(pid: object) -> bool:
        with open(log, "ab") as f:
            f.write(b'{"ev":"started","key":"1.0","pid":11,"t":3.0}\n'
                    b'{"ev":"exited","key":"1.0","code":0,"killed":false,"t":4.0,"error":null}\n'
                    b'{"ev":"launching","key":"1.1","t":5.0}\n'
                    b'{"ev":"started","key":"1.1","pid":12,"t":5.0}\n'
                    b'{"ev":"exited","key":"1.1","code":0,"killed":false,"t":6.0,"error":null}\n')
        return False

    monkeypatch.setattr(local, "_is_runner", ends_as_it_is_asked)
    statuses = _orphan_statuses([handle("1.0", tmp_path), handle("1.1", tmp_path)], set())
    assert [statuses[k].status for k in ("1.0", "1.1")] == [Status.COMPLETED, Status.COMPLETED]


def test_a_command_no_runner_accepted_was_never_started(tmp_path: Path) -> None:
    status = _orphan_statuses([handle("1.0", tmp_path)], set())["1.0"]
    assert (status.status, status.reason) == (Status.NEW, "never started")


def test_a_reset_forgets_the_earlier_run_until_the_next_is_accepted(
    runner: Runner, tmp_path: Path
) -> None:
    runner.send(run("1.0", tmp_path, ["/bin/true"]))
    runner.events(2)
    assert _orphan_statuses([handle("1.0", tmp_path)], set())["1.0"].status is Status.COMPLETED
    _reset_logs([handle("1.0", tmp_path)])
    assert _orphan_statuses([handle("1.0", tmp_path)], set())["1.0"].status is Status.NEW
    runner.send(run("1.0", tmp_path, ["/bin/false"]))
    runner.events(2)
    assert _orphan_statuses([handle("1.0", tmp_path)], set())["1.0"].status is Status.FAILED


def test_a_line_cut_short_by_a_crash_is_skipped(tmp_path: Path) -> None:
    (tmp_path / STATUS_LOG).write_text(
        '{"ev":"accepted","key":"1.0","runner_pid":1,"host":"h","t":1.0}\n'
        '{"ev":"started","key":"1.0","pid":4242,"t":2.0}\n'
        '{"ev":"exited","key":"1.0","code":0,"killed":false,"t":3.0,"error":null}\n'
        '{"ev":"accepted","key":"1.0","runner_pid":1,"ho')
    status = _orphan_statuses([handle("1.0", tmp_path)], set())["1.0"]
    assert (status.status, status.started, status.ended) == (Status.COMPLETED, 2.0, 3.0)


def test_a_command_whose_directories_cannot_be_made_fails_with_the_reason(
    runner: Runner, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    command = run("1.0", tmp_path, ["/bin/true"])
    command["outputdir"] = str(blocker / "0")
    runner.send(command)
    (event,) = runner.events(1)
    assert event["ev"] == "exited" and "cannot start /bin/true" in str(event["error"])
    status = _orphan_statuses([handle("1.0", tmp_path)], set())["1.0"]
    assert status.status is Status.FAILED and "Not a directory" in str(status.reason)


def test_events_wait_for_an_engine_that_reads_slowly(tmp_path: Path) -> None:
    # A socket buffer far smaller than the events: the runner must wait for the engine to read,
    # never take a full buffer for a dead engine.
    slow = Runner(tmp_path / "logs", send_buffer=4096)
    try:
        n = 300
        slow.send(*(run(f"1.{i}", tmp_path, ["/bin/true"]) for i in range(n)))
        wait_for(lambda: sum(r["ev"] == "exited" for r in log_records(tmp_path)) == n, timeout=60)
        events = slow.events(2 * n)
        assert sorted(e["ev"] for e in events) == ["exited"] * n + ["started"] * n
        assert all(e["code"] == 0 for e in events if e["ev"] == "exited")
        # Part went straight to the socket, part through the sender thread: still in order.
        order = [(e["key"], e["ev"]) for e in events]
        assert all(order.index((key, "started")) < order.index((key, "exited"))
                   for key, ev in order if ev == "started")
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
    starts = {r["key"]: r["t"] for r in log_records(tmp_path) if r["ev"] == "started"}
    # Taken in order by `limit` threads: each command starts after all those `limit` before it.
    assert all(starts[f"1.{i}"] > starts[f"1.{i - limit}"] for i in range(limit, n))  # type: ignore[operator]


def test_a_process_that_removes_its_scratch_directory_does_not_fail_the_next(
    runner: Runner, tmp_path: Path
) -> None:
    runner.send(run("1.0", tmp_path, ["/bin/sh", "-c", 'rm -rf "$PWD"'], limit=1),
                run("1.1", tmp_path, ["/bin/pwd"], limit=1))
    events = runner.events(4)
    assert [e["code"] for e in events if e["ev"] == "exited"] == [0, 0]
    ran_in = Path((tmp_path / "1" / "stdout").read_text().strip())
    assert ran_in.parent == tmp_path / "work"
    wait_for(lambda: not (tmp_path / "work").exists())


def test_the_reading_marker_stays_until_every_command_sent_is_read_and_accepted(
    tmp_path: Path
) -> None:
    """Commands in the socket buffer of a runner whose engine is gone are still read (and run):
    the marker says so until they are logged as accepted."""
    started = Runner(tmp_path / "logs")
    marker = tmp_path / "logs" / f"runner-{started.pid}.reading"
    assert marker.exists(), "made before the engine may send anything"
    os.kill(started.pid, signal.SIGSTOP)  # as a runner slow to read under load
    try:
        started.send(run("1.0", tmp_path, ["/bin/true"]))
        started.engine.close()
        time.sleep(0.2)
        assert marker.exists() and not log_records(tmp_path)
    finally:
        os.kill(started.pid, signal.SIGCONT)
    wait_for(lambda: not marker.exists())
    assert log_records(tmp_path)[0]["ev"] == "accepted"
    wait_for(lambda: not os.path.exists(f"/proc/{started.pid}"))


def test_a_kill_reaches_the_processes_a_command_started(runner: Runner, tmp_path: Path) -> None:
    """Each command leads its own process group, and a kill goes to the whole group."""
    child = tmp_path / "child.pid"
    runner.send(run("1.0", tmp_path, ["/bin/sh", "-c", f"sleep 60 & echo $! > {child}; wait"]))
    (started,) = runner.events(1)
    pid = int(str(started["pid"]))
    wait_for(lambda: child.exists() and child.read_text().strip() != "")
    grandchild = int(child.read_text())
    assert os.getpgid(pid) == pid and os.getpgid(grandchild) == pid
    runner.send({"op": "kill", "key": "1.0", "grace": 5.0})
    (exited,) = runner.events(1)
    assert (exited["ev"], exited["killed"]) == ("exited", True)
    wait_for(lambda: not _alive(grandchild))


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_slot_makes_its_directory_even_as_another_slot_removes_the_empty_scratch_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two slots ending at once each remove the scratch root once it is empty; the second may
    do it just after a starting slot made the root again and before it made its own directory
    in it. That start failed with 'cannot start ...: No such file or directory' (1 of 10,000
    subjobs at 32 at a time); the directory is now made again until it holds."""
    spec = importlib.util.spec_from_file_location("runner_under_test", shipped("workers", "local_runner.py"))
    assert spec is not None and spec.loader is not None
    runner_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner_module)
    root = tmp_path / "work"
    real_mkdir = os.mkdir
    removed: list[str] = []

    def mkdir_then_lose_the_root(path: str, mode: int = 0o777) -> None:
        real_mkdir(path, mode)
        if os.fspath(path) == str(root) and not removed:  # the other slot's rmdir, just then
            removed.append(path)
            os.rmdir(path)

    monkeypatch.setattr(os, "mkdir", mkdir_then_lose_the_root)
    runner_module.make_dir(str(root / "4242-7"))
    assert removed and (root / "4242-7").is_dir()
