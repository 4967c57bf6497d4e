"""Tasks: long analyses as transforms whose units each own one job at a time (Ganga's
CoreTask, CoreTransform and units), as pure state: no I/O, so every rule is unit-tested alone.

A :class:`CoreTask` holds :class:`CoreTransform` s; a transform holds a job description (its
application, backend, files and retry policy) and a *unit splitter*, any of our splitters:
each set of overrides it yields becomes one :class:`Unit`. A unit owns one active job (its
``job_id``) and the ids of its earlier jobs (``history``). Its status is

``new``        waiting for a job (within the task's ``float``)
``hold``       waiting for the transforms its transform ``requires`` to complete
``running``    its job is in the engine
``completed``  its job completed
``failed``     its last job failed and it may not run again (``run_limit`` runs, or a failure
               the retry policy does not take); ``reason`` says why

A transform with a :class:`TaskChainInput` gets one unit per completed unit of its input
transform (:func:`chain_pending`, :func:`add_chained`), whose input files are that unit's
job's outputs. The rules (:func:`to_submit`, :func:`job_ended`, :func:`release_held`,
:func:`settle`) say what happens;
the engine's task stage (:mod:`ganga_async.tasks`) carries it out and persists it.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .._component import build_component
from .._exceptions import JobSpecError, JobStateError
from ..applications.base import Application
from ..backends.base import Backend
from ..splitters.base import Splitter
from ..states import Status
from .job import Job
from .retry import Retry, failure_kind
from .units import Unit, UnitIndex, UnitStatus

__all__ = ["UnitStatus", "TaskStatus", "Unit", "TaskChainInput", "CoreTransform", "CoreTask",
           "to_submit", "job_ended", "release_held", "active_units", "settle", "done",
           "chain_pending", "chain_blocked", "add_chained"]


class TaskStatus(enum.StrEnum):
    """A task is ``new`` until run, ``running``, ``pause`` (no new jobs; running ones go
    on) or ``completed`` (every unit completed)."""

    NEW = "new"
    RUNNING = "running"
    PAUSE = "pause"
    COMPLETED = "completed"


@dataclasses.dataclass
class TaskChainInput:
    """The outputs of an earlier transform as a transform's input (Ganga's TaskChainInput).

    Each unit of transform ``input_trf`` that completes makes one unit here, whose
    ``inputfiles`` are the files its job left in its output directory whose names match a
    regular expression of ``include_file_mask`` (all, when empty) and none of
    ``exclude_file_mask``; with ``single_unit`` one unit takes the files of all of them, once
    all completed.
    """

    input_trf: int = 0
    include_file_mask: list[str] = dataclasses.field(default_factory=list)
    exclude_file_mask: list[str] = dataclasses.field(default_factory=list)
    single_unit: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.input_trf, bool) or not isinstance(self.input_trf, int):
            raise JobSpecError("input_trf", f"{self.input_trf!r} must be a transform's index")
        for name in ("include_file_mask", "exclude_file_mask"):
            masks = getattr(self, name)
            if isinstance(masks, str) or not isinstance(masks, list | tuple):
                raise JobSpecError(name, f"{masks!r} must be a list of regular expressions")
            for mask in masks:
                try:
                    re.compile(mask)
                except (re.error, TypeError) as exc:
                    raise JobSpecError(name, f"{mask!r} is not a regular expression: {exc}") from None
            setattr(self, name, list(masks))

    def wants(self, filename: str) -> bool:
        """Whether a parent's output file of this name goes to the child unit."""
        return (not self.include_file_mask or any(re.search(m, filename) for m in self.include_file_mask)
                ) and not any(re.search(m, filename) for m in self.exclude_file_mask)


_TEMPLATE_FIELDS = frozenset({"application", "backend", "inputfiles", "outputfiles", "retry"})
"""The fields of a transform that are its jobs' description."""


