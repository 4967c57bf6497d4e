"""``submit()`` and ``kill()`` in the GPI return once done, as Ganga's."""

from __future__ import annotations

from gpi_script import lines, run_script


def test_submit_returns_once_submitted_and_kill_once_killed() -> None:
    """Ganga: after ``j.submit()`` the job is ``submitted`` (or further), never still
    ``submitting``; after ``j.kill()`` it is ``killed``, for a job and for a split job."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/sleep", args=["30"]))
        j.submit()
        print("after submit:", j.status in ("submitted", "running"))
        j.kill()
        print("after kill:", j.status)
        m = Job(application=Executable(exe="/bin/sleep"),
                splitter=ArgSplitter(args=[["30"] for _ in range(5)]))
        m.submit()
        print("master:", m.status in ("submitted", "running"),
              all(s.status in ("submitted", "running") for s in m.subjobs))
        m.kill()
        print("master killed:", m.status, m.subjobs.counts())
    """))
    assert out == {"after submit": "True", "after kill": "killed", "master": "True True",
                   "master killed": "killed {'killed': 5}"}
