"""The dashboard's web server: a Starlette app served by uvicorn inside the daemon.

:class:`Dashboard` is an addon of the daemon (:data:`ganga_async.service.server.Addon`): the
daemon starts it in its own task group, on its own event loop, after the engine opened. It
binds ``127.0.0.1`` only (``[Service] dashboard_port``, 0 for any free port), makes a new token
(``secrets.token_urlsafe(32)``) and a CSRF token, writes the address and token to
``<gangadir>/service/dashboard.json`` (mode 0600, :mod:`._state`), serves until the daemon
stops, then removes that file.

Every request passes :class:`TokenAuth` first (docs/dashboard.md, "Security"); the routes are
the pages (HTML files of ``static/``), ``/static/...``, the JSON API (:mod:`._api`,
:mod:`._files`) and the live stream (:class:`_Stream`).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import socket
from collections import OrderedDict
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio
import uvicorn
from anyio.abc import TaskStatus
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._exceptions import ConfigError, GangaAsyncError, JobNotFoundError
from .._log import get_logger
from ..config import Section
from ..engine import Engine
from . import _api
from ._feed import Feed
from ._files import job_file
from ._state import DashboardState, url_of

__all__ = ["Dashboard", "TokenAuth", "create_app"]

log = get_logger(__name__)

STATIC = Path(__file__).parent / "static"
"""The pages, their scripts and styles (plain files, no build step)."""

PAGES = {"/": "jobs.html", "/job/{id}": "job.html", "/credentials": "credentials.html",
         "/events": "events.html"}
"""Each page's path and its file in :data:`STATIC`."""

PING_SECONDS = 15.0
SEND_BUFFER = 64 << 10


