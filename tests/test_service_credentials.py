"""The daemon's credentials: the ``credentials`` and ``credentials_renew`` operations, credential
warnings on the event stream, and the command line staying local. A real daemon, real JWT bearer
token files and real renewal commands (Python processes writing a fresh token, or asking for a
pass phrase)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from _service_helpers import cli, log_events, running_daemon, service_paths
from credentials.realcreds import make_token, renewals, token_renewer, write_private

from ganga_async import RenewalError
from ganga_async._exceptions import ProtocolError
from ganga_async.service import AsyncGangaService, GangaService
from ganga_async.service._paths import ServicePaths

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

PASS_PHRASE_RENEWER = """
import getpass, os, sys, time, jwt
if getpass.getpass("Enter pass phrase: ") != "open sesame":
    sys.exit("wrong pass phrase")
token = jwt.encode({"sub": "alice", "exp": int(time.time() + 7200)}, "k" * 32, algorithm="HS256")
fd = os.open(sys.argv[1] + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, token.encode())
os.close(fd)
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
"""

ASKS_A_PASS_PHRASE = [sys.executable, "-c",
                      "import getpass, sys; sys.exit(getpass.getpass('Enter pass phrase: ') != 'x')"]


def toml_list(argv: list[str]) -> str:
    return json.dumps(argv)


@pytest.fixture
def token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The bearer token the daemon discovers ($BEARER_TOKEN_FILE, an hour left); no other
    credential of the machine is seen (a proxy or ticket cache of this user stays out)."""
    path = write_private(tmp_path / "token", make_token(3600))
    monkeypatch.delenv("BEARER_TOKEN", raising=False)
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(path))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "no-proxy"))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-ccache'}")
    return path


CREDENTIALS_CONFIG = '\n[Credentials]\nmin_time_left = "60s"\nrenew_margin = 0\ncheck_interval = 0.2\n\n'
"""Fast credential checks; a minute of time left is enough."""


@pytest.fixture
def paths(token: Path, gangadir: Path) -> ServicePaths:
    """The daemon's configuration, with :data:`CREDENTIALS_CONFIG`, once the token is in place."""
    return service_paths(gangadir, CREDENTIALS_CONFIG)


def assert_secret_free(secrets: list[str], *texts: str) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text
            assert secret.split(".")[1] not in text, "a token's payload leaked"


# -- the operations -----------------------------------------------------------------------


def test_credentials_is_the_cli_table_of_what_the_daemon_sees(daemon: ServicePaths,
                                                              token: Path) -> None:
    gs = GangaService(daemon.gangadir)
    try:
        rows = gs.credentials()
        (row,) = rows
        assert (row["type"], row["location"]) == ("BearerToken", str(token))
        assert row["identity"] == "alice (https://tokens.test.local)"
        assert 3500 < row["time_left"] <= 3600 and row["problem"] is None
        assert "Local" in row["valid_for"]
        local = json.loads(cli("credentials", "--json").stdout)
        for mine in (row, local[0]):
            mine.pop("time_left")
        assert [row] == local
        assert [r["location"] for r in gs.credentials(type="BearerToken")] == [str(token)]
        assert gs.credentials(type="X509Proxy") == []
        with pytest.raises(ProtocolError) as caught:
            gs.credentials(type="Password")
        assert caught.value.code == "bad_args"
        assert "argument 'type'" in str(caught.value) and "BearerToken" in str(caught.value)
        assert_secret_free([token.read_text().strip()], json.dumps(rows),
                           daemon.log.read_text())
    finally:
        gs.close()


