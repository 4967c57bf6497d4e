"""The service with real daemon processes: started and stopped through the command line, used
through the clients, a raw socket, and another user's process."""

from __future__ import annotations

import concurrent.futures
import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from _service_helpers import cli, log_events, stop_daemon

from ganga_async import GangaAsyncError, JobNotFoundError, JobSpecError
from ganga_async._exceptions import CommandTimeoutError, ServiceError
from ganga_async.service import AsyncGangaService, GangaService
from ganga_async.service._paths import ServicePaths

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


def echo(*words: str, name: str = "") -> dict[str, Any]:
    return {"name": name, "application": {"type": "Executable", "exe": "/bin/echo", "args": list(words)}}


# -- start, use, stop ---------------------------------------------------------------------


def test_start_use_stop_leaves_nothing_behind_and_keeps_every_job(paths: ServicePaths) -> None:
    started = cli("service", "start")
    assert started.returncode == 0, started.stderr
    pid = paths.running_pid()
    assert pid is not None and f"pid {pid}" in started.stdout
    assert oct(paths.directory.stat().st_mode & 0o777) == "0o700"
    assert oct(paths.socket.stat().st_mode & 0o777) == "0o600"

    again = cli("service", "start")
    assert again.returncode == 1
    assert f"already runs for {paths.gangadir} (pid {pid})" in again.stdout

    status = cli("--json", "service", "status")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["pid"] == pid

    gs = GangaService(paths.gangadir)
    job = gs.submit(echo("hello", "service"))
    assert gs.wait(job["id"], timeout=30)["status"] == "completed"
    assert gs.peek(job["id"]) == "hello service\n"
    assert [row["id"] for row in gs.jobs(status="completed")] == [job["id"]]
    gs.close()

    # A client still connected at stop, between requests: its connection is ended, not torn.
    idle = GangaService(paths.gangadir, autostart=False)
    assert idle.ping()["pid"] == pid
    stopped = cli("service", "stop", timeout=30)
    assert stopped.returncode == 0, stopped.stderr
    assert paths.running_pid() is None
    assert not paths.socket.exists() and not paths.pidfile.exists()
    assert cli("service", "status").returncode == 3
    with pytest.raises(GangaAsyncError):
        idle.ping()
    idle.close()
    logged = log_events(paths)
    events = [e["event"] for e in logged]
    assert events[0] == "service ready" and events[-1] == "service stopped"
    assert [e for e in logged if e["level"] in ("error", "critical")] == []

    offline = cli("--json", "show", str(job["id"]))
    assert json.loads(offline.stdout)["status"] == "completed"


def test_the_cli_uses_a_running_daemon_and_submit_returns_at_once(daemon: ServicePaths,
                                                                  tmp_path: Path) -> None:
    jobfile = tmp_path / "slow.toml"
    jobfile.write_text('[application]\ntype = "Executable"\nexe = "/bin/sh"\n'
                       'args = ["-c", "sleep 1; echo done"]\n')
    submitted = cli("--json", "submit", str(jobfile))
    assert submitted.returncode == 0, submitted.stderr
    info = json.loads(submitted.stdout)
    # submit returns once the job is handed over (issue 14: a refusal must show), long before
    # it ends: by then its process may already have started.
    assert info["status"] in ("submitting", "submitted", "running")
    waited = cli("wait", str(info["id"]))
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.startswith(f"job {info['id']} completed")
    assert cli("peek", str(info["id"])).stdout == "done\n"
    missing = cli("show", "99")
    assert (missing.returncode, missing.stderr.startswith("error: no job 99")) == (2, True)
    assert any(e.get("event") == "job accepted" for e in log_events(daemon)), \
        "the daemon, not the command, accepted the job"


def test_the_client_starts_the_daemon_after_prerun_and_keeps_its_environment(paths: ServicePaths) -> None:
    gs = GangaService()
    gs.gangadir = str(paths.gangadir)
    gs.prerun = "export GANGA_TEST_PRERUN=from-prerun"
    try:
        assert gs.sendCmd("import os\nprint(os.environ['GANGA_TEST_PRERUN'])") == "from-prerun\n"
        assert paths.running_pid() == gs.ping()["pid"]
        gs.killServer()
        assert paths.running_pid() is None
    finally:
        stop_daemon(paths)


