"""Server-side time of the dashboard's JSON routes on one 100,000-subjob master.

One engine (``monitoring=False``) opens a repository holding a master of ``--n`` subjobs, run on
the ``Null(complete=True)`` backend (:mod:`benchmarks._null_backend`), so that every subjob has
its start and end times. The dashboard's Starlette app (``create_app``, behind its token check)
then answers each route in the same process through httpx's ASGI transport, with no socket:
what is timed is the daemon's work for a request (its SQL, its JSON), not the network. The
median of ``--rounds`` requests is printed per route, and the first ``/api/jobs/{id}`` (which
loads nothing) beside them.

The targets (docs/dashboard.md): the cells and a subjob page well under 100 ms.

Run it with ``python -m benchmarks.api_routes [--n 100000] [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio
import httpx

from ganga_async import Engine
from ganga_async.config import Section
from ganga_async.dashboard._feed import Feed
from ganga_async.dashboard.server import create_app

from ._harness import bench_config, scratch
from .split_persist import make_job

ROUTES = ["/api/jobs", "/api/jobs/{id}", "/api/jobs/{id}/cells", "/api/jobs/{id}/subjobs",
          "/api/jobs/{id}/subjobs?offset=90000&limit=100",
          "/api/jobs/{id}/subjobs?status=completed&offset=50000",
          "/api/jobs/{id}/subjobs?q=99999", "/api/jobs/{id}/timeline?buckets=200",
          "/api/jobs/{id}.777/files/stdout"]


async def measure(n: int, rounds: int) -> None:
    with scratch(None, "api-routes") as root:
        config = bench_config(root)
        gangadir = root / "gangadir"
        async with Engine(gangadir, config=config) as engine:
            job = await engine.submit(make_job(n, complete=True))
            await engine.wait(job)
        async with Engine(gangadir, config=config, monitoring=False) as engine:
            settings: Section = config["Service"]
            app = create_app(engine, Feed(engine, settings), "t", 0)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                         headers={"Authorization": "token t"}) as client:
                print(f"{n} subjobs; median of {rounds} requests, server side (ASGI, no socket)")
                for route in ROUTES:
                    path = route.format(id=job.id)
                    times, size = [], 0
                    for _ in range(rounds):
                        start = time.perf_counter()
                        response = await client.get(path)
                        times.append(time.perf_counter() - start)
                        size = len(response.content)
                    status = response.status_code
                    print(f"  {path:<58} {statistics.median(times) * 1000:8.1f} ms  "
                          f"(first {times[0] * 1000:.1f} ms, {size} bytes, HTTP {status})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    anyio.run(measure, args.n, args.rounds, backend="asyncio")


if __name__ == "__main__":
    main()
