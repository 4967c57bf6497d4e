"""The command line with a real daemon running: every command that opens an engine is answered
by the daemon instead, with the output and exit codes of the in-process command, and the
progress bar of ``--wait`` and ``wait`` is fed by the daemon's events.

Whether a command opened an engine of its own is read from its ``-vv`` log: an engine logs
``engine started`` when it opens, and the commands run in-process are checked to log it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from _service_helpers import cli as run
from _service_helpers import log_events, start_daemon, stop_daemon
from test_cli_shareref import prepared_job_in_the_box

from ganga_async import cli
from ganga_async.commands import COMMANDS, SERVED
from ganga_async.service import GangaService
from ganga_async.service._paths import ServicePaths

pytestmark = [pytest.mark.slow]

TERMINAL = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "100"}
"""Makes rich treat the captured stderr as a terminal, so that the bar is drawn."""


def engine_opened(stderr: str) -> bool:
    """Whether a ``-vv`` command's own process opened an engine."""
    return "ganga_async.engine: engine started" in stderr or '"engine started"' in stderr


def test_every_command_that_opens_an_engine_is_served() -> None:
    commands = cli.parser().commands
    assert commands.choices is not None
    assert set(commands.choices) - SERVED == {"credentials", "service", "dashboard", "completion",
                                              "__complete"}
    assert SERVED == set(COMMANDS)


SHAREREF_COMMANDS = [
    ("shareref",), ("--json", "shareref"), ("shareref", "--json"),
    ("shareref", "ls", "{name}"), ("--json", "shareref", "ls", "{name}"),
    ("shareref", "lookup", "{name}"), ("--json", "shareref", "lookup", "{name}"),
    ("shareref", "rebuild", "--no-unprepare"), ("--json", "shareref", "rebuild"),
    ("box",), ("--json", "box"), ("tasks",), ("--json", "tasks"), ("tasks", "show", "9"),
    ("shareref", "ls", "../.."), ("shareref", "lookup", "conf-0f6c3b8e-1d2a-4c5b-9e8f-7a6b5c4d3e2f"),
]


def test_shareref_and_box_answer_from_the_daemon_exactly_as_in_process(
    paths: ServicePaths, tmp_path: Path,
) -> None:
    name = prepared_job_in_the_box(tmp_path)
    commands = [[word.format(name=name) for word in command] for command in SHAREREF_COMMANDS]

    def outcomes() -> list[tuple[int, str, list[str]]]:
        """Exit code, stdout and error lines of every command, each checked for its engine."""
        results = []
        for command in commands:
            done = run("-vv", *command)
            results.append((done.returncode, done.stdout,
                            [line for line in done.stderr.splitlines() if line.startswith("error:")]))
            assert engine_opened(done.stderr) == (paths.running_pid() is None), (command, done.stderr)
        return results

    in_process = outcomes()
    assert in_process[0][1].splitlines()[2].split("|")[2].strip() == "2"
    assert in_process[-2][0] == 2 and "is not a ShareDir name" in in_process[-2][2][0]
    assert in_process[-1][1].startswith("0 item(s) found")
    start_daemon()
    try:
        assert outcomes() == in_process

        gs = GangaService(paths.gangadir, autostart=False)
        try:
            assert gs.send_cmd(f"print(jobs(0).application.is_prepared.name == {name!r})") == "True\n"
            unprepared = run("shareref", "lookup", name, "--unprepare")
            assert unprepared.returncode == 0, unprepared.stderr
            assert unprepared.stdout.endswith(f"2 item(s) found referencing ShareDir {name}; unprepared\n")
            assert gs.send_cmd("print(jobs(0).application.is_prepared)") == "None\n", \
                "the daemon's own job was unprepared: no second engine did it behind its back"
        finally:
            gs.close()
        assert json.loads(run("--json", "box").stdout)[0]["sharedir"] is None
    finally:
        stop_daemon(paths)


# -- the progress bar ---------------------------------------------------------------------------


def split_job(tmp_path: Path) -> Path:
    """Four subjobs one after the other, half a second each; subjob 1 fails."""
    runs = ", ".join(f'["-c", "sleep 0.5{"; exit 3" if i == 1 else ""}"]' for i in range(4))
    path = tmp_path / "split.toml"
    path.write_text(f'[application]\ntype = "Executable"\nexe = "/bin/sh"\nargs = []\n\n'
                    f'[backend]\ntype = "Local"\nmax_concurrent = 1\n\n'
                    f'[splitter]\ntype = "ArgSplitter"\nargs = [{runs}]\n')
    return path


