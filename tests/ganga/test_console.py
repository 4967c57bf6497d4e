"""What Ganga prints on the console, the GPI prints (on stderr, at ``[Logging] console``)."""

from __future__ import annotations

from gpi_script import run_script


def test_submission_status_change_and_prepare_lines_as_ganga_prints_them() -> None:
    """Ganga logs ``submitting job N``, ``Preparing Executable application.``, ``Created shared
    directory: ...``, ``job N status changed to "..."`` (masters and unsplit jobs only, never
    each subjob), ``killing job N``, ``removing job N`` and ``resubmitting job N`` at INFO on its
    console; setting the level higher silences them at once."""
    out = run_script("""
        import sys
        sys.stderr = sys.stdout
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/true"), splitter=ArgSplitter(args=[[], [], []]))
        j.submit()
        j.wait(timeout=30)
        k = Job(application=Executable(exe="/bin/sleep", args=["30"]))
        k.submit()
        k.kill()
        k.remove()
        j.subjobs[0].resubmit()
        config["Logging"]["console"] = "WARNING"
        Job(application=Executable(exe="/bin/true")).submit()
        print("END")
    """)
    text = out.split("END")[0]
    assert "INFO     submitting job 0\n" in text
    assert "INFO     Preparing Executable application.\n" in text
    assert "INFO     Created shared directory: " in text
    for status in ("submitting", "submitted", "completed"):
        assert f'INFO     job 0 status changed to "{status}"\n' in text
    assert "job 0.0" not in text.split("removing job 1")[0], "subjobs' changes are not printed"
    assert 'INFO     killing job 1\n' in text and 'job 1 status changed to "killed"' in text
    assert "INFO     removing job 1\n" in text
    resubmitted = text.split("INFO     removing job 1\n")[1]
    assert resubmitted.startswith("INFO     resubmitting job 0.0\n"), "said before its status changes"
    assert "job 2" not in out, "the level was raised to WARNING"


def test_a_program_that_configured_logging_gets_the_lines_through_its_own_handlers() -> None:
    """The library configures no logging: a program that set up its own (``basicConfig``)
    gets the lines through its handlers, once, not the GPI's console as well."""
    out = run_script("""
        import logging, sys
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="MINE %(message)s")
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/true"))
        j.submit()
        j.wait(timeout=30)
    """)
    assert out.count("MINE submitting job 0\n") == 1
    assert 'MINE job 0 status changed to "completed"' in out
    assert "INFO     " not in out
