"""Logging through structlog on top of the standard library, without configuring either.

Library code calls :func:`get_logger` and logs key-value events. Each event reaches a stdlib
logger named after the module as a readable message (``job submitted job_id=3``), so an
application that only calls ``logging.basicConfig()`` sees sensible lines; the structured event
rides along as ``record.structlog_event`` for handlers that want JSON (the CLI and the daemon
install one, formatted by :class:`JsonFormatter`). Context bound with :func:`bound`
(``job_id``) is added to every event logged inside it.

structlog (and rich, which structlog imports when it is installed) is imported on the first
event some handler would receive: a logger whose stdlib level drops an event drops it before
any processor runs. A script that configures no logging therefore never imports either, which
is a fifth of the start of a fresh process submitting its first job.

The lines a user reads on the console, in Ganga's words (``submitting job 3``, ``job 3 status
changed to "running"``, ``Preparing Executable application.``), go to the logger
:data:`USER_LOGGER`, whose messages carry no ``key=value`` tail (the fields still ride along for
JSON). The plain-Python interface prints them; the library configures nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

__all__ = ["get_logger", "bound", "EVENT_ATTR", "JsonFormatter", "USER_LOGGER", "user_logger"]

USER_LOGGER = "ganga_async.user"
"""The stdlib logger of Ganga's console lines."""

EVENT_ATTR = "structlog_event"
_SECRET_KEYS = ("password", "token", "secret", "proxy_data")


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in event:
        if any(word in key.lower() for word in _SECRET_KEYS):
            event[key] = "[redacted]"
    return event


def _to_stdlib(logger: Any, __: str, event: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    message = str(event.get("event", ""))
    plain = getattr(logger, "name", "") == USER_LOGGER
    extras = "" if plain else " ".join(f"{k}={v}" for k, v in event.items() if k != "event")
    text = f"{message} {extras}" if extras else message
    return (text,), {"extra": {EVENT_ATTR: dict(event)}}


_BOUND: ContextVar[dict[str, Any]] = ContextVar("ganga_async_log_bound", default={})  # noqa: B039 (never mutated)


def _merge_bound(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in _BOUND.get().items():
        event.setdefault(key, value)
    return event


_PROCESSORS: list[Any] = [_merge_bound, _redact, _to_stdlib]


class _Logger:
    """A structlog logger over the stdlib logger ``name``, made when an event first passes
    that logger's level."""

    __slots__ = ("_stdlib", "_structured")

    def __init__(self, name: str) -> None:
        self._stdlib = logging.getLogger(name)
        self._structured: Any = None

    def _emit(self, level: int, method: str, event: str, values: dict[str, Any]) -> None:
        if not self._stdlib.isEnabledFor(level):
            return
        structured = self._structured
        if structured is None:
            import structlog

            structured = self._structured = structlog.wrap_logger(
                self._stdlib, processors=_PROCESSORS, wrapper_class=structlog.stdlib.BoundLogger,
                cache_logger_on_first_use=True)
        getattr(structured, method)(event, **values)

    def debug(self, event: str, **values: Any) -> None:
        self._emit(logging.DEBUG, "debug", event, values)

    def info(self, event: str, **values: Any) -> None:
        self._emit(logging.INFO, "info", event, values)

    def warning(self, event: str, **values: Any) -> None:
        self._emit(logging.WARNING, "warning", event, values)

    def error(self, event: str, **values: Any) -> None:
        self._emit(logging.ERROR, "error", event, values)


def get_logger(name: str) -> Any:
    """A structlog logger writing to the stdlib logger ``name`` (``debug``, ``info``,
    ``warning``, ``error``: an event and its key-value fields)."""
    return _Logger(name)


def user_logger() -> Any:
    """The logger of the console lines (:data:`USER_LOGGER`)."""
    return get_logger(USER_LOGGER)


@contextlib.contextmanager
def bound(**values: Any) -> Iterator[None]:
    """``with bound(job_id=3): ...`` adds ``job_id=3`` to every event logged inside (in this
    task and those it starts; an event's own field of the same name wins)."""
    token = _BOUND.set({**_BOUND.get(), **values})
    try:
        yield
    finally:
        _BOUND.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: the structured event plus level, logger and timestamp."""

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, EVENT_ATTR, None)
        data: dict[str, Any] = dict(event) if event else {"event": record.getMessage()}
        data["level"] = record.levelname.lower()
        data["logger"] = record.name
        data["timestamp"] = datetime.datetime.fromtimestamp(
            record.created, datetime.UTC).isoformat().replace("+00:00", "Z")
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)
