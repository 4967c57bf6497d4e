"""GenericSplitter: split over the values of any attribute, or several at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from .._component import JobView
from .._exceptions import JobSpecError
from .base import Overrides, Splitter, check_path

__all__ = ["GenericSplitter"]


@dataclasses.dataclass(kw_only=True, repr=False)
class GenericSplitter(Splitter):
    """One subjob per value, as in Ganga.

    ``GenericSplitter(attribute="application.args", values=[["a"], ["b"]])`` sets one attribute;
    ``GenericSplitter(multi_attrs={"application.args": [["a"], ["b"]], "name": ["x", "y"]})``
    sets several together, subjob *i* taking the *i*-th value of each list (all lists must have
    the same length). Give either ``attribute`` and ``values`` or ``multi_attrs``.
    """

    attribute: str = ""
    values: list[Any] = dataclasses.field(default_factory=list)
    multi_attrs: dict[str, list[Any]] = dataclasses.field(default_factory=dict)

    def _columns(self) -> dict[str, list[Any]]:
        if self.multi_attrs and (self.attribute or self.values):
            raise JobSpecError(
                "splitter", "give either attribute and values, or multi_attrs, not both"
            )
        if self.multi_attrs:
            return self.multi_attrs
        if not self.attribute:
            raise JobSpecError(
                "splitter.attribute", "is empty; name the attribute to split over, e.g. 'application.args'"
            )
        return {self.attribute: self.values}

    def validate(self, job: JobView) -> None:
        columns = self._columns()
        lengths = {path: len(values) for path, values in columns.items()}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"{p}: {n}" for p, n in lengths.items())
            raise JobSpecError("splitter.multi_attrs", f"lists differ in length ({listed}); make them equal")
        if not any(lengths.values()):
            field = "splitter.multi_attrs" if self.multi_attrs else "splitter.values"
            raise JobSpecError(field, "is empty; give one value per subjob")
        for path, values in columns.items():
            for i, value in enumerate(values):
                check_path(job, path, value, f"splitter[{path}][{i}]")

    def split(self, job: JobView) -> Iterator[Overrides]:
        columns = self._columns()
        paths = list(columns)
        for row in zip(*columns.values(), strict=True):
            yield dict(zip(paths, row, strict=True))
