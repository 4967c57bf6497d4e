"""Where a running daemon keeps its dashboard's address and token, for ``ganga-async dashboard``.

``<gangadir>/service/dashboard.json`` (mode 0600, in the daemon's private directory) holds
``{"pid", "port", "url", "token"}``. The daemon writes it once the dashboard listens and removes
it when the dashboard stops; a file whose pid is not the running daemon's is stale.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._exceptions import ServiceError
from ..service._paths import ServicePaths

__all__ = ["DashboardState", "running_dashboard"]

EXTRA_HINT = "pip install 'ganga-async[dashboard]'"
"""What installs the dashboard's dependencies (Starlette and uvicorn)."""


class DashboardState:
    """The dashboard file of one gangadir's daemon."""

    def __init__(self, gangadir: Path) -> None:
        self.paths = ServicePaths(gangadir)
        self.path = self.paths.directory / "dashboard.json"

    def write(self, port: int, token: str) -> None:
        """Record the address and token (0600; never through a symbolic link)."""
        data = json.dumps({"pid": os.getpid(), "port": port, "url": url_of(port), "token": token})
        tmp = self.path.with_name(".dashboard.json.tmp")
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(data)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def read(self) -> dict[str, Any] | None:
        """The dashboard of the daemon running now, or None when no daemon runs or it serves
        no dashboard."""
        pid = self.paths.running_pid()
        if pid is None:
            return None
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("pid") != pid:
            return None
        return data


def url_of(port: int, token: str | None = None) -> str:
    """The dashboard's URL on loopback, with the token that logs a browser in when given."""
    return f"http://127.0.0.1:{port}/" + (f"?token={token}" if token else "")


def running_dashboard(gangadir: Path) -> dict[str, Any]:
    """The running daemon's dashboard; a one-line ServiceError when there is none."""
    state = DashboardState(gangadir)
    if state.paths.running_pid() is None:
        raise ServiceError(f"no ganga-async service runs for {gangadir}; start it with: "
                           "ganga-async service start --dashboard")
    found = state.read()
    if found is None:
        raise ServiceError(f"the service for {gangadir} serves no dashboard; restart it with: "
                           "ganga-async service stop && ganga-async service start --dashboard "
                           "(or set [Service] dashboard = true)")
    return found
