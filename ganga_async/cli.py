"""The ``ganga-async`` command: submit, list, inspect and control jobs from a shell.

::

    ganga-async [--gangadir DIR] [--json] [--log-json] [-v] COMMAND ...

    submit FILE.toml [--wait]     jobs [--status S]     show ID     wait ID
    kill ID     resubmit ID [--wait]     remove ID     peek ID [FILE]     demo [--subjobs N]
    service start [--foreground] | stop | status
    credentials [--json]     credentials renew [TYPE]
    shareref [ls NAME | rebuild [--no-unprepare] [--rmdir] | lookup NAME [--unprepare]]     box

When a daemon runs for the gangadir (``service start``), every command that opens an engine
asks it instead (:mod:`ganga_async.service._cli`), printing with the same
``print_*`` functions and drawing the same :class:`JobProgress` bar from the daemon's events;
``submit`` then returns at once and the daemon monitors. Otherwise each command opens an
:class:`~ganga_async.Engine` on the gangadir for as long as it runs.
``jobs``, ``show``, ``peek``, ``shareref`` and ``box`` never need a backend, so they open it with
``monitoring=False``; ``jobs`` reads :meth:`Engine.summary` and no job description, so it stays fast
on a repository of any size. ``credentials`` opens no engine: it looks at the credentials on
this machine. rich is imported only to draw a table or a progress bar.

Exit codes: 0 success; 1 a job waited for ended failed or killed; 2 an error, printed as one
line ``error: ...`` on stderr. With ``--json`` every command prints one JSON document on
stdout. The library never configures logging; this module installs the one stderr handler,
console lines by default or one JSON object per line with ``--log-json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ._describe import credential_row, credential_rows, describe, summarise
from ._duration import format_duration
from ._exceptions import GangaAsyncError
from ._jobfile import load_job_file
from ._log import EVENT_ATTR, JsonFormatter
from .applications.executable import Executable
from .backends.local import Local
from .config import Config, load_config
from .credentials.store import CredentialStore
from .engine import SUMMARY_COLUMNS, Engine
from .events import EventStream, JobEvent
from .model.job import Job
from .prepared.shareref import ShareDirInfo, holder_label, render_table
from .splitters.arg import ArgSplitter
from .states import FINAL, Status

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["main"]

_READ_ONLY = frozenset({"jobs", "show", "peek", "shareref", "box"})
_SERVED = frozenset({"submit", "jobs", "show", "wait", "kill", "resubmit", "remove", "peek",
                     "shareref", "box", "demo"})
"""The commands a running daemon serves: every one that opens an engine, so that two engines
never monitor one repository. Without a daemon they open an engine of their own."""
_STATUS_STYLES = {"completed": "green", "failed": "red", "killed": "magenta", "running": "cyan",
                  "submitted": "blue", "submitting": "blue", "completing": "cyan",
                  "unknown": "yellow"}

_Run = Callable[[Engine, argparse.Namespace], Coroutine[Any, Any, int]]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    args = _parser().parse_args(argv)
    service = args.command == "service"
    if not (service and args.action == "start"):
        _configure_logging(args.verbose, args.log_json)
    try:
        if service:
            from .service._cli import service_command

            return service_command(args)
        return anyio.run(_run, args, backend="asyncio")
    except KeyboardInterrupt:
        print("interrupted; jobs already started keep running (see: ganga-async jobs)",
              file=sys.stderr)
        return 130
    except (GangaAsyncError, FileNotFoundError, BaseExceptionGroup) as exc:
        error = _expected(exc)
        if error is None:
            raise
        _print_error(str(error), as_json=args.log_json)
        return 2


def _expected(exc: BaseException) -> BaseException | None:
    """The error to report in one line, or ``None`` for a bug that deserves its traceback."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, GangaAsyncError | FileNotFoundError) else None


