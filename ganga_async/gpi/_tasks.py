"""Tasks in the plain-Python interface: ``t.run()``, ``t.pause()``, ``t.overview()`` and the
``tasks`` registry, each a blocking call to the session engine's :class:`~ganga_async.tasks.Tasks`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from ..engine import Engine
from ..model import task as _core
from ..model.task import UnitStatus
from ._session import Text
from ._session import run as _run

__all__ = ["CoreTask", "TaskRegistry", "tasks"]

_COLUMNS = [str(s) for s in UnitStatus]


class CoreTask(_core.CoreTask):
    __doc__ = _core.CoreTask.__doc__

    def run(self) -> None:
        """Store the task if new and let its units get jobs, ``float`` at a time."""
        _run(lambda engine: engine.tasks.run(self))

    def pause(self) -> None:
        """No new jobs; the running ones go on."""
        _run(lambda engine: engine.tasks.pause(self))

    def remove(self) -> None:
        """Forget the task; its jobs stay in ``jobs``."""
        _run(lambda engine: engine.tasks.remove(self))

    def wait(self, timeout: float | None = None) -> CoreTask:
        """Block until every unit completed or failed (WaitTimeoutError after ``timeout``)."""
        _run(lambda engine: engine.tasks.wait(self, timeout))
        return self

    def overview(self) -> None:
        """Print the units by status, one line per transform, as Ganga's ``t.overview()``
        does (a script calling it shows the table; ``unit_counts()`` gives the numbers)."""
        rows = [[name, *(str(counts[c]) for c in _COLUMNS)]
                for name, counts in self.unit_counts().items()]
        title = f"Task {self.id} ({self.name}): {self.status}, float {self.float}"
        print(_render(title, ["transform", *_COLUMNS], rows))
        if self.reason:
            print(f"reason: {self.reason}")


def _adopt(task: _core.CoreTask) -> CoreTask:
    """Give a task the engine loaded the GPI methods; it stays the same object."""
    task.__class__ = CoreTask
    return cast(CoreTask, task)


def _render(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return " | ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True))

    top = line(header)
    return "\n".join([title, top, "-" * len(top), *(line(r) for r in rows)])


class TaskRegistry:
    """Every task, as Ganga's ``tasks``: ``tasks(0)`` is task 0, ``tasks[-1]`` the last one,
    ``len(tasks)``, iteration; its repr (and ``tasks.table()``) is a table of all tasks."""

    def _all(self) -> list[CoreTask]:
        return [_adopt(t) for t in _run(_all_tasks)]

    def __call__(self, task_id: int) -> CoreTask:
        return _adopt(_run(lambda engine: _get(engine, task_id)))

    def __getitem__(self, index: int) -> CoreTask:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[CoreTask]:
        return iter(self._all())

    def table(self) -> Text:
        """One line per task: its id, name, status, float and units by status."""
        rows = []
        for t in self._all():
            counts = dict.fromkeys(_COLUMNS, 0)
            for per_transform in t.unit_counts().values():
                for key, value in per_transform.items():
                    counts[key] += value
            rows.append([str(t.id), t.name, str(t.status), str(t.float),
                         *(str(counts[c]) for c in _COLUMNS)])
        title = f"Registry: tasks ({len(rows)} {'task' if len(rows) == 1 else 'tasks'})"
        return Text(_render(title, ["id", "name", "status", "float", *_COLUMNS], rows))

    def __repr__(self) -> str:
        return str(self.table())


async def _all_tasks(engine: Engine) -> list[_core.CoreTask]:
    return engine.tasks.all()


async def _get(engine: Engine, task_id: int) -> _core.CoreTask:
    return engine.tasks.get(task_id)


tasks = TaskRegistry()
"""Every task in the repository: ``tasks(0)``, ``tasks[-1]``, ``tasks.table()``."""
