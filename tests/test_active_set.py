"""The monitor's compact record of active (sub)jobs (``pipeline/active.py``): it answers as a
``dict[str, Active]`` would, keeps each job once while one of its (sub)jobs is held, and keeps
nothing per subjob that a full garbage collection walks."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from ganga_async import Executable, Job
from ganga_async.model.record import JobRecord
from ganga_async.pipeline.active import Active, ActiveSet
from ganga_async.pipeline.context import Live


def live(job_id: int) -> Live:
    return Live(Job(application=Executable(exe="/bin/true")), JobRecord(job_id, Path("/ws")))


def test_entries_read_back_as_they_were_held_and_a_job_is_kept_while_one_is_held() -> None:
    first, second = live(3), live(4)
    active = ActiveSet()
    active["3.0"] = Active(first, 0, "n0")
    active.add("3.1", first, 1, "n1", recovered=True)
    active["4"] = Active(second, None, "n4")
    active["3.1"] = Active(first, 1, "n1b")  # replaced: still one entry
    assert len(active) == 3 and "3.1" in active and set(active) == {"3.0", "3.1", "4"}
    entry = active["3.1"]
    assert (entry.live, entry.index, entry.native_id, entry.recovered) == (first, 1, "n1b", False)
    assert active.get("5.0") is None
    with pytest.raises(KeyError):
        active["5.0"]
    assert sorted(active.keys_of(first)) == ["3.0", "3.1"] and active.keys_of(live(3)) == []
    assert active.masters() == [first, second]
    del active["3.0"]
    assert active.masters() == [first, second]
    del active["3.1"]
    assert active.masters() == [second] and active.keys_of(first) == []
    handle = active["4"].handle
    assert (handle.key, handle.native_id, handle.outputdir) == ("4", "n4", Path("/ws/4/output"))


def test_entries_are_not_tracked_by_the_garbage_collector() -> None:
    active = ActiveSet()
    job = live(9)
    for index in range(1000):
        active.add(f"9.{index}", job, index, f"n{index}")
    gc.collect()
    assert not any(gc.is_tracked(entry) for entry in active.entries.values())