def _print_error(message: str, *, as_json: bool) -> None:
    """One line on stderr: ``error: ...``, or a JSON log object among the other JSON lines."""
    if not as_json:
        print(f"error: {message}", file=sys.stderr)
        return
    record = logging.makeLogRecord({
        "name": "ganga_async.cli", "levelno": logging.ERROR, "levelname": "ERROR", "msg": message,
        EVENT_ATTR: {"event": "error", "error": message},
    })
    print(JsonFormatter().format(record), file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganga-async",
        description="Submit, follow and control ganga-async jobs.",
        epilog="Exit codes: 0 success, 1 a waited-for job ended failed or killed, 2 an error.",
    )
    parser.add_argument("--gangadir", metavar="DIR", type=Path,
                        help="the gangadir to use (default: [Configuration] gangadir)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout, for scripts")
    parser.add_argument("--log-json", action="store_true",
                        help="log one JSON object per line on stderr")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more: -v for info, -vv for debug")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: _Run, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    sub = command("submit", _submit, "submit the job described in a TOML file and print its id")
    sub.add_argument("file", metavar="FILE.toml", type=Path)
    sub.add_argument("--wait", action="store_true", help="show progress until the job is final")
    sub = command("jobs", _jobs, "list the jobs")
    sub.add_argument("--status", help="only jobs in this status (e.g. running, failed)")
    sub = command("show", _show, "show a job or subjob (3 or 3.17)")
    sub.add_argument("id", metavar="ID")
    sub = command("wait", _wait, "follow a job until it is final, running what it still has to")
    sub.add_argument("id", metavar="ID")
    sub = command("kill", _kill, "kill a job (every active subjob) or one subjob")
    sub.add_argument("id", metavar="ID")
    sub = command("resubmit", _resubmit,
                  "submit again a job's failed subjobs, or a finished job or subjob")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("--wait", action="store_true", help="show progress until the job is final")
    sub = command("remove", _remove, "kill a job if active, then delete it and its files")
    sub.add_argument("id", metavar="ID")
    sub = command("peek", _peek, "print a file of a job's output: stdout, stderr or FILE")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("file", metavar="FILE", nargs="?", default="stdout")
    sub = commands.add_parser(
        "service", help="the daemon: start, stop, status",
        description="Run the engine as a daemon for the gangadir; the other commands then use it.")
    actions = sub.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = actions.add_parser("start", help="start the daemon (exit code 1 if one runs)")
    start.add_argument("--foreground", action="store_true",
                       help="run in this process, logging to stderr too (systemd, containers)")
    start.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    actions.add_parser("stop", help="stop the daemon once accepted work has finished")
    actions.add_parser("status", help="say whether a daemon runs (exit code 3 if none)")
    about = ("list the credentials on this machine (type, identity, location, time left, backends "
             "it is valid for), or renew them")
    sub = commands.add_parser("credentials", help=about, description=about)
    sub.add_argument("words", nargs="*", metavar="[renew] [TYPE]",
                     help="renew: renew them (in this terminal: a command may ask for your "
                          "password); TYPE: only this type (X509Proxy, VomsProxy, KerberosTicket, "
                          "AFSToken, BearerToken)")
    sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                     help="print one JSON document on stdout")
    sub = command("shareref", _shareref,
                  "show the ShareDirs of prepared applications and their reference counts")
    sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                     help="print {ShareDir: count} as JSON (as the global --json)")
    actions = sub.add_subparsers(dest="action", metavar="ACTION")
    ls = actions.add_parser("ls", help="list the files of a ShareDir")
    ls.add_argument("name", metavar="NAME")
    rebuild = actions.add_parser(
        "rebuild", help="rebuild the counts from the jobs and the box (after a crash)")
    rebuild.add_argument("--no-unprepare", dest="unprepare", action="store_false",
                         help="keep owners whose ShareDir is missing prepared")
    rebuild.add_argument("--rmdir", action="store_true",
                         help="delete unreferenced ShareDirs now, not when the engine closes")
    lookup = actions.add_parser("lookup", help="the jobs and box entries referencing a ShareDir")
    lookup.add_argument("name", metavar="NAME")
    lookup.add_argument("--unprepare", action="store_true", help="unprepare them")
    command("box", _box, "list the box: named jobs and applications kept in the repository")
    sub = command("demo", _demo, "run a split job of /bin/echo on Local with a progress bar")
    sub.add_argument("--subjobs", type=_positive, default=1000, metavar="N",
                     help="how many subjobs (default 1000)")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


async def _run(args: argparse.Namespace) -> int:
    if args.command == "credentials":
        words = list(args.words)
        args.action = words.pop(0) if words[:1] == ["renew"] else None
        if len(words) > 1:
            raise GangaAsyncError(f"credentials takes at most one TYPE, not {' '.join(words)}; "
                                  "e.g. ganga-async credentials renew VomsProxy")
        args.type = words[0] if words else None
        return await _credentials(args)
    config = load_config()
    if args.command in _SERVED:
        from .service._cli import served

        served_code = await served(args, config)
        if served_code is not None:
            return served_code
    monitoring = args.command not in _READ_ONLY
    async with Engine(args.gangadir, config=config, monitoring=monitoring) as engine:
        code: int = await args.run(engine, args)
        return code


