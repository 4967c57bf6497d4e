"""kill -9 of a process in the middle of preparing, copying, removing and boxing, then
``shareref.rebuild()`` in a new process: the counts equal the owners that exist."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest

from ganga_async import Config, Engine

LOAD = textwrap.dedent("""
    import random, sys, anyio
    from ganga_async import Engine, Job, load_config
    gangadir = sys.argv[1]
    async def worker(engine, seed, bases):
        rng = random.Random(seed)
        mine = []
        step = 0
        while True:
            step += 1
            action = rng.choice(["copy", "copy", "remove", "box", "unbox", "prepare"])
            if action == "copy":
                clone = rng.choice(bases).copy()
                await engine.add(clone)
                mine.append(clone)
            elif action == "prepare":
                job = Job()
                await engine.add(job)
                await engine.prepare(job)
                mine.append(job)
            elif action == "remove" and mine:
                await engine.remove(mine.pop(rng.randrange(len(mine))))
            elif action == "box":
                await engine.box.add(rng.choice(bases), f"w{seed}.{step}")
            elif action == "unbox":
                names = [e.name for e in await engine.box.entries() if e.name.startswith(f"w{seed}.")]
                if names:
                    await engine.box.remove(rng.choice(names))
    async def main():
        async with Engine(gangadir, config=load_config(), monitoring=False) as engine:
            bases = []
            for _ in range(4):
                job = Job()
                await engine.add(job)
                await engine.prepare(job)
                bases.append(job)
            print("loaded", flush=True)
            async with anyio.create_task_group() as tg:
                for seed in range(16):
                    tg.start_soon(worker, engine, seed, bases)
    anyio.run(main, backend="asyncio")
""")


@pytest.mark.parametrize("delay", [0.2, 0.6])
def test_kill_9_in_the_middle_of_the_load_then_rebuild_gives_the_counts_of_the_owners(
    gangadir: Path, config: Config, delay: float
) -> None:
    proc = subprocess.Popen([sys.executable, "-c", LOAD, str(gangadir)], stdout=subprocess.PIPE,
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
