"""What the tests running real daemons share: the command line in a subprocess, the daemon's
configuration, starting and stopping it (the ``paths`` and ``daemon`` fixtures in conftest.py
use these)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ganga_async.service._paths import ServicePaths

SERVICE_CONFIG = ("[Monitoring]\npoll_interval = 0.3\n\n[Repository]\nflush_interval = 0.02\n\n"
                  "[Service]\ninterrupt_grace = 0.5\nstop_timeout = 5.0\n")
"""Fast monitoring and a short interruption grace, for every daemon of the tests."""


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``ganga-async ARGS`` (with ``env`` added to the environment) and capture its output."""
    return subprocess.run([sys.executable, "-m", "ganga_async.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def service_paths(gangadir: Path, extra_config: str = "") -> ServicePaths:
    """The service files of ``gangadir``, once the user configuration is :data:`SERVICE_CONFIG`
    followed by ``extra_config``."""
    Path(os.environ["GANGA_ASYNC_CONFIG"]).write_text(SERVICE_CONFIG + extra_config)
    return ServicePaths(gangadir.absolute())


def start_daemon() -> None:
    """Start the test's daemon with ``service start``."""
    started = cli("service", "start")
    assert started.returncode == 0, started.stderr + started.stdout


def stop_daemon(paths: ServicePaths) -> None:
    """Stop the daemon with ``service stop`` if one runs, or kill it if that fails."""
    pid = paths.running_pid()
    if pid is None:
        return
    stopped = cli("service", "stop", timeout=30)
    if stopped.returncode != 0 and paths.running_pid() == pid:
        os.kill(pid, signal.SIGKILL)


@contextmanager
def running_daemon(paths: ServicePaths) -> Iterator[ServicePaths]:
    """A daemon started with ``service start``, stopped (or killed) afterwards."""
    start_daemon()
    try:
        yield paths
    finally:
        stop_daemon(paths)


def log_events(paths: ServicePaths) -> list[dict[str, Any]]:
    """The daemon's log, one dict per line."""
    return [json.loads(line) for line in paths.log.read_text().splitlines()]
