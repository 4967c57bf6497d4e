"""BearerToken: WLCG discovery, lifetime from the JWT, renewal by a command; tokens signed here."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from realcreds import make_token, renewals, token_renewer, write_private

from ganga_async import BearerToken, CredentialError, RenewalError

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def no_token_in_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BEARER_TOKEN", "BEARER_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))


async def test_lifetime_and_identity_come_from_the_jwt(tmp_path: Path) -> None:
    path = write_private(tmp_path / "token", make_token(600))
    token = BearerToken(token_file=str(path))
    assert 595 <= await token.timeleft() <= 600
    assert await token.identity() == "alice (https://tokens.test.local)"
    assert await token.is_valid(min_time_left="5m")
    assert not await token.is_valid(min_time_left="1h")
    expiry = await token.expiry_time()
    assert expiry is not None and abs(expiry.timestamp() - time.time() - 600) < 5


async def test_wlcg_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    run.mkdir()
    write_private(run / f"bt_u{os.getuid()}", make_token(100, sub="from-xdg"))
    assert await BearerToken().identity() == "from-xdg (https://tokens.test.local)"
    in_file = write_private(tmp_path / "f", make_token(200, sub="from-file"))
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(in_file))
    assert (await BearerToken().identity()).startswith("from-file")
    monkeypatch.setenv("BEARER_TOKEN", make_token(300, sub="from-env"))
    token = BearerToken()
    assert token.location == "$BEARER_TOKEN"
    assert (await token.identity()).startswith("from-env")


async def test_a_new_token_file_is_noticed_at_once(tmp_path: Path) -> None:
    path = write_private(tmp_path / "token", make_token(10))
    token = BearerToken(token_file=str(path))
    assert await token.timeleft() <= 10
    write_private(path, make_token(900))
    assert await token.timeleft() > 890


async def test_a_malformed_token_is_invalid_and_the_error_never_quotes_it(tmp_path: Path) -> None:
    secret = "eyJhbGciOiJIUzI1NiJ9.not-json-at-all.c2lnbmF0dXJl"
    token = BearerToken(token_file=str(write_private(tmp_path / "token", secret)))
    info = await token.info()
    assert info.exists and await token.timeleft() == 0
    assert info.problem is not None and "not a valid JWT" in info.problem
    with pytest.raises(CredentialError) as caught:
        await token.identity()
    assert secret not in str(caught.value) and "not-json" not in str(caught.value)


async def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = write_private(tmp_path / "token", make_token(600))
    path.chmod(0o644)
    info = await BearerToken(token_file=str(path)).info()
    assert info.problem is not None and "chmod 600" in info.problem
    assert info.time_left() == 0


async def test_a_missing_token_does_not_exist(tmp_path: Path) -> None:
    token = BearerToken(token_file=str(tmp_path / "nothing"))
    assert not await token.exists()
    assert await token.timeleft() == 0
    assert "no bearer token at" in token.reason(await token.info(), 60)


async def test_renewal_runs_the_configured_command(tmp_path: Path) -> None:
    path = write_private(tmp_path / "token", make_token(5))
    count = tmp_path / "count"
    token = BearerToken(token_file=str(path), renew_command=token_renewer(path, 3600, count))
    info = await token.renew()
    assert info.time_left() > 3590
    assert renewals(count) == 1


async def test_renewal_writes_what_the_command_prints_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "token"
    printer = [sys.executable, "-c", f"print({make_token(1800)!r})"]
    token = BearerToken(token_file=str(path), renew_command=printer, write_output=True)
    assert (await token.renew()).time_left() > 1790
    assert path.stat().st_mode & 0o777 == 0o600


async def test_without_a_command_renewal_needs_a_person(tmp_path: Path) -> None:
    with pytest.raises(RenewalError, match="no renew_command") as caught:
        await BearerToken(token_file=str(tmp_path / "token")).renew()
    assert caught.value.needs_user


async def test_a_missing_or_hanging_command_is_a_clear_error(tmp_path: Path) -> None:
    path = write_private(tmp_path / "token", make_token(5))
    missing = BearerToken(token_file=str(path), renew_command=["no-such-oidc-token"])
    with pytest.raises(RenewalError, match="`no-such-oidc-token` is not installed"):
        await missing.renew()
    hanging = BearerToken(token_file=str(path), renew_command=["sleep", "30"])
    hanging._timeout = 0.5
    started = time.monotonic()
    with pytest.raises(RenewalError, match="did not finish within 0.5 s"):
        await hanging.renew()
    assert time.monotonic() - started < 5
    assert await hanging.timeleft() <= 5


async def test_a_failing_command_that_asks_for_a_password_needs_a_person(tmp_path: Path) -> None:
    path = write_private(tmp_path / "token", make_token(5))
    asks = [sys.executable, "-c", "import sys; sys.stderr.write('Enter password: '); sys.exit(1)"]
    with pytest.raises(RenewalError, match="needs a password") as caught:
        await BearerToken(token_file=str(path), renew_command=asks).renew()
    assert caught.value.needs_user