# -- commands -----------------------------------------------------------------------------


async def _submit(engine: Engine, args: argparse.Namespace) -> int:
    job = load_job_file(args.file)
    with _subscribed(engine) as events:
        started = time.monotonic()
        await engine.submit(job)
        return await _follow_up(engine, args, job, events, {}, started)


async def _resubmit(engine: Engine, args: argparse.Namespace) -> int:
    job = await engine.get(args.id)
    with _subscribed(engine) as events:
        before = job.subjobs.counts()
        started = time.monotonic()
        await engine.resubmit(job)
        return await _follow_up(engine, args, job, events, before, started)


async def _follow_up(engine: Engine, args: argparse.Namespace, job: Job,
                     events: EventStream[JobEvent], before: dict[str, int], started: float) -> int:
    """After a (re)submission: wait and summarise with ``--wait``, otherwise report the handover.

    ``events`` was subscribed to before the submission, and ``before`` are the job's subjob
    counts at that moment."""
    if args.wait:
        info = await _watch(engine, job, events, before, progress_bar(args))
        info["elapsed"] = round(time.monotonic() - started, 3)
        return print_report(info, args)
    await _handed_over(job, events)
    if args.json:
        _print_json({"id": job.id, "status": str(job.status), "subjobs": len(job.subjobs)})
    else:
        print(job.fqid)
        if job.status not in FINAL:
            print(f"job {job.fqid} is {job.status}; follow it with: ganga-async wait {job.fqid}",
                  file=sys.stderr)
    return 0


async def _wait(engine: Engine, args: argparse.Namespace) -> int:
    job = await engine.get(args.id)
    with _subscribed(engine) as events:
        info = await _watch(engine, job, events, job.subjobs.counts(), progress_bar(args))
    return print_report(info, args)


async def _jobs(engine: Engine, args: argparse.Namespace) -> int:
    return print_jobs(await engine.summary(status=args.status), args, engine.gangadir)


def print_jobs(rows: list[dict[str, Any]], args: argparse.Namespace, gangadir: Path) -> int:
    """Print job summaries as ``jobs`` does: a table, or JSON with ``--json``."""
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        which = f"{args.status} jobs" if args.status else "jobs"
        print(f"no {which} in {gangadir}")
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    cells = [["" if row[c] is None else str(row[c]) for c in SUMMARY_COLUMNS] for row in rows]
    table = Table(box=None, header_style="bold")
    for i, column in enumerate(SUMMARY_COLUMNS):
        header = "fqid" if column == "id" else column
        width = max(len(header), *(len(line[i]) for line in cells))
        # On a narrow terminal the name and the comment give way; ids and statuses never do.
        table.add_column(header, no_wrap=True, overflow="ellipsis",
                         min_width={"comment": None, "name": min(width, 16)}.get(column, width),
                         justify="right" if column in ("id", "subjobs") else "left")
    for row, line in zip(rows, cells, strict=True):
        style = _STATUS_STYLES.get(row["status"], "")
        table.add_row(*[Text(cell, style=style if column == "status" else "")
                        for column, cell in zip(SUMMARY_COLUMNS, line, strict=True)])
    Console().print(table)
    return 0


async def _show(engine: Engine, args: argparse.Namespace) -> int:
    return print_show(describe(await engine.get(args.id)), args)


def print_show(info: dict[str, Any], args: argparse.Namespace) -> int:
    """Print a job as ``show`` does, from :func:`~ganga_async._describe.describe`'s dict."""
    if args.json:
        _print_json(info)
        return 0
    print(f"job {info['fqid']}: {info['status']}")
    for key, value in info.items():
        if key in ("fqid", "status") or value in (None, "", [], {}):
            continue
        if key == "time":
            print("  time")
            for status, stamp in value.items():
                print(f"    {status:<12} {stamp}")
            continue
        if key == "subjob_counts":
            value = ", ".join(f"{status} {n}" for status, n in value.items())
        elif isinstance(value, dict) and "type" in value:
            value = _component_text(value)
        elif key == "credentials":
            value = ", ".join(_component_text(credential) for credential in value)
        print(f"  {key:<14} {_shorten(str(value))}")
    return 0


async def _kill(engine: Engine, args: argparse.Namespace) -> int:
    job = await engine.get(args.id)
    await engine.kill(job)
    with anyio.move_on_after(kill_patience(engine.config)):
        await engine.wait(job)
    return print_killed(job.fqid, str(job.status), args)


