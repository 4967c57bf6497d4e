"""The engine runs on anyio's asyncio backend only (aiosqlite is asyncio-only); under trio it
says so in one line, with what to do instead."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from ganga_async import Engine, GangaAsyncError


def test_under_trio_the_engine_says_it_needs_the_asyncio_backend(tmp_path: Path) -> None:
    async def main() -> None:
        async with Engine(tmp_path / "gangadir"):
            pass

    with pytest.raises(GangaAsyncError) as info:
        trio.run(main)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("the engine needs anyio's asyncio backend")
    assert "anyio.run(main, backend='asyncio')" in message
    assert not (tmp_path / "gangadir").exists()
