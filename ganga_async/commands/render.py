"""Everything the command line prints: tables, JSON documents and reports (the progress bar is
:mod:`.progress`).

The commands hand over the JSON-able results of the daemon's operations (the same whether the
daemon or the command's own engine answered) and the parsed command line, whose ``json``
option chooses one JSON document on stdout instead of text. Each ``print_*`` function returns
the command's exit code. rich is imported only to draw a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._describe import credential_row
from .._duration import format_duration
from .._log import EVENT_ATTR, JsonFormatter
from ..model.job import SUMMARY_COLUMNS
from ..states import FINAL, Status
from ._table import print_plain_table

if TYPE_CHECKING:
    from rich.table import Table

    from ..credentials.base import Credential, CredentialInfo
    from ..credentials.store import CredentialStore
    from ..prepared.shareref import ShareDirInfo

__all__ = [
    "demo_banner", "print_box", "print_credentials", "print_demo", "print_error",
    "print_handed_over", "print_jobs", "print_json", "print_killed", "print_peek",
    "print_removed", "print_renewals", "print_report", "print_sharedir_owners",
    "print_sharedir_tree", "print_sharedirs", "print_show", "say",
]

_STATUS_STYLES = {"completed": "green", "failed": "red", "killed": "magenta", "running": "cyan",
                  "submitted": "blue", "submitting": "blue", "completing": "cyan",
                  "unknown": "yellow"}


def print_json(data: Any) -> None:
    """One JSON document on stdout."""
    print(json.dumps(data, default=str))


def print_error(message: str, *, as_json: bool) -> None:
    """One line on stderr: ``error: ...``, or a JSON log object among the other JSON lines."""
    if not as_json:
        print(f"error: {message}", file=sys.stderr)
        return
    record = logging.makeLogRecord({
        "name": "ganga_async.cli", "levelno": logging.ERROR, "levelname": "ERROR", "msg": message,
        EVENT_ATTR: {"event": "error", "error": message},
    })
    print(JsonFormatter().format(record), file=sys.stderr)


def print_note(message: str, *, as_json: bool) -> None:
    """One line on stderr for the user, beside the command's output: ``message``, or a JSON
    log object among the other JSON lines."""
    if not as_json:
        print(message, file=sys.stderr)
        return
    record = logging.makeLogRecord({
        "name": "ganga_async.cli", "levelno": logging.INFO, "levelname": "INFO", "msg": message,
        EVENT_ATTR: {"event": message},
    })
    print(JsonFormatter().format(record), file=sys.stderr)


def print_warning(message: str) -> None:
    """One line on stderr: ``warning: ...``."""
    print(f"warning: {message}", file=sys.stderr)


def print_candidates(candidates: Sequence[str]) -> None:
    """Shell completion's candidates, one a line."""
    for candidate in candidates:
        print(candidate)


def print_completion_script(script: str) -> int:
    """A shell's completion script."""
    sys.stdout.write(script)
    return 0


def output_format(args: argparse.Namespace) -> str:
    """How a list is printed: ``json``, ``tsv``, ``wide`` (full width: ``-o wide``, or stdout
    is not a terminal) or ``table`` (fitted to the terminal)."""
    output = getattr(args, "output", None)
    if args.json or output == "json":
        return "json"
    if output in ("tsv", "wide"):
        return str(output)
    from rich.console import Console

    return "table" if Console().is_terminal else "wide"


def _print_tsv(lines: Sequence[Sequence[str]]) -> None:
    """Rows of cells, tab-separated, no header; tabs and newlines in a cell become spaces."""
    for line in lines:
        print("\t".join(cell.replace("\t", " ").replace("\n", " ") for cell in line))


