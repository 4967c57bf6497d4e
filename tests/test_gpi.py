"""The plain-Python interface, each scenario in a fresh interpreter (the GPI keeps one session
per process), with the gangadir and configuration the autouse fixture isolates."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence

import ganga_async

PROMPT_EXIT = 10.0
"""Seconds an interpreter may take to exit after its script's last line: enough for a loaded CI
machine (2 s was once exceeded there by 7 ms), far less than an exit that waits for a job the
script left running (they sleep 30 s) or hangs until the run's timeout."""


def run_gpi(script: str, *, timeout: float = 30, warnings: Sequence[str] = ("error",),
            **env: str) -> str:
    """Run ``script`` in a fresh interpreter with these warning filters; check that it exits
    at once, cleanly and silently."""
    code = textwrap.dedent(script) + "\nimport time; print('END', time.time())\n"
    options = [arg for action in warnings for arg in ("-W", action)]
    result = subprocess.run(
        [sys.executable, *options, "-c", code],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout,
    )
    exited = time.time()
    assert result.returncode == 0, result.stderr
    noise = [line for line in result.stderr.splitlines() if not line.startswith("INFO     ")]
    assert noise == [], "only the console lines (submitting, status changes) may reach stderr"
    *lines, last = result.stdout.splitlines()
    assert exited - float(last.removeprefix("END ")) < PROMPT_EXIT
    return "\n".join(lines)


def test_star_import_gives_exactly_the_documented_names() -> None:
    namespace: dict[str, object] = {}
    exec("from ganga_async.gpi import *", namespace)
    names = set(namespace) - {"__builtins__"}
    assert names == {"Job", "Executable", "ArgSplitter", "GenericSplitter", "FileSplitter",
                     "Local", "Slurm", "Condor", "Dask", "ShareDir", "jobs", "config", "shareref", "box",
                     "credential_store", "CredentialStore", "X509Proxy", "VomsProxy",
                     "KerberosTicket", "AFSToken", "BearerToken", "TextMerger", "CustomMerger",
                     "SmartMerger", "FileChecker", "CustomChecker", "Notifier", "WebhookNotifier", "Retry",
                     "CoreTask", "CoreTransform", "TaskChainInput", "tasks"}


def test_gpi_job_takes_the_same_keyword_arguments_as_the_core_job() -> None:
    from ganga_async import gpi

    gpi_params = dict(inspect.signature(gpi.Job).parameters)
    assert gpi_params.pop("prev_job").kind is inspect.Parameter.POSITIONAL_ONLY  # Job(j): a copy
    core_params = inspect.signature(ganga_async.Job).parameters
    assert [(p.name, p.kind, p.default) for p in gpi_params.values()] == [
        (p.name, p.kind, p.default) for p in core_params.values()
    ]


def test_default_job_is_registered_at_once_then_completes_saying_hello_world() -> None:
    out = run_gpi("""
        from ganga_async.gpi import *
        print(jobs)
        j = Job()
        print(j.id, j.status, len(jobs), jobs(j.id) is j)
        j.submit()
        j.wait(timeout=20)
        print(j.status, repr(j.peek("stdout")))
        print(jobs)
    """)
    empty, header, rule, first, second, title, header_1, rule_1, row = out.splitlines()
    assert (empty, rule) == ("Registry: jobs (0 jobs)", "-" * len(header))
    assert (first, second) == ("0 new 1 True", "completed 'Hello World\\n'")
    assert (title, rule_1) == ("Registry: jobs (1 job)", "-" * len(header_1))
    names = ["fqid", "status", "name", "subjobs", "application", "backend", "backend_id", "comment",
             "subjob status"]
    assert [cell.strip() for cell in header.split("|")] == names
    assert [cell.strip() for cell in header_1.split("|")] == names
    *cells, pid, comment, subjob_status = [cell.strip() for cell in row.split("|")]
    assert cells == ["0", "completed", "", "", "Executable", "Local"]
    assert pid.isdigit() and comment == "" and subjob_status == ""


def test_split_job_subjobs_are_reached_by_index_and_by_fqid_and_resubmit_only_the_failed() -> None:
    out = run_gpi("""
        from ganga_async.gpi import *
        args = [["-c", f"echo {i}; exit {1 if i == 3 else 0}"] for i in range(20)]
        j = Job(application=Executable(exe="/bin/sh"), splitter=ArgSplitter(args=args))
        j.submit()
        j.wait(timeout=30)
        print(j.status, len(j.subjobs), jobs(j.id) is j)
        print(jobs(j.id).subjobs[3].status, jobs(f"{j.id}.3").status, jobs(f"{j.id}.3").fqid)
        print(repr(jobs(f"{j.id}.4").peek("stdout")), [s.fqid for s in j.subjobs.select(status="failed")])
        j.resubmit()
        j.wait(timeout=30)
        print([s.info.submit_counter for s in j.subjobs][2:5])
        jobs(f"{j.id}.3").force_status("completed")
        print(j.status, j.subjobs[3].reason)
    """)
    assert out.splitlines() == [
        "failed 20 True",
        "failed failed 0.3",
        "'4\\n' ['0.3']",
        "[1, 2, 1]",
        "completed forced by the user",
    ]


