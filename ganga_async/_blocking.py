"""How sync methods of core objects reach an engine: ``app.prepare()`` in the plain-Python
interface.

The plain-Python interface installs a runner that calls the named :class:`~ganga_async.Engine`
method through its blocking portal. Without it (the async API) such a method raises an error
that names the async call to use instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._exceptions import EngineClosedError

__all__ = ["install", "call"]

Runner = Callable[..., Any]

_runner: Runner | None = None


def install(runner: Runner) -> None:
    """Make :func:`call` use ``runner(method_name, *args, **kwargs)``."""
    global _runner
    _runner = runner


def call(method: str, *args: Any, **kwargs: Any) -> Any:
    """Run ``Engine.<method>(*args, **kwargs)`` through the installed runner and return its result."""
    if _runner is None:
        raise EngineClosedError(
            f"{method}() needs an engine: in async code call `await engine.{method}(...)`; in a "
            "script or notebook use the plain-Python interface (from ganga_async.gpi import *)"
        )
    return _runner(method, *args, **kwargs)
