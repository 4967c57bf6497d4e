"""Shared fixtures: every test gets its own gangadir and an empty user configuration; the
service's tests get a daemon."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _service_helpers import running_daemon, service_paths

from ganga_async import Config, load_config
from ganga_async.service._paths import ServicePaths


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C works in the processes the tests start, however the suite itself was started.

    A shell without job control starts a background command (``make test &``, ``nohup ... &``)
    with SIGINT ignored, and an ignored signal stays ignored in every process started after it:
    the tests that press Ctrl-C in a client (``jobs --watch``, ``send_cmd``) would wait for a
    process that cannot hear it. Python's own handler is put back here; the processes started
    from now on then begin with SIGINT at its default, as from a terminal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def anyio_backend() -> str:
    """aiosqlite needs asyncio, so the engine only runs on anyio's asyncio backend."""
    return "asyncio"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the user's own configuration and gangadir out of every test. Commands open an
    engine of their own unless a test starts a daemon (or turns autostart back on): a daemon
    started behind a test's back would outlive it."""
    user_config = tmp_path / "user-config.toml"
    user_config.write_text("")
    monkeypatch.setenv("GANGA_ASYNC_CONFIG", str(user_config))
    monkeypatch.setenv("GANGA_ASYNC_GANGADIR", str(tmp_path / "gangadir"))
    for name in list(__import__("os").environ):
        if name.startswith("GANGA_ASYNC_") and name not in ("GANGA_ASYNC_CONFIG", "GANGA_ASYNC_GANGADIR"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GANGA_ASYNC_SERVICE_AUTOSTART", "false")
    yield


@pytest.fixture
def gangadir(tmp_path: Path) -> Path:
    return tmp_path / "gangadir"


@pytest.fixture
def config() -> Config:
    cfg = load_config()
    cfg["Monitoring"]["poll_interval"] = 0.5
    cfg["Repository"]["flush_interval"] = 0.02
    return cfg


@pytest.fixture
def paths(gangadir: Path) -> ServicePaths:
    """The service files of the test's gangadir, its daemons configured by
    :func:`_service_helpers.service_paths` (a module overrides this fixture to add configuration)."""
    return service_paths(gangadir)


@pytest.fixture
def daemon(paths: ServicePaths) -> Iterator[ServicePaths]:
    """A daemon started with ``service start``, stopped (or killed) afterwards."""
    with running_daemon(paths):
        yield paths


@pytest.fixture
def other_user() -> Iterator[str]:
    """A throwaway system user, removed afterwards (root makes it with useradd; elsewhere the
    test skips, except under CI=true where it fails: CI runs as root)."""
    reason = None
    if os.geteuid() != 0:
        reason = "creating another user needs root"
    elif not Path("/usr/sbin/useradd").exists():
        reason = "useradd is not installed"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the foreign-uid test cannot run in CI: {reason}")
        pytest.skip(reason)
    name = f"gasvc{os.getpid() % 100000}"
    subprocess.run(["/usr/sbin/useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["/usr/sbin/userdel", name], check=False, capture_output=True)