def kill_patience(config: Config) -> float:
    """Seconds ``kill`` waits for the killed job to be seen final: the grace a Local job has to
    end, and a poll of its backend."""
    return float(config["Local"]["kill_grace"] + config["Monitoring"]["poll_interval"] + 1)


def print_killed(fqid: str, status: str, args: argparse.Namespace) -> int:
    if args.json:
        _print_json({"id": fqid, "status": status})
    elif Status(status) in FINAL:
        print(f"job {fqid} {status}")
    else:
        print(f"kill of job {fqid} requested; it is still {status} "
              f"(check with: ganga-async show {fqid})")
    return 0


async def _remove(engine: Engine, args: argparse.Namespace) -> int:
    job = await engine.get(args.id)
    await engine.remove(job)
    return print_removed({"id": job.fqid, "status": str(job.status)}, args)


def print_removed(removed: dict[str, Any], args: argparse.Namespace) -> int:
    if args.json:
        _print_json(removed)
    else:
        print(f"job {removed['id']} removed")
    return 0


async def _peek(engine: Engine, args: argparse.Namespace) -> int:
    job = await engine.get(args.id)
    return print_peek(job.fqid, await engine.peek(job, args.file), args)


def print_peek(fqid: str, text: str, args: argparse.Namespace) -> int:
    if args.json:
        _print_json({"id": fqid, "file": args.file, "content": text})
    else:
        sys.stdout.write(text)
        if text and not text.endswith("\n"):
            sys.stdout.write("\n")
    return 0


async def _credentials(args: argparse.Namespace) -> int:
    store = CredentialStore(load_config())
    if args.action == "renew":
        results = await store.renew(args.type, interactive=sys.stdin.isatty())
        if args.json:
            _print_json([{"credential": c.describe(), "renewed": not isinstance(r, BaseException),
                          **({"error": str(r)} if isinstance(r, BaseException)
                             else credential_row(r, store))}
                         for c, r in results])
        failed = 0
        for credential, outcome in results:
            if isinstance(outcome, BaseException):
                failed += 1
                if not args.json:
                    print(f"error: {outcome}", file=sys.stderr)
            elif not args.json:
                left = format_duration(outcome.time_left())
                problem = f" ({outcome.problem})" if outcome.problem else ""
                print(f"{credential.describe()}: renewed, {left} left{problem}")
        return 2 if failed else 0
    rows = await credential_rows(store, args.type)
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no credentials found (grid proxy, Kerberos ticket, AFS token, bearer token)")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for header in ("type", "identity", "location", "time left", "valid for"):
        table.add_column(header, overflow="fold")
    for row in rows:
        usable = row["exists"] and not row["problem"]
        left = ("expired" if not row["time_left"] else format_duration(row["time_left"])
                ) if usable else "-"
        valid = ", ".join(row["valid_for"]) or ("none: " + (row["problem"] or "too short")
                                                if row["exists"] else "none: not found")
        table.add_row(row["credential"], row["identity"] or "", row["location"], left, valid)
    Console().print(table)
    return 0


async def _shareref(engine: Engine, args: argparse.Namespace) -> int:
    shareref = engine.shareref
    if args.action == "ls":
        tree = await shareref.ls(args.name)
        return print_sharedir_tree({"name": args.name, "tree": tree.splitlines()}, args)
    if args.action == "lookup":
        holders = await shareref.lookup(args.name, unprepare=args.unprepare)
        return print_sharedir_owners(
            {"name": args.name, "owners": holders, "unprepared": args.unprepare}, args)
    if args.action == "rebuild":
        await shareref.rebuild(unprepare=args.unprepare, rmdir=args.rmdir)
    return print_sharedirs(await shareref.table(), engine.shared.root.absolute(), args)


def print_sharedir_tree(listing: dict[str, Any], args: argparse.Namespace) -> int:
    """Print ``shareref ls``: ``{"name", "tree": [line, ...]}``."""
    if args.json:
        _print_json(listing)
    else:
        print("\n".join(listing["tree"]))
    return 0


def print_sharedir_owners(found: dict[str, Any], args: argparse.Namespace) -> int:
    """Print ``shareref lookup``: ``{"name", "owners": ["job:3", "box:NAME"], "unprepared"}``,
    in Ganga's words."""
    if args.json:
        _print_json(found)
        return 0
    name, holders = found["name"], found["owners"]
    for holder in holders:
        kind, ident = holder_label(holder)
        print(f"ShareDir {name} is referenced by item #{ident} in {kind} repository")
    print(f"{len(holders)} item(s) found referencing ShareDir {name}"
          + ("; unprepared" if found["unprepared"] and holders else ""))
    return 0


