"""How the plain-Python interface shows a job: Ganga's nested view for ``print(j)`` and ``j`` at
the prompt, and an HTML table for Jupyter (``_repr_html_``)."""

from __future__ import annotations

import html
from typing import Any

from .._component import Component
from ..model import job as _core

__all__ = ["job_fields", "job_html", "job_text"]


def job_fields(job: _core.Job) -> list[tuple[str, Any]]:
    """The (name, value) pairs shown for a job, in Ganga's order; components stay objects."""
    master = job.master
    fields: list[tuple[str, Any]] = [
        ("status", str(job.status)),
        ("name", job.name),
        ("inputdir", _directory(job, "inputdir")),
        ("outputdir", _directory(job, "outputdir")),
        ("outputfiles", list(job.outputfiles)),
        ("id", job.id),
        ("fqid", job.fqid),
        ("info", {"submit_counter": job.info.submit_counter}),
        ("time", {k: v.strftime("%Y/%m/%d %H:%M:%S") for k, v in job.time.timestamps.items()}),
        ("application", job.application),
        ("backend", job.backend),
        ("backend_id", job.backend_id),
    ]
    if master is None:
        fields += [("splitter", job.splitter), ("postprocessors", list(job.postprocessors)),
                   ("do_auto_resubmit", job.do_auto_resubmit), ("retry", job.retry)]
        counts = job.subjobs.counts()
        if counts:
            fields.append(("subjobs", f"{len(job.subjobs)} subjobs ("
                           + ", ".join(f"{s}: {n}" for s, n in counts.items()) + ")"))
    else:
        fields.append(("master", master.fqid))
    fields += [
        ("inputfiles", list(job.inputfiles)),
        ("credentials", list(job.credentials)),
        ("comment", job.comment),
        ("exitcode", job.exitcode),
        ("reason", job.reason),
    ]
    return fields


def _directory(job: _core.Job, which: str) -> str | None:
    try:
        return str(getattr(job, which))
    except Exception:  # a job not yet stored has no directories
        return None


def _component_text(component: Component, indent: str) -> str:
    inner = indent + "   "
    rows = [f"{inner}{name} = {_text(getattr(component, name), inner)}"
            for name in component.field_names()]
    return f"{type(component).__name__} (\n" + " ,\n".join(rows) + f"\n{inner})"


def _text(value: Any, indent: str) -> str:
    if isinstance(value, Component):
        return _component_text(value, indent)
    if isinstance(value, list) and any(isinstance(v, Component) for v in value):
        return "[" + ", ".join(_text(v, indent + " ") for v in value) + "]"
    return repr(value)


def job_text(job: _core.Job) -> str:
    """Ganga's nested view of a job::

        Job (
         status = 'new' ,
         name = '' ,
         ...
         application = Executable (
            exe = 'echo' ,
            ...
            ) ,
         ...
        )
    """
    rows = [f" {name} = {_text(value, ' ')}" for name, value in job_fields(job)]
    return "Job (\n" + " ,\n".join(rows) + "\n)"


def _html(value: Any) -> str:
    if isinstance(value, Component):
        rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{_html(getattr(value, name))}</td></tr>"
                       for name in value.field_names())
        return f"<b>{html.escape(type(value).__name__)}</b><table>{rows}</table>"
    if isinstance(value, list) and any(isinstance(v, Component) for v in value):
        return "<br>".join(_html(v) for v in value) or "[]"
    return f"<code>{html.escape(repr(value))}</code>"


def job_html(job: _core.Job) -> str:
    """The job as an HTML table for Jupyter: one row per field, components nested."""
    rows = "".join(f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
                   f"<td style='text-align:left'>{_html(value)}</td></tr>"
                   for name, value in job_fields(job))
    return f"<table><caption>Job {html.escape(job.fqid)}</caption>{rows}</table>"
