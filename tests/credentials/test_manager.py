"""The CredentialManager on its own: single-flight renewal, no retry loop, resuming held work."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest
from realcreds import make_token, renewals, token_renewer, write_private

from ganga_async import BearerToken, Config, CredentialEvent, RenewalError
from ganga_async.credentials.manager import CredentialManager, Requirement

pytestmark = pytest.mark.anyio


class Held:
    """Held work as the engine hands it over: it records what happens to it."""

    def __init__(self, needs: Sequence[Requirement]) -> None:
        self.needs = needs
        self.resumed = anyio.Event()
        self.reasons: list[str] = []

    async def resume(self) -> None:
        self.resumed.set()

    def explain(self, reason: str) -> None:
        self.reasons.append(reason)


@pytest.fixture
def fast(config: Config) -> Config:
    config["Credentials"]["check_interval"] = 0.1
    config["Credentials"]["renew_margin"] = 0
    return config


async def test_concurrent_renewals_share_one_run_of_the_command(fast: Config, tmp_path: Path) -> None:
    path = write_private(tmp_path / "token", make_token(5))
    count = tmp_path / "count"
    token = BearerToken(token_file=str(path), renew_command=token_renewer(path, 3600, count, 0.5))
    manager = CredentialManager(fast)
    results = []

    async def renew() -> None:
        results.append(await manager.renew(token))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(renew)
    assert renewals(count) == 1
    assert len(results) == 50 and all(r.time_left() > 3590 for r in results)


async def test_held_work_resumes_when_a_new_token_appears(fast: Config, tmp_path: Path) -> None:
    path = write_private(tmp_path / "token", make_token(30))
    events: list[CredentialEvent] = []
    manager = CredentialManager(fast, publish=events.append)
    held = Held([Requirement(manager.managed(BearerToken(token_file=str(path))), 60)])
    reason = await manager.check(held.needs)
    assert reason is not None and "s left, 60 s needed" in reason
    async with anyio.create_task_group() as tg:
        await tg.start(manager.run)
        manager.hold(held)
        await manager.next_sweep()
        assert not held.resumed.is_set() and held.reasons
        write_private(path, make_token(3600))
        with anyio.fail_after(30):
            await held.resumed.wait()
        tg.cancel_scope.cancel()
    assert manager.held == 0


async def test_a_renewal_that_needs_a_password_is_not_retried_in_a_loop(
    fast: Config, tmp_path: Path
) -> None:
    path = write_private(tmp_path / "token", make_token(5))
    count = tmp_path / "count"
    asks = [sys.executable, "-c", f"open({str(count)!r}, 'a').write('try\\n'); import sys; "
            "sys.stderr.write('Enter pass phrase: '); sys.exit(1)"]
    events: list[CredentialEvent] = []
    manager = CredentialManager(fast, publish=events.append)
    token = BearerToken(token_file=str(path), renew_command=asks)
    held = Held([Requirement(manager.managed(token), 60)])
    manager.hold(held)
    async with anyio.create_task_group() as tg:
        await tg.start(manager.run)
        with anyio.fail_after(10):
            while not any(e.kind == "renewal_failed" for e in events):
                await manager.next_sweep()
        for _ in range(10):  # ten more looks, each with time for a renewal to run
            await manager.next_sweep()
            await anyio.sleep(0.1)
        tg.cancel_scope.cancel()
    assert renewals(count) == 1
    assert not held.resumed.is_set()
    failed = [e for e in events if e.kind == "renewal_failed"]
    assert len(failed) == 1 and "needs a password" in failed[0].message
    with pytest.raises(RenewalError):
        await manager.renew(token)  # an explicit request always tries
    assert renewals(count) == 2
