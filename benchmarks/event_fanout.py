"""Figure 7: the daemon under 100 clients following events while a 10,000-subjob job runs.

One daemon (``ganga-async service start`` on a scratch gangadir, shipped configuration) runs,
per round and variant, one master of ``n`` ``/bin/true`` subjobs on ``Local(max_concurrent=32)``,
submitted and waited for by a control client (``AsyncGangaService``). Variants:

- **no followers**: the job alone;
- **100 followers**: ``--clients`` connections (raw Unix sockets in this process, reading
  and decoding every line as they come) each following every status event, from before the
  submission to the master's ``completed``;
- **100 followers + 1 stalled**: the same, plus one connection that subscribes and then
  reads nothing (its receive buffer set to 4 KiB).

Printed per variant: the job's wall time (submit to ``wait`` returning) and the daemon's CPU
time over the same window (from ``/proc``), best and median of the rounds. For every follower
the stream is checked: each (sub)job's transitions form one chain (each ``old`` is the ``new``
before it: none lost, none reordered), all ``n + 1`` end ``completed``. A follower dropped as
too slow (the daemon's ``[Service] event_backlog``) is counted and its message printed. After
the job, the stalled connection is read: it must hold the daemon's error saying it fell behind,
or have been closed after ``[Service] drop_timeout``.

The figures: stalled / followers wall time (target: at most 1.1, i.e. the stalled client does
not slow the job) and followers / none (what following costs the daemon). Nothing is asserted.

Run it alone with ``python -m benchmarks.event_fanout [--n 10000] [--clients 100] [--rounds 2]``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ganga_async.service import AsyncGangaService

from ._harness import Row, clean_env, common_options, fmt_s, print_table, scratch
from .endurance import process_cpu

CLIENTS = 100
TARGET = 1.1


@dataclasses.dataclass
class Follower:
    """What one following connection saw."""

    events: int = 0
    broken: list[str] = dataclasses.field(default_factory=list)
    chains: dict[bytes, bytes] = dataclasses.field(default_factory=dict)
    dropped: str | None = None
    done: bool = False


@dataclasses.dataclass
class Run:
    wall: float
    cpu: float
    followers: list[Follower]
    stalled: str | None = None


_EVENT = re.compile(rb'"fqid":"([^"]*)","job_id":\d+,"index":[^,]*,"old":"([^"]*)","new":"([^"]*)"')
"""The fields a follower checks, found in a block of lines at once: a client that decoded each
line with ``json.loads`` would measure this process's JSON decoder, 100 times over."""


async def follow(path: Path, master: asyncio.Future[int], ready: asyncio.Event,
                 counter: list[int], total: int) -> Follower:
    """Follow every status event until the master is completed; check each chain."""
    seen = Follower()
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(b'{"v":1,"id":1,"op":"events","args":{"types":["status"]}}\n')
    await reader.readline()  # subscribed
    counter[0] += 1
    if counter[0] == total:
        ready.set()
    chains = seen.chains
    rest = b""
    try:
        while True:
            chunk = await reader.read(1 << 20)
            if not chunk:
                seen.dropped = "connection closed"
                return seen
            rest += chunk
            cut = rest.rfind(b"\n") + 1
            block, rest = rest[:cut], rest[cut:]
            for fqid, old, new in _EVENT.findall(block):
                seen.events += 1
                before = chains.get(fqid, old)
                if before != old:
                    seen.broken.append(f"{fqid.decode()}: {before.decode()} then "
                                       f"{old.decode()}->{new.decode()}")
                chains[fqid] = new
            if b'"ok":' in block:
                reply = next(line for line in block.splitlines() if b'"ok":' in line)
                seen.dropped = str(json.loads(reply).get("error", {}).get("message", reply))
                return seen
            if master.done() and chains.get(str(master.result()).encode()) == b"completed":
                seen.done = True
                return seen
    finally:
        writer.close()


