"""The dashboard refuses every route without its token, and every action without its CSRF
header; it listens on loopback only and keeps its token private (a real daemon, real uvicorn)."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import httpx
import pytest
from conftest import DashboardDaemon

GETS = ["/", "/job/0", "/credentials", "/events", "/static/app.js", "/api/session", "/api/jobs",
        "/api/jobs/0", "/api/jobs/0/subjobs", "/api/jobs/0/cells", "/api/jobs/0/timeline",
        "/api/jobs/0/files/stdout", "/api/credentials", "/api/events/recent", "/api/nothing"]
ACTIONS = ["/api/jobs/0/kill", "/api/jobs/0/resubmit", "/api/jobs/0/remove"]


def _status(client: httpx.Client, method: str, path: str, **kwargs: object) -> int:
    if path == "/api/stream":
        with client.stream(method, path, **kwargs) as response:  # type: ignore[arg-type]
            return response.status_code
    return client.request(method, path, **kwargs).status_code  # type: ignore[arg-type]


def test_every_route_refuses_a_request_without_the_token_or_with_a_wrong_one(
        api_daemon: DashboardDaemon) -> None:
    url, token, _ = api_daemon
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    port = url.rsplit(":", 1)[1]
    attempts: list[dict[str, object]] = [
        {}, {"headers": {"Authorization": f"token {wrong}"}}, {"params": {"token": wrong}},
        {"headers": {"Cookie": f"ganga_async_{port}={wrong}"}},
        {"headers": {"Authorization": f"Bearer {token}"}},
    ]
    with httpx.Client(base_url=url, timeout=10) as client:
        for path in [*GETS, "/api/stream"]:
            for attempt in attempts:
                response_status = _status(client, "GET", path, **attempt)
                assert response_status == 403, (path, attempt)
        for path in ACTIONS:
            for attempt in attempts:
                assert _status(client, "POST", path, **attempt) == 403, (path, attempt)
        refused = client.get("/api/jobs")
        assert refused.text.count("\n") == 1 and "ganga-async dashboard" in refused.text


def test_the_token_in_the_url_gives_a_cookie_and_redirects_without_it(
        api_daemon: DashboardDaemon) -> None:
    url, token, _ = api_daemon
    with httpx.Client(base_url=url, timeout=10) as client:
        first = client.get("/events", params={"token": token, "x": "1"})
        assert first.status_code == 303
        assert first.headers["location"] == "/events?x=1"
        cookie = first.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        for path in GETS:
            assert _status(client, "GET", path) not in (401, 403), path
        assert _status(client, "GET", "/api/stream") == 200
        assert isinstance(client.get("/api/jobs").json()["jobs"], list)


def test_the_authorization_header_is_accepted_on_every_route(api_daemon: DashboardDaemon) -> None:
    url, token, _ = api_daemon
    with httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"token {token}"}) as client:
        for path in GETS:
            assert _status(client, "GET", path) not in (401, 403), path
        with client.stream("GET", "/api/stream") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
        session = client.get("/api/session").json()
        assert set(session) >= {"csrf", "user", "gangadir", "version"}


def test_actions_need_post_and_the_csrf_header(api_daemon: DashboardDaemon) -> None:
    url, token, _ = api_daemon
    with httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"token {token}"}) as client:
        csrf = client.get("/api/session").json()["csrf"]
        for path in ACTIONS:
            assert client.get(path).status_code == 405, path
            assert client.post(path).status_code == 403, path
            bad = client.post(path, headers={"X-CSRF-Token": csrf + "x"})
            assert bad.status_code == 403 and bad.json()["ok"] is False, path
            unknown = client.post(path.replace("/0/", "/999/"), headers={"X-CSRF-Token": csrf})
            assert unknown.status_code == 404 and "999" in unknown.json()["error"], path


def test_it_listens_on_loopback_only_and_keeps_its_token_private(
        api_daemon: DashboardDaemon) -> None:
    url, token, gangadir = api_daemon
    port = int(url.rsplit(":", 1)[1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                listening.append((table, local.rsplit(":", 1)[0]))
    assert listening == [("/proc/net/tcp", "0100007F")]
    state_file = gangadir / "service" / "dashboard.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_file.parent.stat().st_mode) == 0o700
    assert token in state_file.read_text()


@pytest.mark.parametrize(("path", "name"), [
    ("/api/jobs?status=nonsense", "status"), ("/api/events/recent?limit=x", "limit"),
    ("/api/events/recent?limit=0", "limit"), ("/api/jobs/0/subjobs?offset=-1", "offset"),
    ("/api/jobs/0/subjobs?limit=5000", "limit"), ("/api/jobs/0/timeline?buckets=abc", "buckets"),
    ("/api/jobs/0/files/stdout?limit=-5", "limit"),
])
def test_a_bad_parameter_is_a_400_naming_it(api_daemon: DashboardDaemon, path: str, name: str) -> None:
    url, token, _ = api_daemon
    with httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"token {token}"}) as client:
        response = client.get(path)
        assert response.status_code == 400, response.text
        assert repr(name) in response.json()["error"]


def test_garbage_on_the_port_is_refused_and_the_daemon_serves_on(api_daemon: DashboardDaemon) -> None:
    url, token, _ = api_daemon
    host, port = url.removeprefix("http://").split(":")
    for garbage in (b"\x00\xff\r\n\r\n", b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", b"A" * 70000):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(4096)
            assert b"root:" not in answer and (not answer or answer.startswith(b"HTTP/1.1 4")), answer
    with httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"token {token}"}) as client:
        assert client.get("/api/session").status_code == 200
