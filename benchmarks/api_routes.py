"""Server-side time of the dashboard's JSON routes on one 100,000-subjob master.

One engine (``monitoring=False``) opens a repository holding a master of ``--n`` subjobs, run on
the ``Null(complete=True)`` backend (:mod:`benchmarks._null_backend`), so that every subjob has
its start and end times. The dashboard's Starlette app (``create_app``, behind its token check)
then answers each route in the same process through httpx's ASGI transport, with no socket:
what is timed is the daemon's work for a request (its SQL, its JSON), not the network. The
median of ``--rounds`` requests is printed per route, and the first ``/api/jobs/{id}`` (which
loads nothing) beside them.

The targets (docs/dashboard.md): the cells and a subjob page well under 100 ms.

With ``--feed``, it measures the live feed instead: the same master is submitted to an engine
on ``Null(complete=True)`` twice, once alone and once with the dashboard's :class:`Feed` running
and one page reading ``/api/stream``'s messages as fast as they come; it prints the wall time
of each (submit to completed), the events the feed took in per second, the messages the page
got, and the events lost (none expected).

Run it with ``python -m benchmarks.api_routes [--n 100000] [--rounds 7] [--feed]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import cast

import anyio
import httpx

from ganga_async import Engine, Status
from ganga_async.config import Section
from ganga_async.dashboard._feed import Client, Feed
from ganga_async.dashboard.server import create_app
from ganga_async.events import EventHub, JobEvent
from ganga_async.service._protocol import status_event

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


async def read(page: Client, counter: list[int]) -> None:
    async for _ in page.receive:
        counter[0] += 1


async def feed_rate(n: int, settings: Section) -> float:
    """Events per second one feed takes in (kept, rate-limited, fanned out to one reading
    page), fed ``n`` status events through an event hub as fast as it reads them."""
    hub = EventHub()
    feed = Feed(cast(Engine, None), settings)  # the engine is read only by run()
    stream = hub.subscribe(n + 1, JobEvent)
    counter = [0]
    for i in range(n):
        hub.publish(JobEvent(f"1.{i}", 1, i, Status.RUNNING, Status.COMPLETED, time.time()))
    hub.close()
    async with anyio.create_task_group() as tg:
        tg.start_soon(read, feed.subscribe(), counter)
        start = time.perf_counter()
        await feed._read(stream, status_event)
        took = time.perf_counter() - start
        tg.cancel_scope.cancel()
    return n / took


async def measure_feed(n: int) -> None:
    with scratch(None, "api-feed") as root:
        config = bench_config(root)
        config["Service"]["dashboard_event_rate"] = 200
        rate = await feed_rate(n, config["Service"])
        print(f"the feed takes in {rate:,.0f} status events/s (one page reading, "
              f"{config['Service']['dashboard_event_rate']} sent per second)")
        for with_feed in (False, True):
            async with Engine(root / f"gangadir-{with_feed}", config=config) as engine:
                feed = Feed(engine, config["Service"])
                counter = [0]
                async with anyio.create_task_group() as tg:
                    if with_feed:
                        await tg.start(feed.run)
                        tg.start_soon(read, feed.subscribe(), counter)
                    start = time.perf_counter()
                    job = await engine.submit(make_job(n, complete=True))
                    await engine.wait(job)
                    took = time.perf_counter() - start
                    await anyio.sleep(2 * feed.coalesce)
                    tg.cancel_scope.cancel()
                seen = feed.recent[-1]["seq"] if feed.recent else 0
                print(f"{'with' if with_feed else 'without'} the feed: {n} subjobs in {took:.2f} s"
                      + (f"; the feed took in {seen} events ({seen / took:,.0f}/s), sent "
                         f"{counter[0]} messages to the page, lost {feed.lost}" if with_feed else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--feed", action="store_true", help="measure the live feed instead")
    args = parser.parse_args()
    if args.feed:
        anyio.run(measure_feed, args.n, backend="asyncio")
    else:
        anyio.run(measure, args.n, args.rounds, backend="asyncio")


if __name__ == "__main__":
    main()
