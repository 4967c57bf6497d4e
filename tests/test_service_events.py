"""Events through a real daemon: a client that keeps up gets every transition in order, one
that stops reading is dropped with a message saying why, and neither the job nor the others
wait for it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from _service_helpers import log_events, running_daemon, service_paths

from ganga_async.service import AsyncGangaService, GangaService
from ganga_async.service._paths import ServicePaths

pytestmark = pytest.mark.anyio

SUBJOBS = 1200


BACKLOG = 100
"""The daemon's ``event_backlog`` for the tests of a drop: a client that stopped reading is
dropped at the 1,200 subjobs' first burst, whatever the machine's speed."""


@pytest.fixture
def paths(gangadir: Path) -> ServicePaths:
    """A daemon whose events streams may fall :data:`BACKLOG` events behind, and whose dropped
    clients have a minute to read why."""
    return service_paths(gangadir, f"event_backlog = {BACKLOG}\ndrop_timeout = 60.0\n")


FOLLOWER = """
import os, sys, time, anyio
from ganga_async._exceptions import SlowClientError
from ganga_async.service import AsyncGangaService

async def main():
    async with AsyncGangaService(sys.argv[1], autostart=False) as gs:
        async with gs.events(types=["status"]) as events:
            print("following", flush=True)
            while not os.path.exists(sys.argv[2]):
                time.sleep(0.05)  # the whole program stops: nothing reads the connection
            try:
                async for _ in events:
                    pass
            except SlowClientError as exc:
                print(type(exc).__name__, exc, flush=True)

anyio.run(main)
"""
"""A program following events with the client that stops (its event loop blocked) until a
file appears, then reads on."""


def split_job(n: int) -> dict[str, Any]:
    return {"application": {"type": "Executable", "exe": "/bin/true"},
            "backend": {"type": "Local", "max_concurrent": 8},
            "splitter": {"type": "ArgSplitter", "args": [[str(i)] for i in range(n)]}}


def stalled_follower(path: Path) -> socket.socket:
    """A raw connection that asks for every event, reads the first line, then stops reading."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(str(path))
    sock.sendall(b'{"v":1,"id":1,"op":"events","args":{}}\n')
    first = sock.makefile("rb").readline()
    assert json.loads(first)["event"]["type"] == "subscribed"
    return sock


def chains(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each (sub)job's statuses in the order its transitions came, checking each starts where
    the one before ended."""
    seen: dict[str, list[str]] = {}
    for event in events:
        path = seen.setdefault(event["fqid"], [event["old"]])
        assert path[-1] == event["old"], f"{event['fqid']}: {path} then {event['old']}->{event['new']}"
        path.append(event["new"])
    return seen


async def test_a_follower_that_keeps_up_misses_nothing_while_another_stalls(gangadir: Path) -> None:
    # The default backlog (100,000) holds every event of the job: the follower in this test's
    # process misses none even when the machine is too loaded for it to keep pace, and the
    # stalled one, never dropped, slows neither the job nor it.
    with running_daemon(service_paths(gangadir)) as daemon, stalled_follower(daemon.socket):
        async with AsyncGangaService(daemon.gangadir, autostart=False) as gs:
            async with gs.events(types=["status"]) as events:
                job = await gs.submit(split_job(SUBJOBS))
                got: list[dict[str, Any]] = []
                with anyio.fail_after(300):
                    async for event in events:
                        got.append(event)
                        if event["fqid"] == str(job["id"]) and event["new"] == "completed":
                            break
            paths = chains([e for e in got if e["job_id"] == job["id"]])
            assert len(paths) == SUBJOBS + 1
            assert all(path[-1] == "completed" for path in paths.values())
            assert (await gs.ping())["pid"] == daemon.running_pid()


async def test_a_stalled_follower_is_dropped_with_a_reason_once_it_reads_again(
        daemon: ServicePaths) -> None:
    with stalled_follower(daemon.socket) as stalled:
        async with AsyncGangaService(daemon.gangadir, autostart=False) as gs:
            job = await gs.submit(split_job(SUBJOBS))
            assert (await gs.wait(job["id"], timeout=300))["status"] == "completed"
        stalled.settimeout(30)
        with stalled.makefile("rb") as reader:
            lines = [reader.readline()]
            while "ok" not in json.loads(lines[-1]):
                lines.append(reader.readline())
    last = json.loads(lines[-1])
    assert last["ok"] is False and last["id"] == 1 and last["error"]["type"] == "SlowClientError"
    assert f"fell more than {BACKLOG} events behind" in last["error"]["message"]
    assert "event_backlog" in last["error"]["message"]
    assert all("event" in json.loads(line) for line in lines[:-1])
    assert any(e["event"] == "dropped a client that fell behind on events" for e in log_events(daemon))


def test_a_client_program_that_stops_is_told_it_was_dropped_once_it_reads_again(
        daemon: ServicePaths, tmp_path: Path) -> None:
    resume = tmp_path / "resume"
    follower = subprocess.Popen([sys.executable, "-c", FOLLOWER, str(daemon.gangadir), str(resume)],
                                stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "following\n"
        with GangaService(daemon.gangadir, autostart=False) as gs:
            job = gs.submit(split_job(SUBJOBS))
            assert gs.wait(job["id"], timeout=300)["status"] == "completed"
        resume.touch()
        out, _ = follower.communicate(timeout=60)
    finally:
        follower.kill()
        follower.wait()
    assert out.startswith("SlowClientError the events stream was dropped: this client fell more "
                          f"than {BACKLOG} events behind"), out
