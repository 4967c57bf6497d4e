"""kill -9 of a process in the middle of preparing, copying, removing and boxing, then
``shareref.rebuild()`` in a new process: the counts equal the owners that exist."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest

from ganga_async import Config, Engine

LOAD = Path(__file__).with_name("shareref_load.py")


@pytest.mark.parametrize("delay", [0.2, 0.6])
def test_kill_9_in_the_middle_of_the_load_then_rebuild_gives_the_counts_of_the_owners(
    gangadir: Path, config: Config, delay: float
) -> None:
    proc = subprocess.Popen([sys.executable, str(LOAD), str(gangadir)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "loaded"
    time.sleep(delay)
    proc.kill()
    proc.wait()
    proc.stdout.close()

    async def rebuild() -> tuple[dict[str, int], dict[str, int]]:
        async with Engine(gangadir, config=config, monitoring=False) as engine:
            counts = await engine.shareref.rebuild()
            owners = Counter(j.application.is_prepared.name for j in await engine.jobs()
                             if j.application.is_prepared is not None)
            owners.update(e.sharedir for e in await engine.box.entries() if e.sharedir)
            orphans = {name: 0 for name in await engine.shared.names() if name not in owners}
            return counts, {**orphans, **owners}

    counts, expected = anyio.run(rebuild, backend="asyncio")
    assert sum(expected.values()) > 4, "the load ran before the kill"
    assert counts == expected
