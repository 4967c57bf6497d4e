"""The four bugs of issue 13, each a Ganga behaviour a user's script relies on."""

from __future__ import annotations

from gpi_script import lines, run_script


def test_edits_to_a_stored_new_job_are_kept_for_the_next_session() -> None:
    """Ganga: a job is saved in the repository with every change made to it while it is new;
    a new session's ``jobs(id)`` shows the name, the application and its fields, the backend,
    the splitter, the files and the credentials last set (also edits inside a list)."""
    first = lines(run_script("""
        from ganga_async.gpi import *
        j = Job()
        print("id:", j.id)
        j.name = "x"
        j.application.exe = "/bin/true"
        j.application.args = ["a", "b"]
        j.backend = Local(max_concurrent=3)
        j.splitter = ArgSplitter(args=[["1"], ["2"]])
        j.splitter.args = [["3"], ["4"], ["5"]]
        j.inputfiles = ["/etc/hostname"]
        j.outputfiles = ["*.txt"]
        j.credentials = [AFSToken()]
        j.application.env = {"A": "1"}
        j.application.args.append("c")
    """))
    out = lines(run_script(f"""
        from ganga_async.gpi import *
        j = jobs({first["id"]})
        print("name:", j.name)
        print("exe:", j.application.exe)
        print("args:", j.application.args)
        print("env:", j.application.env)
        print("backend:", j.backend)
        print("splitter:", j.splitter.args)
        print("files:", j.inputfiles, j.outputfiles)
        print("credentials:", [type(c).__name__ for c in j.credentials])
    """))
    assert out["name"] == "x"
    assert out["exe"] == "/bin/true"
    assert out["args"] == "['a', 'b', 'c']"
    assert out["env"] == "{'A': '1'}"
    assert "max_concurrent=3" in out["backend"]
    assert out["splitter"] == "[['3'], ['4'], ['5']]"
    assert out["files"] == "['/etc/hostname'] ['*.txt']"
    assert out["credentials"] == "['AFSToken']"


def test_kill_of_a_job_never_submitted_raises_and_it_can_still_be_submitted() -> None:
    """Ganga: ``kill()`` of a new job raises (JobError: cannot kill a job in status new); the
    job stays new and can be submitted."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        from ganga_async import JobStateError
        j = Job(application=Executable(exe="/bin/true"))
        try:
            j.kill()
        except JobStateError as exc:
            print("raised:", "never submitted" in str(exc))
        print("status:", j.status)
        j.submit()
        j.wait(timeout=30)
        print("final:", j.status)
    """))
    assert out == {"raised": "True", "status": "new", "final": "completed"}


def test_a_splitter_value_that_cannot_be_stored_is_refused_and_the_engine_goes_on() -> None:
    """Ganga refuses a value its repository cannot keep with an error naming it; no user input
    stops the session: the next job runs."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        from ganga_async import JobSpecError
        try:
            GenericSplitter(attribute="application", values=[Executable()])
        except JobSpecError as exc:
            print("refused:", "cannot be stored" in str(exc))
        j = Job(application=Executable(exe="/bin/true"))
        j.splitter = GenericSplitter(attribute="application.args", values=[["a"]])
        j.splitter.values.append(Executable())
        try:
            j.submit()
        except Exception as exc:
            print("submit refused:", type(exc).__name__, j.status)
        k = Job(application=Executable(exe="/bin/true"))
        k.submit()
        k.wait(timeout=30)
        print("next job:", k.status)
    """))
    assert out["refused"] == "True"
    assert out["submit refused"] == "JobSpecError new"
    assert out["next job"] == "completed"


def test_assigning_a_component_copies_it() -> None:
    """Ganga copies a component assigned from another job: submitting (and freezing) one job,
    or editing its application, leaves the other's alone."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        x = Job()
        y = Job(application=Executable(exe="/bin/true"))
        x.application = y.application
        print("copied:", x.application is not y.application, x.application.exe)
        y.submit()
        x.application.args = ["edited"]
        print("edited:", x.application.args, y.application.args)
        y.wait(timeout=30)
        app = Executable(exe="/bin/echo")
        z = Job(application=app)
        app.args = ["fresh"]
        print("fresh:", z.application.args)
    """))
    assert out["copied"] == "True /bin/true"
    assert out["edited"] == "['edited'] ['Hello World']"
    assert out["fresh"] == "['fresh']"
