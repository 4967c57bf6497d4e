"""A random load on the ShareDir counts: tasks copying prepared jobs, removing their copies,
boxing and unboxing. ``test_prepare`` runs it in the test's engine; ``test_shareref_crash``
runs this file as a process (``shareref_load.py GANGADIR``) and kills it with -9 mid-load."""

from __future__ import annotations

import functools
import itertools
import random
import sys

import anyio

from ganga_async import Engine, Job, load_config


async def prepared_jobs(engine: Engine, n: int) -> list[Job]:
    """``n`` new stored jobs, each prepared into a ShareDir of its own."""
    jobs = []
    for _ in range(n):
        job = Job()
        await engine.add(job)
        await engine.prepare(job)
        jobs.append(job)
    return jobs


async def worker(engine: Engine, seed: int, bases: list[Job], *, steps: int | None = None,
                 prepare: bool = False) -> None:
    """``steps`` random actions (forever when None); ``prepare`` adds preparing new jobs."""
    rng = random.Random(seed)
    actions = ["copy", "copy", "remove", "box", "unbox", *(["prepare"] if prepare else [])]
    mine: list[Job] = []
    for step in itertools.count() if steps is None else range(steps):
        action = rng.choice(actions)
        if action == "copy":
            clone = rng.choice(bases).copy()
            await engine.add(clone)
            mine.append(clone)
        elif action == "prepare":
            mine += await prepared_jobs(engine, 1)
        elif action == "remove" and mine:
            await engine.remove(mine.pop(rng.randrange(len(mine))))
        elif action == "box":
            await engine.box.add(rng.choice(bases), f"w{seed}.{step}")
        elif action == "unbox":
            names = [e.name for e in await engine.box.entries() if e.name.startswith(f"w{seed}.")]
            if names:
                await engine.box.remove(rng.choice(names))


async def main(gangadir: str) -> None:
    async with Engine(gangadir, config=load_config(), monitoring=False) as engine:
        bases = await prepared_jobs(engine, 4)
        print("loaded", flush=True)
        async with anyio.create_task_group() as tg:
            for seed in range(16):
                tg.start_soon(functools.partial(worker, engine, seed, bases, prepare=True))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], backend="asyncio")
