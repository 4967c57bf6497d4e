"""The Local driver on the backend contract: pushed news for what its runner holds, sweeps of the
status logs for what an earlier engine left, and the tracking in between."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import anyio
import pytest

from ganga_async import Config, Local, Status
from ganga_async.applications.base import Command
from ganga_async.backends import BackendStatus, DriverContext, Handle, SubmitUnit
from ganga_async.backends.local import LocalDriver
from ganga_async.model.job import output_dir, work_dir

pytestmark = pytest.mark.anyio


def unit(jobdir: Path, index: int, argv: list[str]) -> SubmitUnit:
    return SubmitUnit(key=f"{jobdir.name}.{index}", job_id=int(jobdir.name), index=index, name="",
                      backend=Local(), command=Command(argv=argv, env={}), inputfiles=[],
                      outputfiles=[], workdir=work_dir(jobdir, index), outputdir=output_dir(jobdir, index))


@pytest.fixture
async def local(config: Config, tmp_path: Path) -> AsyncIterator[LocalDriver]:
    driver = LocalDriver(DriverContext(config=config, gangadir=tmp_path))
    async with anyio.create_task_group() as tg:
        await tg.start(driver.run)
        yield driver
        await driver.aclose()
        tg.cancel_scope.cancel()


async def news_until(driver: LocalDriver, key: str, status: Status) -> dict[str, BackendStatus]:
    """Every piece of news until ``key`` has ``status``, the latest of each key."""
    seen: dict[str, BackendStatus] = {}
    with anyio.fail_after(30):
        while key not in seen or seen[key].status is not status:
            seen.update(await driver.news())
    return seen


async def no_news(driver: LocalDriver) -> Mapping[str, BackendStatus]:
    with anyio.move_on_after(0.2):
        return await driver.news()
    return {}


async def test_units_of_the_live_runner_get_pushed_news_and_leave_tracking_when_they_end(
    local: LocalDriver, tmp_path: Path
) -> None:
    failing = unit(tmp_path / "1", 0, ["/bin/sh", "-c", "exit 3"])
    key = failing.key
    assert await local.bulk_submit([failing]) == [key]
    assert set(local.tracked) == {key}
    news = await news_until(local, key, Status.FAILED)
    assert news[key].exitcode == 3 and news[key].started is not None
    assert not local.tracked
    assert await local.sweep() == 0


async def test_a_handle_an_earlier_engine_left_is_answered_by_a_sweep_once(
    config: Config, tmp_path: Path, local: LocalDriver
) -> None:
    done = unit(tmp_path / "1", 0, ["/bin/sh", "-c", "exit 4"])
    await local.bulk_submit([done])
    await news_until(local, done.key, Status.FAILED)
    later = LocalDriver(DriverContext(config=config, gangadir=tmp_path))
    never = Handle("1.1", "", output_dir(tmp_path / "1", 1))
    await later.track([Handle(done.key, done.key, done.outputdir), never])
    # The earlier runner may still read 1.1 from its socket while its engine is connected.
    assert await later.sweep() == 1
    news = await later.news()
    assert (news[done.key].status, news[done.key].exitcode) == (Status.FAILED, 4)
    assert set(later.tracked) == {"1.1"}
    await local.aclose()  # the runner reads to the end of its input: 1.1 never came
    with anyio.fail_after(10):
        while not await later.sweep():  # noqa: ASYNC110 (the runner is another process)
            await anyio.sleep(0.05)
    assert (await later.news())["1.1"].status is Status.NEW
    assert not later.tracked
    assert await later.sweep() == 0


async def test_a_running_orphan_is_news_once_then_only_when_it_changes(
    config: Config, tmp_path: Path, local: LocalDriver
) -> None:
    slow = unit(tmp_path / "1", 0, ["/bin/sleep", "0.6"])
    await local.bulk_submit([slow])
    await news_until(local, slow.key, Status.RUNNING)
    later = LocalDriver(DriverContext(config=config, gangadir=tmp_path))
    await later.track([Handle(slow.key, slow.key, slow.outputdir)])
    assert await later.sweep() == 1
    assert (await later.news())[slow.key].status is Status.RUNNING
    assert await later.sweep() == 0
    await news_until(local, slow.key, Status.COMPLETED)
    assert await later.sweep() == 1
    assert (await later.news())[slow.key].status is Status.COMPLETED


async def test_an_untracked_unit_has_no_news(local: LocalDriver, tmp_path: Path) -> None:
    short = unit(tmp_path / "1", 0, ["/bin/sleep", "0.3"])
    key = short.key
    await local.bulk_submit([short])
    local.untrack([key])
    await anyio.sleep(0.6)
    news = await no_news(local)  # its start may have come before it was untracked, its end never
    assert key not in news or news[key].status is Status.RUNNING


async def test_a_handle_no_runner_received_is_new_while_our_own_runner_reads(
    local: LocalDriver, tmp_path: Path
) -> None:
    """Our own runner reads all we send: its reading marker never holds our orphans back."""
    await local.warm_up()
    assert list((tmp_path / "logs").glob("runner-*.reading"))
    await local.track([Handle("1.1", "", output_dir(tmp_path / "1", 1))])
    assert await local.sweep() == 1
    assert (await local.news())["1.1"].status is Status.NEW


async def test_a_start_read_with_its_end_is_one_piece_of_news_and_alone_is_running(
    local: LocalDriver, tmp_path: Path
) -> None:
    done = unit(tmp_path / "2", 0, ["/bin/true"])
    await local.bulk_submit([done])
    started = {"ev": "started", "key": done.key, "pid": 4242, "t": 10.0}
    exited = {"ev": "exited", "key": done.key, "code": 0, "killed": False, "t": 11.0, "error": None}
    local._on_events([json.dumps(started).encode(), json.dumps(exited).encode()])  # noqa: SLF001
    news = await local.news()
    assert news[done.key] == BackendStatus(Status.COMPLETED, exitcode=0, started=10.0, ended=11.0,
                                           native_id="4242")
    later = unit(tmp_path / "2", 1, ["/bin/true"])
    await local.bulk_submit([later])
    local._on_events([json.dumps({**started, "key": later.key}).encode()])  # noqa: SLF001
    news = await local.news()
    assert news[later.key] == BackendStatus(Status.RUNNING, started=10.0, native_id="4242")
