"""X509Proxy and VomsProxy on proxies made by the real grid tools from a PKI made in the test."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from realcreds import Pki, write_private

from ganga_async import CredentialError, RenewalError, VomsProxy, X509Proxy

pytestmark = pytest.mark.anyio


def grid_proxy_info(proxy: Path, option: str) -> str:
    return subprocess.run(["grid-proxy-info", "-file", str(proxy), option], capture_output=True,
                          text=True, check=True).stdout.strip()


async def test_a_real_proxy_has_the_identity_and_lifetime_the_grid_tools_report(
    grid: Pki, tmp_path: Path
) -> None:
    proxy = grid.make_proxy(tmp_path / "x509up", "0:05")
    credential = X509Proxy()
    assert credential.location == str(proxy)  # $X509_USER_PROXY
    assert await credential.identity() == grid_proxy_info(proxy, "-identity") == grid.user_dn
    assert abs(await credential.timeleft() - int(grid_proxy_info(proxy, "-timeleft"))) <= 2
    assert await credential.is_valid("4m") and not await credential.is_valid("10m")


async def test_a_proxy_others_can_read_is_refused_and_never_quoted(grid: Pki, tmp_path: Path) -> None:
    proxy = grid.make_proxy(tmp_path / "x509up")
    proxy.chmod(0o640)
    credential = X509Proxy(proxy_path=str(proxy))
    assert await credential.timeleft() == 0
    with pytest.raises(CredentialError, match="open to group or others.*chmod 600") as caught:
        await credential.identity()
    assert "BEGIN" not in str(caught.value)


async def test_a_corrupt_proxy_is_invalid_with_a_clear_error(tmp_path: Path) -> None:
    proxy = write_private(tmp_path / "x509up", "-----BEGIN CERTIFICATE-----\nnot base64\n")
    info = await X509Proxy(proxy_path=str(proxy)).info()
    assert info.exists and info.time_left() == 0
    assert info.problem is not None and "not a PEM certificate chain" in info.problem
    assert "not base64" not in info.problem


async def test_a_missing_proxy_does_not_exist(tmp_path: Path) -> None:
    credential = VomsProxy(vo="lhcb", proxy_path=str(tmp_path / "none"))
    assert not await credential.exists()
    reason = credential.reason(await credential.info(), 3600)
    assert reason.startswith("VomsProxy vo=lhcb proxy_path=")
    assert reason.endswith("run voms-proxy-init or `ganga-async credentials renew`")


async def test_a_voms_proxy_ends_with_the_earlier_of_its_chain_and_its_attributes(
    grid: Pki, tmp_path: Path
) -> None:
    proxy = grid.make_voms_proxy(tmp_path / "voms", left=30)
    voms = VomsProxy(vo="testvo", proxy_path=str(proxy))
    assert 25 <= await voms.timeleft() <= 31
    assert await voms.identity() == grid.user_dn
    info = await voms.info()
    assert info.details["fqans"] == ["/testvo/Role=NULL/Capability=NULL", "/testvo/prod/Role=admin"]
    assert await VomsProxy(vo="testvo", group="prod", role="admin", proxy_path=str(proxy)).is_valid()
    wrong_role = await VomsProxy(vo="testvo", role="production", proxy_path=str(proxy)).info()
    assert wrong_role.problem is not None and "no FQAN /testvo/Role=production" in wrong_role.problem
    other_vo = await VomsProxy(vo="lhcb", proxy_path=str(proxy)).info()
    assert other_vo.problem is not None and "for testvo, not for lhcb" in other_vo.problem
    plain = await VomsProxy(vo="testvo", proxy_path=str(grid.make_proxy(tmp_path / "plain"))).info()
    assert plain.problem is not None and "no VOMS attributes" in plain.problem


async def test_renewal_with_grid_proxy_init_is_seen_at_once(grid: Pki, tmp_path: Path) -> None:
    proxy = grid.make_proxy(tmp_path / "x509up", "0:01")
    credential = X509Proxy(proxy_path=str(proxy), renew_command=grid.grid_proxy_init(proxy, "0:30"))
    assert await credential.timeleft() <= 60
    info = await credential.renew()
    assert 1790 <= info.time_left() <= 1800


async def test_voms_proxy_init_without_a_voms_server_fails_clearly(grid: Pki, tmp_path: Path) -> None:
    proxy = grid.make_voms_proxy(tmp_path / "voms", left=30)
    credential = VomsProxy(vo="testvo", proxy_path=str(proxy))
    assert credential.default_renew_command() == ["voms-proxy-init", "-voms", "testvo", "-out", str(proxy)]
    with pytest.raises(RenewalError, match="`voms-proxy-init` failed with exit code 1"):
        await credential.renew()
    assert await credential.timeleft() <= 30


async def test_a_key_with_a_pass_phrase_makes_renewal_need_a_person(grid: Pki, tmp_path: Path) -> None:
    proxy = tmp_path / "x509up"
    command = ["grid-proxy-init", "-bits", "1024", "-cert", str(grid.usercert),
               "-key", str(grid.userkey_encrypted), "-out", str(proxy)]
    credential = X509Proxy(proxy_path=str(proxy), renew_command=command)
    started = time.monotonic()
    with pytest.raises(RenewalError, match="needs a password the engine cannot give") as caught:
        await credential.renew()
    assert caught.value.needs_user
    assert time.monotonic() - started < 10
    assert not proxy.exists()
