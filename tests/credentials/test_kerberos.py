"""KerberosTicket and AFSToken's Kerberos part against a real MIT KDC on loopback."""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import pytest
from realcreds import Kdc

from ganga_async import AFSToken, KerberosTicket, RenewalError

pytestmark = pytest.mark.anyio


async def test_a_real_ticket_has_the_principal_and_lifetime_kinit_asked_for(kdc: Kdc) -> None:
    kdc.kinit("-l", "2m")
    ticket = KerberosTicket()
    assert await ticket.identity() == kdc.principal
    assert 110 <= await ticket.timeleft() <= 120
    assert (await ticket.info()).location == os.environ["KRB5CCNAME"]
    assert await ticket.is_valid("1m") and not await ticket.is_valid("5m")


async def test_a_ticket_expires_within_the_test(kdc: Kdc) -> None:
    kdc.kinit("-l", "3s")
    ticket = KerberosTicket()
    assert await ticket.is_valid()
    await anyio.sleep(3.5)
    assert await ticket.timeleft() == 0
    assert not await ticket.is_valid()
    assert await ticket.exists()


async def test_kinit_R_renews_a_renewable_ticket(kdc: Kdc) -> None:
    kdc.kinit("-l", "20s", "-r", "5m")
    ticket = KerberosTicket()
    before = await ticket.expiry_time()
    await anyio.sleep(1.1)
    info = await ticket.renew()
    assert before is not None and info.expiry is not None and info.expiry > before.timestamp()


async def test_a_ticket_kinit_R_cannot_renew_needs_a_person(kdc: Kdc) -> None:
    kdc.kinit("-l", "30s")  # not renewable
    with pytest.raises(RenewalError, match="needs your password: run kinit") as caught:
        await KerberosTicket().renew()
    assert caught.value.needs_user


async def test_a_keytab_renews_even_an_expired_ticket(kdc: Kdc) -> None:
    kdc.kinit("-l", "2s")
    await anyio.sleep(2.5)
    ticket = KerberosTicket(keytab=kdc.keytab, principal=kdc.principal)
    assert await ticket.timeleft() == 0
    info = await ticket.renew()
    assert 290 <= info.time_left() <= 300  # the KDC's max_life is 5 minutes


async def test_no_ticket_cache_means_no_ticket(kdc: Kdc, tmp_path: Path) -> None:
    ticket = KerberosTicket(ccache=f"FILE:{tmp_path / 'none'}")
    assert not await ticket.exists()
    assert await ticket.timeleft() == 0


async def test_a_missing_klist_is_a_clear_problem(kdc: Kdc, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    info = await KerberosTicket().info()
    assert info.problem is not None and "`klist` is not installed" in info.problem


async def test_afs_renewal_renews_the_kerberos_ticket_before_aklog(kdc: Kdc) -> None:
    kdc.kinit("-l", "10s")
    token = AFSToken(keytab=kdc.keytab, principal=kdc.principal)
    started = time.time()
    with pytest.raises(RenewalError, match="aklog") as caught:
        await token.renew()  # no AFS client here: aklog is missing
    assert "the Kerberos ticket was renewed" in str(caught.value)
    assert await KerberosTicket().timeleft() > 250
    assert time.time() - started < 10