def test_closing_a_sync_client_ends_the_call_another_thread_is_blocked_in(daemon: ServicePaths) -> None:
    observer = GangaService(daemon.gangadir)
    observer.send_cmd("import threading\nrelease = threading.Event()")
    gs = GangaService(daemon.gangadir)
    outcome: list[object] = []

    def blocked() -> None:
        try:
            outcome.append(gs.call("send_cmd", code="release.wait()"))
        except BaseException as exc:
            outcome.append(exc)

    def client_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "ganga-async service client"}

    before = client_threads()
    thread = threading.Thread(target=blocked)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while observer.ping()["in_progress"] == 0:
            assert time.monotonic() < deadline, "the blocked call never reached the daemon"
            time.sleep(0.05)
        gs.close()
        thread.join(10)
        assert not thread.is_alive(), "close() left the blocked call running"
        assert len(outcome) == 1 and isinstance(outcome[0], concurrent.futures.CancelledError)
        assert client_threads() == before, "the client's own thread is still alive"
    finally:
        observer.send_cmd("release.set()")
        observer.close()
        thread.join(10)


# -- send_cmd -------------------------------------------------------------------------------


async def test_send_cmd_keeps_its_namespace_and_returns_output_and_tracebacks(daemon: ServicePaths) -> None:
    async with AsyncGangaService(daemon.gangadir) as gs:
        out = await gs.send_cmd("j = Job(application=Executable(exe='/bin/echo', args=['x']))\n"
                                "j.submit()\nj.wait(timeout=30)\nprint(j.id, j.status)")
        assert out == "0 completed\n"
        assert await gs.send_cmd("import sys\nprint('to stderr', file=sys.stderr)\nj.peek('stdout')") == \
            "to stderr\n'x\\n'\n"
        failed = await gs.send_cmd("jobs(42)")
        assert failed.startswith("Traceback") and "JobNotFoundError: no job 42" in failed
        assert '<send_cmd' in failed and "jobs(42)" in failed
        assert (await gs.send_cmd("raise SystemExit(3)")).endswith("SystemExit: 3\n")
        assert (await gs.ping())["pid"] == gs.daemon_pid


async def test_send_cmd_running_forever_is_interrupted_and_the_daemon_goes_on(daemon: ServicePaths) -> None:
    async with AsyncGangaService(daemon.gangadir) as gs:
        with pytest.raises(CommandTimeoutError) as caught:
            await gs.send_cmd("n = 0\nwhile True:\n    n += 1", timeout=1)
        assert caught.value.output.rstrip().endswith("KeyboardInterrupt")
        assert int(await gs.send_cmd("n")) > 0

        started = time.monotonic()
        with pytest.raises(CommandTimeoutError) as caught:
            await gs.send_cmd("j = Job(application=Executable(exe='sleep', args=['30']))\n"
                              "j.submit()\nj.wait()", timeout=1)
        assert time.monotonic() - started < 15, "the wait was not cut short (the job sleeps 30 s)"
        assert "KeyboardInterrupt" in caught.value.output
        assert await gs.send_cmd("print(j.status)") in ("submitted\n", "running\n")
        await gs.kill(0)

        with pytest.raises(CommandTimeoutError) as caught:
            await gs.send_cmd("import time\ntime.sleep(3600)", timeout=0.5)
        assert "it is blocked in a call" in caught.value.output
        assert await gs.send_cmd("print('still serving')") == "still serving\n"


