"""Helpers of the Dask backend tests."""

from __future__ import annotations

import os

import anyio
import pytest

from ganga_async import Config, Engine, Executable, Job, Status


def dask_config(config: Config) -> Config:
    """The test configuration with Dask polled often and a two-worker LocalCluster."""
    section = config["Dask"]
    section["poll_min"] = 0.2
    section["poll_max"] = 0.5
    section["local_workers"] = 2
    section["heartbeat"] = 1.0
    section["lost_after"] = 3.0
    section["forget_after"] = 10.0
    return config


def sh(script: str, **kwargs: object) -> Job:
    return Job(application=Executable(exe="/bin/sh", args=["-c", script]), **kwargs)  # type: ignore[arg-type]


async def peek(engine: Engine, job: Job) -> str:
    """The job's stdout so far ("" before the wrapper created it)."""
    try:
        return await engine.peek(job)
    except FileNotFoundError:
        return ""


async def until(engine: Engine, job: Job, status: Status, seconds: float = 60) -> None:
    """Wait, on the engine's events, until ``job`` is in ``status``."""
    async with engine.events() as events:
        if job.status is status:
            return
        with anyio.fail_after(seconds):
            async for event in events:
                if event.fqid == job.fqid and event.new is status:
                    return


async def started(engine: Engine, job: Job, text: str = "started") -> None:
    """Wait until the job's stdout holds ``text``: a file another process writes, nothing to
    wait on but the file."""
    for _ in range(200):
        if text in await peek(engine, job):
            return
        await anyio.sleep(0.1)
    raise AssertionError(f"{job.fqid} never printed {text!r}")


def require_distributed() -> None:
    """Skip without ``distributed`` (the ``dask`` extra), except with ``CI=true``: CI must run
    the Dask tests."""
    if os.environ.get("CI") == "true":
        import distributed  # noqa: F401
    else:
        pytest.importorskip("distributed", reason="the Dask tests need pip install 'ganga-async[dask]'")