class TokenAuth:
    """No request passes without the token: ``?token=T`` (answered by a cookie and a redirect
    to the same URL without it), the cookie, or ``Authorization: token T``; anything else is a
    403 with one line. Compared in constant time."""

    def __init__(self, app: ASGIApp, token: str, cookie: str) -> None:
        self.app = app
        self.token = token.encode()
        self.cookie = cookie

    def _valid(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = Headers(scope=scope)
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [value for key, value in query if key == "token"]
        if given:
            if not self._valid(given[-1]):
                await _forbidden(scope, receive, send)
                return
            if scope["method"] in ("GET", "HEAD"):
                rest = urlencode([(k, v) for k, v in query if k != "token"])
                location = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
                response = Response(status_code=303, headers={"Location": location,
                                                              "Cache-Control": "no-store"})
                response.set_cookie(self.cookie, given[-1], httponly=True, samesite="strict", path="/")
                await response(scope, receive, send)
                return
        elif not (self._valid(_authorization(headers)) or self._valid(_cookie(headers, self.cookie))):
            await _forbidden(scope, receive, send)
            return
        await _answered(self.app, scope, receive, send)


async def _answered(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run ``app``; an error it raises after answering (Starlette's last resort answers, then
    raises again) ends the request here, not in uvicorn's log as a traceback."""
    started = False

    async def tracking(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, tracking)
    except Exception as exc:
        if started:
            return
        log.error("dashboard request failed", path=scope.get("path"), error=repr(exc), exc_info=exc)
        await PlainTextResponse("the request failed inside the daemon\n", status_code=500)(
            scope, receive, send)


def _authorization(headers: Headers) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "token" else None


def _cookie(headers: Headers, name: str) -> str | None:
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(headers.get("cookie", ""))
    except Exception:  # noqa: BLE001 (a malformed Cookie header is no cookie)
        return None
    morsel = cookies.get(name)
    return morsel.value if morsel is not None else None


async def _forbidden(scope: Scope, receive: Receive, send: Send) -> None:
    response = PlainTextResponse("forbidden: open the URL `ganga-async dashboard` prints (it holds "
                                 "the token), or send the header 'Authorization: token T'\n",
                                 status_code=403)
    await response(scope, receive, send)


def _page(filename: str) -> Any:
    async def page(request: Request) -> Response:
        path = STATIC / filename
        if not path.is_file():
            return PlainTextResponse(f"the dashboard page {filename} is not installed\n", status_code=404)
        return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-store"})
    return page


class _Stream:
    """``/api/stream``: Server-Sent Events from the :class:`~._feed.Feed` until the page goes
    away, is dropped for not reading, or the daemon stops (an ASGI app of its own: the response
    must end when the feed drops its page, which a generator of a StreamingResponse cannot)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _stream(scope["app"].state.feed, receive, send)


async def _stream(feed: Feed, receive: Receive, send: Send) -> None:
    client = feed.subscribe()
    try:
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no")]})
        with client.scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_until_disconnect, receive, tg.cancel_scope)
                await send({"type": "http.response.body", "body": b"retry: 3000\n: connected\n\n",
                            "more_body": True})
                while True:
                    chunk = b": ping\n\n"
                    with anyio.move_on_after(PING_SECONDS):
                        name, data = await client.receive.receive()
                        chunk = f"event: {name}\ndata: {data}\n\n".encode()
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
        pass
    finally:
        feed.unsubscribe(client)


async def _until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _error(request: Request, exc: Exception) -> Response:
    """One line, never a traceback: JSON under /api/, text elsewhere."""
    if isinstance(exc, HTTPException):
        status, message = exc.status_code, str(exc.detail)
    elif isinstance(exc, _api.BadRequest):
        status, message = 400, str(exc)
    elif isinstance(exc, JobNotFoundError):
        status, message = 404, str(exc)
    elif isinstance(exc, GangaAsyncError):
        status, message = 409, str(exc)
    else:
        log.error("dashboard request failed", path=request.url.path, error=repr(exc), exc_info=exc)
        status, message = 500, f"the request failed inside the daemon: {exc!r}"
    message = " ".join(message.split())
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    return PlainTextResponse(message + "\n", status_code=status)


def create_app(engine: Engine, feed: Feed, token: str, port: int) -> ASGIApp:
    """The dashboard's ASGI app, behind :class:`TokenAuth`."""
    routes: list[Any] = [Route(path, _page(file), methods=["GET", "HEAD"]) for path, file in PAGES.items()]
    routes += [
        Route("/api/session", _api.session),
        Route("/api/jobs", _api.jobs),
        Route("/api/jobs/{id}", _api.job_detail),
        Route("/api/jobs/{id}/subjobs", _api.subjobs),
        Route("/api/jobs/{id}/cells", _api.cells),
        Route("/api/jobs/{id}/timeline", _api.timeline),
        Route("/api/jobs/{id}/files/{name:path}", job_file),
        *[Route(f"/api/jobs/{{id}}/{name}", _api.action, methods=["POST"])
          for name in ("kill", "resubmit", "remove")],
        Route("/api/credentials", _api.credentials),
        Route("/api/events/recent", _api.recent),
        Route("/api/stream", _Stream(), methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC, check_dir=False)),
    ]
    app = Starlette(routes=routes, exception_handlers={
        Exception: _error, HTTPException: _error, _api.BadRequest: _error, GangaAsyncError: _error})
    app.state.engine = engine
    app.state.feed = feed
    app.state.viewed = OrderedDict()
    app.state.csrf = secrets.token_urlsafe(32)
    return TokenAuth(app, token, cookie=f"ganga_async_{port}")


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers (the daemon handles SIGTERM and SIGINT),
    telling when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = anyio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()


def _log_into_daemon_log() -> None:
    """uvicorn's own messages go where the daemon logs (this runs only in the daemon, which
    configures logging; the library never does)."""
    ours, theirs = logging.getLogger("ganga_async"), logging.getLogger("uvicorn")
    theirs.handlers = list(ours.handlers)
    theirs.setLevel(logging.WARNING)
    theirs.propagate = False


def _bind(port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise ConfigError(f"[Service] dashboard_port: {port} is not a TCP port; give 1-65535, or 0 "
                          "for any free port")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by each connection: what a page that stops reading can hold in the kernel
        # stays small, so its queue fills and it is dropped (instead of megabytes piling up).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"[Service] dashboard_port: cannot listen on 127.0.0.1:{port}: "
                          f"{exc.strerror}; choose another port, or 0 for any free one") from None
    sock.set_inheritable(False)
    return sock


class Dashboard:
    """The daemon's addon serving the dashboard (see the module's documentation)."""

    def __init__(self, gangadir: Path, settings: Section) -> None:
        self.state = DashboardState(gangadir)
        self.settings = settings
        self.port = int(settings["dashboard_port"])

    async def __call__(self, engine: Engine, *,
                       task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        _log_into_daemon_log()
        sock = _bind(self.port)
        port = sock.getsockname()[1]
        token = secrets.token_urlsafe(32)
        feed = Feed(engine, self.settings)
        config = uvicorn.Config(create_app(engine, feed, token, port), log_config=None,
                                access_log=False, lifespan="off", server_header=False,
                                timeout_graceful_shutdown=1)
        server = _Server(config)
        served = anyio.Event()

        async def serve() -> None:
            try:
                await server.serve(sockets=[sock])
            except Exception as exc:  # the daemon goes on without its dashboard
                log.error("the dashboard stopped", error=repr(exc), exc_info=exc)
            finally:
                served.set()
                server.ready.set()

        try:
            async with anyio.create_task_group() as tg:
                await tg.start(feed.run)
                tg.start_soon(serve)
                await server.ready.wait()
                if not server.started:
                    raise GangaAsyncError(f"the dashboard could not start on 127.0.0.1:{port}")
                self.state.write(port, token)
                log.info("dashboard ready", url=url_of(port))
                task_status.started()
                try:
                    await served.wait()
                finally:
                    server.should_exit = True
                    with anyio.CancelScope(shield=True), anyio.move_on_after(3):
                        server.force_exit = True
                        await served.wait()
        finally:
            self.state.remove()
            sock.close()
