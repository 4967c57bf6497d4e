"""This interpreter's session: the engine the plain-Python interface calls, started on first
use in a daemon thread and closed at exit, and the configuration it shares."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal

from .._component import use_defaults
from .._exceptions import EngineClosedError, GangaAsyncError
from .._log import USER_LOGGER, get_logger
from .._portal_thread import PortalThread
from ..config import Config, load_config
from ..engine import Engine

__all__ = ["attach", "config", "run", "session", "Text"]

log = get_logger(__name__)

_CLOSE_TIMEOUT = 10.0
"""Seconds the interpreter waits at exit for the engine to flush and close."""

class _Session:
    """This interpreter's engine, running in a :class:`PortalThread` closed at exit, or the
    engine of the daemon this interpreter is part of (:func:`attach`)."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._engine: Engine | None = None
        self._thread: PortalThread[Engine] | None = None
        self._closed = False

    def open(self) -> tuple[BlockingPortal, Engine]:
        """The portal and the engine, started on first use (from any thread)."""
        with self._lock:
            if self._closed:
                raise EngineClosedError("the session has ended: the interpreter is exiting")
            failure = self._thread.failure if self._thread is not None else None
            if failure is not None:
                raise EngineClosedError(
                    f"the engine stopped after an error ({failure!r}); start a new Python session"
                ) from failure
            if self._portal is None or self._engine is None:
                _show_console_lines(self._config)
                self._thread = PortalThread(lambda: Engine(config=self._config),
                                            "ganga-async engine")
                atexit.register(self.close)
                self._portal, self._engine = self._thread.portal, self._thread.value
            return self._portal, self._engine

    def attach(self, portal: BlockingPortal, engine: Engine) -> None:
        """Use ``engine``, which its owner runs and ``portal`` reaches, instead of starting one."""
        with self._lock:
            if self._portal is not None:
                raise EngineClosedError("this interpreter already runs its own engine")
            self._portal, self._engine = portal, engine

    def close(self, timeout: float = _CLOSE_TIMEOUT) -> None:
        """Close the engine (flushing queued writes) and end its thread, waiting at most
        ``timeout`` seconds; later calls raise EngineClosedError."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None and not thread.close(timeout):
            log.warning("the engine did not close in time; recent status changes may be lost",
                        timeout=timeout)


class _Console(logging.Handler):
    """Ganga's console lines on the current stderr, at ``[Logging] console`` (read for each
    line, so a change at run time applies at once)."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self._config = config
        self.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))

    def filter(self, record: logging.LogRecord) -> bool:
        level = str(self._config["Logging"]["console"])
        return level != "OFF" and record.levelno >= logging.getLevelName(level)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def _show_console_lines(config: Config) -> None:
    """Print the library's console lines (submissions, status changes, preparing, ShareDirs)
    as Ganga does, unless the program configured logging itself (then they reach its handlers
    as any other record)."""
    logger = logging.getLogger(USER_LOGGER)
    if logging.getLogger().handlers or logging.getLogger("ganga_async").handlers or any(
            isinstance(h, _Console) for h in logger.handlers):
        return
    logger.addHandler(_Console(config))
    logger.setLevel(logging.DEBUG)


config: Config = load_config()
"""The session's configuration, shared with its engine: ``config["Local"]["max_concurrent"] = 4``
takes effect for the next job that reads it. ``[Configuration] gangadir`` is read once, when
the session starts."""

use_defaults(config.plugin_defaults)  # [defaults_<Plugin>] sections, as Ganga's

session = _Session(config)
"""The session of this interpreter."""

_T = TypeVar("_T")


def run(call: Callable[[Engine], Awaitable[_T]]) -> _T:
    """``await call(engine)`` in the session's engine thread; its result."""
    portal, engine = session.open()
    try:
        return portal.call(call, engine)
    except GangaAsyncError as error:
        # The user's error, not the frames of the portal and the engine thread that carried it.
        raise error.with_traceback(None) from None


def attach(portal: BlockingPortal, engine: Engine) -> None:
    """Make this interface use ``engine``, run by its owner and reached through ``portal``,
    instead of starting an engine of its own; the service daemon does this so that
    ``send_cmd`` code acts on the daemon's engine. Call it before the interface is first used;
    ``engine`` should have been built with :data:`config`."""
    session.attach(portal, engine)


class Text(str):
    """Text that IPython and Jupyter display as it is, not as a quoted string."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

