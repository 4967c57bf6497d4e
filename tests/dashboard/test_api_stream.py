"""``/api/stream`` on a real daemon: a page that reads sees coalesced ``job`` messages up to
completed; a page that never reads neither slows nor stops the engine, and is dropped."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx
from conftest import DashboardDaemon
from test_api_jobs import submit, until


def test_a_reader_sees_coalesced_job_messages_up_to_completed(
        api_daemon: DashboardDaemon, tmp_path: Path) -> None:
    url, token, _ = api_daemon
    headers = {"Authorization": f"token {token}"}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client, \
            client.stream("GET", "/api/stream") as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        job_id = submit(api_daemon, tmp_path, "live", ["true"] * 40, wait=False)
        jobs: list[dict[str, object]] = []
        events = 0
        deadline = time.monotonic() + 60
        name = ""
        for line in lines:
            assert time.monotonic() < deadline, "the job's completion never came"
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                if name == "job" and data["id"] == job_id:
                    jobs.append(data)
                    if data["status"] == "completed":
                        break
                elif name == "event" and data.get("job_id") == job_id:
                    events += 1
    assert jobs[-1]["counts"] == {"completed": 40}
    assert events >= 80 and len(jobs) < events / 4  # one job message stands for many events


def test_a_page_that_never_reads_is_dropped_and_does_not_hold_up_the_engine(
        api_daemon: DashboardDaemon, tmp_path: Path) -> None:
    url, token, _ = api_daemon
    host, port = url.removeprefix("http://").split(":")
    idle = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    idle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    idle.connect((host, int(port)))
    try:
        idle.sendall(f"GET /api/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: token {token}\r\n\r\n"
                     .encode())
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"token {token}"}) as api:
            until(lambda: api.get("/api/session").json()["stream"]["clients"] >= 1)
            before = api.get("/api/session").json()["stream"]["dropped_clients"]
            started = time.monotonic()
            job_id = submit(api_daemon, tmp_path, "unread", ["true"] * 600)
            took = time.monotonic() - started
            row = next(j for j in api.get("/api/jobs").json()["jobs"] if j["id"] == job_id)
            assert row["counts"] == {"completed": 600}, row
            stream = api.get("/api/session").json()["stream"]
            assert stream["dropped_clients"] == before + 1 and stream["clients"] == 0, (stream, took)
    finally:
        idle.close()