def bar_states(stderr: str) -> list[tuple[int, int]]:
    """The (final subjobs, failed) the bar showed, in order, repeats left out."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stderr)
    states: list[tuple[int, int]] = []
    for done, failed in re.findall(r"(\d+)/4 +(\d+) failed", text):
        state = (int(done), int(failed))
        if not states or states[-1] != state:
            states.append(state)
    return states


def failed_report(job_id: int, gangadir: Path) -> str:
    outputs = next(gangadir.glob(f"workspace/*/{job_id}")) / "<subjob>"
    return f"  completed  3\n  failed     1\n  outputs    {outputs}\n"


@pytest.fixture(params=["in-process", "daemon"])
def where(request: pytest.FixtureRequest, paths: ServicePaths) -> Iterator[str]:
    """The bar's two ways: an engine in the command's process, or a running daemon."""
    if request.param == "daemon":
        start_daemon()
    try:
        yield request.param
    finally:
        stop_daemon(paths)


def test_the_bar_counts_subjobs_as_their_events_come_and_the_report_is_the_same(
    where: str, paths: ServicePaths, tmp_path: Path,
) -> None:
    submitted = run("-vv", "submit", str(split_job(tmp_path)), "--wait", env=TERMINAL)
    assert submitted.returncode == 1, submitted.stderr
    assert engine_opened(submitted.stderr) == (where == "in-process")
    head, rest = submitted.stdout.split("\n", 1)
    assert re.fullmatch(r"job 0 failed in \d+\.\d s", head) and rest == failed_report(0, paths.gangadir)
    states = bar_states(submitted.stderr)
    assert states[0] == (0, 0) and states[-1] == (4, 1), states
    assert states == sorted(states) and len(states) > 2, f"no subjob counted as it ended: {states}"

    resubmitted = run("resubmit", "0", "--wait", env=TERMINAL)
    assert resubmitted.returncode == 1, resubmitted.stderr
    assert resubmitted.stdout.split("\n", 1)[1] == failed_report(0, paths.gangadir)
    states = bar_states(resubmitted.stderr)
    assert (states[0], states[-1]) == ((4, 1), (4, 1)) and (3, 0) in states, states

    waited = run("wait", "0", env=TERMINAL)
    assert (waited.returncode, waited.stdout) == (1, "job 0 failed\n" + failed_report(0, paths.gangadir))
    assert bar_states(waited.stderr) == [(4, 1)]


def test_a_bar_the_daemon_drops_from_its_events_goes_on_from_the_jobs_counts(
    paths: ServicePaths, tmp_path: Path,
) -> None:
    # A backlog of 20 events: the 300 subjobs' first transitions (all at once) overflow it.
    path = Path(os.environ["GANGA_ASYNC_CONFIG"])
    path.write_text(path.read_text() + "event_backlog = 20\n")
    job = tmp_path / "many.toml"
    args = ", ".join(f'["{i}"]' for i in range(300))
    job.write_text('[application]\ntype = "Executable"\nexe = "/bin/true"\n\n'
                   '[backend]\ntype = "Local"\nmax_concurrent = 16\n\n[splitter]\n'
                   f'type = "ArgSplitter"\nargs = [{args}]\n')
    start_daemon()
    try:
        submitted = run("submit", str(job), "--wait", env=TERMINAL, timeout=120)
    finally:
        stop_daemon(paths)
    assert submitted.returncode == 0, submitted.stderr
    assert "completed  300" in submitted.stdout
    assert "dropped" not in submitted.stderr and "error" not in submitted.stderr
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", submitted.stderr)
    assert "300/300" in text
    assert any(e["event"] == "dropped a client that fell behind on events" for e in log_events(paths))


def test_no_bar_with_json_output_json_logs_or_off_a_terminal(where: str, tmp_path: Path) -> None:
    path = tmp_path / "echo.toml"
    path.write_text('[application]\ntype = "Executable"\nexe = "/bin/echo"\nargs = ["hi"]\n')
    assert run("submit", str(path), "--wait").returncode == 0
    for args, env in ((["--json", "wait", "0"], TERMINAL), (["--log-json", "wait", "0"], TERMINAL),
                      (["wait", "0"], None)):
        waited = run(*args, env=env)
        assert waited.returncode == 0, waited.stderr
        assert "1/1" not in waited.stderr and "\x1b[" not in waited.stderr, (args, waited.stderr)
    assert json.loads(run("--json", "wait", "0").stdout)["status"] == "completed"


def test_demo_runs_in_the_daemon_when_one_runs_with_the_same_report(
    where: str, paths: ServicePaths,
) -> None:
    demo = run("-vv", "demo", "--subjobs", "20", env=TERMINAL)
    assert demo.returncode == 0, demo.stderr
    assert engine_opened(demo.stderr) == (where == "in-process")
    lines = demo.stdout.splitlines()
    assert lines[0] == "job 0: 20 subjobs of /bin/echo on Local(max_concurrent=8)"
    assert re.fullmatch(r"job 0 completed in \d+\.\d s", lines[1]) and lines[2] == "  completed  20"
    assert lines[-2] == "  stdout of 0.0: hello from subjob 0"
    assert "20/20" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", demo.stderr), "no bar drawn"
    report = json.loads(run("--json", "demo", "--subjobs", "3").stdout)
    assert (report["id"], report["status"], report["subjob_counts"]) == (1, "completed", {"completed": 3})
    assert report["sample"] == {"id": "1.0", "stdout": "hello from subjob 0"}