def print_sharedirs(rows: Sequence[ShareDirInfo], root: Path, args: argparse.Namespace) -> int:
    """Print the shareref table (``root`` is the shared area), or ``{ShareDir: count}`` in
    the table's order with ``--json``."""
    if args.json:
        _print_json({row.name: row.count for row in rows})
    else:
        print(render_table(rows, root))
    return 0


async def _box(engine: Engine, args: argparse.Namespace) -> int:
    entries = [dataclasses.asdict(entry) for entry in await engine.box.entries()]
    return print_box(entries, engine.gangadir.absolute(), args)


def print_box(entries: list[dict[str, Any]], gangadir: Path, args: argparse.Namespace) -> int:
    """Print the box's entries (``name``, ``kind``, ``type``, ``sharedir``, ...) as a table, or
    as JSON with ``--json``."""
    if args.json:
        _print_json(entries)
        return 0
    if not entries:
        print(f"the box of {gangadir} is empty")
        return 0
    rows = [("name", "kind", "type", "sharedir")]
    rows += [(e["name"], e["kind"], e["type"], e["sharedir"] or "") for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


async def _demo(engine: Engine, args: argparse.Namespace) -> int:
    job = demo_job(args.subjobs)
    with _subscribed(engine) as events:
        started = time.monotonic()
        await engine.submit(job)
        if not args.json:
            print(demo_banner(job.fqid, args.subjobs))
        await _watch(engine, job, events, {}, progress_bar(args))
    elapsed = time.monotonic() - started
    first = job.subjobs[0]
    try:
        sample: str | None = (await engine.peek(first)).strip()
    except FileNotFoundError:
        sample = None
    return print_demo(summarise(job, elapsed), first.fqid, sample, args)


def demo_job(count: int) -> Job:
    """The main job: ``count`` subjobs of ``/bin/echo`` on Local, 8 at a time."""
    return Job(
        name="demo",
        comment=f"ganga-async demo: {count} subjobs of /bin/echo",
        application=Executable(exe="/bin/echo", args=[]),
        backend=Local(max_concurrent=8),
        splitter=ArgSplitter(args=[[f"hello from subjob {i}"] for i in range(count)]),
    )


def demo_banner(fqid: str, count: int) -> str:
    return f"job {fqid}: {count} subjobs of /bin/echo on Local(max_concurrent=8)"


def print_demo(info: dict[str, Any], first: str, sample: str | None, args: argparse.Namespace) -> int:
    """The demo's report: the job's summary, its rate and the stdout of its first subjob."""
    count = sum(info.get("subjob_counts", {}).values())
    rate = count / info["elapsed"] if info.get("elapsed") else 0.0
    if args.json:
        _print_json({**info, "rate": round(rate, 1), "sample": {"id": first, "stdout": sample}})
        return 0 if info["status"] == str(Status.COMPLETED) else 1
    code = print_report(info, args)
    print(f"  {'rate':<10} {rate:.1f} subjobs/s")
    print(f"  {'stdout of ' + first}: {sample if sample is not None else '(none)'}")
    print(f"  look closer: ganga-async show {info['id']}; ganga-async peek {first}")
    return code


# -- following a job ----------------------------------------------------------------------


def _subscribed(engine: Engine) -> closing[EventStream[JobEvent]]:
    """The engine's events from now on, closed at the end of the ``with`` block."""
    return closing(engine.events())


async def _handed_over(job: Job, events: EventStream[JobEvent]) -> None:
    """Return once the backend took the job (it left ``submitting``). A Local job then runs
    on, queue included, after this process ends."""
    if job.status is Status.SUBMITTING:
        async for _ in events:
            if job.status is not Status.SUBMITTING:
                break


async def _watch(engine: Engine, job: Job, events: EventStream[JobEvent], before: dict[str, int],
                 progress: Progress | None) -> dict[str, Any]:
    """Wait until ``job`` is final, drawing its ``progress`` bar from ``events`` (subscribed
    to when its subjobs were in the statuses counted in ``before``); its summary."""

    async def final() -> dict[str, Any]:
        await engine.wait(job)
        return summarise(job)

    subjobs = len(job.subjobs) if job.master is None else 0
    return await JobProgress(job.fqid, subjobs, before).follow(progress, events, final)


class JobProgress:
    """How far a job is, drawn as a progress bar: how many of its subjobs (or the job itself,
    unsplit) are final and how many failed, counted from its status transitions.

    The same for the job's two places: the commands that run an engine feed it the engine's
    events, and those a daemon serves the daemon's event stream.
    """

    def __init__(self, fqid: str, subjobs: int, counts: Mapping[str, int]) -> None:
        """``subjobs`` is the job's number of subjobs (0 if it is not split) and ``counts``
        its subjobs per status when its transitions began to be followed."""
        self.fqid = fqid
        self.split = subjobs > 0
        self.total = subjobs or 1
        self.done = sum(n for status, n in counts.items() if Status(status) in FINAL)
        self.failed = counts.get("failed", 0)

    def count(self, event: JobEvent) -> bool:
        """Count ``event`` if it is a transition of one of the job's subjobs (of the job
        itself if it is not split); whether it was."""
        owner = event.fqid.rpartition(".")[0] if self.split else event.fqid
        if owner != self.fqid:
            return False
        self.done += (event.new in FINAL) - (event.old in FINAL)
        self.failed += (event.new is Status.FAILED) - (event.old is Status.FAILED)
        return True

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Take the exact counts from the final job's :func:`~ganga_async._describe.summarise`
        (events may have been dropped on the way)."""
        self.done = self.total
        if self.split:
            self.failed = summary.get("subjob_counts", {}).get("failed", 0)
        else:
            self.failed = int(summary["status"] == str(Status.FAILED))

    async def follow(self, progress: Progress | None, events: AsyncIterable[JobEvent] | None,
                     wait: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """Return what ``wait()`` returns (the final job's summary), drawing the ``progress``
        bar meanwhile from ``events``; no bar without either."""
        if progress is None or events is None:
            return await wait()
        with progress:
            task = progress.add_task(f"job {self.fqid}", total=self.total, completed=self._done(),
                                     failed=max(0, self.failed))
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._draw, progress, task, events)
                summary = await wait()
                tg.cancel_scope.cancel()
            self.finish(summary)
            self._show(progress, task)
        return summary

    async def _draw(self, progress: Progress, task: TaskID, events: AsyncIterable[JobEvent]) -> None:
        async for event in events:
            if self.count(event):
                self._show(progress, task)

    def _show(self, progress: Progress, task: TaskID) -> None:
        progress.update(task, completed=self._done(), failed=max(0, self.failed))

    def _done(self) -> int:
        # Clamped: a daemon's counts at the start may already include an event still on its way.
        return max(0, min(self.done, self.total))


def progress_bar(args: argparse.Namespace) -> Progress | None:
    """A progress bar on stderr; none for JSON output or JSON log lines, nor off a terminal."""
    if args.json or args.log_json:
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        return None
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=console,
    )


# -- describing jobs ----------------------------------------------------------------------


def print_report(info: dict[str, Any], args: argparse.Namespace) -> int:
    """Print :func:`~ganga_async._describe.summarise`'s dict of a final job; the exit code is
    0 if it completed, 1 otherwise."""
    elapsed = info.get("elapsed")
    if args.json:
        _print_json(info)
    else:
        took = f" in {elapsed:.1f} s" if elapsed is not None else ""
        print(f"job {info['id']} {info['status']}{took}")
        for status, n in info.get("subjob_counts", {}).items():
            print(f"  {status:<10} {n}")
        if info.get("exitcode") is not None:
            print(f"  {'exit code':<10} {info['exitcode']}")
        if info.get("reason"):
            print(f"  {'reason':<10} {info['reason']}")
        print(f"  {'outputs':<10} {info['outputs']}")
    return 0 if info["status"] == str(Status.COMPLETED) else 1


def _component_text(data: dict[str, Any]) -> str:
    fields = ", ".join(f"{k}={v!r}" for k, v in data.items() if k != "type")
    return f"{data['type']}({fields})"


def _shorten(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_json(data: Any) -> None:
    print(json.dumps(data, default=str))


# -- logging ------------------------------------------------------------------------------


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time, so that lines logged while a progress
    bar is drawn appear above it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def _configure_logging(verbosity: int, as_json: bool) -> None:
    """Give the ``ganga_async`` logger its one stderr handler (the library configures none)."""
    logger = logging.getLogger("ganga_async")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    handler = _StderrHandler()
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
    logger.addHandler(handler)
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    logger.setLevel(levels[min(verbosity, len(levels) - 1)])
    logger.propagate = False


if __name__ == "__main__":
    sys.exit(main())
