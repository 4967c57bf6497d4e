"""Statuses as Ganga's: plain names a script compares, prints and stores."""

from __future__ import annotations

from gpi_script import lines, run_script


def test_a_status_is_its_ganga_name_in_comparisons_printing_and_json() -> None:
    """Ganga's ``j.status`` is a string: ``j.status == 'completed'``, ``!=``, ``in (...)``, a
    dict key, ``print`` and ``%s`` give the name (Ganga's tests compare statuses to names)."""
    out = lines(run_script("""
        import json
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/true"))
        print("new:", j.status == "new", j.status != "new", j.status in ("new", "failed"))
        j.submit()
        j.wait(timeout=30)
        s = j.status
        print("completed:", s == "completed", s != "completed", s in ["completed"], "completed" == s)
        print("dict:", {"completed": 1}[s], {s: 2}["completed"], hash(s) == hash("completed"))
        print("print:", s, "%s" % s, f"{s}", repr(s), [s])
        print("json:", json.dumps({"status": s}))
        print("select:", [x.id for x in jobs.select(status="completed")] == [j.id])
    """))
    assert out["new"] == "True False True"
    assert out["completed"] == "True False True True"
    assert out["dict"] == "1 2 True"
    assert out["print"] == "completed completed completed 'completed' ['completed']"
    assert out["json"] == '{"status": "completed"}'
    assert out["select"] == "True"


def test_the_async_api_and_its_events_carry_the_names_too() -> None:
    """Ganga's monitoring reports status changes by name; the async API's events compare equal
    to the names and serialise as them."""
    out = lines(run_script("""
        import dataclasses, json, anyio
        from ganga_async import Engine, Job, Executable

        async def main():
            async with Engine() as engine:
                job = Job(application=Executable(exe="/bin/true"))
                seen = []
                async with engine.events() as events:
                    await engine.submit(job)
                    async for event in events:
                        seen.append(event)
                        if event.new == "completed":
                            break
                print("names:", [str(e.new) for e in seen])
                print("json:", json.dumps({"old": seen[-1].old, "new": seen[-1].new}))
                print("status:", job.status == "completed", await engine.jobs(status="completed") == [job])

        anyio.run(main)
    """))
    assert out["names"] == "['submitting', 'submitted', 'running', 'completing', 'completed']"
    assert out["json"] == '{"old": "completing", "new": "completed"}'
    assert out["status"] == "True True"
