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


def test_input_and_output_directories_are_strings_that_exist_once_the_job_is_stored() -> None:
    """Ganga creates a job's input and output directories in its workspace when it stores the
    job, so that a user can put files there before submitting; ``j.outputdir`` and
    ``j.inputdir`` are strings ending in a separator (``j.outputdir + 'stdout'``)."""
    out = lines(run_script("""
        import os
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/echo", args=["hi"]))
        print("dirs:", os.path.isdir(j.inputdir), os.path.isdir(j.outputdir))
        print("strings:", isinstance(j.outputdir, str), isinstance(j.inputdir, str),
              j.outputdir.endswith(os.sep), j.inputdir.endswith(os.sep))
        j.submit()
        j.wait(timeout=30)
        print("stdout:", open(j.outputdir + "stdout").read().strip(),
              (j.outputdir / "stdout").read_text().strip())
    """))
    assert out["dirs"] == "True True"
    assert out["strings"] == "True True True True"
    assert out["stdout"] == "hi hi"


def test_job_of_a_job_copies_it_and_copies_compare_equal() -> None:
    """Ganga (TestJob.test_job_equality, test_job_copy): ``Job(j)`` is a new job with ``j``'s
    description and its own id and times; ``Job(j, name=...)`` replaces the fields given;
    ``j == j.copy() == Job(j)``; a different description or status is not equal; the copy's
    components are its own."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        j = Job(name="testname", application=Executable(exe="sleep", args=["1"]))
        j2 = j.copy()
        j3 = Job(j)
        j4 = Job(j, name="other")
        print("equal:", j == j2, j2 == j3, j == j4, j.application == j3.application)
        print("ids:", len({j.id, j2.id, j3.id, j4.id}), j3.name, j4.name)
        j3.application.exe = "echo"
        print("own:", j.application.exe, j3.application.exe, j == j3, j != j3)
        print("in jobs:", j3.id in jobs.ids(), j3.time.new() > j.time.new())
        try:
            Job("j")
        except Exception as exc:
            print("refused:", type(exc).__name__)
        j2.submit()
        j2.wait(timeout=30)
        print("status differs:", j == j2)
    """))
    assert out["equal"] == "True True True True"
    assert out["ids"] == "4 testname other"
    assert out["own"] == "sleep echo False True"
    assert out["in jobs"] == "True True"
    assert out["refused"] == "JobSpecError"
    assert out["status differs"] == "False"


def test_job_of_a_job_keeps_its_postprocessors_and_retry_policy() -> None:
    """Ganga (TestJob.test_job_copy): ``Job(j)`` copies every field, the postprocessors and
    ``do_auto_resubmit`` included; fields given by name replace them (and a copy is editable)."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/true"), do_auto_resubmit=True,
                postprocessors=[FileChecker(files=["stdout"], searchStrings=["ERROR"])],
                retry=Retry(max_attempts=3))
        j2 = Job(j)
        j3 = Job(j, postprocessors=[])
        j3.do_auto_resubmit = False
        print("copied:", [type(p).__name__ for p in j2.postprocessors], j2.do_auto_resubmit,
              j2.retry.max_attempts, j2.postprocessors[0] is not j.postprocessors[0])
        print("replaced:", j3.postprocessors, j3.do_auto_resubmit)
    """))
    assert out["copied"] == "['FileChecker'] True 3 True"
    assert out["replaced"] == "[] False"
