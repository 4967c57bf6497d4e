"""The ``ganga-async`` command: submit, list, inspect and control jobs from a shell.

::

    ganga-async [--version] COMMAND [--gangadir DIR] [--json | -o json|tsv|wide] [--log-json] [-v]

    submit FILE.toml [--wait]     jobs [--status S]     show ID     wait ID
    kill ID     resubmit ID [--wait]     remove ID     peek ID [FILE]     demo [--subjobs N]
    release ID
    service start [--foreground] [--dashboard] | stop | status     dashboard [--open]
    credentials [renew] [TYPE]     completion bash|zsh
    shareref [ls NAME | rebuild [--no-unprepare] [--rmdir] | lookup NAME [--unprepare]]     box
    tasks [add FILE.toml | show|pause|run|remove ID]

This module parses the command line and configures logging; the commands themselves are in
:mod:`ganga_async.commands`, each written once against a session: the daemon's client when a
daemon runs for the gangadir (``service start``), otherwise an :class:`~ganga_async.Engine`
opened on the gangadir for as long as the command runs. ``credentials`` opens no engine: it
looks at the credentials on this machine. The options are accepted before and after the
command (every parser has them), as squeue and kubectl users expect.

The parser is argparse's, kept rather than click or typer: it already gives ``--help`` on
every command and the exit code 2 for a wrong command line, the option handling needs only
parent-style options on each sub-parser, and shell completion is generated from the parser
itself (:mod:`ganga_async.commands.completion`), so nothing is added to the dependencies and
the existing outputs and exit codes stay as they are.

Exit codes (docs/cli.md): 0 success; 1 a job waited for ended failed or killed, or was refused
by its backend at submission; 2 an error, printed as one line ``error: ...`` on stderr; 141
when stdout's reader went away. With ``--json`` every command prints one JSON document on
stdout. The library never configures logging; this module installs the one stderr handler,
console lines by default or one JSON object per line with ``--log-json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from ._exceptions import GangaAsyncError
from ._log import JsonFormatter
from ._shutdown import skip_final_collections
from ._version import __version__
from .commands import dashboard_command, run, service_command
from .commands.completion import complete, completion_script
from .commands.render import print_completion_script, print_error, print_warning
from .config import Config, load_config, unknown_variables

__all__ = ["OUTPUTS", "Parser", "main", "parse", "parser"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["__complete"]:
        # Before parsing: the words being completed are not this command line's options.
        return complete(parser(), words[1:])
    args = parse(words)
    skip_final_collections()  # whatever the command, its process exits sooner
    service = args.command == "service"
    if not (service and args.action == "start"):
        _configure_logging(args.verbose, args.log_json)
    try:
        config = _load_config()
        if args.command == "completion":
            return print_completion_script(completion_script(args.shell))
        if service:
            return service_command(args, config)
        if args.command == "dashboard":
            return dashboard_command(args, config)
        return anyio.run(run, args, config, backend="asyncio")
    except KeyboardInterrupt:
        if getattr(args, "watch", None) is not None:
            return 0  # the way out of jobs --watch
        print("interrupted; jobs already started keep running (see: ganga-async jobs)",
              file=sys.stderr)
        return 130
    except (GangaAsyncError, OSError, BaseExceptionGroup) as exc:
        error = _expected(exc)
        if isinstance(error, BrokenPipeError):
            return _stdout_closed()
        if error is None or (args.verbose >= 2 and not isinstance(error, GangaAsyncError)):
            raise  # a bug, or -vv asked for the traceback
        print_error(_one_line(error), as_json=args.log_json)
        return 2


def _load_config() -> Config:
    """The configuration, once the ``GANGA_ASYNC_*`` variables that name no option have been
    reported as warnings and removed from this process's environment (and so from the
    daemon's it may start)."""
    for name in unknown_variables():
        print_warning(f"environment variable {name} is not a ganga-async option; ignored "
                      "(options are GANGA_ASYNC_<SECTION>_<OPTION>, e.g. "
                      "GANGA_ASYNC_LOCAL_MAX_CONCURRENT; see docs/configuration.md)")
        del os.environ[name]
    return load_config()


def _expected(exc: BaseException) -> BaseException | None:
    """The error to report in one line, or ``None`` for a bug that deserves its traceback."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, GangaAsyncError | OSError) else None


def _one_line(error: BaseException) -> str:
    """The error as its line: an OS error as ``PATH: what went wrong``."""
    if isinstance(error, OSError) and not isinstance(error, GangaAsyncError) and error.strerror:
        where = error.filename if error.filename is not None else "error"
        return f"{where}: {error.strerror}"
    return str(error)


def _stdout_closed() -> int:
    """The reader of stdout went away (``ganga-async jobs | head``): end quietly, as ``cat``
    does, with the exit code of SIGPIPE. Python would otherwise fail again flushing stdout."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + signal.SIGPIPE


