"""The JSON API on real Local jobs run by a real daemon: counts, failure reasons, subjob pages,
cells, timeline, the files of a subjob (and nothing outside them), and the actions."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import DashboardDaemon, dashboard_cli

MIX = ["echo ok 0", "echo bad >&2; exit 3", "echo ok 2", "echo bad >&2; exit 3", "echo ok 4",
       "echo ok 5"]


def _job_file(directory: Path, name: str, commands: list[str]) -> Path:
    path = directory / f"{name}.toml"
    args = ", ".join(json.dumps(["-c", c]) for c in commands)
    path.write_text(f'name = "{name}"\n[application]\ntype = "Executable"\nexe = "/bin/sh"\nargs = []\n'
                    f'[backend]\ntype = "Local"\n[splitter]\ntype = "ArgSplitter"\nargs = [{args}]\n')
    return path


def submit(daemon: DashboardDaemon, tmp_path: Path, name: str, commands: list[str], *,
           wait: bool = True) -> int:
    """Submit a split job of ``sh -c`` commands through the daemon; its id."""
    done = dashboard_cli(daemon.gangadir, "submit", str(_job_file(tmp_path, name, commands)),
                         *(["--wait"] if wait else []), "--json")
    assert done.returncode in (0, 1), done.stderr
    return int(json.loads(done.stdout)["id"])


@pytest.fixture
def api(api_daemon: DashboardDaemon) -> Iterator[httpx.Client]:
    url, token, _ = api_daemon
    with httpx.Client(base_url=url, timeout=20, headers={"Authorization": f"token {token}"}) as client:
        yield client


def until(check: Any, timeout: float = 30) -> Any:
    """Poll ``check()`` until it returns something true (the API is read from outside)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _raw_get(url: str, token: str, path: str) -> tuple[int, str]:
    """GET ``path`` exactly as written: httpx would resolve '..' before sending it."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path, headers={"Authorization": f"token {token}"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_a_split_job_with_failing_subjobs_as_the_api_shows_it(
        api_daemon: DashboardDaemon, api: httpx.Client, tmp_path: Path) -> None:
    job_id = submit(api_daemon, tmp_path, "mix", MIX)
    row = until(lambda: next((j for j in api.get("/api/jobs").json()["jobs"]
                              if j["id"] == job_id and j["status"] == "failed"), None))
    assert row["counts"] == {"completed": 4, "failed": 2} and row["subjobs"] == 6
    assert row["application"] == "Executable" and row["backend"] == "Local" and row["elapsed"] >= 0
    assert [j["id"] for j in api.get("/api/jobs", params={"status": "failed", "name": "mix"}).json()["jobs"]
            ] == [job_id]
    assert api.get("/api/jobs", params={"backend": "Slurm"}).json() == {"jobs": []}

    detail = api.get(f"/api/jobs/{job_id}").json()
    assert detail["reasons"] == [{"reason": "exit code 3", "count": 2, "example": f"{job_id}.1"}]
    assert detail["attempts"] == {"max": 1, "total": 6}
    assert detail["application"]["exe"] == "/bin/sh" and detail["splitter"]["type"] == "ArgSplitter"

    failed = api.get(f"/api/jobs/{job_id}/subjobs", params={"status": "failed"}).json()
    assert failed["total"] == 2 and [r["index"] for r in failed["rows"]] == [1, 3]
    assert failed["rows"][0]["reason"] == "exit code 3" and failed["rows"][0]["fqid"] == f"{job_id}.1"
    page = api.get(f"/api/jobs/{job_id}/subjobs", params={"offset": 2, "limit": 3}).json()
    assert page["total"] == 6 and [r["index"] for r in page["rows"]] == [2, 3, 4]
    assert api.get(f"/api/jobs/{job_id}/subjobs", params={"q": "exit code"}).json()["total"] == 2

    cells = api.get(f"/api/jobs/{job_id}/cells").json()
    assert cells["n"] == len(cells["codes"]) == 6
    assert [cells["legend"][ord(c) - 48] for c in cells["codes"]] == [
        "completed", "failed", "completed", "failed", "completed", "completed"]

    line = api.get(f"/api/jobs/{job_id}/timeline", params={"buckets": 10}).json()
    assert len(line["edges"]) == 11 and sum(line["started"]) == sum(line["ended"]) == 6
    assert line["running"][-1] == 0

    assert api.get("/api/jobs/999").status_code == 404
    assert api.get("/api/jobs/999/cells").json()["error"].startswith("no job 999")


def test_the_files_route_reads_a_subjobs_files_and_nothing_outside(
        api_daemon: DashboardDaemon, api: httpx.Client, tmp_path: Path) -> None:
    url, token, gangadir = api_daemon
    job_id = submit(api_daemon, tmp_path, "files", MIX[:2])
    stderr = api.get(f"/api/jobs/{job_id}.1/files/stderr").json()
    assert stderr["text"] == "bad\n" and stderr["truncated"] is False
    tail = api.get(f"/api/jobs/{job_id}.0/files/stdout", params={"limit": 2}).json()
    assert tail["text"] == "0\n" and tail["truncated"] is True

    shown = json.loads(dashboard_cli(gangadir, "show", f"{job_id}.1", "--json").stdout)
    outputdir = Path(shown["outputdir"])
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.txt").write_text("HUSH-42")
    (outputdir / "leak").symlink_to(secret / "secret.txt")
    (outputdir / "door").symlink_to(secret)
    (outputdir / "inside").symlink_to(outputdir / "stderr")
    assert api.get(f"/api/jobs/{job_id}.1/files/inside").json()["text"] == "bad\n"
    for name in ("leak", "door/secret.txt"):
        refused = api.get(f"/api/jobs/{job_id}.1/files/{name}")
        assert refused.status_code == 404 and "HUSH" not in refused.text, name
    for path in (f"/api/jobs/{job_id}.1/files/../../../../outside/secret.txt",
                 f"/api/jobs/{job_id}.1/files/%2e%2e/%2e%2e/stderr",
                 f"/api/jobs/{job_id}.1/files/%2E%2E%2Fstderr",
                 f"/api/jobs/{job_id}.1/files//etc/passwd"):
        status, body = _raw_get(url, token, path)
        assert status in (400, 404) and "root:" not in body and "HUSH" not in body, path
        assert len(body.strip().splitlines()) == 1, path
    assert api.get(f"/api/jobs/{job_id}.7/files/stdout").status_code == 404
    assert api.get(f"/api/jobs/{job_id}.1/files/nothing").status_code == 404


def test_kill_resubmit_and_remove_through_post_do_what_the_cli_does(
        api_daemon: DashboardDaemon, api: httpx.Client, tmp_path: Path) -> None:
    csrf = {"X-CSRF-Token": api.get("/api/session").json()["csrf"]}
    sleeper = submit(api_daemon, tmp_path, "sleeper", ["sleep 60", "sleep 60"], wait=False)
    until(lambda: api.get(f"/api/jobs/{sleeper}").json()["counts"].get("running") == 2)
    killed = api.post(f"/api/jobs/{sleeper}/kill", headers=csrf)
    assert killed.status_code == 200 and killed.json()["ok"] is True
    assert until(lambda: api.get(f"/api/jobs/{sleeper}").json()["status"] == "killed")
    again = api.post(f"/api/jobs/{sleeper}/kill", headers=csrf)
    assert again.status_code == 409 and again.json()["ok"] is False

    mix = submit(api_daemon, tmp_path, "again", MIX[:2])
    resubmitted = api.post(f"/api/jobs/{mix}/resubmit", headers=csrf)
    assert resubmitted.status_code == 200 and resubmitted.json()["ok"] is True
    done = until(lambda: (lambda d: d if d["status"] == "failed" and d["attempts"]["total"] == 3 else None)(
        api.get(f"/api/jobs/{mix}").json()))
    assert done["attempts"] == {"max": 2, "total": 3} and done["counts"] == {"completed": 1, "failed": 1}

    removed = api.post(f"/api/jobs/{mix}/remove", headers=csrf)
    assert removed.status_code == 200 and removed.json()["ok"] is True
    assert api.get(f"/api/jobs/{mix}").status_code == 404
    assert dashboard_cli(api_daemon.gangadir, "show", str(mix)).returncode == 2
