"""The dashboard in a real browser: the job page of a 100,000-subjob master, and how many live
events per second a page absorbs while staying responsive.

Setup: a gangadir holding one finished ``n``-subjob master, built once through the engine and
the ``Null`` backend (:func:`benchmarks.open_summary.build`); a daemon serving the dashboard on
it (``service start --foreground --dashboard`` in a child interpreter that imports
``benchmarks._null_backend`` first, so its engine knows ``Null``); Debian's Chromium
(``scripts/browser-up.sh``) driven by Playwright, logged in with the dashboard's token. The
daemon, the browser and this process share the machine's cores.

**Job page** (interleaved rounds, order rotated): the times are the page's own, read from its
performance marks relative to the start of the navigation:

- ``first render``: the job's description and counts are on screen (mark ``job:first-render``);
- ``full heat-map``: all ``n`` cells drawn on the canvas (mark ``job:heatmap``), which includes
  fetching ``/api/jobs/{id}/cells``; the drawing alone is reported beside it;
- baseline ``raw cells fetch``: the same page's ``fetch('/api/jobs/{id}/cells')`` and JSON
  parse, timed in the page: the floor the heat-map cannot beat. The ratio full heat-map /
  baseline says what the page costs above fetching its data.

**Live events**: the Events page receives every event (``[Service] dashboard_event_rate`` is
raised so that the daemon skips none) while a script in the daemon's console submits ``Null``
jobs that complete at once, at rising rates, for a few seconds each. For every rate the page
records the gaps between animation frames and the delay of a 20 ms timer (its main thread's
lag), and the time from an input in its filter box to the next frame (what a user feels). The
page counts as responsive while every input reaches the screen within 100 ms and its stream
stays connected; the figure is the highest rate it received that way. The first step offers
nothing: the idle page's frame gaps and lags are this machine's floor, shown beside.

Run it alone with ``python -m benchmarks.dashboard_browser [--n 100000] [--rounds 5]``; it
skips itself (an empty table) when Chromium or Playwright is missing.
"""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._harness import Row, Samples, clean_env, fmt_s, run_main, scratch
from .open_summary import REPO_ROOT, build

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RATES = [0, 250, 500, 1000, 2000, 4000, 8000]
"""Events per second offered to the page, one step each (0: the idle page, the floor of this
machine's frame gaps and lags)."""
STEP_SECONDS = 3.0
TICK = 0.2
"""A job every TICK seconds, as large as the rate asks."""
RESPONSIVE_INPUT = 0.100

DAEMON_CODE = """\
import sys
import benchmarks._null_backend
from ganga_async.cli import main
sys.exit(main(["service", "start", "--foreground", "--dashboard"]))
"""

GENERATOR_CODE = """\
import time
from benchmarks._null_backend import Null
_end = time.monotonic() + {seconds}
while time.monotonic() < _end:
    _t = time.monotonic()
    Job(application=Executable(exe="/bin/echo"), backend=Null(complete=True),
        splitter=ArgSplitter(args=[[str(i)] for i in range({per_tick})])).submit()
    time.sleep(max(0.0, {tick} - (time.monotonic() - _t)))
"""
"""Runs in the daemon's console: a job of ``per_tick`` subjobs every ``tick`` seconds."""

SEND_CODE = """\
import sys, anyio
from ganga_async.service import AsyncGangaService

async def main():
    async with AsyncGangaService(sys.argv[1], autostart=False) as service:
        print(await service.send_cmd(sys.argv[2]), end="")

anyio.run(main, backend="asyncio")
"""

PROBES = """\
() => {
  const b = window.bench = { gaps: [], lags: [], inputs: [], last: 0, tick: 0 };
  const frame = (ts) => { if (b.last) b.gaps.push(ts - b.last); b.last = ts; requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
  setInterval(() => {
    const now = performance.now();
    if (b.tick) b.lags.push(now - b.tick - 20);
    b.tick = now;
  }, 20);
  b.input = () => new Promise((resolve) => {
    const box = document.querySelector("#filters input[name=q]");
    const t0 = performance.now();
    box.value = box.value ? "" : "zz-no-match";
    box.dispatchEvent(new Event("input"));
    let done = false;
    const finish = () => { if (!done) { done = true; b.inputs.push(performance.now() - t0); resolve(); } };
    requestAnimationFrame(finish);
    setTimeout(finish, 2000); // no frame for 2 s: counted as 2 s
  });
  b.reset = () => { b.gaps = []; b.lags = []; b.inputs = []; b.last = 0; b.tick = 0; };
}
"""


