"""The application plugin contract."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from typing import ClassVar

from .._component import Component

__all__ = ["Application", "Command"]


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    """What a backend runs for one (sub)job.

    ``argv[0]`` is an absolute path, or ``./name`` for a file staged into the working directory
    from the job's inputs (the runner makes it executable). ``env`` is added to the inherited
    environment, never replaces it.
    """

    argv: list[str]
    env: dict[str, str]


@dataclasses.dataclass(kw_only=True, repr=False)
class Application(Component):
    """Base class of applications: what a job runs.

    An application is a settings object (a typed dataclass, serialisable, frozen once its job
    is submitted) with two duties:

    - :meth:`validate` is called when the job is submitted, before anything is persisted as
      submitted; it raises :class:`~ganga_async.JobSpecError` naming the field and the fix.
    - :meth:`command` turns the (sub)job's resolved settings into the argv and environment a
      backend runs. It is called once per subjob, so it must be cheap and must not block.

    Register a new application under the ``ganga_async.applications`` entry-point group.
    """

    category: ClassVar[str] = "application"

    def validate(self, inputfiles: Sequence[str]) -> None:
        """Raise JobSpecError if the application cannot run with these input files."""

    @abc.abstractmethod
    def command(self, inputfiles: Sequence[str]) -> Command:
        """The command to run, given the (sub)job's input files."""
