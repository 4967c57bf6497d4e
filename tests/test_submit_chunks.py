"""How a split master's subjobs are handed to its backend: chunk by chunk."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from ganga_async import ArgSplitter, Config, Engine, Executable, Job, Local, Status, _plugins
from ganga_async.backends import DriverContext, SubmitUnit
from ganga_async.backends.local import LocalDriver
from ganga_async.pipeline.split import FIRST_CHUNK

pytestmark = pytest.mark.anyio

_batches: list[int] = []


class _Recording(LocalDriver):
    """The Local driver, noting the size of each bulk submission."""

    async def bulk_submit(self, units: Sequence[SubmitUnit]) -> list[str | BaseException]:
        _batches.append(len(units))
        return await super().bulk_submit(units)


@dataclasses.dataclass(kw_only=True, repr=False)
class RecordingLocal(Local):
    @classmethod
    def make_driver(cls, context: DriverContext) -> LocalDriver:
        return _Recording(context)


@dataclasses.dataclass(kw_only=True, repr=False)
class RecordingArrays(RecordingLocal):
    submit_batch: ClassVar[int] = 1000  # as a backend with job arrays asks


async def _batches_of(backend: Local, n: int, gangadir: Path, config: Config) -> list[int]:
    _batches.clear()
    _plugins.register("backend", type(backend))
    config["Pipeline"]["submit_batch"] = 50
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/true"), backend=backend,
                  splitter=ArgSplitter(args=[[str(i)] for i in range(n)]))
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.COMPLETED
    return list(_batches)


async def test_a_backend_without_arrays_gets_a_small_first_chunk_then_full_ones(
        gangadir: Path, config: Config) -> None:
    """So that its first processes start while the next chunk is resolved."""
    n = FIRST_CHUNK + 120
    assert await _batches_of(RecordingLocal(max_concurrent=4), n, gangadir, config) == [
        FIRST_CHUNK, 50, 50, 20]


async def test_a_backend_with_arrays_gets_its_own_batch_from_the_first_subjob(
        gangadir: Path, config: Config) -> None:
    """A master stays one array: no small first chunk."""
    assert await _batches_of(RecordingArrays(max_concurrent=4), 60, gangadir, config) == [60]