def test_the_cli_credentials_commands_stay_local_while_a_daemon_runs(
    daemon: ServicePaths, tmp_path: Path, token: Path
) -> None:
    mine = write_private(tmp_path / "terminal-token", make_token(600, sub="bob"))
    count = tmp_path / "count"
    config = tmp_path / "terminal.toml"
    config.write_text(f'[Credentials.defaults.mine]\ntype = "BearerToken"\ntoken_file = "{mine}"\n'
                      f"renew_command = {toml_list(token_renewer(mine, 7200, count))}\n")
    terminal = {"BEARER_TOKEN_FILE": str(mine), "GANGA_ASYNC_CONFIG": str(config)}

    listed = cli("credentials", "--json", env=terminal)
    assert listed.returncode == 0, listed.stderr
    assert {row["location"] for row in json.loads(listed.stdout)} == {str(mine)}

    renewed = cli("credentials", "renew", "BearerToken", env=terminal)
    assert f"BearerToken token_file={mine}: renewed, " in renewed.stdout
    assert "no renew_command is set" in renewed.stderr and renewed.returncode == 2
    assert renewals(count) == 1

    gs = GangaService(daemon.gangadir)
    try:
        assert [row["location"] for row in gs.credentials()] == [str(token)]
    finally:
        gs.close()
    assert not [e for e in log_events(daemon) if "credential" in e.get("event", "")]


def test_credentials_renew_in_a_terminal_asks_its_pass_phrase_while_a_daemon_runs(
    daemon: ServicePaths, tmp_path: Path
) -> None:
    mine = write_private(tmp_path / "terminal-token", make_token(60))
    config = tmp_path / "terminal.toml"
    config.write_text(f'[Credentials.defaults.mine]\ntype = "BearerToken"\ntoken_file = "{mine}"\n'
                      f"renew_command = {toml_list([sys.executable, '-c', PASS_PHRASE_RENEWER])[:-1]}, "
                      f'"{mine}"]\n')
    controller, terminal = pty.openpty()
    command = subprocess.Popen(
        [sys.executable, "-m", "ganga_async.cli", "credentials", "renew", "BearerToken"],
        stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
        env={**os.environ, "BEARER_TOKEN_FILE": str(mine), "GANGA_ASYNC_CONFIG": str(config)})
    os.close(terminal)
    screen = b""
    try:
        while b"pass phrase: " not in screen:
            assert select.select([controller], [], [], 30)[0], f"no prompt; the screen: {screen!r}"
            screen += os.read(controller, 4096)
        os.write(controller, b"open sesame\n")
        while command.poll() is None or select.select([controller], [], [], 0)[0]:
            if select.select([controller], [], [], 1)[0]:
                try:
                    screen += os.read(controller, 4096)
                except OSError:
                    break
    finally:
        os.close(controller)
        command.wait(timeout=30)
    shown = screen.decode()
    assert "open sesame" not in shown, "the pass phrase was echoed"
    assert f"BearerToken token_file={mine}: renewed, " in shown
    (row,) = json.loads(cli("credentials", "--json", env={"BEARER_TOKEN_FILE": str(mine)}).stdout)
    assert row["location"] == str(mine) and row["time_left"] > 7100
    assert not [e for e in log_events(daemon) if "credential" in e.get("event", "")]


async def test_renewal_in_the_daemon_renews_what_it_can_and_sends_a_password_to_the_terminal(
    token: Path, gangadir: Path, tmp_path: Path
) -> None:
    lab = write_private(tmp_path / "lab-token", make_token(20, sub="lab"))
    sso = write_private(tmp_path / "sso-token", make_token(3600, sub="sso"))
    count = tmp_path / "count"
    paths = service_paths(gangadir, CREDENTIALS_CONFIG +
                          f'[Credentials.defaults.lab]\ntype = "BearerToken"\ntoken_file = "{lab}"\n'
                          f"renew_command = {toml_list(token_renewer(lab, 3600, count))}\n\n"
                          f'[Credentials.defaults.sso]\ntype = "BearerToken"\ntoken_file = "{sso}"\n'
                          f"renew_command = {toml_list(ASKS_A_PASS_PHRASE)}\n")
    secrets = [p.read_text().strip() for p in (token, lab, sso)]
    with running_daemon(paths):
        async with AsyncGangaService(paths.gangadir) as gs, \
                gs.events(types=["credential"]) as events:
            before = {row["location"]: row for row in await gs.credentials()}
            assert before[str(lab)]["time_left"] <= 20 and before[str(lab)]["valid_for"] == []
            with pytest.raises(RenewalError) as caught:
                await gs.renew_credentials("BearerToken")
            message = str(caught.value)
            assert caught.value.needs_user is True
            assert f"BearerToken token_file={sso}: `{sys.executable}` needs a password" in message
            assert "run `ganga-async credentials renew` in a terminal" in message
            assert "BearerToken: no renew_command is set" in message
            assert message.endswith(f"renewed meanwhile: BearerToken token_file={lab}")
            assert renewals(count) == 1

            after = {row["location"]: row for row in await gs.credentials()}
            assert after[str(lab)]["time_left"] > 3500 and "Local" in after[str(lab)]["valid_for"]
            seen: dict[str, str] = {}
            with anyio.fail_after(10):
                async for event in events:
                    assert event["type"] == "credential"
                    seen[event["credential"]] = event["kind"]
                    if len(seen) == 3:
                        break
            assert seen == {"BearerToken": "renewal_failed",
                            f"BearerToken token_file={lab}": "renewed",
                            f"BearerToken token_file={sso}": "renewal_failed"}
            secrets.append(lab.read_text().strip())
            assert_secret_free(secrets, message, json.dumps([before, after]))
    assert_secret_free(secrets, paths.log.read_text())