def test_select_by_status_finds_the_job_whose_executable_exited_non_zero() -> None:
    out = run_gpi("""
        from ganga_async.gpi import *
        good = Job(name="good")
        bad = Job(name="bad", application=Executable(exe="/bin/sh", args=["-c", "exit 3"]))
        for j in (good, bad):
            j.submit()
        for j in jobs:
            j.wait(timeout=20)
        failed = jobs.select(status="failed")
        print([j.name for j in failed], failed[0] is bad, bad.exitcode, bad.reason)
        print([j.id for j in jobs.select(name="good")], [j.id for j in jobs.select(status="new")])
    """)
    assert out.splitlines() == ["['bad'] True 3 exit code 3", "[0] []"]


def test_wait_times_out_on_a_long_job_and_kill_ends_it() -> None:
    out = run_gpi("""
        from ganga_async import WaitTimeoutError
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="sleep", args=["30"]))
        j.submit()
        try:
            j.wait(timeout=0.2)
        except WaitTimeoutError as exc:
            print("timeout", exc)
        j.kill()
        j.wait(timeout=10)
        print(j.status)
    """)
    timeout, status = out.splitlines()
    assert timeout.startswith("timeout job 0 is still ")
    assert status == "killed"


def test_a_submitted_job_refuses_edits_but_its_comment_persists_across_sessions() -> None:
    out = run_gpi("""
        from ganga_async import JobStateError
        from ganga_async.gpi import *
        j = Job(name="first")
        j.submit()
        j.wait(timeout=20)
        for field, value in (("name", "second"), ("application", Executable())):
            try:
                setattr(j, field, value)
            except JobStateError:
                print("refused", field)
        j.comment = "checked by hand"
    """)
    assert out.splitlines() == ["refused name", "refused application"]
    out = run_gpi("""
        from ganga_async.gpi import *
        print(jobs(0).name, "/", jobs(0).comment)
    """)
    assert out == "first / checked by hand"


def test_config_changes_at_run_time_reach_the_next_job_and_wrong_options_raise() -> None:
    out = run_gpi("""
        from ganga_async import ConfigError
        from ganga_async.gpi import *

        def one_at_a_time():
            step = "date +%s.%N; sleep 0.3; date +%s.%N"
            j = Job(application=Executable(exe="/bin/sh", args=["-c", step]),
                    splitter=GenericSplitter(attribute="name", values=["a", "b", "c"]))
            j.submit()
            j.wait(timeout=20)
            spans = sorted(tuple(map(float, s.peek("stdout").split())) for s in j.subjobs)
            return all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))

        config["Local"]["max_concurrent"] = 1
        first = one_at_a_time()
        config["Local"]["max_concurrent"] = 3
        print(first, one_at_a_time())
        for section, option, value in (("Local", "max_concurent", 4), ("Local", "kill_grace", "x")):
            try:
                config[section][option] = value
            except ConfigError as exc:
                print("ConfigError", exc)
    """)
    status, wrong_name, wrong_type = out.splitlines()
    assert status == "True False"
    assert wrong_name.startswith("ConfigError [Local] has no option 'max_concurent'")
    assert wrong_type.startswith("ConfigError [Local] kill_grace")


def test_exit_leaves_a_running_job_running_and_the_next_session_sees_it_complete() -> None:
    out = run_gpi("""
        import time
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/sh", args=["-c", "sleep 5; echo done"]))
        j.submit()
        while str(j.status) != "running":
            time.sleep(0.02)
        print(j.status)
    """)
    assert out == "running"
    out = run_gpi("""
        from ganga_async.gpi import *
        j = jobs(0)
        print(j.status)
        j.wait(timeout=20)
        print(j.status, repr(j.peek("stdout")))
    """, GANGA_ASYNC_MONITORING_POLL_INTERVAL="0.1")
    assert out.splitlines() == ["running", "completed 'done\\n'"]


def test_exit_right_after_submit_leaves_the_job_for_the_next_session_to_finish() -> None:
    """The interpreter may end while the engine is still handing the job to the Local runner."""
    out = run_gpi("""
        from ganga_async.gpi import *
        Job().submit()
    """)
    assert out == ""
    out = run_gpi("""
        from ganga_async.gpi import *
        j = jobs(0)
        j.wait(timeout=20)
        print(j.status, j.reason, repr(j.peek("stdout")))
    """, GANGA_ASYNC_MONITORING_POLL_INTERVAL="0.1")
    assert out == "completed None 'Hello World\\n'"


def test_the_gpi_works_under_a_running_event_loop_in_the_main_thread() -> None:
    out = run_gpi("""
        import asyncio
        from ganga_async.gpi import *

        async def main():
            j = Job()
            j.submit()
            j.wait(timeout=20)
            await asyncio.sleep(0)
            print(j.status, j.peek("stdout").strip())

        asyncio.run(main())
    """)
    assert out == "completed Hello World"


def test_threads_starting_the_session_together_share_one_engine() -> None:
    out = run_gpi("""
        import threading
        from ganga_async.gpi import *
        made = []
        threads = [threading.Thread(target=lambda: made.append(Job())) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        engines = [t for t in threading.enumerate() if t.name == "ganga-async engine"]
        print(sorted(j.id for j in made), len(jobs), len(engines))
    """)
    assert out == "[0, 1, 2, 3, 4, 5, 6, 7] 8 1"


def test_copy_registers_a_new_job_and_remove_takes_it_out_of_jobs() -> None:
    out = run_gpi("""
        from ganga_async.gpi import *
        j = Job(name="orig")
        j.submit()
        j.wait(timeout=20)
        clone = j.copy()
        print(type(clone).__name__, clone.id, clone.status, clone.name, len(jobs))
        j.remove()
        print(j.status, [x.id for x in jobs])
    """)
    assert out.splitlines() == ["Job 1 new orig 2", "removed [1]"]