class Daemon:
    """The dashboard daemon of ``gangadir``, run in a child interpreter this process owns."""

    def __init__(self, gangadir: Path, env: dict[str, str]) -> None:
        self.gangadir = gangadir
        self.env = {**env, "GANGA_ASYNC_GANGADIR": str(gangadir), "GANGA_ASYNC_SERVICE_AUTOSTART": "false",
                    "PYTHONPATH": str(REPO_ROOT)}
        state = gangadir / "service" / "dashboard.json"
        # The foreground daemon logs every event on stderr: into a file, never an unread pipe
        # (a full pipe would stop the daemon).
        self.errors = gangadir.parent / "daemon.err"
        with self.errors.open("w") as err:
            self.process = subprocess.Popen([sys.executable, "-c", DAEMON_CODE], env=self.env, cwd=REPO_ROOT,
                                            stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 60
        while not state.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.errors.read_text()[-600:]
                raise RuntimeError(f"the dashboard daemon did not start: {tail!r}")
            time.sleep(0.1)
        found = json.loads(state.read_text())
        self.base = f"http://127.0.0.1:{found['port']}"
        self.token = found["token"]

    def send_cmd(self, code: str) -> subprocess.Popen[str]:
        """Run ``code`` in the daemon's console from a child client; the child, still running."""
        return subprocess.Popen([sys.executable, "-c", SEND_CODE, str(self.gangadir), code], env=self.env,
                                cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def browser_ready() -> str | None:
    """Why the browser cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is missing (pip install -e '.[test]')"
    up = subprocess.run([str(REPO_ROOT / "scripts" / "browser-up.sh")], capture_output=True, text=True)
    if up.returncode != 0:
        return f"scripts/browser-up.sh failed: {(up.stderr.strip().splitlines() or ['?'])[-1]}"
    return None


def job_page(page: Any, daemon: Daemon, job: int, n: int, rounds: int) -> dict[str, Samples]:
    """Interleaved rounds of the job page and of the raw fetch of its cells."""
    samples = {name: Samples(name) for name in ("first render", "full heat-map", "heat-map drawing",
                                                "raw cells fetch")}

    def load_page() -> None:
        page.goto(f"{daemon.base}/job/{job}")
        page.wait_for_function("performance.getEntriesByName('job:heatmap').length > 0 && "
                               "performance.getEntriesByName('job:first-render').length > 0", timeout=120_000)
        marks = page.evaluate("""() => {
            const first = performance.getEntriesByName('job:first-render')[0];
            const heat = performance.getEntriesByName('job:heatmap')[0];
            return [first.startTime, heat.startTime, heat.detail.drawMs, heat.detail.n];
        }""")
        if marks[3] != n:
            raise RuntimeError(f"the heat-map drew {marks[3]} cells, not {n}")
        samples["first render"].values.append(marks[0] / 1000)
        samples["full heat-map"].values.append(marks[1] / 1000)
        samples["heat-map drawing"].values.append(marks[2] / 1000)

    def raw_fetch() -> None:
        ms = page.evaluate("""async (path) => {
            const t0 = performance.now();
            const body = await (await fetch(path, { credentials: "same-origin" })).json();
            if (!body.codes) throw new Error("no cells");
            return performance.now() - t0;
        }""", f"/api/jobs/{job}/cells")
        samples["raw cells fetch"].values.append(ms / 1000)

    load_page()  # warm-up: the daemon's first read of the master, the browser's caches
    raw_fetch()
    for name in samples:
        samples[name].values.clear()
    for r in range(rounds):
        for step in ((load_page, raw_fetch) if r % 2 == 0 else (raw_fetch, load_page)):
            step()
    return samples


def live_events(page: Any, daemon: Daemon) -> list[dict[str, float]]:
    """Each rate of :data:`RATES` for :data:`STEP_SECONDS`, measured in the Events page."""
    page.goto(f"{daemon.base}/events")
    page.wait_for_selector('.live[data-state="live"]')
    page.evaluate(PROBES)

    def received() -> int:
        return int(page.get_attribute("#rate", "data-received") or 0)

    before = received()  # calibration: how many events one subjob makes
    client = daemon.send_cmd(GENERATOR_CODE.format(seconds=0.01, per_tick=200, tick=TICK))
    client.wait(timeout=60)
    page.wait_for_timeout(1500)
    per_subjob = max(1.0, (received() - before) / 200)
    print(f"  one Null subjob makes {per_subjob:.1f} events on the page")
    results = []
    for rate in RATES:
        tick = TICK
        per_tick = max(1, round(rate * tick / per_subjob))
        page.evaluate("window.bench.reset()")
        start_count, start = received(), time.perf_counter()
        code = GENERATOR_CODE.format(seconds=STEP_SECONDS, per_tick=per_tick, tick=tick) if rate else (
            f"import time\ntime.sleep({STEP_SECONDS})")
        client = daemon.send_cmd(code)
        deadline = time.monotonic() + STEP_SECONDS + 60
        while client.poll() is None:
            if time.monotonic() > deadline:
                client.kill()
                raise RuntimeError(f"the daemon's console did not finish the {rate}/s step")
            page.evaluate("window.bench.input()")
            page.wait_for_timeout(400)
        if client.returncode != 0:
            raise RuntimeError(f"the event generator failed: {client.stderr.read() if client.stderr else ''}")
        elapsed = time.perf_counter() - start
        page.wait_for_timeout(300)
        bench = page.evaluate("({gaps: bench.gaps, lags: bench.lags, inputs: bench.inputs,"
                              " live: document.querySelector('.live').dataset.state})")
        gaps = sorted(bench["gaps"]) or [0.0]
        got = (received() - start_count) / elapsed
        row = {"offered": rate, "received": got,
               "frame_p95": gaps[int(0.95 * (len(gaps) - 1))] / 1000, "frame_max": gaps[-1] / 1000,
               "lag_max": max(bench["lags"] or [0.0]) / 1000,
               "input_max": max(bench["inputs"] or [0.0]) / 1000,
               "input_median": statistics.median(bench["inputs"] or [0.0]) / 1000,
               "connected": 1.0 if bench["live"] == "live" else 0.0}
        results.append(row)
        print(f"  offered {rate:>5}/s: received {got:7.0f}/s; frame gap p95 {fmt_s(row['frame_p95'])} "
              f"max {fmt_s(row['frame_max'])}; timer lag max {fmt_s(row['lag_max'])}; input to frame "
              f"median {fmt_s(row['input_median'])} max {fmt_s(row['input_max'])}"
              f"{'' if row['connected'] else '; the stream was cut'}")
        page.wait_for_timeout(500)
    return results


def measure(n: int = 100_000, rounds: int = 5, tmpdir: str | None = None) -> list[Row]:
    """Build the master, start the daemon and the browser, measure, print, return the rows."""
    print(f"dashboard_browser: the job page of a {n}-subjob master ({rounds} interleaved rounds), "
          f"then live events at {', '.join(map(str, RATES))} per second")
    why = browser_ready()
    if why is not None:
        print(f"  skipped: {why}")
        return []
    from playwright.sync_api import sync_playwright

    with scratch(tmpdir, "dashboard") as root:
        gangadir, built = build(root, n, complete=True)
        print(f"  built the finished master in {fmt_s(built)}")
        env = clean_env(root)
        Path(env["GANGA_ASYNC_CONFIG"]).write_text("[Service]\ndashboard_event_rate = 1000000\n"
                                                   "dashboard_client_buffer = 100000\n")
        daemon = Daemon(gangadir, env)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                     args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1360, "height": 900})
                page.goto(f"{daemon.base}/?token={daemon.token}")
                samples = job_page(page, daemon, 0, n, rounds)
                for s in samples.values():
                    print(f"  {s.name:<17} {s.summary()}")
                steps = live_events(page, daemon)
                browser.close()
        finally:
            daemon.stop()
    base = samples["raw cells fetch"]
    full = samples["full heat-map"]
    responsive = [s for s in steps if s["offered"] and s["input_max"] < RESPONSIVE_INPUT and s["connected"]]
    best = max(responsive, key=lambda s: s["received"]) if responsive else None
    idle = steps[0]
    rows = [
        Row("dashboard", f"job page of {n:,} subjobs: first render", fmt_s(samples["first render"].best)),
        Row("dashboard", f"job page of {n:,} subjobs: full heat-map", fmt_s(full.best),
            f"{full.best / base.best:.2f}x raw cells fetch ({fmt_s(base.best)})"),
        Row("dashboard", "  of which drawing the canvas", fmt_s(samples["heat-map drawing"].best)),
        Row("dashboard", "events/s the Events page absorbs, responsive",
            f"{best['received']:.0f}/s" if best else "none",
            (f"input to frame max {fmt_s(best['input_max'])}, frame gap p95 {fmt_s(best['frame_p95'])} "
             f"(idle page: {fmt_s(idle['input_max'])}, {fmt_s(idle['frame_p95'])})") if best else ""),
    ]
    return rows


def main(argv: Sequence[str] | None = None) -> list[Row]:
    return run_main(measure, __doc__, argv, n=100_000, n_help="subjobs of the master", rounds=5)


if __name__ == "__main__":
    main()
