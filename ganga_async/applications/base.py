"""The application plugin contract, including the prepared state."""

from __future__ import annotations

import abc
import copy
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from .. import _blocking
from .._component import Component
from .._exceptions import JobSpecError, JobStateError
from .._log import get_logger, user_logger
from .._sharedir import ShareDir

__all__ = ["Application", "Command", "PreparedListener"]

log = get_logger(__name__)

A = TypeVar("A", bound="Application")

_NOT_COPIED = frozenset({"_prepared_listeners", "_frozen_by", "_owner"})
"""Private state a copy does not inherit: who listens to the original's prepared state, and
the original job's freeze."""


class PreparedListener(Protocol):
    """Told about an application's prepared state: the engine's bookkeeping of who references
    its ShareDir registers one with :meth:`Application.add_prepared_listener`. Application
    plugins never need it. Calls come from whichever thread changed the application; a
    listener must not block."""

    def prepared_changed(self, app: Application) -> None:
        """``app.is_prepared`` changed: it was prepared, or unprepared."""

    def copied(self, original: Application, clone: Application) -> None:
        """``original.copy()`` made ``clone``, which references the same ShareDir."""


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
    is submitted) with these duties:

    - :meth:`validate` is called when the job is submitted, before anything is persisted as
      submitted; it raises :class:`~ganga_async.JobSpecError` naming the field and the fix.
    - :meth:`command` turns the (sub)job's resolved settings into the argv and environment a
      backend runs. It is called once per subjob, so it must be cheap and must not block.
    - :meth:`preparable_files` names the local files that preparing copies into the
      application's ShareDir; :meth:`command` then runs those copies (``sharedir`` is given).

    The prepared state (Ganga's): once prepared, ``is_prepared`` holds a
    :class:`~ganga_async.ShareDir` and the fields named in ``protected`` are read-only until
    :meth:`unprepare` (or ``is_prepared = None``). Submitting a job prepares its application
    first. In the plain-Python interface ``app.prepare()`` prepares at once; with the async
    API use ``await engine.prepare(app)``. The engine counts the references to ShareDirs
    through a :class:`PreparedListener` (:meth:`add_prepared_listener`,
    :meth:`mark_prepared`): engine-facing methods that plugins neither call nor override.

    Register a new application under the ``ganga_async.applications`` entry-point group.
    """

    user_methods: ClassVar[tuple[str, ...]] = ("prepare", "unprepare")

    category: ClassVar[str] = "application"
    protected: ClassVar[tuple[str, ...]] = ()
    """Fields that become read-only once the application is prepared."""

    is_prepared: ShareDir | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "is_prepared":
            self._set_prepared(value)
            return
        sharedir = self.__dict__.get("is_prepared")
        if (sharedir is not None and name in self.protected and self._frozen_by is None
                and name in self.__dict__ and value != self.__dict__[name] and self._protects(name)):
            raise JobStateError(
                f"application.{name} is read-only: the application is prepared (ShareDir "
                f"{sharedir.name}); call unprepare() first, or make an editable copy with "
                "copy(unprepare=True)"
            )
        super().__setattr__(name, value)

    def _set_prepared(self, value: Any) -> None:
        if isinstance(value, Mapping):
            value = ShareDir.from_dict(value)
        if "is_prepared" not in self.__dict__:
            super().__setattr__("is_prepared", value)
            return
        current = self.__dict__["is_prepared"]
        if value is not None and value != current:
            raise JobSpecError(
                "application.is_prepared",
                "can only be set to None (to unprepare); call prepare() to prepare the application",
            )
        if value is None and current is not None:
            super().__setattr__("is_prepared", current)  # the freeze check
            user_logger().info("Unpreparing application.")
            self.mark_prepared(None)

    def _protects(self, name: str) -> bool:
        """Whether protected field ``name`` is read-only in this prepared application."""
        return True

    # -- the prepared state -----------------------------------------------------------

    def prepare(self, *, force: bool = False) -> None:
        """Prepare now: copy the files this application needs into a new ShareDir.

        The plain-Python interface's (``from ganga_async.gpi import *``); with the async API
        use ``await engine.prepare(app)``. ``force=True`` prepares an already prepared
        application again, into a new ShareDir.
        """
        _blocking.call("prepare", self, force=force)

    def unprepare(self) -> None:
        """Leave the prepared state and release the reference to the ShareDir."""
        self.is_prepared = None

    def mark_prepared(self, sharedir: ShareDir | None) -> None:
        """Engine-facing: record ``sharedir`` as the ShareDir this application runs from
        (``None``: not prepared), whatever its job's status, and tell the listeners. Users
        call :meth:`prepare` and :meth:`unprepare` instead."""
        object.__setattr__(self, "is_prepared", sharedir)
        for listener in self.prepared_listeners():
            listener.prepared_changed(self)

    def add_prepared_listener(self, listener: PreparedListener) -> None:
        """Engine-facing: have ``listener`` told when this application is prepared,
        unprepared or copied. A copy does not inherit the listeners."""
        listeners: list[PreparedListener] = self.__dict__.setdefault("_prepared_listeners", [])
        if listener not in listeners:
            listeners.append(listener)

    def remove_prepared_listener(self, listener: PreparedListener) -> None:
        """Engine-facing: stop telling ``listener`` (nothing if it was not listening)."""
        listeners: list[PreparedListener] = self.__dict__.get("_prepared_listeners", [])
        if listener in listeners:
            listeners.remove(listener)

    def prepared_listeners(self) -> tuple[PreparedListener, ...]:
        """Engine-facing: the listeners of this application's prepared state."""
        return tuple(self.__dict__.get("_prepared_listeners", ()))

    def preparable_files(self) -> dict[str, str]:
        """The local files preparing copies into the ShareDir: ``{name as this application
        gives it (e.g. its exe): absolute path}``; :meth:`command` then finds each copy under
        the same name in ``is_prepared.files``.

        Called in a worker thread, so it may look at the file system. Raise JobSpecError for
        a file that must be copied but cannot be. The default copies nothing.
        """
        return {}

    # -- running ----------------------------------------------------------------------

    def validate(self, inputfiles: Sequence[str], sharedir: Path | None = None) -> None:
        """Raise JobSpecError if the application cannot run with these input files.

        ``sharedir`` is the prepared application's ShareDir (checked to exist), else None.
        """

    @abc.abstractmethod
    def command(self, inputfiles: Sequence[str], sharedir: Path | None = None) -> Command:
        """The command to run, given the (sub)job's input files and, for a prepared
        application, the path of its ShareDir (run the copies kept there)."""

    # -- serialising and copying ------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["is_prepared"] = self.is_prepared.to_dict() if self.is_prepared is not None else None
        return data

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The fields, ``is_prepared`` last (as Ganga shows it)."""
        cached: tuple[str, ...] | None = cls.__dict__.get("_ordered_fields")
        if cached is None:
            names = [n for n in super().field_names() if n != "is_prepared"]
            cached = (*names, "is_prepared")
            cls._ordered_fields = cached  # type: ignore[attr-defined]
        return cached

    def __deepcopy__(self, memo: dict[int, Any]) -> Application:
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            if key in _NOT_COPIED:
                continue
            shared = key.startswith("_")
            object.__setattr__(clone, key, value if shared else copy.deepcopy(value, memo))
        return clone

    def copy(self: A, *, unprepare: bool = False) -> A:
        """An unfrozen copy. A prepared application's copy references the same ShareDir (its
        count goes up while the copy lives); with ``unprepare=True`` the copy is unprepared."""
        clone = super().copy()
        if unprepare:
            object.__setattr__(clone, "is_prepared", None)
        elif clone.is_prepared is not None:
            for listener in self.prepared_listeners():
                listener.copied(self, clone)
        return clone
