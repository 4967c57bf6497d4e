"""Many ids at once, as squeue and condor_q users write them: ``kill 3 4 7-9``, subjob ids and
ranges, ``resubmit --status killed,failed``, ``jobs --name --last --status`` and ``--watch``.
Through the installed ``ganga-async`` entry point, with the daemon the commands start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _service_helpers import stop_daemon
from test_cli_conventions import GANGA_ASYNC, complete_with_bash, job_file, run

from ganga_async import GangaAsyncError
from ganga_async.commands.ids import expand_ids
from ganga_async.service._paths import ServicePaths

pytestmark = pytest.mark.slow


def test_ids_ranges_subjob_ranges_and_commas_expand_in_order_once() -> None:
    assert expand_ids(["3", "7-9", "4.1-2", "3", "12,13.0"]) == [
        "3", "7", "8", "9", "4.1", "4.2", "12", "13.0"]


@pytest.mark.parametrize("word", ["x", "3-", "9-7", "3.", "1-2.3", "-1", "3.5-4"])
def test_a_word_that_is_no_id_is_an_error_naming_it(word: str) -> None:
    with pytest.raises(GangaAsyncError, match=f"{word!r} is (not a job id|an empty range)"):
        expand_ids([word])


@pytest.fixture
def live(paths: ServicePaths, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServicePaths]:
    """Commands start the daemon (fast kills: it owns the Local runner); stopped at the end."""
    paths.gangadir.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("GANGA_ASYNC_SERVICE_AUTOSTART", "true")
    Path(os.environ["GANGA_ASYNC_CONFIG"]).write_text(
        "[Monitoring]\npoll_interval = 0.3\n\n[Local]\nkill_grace = 1.0\n")
    try:
        yield paths
    finally:
        stop_daemon(paths)


def submit(path: Path) -> int:
    result = run("--json", "submit", str(path))
    assert result.returncode == 0, result.stderr
    return int(json.loads(result.stdout)["id"])


def statuses() -> dict[int, str]:
    return {row["id"]: row["status"] for row in json.loads(run("jobs", "--json").stdout)}


def test_kill_takes_ids_and_ranges_and_reports_an_unknown_one(tmp_path: Path, live: ServicePaths
                                                              ) -> None:
    sleeper = job_file(tmp_path, 'exe = "sleep"\nargs = ["30"]')
    a, b, c, d = ids = [submit(sleeper) for _ in range(4)]
    assert ids == list(range(a, a + 4))
    started = time.monotonic()
    killed = run("kill", str(a), f"{c}-{d}", "42")
    assert time.monotonic() - started < 10
    assert killed.returncode == 2
    assert killed.stdout == f"job {a} killed\njob {c} killed\njob {d} killed\n"
    assert killed.stderr.startswith("error: no job 42")
    now = statuses()
    assert now.pop(b) in ("submitted", "running")
    assert now == {a: "killed", c: "killed", d: "killed"}
    assert json.loads(run("kill", str(b), "--json").stdout) == {"id": str(b), "status": "killed"}
    assert complete_with_bash(["kill", str(a), ""]) == sorted(str(i) for i in ids)


def test_resubmit_takes_the_statuses_to_run_again_and_says_what_else_there_is(
        tmp_path: Path, live: ServicePaths) -> None:
    args = ", ".join(f'["{i}"]' for i in range(20, 23))
    split = job_file(tmp_path, f'exe = "sleep"\nargs = []\n\n[splitter]\ntype = "ArgSplitter"\n'
                               f'args = [{args}]\n')
    first, second = submit(split), submit(split)
    assert run("kill", str(first), str(second)).returncode == 0
    nothing = run("resubmit", str(first))
    assert nothing.returncode == 2
    assert nothing.stderr.startswith(f"error: job {first} has nothing in failed to resubmit")
    assert f"(its subjobs: 3 killed; e.g. ganga-async resubmit {first} --status killed)" in nothing.stderr
    again = run("resubmit", f"{first}-{second}", "--status", "killed,failed")
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"{first}\n{second}\n"
    assert set(statuses().values()) <= {"submitted", "running"}
    assert run("kill", f"{first}-{second}").returncode == 0


def test_remove_takes_ranges(tmp_path: Path, live: ServicePaths) -> None:
    echo = job_file(tmp_path, 'exe = "/bin/echo"')
    a, b, c, d = (submit(echo) for _ in range(4))
    removed = run("remove", f"{a}-{b}", str(d))
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"job {a} removed\njob {b} removed\njob {d} removed\n"
    assert list(statuses()) == [c]


def test_jobs_filters_by_name_pattern_last_and_several_statuses(tmp_path: Path,
                                                                live: ServicePaths) -> None:
    for name, exe in [("sim-1", "/bin/true"), ("sim-2", "/bin/false"), ("reco-1", "/bin/true"),
                      ("sim-3", "/bin/true")]:
        path = job_file(tmp_path, f'exe = "{exe}"', f'name = "{name}"', name=f"{name}.toml")
        assert run("submit", str(path), "--wait").returncode in (0, 1)
    sim1, sim2, reco1, sim3 = sorted(statuses())

    def ids(*args: str) -> list[int]:
        result = run("jobs", "--json", *args)
        assert result.returncode == 0, result.stderr
        return [row["id"] for row in json.loads(result.stdout)]

    assert ids("--name", "sim-*") == [sim1, sim2, sim3]
    assert ids("--last", "2") == [reco1, sim3]
    assert ids("--name", "sim-*", "--last", "2") == [sim2, sim3]
    assert ids("--status", "failed") == [sim2]
    assert ids("--status", "failed,completed", "--name", "sim-*") == [sim1, sim2, sim3]
    wrong = run("jobs", "--status", "finished")
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("error: unknown status 'finished'; valid statuses: new, ")


def test_jobs_watch_redraws_when_a_job_ends_until_ctrl_c(tmp_path: Path, live: ServicePaths) -> None:
    go = tmp_path / "go"
    submit(job_file(tmp_path, f'exe = "/bin/sh"\nargs = ["-c", "while [ ! -e {go} ]; do sleep 0.05; done"]'))
    with subprocess.Popen([GANGA_ASYNC, "jobs", "--watch", "30"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as watching:
        assert watching.stdout is not None
        deadline = time.monotonic() + 60
        seen: list[str] = []

        def until(word: str) -> None:
            while time.monotonic() < deadline:
                line = watching.stdout.readline()  # a redraw comes every 30 s at the latest
                assert line, "".join(seen)
                seen.append(line)
                if word in line:
                    return
            raise AssertionError("".join(seen))

        try:
            until(" running ")
        finally:
            go.touch()  # the job ends now; only its end can cause a redraw within 30 s
        ended = time.monotonic()
        until(" completed ")
        assert time.monotonic() - ended < 25
        watching.send_signal(signal.SIGINT)
        _, err = watching.communicate(timeout=30)
    assert watching.returncode == 0, err
    assert err == ""
    assert "".join(seen).count("every 30 s and at each change: ganga-async jobs") >= 2