def test_ctrl_c_in_a_sync_client_interrupts_its_code_in_the_daemon(daemon: ServicePaths) -> None:
    script = textwrap.dedent(f"""
        import sys
        from ganga_async.service import GangaService
        gs = GangaService({str(daemon.gangadir)!r})
        gs.send_cmd("started = True")
        print("running", flush=True)
        gs.send_cmd("while True:\\n    pass")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "running\n"
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode != 0 and stderr.rstrip().endswith("KeyboardInterrupt")
    gs = GangaService(daemon.gangadir)
    assert gs.ping()["in_progress"] == 0
    assert gs.send_cmd("print(started)") == "True\n"
    gs.close()


# -- bad input and load -------------------------------------------------------------------


def raw_connection(paths: ServicePaths) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    with paths.socket_address() as address:
        sock.connect(address)
    return sock


def read_all(sock: socket.socket) -> list[dict[str, Any]]:
    """Every message until the daemon closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return [json.loads(line) for line in data.splitlines()]


@pytest.mark.parametrize(("payload", "half_close", "code"), [
    (b"not json at all\n", False, "malformed"),
    (b'{"v": 9, "id": 1, "op": "ping"}\n', False, "unsupported_version"),
    (b'{"v": 1, "id": 1, "op": "pi', True, "truncated"),
    (b"x" * ((1 << 20) + 1), False, "too_large"),
])
def test_a_broken_message_gets_an_error_and_its_connection_closed_while_others_are_served(
    daemon: ServicePaths, payload: bytes, half_close: bool, code: str
) -> None:
    bystander = raw_connection(daemon)
    bad = raw_connection(daemon)
    bad.sendall(payload)
    if half_close:
        bad.shutdown(socket.SHUT_WR)
    (reply,) = read_all(bad)
    assert reply["ok"] is False and reply["id"] is None
    assert (reply["error"]["type"], reply["error"]["code"]) == ("ProtocolError", code)
    bystander.sendall(b'{"v": 1, "id": "b", "op": "ping"}\n')
    answer = json.loads(bystander.makefile("rb").readline())
    assert (answer["id"], answer["ok"], answer["result"]["service"]) == ("b", True, "ganga-async")
    bystander.close()
    bad.close()


def test_an_unknown_operation_or_argument_is_an_error_on_a_connection_that_stays_open(
    daemon: ServicePaths,
) -> None:
    sock = raw_connection(daemon)
    lines = sock.makefile("rb")
    sock.sendall(b'{"v": 1, "id": 1, "op": "rm -rf"}\n{"v": 1, "id": 2, "op": "kill", "args": {}}\n'
                 b'{"v": 1, "id": 3, "op": "submit", "args": {"job": {"exe": 1}}}\n')
    replies = {r["id"]: r["error"] for r in (json.loads(lines.readline()) for _ in range(3))}
    assert replies[1]["code"] == "unknown_op"
    assert "valid: box, cancel, credentials, credentials_renew, events" in replies[1]["message"]
    assert replies[2]["message"] == "kill: argument 'id' is required"
    assert (replies[3]["type"], replies[3]["field"]) == ("JobSpecError", "exe")
    sock.sendall(b'{"v": 1, "id": 4, "op": "ping"}\n')
    assert json.loads(lines.readline())["ok"] is True
    sock.close()


async def test_errors_come_back_as_the_same_exceptions(daemon: ServicePaths) -> None:
    async with AsyncGangaService(daemon.gangadir) as gs:
        with pytest.raises(JobNotFoundError, match="no job 5"):
            await gs.job(5)
        with pytest.raises(JobSpecError) as caught:
            await gs.submit({"application": {"type": "Executable", "exe": "/no/such/exe"}})
        assert caught.value.field == "application.exe"
        with pytest.raises(JobSpecError, match="inputfiles\\[0\\]"):
            await gs.submit({**echo("x"), "inputfiles": ["missing.txt"]})


async def test_a_client_gone_mid_request_loses_nothing_it_sent(daemon: ServicePaths) -> None:
    async with AsyncGangaService(daemon.gangadir) as gs:
        async with gs.events(subjobs=False) as events:
            sock = raw_connection(daemon)
            request = {"v": 1, "id": 1, "op": "submit", "args": {"job": echo("left", name="orphan")}}
            sock.sendall(json.dumps(request).encode() + b"\n")
            sock.close()
            async for event in events:
                if event["new"] == "completed":
                    break
        (row,) = await gs.jobs(name="orphan")
        assert row["status"] == "completed"
        assert await gs.peek(row["id"]) == "left\n"


async def test_fifty_clients_each_submitting_and_following_events_get_correct_answers(
    daemon: ServicePaths,
) -> None:
    async def one_client(n: int) -> tuple[int, str, str]:
        async with AsyncGangaService(daemon.gangadir) as gs:
            async with gs.events(subjobs=False) as events:
                job = await gs.submit(echo(f"client {n}", name=f"c{n}"))
                async for event in events:
                    if event["job_id"] == job["id"] and event["new"] in ("completed", "failed"):
                        break
            (row,) = await gs.jobs(name=f"c{n}")
            return row["id"], event["new"], await gs.peek(job["id"])

    results: dict[int, tuple[int, str, str]] = {}

    async def run(n: int) -> None:
        results[n] = await one_client(n)

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            for n in range(50):
                tg.start_soon(run, n)
    assert sorted(job_id for job_id, _, _ in results.values()) == list(range(50))
    for n, (_, status, out) in results.items():
        assert (status, out) == ("completed", f"client {n}\n")


# -- crashes --------------------------------------------------------------------------------


def test_a_daemon_killed_with_sigkill_is_restarted_cleaning_its_files_and_losing_no_job(
    daemon: ServicePaths, tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    gs = GangaService(daemon.gangadir)
    split = {"application": {"type": "Executable", "exe": "/bin/sh", "args": []},
             "backend": {"type": "Local", "max_concurrent": 3},
             "splitter": {"type": "ArgSplitter",
                          "args": [["-c", f"echo {i} >> {ledger}; sleep 0.2"] for i in range(24)]}}
    big = gs.submit(split)
    small = gs.submit(echo("small"))
    pid = gs.ping()["pid"]
    gs.close()
    pidfd = os.pidfd_open(pid)
    os.kill(pid, signal.SIGKILL)
    select.select([pidfd], [], [], 10)
    os.close(pidfd)
    status = cli("--json", "service", "status")
    assert status.returncode == 3
    assert sorted(json.loads(status.stdout)["stale"]) == sorted([str(daemon.pidfile), str(daemon.socket)])

    restarted = cli("service", "start")
    assert restarted.returncode == 0, restarted.stderr
    cleaned = [e for e in log_events(daemon) if e["event"].startswith("removed")]
    assert [(e["event"], e.get("pid")) for e in cleaned][:1] == [
        ("removed the pid file of a daemon that died", pid)]
    gs = GangaService(daemon.gangadir)
    try:
        assert gs.wait(big["id"], timeout=60)["status"] == "completed"
        assert gs.wait(small["id"], timeout=30)["status"] == "completed"
        assert sorted(int(x) for x in ledger.read_text().split()) == list(range(24))
    finally:
        gs.close()


# -- another user ---------------------------------------------------------------------------


FOREIGN_CLIENT = """
import json, os, socket, sys
fd = int(sys.argv[1])
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    sock.connect(f"/proc/self/fd/{fd}/socket")
except OSError as exc:
    print(json.dumps({"connect": type(exc).__name__}))
    sys.exit(0)
sock.sendall(b'{"v": 1, "id": 1, "op": "send_cmd", "args": {"code": "print(1)"}}\\n')
data = b""
while chunk := sock.recv(65536):
    data += chunk
print(json.dumps({"uid": os.getuid(), "replies": [json.loads(l) for l in data.splitlines()]}))
"""


def run_as(user: str, paths: ServicePaths) -> dict[str, Any]:
    """Connect to the daemon as ``user``, through a descriptor of the service directory
    (the test's own directories above it are closed to other users)."""
    fd = os.open(paths.directory, os.O_PATH | os.O_DIRECTORY)
    try:
        problems = []
        for python in (os.path.realpath(sys.executable), "/usr/bin/python3"):
            try:
                result = subprocess.run([python, "-I", "-c", FOREIGN_CLIENT, str(fd)], user=user,
                                        pass_fds=(fd,), capture_output=True, text=True, timeout=30,
                                        cwd="/")
            except PermissionError as exc:
                problems.append(str(exc))
                continue
            if result.returncode == 0:
                answer: dict[str, Any] = json.loads(result.stdout)
                return answer
            problems.append(result.stderr)
        raise AssertionError(f"no Python runs as {user}: {problems}")
    finally:
        os.close(fd)


def test_another_users_process_is_refused_and_logged(daemon: ServicePaths, other_user: str) -> None:
    assert run_as(other_user, daemon) == {"connect": "PermissionError"}

    os.chmod(daemon.directory, 0o711)
    os.chmod(daemon.socket, 0o666)
    try:
        answer = run_as(other_user, daemon)
    finally:
        os.chmod(daemon.socket, 0o600)
        os.chmod(daemon.directory, 0o700)
    (reply,) = answer["replies"]
    assert reply["error"]["type"] == "ServiceAccessError"
    assert f"connection from uid {answer['uid']} refused" in reply["error"]["message"]
    refused = [e for e in log_events(daemon) if e["event"] == "connection refused: another user"]
    assert [e["uid"] for e in refused] == [answer["uid"]]
    assert GangaService(daemon.gangadir, autostart=False).ping()["pid"] == daemon.running_pid()


def test_a_client_refuses_a_service_directory_others_can_enter(daemon: ServicePaths) -> None:
    os.chmod(daemon.directory, 0o755)
    try:
        with pytest.raises(ServiceError, match="mode 0700"):
            GangaService(daemon.gangadir, autostart=False).ping()
    finally:
        os.chmod(daemon.directory, 0o700)


def test_the_daemon_never_logs_through_a_planted_symbolic_link(paths: ServicePaths, tmp_path: Path) -> None:
    """A link where the service log goes (planted by whoever could write there) is refused: the
    daemon does not start, and the link's target is untouched."""
    target = tmp_path / "elsewhere.txt"
    target.write_text("untouched\n")
    paths.log.parent.mkdir(parents=True, exist_ok=True)
    paths.log.symlink_to(target)
    started = cli("service", "start")
    try:
        assert started.returncode != 0
        assert target.read_text() == "untouched\n"
    finally:
        stop_daemon(paths)
