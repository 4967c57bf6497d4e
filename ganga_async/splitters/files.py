"""FileSplitter: share the job's input files out among subjobs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from .._component import JobView
from .._exceptions import JobSpecError
from .base import Overrides, Splitter

__all__ = ["FileSplitter"]


@dataclasses.dataclass(kw_only=True, repr=False)
class FileSplitter(Splitter):
    """Cut ``job.inputfiles`` into groups of ``files_per_subjob``, one subjob per group.

    ``max_files`` caps how many input files are used in all (``None``: every file), like
    Ganga's ``GangaDatasetSplitter(files_per_subjob=..., maxFiles=...)``.
    """

    files_per_subjob: int = 1
    max_files: int | None = None

    def validate(self, job: JobView) -> None:
        if self.files_per_subjob < 1:
            raise JobSpecError("splitter.files_per_subjob", "must be at least 1")
        if self.max_files is not None and self.max_files < 1:
            raise JobSpecError("splitter.max_files", "must be at least 1, or None for every file")
        if not job.inputfiles:
            raise JobSpecError("inputfiles", "is empty; FileSplitter needs input files to share out")

    def split(self, job: JobView) -> Iterator[Overrides]:
        files = job.inputfiles if self.max_files is None else job.inputfiles[: self.max_files]
        step = self.files_per_subjob
        for start in range(0, len(files), step):
            yield {"inputfiles": files[start : start + step]}