def stall(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(str(path))
    sock.sendall(b'{"v":1,"id":1,"op":"events","args":{"types":["status"]}}\n')
    return sock


def read_stalled(sock: socket.socket) -> str:
    """What the stalled connection holds at the end: the daemon's error, or how it ended."""
    sock.settimeout(3)
    last = b""
    with sock, sock.makefile("rb") as lines:
        try:
            for line in lines:
                last = line
                if b'"ok":false' in line:
                    return "dropped: " + str(json.loads(line)["error"]["message"])
        except TimeoutError:
            return "NOT dropped: still open, nothing more to read"
    return f"closed by the daemon (last line {'an event' if b'event' in last else repr(last[:60])})"


async def one_run(gangadir: Path, pid: int, n: int, clients: int, stalled: bool) -> Run:
    spec = {"application": {"type": "Executable", "exe": "/bin/true"},
            "backend": {"type": "Local", "max_concurrent": 32},
            "splitter": {"type": "ArgSplitter", "args": [[str(i)] for i in range(n)]}}
    path = gangadir / "service" / "socket"
    master: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    ready = asyncio.Event()
    counter = [0]
    tasks = [asyncio.create_task(follow(path, master, ready, counter, clients))
             for _ in range(clients)]
    if clients:
        await ready.wait()
    sock = stall(path) if stalled else None
    async with AsyncGangaService(gangadir, autostart=False) as gs:
        cpu = process_cpu(pid)
        started = time.perf_counter()
        job = await gs.submit(spec)
        master.set_result(job["id"])
        result = await gs.wait(job["id"])
        wall = time.perf_counter() - started
        cpu = process_cpu(pid) - cpu
    if result["status"] != "completed":
        raise RuntimeError(f"the job ended {result['status']}")
    followers = list(await asyncio.gather(*tasks))
    for f in followers:
        if not f.dropped:
            ends = [s for fqid, s in f.chains.items()
                    if fqid.split(b".")[0] == str(job["id"]).encode()]
            if len(ends) != n + 1 or any(s != b"completed" for s in ends):
                f.broken.append(f"saw {len(ends)} (sub)jobs, "
                                f"{sum(s == b'completed' for s in ends)} completed")
    return Run(wall, cpu, followers, read_stalled(sock) if sock is not None else None)


def measure(n: int = 10_000, rounds: int = 2, tmpdir: str | None = None,
            clients: int | None = None) -> list[Row]:
    """Run every variant ``rounds`` times, interleaved; return the table's rows. ``clients``
    follows ``n``: 100 for 10,000 subjobs, a tenth of that with ``--quick``."""
    if clients is None:
        clients = CLIENTS if n >= 10_000 else max(1, CLIENTS * n // 10_000)
    print(f"event_fanout: {n} x /bin/true on Local(max_concurrent=32), {clients} followers, "
          f"{rounds} rounds")
    variants = {"no followers": (0, False), f"{clients} followers": (clients, False),
                f"{clients} followers + 1 stalled": (clients, True)}
    runs: dict[str, list[Run]] = {name: [] for name in variants}
    with scratch(tmpdir, "fanout") as root:
        gangadir = root / "gangadir"
        env = clean_env(root)
        cli = [sys.executable, "-m", "ganga_async.cli", "--gangadir", str(gangadir), "service"]
        subprocess.run([*cli, "start"], env=env, check=True, capture_output=True)
        try:
            pid = int((gangadir / "service" / "daemon.pid").read_text())
            names = list(variants)
            for r in range(rounds):
                for name in names[r % 3:] + names[:r % 3]:
                    run = asyncio.run(one_run(gangadir, pid, n, *variants[name]))
                    runs[name].append(run)
        finally:
            subprocess.run([*cli, "stop"], env=env, check=False, capture_output=True)
    rows = []
    best = {}
    for name, done in runs.items():
        walls, cpus = [r.wall for r in done], [r.cpu for r in done]
        best[name] = min(walls)
        print(f"  {name:<28} wall best {fmt_s(min(walls))} median {fmt_s(statistics.median(walls))}"
              f"; daemon CPU best {fmt_s(min(cpus))} median {fmt_s(statistics.median(cpus))}")
        for run in done:
            kept = [f for f in run.followers if not f.dropped]
            dropped = [f for f in run.followers if f.dropped]
            broken = [b for f in kept for b in f.broken]
            if run.followers:
                print(f"    followers: {len(kept)} kept up ({kept[0].events if kept else 0} events "
                      f"each), {len(dropped)} dropped, {len(broken)} broken chains"
                      + (f": {broken[:3]}" if broken else "")
                      + (f"; a drop: {dropped[0].dropped}" if dropped else ""))
            if run.stalled is not None:
                print(f"    stalled client: {run.stalled}")
    follow_name, stall_name = f"{clients} followers", f"{clients} followers + 1 stalled"
    ratio = best[stall_name] / best[follow_name]
    cost = best[follow_name] / best["no followers"]
    lost = sum(len(f.broken) + bool(f.dropped) for d in runs.values() for r in d for f in r.followers)
    print(f"  stalled / followers: {ratio:.2f} (target <= {TARGET}); followers / none: {cost:.2f}; "
          f"followers dropped or broken: {lost}")
    rows.append(Row("7 event_fanout", f"{n} subjobs, {clients} followers + 1 stalled",
                    fmt_s(best[stall_name]), f"{ratio:.2f}x without the stalled one",
                    f"<= {TARGET}x", "ok" if ratio <= TARGET else "MISSED"))
    rows.append(Row("7 event_fanout", f"{clients} followers: lost, reordered or dropped", str(lost),
                    f"{cost:.2f}x no followers", "0", "ok" if lost == 0 else "MISSED"))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = common_options(__doc__, rounds=2)
    parser.add_argument("--n", type=int, default=10_000, help="subjobs (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=None,
                        help=f"followers (default: {CLIENTS}, or a tenth with a tenth of --n)")
    args = parser.parse_args(argv)
    print_table(measure(args.n, args.rounds, args.tmpdir, args.clients))


if __name__ == "__main__":
    main()

