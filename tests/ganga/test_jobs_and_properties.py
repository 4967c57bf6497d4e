"""Jobs and their properties as a Ganga user sets and reads them."""

from __future__ import annotations

from gpi_script import lines, run_script


def test_plugin_names_as_strings_and_numbers_in_args_become_strings() -> None:
    """Ganga: ``j.backend = 'Local'``, ``splitter='ArgSplitter'``, ``application='Executable'``
    name plugins by their class names; ``Executable(args=[1, 2.5])`` keeps ``['1', '2.5']``; an
    unknown name is an error listing the plugins."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        from ganga_async import JobSpecError
        j = Job(backend="Local", application="Executable")
        j.splitter = "ArgSplitter"
        print("types:", type(j.backend).__name__, type(j.application).__name__,
              type(j.splitter).__name__)
        j.application = Executable(exe="/bin/echo", args=[1, 2.5, "x"])
        print("args:", j.application.args)
        try:
            j.backend = "Nowhere"
        except JobSpecError as exc:
            print("unknown:", "available" in str(exc))
    """))
    assert out["types"] == "Local Executable ArgSplitter"
    assert out["args"] == "['1', '2.5', 'x']"
    assert out["unknown"] == "True"


def test_peek_lists_the_output_directory_and_never_raises() -> None:
    """Ganga: ``j.peek()`` lists the job's output directory, ``j.peek('stdout')`` shows the file;
    a file that is not there is said so, never an exception."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/echo", args=["hi"]))
        j.submit()
        j.wait(timeout=30)
        print("listing:", j.peek().split())
        print("stdout:", j.peek("stdout").strip())
        missing = j.peek("nothing.txt")
        print("missing:", len(missing.splitlines()), "nothing.txt" in missing)
        print("escape:", len(j.peek("../x").splitlines()))
    """))
    assert out["listing"] == "['stderr', 'stdout']"
    assert out["stdout"] == "hi"
    assert out["missing"] == "1 True"
    assert out["escape"] == "1"


def test_force_status_with_force_does_not_kill_and_without_it_kills() -> None:
    """Ganga: ``j.force_status('failed')`` marks the job failed (killing it at its backend
    first); ``force=True`` makes no attempt to kill it."""
    out = lines(run_script("""
        import os, time
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/sleep", args=["2"]))
        j.submit()
        while j.status != "running":
            time.sleep(0.05)
        pid = int(j.backend_id)
        j.force_status("failed", force=True)
        time.sleep(0.3)
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        print("forced:", j.status, alive)
        k = Job(application=Executable(exe="/bin/sleep", args=["30"]))
        k.submit()
        k.force_status("completed")
        print("killed first:", k.status, k.reason)
    """))
    assert out["forced"] == "failed True"
    assert out["killed first"] == "completed forced by the user"


def test_input_and_output_directories_exist_once_the_job_is_stored() -> None:
    """Ganga creates a job's input and output directories in its workspace when it stores the
    job, so that a user can put files there before submitting."""
    out = lines(run_script("""
        import os
        from ganga_async.gpi import *
        j = Job()
        print("dirs:", os.path.isdir(j.inputdir), os.path.isdir(j.outputdir))
    """))
    assert out["dirs"] == "True True"
