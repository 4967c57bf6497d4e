"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against a real
daemon serving the dashboard and running real Local jobs.

Chromium comes from ``scripts/browser-up.sh`` (Debian's package; Playwright never downloads a
browser here). Without it the tests skip, saying why, except with ``CI=true``, where they fail.
Every test saves a screenshot of the pages it saw under its temporary directory, and also under
``$CI_ARTIFACTS/dashboard/`` when that variable is set (``$DASHBOARD_SCREENSHOTS``, when set, is
one more directory: how docs/img/dashboard-*.png are made).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DashboardDaemon, dashboard_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
"""Headless on a closed network, as root: no sandbox (root), nothing fetched in the background."""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the dashboard's browser tests cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, installed by scripts/browser-up.sh and launched by Playwright with a new
    profile of its own (Playwright's ``launch`` makes an empty user-data-dir and removes it).

    Module-scoped, never longer: Playwright's sync API keeps an asyncio loop marked as running in
    the main thread while it is open, and every anyio test after it would fail ("Cannot run the
    event loop while another loop is running")."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright's Python package is missing: pip install -e '.[test]'")
    up = subprocess.run([str(ROOT / "scripts" / "browser-up.sh")], capture_output=True, text=True,
                        timeout=900)
    if up.returncode != 0:
        _unavailable(f"scripts/browser-up.sh could not provide {CHROMIUM}: "
                     f"{(up.stderr.strip().splitlines() or ['no output'])[-1]}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def dashboard(dashboard_daemon: DashboardDaemon) -> Dashboard:
    return Dashboard(dashboard_daemon)


class Dashboard:
    """The module's daemon serving the dashboard (tests/dashboard/conftest.py): its address,
    its token, and its gangadir's command line."""

    def __init__(self, daemon: DashboardDaemon) -> None:
        self.base = daemon.url
        self.token = daemon.token
        self.gangadir = daemon.gangadir

    def url(self, path: str = "/") -> str:
        """``path`` with the token, as ``ganga-async dashboard`` prints the address."""
        return f"{self.base}{path}?token={self.token}"

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return dashboard_cli(self.gangadir, *args, timeout=timeout)

    def submit(self, tmp_path: Path, name: str, exe: str, split: list[list[str]],
               args: list[str] | None = None, max_concurrent: int = 0) -> int:
        """Submit an Executable job on Local, one subjob per list of ``split`` (appended to
        ``args`` when given); its id."""
        path = tmp_path / "job.toml"
        path.write_text(  # TOML's arrays of strings are written as JSON's
            f'name = "{name}"\n[application]\ntype = "Executable"\nexe = "{exe}"\n'
            + (f"args = {json.dumps(args)}\n" if args else "")
            + f'[backend]\ntype = "Local"\nmax_concurrent = {max_concurrent}\n'
            + f'[splitter]\ntype = "ArgSplitter"\nappend = {"true" if args else "false"}\n'
            + f"args = {json.dumps(split)}\n")
        submitted = self.cli("--json", "submit", str(path))
        assert submitted.returncode == 0, submitted.stderr
        return int(json.loads(submitted.stdout)["id"])


@pytest.fixture
def page(browser: Any, dashboard: Dashboard, tmp_path: Path) -> Iterator[Any]:
    """A page of a fresh browser context, logged in with the token (the cookie it sets)."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    response = page.goto(dashboard.url("/"))
    assert response is not None and response.ok, response and response.status
    assert "token=" not in page.url  # the token went into a cookie, out of the address bar
    try:
        yield page
        assert errors == [], f"JavaScript errors on the page: {errors}"
    finally:
        context.close()


def screenshot(page: Any, name: str, tmp_path: Path, *, full_page: bool = True) -> Path:
    """``dashboard-NAME.png`` of the page, kept as described in the module's docstring."""
    path = tmp_path / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    for variable, sub in (("CI_ARTIFACTS", "dashboard"), ("DASHBOARD_SCREENSHOTS", "")):
        if os.environ.get(variable):
            target = Path(os.environ[variable]) / sub
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / path.name)
    return path


def counted(page: Any, selector: str) -> str:
    return str(page.locator(selector).first.text_content() or "")


def test_the_jobs_page_counts_a_1000_subjob_job_to_completion_without_a_reload(
        page: Any, dashboard: Dashboard, tmp_path: Path) -> None:
    page.wait_for_selector('.live[data-state="live"]')  # the stream is open
    page.evaluate("window.sameDocument = true")
    job = dashboard.submit(tmp_path, "thousand", "/bin/true", [[str(i)] for i in range(1000)],
                           max_concurrent=8)
    row = f'#jobs tr[data-job-id="{job}"]'
    page.wait_for_selector(row)
    page.wait_for_function(
        """(row) => {
            const cell = document.querySelector(`${row} [data-count="completed"]`);
            return cell !== null && cell.textContent === "1000";
        }""", arg=row, timeout=60_000, polling=100)
    assert page.evaluate("window.sameDocument") is True  # live updates, not a reload
    assert counted(page, f"{row} td.job-status") == "completed"
    assert counted(page, f"{row} td.num:nth-child(6)") == "1000"
    screenshot(page, "jobs", tmp_path)

    page.click(f"{row} a")
    page.wait_for_selector('#legend [data-cells="completed"]')
    assert counted(page, '#legend [data-cells="completed"]') == "1000"
    page.wait_for_selector("#timeline .uplot")
    assert page.locator("#subjobs tbody tr").count() == 100
    assert counted(page, "#page") == "1–100 of 1000"
    assert "(1000 in all)" in counted(page, '#description [data-field="splitter"]')
    screenshot(page, "job-1000", tmp_path, full_page=False)


def test_a_failing_subjob_shows_its_reason_and_its_stderr_on_the_job_page(
        page: Any, dashboard: Dashboard, tmp_path: Path) -> None:
    # the pause: `submit` returns before the subjob fails (a job already failed when it
    # returns is reported as failed at submission)
    script = ('sleep 1; echo "subjob $0 says hello"; '
              'if [ "$0" = 2 ]; then echo "disk full in subjob $0" >&2; exit 3; fi')
    job = dashboard.submit(tmp_path, "one-fails", "/bin/sh", [["0"], ["1"], ["2"], ["3"]],
                           args=["-c", script])
    waited = dashboard.cli("wait", str(job), timeout=60)
    assert waited.returncode == 1, waited.stderr  # 1: the job ended failed
    page.goto(f"{dashboard.base}/job/{job}")
    page.wait_for_selector("#reasons tbody tr")
    reason = page.locator("#reasons tbody tr").first
    shown = (reason.locator("td.reason").text_content() or "").strip()
    assert "3" in shown  # the exit code the subjob ended with
    assert (reason.locator("td.num").text_content() or "").strip() == "1"
    assert counted(page, '#legend [data-cells="failed"]') == "1"
    assert counted(page, '#legend [data-cells="completed"]') == "3"

    reason.locator("a").click()  # the example subjob: its stderr in the output panel
    page.wait_for_function("document.getElementById('tail').textContent.includes('disk full in subjob 2')")
    assert counted(page, "#output-fqid") == f"{job}.2 (stderr)"
    page.select_option("#output-form select[name=file]", "stdout")
    page.click("#output-form button[type=submit]")
    page.wait_for_function("document.getElementById('tail').textContent.includes('subjob 2 says hello')")
    page.select_option("#subjob-filters select[name=status]", "failed")
    page.wait_for_function("document.querySelectorAll('#subjobs tbody tr').length === 1")
    assert page.locator("#subjobs tbody tr").first.get_attribute("data-index") == "2"
    page.select_option("#output-form select[name=file]", "stderr")
    page.click("#output-form button[type=submit]")
    page.wait_for_function("document.getElementById('tail').textContent.includes('disk full in subjob 2')")
    screenshot(page, "job", tmp_path)

    page.click("nav a[href='/events']")
    page.wait_for_selector(f"#events tbody tr[data-type=status] a[href='/job/{job}']")
    screenshot(page, "events", tmp_path, full_page=False)
    page.click("nav a[href='/credentials']")
    page.wait_for_selector("#credentials tbody tr, #empty:not([hidden])", state="attached")
    screenshot(page, "credentials", tmp_path)


def test_kill_from_the_job_page_asks_first_and_the_job_becomes_killed(
        page: Any, dashboard: Dashboard, tmp_path: Path) -> None:
    job = dashboard.submit(tmp_path, "sleepers", "/bin/sleep", [["60"], ["60"]], max_concurrent=2)
    page.goto(f"{dashboard.base}/job/{job}")
    page.wait_for_selector('#status [data-status="running"]', timeout=30_000)  # both subjobs run
    page.click("button[data-action=kill]")
    dialog = page.locator("dialog#confirm")
    assert dialog.is_visible()
    assert f"Kill job {job}" in (dialog.text_content() or "")
    page.click("dialog#confirm button[value=no]")  # cancelled: nothing happens
    assert not dialog.is_visible()
    page.click("button[data-action=kill]")
    page.click("dialog#confirm button[value=yes]")
    page.wait_for_selector('#status [data-status="killed"]', timeout=30_000)
    assert "killed" in counted(page, "#counts")
    shown = json.loads(dashboard.cli("--json", "show", str(job)).stdout)
    assert shown["status"] == "killed"


def test_a_page_without_the_token_is_refused(browser: Any, dashboard: Dashboard, tmp_path: Path) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        for path in ("/", "/job/0", "/events", "/static/js/common.js", "/api/jobs"):
            response = page.goto(dashboard.base + path)
            assert response is not None and response.status == 403, path
            text = (page.text_content("body") or "").strip()
            assert text and "\n" not in text, text  # one line saying why
        response = page.goto(f"{dashboard.base}/?token=not-the-token")
        assert response is not None and response.status == 403
        screenshot(page, "refused", tmp_path, full_page=False)
        assert context.cookies() == []
    finally:
        context.close()