# -- the event stream ---------------------------------------------------------------------


async def test_a_credential_warning_reaches_the_event_stream_and_each_filter_gets_its_own(
    daemon: ServicePaths, tmp_path: Path
) -> None:
    short = write_private(tmp_path / "short-token", make_token(30))
    secrets = [short.read_text().strip()]
    job = {"name": "gated", "application": {"type": "Executable", "exe": "/bin/echo", "args": ["ok"]},
           "credentials": [{"type": "BearerToken", "token_file": str(short)}]}
    received: dict[str, list[dict[str, Any]]] = {"both": [], "status": [], "credential": []}

    async def follow(name: str, types: list[str], until: Any) -> None:
        async with AsyncGangaService(daemon.gangadir) as gs:
            async with gs.events(types=types) as events:
                ready[name].set()
                async for event in events:
                    received[name].append(event)
                    if event.get("kind") == "short":
                        held.set()
                    if until(received[name]):
                        return

    def completed(events: list[dict[str, Any]]) -> bool:
        return any(e.get("new") == "completed" for e in events)

    def valid_again(events: list[dict[str, Any]]) -> bool:
        return any(e.get("kind") == "valid" for e in events)

    ready = {name: anyio.Event() for name in received}
    held = anyio.Event()
    async with AsyncGangaService(daemon.gangadir) as gs:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow, "both", ["status", "credential"],
                              lambda e: completed(e) and valid_again(e))
                tg.start_soon(follow, "status", ["status"], completed)
                tg.start_soon(follow, "credential", ["credential"], valid_again)
                for event in ready.values():
                    await event.wait()
                submitted = await gs.submit(job)
                await held.wait()
                assert (await gs.job(submitted["id"]))["status"] == "held"
                write_private(short, make_token(3600))
        assert (await gs.job(submitted["id"]))["status"] == "completed"

    warnings = [e for e in received["both"] if e["type"] == "credential"]
    kinds = [e["kind"] for e in warnings]
    assert {"renewal_failed", "short"} <= set(kinds) and kinds[-1] == "valid"
    short_warning = warnings[kinds.index("short")]
    assert short_warning["credential"] == f"BearerToken token_file={short}"
    assert "60 s needed" in short_warning["message"]
    assert "ganga-async credentials renew" in short_warning["message"]
    assert 0 < short_warning["time_left"] <= 30
    assert "held" in [e.get("new") for e in received["both"]]
    assert {e["type"] for e in received["status"]} == {"status"}
    assert {e["type"] for e in received["credential"]} == {"credential"}
    assert warnings == received["credential"][:len(warnings)]
    assert_secret_free(secrets, json.dumps(received), daemon.log.read_text())


async def test_events_refuses_an_unknown_type_naming_the_argument(daemon: ServicePaths) -> None:
    async with AsyncGangaService(daemon.gangadir) as gs:
        for types in (["jobs"], []):
            with pytest.raises(ProtocolError) as caught:
                async with gs.events(types=types):
                    pass
            assert caught.value.code == "bad_args"
            assert "argument 'types'" in str(caught.value) and "'credential'" in str(caught.value)
        assert (await gs.ping())["pid"] == gs.daemon_pid
