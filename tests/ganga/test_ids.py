"""Job ids as Ganga gives them."""

from __future__ import annotations

from gpi_script import lines, run_script


def test_ids_start_at_0_and_a_removed_id_stays_retired_across_sessions() -> None:
    """Ganga: the first job of a repository is job 0; removing a job never frees its id, not
    even the last one, and a new session goes on after the highest id ever given."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        a, b = Job(), Job()
        print("first:", a.id, b.id)
        b.remove()
        print("after remove:", Job().id, jobs.ids())
    """))
    assert out == {"first": "0 1", "after remove": "2 [0, 2]"}
    out = lines(run_script("""
        from ganga_async.gpi import *
        jobs(2).remove()
        print("next session:", Job().id, jobs.ids())
    """))
    assert out == {"next session": "3 [0, 3]"}