class CoreTransform:
    """One step of a task: ``CoreTransform(name=..., application=..., backend=...,
    unit_splitter=GenericSplitter(...), run_limit=8, retry=Retry(...))``.

    Each unit's job is this description with the unit's overrides applied. ``run_limit`` is
    how many jobs a unit may run before it fails for good (Ganga's ``run_limit``); ``retry``
    is the jobs' own retry policy (their failures it takes are retried inside the job), and
    its ``on`` also says which failures give the unit another job (default: ``Retry().on``).
    ``requires`` lists the indices of earlier transforms of the task that must complete
    before this one's units run (they wait in ``hold``).
    """

    def __init__(self, *, name: str = "", application: Application | None = None,
                 backend: Backend | None = None, unit_splitter: Splitter | None = None,
                 inputfiles: Sequence[str] | None = None, outputfiles: Sequence[str] | None = None,
                 run_limit: int = 8, retry: Retry | None = None,
                 requires: Sequence[int] = (), chain_input: TaskChainInput | None = None) -> None:
        if isinstance(run_limit, bool) or not isinstance(run_limit, int) or run_limit < 1:
            raise JobSpecError("run_limit", f"{run_limit!r} must be a whole number, 1 or more")
        self.name = name
        self.template: Job = Job(application=application, backend=backend, inputfiles=inputfiles,
                            outputfiles=outputfiles, retry=retry)
        """The job description every unit's job starts from."""
        self.unit_splitter = unit_splitter
        self.run_limit = run_limit
        self.requires = list(requires)
        self.chain_input = chain_input
        self.units: list[Unit] = []
        self.task: CoreTask | None = None
        """The task it belongs to (set by the task)."""

    def addInputData(self, chain: TaskChainInput) -> None:  # noqa: N802 (Ganga's name)
        """Take the outputs of an earlier transform (one chain input per transform)."""
        if not isinstance(chain, TaskChainInput):
            raise JobSpecError("inputdata", f"{chain!r} is not a TaskChainInput")
        self.chain_input = chain

    def __getattr__(self, name: str) -> Any:
        if name in _TEMPLATE_FIELDS:
            return getattr(self.template, name)
        raise AttributeError(f"CoreTransform has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        """``trf.application = Executable(...)`` and the other job fields (as in Ganga's
        scripts) go to the template, checked as a job's are."""
        if name in _TEMPLATE_FIELDS:
            setattr(self.template, name, value)
        else:
            object.__setattr__(self, name, value)

    def make_units(self) -> None:
        """Make the units from the unit splitter (one unit without one; none for a chained
        transform, whose units come as its input transform's complete); once only."""
        if self.units or self.chain_input is not None:
            return
        splitter = self.unit_splitter
        if splitter is None:
            self.units = [Unit(0, {})]
            return
        splitter.validate(self.template)
        self.units = [Unit(i, overrides) for i, overrides in enumerate(splitter.split(self.template))]
        if not self.units:
            raise JobSpecError("unit_splitter", "made no units; give it at least one value")

    def unit_job(self, unit: Unit, name: str) -> Job:
        """A new job for ``unit``: this description with its overrides applied."""
        job = Job.from_spec(self.template.spec(), name=name)
        for path, value in unit.overrides.items():
            head, _, rest = path.partition(".")
            if rest:
                setattr(getattr(job, head), rest, value)
            else:
                setattr(job, head, value)
        return job

    def counts(self) -> dict[str, int]:
        """How many units are in each status."""
        found = dict.fromkeys(UnitStatus, 0)
        for unit in self.units:
            found[unit.status] += 1
        return {str(k): v for k, v in found.items()}

    def resetUnit(self, index: int) -> Unit:  # noqa: N802 (Ganga's name)
        """Give unit ``index`` a fresh start (its last job goes to its history); the task
        gives it a new job once run again (``engine.tasks.run(t)``, ``t.run()``). The units
        chains made from its outputs (and theirs) are dropped, to be made again from its new
        outputs. A unit whose job runs, or with a child whose job runs, cannot be reset."""
        unit = self.unit(index)
        busy = [(i, u) for i, u in self.descendants(index) if u.status is UnitStatus.RUNNING]
        if unit.status is UnitStatus.RUNNING:
            raise JobStateError(f"unit {index} has job {unit.job_id} running; kill it first")
        waiting = self._failed_parent(unit)
        if waiting is not None:
            raise JobStateError(f"unit {index} takes the outputs of unit {waiting} of transform "
                                f"{self.chain_input.input_trf if self.chain_input else 0}, which "
                                "failed; reset that one instead")
        if busy:
            i, child = busy[0]
            raise JobStateError(f"unit {child.index} of transform {i}, made from unit {index}'s "
                                f"outputs, has job {child.job_id} running; kill it first")
        if unit.job_id is not None:
            unit.history.append(unit.job_id)
        unit.job_id, unit.runs, unit.reason, unit.status = None, 0, None, UnitStatus.NEW
        task = self.task
        if task is not None:
            for i, child in {id(u): (i, u) for i, u in self.descendants(index)}.values():
                task.transforms[i].units.remove(child)
                task.dropped.append((i, child.index))
            task.forget_index()
        return unit

    def unit(self, index: int) -> Unit:
        """The unit numbered ``index``."""
        for unit in self.units:
            if unit.index == index:
                return unit
        raise JobSpecError("unit", f"{index} is not a unit of this transform "
                           f"(it has {len(self.units)})")

    def descendants(self, index: int) -> list[tuple[int, Unit]]:
        """The units chains made from unit ``index``, and theirs: (transform index, unit)."""
        task = self.task
        if task is None or self not in task.transforms:
            return []
        mine = task.transforms.index(self)
        found: list[tuple[int, Unit]] = []
        for i, trf in enumerate(task.transforms):
            chain = trf.chain_input
            if chain is not None and chain.input_trf == mine:
                for child in trf.units:
                    if index in child.parents:
                        found += [(i, child), *trf.descendants(child.index)]
        return found

    def retryFailed(self) -> list[Unit]:  # noqa: N802 (Ganga's name)
        """Reset every failed unit (but those waiting for a failed parent unit); returns them."""
        return [self.resetUnit(u.index) for u in list(self.units)
                if u.status is UnitStatus.FAILED and self._failed_parent(u) is None]

    def _failed_parent(self, unit: Unit) -> int | None:
        """The index of a failed unit whose outputs ``unit`` takes, if any."""
        task, chain = self.task, self.chain_input
        if task is None or chain is None or not 0 <= chain.input_trf < len(task.transforms):
            return None
        parents = {u.index: u for u in task.transforms[chain.input_trf].units}
        return next((p for p in unit.parents
                     if p in parents and parents[p].status is UnitStatus.FAILED), None)

    def to_dict(self) -> dict[str, Any]:
        """The description (not the units), as stored."""
        return {"name": self.name, "job": self.template.spec(), "run_limit": self.run_limit,
                "requires": self.requires,
                "chain_input": dataclasses.asdict(self.chain_input) if self.chain_input else None,
                "unit_splitter": self.unit_splitter.to_dict() if self.unit_splitter else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CoreTransform:
        job = Job.from_spec(data["job"])
        splitter, chain = data.get("unit_splitter"), data.get("chain_input")
        return cls(chain_input=TaskChainInput(**chain) if chain else None,
                   name=data.get("name", ""), application=job.application, backend=job.backend,
                   inputfiles=job.inputfiles, outputfiles=job.outputfiles, retry=job.retry,
                   run_limit=data.get("run_limit", 8), requires=data.get("requires", ()),
                   unit_splitter=build_component(Splitter, splitter) if splitter else None)

    def __repr__(self) -> str:
        return f"CoreTransform(name={self.name!r}, units={len(self.units)})"


class CoreTask:
    """A task: ``t = CoreTask(name="analysis"); t.appendTransform(trf); t.float = 10``.

    ``float`` is how many of its units may have a job active at once (Ganga's ``float``; 0,
    the default, lets none run until set). ``id`` is given when the engine stores it.
    """

    def __init__(self, *, name: str = "", float: int = 0,  # noqa: A002 (Ganga's name)
                 transforms: Sequence[CoreTransform] = ()) -> None:
        self.id: int | None = None
        self.name = name
        self.float = float
        self.status = TaskStatus.NEW
        self.transforms: list[CoreTransform] = []
        self.dropped: list[tuple[int, int]] = []
        """Units dropped since last stored (transform index, unit index): the children of a
        reset unit."""
        self._index: UnitIndex | None = None
        for transform in transforms:
            self.appendTransform(transform)

    def index(self) -> UnitIndex:
        """Its units by status (made again when units came or went without it)."""
        index = self._index
        if index is None or index.sizes != [len(trf.units) for trf in self.transforms]:
            inputs = [trf.chain_input.input_trf if trf.chain_input and not trf.chain_input.single_unit
                      else None for trf in self.transforms]
            index = self._index = UnitIndex([trf.units for trf in self.transforms], inputs)
        return index

    def forget_index(self) -> None:
        """Units were dropped: the index is made again when next asked for."""
        self._index = None

    @property
    def reason(self) -> str | None:
        """Why the task is not completing: how many units failed, and the first one's reason."""
        failed = [(i, u) for i, _, u in self.units() if u.status is UnitStatus.FAILED]
        if not failed:
            return None
        i, unit = failed[0]
        more = f" (and {len(failed) - 1} more failed)" if len(failed) > 1 else ""
        return f"transform {i} unit {unit.index} failed{more}: {unit.reason}"

    def appendTransform(self, transform: CoreTransform) -> None:  # noqa: N802 (Ganga's name)
        """Add a transform (before the task is stored)."""
        if self.id is not None:
            raise JobSpecError("transforms", f"task {self.id} is stored; transforms are added "
                               "before engine.tasks.add(task)")
        if not isinstance(transform, CoreTransform):
            raise JobSpecError("transforms", f"{transform!r} is not a CoreTransform")
        self.transforms.append(transform)
        transform.task = self

    def check(self) -> None:
        """Raise JobSpecError when the task cannot run as described."""
        if not self.transforms:
            raise JobSpecError("transforms", "the task has none; add one with t.appendTransform(trf)")
        if isinstance(self.float, bool) or not isinstance(self.float, int) or not 0 <= self.float < 2**63:
            raise JobSpecError("float", f"{self.float!r} must be a whole number, 0 or more (below 2**63)")
        for i, trf in enumerate(self.transforms):
            for required in trf.requires:
                if not isinstance(required, int) or not 0 <= required < i:
                    raise JobSpecError(f"transforms[{i}].requires", f"{required!r} is not the index "
                                       "of an earlier transform of this task")
            chain = trf.chain_input
            if chain is not None and not 0 <= chain.input_trf < i:
                raise JobSpecError(f"transforms[{i}].input_trf", f"{chain.input_trf!r} is not the "
                                   "index of an earlier transform of this task")
            if chain is not None and trf.unit_splitter is not None:
                raise JobSpecError(f"transforms[{i}].unit_splitter", "a chained transform takes "
                                   "its units from its TaskChainInput; remove the unit splitter")

    def units(self) -> Iterator[tuple[int, CoreTransform, Unit]]:
        """Every unit, with its transform and that transform's index."""
        for i, trf in enumerate(self.transforms):
            for unit in trf.units:
                yield i, trf, unit

    def unit_counts(self) -> dict[str, dict[str, int]]:
        """Units by status, per transform (``"0:name"``)."""
        return {f"{i}:{trf.name}": trf.counts() for i, trf in enumerate(self.transforms)}

    def __repr__(self) -> str:
        return f"CoreTask(id={self.id}, name={self.name!r}, status={self.status}, float={self.float})"


def active_units(task: CoreTask) -> int:
    """How many of the task's units have a job in the engine."""
    return task.index().count(UnitStatus.RUNNING)


def _transform_completed(task: CoreTask, i: int) -> bool:
    index = task.index()
    return index.counts[i][UnitStatus.COMPLETED] == index.sizes[i]


def release_held(task: CoreTask) -> list[tuple[int, Unit]]:
    """Put units whose required transforms all completed from ``hold`` back to ``new``, and
    units whose requirements are not met into ``hold``; returns those changed."""
    changed = []
    index = task.index()
    for i, trf in enumerate(task.transforms):
        ready = all(_transform_completed(task, r) for r in trf.requires)
        if not index.counts[i][UnitStatus.HOLD if ready else UnitStatus.NEW]:
            continue
        for unit in trf.units:
            if ready and unit.status is UnitStatus.HOLD:
                unit.status = UnitStatus.NEW
                changed.append((i, unit))
            elif not ready and unit.status is UnitStatus.NEW:
                unit.status = UnitStatus.HOLD
                changed.append((i, unit))
    return changed


def to_submit(task: CoreTask) -> list[tuple[int, Unit]]:
    """The units to give a job now: ``new`` ones, in order, within the free part of the
    task's ``float``; none unless the task is ``running``."""
    if task.status is not TaskStatus.RUNNING:
        return []
    return task.index().first_new(task.float - active_units(task))


def job_ended(task: CoreTask, trf: CoreTransform, unit: Unit, end: Status,
              exitcode: int | None, reason: str | None) -> None:
    """The unit's job became final (``end``): the unit completes, fails for good, or goes
    back to ``new`` for another job (its failure is of a kind the transform's retry policy
    takes and it ran fewer than ``run_limit`` jobs); the task completes with its last unit."""
    job_id = unit.job_id
    if end is Status.COMPLETED:
        unit.status, unit.reason = UnitStatus.COMPLETED, None
    else:
        kinds = (trf.template.retry or Retry()).on
        kind = failure_kind(end, exitcode, reason)
        said = f"job {job_id} {end}" + (f": {reason}" if reason else "")
        if kind in kinds and unit.runs < trf.run_limit:
            if job_id is not None:
                unit.history.append(job_id)
            unit.job_id, unit.status, unit.reason = None, UnitStatus.NEW, said
        else:
            why = (f"after {unit.runs} of run_limit {trf.run_limit} runs" if kind in kinds
                   else "not retried")
            unit.status, unit.reason = UnitStatus.FAILED, f"{said} ({why})"
    settle(task)


def settle(task: CoreTask) -> None:
    """The task is completed once every unit is and no chain has a unit still to make."""
    index = task.index()
    if index.count(UnitStatus.COMPLETED) == index.total and not chain_pending(task):
        task.status = TaskStatus.COMPLETED


def done(task: CoreTask) -> bool:
    """Whether every unit completed or failed and no chain has a unit still to make."""
    index = task.index()
    ended = index.count(UnitStatus.COMPLETED) + index.count(UnitStatus.FAILED)
    return ended == index.total and not chain_pending(task) and not chain_blocked(task, dry=True)


def chain_pending(task: CoreTask) -> list[tuple[int, list[Unit]]]:
    """The units chains have to make: (chained transform's index, the parent units whose
    outputs it takes), one per completed parent unit without a child (or one on all parents
    for ``single_unit``, once all completed)."""
    pending: list[tuple[int, list[Unit]]] = []
    index = task.index()
    for i, trf in enumerate(task.transforms):
        chain = trf.chain_input
        if chain is None:
            continue
        parents = task.transforms[chain.input_trf].units
        if chain.single_unit:
            if not trf.units and parents and _transform_completed(task, chain.input_trf):
                pending.append((i, list(parents)))
            continue
        pending.extend((i, [index.unit(chain.input_trf, p)]) for p in sorted(index.uncovered[i]))
    return pending


def chain_blocked(task: CoreTask, *, dry: bool = False) -> list[tuple[int, Unit]]:
    """Fail the unit of each ``single_unit`` chain that a failed parent unit keeps from ever
    being made (as in Ganga, it waits for every parent to complete): the unit is made
    ``failed``, its reason naming the parent, why it failed and how to go on (reset the
    parent; the unit is made again once every parent completed). Returns them; with ``dry``,
    only says which transforms would get one, changing nothing."""
    blocked: list[tuple[int, Unit]] = []
    index = task.index()
    for i, trf in enumerate(task.transforms):
        chain = trf.chain_input
        if chain is None or not chain.single_unit or trf.units:
            continue
        if not index.counts[chain.input_trf][UnitStatus.FAILED]:
            continue
        parents = task.transforms[chain.input_trf].units
        if dry:
            blocked.append((i, parents[0]))
            continue
        failed = next(p for p in parents if p.status is UnitStatus.FAILED)
        unit = Unit(0, {"inputfiles": []}, status=UnitStatus.FAILED, parents=[p.index for p in parents],
                    reason=f"it takes the outputs of every unit of transform {chain.input_trf}, and "
                    f"unit {failed.index} failed: {failed.reason}; reset that one "
                    f"(task.transforms[{chain.input_trf}].resetUnit({failed.index}), or "
                    "retryFailed()) and run the task again")
        trf.units.append(unit)
        index.added(i, unit)
        blocked.append((i, unit))
    return blocked


def add_chained(task: CoreTask, index: int, parents: Sequence[Unit], files: Sequence[str]) -> Unit:
    """Make the unit of chained transform ``index`` on ``parents``, its input ``files``
    (their outputs the chain wants, found by the caller)."""
    trf = task.transforms[index]
    unit = Unit(trf.units[-1].index + 1 if trf.units else 0, {"inputfiles": list(files)},
                parents=[p.index for p in parents])
    units = task.index()
    trf.units.append(unit)
    units.added(index, unit)
    if task.status is TaskStatus.COMPLETED:
        task.status = TaskStatus.RUNNING
    return unit
