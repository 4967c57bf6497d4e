"""A real daemon serving the dashboard, for the tests of a module (``dashboard_daemon``) or for
all the API's tests (``api_daemon``).

Each yields ``(url, token, gangadir)``: the dashboard's base URL
(``http://127.0.0.1:PORT``, no token), its token and the daemon's gangadir. The daemon runs
real Local jobs; submit them with :func:`dashboard_cli` (the gangadir's own command line: the
per-test environment of tests/conftest.py points elsewhere). It is stopped through its
socket (``service stop``), or killed by pid if that fails.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest
from _service_helpers import SERVICE_CONFIG

from ganga_async.service._paths import ServicePaths

DASHBOARD_CONFIG = ("[Service]\ndashboard_coalesce = 0.2\ndashboard_client_buffer = 64\n"
                    "dashboard_event_rate = 100000\n")
"""Quick live updates, a small queue per page (a page that stops reading is dropped soon) and
no rate limit on events, for the tests' daemons."""


class DashboardDaemon(NamedTuple):
    url: str
    token: str
    gangadir: Path


def _env(gangadir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANGA_ASYNC_")}
    env.update(GANGA_ASYNC_GANGADIR=str(gangadir), GANGA_ASYNC_CONFIG=str(gangadir.parent / "config.toml"),
               GANGA_ASYNC_SERVICE_AUTOSTART="false")
    return env


def dashboard_cli(gangadir: Path, *args: str, timeout: float = 60,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``ganga-async ARGS`` on the dashboard daemon's gangadir (its daemon answers), with
    ``env`` added to the environment."""
    return subprocess.run([sys.executable, "-m", "ganga_async.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**_env(gangadir), **(env or {})})


@contextmanager
def running_dashboard(root: Path, extra_config: str = "",
                      env: dict[str, str] | None = None) -> Iterator[DashboardDaemon]:
    """A daemon serving the dashboard on ``root/gangadir``, configured with
    :data:`DASHBOARD_CONFIG` and ``extra_config``, its environment with ``env``."""
    gangadir = root / "gangadir"
    gangadir.mkdir()
    (root / "config.toml").write_text(
        SERVICE_CONFIG.replace("[Service]\n", "[Service]\n" + DASHBOARD_CONFIG.split("\n", 1)[1])
        + extra_config)
    paths = ServicePaths(gangadir)
    started = dashboard_cli(gangadir, "service", "start", "--dashboard", env=env)
    assert started.returncode == 0, started.stderr + started.stdout
    try:
        state = json.loads((paths.directory / "dashboard.json").read_text())
        yield DashboardDaemon(f"http://127.0.0.1:{state['port']}", state["token"], gangadir)
    finally:
        _stop(paths)


@pytest.fixture(scope="module")
def dashboard_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardDaemon]:
    """A daemon started with ``service start --dashboard`` on a new gangadir, for the tests of
    one module."""
    with running_dashboard(tmp_path_factory.mktemp("dashboard")) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def api_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardDaemon]:
    """The same, shared by the API's tests (tests/dashboard/test_api*.py): each looks only at
    the jobs it submitted."""
    with running_dashboard(tmp_path_factory.mktemp("api")) as daemon:
        yield daemon


def _stop(paths: ServicePaths) -> None:
    pid = paths.running_pid()
    if pid is None:
        return
    stopped = dashboard_cli(paths.gangadir, "service", "stop", timeout=30)
    if stopped.returncode != 0 and paths.running_pid() == pid:
        os.kill(pid, signal.SIGKILL)
