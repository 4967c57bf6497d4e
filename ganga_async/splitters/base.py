"""The splitter plugin contract, and the attribute paths a splitter may change."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator
from typing import Any, ClassVar

from .._component import Component, JobView, check_value
from .._exceptions import JobSpecError

__all__ = ["Splitter", "Overrides", "check_path"]

Overrides = dict[str, Any]
"""What a splitter changes for one subjob: attribute path (``"application.args"``) to value."""

_JOB_PATHS = {"name": str, "comment": str, "inputfiles": list[str], "outputfiles": list[str]}


@dataclasses.dataclass(kw_only=True, repr=False)
class Splitter(Component):
    """Base class of splitters: cut a master job into subjobs.

    :meth:`split` yields, for each subjob in order, only what differs from the master: a
    mapping from attribute path (``"application.args"``, ``"inputfiles"``,
    ``"backend.<field>"``) to the subjob's value. Subjobs are stored as exactly that, so a split
    of 100,000 subjobs never builds 100,000 Job objects. :meth:`split` is a generator: it must
    stream, never build the whole list first.

    :meth:`validate` runs when the job is submitted and must raise
    :class:`~ganga_async.JobSpecError` for anything :meth:`split` would trip on.

    Register a new splitter under the ``ganga_async.splitters`` entry-point group.
    """

    category: ClassVar[str] = "splitter"

    def validate(self, job: JobView) -> None:
        """Raise JobSpecError when this splitter cannot split ``job``."""

    @abc.abstractmethod
    def split(self, job: JobView) -> Iterator[Overrides]:
        """Yield the overrides of each subjob, in order."""


def check_path(job: JobView, path: str, value: Any, where: str) -> Any:
    """Check that ``path`` names a field a splitter may set on ``job`` and that ``value`` fits it."""
    head, _, rest = path.partition(".")
    if not rest:
        if head not in _JOB_PATHS:
            valid = ", ".join([*_JOB_PATHS, "application.<field>", "backend.<field>"])
            raise JobSpecError(where, f"cannot split over {path!r}; valid attributes: {valid}")
        return check_value(value, _JOB_PATHS[head], f"{where} value for {path}")
    if head not in ("application", "backend"):
        raise JobSpecError(
            where, f"cannot split over {path!r}; use application.<field> or backend.<field>"
        )
    component: Component = getattr(job, head)
    if rest not in component.field_names():
        valid = ", ".join(f"{head}.{f}" for f in component.field_names())
        raise JobSpecError(where, f"{type(component).__name__} has no field {rest!r}; valid: {valid}")
    return check_value(value, component.field_type(rest), f"{where} value for {path}")
