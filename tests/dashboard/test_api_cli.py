"""``ganga-async dashboard``, ``service status`` and ``service start --dashboard`` around a real
daemon; the command line and the GPI load no web framework."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _service_helpers import cli
from conftest import DashboardDaemon, dashboard_cli


def test_dashboard_prints_the_url_with_its_token_and_status_without_it(
        api_daemon: DashboardDaemon) -> None:
    url, token, gangadir = api_daemon
    printed = dashboard_cli(gangadir, "dashboard")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == f"{url}/?token={token}"
    assert json.loads(dashboard_cli(gangadir, "dashboard", "--json").stdout)["url"] == f"{url}/?token={token}"
    status = dashboard_cli(gangadir, "service", "status")
    assert status.returncode == 0 and f"dashboard: {url}/" in status.stdout
    assert token not in status.stdout


def test_dashboard_open_hands_the_url_to_the_browser(api_daemon: DashboardDaemon, tmp_path: Path) -> None:
    url, token, gangadir = api_daemon
    opened = tmp_path / "opened"
    browser = f"{sys.executable} -c 'import sys; open(sys.argv[1], \"w\").write(sys.argv[2])' {opened} %s"
    done = dashboard_cli(gangadir, "dashboard", "--open", env={"BROWSER": browser})
    assert done.returncode == 0, done.stderr
    assert opened.read_text() == f"{url}/?token={token}"


def test_dashboard_without_a_daemon_is_one_line_saying_how_to_start_one() -> None:
    done = cli("dashboard")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "service start --dashboard" in done.stderr


def test_without_starlette_the_dashboard_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['starlette'] = None; from ganga_async.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "--gangadir", str(tmp_path / "g"), "service", "start",
                           "--dashboard"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "pip install 'ganga-async[dashboard]'" in done.stderr
    assert not (tmp_path / "g" / "service" / "daemon.pid").exists()


def test_the_command_line_and_the_gpi_do_not_import_the_web_framework() -> None:
    code = ("import sys, ganga_async.cli, ganga_async.gpi, ganga_async.commands.service; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr
