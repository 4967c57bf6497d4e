"""Job descriptions in TOML files, as ``ganga-async submit job.toml`` reads them.

A job file has the fields of :class:`~ganga_async.Job`::

    name = "analysis"
    inputfiles = ["run.sh", "data/a.txt"]
    outputfiles = ["*.root"]

    [application]
    type = "Executable"
    exe = "run.sh"

    [backend]
    type = "Local"
    max_concurrent = 4

    [splitter]
    type = "ArgSplitter"
    args = [["1"], ["2"]]

    [[credentials]]
    type = "VomsProxy"
    vo = "lhcb"

    [[postprocessors]]
    type = "TextMerger"
    files = ["stdout"]

``[application]`` and ``[backend]`` may be left out for the Job defaults (``Executable`` on
``Local``); a table that is present names its plugin with ``type``, and so does each
``[[credentials]]`` and ``[[postprocessors]]`` entry (a bare name in a list,
``postprocessors = ["SmartMerger"]``, is that plugin with its defaults). Relative ``inputfiles``
are relative to the directory of the file (no glob is expanded). Every mistake is a
:class:`~ganga_async.JobSpecError` whose message starts with the file, names the field and
says how to fix it.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from ._component import build_component, check_value
from ._exceptions import JobSpecError
from .credentials.base import Credential
from .model.job import COMPONENT_BASES, FIELDS, Job
from .model.retry import Retry
from .postprocessors.base import PostProcessor

__all__ = ["job_from_dict", "job_from_fields", "load_job_file", "read_toml", "located"]

_TABLES = tuple(COMPONENT_BASES)


def load_job_file(path: str | os.PathLike[str]) -> Job:
    """The new Job described by the TOML file at ``path``."""
    path = Path(path)
    return job_from_dict(read_toml(path), str(path), basedir=path.absolute().parent)


def read_toml(path: Path, what: str = "job file") -> dict[str, Any]:
    """The parsed TOML file at ``path``; JobSpecError naming the file (a ``what``) when it
    cannot be read."""
    try:
        text = path.read_bytes().decode()
    except OSError as exc:
        raise JobSpecError("", f"cannot read the {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        error = JobSpecError("", f"is not UTF-8 text ({exc.reason}); save it as UTF-8")
        raise located(error, str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        fix = f"fix the TOML syntax at line {line.group(1)}" if line else "fix the TOML syntax"
        raise located(JobSpecError("", f"{exc}; {fix}"), str(path)) from None
    except RecursionError:
        error = JobSpecError("", "its arrays or tables are nested too deeply to read; no field "
                             "needs more than a few levels, so write them flat")
        raise located(error, str(path)) from None
    return data


def job_from_dict(
    data: dict[str, Any], source: str, *, basedir: str | os.PathLike[str] | None = None
) -> Job:
    """The new Job described by ``data``, a parsed job file; ``source`` names it in errors.

    Relative ``inputfiles`` are taken relative to ``basedir`` when it is given (and left for
    the engine to resolve against the working directory otherwise).
    """
    try:
        return _build(data, basedir)
    except JobSpecError as exc:
        raise located(exc, source) from None


def job_from_fields(data: dict[str, Any], basedir: str | os.PathLike[str] | None = None) -> Job:
    """:func:`job_from_dict` for a description inside another file (a task file's transform):
    its errors name the field only, for the caller to place."""
    return _build(data, basedir)


def _build(data: dict[str, Any], basedir: str | os.PathLike[str] | None) -> Job:
    for key in data:
        if key not in FIELDS:
            plain = ", ".join(f for f in FIELDS if f not in _TABLES)
            tables = ", ".join(f"[{t}]" for t in _TABLES)
            raise JobSpecError(key, f"unknown key; valid keys: {plain} and the tables {tables}")
    fields: dict[str, Any] = {k: v for k, v in data.items() if k not in _TABLES}
    if "inputfiles" in fields:
        inputfiles: list[str] = check_value(fields["inputfiles"], list[str], "inputfiles")
        if basedir is not None:
            inputfiles = [os.path.join(basedir, os.path.expanduser(p)) for p in inputfiles]
        fields["inputfiles"] = inputfiles
    for category in _TABLES:
        if category in data:
            fields[category] = build_component(COMPONENT_BASES[category], data[category])
    if "credentials" in data:
        entries = data["credentials"]
        if not isinstance(entries, list):
            raise JobSpecError("credentials", 'must be a list of tables: [[credentials]] with type = "..."')
        fields["credentials"] = [_entry(Credential, "credentials", entry, i)
                                 for i, entry in enumerate(entries)]
    if "retry" in data:
        fields["retry"] = Retry.from_dict(data["retry"])
    if "postprocessors" in data:
        entries = data["postprocessors"]
        if not isinstance(entries, list):
            raise JobSpecError("postprocessors",
                               'must be a list of tables: [[postprocessors]] with type = "..."')
        fields["postprocessors"] = [
            _entry(PostProcessor, "postprocessors", {"type": e} if isinstance(e, str) else e, i)
            for i, e in enumerate(entries)]
    return Job(**fields)


def _entry(base: type[Credential] | type[PostProcessor], key: str, entry: Any, index: int) -> Any:
    try:
        return build_component(base, entry)
    except JobSpecError as exc:
        raise JobSpecError(f"{key}[{index}]", str(exc)) from None


def located(exc: JobSpecError, source: str) -> JobSpecError:
    """``exc`` with the file it came from in front of its message (``field`` is kept)."""
    exc.args = (f"{source}: {exc}",)
    return exc
