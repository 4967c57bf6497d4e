"""LineSplitter: one subjob per N lines of a list file, as HEP jobs split over file lists."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

from ganga_async import JobSpecError
from ganga_async.splitters import JobView, Overrides, Splitter, check_path

__all__ = ["LineSplitter"]


@dataclasses.dataclass(kw_only=True, repr=False)
class LineSplitter(Splitter):
    """One subjob per ``lines_per_subjob`` lines of ``listfile`` (a text file, one entry per
    line: a data file, a run number, a seed; blank lines and ``#`` comments are skipped).

    Each subjob's entries are added after the master's own value of ``attribute``, a list
    field: ``"application.args"`` (the default), ``"inputfiles"`` (absolute paths, staged into
    the subjob's working directory) or another list field of the application or backend. A
    relative ``listfile`` is taken from the directory the job is submitted from.
    """

    listfile: str = ""
    lines_per_subjob: int = 1
    attribute: str = "application.args"

    def validate(self, job: JobView) -> None:
        if self.lines_per_subjob < 1:
            raise JobSpecError("splitter.lines_per_subjob", "must be at least 1")
        if not self.listfile:
            raise JobSpecError("splitter.listfile", "is empty; give the file that lists the entries")
        if not os.path.isfile(os.path.expanduser(self.listfile)):
            raise JobSpecError("splitter.listfile", f"{self.listfile} does not exist; fix the path")
        check_path(job, self.attribute, [], "splitter.attribute")
        if next(self._entries(), None) is None:
            raise JobSpecError("splitter.listfile", f"{self.listfile} lists nothing; add one entry per line")

    def split(self, job: JobView) -> Iterator[Overrides]:
        head, _, field = self.attribute.partition(".")
        owner = getattr(job, head) if field else job
        base = list(getattr(owner, field or head))
        chunk: list[str] = []
        for entry in self._entries():
            chunk.append(entry)
            if len(chunk) == self.lines_per_subjob:
                yield {self.attribute: base + chunk}
                chunk = []
        if chunk:
            yield {self.attribute: base + chunk}

    def _entries(self) -> Iterator[str]:
        """The entries of the list file, read as they are needed."""
        with open(os.path.expanduser(self.listfile), encoding="utf-8") as lines:
            for line in lines:
                entry = line.strip()
                if entry and not entry.startswith("#"):
                    yield entry
