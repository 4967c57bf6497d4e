"""The dashboard's JSON API: what the pages show, read from the engine and its repository.

Every handler answers JSON. A request naming no such job is a 404 and a bad parameter a 400,
each with ``{"error": "<one line>"}`` naming what was wrong; nothing a request holds can stop
the daemon. In the list of jobs, counts of a master come from the engine's in-memory record
while it is active and from the repository otherwise. One job's page reads the job from the
engine (loaded once, then kept in memory as every job the engine has opened) and its subjobs
from a copy of its compact table (:mod:`._subjobs`), so a 100,000-subjob master costs no
Python object per subjob. The actions (kill, resubmit, remove) are the daemon's own operations
(:mod:`ganga_async.service._operations`), as the command line's.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from .. import __version__
from .._describe import credential_rows
from .._exceptions import GangaAsyncError, JobNotFoundError, ProtocolError
from .._workspace import job_dir
from ..engine import Engine
from ..model.job import Job
from ..model.record import parse_fqid
from ..persistence.dashboard import master_times
from ..pipeline.results import read_results
from ..service._operations import OPERATIONS, Arguments
from ..states import FINAL, Status
from . import _subjobs
from ._feed import Feed, job_counts
from ._subjobs import LEGEND

__all__ = ["BadRequest", "int_param", "job_detail", "jobs", "session"]

BRIEF_LIST = 20
"""Items of a long list in a job's description (a splitter's 100,000 arguments) shown."""

_ACTIVE = frozenset(Status) - FINAL - {Status.NEW}
"""Statuses of a master the engine holds in memory and changes."""


class BadRequest(Exception):
    """A parameter that cannot be used: a 400 naming it."""


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _feed(request: Request) -> Feed:
    feed: Feed = request.app.state.feed
    return feed


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """The integer query parameter ``name`` (``default`` when absent), within ``[low, high]``."""
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"parameter {name!r} must be a whole number, not {text!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"parameter {name!r} must be from {low} to {high}, not {value}")
    return value


def status_param(request: Request) -> Status | None:
    text = request.query_params.get("status")
    if not text:
        return None
    try:
        return Status.parse(text)
    except (ValueError, GangaAsyncError):
        raise BadRequest(f"parameter 'status' must be one of {', '.join(LEGEND)}, not {text!r}") from None


def master_id(request: Request) -> int:
    """The ``{id}`` of the path as a master's id (a subjob's fqid is refused)."""
    text = request.path_params["id"]
    job_id, index = parse_fqid(text)
    if index is not None:
        raise JobNotFoundError(f"{text!r} is a subjob; this asks for a job id such as 3")
    return job_id


async def _counts(engine: Engine, feed: Feed, rows: list[dict[str, Any]]) -> dict[int, dict[str, int]]:
    """Counts by status of each master of ``rows``: an active one's from the engine's record,
    a final one's from the repository (in one read, then kept until its next event). An active
    row's status is brought up to the moment of its counts (the job may have moved on since
    the summary was read, and a page must not show a job still submitted with every subjob
    completed)."""
    found: dict[int, dict[str, int]] = {}
    stored: list[int] = []
    for row in rows:
        if row["status"] in _ACTIVE:
            now = await job_counts(engine, row["id"])
            found[row["id"]], row["status"] = now["counts"], now["status"]
        elif not row["subjobs"]:
            found[row["id"]] = {row["status"]: 1}
        elif row["id"] in feed.final_counts:
            found[row["id"]] = feed.final_counts[row["id"]]
        else:
            stored.append(row["id"])
    for job_id, by_code in (await engine.repository.subjob_counts(stored)).items():
        found[job_id] = feed.final_counts[job_id] = {
            str(Status.from_code(code)): n for code, n in by_code.items()}
    return found


def _times(times: dict[str, float], status: str, now: float) -> tuple[float | None, float | None]:
    """When a master was submitted, and for how long it ran (until it ended, or now)."""
    started = times.get("submitting")
    if started is None:
        return None, None
    ended = times.get(status) if status in FINAL else None
    return started, round(max(0.0, (ended or now) - started), 3)


async def jobs(request: Request) -> JSONResponse:
    """``/api/jobs?status=&name=&backend=``: one row per master."""
    engine = _engine(request)
    status = status_param(request)
    name = request.query_params.get("name") or None
    backend = request.query_params.get("backend") or None
    rows = await engine.summary(status=status, name=name)
    if backend is not None:
        rows = [row for row in rows if row["backend"] == backend]
    counts = await _counts(engine, _feed(request), rows)
    times = await master_times(engine.repository)
    now = time.time()
    result = []
    for row in rows:
        started, elapsed = _times(times.get(row["id"], {}), row["status"], now)
        result.append({"id": row["id"], "name": row["name"], "status": row["status"],
                       "application": row["application"], "backend": row["backend"],
                       "subjobs": row["subjobs"], "counts": counts.get(row["id"], {}),
                       "started": started, "elapsed": elapsed, "comment": row["comment"]})
    return JSONResponse({"jobs": result})


VIEWED_KEPT = 8
"""How many jobs the dashboard keeps hold of after showing them. The engine keeps a finished job
in memory only while someone holds it, and a page asks about its job every second or two:
without this, every request for a finished 100,000-subjob job would load it again (~1 s)."""


async def _master(request: Request) -> Job:
    job = await _engine(request).get(master_id(request))
    viewed: OrderedDict[int, Job] = request.app.state.viewed
    if job.id is not None:
        viewed[job.id] = job
        viewed.move_to_end(job.id)
        while len(viewed) > VIEWED_KEPT:
            viewed.popitem(last=False)
    return job


def _brief(value: Any) -> Any:
    """``value`` with every list over :data:`BRIEF_LIST` items cut to its first ones and a
    last string saying how many there are."""
    if isinstance(value, dict):
        return {key: _brief(item) for key, item in value.items()}
    if isinstance(value, list):
        if len(value) > BRIEF_LIST:
            return [*(_brief(v) for v in value[:BRIEF_LIST]), f"... ({len(value)} in all)"]
        return [_brief(v) for v in value]
    return value


async def job_detail(request: Request) -> JSONResponse:
    """``/api/jobs/{id}``: the description, counts, failure reasons, attempts, postprocessing."""
    engine = _engine(request)
    job = await _master(request)
    job_id = int(job.fqid)
    status = str(job.status)
    if len(job.subjobs):
        columns = job.subjobs.columns()
        reasons = _subjobs.reasons(columns, job_id)
        tried = _subjobs.attempts(columns)
    else:
        reasons = ([{"reason": job.reason or "", "count": 1, "example": str(job_id)}]
                   if job.status == Status.FAILED else [])
        tried = {"max": job.info.submit_counter, "total": job.info.submit_counter}
    results = await anyio.to_thread.run_sync(read_results, job_dir(engine.workspace, job_id))
    times = {name: stamp.timestamp() for name, stamp in job.time.timestamps.items()}
    started, elapsed = _times(times, status, time.time())
    spec = _brief(job.spec())
    return JSONResponse({
        "id": job_id, "name": job.name, "comment": job.comment, "status": status,
        "application": spec.get("application"), "backend": spec.get("backend"),
        "splitter": spec.get("splitter"), "postprocessors": spec.get("postprocessors", []),
        "inputfiles": spec.get("inputfiles", []), "outputfiles": spec.get("outputfiles", []),
        "times": times, "started": started, "elapsed": elapsed, "subjobs": len(job.subjobs),
        "counts": job.subjobs.counts() or {status: 1}, "reasons": reasons, "attempts": tried,
        "backend_id": job.backend_id, "exitcode": job.exitcode, "reason": job.reason,
        "postprocessing": [{"fqid": str(job_id) if index is None else f"{job_id}.{index}",
                            "results": [r._asdict() for r in found]}
                           for index, found in sorted(results.items(),
                                                      key=lambda kv: -1 if kv[0] is None else kv[0])],
    })


async def subjobs(request: Request) -> JSONResponse:
    """``/api/jobs/{id}/subjobs?status=&q=&offset=0&limit=100``: a page of subjobs."""
    status = status_param(request)
    offset = int_param(request, "offset", 0, 0, 2**62)
    limit = int_param(request, "limit", 100, 1, 1000)
    q = request.query_params.get("q") or None
    job = await _master(request)
    return JSONResponse(_subjobs.page(job.subjobs.columns(), int(job.fqid), status=status, q=q,
                                      offset=offset, limit=limit))


async def cells(request: Request) -> JSONResponse:
    """``/api/jobs/{id}/cells``: one character per subjob, for the heat-map."""
    job = await _master(request)
    codes = _subjobs.cells(job.subjobs.columns())
    return JSONResponse({"legend": LEGEND, "codes": codes, "n": len(codes)})


async def timeline(request: Request) -> JSONResponse:
    """``/api/jobs/{id}/timeline?buckets=200``: subjobs started, ended, running per bucket."""
    buckets = int_param(request, "buckets", 200, 1, 2000)
    job = await _master(request)
    return JSONResponse(_subjobs.timeline(job.subjobs.columns(), buckets, time.time()))


async def credentials(request: Request) -> JSONResponse:
    """``/api/credentials``: each credential's state (identity and times, never its contents)
    and the held jobs whose reason names it."""
    engine = _engine(request)
    store = engine.credentials.store
    held = [row["id"] for row in await engine.summary(status=Status.HELD)]
    reasons = {r.id: r.reason or "" for r in await engine.repository.job_rows(ids=held)} if held else {}
    minimum = float(engine.config["Credentials"]["min_time_left"])
    result = []
    for row in await credential_rows(store):
        name = row["credential"]
        result.append({
            "name": name, "type": row["type"], "location": row["location"],
            "valid": bool(row["exists"]) and row["problem"] is None and row["time_left"] > 0,
            "time_left": row["time_left"], "expiry": row["expiry"],
            "lifetime": row.get("lifetime"), "min_time_left": minimum,
            "identity": row["identity"], "problem": row["problem"], "valid_for": row["valid_for"],
            "held_jobs": [{"id": job_id, "reason": reason} for job_id, reason in reasons.items()
                          if name in reason or row["type"] in reason],
        })
    return JSONResponse({"credentials": result})


async def recent(request: Request) -> JSONResponse:
    """``/api/events/recent?limit=200``: the last events, oldest first."""
    feed = _feed(request)
    limit = int_param(request, "limit", 200, 1, feed.recent.maxlen or 1)
    events = list(feed.recent)[-limit:]
    return JSONResponse({"events": events, "stream": feed.stats()})


async def session(request: Request) -> JSONResponse:
    """``/api/session``: the CSRF token the actions need, and who and where this is."""
    engine = _engine(request)
    return JSONResponse({"csrf": request.app.state.csrf, "user": engine.config.user,
                         "gangadir": str(engine.gangadir), "version": __version__,
                         "stream": _feed(request).stats()})


_ACTIONS = {"kill": "kill requested", "resubmit": "failed subjobs submitted again",
            "remove": "removed"}


async def action(request: Request) -> JSONResponse:
    """POST ``/api/jobs/{id}/kill|resubmit|remove``: the daemon's operation of that name."""
    given = request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(given.encode(), request.app.state.csrf.encode()):
        return JSONResponse({"ok": False, "error": "missing or wrong X-CSRF-Token header: send the "
                             "csrf value of GET /api/session"}, status_code=403)
    name = request.url.path.rsplit("/", 1)[-1]
    job_id = request.path_params["id"]
    try:
        parse_fqid(job_id)
        result = await OPERATIONS[name](_engine(request), Arguments(name, {"id": job_id}))
    except JobNotFoundError as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=404)
    except ProtocolError as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
    except GangaAsyncError as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=409)
    return JSONResponse({"ok": True, "message": f"job {job_id}: {_ACTIONS[name]}; status "
                         f"{result.get('status')}", "result": result})
