"""The postprocessor plugin contract: what runs on a job's outputs once it is done.

A postprocessor is a component on a job's ``postprocessors`` list. Three kinds exist, run in
Ganga's order whatever the order of the list: mergers (``order`` 1), checkers (2), notifiers
(3). Each is a keyword-only dataclass, serialised with the job, checked on assignment, and
checked again when the job is submitted (:meth:`PostProcessor.validate`), so that a
misconfigured one is refused at submission, never silently passed over when the job ends.

Postprocessors see jobs through :class:`ProcessedJob`, the read-only face every
:class:`~ganga_async.Job` (and subjob view) has. Their work (reading and writing files,
importing a user's module, sending mail) is blocking: the engine runs it in a worker thread,
never on its event loop. Register a new one under the ``ganga_async.postprocessors``
entry-point group.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, NamedTuple, Protocol, TypeVar

from .._component import Component
from .._exceptions import JobSpecError, PostProcessError

__all__ = ["PostProcessor", "ProcessedJob", "SubjobSequence", "PostprocessorResult", "ordered",
           "load_module", "check_relative"]

P = TypeVar("P", bound="PostProcessor")


class PostprocessorResult(NamedTuple):
    """What one postprocessor did to a job or subjob: ``postprocessor`` names it
    (``postprocessors[TextMerger]``), ``ok`` whether it passed, ``detail`` the files a merger
    wrote (comma-separated) or why it failed, ``time`` when it ended."""

    postprocessor: str
    ok: bool
    detail: str
    time: float


class SubjobSequence(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> ProcessedJob: ...


class ProcessedJob(Protocol):
    """What a postprocessor sees of a (sub)job: its identity, status and output directory."""

    @property
    def fqid(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def outputdir(self) -> Path: ...

    @property
    def master(self) -> Any: ...

    @property
    def subjobs(self) -> SubjobSequence: ...


@dataclasses.dataclass(kw_only=True, repr=False)
class PostProcessor(Component):
    """Base class of mergers, checkers and notifiers. ``order`` says when it runs among the
    job's postprocessors (lower first)."""

    category: ClassVar[str] = "postprocessor"
    order: ClassVar[int] = 0

    def validate(self) -> None:
        """Raise :class:`~ganga_async.JobSpecError` naming the field when this postprocessor
        cannot work as configured (checked when the job is submitted)."""

    @property
    def label(self) -> str:
        """How errors name it: ``postprocessors[FileChecker]``."""
        return f"postprocessors[{self.plugin_name}]"


def ordered(processors: Iterable[P]) -> list[P]:
    """``processors`` in Ganga's running order: mergers, checkers, notifiers (the list's own
    order kept among those of one kind)."""
    return sorted(processors, key=lambda p: p.order)


def check_relative(patterns: Sequence[str], where: str) -> None:
    """Refuse file patterns that would reach outside a job's output directory."""
    for i, pattern in enumerate(patterns):
        if not pattern or os.path.isabs(pattern) or ".." in Path(pattern).parts:
            raise JobSpecError(f"{where}[{i}]",
                               f"{pattern!r} must be a file name or pattern inside the job's "
                               "output directory (no absolute path, no '..')")


def load_module(path: str, function: str, where: str) -> Callable[..., Any]:
    """The function ``function`` of the Python file at ``path`` (a user's custom merger or
    checker), imported afresh; every failure is a PostProcessError naming ``where``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise PostProcessError(f"{where}: the module {str(file)!r} does not exist; give the path "
                               f"of a Python file defining {function}()")
    spec = importlib.util.spec_from_file_location(f"_ganga_async_user_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise PostProcessError(f"{where}: {str(file)!r} cannot be imported as a Python module")
    module: ModuleType = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        if not isinstance(exc, Exception):
            raise
        raise PostProcessError(f"{where}: importing {str(file)!r} failed: {exc!r}") from exc
    finally:
        sys.modules.pop(spec.name, None)
    found = getattr(module, function, None)
    if not callable(found):
        raise PostProcessError(f"{where}: {str(file)!r} defines no function {function}()")
    return found  # type: ignore[no-any-return]