def say(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    """A ``service`` command's answer: ``text``, or ``data`` as compact JSON with ``--json``."""
    print(json.dumps(data) if args.json else text)


# -- jobs ---------------------------------------------------------------------------------


def print_jobs(rows: list[dict[str, Any]], args: argparse.Namespace, gangadir: Path) -> int:
    """Print job summaries as ``jobs`` does: a table (fitted to the terminal, full width
    otherwise), JSON with ``--json``, tab-separated rows with ``-o tsv``."""
    output = output_format(args)
    if output == "json":
        print_json(rows)
        return 0
    if not rows:
        which = f"{args.status} jobs" if args.status else "jobs"
        print(f"no {which} in {gangadir}")
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    cells = [["" if row[c] is None else str(row[c]) for c in SUMMARY_COLUMNS] for row in rows]
    if output == "tsv":
        _print_tsv(cells)
        return 0
    headers = ["fqid" if column == "id" else column for column in SUMMARY_COLUMNS]
    widths = [max(map(len, column)) for column in zip(headers, *cells, strict=True)]
    fitted = dict(zip(SUMMARY_COLUMNS, widths, strict=True))
    if output == "table":
        # On a narrow terminal the comment and then the name give way; ids and statuses never do.
        room = _terminal_width() - 2 * len(widths)
        fixed = sum(w for column, w in fitted.items() if column not in ("name", "comment"))
        fitted["name"] = min(fitted["name"], max(16, room - fixed - fitted["comment"]))
        fitted["comment"] = min(fitted["comment"], max(8, room - fixed - fitted["name"]))
    fits = output == "wide" or sum(fitted.values()) + 2 * len(widths) <= _terminal_width()
    text = "".join(itertools.chain.from_iterable(cells))
    if fits and text.isascii() and text.isprintable():
        print_plain_table(rows, cells, headers, [fitted[c] for c in SUMMARY_COLUMNS],
                          console=None if output == "wide" else Console(),
                          styles=_STATUS_STYLES)
        return 0
    table = Table(box=None, header_style="bold")
    for column, header in zip(SUMMARY_COLUMNS, headers, strict=True):
        table.add_column(header, no_wrap=True, overflow="ellipsis", width=fitted[column],
                         justify="right" if column in ("id", "subjobs") else "left")
    for row, line in zip(rows, cells, strict=True):
        style = _STATUS_STYLES.get(row["status"], "")
        table.add_row(*[Text(cell, style=style if column == "status" else "")
                        for column, cell in zip(SUMMARY_COLUMNS, line, strict=True)])
    _print_table(table, output, sum(widths) + 2 * len(widths))
    return 0


def _terminal_width() -> int:
    from rich.console import Console

    return Console().width


def _print_table(table: Table, output: str, width: int) -> None:
    """Print a rich ``table`` fitted to the terminal, or when ``wide`` at its full ``width``
    with no trailing blanks (off a terminal rich would cut it at 80 columns)."""
    from rich.console import Console

    if output != "wide":
        Console().print(table)
        return
    console = Console(width=max(width, 20))
    with console.capture() as captured:
        console.print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def print_watched(rows: list[dict[str, Any]], args: argparse.Namespace, gangadir: Path,
                  every: float) -> None:
    """One redraw of ``jobs --watch``: on a terminal the screen cleared, then a header line and
    the table; off a terminal the same one after the other; with ``--json`` one JSON document
    a line."""
    if output_format(args) == "json":
        print_json(rows)
        sys.stdout.flush()
        return
    from rich.console import Console

    if Console().is_terminal:
        sys.stdout.write("\x1b[H\x1b[2J")
    print(f"every {every:g} s and at each change: ganga-async jobs    "
          f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    print_jobs(rows, args, gangadir)
    if not Console().is_terminal:
        print()
    sys.stdout.flush()


def print_show(info: dict[str, Any], args: argparse.Namespace) -> int:
    """Print a job as ``show`` does, from :func:`~ganga_async._describe.describe`'s dict."""
    if args.json:
        print_json(info)
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
        if key == "attempts":
            print("  attempts")
            for run in value:
                ended = f"exit code {run['exitcode']}" if run["exitcode"] is not None else "-"
                print(f"    {run['n']:<3} {run['status']:<10} {ended:<13} "
                      f"{_shorten(run['reason'] or '')}")
            continue
        if key == "postprocessor_results":
            print("  postprocessed")
            for result in value:
                outcome = "ok" if result["ok"] else "failed"
                print(f"    {result['postprocessor']:<30} {outcome:<6} "
                      f"{_shorten(result['detail'])}")
            continue
        if key == "subjob_counts":
            value = ", ".join(f"{status} {n}" for status, n in value.items())
        elif isinstance(value, dict) and "type" in value:
            value = _component_text(value)
        elif key in ("credentials", "postprocessors"):
            value = ", ".join(_component_text(component) for component in value)
        print(f"  {key:<14} {_shorten(str(value))}")
    return 0


def print_handed_over(info: dict[str, Any], args: argparse.Namespace, *, by_daemon: bool) -> int:
    """Print a (re)submitted job its backend (and the daemon, ``by_daemon``) took over:
    ``{"id", "status", "subjobs", "reason", "reached_backend"}``. A job already ``failed`` or
    ``killed`` that never reached its backend was refused: its reason on stderr, and exit code
    1. One that did (its subjobs ran and ended before this returned) was handed over."""
    fqid = info["id"]
    refused = (info["status"] in (str(Status.FAILED), str(Status.KILLED))
               and not info.get("reached_backend", False))
    if refused:
        print_error(f"job {fqid} {info['status']} at submission: {info.get('reason') or 'no reason given'}",
                    as_json=args.log_json)
    if args.json:
        print_json({"id": fqid, "status": info["status"], "subjobs": info.get("subjobs", 0),
                    **({"reason": info.get("reason")} if refused else {})})
        return 1 if refused else 0
    print(fqid)
    if refused:
        return 1
    if by_daemon:
        print(f"the service monitors job {fqid}; follow it with: ganga-async wait {fqid}",
              file=sys.stderr)
    elif Status(info["status"]) not in FINAL:
        print(f"job {fqid} is {info['status']}; follow it with: ganga-async wait {fqid}",
              file=sys.stderr)
    else:
        print(f"job {fqid} already ran and is {info['status']}; see it with: ganga-async show "
              f"{fqid}", file=sys.stderr)
    return 0


def print_report(info: dict[str, Any], args: argparse.Namespace) -> int:
    """Print :func:`~ganga_async._describe.summarise`'s dict of a final job; the exit code is
    0 if it completed, 1 otherwise."""
    elapsed = info.get("elapsed")
    if args.json:
        print_json(info)
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


def print_killed(outcomes: Sequence[tuple[str, str] | Exception], args: argparse.Namespace) -> int:
    """Print the outcome of ``kill``: per id, ``(fqid, status)`` once killed (or on its way),
    or the error that stopped it (one ``error:`` line on stderr; exit code 2). With ``--json``
    one object for one id, a list for several."""
    rows = [{"id": o[0], "status": o[1]} if isinstance(o, tuple) else {"error": str(o)}
            for o in outcomes]
    failed = False
    for outcome in outcomes:
        if not isinstance(outcome, tuple):
            failed = True
            print_error(str(outcome), as_json=args.log_json)
        elif args.json:
            continue
        elif Status(outcome[1]) in FINAL:
            print(f"job {outcome[0]} {outcome[1]}")
        else:
            print(f"kill of job {outcome[0]} requested; it is still {outcome[1]} "
                  f"(check with: ganga-async show {outcome[0]})")
    if args.json:
        print_json(rows[0] if len(rows) == 1 else rows)
    return 2 if failed else 0


def print_removed(removed: dict[str, Any], args: argparse.Namespace) -> int:
    """Print the outcome of ``remove``: ``{"id", "status"}``."""
    if args.json:
        print_json(removed)
    else:
        print(f"job {removed['id']} removed")
    return 0


def print_peek(peeked: dict[str, Any], args: argparse.Namespace) -> int:
    """Print a file of a job's output: ``{"id", "file", "content"}``."""
    if args.json:
        print_json(peeked)
        return 0
    text = peeked["content"]
    sys.stdout.write(text)
    if text and not text.endswith("\n"):
        sys.stdout.write("\n")
    return 0


def demo_banner(fqid: str, count: int) -> str:
    """The demo's first line: which job runs what."""
    return f"job {fqid}: {count} subjobs of /bin/echo on Local(max_concurrent=8)"


def print_demo(info: dict[str, Any], first: str, sample: str | None, args: argparse.Namespace) -> int:
    """The demo's report: the job's summary, its rate and the stdout of its first subjob."""
    count = sum(info.get("subjob_counts", {}).values())
    rate = count / info["elapsed"] if info.get("elapsed") else 0.0
    if args.json:
        print_json({**info, "rate": round(rate, 1), "sample": {"id": first, "stdout": sample}})
        return 0 if info["status"] == str(Status.COMPLETED) else 1
    code = print_report(info, args)
    print(f"  {'rate':<10} {rate:.1f} subjobs/s")
    print(f"  {'stdout of ' + first}: {sample if sample is not None else '(none)'}")
    print(f"  look closer: ganga-async show {info['id']}; ganga-async peek {first}")
    return code


def _component_text(data: dict[str, Any]) -> str:
    fields = ", ".join(f"{k}={v!r}" for k, v in data.items() if k != "type")
    return f"{data['type']}({fields})"


def _shorten(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# -- prepared state -----------------------------------------------------------------------


def print_sharedir_tree(listing: dict[str, Any], args: argparse.Namespace) -> int:
    """Print ``shareref ls``: ``{"name", "tree": [line, ...]}``."""
    if args.json:
        print_json(listing)
    else:
        print("\n".join(listing["tree"]))
    return 0


def print_sharedir_owners(found: dict[str, Any], args: argparse.Namespace) -> int:
    """Print ``shareref lookup``: ``{"name", "owners": ["job:3", "box:NAME"], "unprepared"}``,
    in Ganga's words."""
    if args.json:
        print_json(found)
        return 0
    from ..prepared.shareref import holder_label  # the ShareRef actor's module (the repository)

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
    from ..prepared.shareref import render_table

    if args.json:
        print_json({row.name: row.count for row in rows})
    else:
        print(render_table(rows, root))
    return 0


def print_box(entries: list[dict[str, Any]], gangadir: Path, args: argparse.Namespace) -> int:
    """Print the box's entries (``name``, ``kind``, ``type``, ``sharedir``, ...) as a table, or
    as JSON with ``--json``, tab-separated rows with ``-o tsv``."""
    output = output_format(args)
    if output == "json":
        print_json(entries)
        return 0
    cells = [(e["name"], e["kind"], e["type"], e["sharedir"] or "") for e in entries]
    if output == "tsv":
        _print_tsv(cells)
        return 0
    if not entries:
        print(f"the box of {gangadir} is empty")
        return 0
    rows = [("name", "kind", "type", "sharedir"), *cells]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


# -- credentials --------------------------------------------------------------------------


def print_credentials(rows: list[dict[str, Any]], args: argparse.Namespace) -> int:
    """Print :func:`~ganga_async._describe.credential_rows` as a table, as JSON, or as
    tab-separated rows with ``-o tsv``."""
    output = output_format(args)
    if output == "json":
        print_json(rows)
        return 0
    if not rows:
        print("no credentials found (grid proxy, Kerberos ticket, AFS token, bearer token)")
        return 0
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for header in ("type", "identity", "location", "time left", "valid for"):
        table.add_column(header, overflow="fold")
    cells = []
    for row in rows:
        usable = row["exists"] and not row["problem"]
        left = ("expired" if not row["time_left"] else format_duration(row["time_left"])
                ) if usable else "-"
        valid = ", ".join(row["valid_for"]) or ("none: " + (row["problem"] or "too short")
                                                if row["exists"] else "none: not found")
        cells.append((row["credential"], row["identity"] or "", row["location"], left, valid))
    if output == "tsv":
        _print_tsv(cells)
        return 0
    for line in cells:
        table.add_row(*line)
    _print_table(table, output,
                 sum(max(len(c) for c in column) + 2 for column in zip(*cells, strict=True)))
    return 0


def print_renewals(results: Sequence[tuple[Credential, CredentialInfo | BaseException]],
                   store: CredentialStore, args: argparse.Namespace) -> int:
    """Print what ``credentials renew`` did: one line per credential (failures as ``error:``
    lines on stderr), or one JSON row each; the exit code is 2 when any failed."""
    if args.json:
        print_json([{"credential": c.describe(), "renewed": not isinstance(r, BaseException),
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
