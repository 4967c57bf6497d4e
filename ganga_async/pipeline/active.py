"""The (sub)jobs each backend is working on, kept compact: 10^5 to 10^6 of them live at once.

A full garbage collection walks every object the collector tracks, wherever it lands on the
event loop; an object per active subjob (with a reference to its job) made such a collection
cost about 80 ms per 100,000 active subjobs. :class:`ActiveSet` keeps each one as a tuple of
atoms (job id, subjob index, native id, recovered), which the collector stops tracking the
first time it looks at it, and the jobs themselves once each; :class:`Active` is the view of
one entry a caller gets, made when asked for.
"""

from __future__ import annotations

from collections.abc import Iterator

from .._workspace import output_dir
from ..backends.base import Handle
from .context import Live

__all__ = ["Active", "ActiveSet"]


class Active:
    """A (sub)job its backend is working on, by the native id it was submitted with;
    ``recovered`` when taken over from an earlier engine, whose ``NEW`` news means: never
    received, submit it again. Its :class:`Handle` is made when asked for (a kill, a
    recovery), not kept."""

    __slots__ = ("live", "index", "native_id", "recovered")

    def __init__(self, live: Live, index: int | None, native_id: str, recovered: bool = False) -> None:
        self.live = live
        self.index = index
        self.native_id = native_id
        self.recovered = recovered

    @property
    def handle(self) -> Handle:
        record = self.live.record
        return Handle(record.key(self.index), self.native_id, output_dir(record.jobdir, self.index))


Entry = tuple[int, int | None, str, bool]
"""(job id, subjob index or None, native id, recovered): atoms only, untracked by the collector."""


class ActiveSet:
    """The (sub)jobs one backend is working on, by key (fqid), as a ``dict[str, Active]``
    would hold them: ``active[key] = Active(...)``, ``active.get(key)``, ``del active[key]``.
    Each is stored as an :data:`Entry`; the jobs they belong to are kept once each, for as
    long as one of their (sub)jobs is here."""

    __slots__ = ("entries", "lives", "_count")

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.lives: dict[int, Live] = {}
        """The jobs of the entries, by id."""
        self._count: dict[int, int] = {}

    def add(self, key: str, live: Live, index: int | None, native_id: str,
            recovered: bool = False) -> None:
        """Hold (sub)job ``key`` of ``live`` (what ``active[key] = Active(...)`` does)."""
        job_id = live.id
        if self.entries.get(key) is None:
            self._count[job_id] = self._count.get(job_id, 0) + 1
        self.entries[key] = (job_id, index, native_id, recovered)
        self.lives[job_id] = live

    def __setitem__(self, key: str, entry: Active) -> None:
        self.add(key, entry.live, entry.index, entry.native_id, entry.recovered)

    def get(self, key: str) -> Active | None:
        found = self.entries.get(key)
        if found is None:
            return None
        job_id, index, native_id, recovered = found
        return Active(self.lives[job_id], index, native_id, recovered)

    def __getitem__(self, key: str) -> Active:
        entry = self.get(key)
        if entry is None:
            raise KeyError(key)
        return entry

    def __delitem__(self, key: str) -> None:
        job_id = self.entries.pop(key)[0]
        left = self._count[job_id] - 1
        if left:
            self._count[job_id] = left
        else:
            del self._count[job_id], self.lives[job_id]

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def keys_of(self, live: Live) -> list[str]:
        """The keys of ``live``'s (sub)jobs held here."""
        if self.lives.get(live.id) is not live:
            return []
        job_id = live.id
        return [key for key, entry in self.entries.items() if entry[0] == job_id]

    def masters(self) -> list[Live]:
        """The jobs of the (sub)jobs held here, each once."""
        return list(self.lives.values())
