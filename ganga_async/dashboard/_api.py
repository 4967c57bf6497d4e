"""The dashboard's JSON API: what the pages show, read from the engine and its repository.

Every handler answers JSON. A request naming no such job is a 404 and a bad parameter a 400,
each with ``{"error": "<one line>"}`` naming what was wrong; nothing a request holds can stop
the daemon. Counts of a master come from the engine's in-memory record while it is active and
from the repository otherwise; a master's subjobs (pages, cells, timeline, reasons) are read in
SQL (:mod:`ganga_async.persistence.dashboard`), so a 100,000-subjob master costs no Python
object per subjob. The actions (kill, resubmit, remove) are the daemon's own operations
(:mod:`ganga_async.service._operations`), as the command line's.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from .. import __version__
from .._describe import credential_rows
from .._exceptions import GangaAsyncError, JobNotFoundError, ProtocolError
from .._workspace import job_dir
from ..engine import Engine
from ..model.record import parse_fqid
from ..persistence import dashboard as queries
from ..pipeline.results import read_results
from ..service._operations import OPERATIONS, Arguments
from ..states import FINAL, Status
from ._feed import Feed, job_counts

__all__ = ["BadRequest", "LEGEND", "bad", "job_detail", "jobs", "session"]

LEGEND = [str(Status.from_code(code)) for code in range(len(Status))]
"""The statuses in code order: a heat-map cell ``c`` is ``LEGEND[ord(c) - 48]``."""

_ACTIVE_OR_NEW = frozenset(Status) - FINAL - {Status.NEW}


class BadRequest(Exception):
    """A parameter that cannot be used: a 400 naming it."""


def bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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


async def _counts(engine: Engine, rows: list[dict[str, Any]]) -> dict[int, dict[str, int]]:
    """Counts by status of each master of ``rows``: an active one's from the engine's record,
    the others' in one repository read."""
    found: dict[int, dict[str, int]] = {}
    stored: list[int] = []
    for row in rows:
        if row["status"] in _ACTIVE_OR_NEW:
            found[row["id"]] = (await job_counts(engine, row["id"]))["counts"]
        elif row["subjobs"]:
            stored.append(row["id"])
        else:
            found[row["id"]] = {row["status"]: 1}
    for job_id, by_code in (await engine.repository.subjob_counts(stored)).items():
        found[job_id] = {str(Status.from_code(code)): n for code, n in by_code.items()}
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
    counts = await _counts(engine, rows)
    times = await queries.master_times(engine.repository)
    now = time.time()
    result = []
    for row in rows:
        started, elapsed = _times(times.get(row["id"], {}), row["status"], now)
        result.append({"id": row["id"], "name": row["name"], "status": row["status"],
                       "application": row["application"], "backend": row["backend"],
                       "subjobs": row["subjobs"], "counts": counts.get(row["id"], {}),
                       "started": started, "elapsed": elapsed, "comment": row["comment"]})
    return JSONResponse({"jobs": result})


async def _row(engine: Engine, job_id: int) -> Any:
    await engine.repository.flush()
    rows = await engine.repository.job_rows(ids=[job_id])
    if not rows:
        raise JobNotFoundError(f"no job {job_id}")
    return rows[0]


async def job_detail(request: Request) -> JSONResponse:
    """``/api/jobs/{id}``: the description, counts, failure reasons, attempts, postprocessing."""
    engine = _engine(request)
    job_id = master_id(request)
    row = await _row(engine, job_id)
    status = row.status
    if status in _ACTIVE_OR_NEW:
        status = (await job_counts(engine, job_id))["status"]
    counts = (await _counts(engine, [{"id": job_id, "status": status, "subjobs": row.n_subjobs}]))[job_id]
    if row.n_subjobs:
        reasons = [{"reason": r, "count": n, "example": f"{job_id}.{i}"}
                   for r, n, i in await queries.failure_reasons(engine.repository, job_id)]
        most, total = await queries.subjob_attempts(engine.repository, job_id)
    else:
        reasons = ([{"reason": row.reason or "", "count": 1, "example": str(job_id)}]
                   if status == Status.FAILED else [])
        most = total = row.submit_counter
    results = await anyio.to_thread.run_sync(read_results, job_dir(engine.workspace, job_id))
    started, elapsed = _times(row.times, status, time.time())
    spec = row.spec
    return JSONResponse({
        "id": job_id, "name": row.name, "comment": row.comment, "status": status,
        "application": spec.get("application"), "backend": spec.get("backend"),
        "splitter": spec.get("splitter"), "postprocessors": spec.get("postprocessors", []),
        "inputfiles": spec.get("inputfiles", []), "outputfiles": spec.get("outputfiles", []),
        "times": row.times, "started": started, "elapsed": elapsed,
        "subjobs": row.n_subjobs or 0, "counts": counts, "reasons": reasons,
        "attempts": {"max": most, "total": total}, "backend_id": row.backend_id,
        "exitcode": row.exitcode, "reason": row.reason,
        "postprocessing": [{"fqid": str(job_id) if index is None else f"{job_id}.{index}",
                            "results": [r._asdict() for r in found]}
                           for index, found in sorted(results.items(), key=lambda kv: -1 if kv[0] is None
                                                      else kv[0])],
    })


async def subjobs(request: Request) -> JSONResponse:
    """``/api/jobs/{id}/subjobs?status=&q=&offset=0&limit=100``: a page of subjobs."""
    engine = _engine(request)
    job_id = master_id(request)
    status = status_param(request)
    offset = int_param(request, "offset", 0, 0, 2**62)
    limit = int_param(request, "limit", 100, 1, 1000)
    q = request.query_params.get("q") or None
    await _row(engine, job_id)
    page = await queries.subjob_page(engine.repository, job_id, status=status, q=q,
                                     offset=offset, limit=limit)
    return JSONResponse({"total": page.total, "rows": [
        {"index": i, "fqid": f"{job_id}.{i}", "status": LEGEND[code], "backend_id": backend_id,
         "reason": reason, "attempts": counter, "started": t_run or None, "ended": t_final or None}
        for i, code, backend_id, reason, counter, _t_sub, t_run, t_final in page.rows]})


async def cells(request: Request) -> JSONResponse:
    """``/api/jobs/{id}/cells``: one character per subjob, for the heat-map."""
    engine = _engine(request)
    job_id = master_id(request)
    await _row(engine, job_id)
    codes = await queries.status_codes(engine.repository, job_id)
    return JSONResponse({"legend": LEGEND, "codes": codes, "n": len(codes)})


async def timeline(request: Request) -> JSONResponse:
    """``/api/jobs/{id}/timeline?buckets=200``: subjobs started, ended, running per bucket."""
    engine = _engine(request)
    job_id = master_id(request)
    buckets = int_param(request, "buckets", 200, 1, 2000)
    await _row(engine, job_id)
    return JSONResponse(await queries.timeline(engine.repository, job_id, buckets, time.time()))


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
    return JSONResponse({"events": events, **feed.stats()})


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
