"""Where postprocessors' results are kept: ``postprocessing.jsonl`` in the job's directory.

Each line holds the results of one run of the postprocessors on the job (``"index": null``) or
on one of its subjobs; a later line for the same (sub)job replaces an earlier one (a retry, a
redo after a crash). The file is appended to in a worker thread before the state machine hears
of the outcome, so a result is never lost across a restart; a line cut short by a crash is
skipped when read (its (sub)job is checked again on restart). Keeping them beside the merged
files needs no repository schema change and costs nothing to jobs without postprocessors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from .._log import get_logger
from ..postprocessors.base import PostprocessorResult

__all__ = ["RESULTS_FILE", "write_results", "read_results"]

RESULTS_FILE = "postprocessing.jsonl"

log = get_logger("ganga_async.engine")

Results = dict[int | None, list[PostprocessorResult]]


def write_results(jobdir: Path, results: Mapping[int | None, list[PostprocessorResult]]) -> None:
    """Append these (sub)jobs' results to the job's file (blocking); a failure to write is
    logged (the results are still published and held in memory until the engine closes)."""
    if not results:
        return
    # Each line starts with a newline: one cut short by a crash never swallows the next.
    lines = "".join("\n" + json.dumps({"index": index, "results": [r._asdict() for r in found]})
                    for index, found in results.items())
    try:
        fd = os.open(jobdir / RESULTS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            out.write(lines)
    except OSError as exc:  # a full disk must not stop the engine: the job's status is kept
        log.error("postprocessors' results not kept", jobdir=str(jobdir), error=str(exc))


def read_results(jobdir: Path) -> Results:
    """The latest results of each (sub)job of the job (blocking); none when there is no file."""
    found: Results = {}
    try:
        text = (jobdir / RESULTS_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return found
    except (OSError, ValueError) as exc:  # unreadable: the job still loads, without them
        log.error("postprocessors' results not readable", jobdir=str(jobdir), error=str(exc))
        return found
    for line in text.splitlines():
        if not line:
            continue
        try:
            entry = json.loads(line)
            found[entry["index"]] = [PostprocessorResult(**r) for r in entry["results"]]
        except (ValueError, KeyError, TypeError):
            continue  # cut short by a crash: that (sub)job is postprocessed again
    return found
