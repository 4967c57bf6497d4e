"""Tasks in TOML files, as ``ganga-async tasks add task.toml`` (and ``submit``) reads them.

A task file is told from a job file by its one top-level table, ``[task]``; each transform is
a ``[[task.transforms]]`` entry with the fields of :class:`~ganga_async.CoreTransform` and the
job fields of a job file (``application``, ``backend``, ``inputfiles``, ``outputfiles``,
``retry``)::

    [task]
    name = "analysis"
    float = 20

    [[task.transforms]]
    name = "simulate"
    run_limit = 3
    outputfiles = ["*.csv"]
    application = { type = "Executable", exe = "/bin/sh" }
    unit_splitter = { type = "ArgSplitter", args = [["-c", "echo 1 > a.csv"], ["-c", "echo 2 > b.csv"]] }

    [[task.transforms]]
    name = "summarise"
    application = { type = "Executable", exe = "/bin/sh", args = ["-c", "cat *.csv"] }
    chain_input = { input_trf = 0, include_file_mask = ['\\.csv$'] }

Relative ``inputfiles`` are relative to the file's directory. Every mistake is one
:class:`~ganga_async.JobSpecError` starting with the file and naming the field
(``task.transforms[1].chain_input.input_trf``) and the fix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._component import build_component, check_value
from ._exceptions import JobSpecError
from ._jobfile import job_from_fields, located, read_toml
from .model.task import CoreTask, CoreTransform, TaskChainInput
from .splitters.base import Splitter

__all__ = ["is_task_file", "load_task_file", "task_from_dict"]

_TASK_KEYS = ("name", "float", "transforms")
_JOB_KEYS = ("application", "backend", "inputfiles", "outputfiles", "retry")
_TRANSFORM_KEYS = ("name", "run_limit", "requires", "unit_splitter", "chain_input", *_JOB_KEYS)
_CHAIN_KEYS = ("input_trf", "include_file_mask", "exclude_file_mask", "single_unit")


def is_task_file(data: dict[str, Any]) -> bool:
    """Whether a parsed TOML file describes a task (it has a top-level ``[task]`` table)."""
    return "task" in data


def load_task_file(path: str | os.PathLike[str]) -> CoreTask:
    """The new task described by the TOML file at ``path``."""
    path = Path(path)
    return task_from_dict(read_toml(path, "task file"), str(path), basedir=path.absolute().parent)


def task_from_dict(data: Any, source: str, *, basedir: str | os.PathLike[str] | None = None
                   ) -> CoreTask:
    """The new task described by ``data``, a parsed task file (``{"task": {...}}``); ``source``
    names it in errors. Relative ``inputfiles`` are taken relative to ``basedir`` when given."""
    try:
        return _task(data, basedir)
    except JobSpecError as exc:
        raise located(exc, source) from None


def _task(data: Any, basedir: str | os.PathLike[str] | None) -> CoreTask:
    if not isinstance(data, dict) or set(data) != {"task"}:
        extra = sorted(set(data) - {"task"}) if isinstance(data, dict) else []
        raise JobSpecError(extra[0] if extra else "task", "a task file holds one table, [task], "
                           "with name, float and [[task.transforms]]; move the other keys into it")
    task = data["task"]
    if not isinstance(task, dict):
        raise JobSpecError("task", "must be a table: a line [task], then name = ... and float = ...")
    _known(task, _TASK_KEYS, "task")
    entries = task.get("transforms")
    if not isinstance(entries, list) or not entries:
        raise JobSpecError("task.transforms", "give at least one [[task.transforms]] table")
    built = CoreTask(name=check_value(task.get("name", ""), str, "task.name"),
                     float=_whole(task.get("float", 0), "task.float"))
    for i, entry in enumerate(entries):
        where = f"task.transforms[{i}]"
        try:
            built.appendTransform(_transform(entry, where, basedir))
        except JobSpecError as exc:
            raise exc if exc.field.startswith(where) else _within(where, exc) from None
    try:
        built.check()
    except JobSpecError as exc:
        raise _within("task", exc) from None
    return built


def _transform(entry: Any, where: str, basedir: str | os.PathLike[str] | None) -> CoreTransform:
    if not isinstance(entry, dict):
        raise JobSpecError(where, "must be a table: a line [[task.transforms]], then its fields")
    _known(entry, _TRANSFORM_KEYS, where)
    job = job_from_fields({k: entry[k] for k in _JOB_KEYS if k in entry}, basedir)
    chain = entry.get("chain_input")
    if chain is not None:
        if not isinstance(chain, dict):
            raise JobSpecError("chain_input", "must be a table: chain_input = { input_trf = 0 }")
        _known(chain, _CHAIN_KEYS, f"{where}.chain_input")
        try:
            chain = TaskChainInput(**chain)
            check_value(chain.single_unit, bool, "single_unit")
        except JobSpecError as exc:
            raise _within("chain_input", exc) from None
    splitter = entry.get("unit_splitter")
    requires = check_value(entry.get("requires", []), list[int], "requires")
    return CoreTransform(
        name=check_value(entry.get("name", ""), str, "name"),
        application=job.application, backend=job.backend, inputfiles=job.inputfiles,
        outputfiles=job.outputfiles, retry=job.retry, chain_input=chain, requires=requires,
        run_limit=_whole(entry.get("run_limit", 8), "run_limit"),
        unit_splitter=_within_build(splitter) if splitter is not None else None)


def _within_build(data: Any) -> Splitter:
    try:
        return build_component(Splitter, data)
    except JobSpecError as exc:
        raise _within("unit_splitter", exc, drop="splitter") from None


def _known(table: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in keys:
            raise JobSpecError(f"{where}.{key}", f"unknown key; valid keys: {', '.join(keys)}")


def _whole(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63:
        raise JobSpecError(field, f"{value!r} must be a whole number (below 2**63)")
    return value


def _within(prefix: str, exc: JobSpecError, *, drop: str = "") -> JobSpecError:
    """``exc`` with its field under ``prefix`` (``chain_input`` -> ``task.transforms[1].chain_input``)."""
    message = str(exc).removeprefix(f"{exc.field}: ") if exc.field else str(exc)
    field = exc.field.removeprefix(drop).lstrip(".") if drop else exc.field
    return JobSpecError(f"{prefix}.{field}" if field else prefix, message)
