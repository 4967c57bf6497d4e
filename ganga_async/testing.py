"""Helpers for testing plugins, and programs that drive ganga-async, against a real engine.

``isolated_engine`` opens an :class:`~ganga_async.Engine` on a directory of the test's (pytest's
``tmp_path``) with the shipped configuration only, so neither ``~/.ganga-async.toml`` nor a
``GANGA_ASYNC_*`` variable of the machine running the tests can change what they see, and with
monitoring quick enough for tests::

    from ganga_async import Job
    from ganga_async.testing import isolated_engine

    @pytest.mark.anyio
    async def test_my_splitter_runs_every_subjob(tmp_path):
        async with isolated_engine(tmp_path / "gangadir") as engine:
            job = Job(application=..., splitter=MySplitter(...))
            await engine.submit(job)
            await engine.wait(job, timeout=60)
            assert job.status == "completed"

The engine runs on anyio's asyncio backend: give pytest's anyio plugin an ``anyio_backend``
fixture returning ``"asyncio"``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from .config import shipped_config
from .engine import Engine

__all__ = ["isolated_engine", "TEST_OPTIONS"]

TEST_OPTIONS: Mapping[str, Mapping[str, Any]] = {
    "Monitoring": {"poll_interval": 0.2},
    "Repository": {"flush_interval": 0.02},
}
"""What :func:`isolated_engine` changes from the shipped configuration, before ``options``."""


@asynccontextmanager
async def isolated_engine(gangadir: str | os.PathLike[str], *,
                          options: Mapping[str, Mapping[str, Any]] | None = None,
                          monitoring: bool = True) -> AsyncIterator[Engine]:
    """An engine on ``gangadir`` with the shipped configuration, :data:`TEST_OPTIONS` and
    ``options`` (``{"Local": {"max_concurrent": 2}}``), open for the ``async with`` block."""
    config = shipped_config()
    for layer in (TEST_OPTIONS, options or {}):
        for section, values in layer.items():
            for option, value in values.items():
                config[section][option] = value
    async with Engine(gangadir, config=config, monitoring=monitoring) as engine:
        yield engine
