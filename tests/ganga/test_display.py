"""How the GPI shows jobs, as Ganga's: the nested view, the jobs table, HTML, completion,
errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from gpi_script import lines, run_script


def test_print_job_is_ganga_s_nested_view_and_jupyter_gets_html() -> None:
    """Ganga: ``print(j)`` and ``j`` show ``Job (`` then one `` name = value ,`` line per field,
    components nested (``application = Executable (`` ... ``)``); in Jupyter a job is an HTML
    table."""
    out = run_script("""
        from ganga_async.gpi import *
        j = Job(name="demo", application=Executable(exe="/bin/echo", args=["x"]))
        print(j)
        print("repr same:", repr(j) == str(j))
        html = j._repr_html_()
        print("html:", html.startswith("<table>"), "<caption>Job 0</caption>" in html,
              "&#x27;/bin/echo&#x27;" in html)
    """)
    text = out.split("repr same:")[0].splitlines()
    assert text[0] == "Job ("
    assert " status = 'new' ," in text
    assert " name = 'demo' ," in text
    assert " application = Executable (" in text
    assert "    exe = '/bin/echo' ," in text
    assert " postprocessors = [] ," in text and " do_auto_resubmit = False ," in text
    assert text[-1] == ")"
    found = lines(out)
    assert found["repr same"] == "True"
    assert found["html"] == "True True True"


def test_jobs_table_has_ganga_s_columns_and_a_subjob_status_column() -> None:
    """Ganga's ``jobs`` table: fqid, status, name, subjobs, application, backend, backend id
    (its ``backend.actualCE``), comment and ``subjob status`` (running/failed/completing/
    completed counts), read without loading the subjobs."""
    out = run_script("""
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/sh"),
                splitter=ArgSplitter(args=[["-c", "exit 0"], ["-c", "exit 0"], ["-c", "exit 1"]]))
        j.submit()
        j.wait(timeout=30)
        print(repr(jobs))
    """)
    table = out.splitlines()
    assert [c.strip() for c in table[1].split("|")] == [
        "fqid", "status", "name", "subjobs", "application", "backend", "backend_id", "comment",
        "subjob status"]
    assert table[3].split("|")[-1].strip() == "0/1/0/2"


def test_tab_completion_offers_user_fields_and_methods_only() -> None:
    """Ganga completes ``j.backend.`` with the plugin's fields; here ``dir()`` (what IPython and
    Jupyter complete) gives a component's fields and the methods a user calls, and a job's
    fields, state and methods, none of the engine's internals."""
    found = lines(run_script("""
        from ganga_async.gpi import *
        j = Job()
        print("backend:", dir(j.backend))
        print("application:", dir(j.application))
        print("job:", [n for n in dir(j) if n in ("bind", "spec", "_record", "submit", "peek")])
    """))
    assert found["backend"] == "['copy', 'max_concurrent']"
    assert found["application"] == "['args', 'copy', 'env', 'exe', 'is_prepared', 'prepare', 'unprepare']"
    assert found["job"] == "['peek', 'submit']"


def test_an_error_shows_the_user_s_line_not_the_engine_s_frames() -> None:
    """A Ganga user's mistake shows their own line and the one-line error, not the frames of
    the thread that carried it to the engine."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        from ganga_async.gpi import *
        j = Job()
        j.kill()
    """)], env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "JobStateError: job 0 is new: it was never submitted" in done.stderr
    assert "anyio" not in done.stderr and "engine.py" not in done.stderr