class Parser(argparse.ArgumentParser):
    """The command line's parser. It keeps what shell completion needs in public attributes:
    :attr:`options`, the actions of its options and positionals in order, and
    :attr:`commands`, the action whose ``choices`` map each command's (or action's) name to
    its own parser (None for a parser without commands)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.options: list[argparse.Action] = []
        self.commands: argparse.Action | None = None
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.options.append(action)
        return action

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", Parser)
        self.commands = super().add_subparsers(**kwargs)
        return self.commands


OUTPUTS = ("json", "tsv", "wide")
"""The formats of ``-o``: one JSON document; tab-separated rows without a header (for awk,
cut and grep); the table at full width, nothing cut."""


def _common_options(parser: Parser, *, top: bool) -> None:
    """The options accepted before and after the command (``jobs --json`` as ``--json jobs``);
    after it, an option given overrides the one before."""
    default: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument("--gangadir", metavar="DIR", type=Path, **default,
                        help="the gangadir to use (default: [Configuration] gangadir)")
    parser.add_argument("--json", action="store_true", **default,
                        help="print one JSON document on stdout, for scripts (as -o json)")
    parser.add_argument("-o", "--output", choices=OUTPUTS, **default,
                        help="json: one JSON document; tsv: tab-separated rows without a header; "
                             "wide: the table at full width (the default when stdout is not a "
                             "terminal)")
    parser.add_argument("--log-json", action="store_true", **default,
                        help="log one JSON object per line on stderr")
    parser.add_argument("-v", "--verbose", action="count", **({"default": 0} if top else default),
                        help="log more: -v for info, -vv for debug")


def parser() -> Parser:
    """The parser of the ``ganga-async`` command line."""
    parser = Parser(
        prog="ganga-async",
        description="Submit, follow and control ganga-async jobs.",
        epilog=("Exit codes: 0 success, 1 a job ended (or was refused) failed or killed, "
                "2 an error, 130 interrupted. Options may come before or after the command."),
    )
    parser.add_argument("--version", action="version", version=f"ganga-async {__version__}")
    _common_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, within: Any = commands, **kwargs: Any) -> Parser:
        sub: Parser = within.add_parser(name, help=help, description=kwargs.pop("description", help),
                                        **kwargs)
        _common_options(sub, top=False)
        return sub

    sub = command("submit", "submit the job described in a TOML file and print its id (a task "
                  "file, with [task], is added and run as by tasks add)")
    sub.add_argument("file", metavar="FILE.toml", type=Path)
    sub.add_argument("--wait", action="store_true", help="show progress until the job is final")
    sub.add_argument("--token", metavar="TOKEN",
                     help="name this submission (e.g. a uuid): submitting again with the same "
                          "token gives the job the first one made instead of a second job, so "
                          "a submit whose reply was lost can be repeated safely")
    sub = command("jobs", "list the jobs")
    sub.add_argument("--status", metavar="S[,S...]",
                     help="only jobs in these statuses (e.g. running, or killed,failed)")
    sub.add_argument("--name", metavar="PATTERN", help="only jobs whose name matches (e.g. 'sim-*')")
    sub.add_argument("--last", type=_natural, metavar="N", help="only the N most recent jobs")
    sub.add_argument("-w", "--watch", type=_seconds, nargs="?", const=2.0, metavar="SECONDS",
                     help="redraw the list at each change and every SECONDS (default 2) until "
                          "Ctrl-C, as squeue -i")
    sub = command("show", "show a job or subjob (3 or 3.17)")
    sub.add_argument("id", metavar="ID")
    sub = command("wait", "follow a job until it is final, running what it still has to")
    sub.add_argument("id", metavar="ID")
    ids = "job ids: 3, subjob ids: 3.17, ranges: 7-9 and 3.2-5"
    sub = command("kill", "kill jobs (every active subjob) or subjobs")
    sub.add_argument("ids", metavar="ID", nargs="+", help=ids)
    sub = command("release", "release jobs or subjobs their batch system holds (HTCondor's Held)")
    sub.add_argument("ids", metavar="ID", nargs="+", help=ids)
    sub = command("resubmit", "submit again jobs' failed subjobs (or those in --status), or "
                  "finished jobs or subjobs")
    sub.add_argument("ids", metavar="ID", nargs="+", help=ids)
    sub.add_argument("--status", metavar="S[,S...]",
                     help="the statuses of the subjobs to submit again (default: failed; e.g. "
                          "killed,failed)")
    sub.add_argument("--wait", action="store_true", help="show progress until the job is final")
    sub = command("remove", "kill jobs if active, then delete them and their files")
    sub.add_argument("ids", metavar="ID", nargs="+", help=ids)
    sub = command("peek", "print a file of a job's output: stdout, stderr or FILE")
    sub.add_argument("id", metavar="ID")
    sub.add_argument("file", metavar="FILE", nargs="?", default="stdout")
    sub = command("service", "the daemon: start, stop, status",
                  description="Run the engine as a daemon for the gangadir; the other commands "
                              "then use it.")
    actions = sub.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = command("start", "start the daemon (exit code 1 if one runs)", actions)
    start.add_argument("--foreground", action="store_true",
                       help="run in this process, logging to stderr too (systemd, containers)")
    start.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    start.add_argument("--dashboard", action="store_true",
                       help="serve the web dashboard on 127.0.0.1 too (ganga-async dashboard "
                            "prints its URL; needs the dashboard extra)")
    command("stop", "stop the daemon once accepted work has finished", actions)
    command("status", "say whether a daemon runs (exit code 3 if none)", actions)
    sub = command("dashboard", "print the URL (with its token) of the daemon's web dashboard")
    sub.add_argument("--open", action="store_true", help="open it in a web browser too")
    sub = command("credentials", "list the credentials on this machine (type, identity, location, "
                  "time left, backends it is valid for), or renew them")
    sub.add_argument("words", nargs="*", metavar="[renew] [TYPE]",
                     help="renew: renew them (in this terminal: a command may ask for your "
                          "password); TYPE: only this type (X509Proxy, VomsProxy, KerberosTicket, "
                          "AFSToken, BearerToken)")
    sub = command("shareref", "show the ShareDirs of prepared applications and their reference counts")
    actions = sub.add_subparsers(dest="action", metavar="ACTION")
    ls = command("ls", "list the files of a ShareDir", actions)
    ls.add_argument("name", metavar="NAME")
    rebuild = command("rebuild", "rebuild the counts from the jobs and the box (after a crash)",
                      actions)
    rebuild.add_argument("--no-unprepare", dest="unprepare", action="store_false",
                         help="keep owners whose ShareDir is missing prepared")
    rebuild.add_argument("--rmdir", action="store_true",
                         help="delete unreferenced ShareDirs now, not when the engine closes")
    lookup = command("lookup", "the jobs and box entries referencing a ShareDir", actions)
    lookup.add_argument("name", metavar="NAME")
    lookup.add_argument("--unprepare", action="store_true", help="unprepare them")
    command("box", "list the box: named jobs and applications kept in the repository")
    sub = command("tasks", "list the tasks (units by status), or show, pause, run or remove one")
    actions = sub.add_subparsers(dest="action", metavar="ACTION")
    add = command("add", "add the task described in a TOML task file and run it", actions)
    add.add_argument("file", metavar="FILE.toml", type=Path)
    add.add_argument("--no-run", action="store_true", help="store it without running it")
    add.add_argument("--token", metavar="TOKEN",
                     help="name this request (e.g. a uuid): adding again with the same token "
                          "gives the task the first one added instead of a second task")
    for name, what in (("show", "show a task and each of its units"),
                       ("pause", "give no new jobs to a task's units (running ones go on)"),
                       ("run", "run a task: its units get jobs, float at a time"),
                       ("remove", "forget a task (its jobs stay)")):
        command(name, what, actions).add_argument("id", metavar="ID", type=int)
    sub = command("demo", "run a split job of /bin/echo on Local with a progress bar")
    sub.add_argument("--subjobs", type=_positive, default=1000, metavar="N",
                     help="how many subjobs (default 1000)")
    sub = command("completion", "print the shell completion script for bash or zsh",
                  description="Print the completion script (commands, options, job ids). Enable "
                              "it with: eval \"$(ganga-async completion bash)\" in ~/.bashrc, or "
                              "the same with zsh in ~/.zshrc.")
    sub.add_argument("shell", choices=("bash", "zsh"))
    hidden: Parser = commands.add_parser("__complete")
    hidden.add_argument("words", nargs=argparse.REMAINDER)
    return parser


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; ``-o json`` and ``--json`` mean the same (``args.json``)."""
    args = parser().parse_args(argv)
    if args.json:
        args.output = "json"
    args.json = args.output == "json"
    return args


def _natural(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of jobs")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


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
