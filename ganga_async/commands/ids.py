"""Job ids as a command line gives them: ``3``, ``3.17``, ranges ``7-9`` and ``3.2-5``, and
commas, as squeue and condor_q users write them (``kill 3 4 7-9``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .._exceptions import GangaAsyncError

__all__ = ["expand_ids", "parse_statuses"]

_ID = re.compile(r"(?P<job>\d+)(?:-(?P<last>\d+))?(?:\.(?P<sub>\d+)(?:-(?P<sublast>\d+))?)?")


def expand_ids(words: Iterable[str]) -> list[str]:
    """The ids ``words`` name, in order and each once: ``["3", "7-9", "4.1-2"]`` gives
    ``["3", "7", "8", "9", "4.1", "4.2"]``. A word that is not an id is an error naming it."""
    ids: dict[str, None] = {}
    for word in words:
        for part in filter(None, word.split(",")):
            ids.update(dict.fromkeys(_expand(part)))
    if not ids:
        raise GangaAsyncError("no job id given: give ids such as 3, 3.17, 7-9 or 3.2-5")
    return list(ids)


def _expand(part: str) -> list[str]:
    match = _ID.fullmatch(part)
    if match is None or (match["last"] and match["sub"]):
        raise GangaAsyncError(f"{part!r} is not a job id: give ids such as 3, 3.17, 7-9 or 3.2-5")
    first, last = int(match["job"]), int(match["last"] or match["job"])
    if match["sub"] is None:
        return [str(i) for i in _span(first, last, part)]
    low, high = int(match["sub"]), int(match["sublast"] or match["sub"])
    return [f"{first}.{i}" for i in _span(low, high, part)]


def _span(first: int, last: int, part: str) -> range:
    if last < first:
        raise GangaAsyncError(f"{part!r} is an empty range: give the lower id first")
    return range(first, last + 1)


def parse_statuses(text: str) -> list[str]:
    """``"killed,failed"`` as ``["killed", "failed"]``."""
    statuses = [s.strip() for s in text.split(",") if s.strip()]
    if not statuses:
        raise GangaAsyncError(f"{text!r} names no status: give e.g. failed or killed,failed")
    return statuses
