"""Timestamps as Ganga keeps them: ``j.time.timestamps``, the stamp methods and durations."""

from __future__ import annotations

from gpi_script import lines, run_script


def test_a_job_s_stamps_and_durations() -> None:
    """Ganga (TestTimeStamps): a new job has ``new``; a completed one ``submitting``,
    ``submitted``, ``backend_running``, ``backend_final`` and ``final`` as datetimes;
    ``submissiontime()``, ``waittime()``, ``runtime()`` are None before submission and
    timedeltas after; ``details()`` is a dict; a killed and resubmitted job has
    ``resubmitted``; a copy's ``new`` is later than its source's."""
    out = lines(run_script("""
        import datetime
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/true"))
        print("new:", list(j.time.timestamps), isinstance(j.time.new(), datetime.datetime))
        print("before:", j.time.submissiontime(), j.time.runtime(), j.time.waittime())
        j.submit()
        j.wait(timeout=30)
        keys = ("new", "submitting", "submitted", "backend_running", "backend_final", "final")
        print("after:", all(isinstance(j.time.timestamps[k], datetime.datetime) for k in keys),
              all(getattr(j.time, k)() == j.time.timestamps[k] for k in keys))
        print("durations:", all(isinstance(d, datetime.timedelta) and d >= datetime.timedelta(0)
                                 for d in (j.time.submissiontime(), j.time.waittime(),
                                           j.time.runtime())))
        print("details:", type(j.time.details()).__name__, j.time.details()["exitcode"])
        print("format:", j.time.new("%Y") == str(j.time.new().year))
        c = j.copy()
        print("copy new later:", c.time.new() > j.time.new())
        k = Job(application=Executable(exe="/bin/sleep", args=["30"]))
        k.submit()
        k.kill()
        print("killed:", "final" in k.time, "backend_final" in k.time)
        k.resubmit()
        print("resubmitted:", isinstance(k.time.timestamps["resubmitted"], datetime.datetime))
        k.kill()
    """))
    assert out["new"] == "['new'] True"
    assert out["before"] == "None None None"
    assert out["after"] == "True True"
    assert out["durations"] == "True"
    assert out["details"] == "dict 0"
    assert out["format"] == "True"
    assert out["copy new later"] == "True"
    assert out["killed"] == "True False"
    assert out["resubmitted"] == "True"


def test_a_master_s_stamps_come_from_its_subjobs() -> None:
    """Ganga (TestTimeStamps): a master's ``submitted`` and ``backend_running`` are its
    subjobs' earliest, its ``backend_final`` and ``final`` their latest; each subjob has its
    own ``submitted``, ``backend_running``, ``backend_final``, ``final`` and a ``new`` later
    than the master's; the master's ``runtime()`` is the sum of its subjobs';
    ``details()`` of a master is not a dict but ``details(i)`` is."""
    out = lines(run_script("""
        import datetime
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/true"))
        j.splitter = "ArgSplitter"
        j.splitter.args = [[], [], []]
        j.submit()
        j.wait(timeout=30)
        subs = [s.time.timestamps for s in j.subjobs]
        t = j.time.timestamps
        print("earliest:", t["submitted"] == min(s["submitted"] for s in subs),
              t["backend_running"] == min(s["backend_running"] for s in subs))
        print("latest:", t["final"] == max(s["final"] for s in subs),
              t["backend_final"] == max(s["backend_final"] for s in subs))
        print("subjob new later:", all(s["new"] > t["new"] for s in subs))
        total = sum((s.time.runtime() for s in j.subjobs), datetime.timedelta())
        print("runtime sum:", abs(j.time.runtime() - total) < datetime.timedelta(milliseconds=1))
        print("durations:", isinstance(j.time.submissiontime(), datetime.timedelta),
              isinstance(j.time.waittime(), datetime.timedelta),
              all(isinstance(s.time.waittime(), datetime.timedelta) for s in j.subjobs))
        print("details:", j.time.details(), type(j.time.details(1)).__name__)
    """))
    assert out["earliest"] == "True True"
    assert out["latest"] == "True True"
    assert out["subjob new later"] == "True"
    assert out["runtime sum"] == "True"
    assert out["durations"] == "True True True"
    assert out["details"] == "None dict"
