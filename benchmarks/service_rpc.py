"""The service's figures: request round trips, throughput with 50 clients, start-up times.

Against one daemon (started with ``ganga-async service start`` on a scratch gangadir holding
one finished job):

- **round trip**: one ``job(0)`` request and its reply on an open connection, against a bare
  round trip of the same bytes over a Unix socket pair in the same event loop (the floor);
- **50 clients**: 50 connections each sending ``--n`` sequential ``job(0)`` requests at once,
  in requests per second, against one connection doing the same alone;
- **start to ready**: wall time of ``ganga-async service start`` (it returns once the daemon
  serves), against ``python -c pass``;
- **send_cmd from a fresh interpreter**: ``GangaService(gangadir).send_cmd("print(1)")`` in a
  new interpreter with the daemon running, against ``python -c pass``.

Run it alone with ``python -m benchmarks.service_rpc [--n 200] [--rounds 3]``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.abc

from ganga_async.service import AsyncGangaService, GangaService

from ._harness import Row, clean_env, common_options, fmt_s, interleave, print_table, scratch

CLIENTS = 50


def measure(n: int = 200, rounds: int = 3, tmpdir: str | None = None) -> list[Row]:
    """Run every variant ``rounds`` times and return the table's rows."""
    print(f"service_rpc: {n} requests per client, {CLIENTS} clients, {rounds} rounds")
    with scratch(tmpdir, "service") as root:
        env = clean_env(root, bytecode=True)
        gangadir = root / "gangadir"
        cli = [sys.executable, "-m", "ganga_async.cli", "--gangadir", str(gangadir)]

        def run(argv: list[str]) -> float:
            started = time.perf_counter()
            subprocess.run(argv, env=env, check=True, capture_output=True)
            return time.perf_counter() - started

        def start_stop() -> float:
            took = run([*cli, "service", "start"])
            run([*cli, "service", "stop"])
            return took

        send_cmd = ("import sys\nfrom ganga_async.service import GangaService\n"
                    "assert GangaService(sys.argv[1]).send_cmd('print(1)') == '1\\n'")
        floor = [sys.executable, "-c", "pass"]
        run(floor)
        start_stop()
        startup = interleave(rounds, {"python -c pass": lambda: run(floor), "service start": start_stop})
        run([*cli, "service", "start"])
        try:
            with GangaService(gangadir, autostart=False) as gs:
                job_id = int(gs.submit({"application": {"type": "Executable", "exe": "/bin/true"}})["id"])
                gs.wait(job_id, timeout=60)
            fresh = [sys.executable, "-c", send_cmd, str(gangadir)]
            run(fresh)
            clients = interleave(rounds, {
                "python -c pass": lambda: run(floor),
                "send_cmd('print(1)'), fresh interpreter": lambda: run(fresh),
            })
            rpc = interleave(rounds, {
                "socketpair round trip": lambda: anyio.run(_bare_round_trips, n),
                "job(0) round trip": lambda: anyio.run(_round_trips, gangadir, n, job_id),
                f"{CLIENTS} clients x {n} job(0)": lambda: anyio.run(_many_clients, gangadir, n, job_id),
            })
        finally:
            run([*cli, "service", "stop"])
    for samples in (*startup.values(), *clients.values(), *rpc.values()):
        print(f"  {samples.name:<42} {samples.summary()}")
    bare, trip = rpc["socketpair round trip"], rpc["job(0) round trip"]
    many = rpc[f"{CLIENTS} clients x {n} job(0)"]
    alone_rate = n / trip.best
    many_rate = CLIENTS * n / many.best
    floor_s = startup["python -c pass"]
    fresh_cmd = clients["send_cmd('print(1)'), fresh interpreter"]
    return [
        Row("service rpc", "job(0) round trip", fmt_s(trip.best / n),
            f"{trip.best / bare.best:.1f}x bare socketpair"),
        Row("service rpc", f"{CLIENTS} clients, requests/s", f"{many_rate:,.0f}/s",
            f"{many_rate / alone_rate:.2f}x one client ({alone_rate:,.0f}/s)"),
        Row("service start", "start to ready", fmt_s(startup["service start"].best),
            f"{startup['service start'].best / floor_s.best:.1f}x python -c pass"),
        Row("service send_cmd", "fresh interpreter, print(1)", fmt_s(fresh_cmd.best),
            f"{fresh_cmd.best / clients['python -c pass'].best:.1f}x python -c pass"),
    ]


async def _round_trips(gangadir: Path, n: int, job_id: int) -> float:
    async with AsyncGangaService(gangadir, autostart=False) as gs:
        await gs.job(job_id)
        started = time.perf_counter()
        for _ in range(n):
            await gs.job(job_id)
        return time.perf_counter() - started


async def _many_clients(gangadir: Path, n: int, job_id: int) -> float:
    """Connect every client first, then time them all sending their requests at once."""
    connected = 0
    all_connected, go = anyio.Event(), anyio.Event()

    async def client() -> None:
        nonlocal connected
        async with AsyncGangaService(gangadir, autostart=False) as service:
            connected += 1
            if connected == CLIENTS:
                all_connected.set()
            await go.wait()
            for _ in range(n):
                await service.job(job_id)

    async with anyio.create_task_group() as tg:
        for _ in range(CLIENTS):
            tg.start_soon(client)
        await all_connected.wait()
        started = time.perf_counter()
        go.set()
    return time.perf_counter() - started


async def _bare_round_trips(n: int) -> float:
    """The floor: the same size of request and reply over a socket pair, echoed in this loop."""
    ours, theirs = socket.socketpair()
    request = b'{"v":1,"id":1,"op":"job","args":{"id":1}}\n'
    reply = b"x" * 700 + b"\n"
    async with await anyio.abc.SocketStream.from_socket(ours) as a, \
            await anyio.abc.SocketStream.from_socket(theirs) as b:

        async def echo() -> None:
            for _ in range(n):
                await b.receive()
                await b.send(reply)

        async with anyio.create_task_group() as tg:
            tg.start_soon(echo)
            started = time.perf_counter()
            for _ in range(n):
                await a.send(request)
                await a.receive()
            return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> None:
    parser = common_options(__doc__)
    parser.add_argument("--n", type=int, default=200, help="requests per client (default 200)")
    args = parser.parse_args(argv)
    print_table(measure(args.n, args.rounds, args.tmpdir))


if __name__ == "__main__":
    main()
