"""ArgSplitter: one subjob per argument list."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from .._component import JobView
from .._exceptions import JobSpecError
from .base import Overrides, Splitter

__all__ = ["ArgSplitter"]


@dataclasses.dataclass(kw_only=True, repr=False)
class ArgSplitter(Splitter):
    """One subjob per entry of ``args``, each an argument list for the application.

    With ``append=True`` each entry is added after the master's own ``application.args``
    instead of replacing them. ``ArgSplitter(args=[["1"], ["2"]])`` makes two subjobs.
    """

    args: list[list[str]] = dataclasses.field(default_factory=list)
    append: bool = False

    def validate(self, job: JobView) -> None:
        if not self.args:
            raise JobSpecError("splitter.args", "is empty; give one argument list per subjob")
        if "args" not in job.application.field_names():
            raise JobSpecError(
                "splitter",
                f"ArgSplitter sets application.args but {type(job.application).__name__} has none",
            )

    def split(self, job: JobView) -> Iterator[Overrides]:
        base: list[str] = list(job.application.args) if self.append else []  # type: ignore[attr-defined]
        for entry in self.args:
            yield {"application.args": base + entry if base else entry}
