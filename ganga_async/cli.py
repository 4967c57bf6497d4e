"""The ``ganga-async`` command: submit, list, inspect and control jobs from a shell.

::

    ganga-async [--gangadir DIR] [--json] [--log-json] [-v] COMMAND ...

    submit FILE.toml [--wait]     jobs [--status S]     show ID     wait ID
    kill ID     resubmit ID [--wait]     remove ID     peek ID [FILE]     demo [--subjobs N]
    service start [--foreground] | stop | status
    credentials [--json]     credentials renew [TYPE]
    shareref [ls NAME | rebuild [--no-unprepare] [--rmdir] | lookup NAME [--unprepare]]     box

This module parses the command line and configures logging; the commands themselves are in
:mod:`ganga_async.commands`, each written once against a session: the daemon's client when a
daemon runs for the gangadir (``service start``), so ``submit`` then returns at once and the
daemon monitors, otherwise an :class:`~ganga_async.Engine` opened on the gangadir for as long
as the command runs. ``jobs``, ``show``, ``peek``, ``shareref`` and ``box`` never need a
backend, so they open it with ``monitoring=False``; ``jobs`` reads :meth:`Engine.summary` and no
job description, so it stays fast on a repository of any size. ``credentials`` opens no engine:
it looks at the credentials on this machine.

Exit codes: 0 success; 1 a job waited for ended failed or killed; 2 an error, printed as one
line ``error: ...`` on stderr. With ``--json`` every command prints one JSON document on
stdout. The library never configures logging; this module installs the one stderr handler,
console lines by default or one JSON object per line with ``--log-json``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from ._exceptions import GangaAsyncError
from ._log import JsonFormatter
from .commands import run, service_command
from .commands.render import print_error
from .config import load_config

__all__ = ["Parser", "main", "parser"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    args = parser().parse_args(argv)
    service = args.command == "service"
    if not (service and args.action == "start"):
        _configure_logging(args.verbose, args.log_json)
    try:
        if service:
            return service_command(args, load_config())
        return anyio.run(run, args, backend="asyncio")
    except KeyboardInterrupt:
        print("interrupted; jobs already started keep running (see: ganga-async jobs)",
              file=sys.stderr)
        return 130
    except (GangaAsyncError, FileNotFoundError, BaseExceptionGroup) as exc:
        error = _expected(exc)
        if error is None:
            raise
        print_error(str(error), as_json=args.log_json)
        return 2


def _expected(exc: BaseException) -> BaseException | None:
    """The error to report in one line, or ``None`` for a bug that deserves its traceback."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, GangaAsyncError | FileNotFoundError) else None


class Parser(argparse.ArgumentParser):
    """The command line's parser; :attr:`commands` is the action whose ``choices`` map each
    command's name to its own parser."""

    commands: argparse.Action


def parser() -> Parser:
    """The parser of the ``ganga-async`` command line."""
    parser = Parser(
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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=argparse.ArgumentParser)
    parser.commands = commands

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help)

    sub = command("submit", "submit the job described in a TOML file and print its id")
    sub.add_argument("file", metavar="FILE.toml", type=Path)
    sub.add_argument("--wait", action="store_true", help="show progress until the job is final")
    sub = command("jobs", "list the jobs")
    sub.add_argument("--status", help="only jobs in this status (e.g. running, failed)")
    sub = command("show", "show a job or subjob (3 or 3.17)")
    sub.add_argument("id", metavar="ID")
    sub = command("wait", "follow a job until it is final, running what it still has to")
    sub.add_argument("id", metavar="ID")
    sub = command("kill", "kill a job (every active subjob) or one subjob")
    sub.add_argument("id", metavar="ID")
    sub = command("resubmit", "submit again a job's failed subjobs, or a finished job or subjob")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("--wait", action="store_true", help="show progress until the job is final")
    sub = command("remove", "kill a job if active, then delete it and its files")
    sub.add_argument("id", metavar="ID")
    sub = command("peek", "print a file of a job's output: stdout, stderr or FILE")
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
    sub = command("shareref", "show the ShareDirs of prepared applications and their reference counts")
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
    command("box", "list the box: named jobs and applications kept in the repository")
    sub = command("demo", "run a split job of /bin/echo on Local with a progress bar")
    sub.add_argument("--subjobs", type=_positive, default=1000, metavar="N",
                     help="how many subjobs (default 1000)")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


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
