"""The box: named jobs and components kept in the repository (Ganga's ``box``).

``await engine.box.add(job, "analysis")`` stores a copy of the job's description (not its
state) under a name; ``await engine.box.get("analysis")`` gives a new, unsubmitted copy of it
each time. Applications, backends and splitters are kept the same way. An entry whose
application is prepared holds one reference to its ShareDir until it is removed.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

from .._component import Component, build_component
from .._exceptions import BoxEntryNotFoundError, JobSpecError, RepositoryError
from ..applications.base import Application
from ..model.job import COMPONENT_BASES, Job
from ..persistence.repository import BoxRow, Repository
from . import _preparing
from .sharedir import SharedArea
from .shareref import ShareRef

__all__ = ["Box", "BoxEntry"]


@dataclasses.dataclass(frozen=True, slots=True)
class BoxEntry:
    """One line of the box listing: its name, kind (``job``, ``application``, ``backend``,
    ``splitter``), the type stored (``Executable``), the ShareDir it references and when it
    was added."""

    name: str
    kind: str
    type: str
    sharedir: str | None
    created: float


class Box:
    """Named jobs and components kept in the repository; available as ``engine.box``.

    It keeps its entries in ``repository``, their references in ``shareref``, checks their
    ShareDirs in ``area``, and calls ``check_open`` (which raises EngineClosedError) before
    each call while the engine is not running.
    """

    def __init__(self, repository: Repository, shareref: ShareRef, area: SharedArea,
                 check_open: Callable[[], None]) -> None:
        self._repository = repository
        self._shareref = shareref
        self._area = area
        self._check_open = check_open
        self._held: dict[str, str | None] = {}

    async def add(self, obj: Job | Component, name: str) -> None:
        """Keep a copy of ``obj`` (a job's description, an application, a backend or a
        splitter) under ``name``. Raises JobSpecError if the name is taken or ``obj`` is of
        another kind."""
        self._check_open()
        _check_name(name)
        app: Application | None
        if isinstance(obj, Job):
            data: dict[str, Any] = {"name": obj.name, "comment": obj.comment, **obj.spec()}
            kind, app = "job", obj.application
        elif isinstance(obj, Component) and obj.category in COMPONENT_BASES:
            data, kind = obj.to_dict(), obj.category
            app = obj if isinstance(obj, Application) else None
        else:
            raise JobSpecError(
                "box.add", f"the box keeps jobs, applications, backends and splitters, not "
                f"{type(obj).__name__}"
            )
        sharedir = None
        if app is not None and app.is_prepared is not None:
            await self._area.existing(app.is_prepared)
            sharedir = app.is_prepared.name
        try:
            await self._repository.box_insert(BoxRow(name, kind, data, sharedir, time.time()))
        except RepositoryError:
            if await self._repository.box_rows(name):
                raise JobSpecError(
                    "box.add", f"the box already has an entry {name!r}; remove it first "
                    f"(box.remove({name!r})) or choose another name"
                ) from None
            raise
        self._held[name] = sharedir
        if sharedir is not None:
            await self._shareref.refresh(_holder(name), functools.partial(self._held.get, name))

    async def get(self, name: str) -> Job | Component:
        """A new copy of the entry ``name``: an unsubmitted job, or a component. A prepared
        application in it references the entry's ShareDir while the copy lives."""
        self._check_open()
        row = await self._row(name)
        data = dict(row.object)
        obj: Job | Component
        app: Application | None
        if row.kind == "job":
            job = Job.from_spec(data, name=data.get("name", ""), comment=data.get("comment", ""))
            obj, app = job, job.application
        else:
            obj = build_component(COMPONENT_BASES[row.kind], data)
            app = obj if isinstance(obj, Application) else None
        if app is not None:
            _preparing.hold_in_session(app, self._shareref)
        return obj

    async def remove(self, name: str) -> None:
        """Delete the entry ``name``, releasing its ShareDir reference."""
        self._check_open()
        if not await self._repository.box_delete(name):
            raise self._missing(name, await self.entries())
        self._held[name] = None
        await self._shareref.refresh(_holder(name), functools.partial(self._held.get, name))

    async def entries(self) -> list[BoxEntry]:
        """Every entry, by name."""
        self._check_open()
        return [BoxEntry(row.name, row.kind, str(row.object.get("type") or _job_type(row.object)),
                         row.sharedir, row.created)
                for row in await self._repository.box_rows()]

    async def _row(self, name: str) -> BoxRow:
        rows = await self._repository.box_rows(name)
        if not rows:
            raise self._missing(name, await self.entries())
        return rows[0]

    @staticmethod
    def _missing(name: str, entries: list[BoxEntry]) -> BoxEntryNotFoundError:
        listed = ", ".join(repr(e.name) for e in entries) or "none"
        return BoxEntryNotFoundError(f"the box has no entry {name!r}; entries: {listed}")

    async def unprepare(self, name: str) -> None:
        """Unprepare the application stored in entry ``name`` and release its reference (what
        ``shareref.rebuild()`` and ``shareref.lookup(name, unprepare=True)`` do to entries
        whose ShareDir is gone). Works while the engine closes too; nothing if there is no
        such entry."""
        rows = await self._repository.box_rows(name)
        if not rows:
            return
        data = dict(rows[0].object)
        app = data.get("application") if rows[0].kind == "job" else data
        if isinstance(app, dict) and app.get("is_prepared") is not None:
            app["is_prepared"] = None
            await self._repository.box_update(name, data, None)
        self._held[name] = None
        self._shareref.refresh_soon(_holder(name), functools.partial(self._held.get, name))


def _holder(name: str) -> str:
    return f"box:{name}"


def _job_type(data: dict[str, Any]) -> str:
    app = data.get("application")
    return f"Job({app.get('type')})" if isinstance(app, dict) else "Job"


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        raise JobSpecError("box.add", f"the name must be a non-empty line of text, not {name!r}")
