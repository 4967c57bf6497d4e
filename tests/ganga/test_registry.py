"""The registry ``jobs``, its slices and ``j.subjobs``, as Ganga's."""

from __future__ import annotations

from gpi_script import lines, run_script


def test_jobs_by_id_position_and_slice_with_ids_len_and_iteration() -> None:
    """Ganga: ``jobs(id)`` by id, ``jobs[i]`` by position (``jobs[-1]`` the newest), slices,
    ``jobs.ids()``, ``len(jobs)``, ``for j in jobs``, ``jobs["name"]`` (a unique name); an
    unknown id or name raises; a removed id leaves a gap (positions close up, ids do not)."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        from ganga_async import JobNotFoundError
        made = [Job(name=f"n{i}") for i in range(4)]
        ids = [j.id for j in made]
        print("ids:", jobs.ids() == ids, len(jobs))
        print("call:", jobs(ids[2]) is made[2], jobs[0] is made[0], jobs[-1] is made[-1])
        part = jobs[1:3]
        print("slice:", part.ids() == ids[1:3], len(part), [j.name for j in part])
        print("iter:", [j.name for j in jobs])
        try:
            jobs(10**6)
        except JobNotFoundError:
            print("missing: raised")
        print("table:", repr(part).splitlines()[0])
        print("contains:", made[1] in part, made[0] in part)
        made[1].remove()
        print("after remove:", jobs(2) is made[2], jobs[1] is made[2], jobs["n3"] is made[3])
        for key in (3, "nobody"):
            try:
                jobs[key]
            except (IndexError, JobNotFoundError) as exc:
                print(f"missing {key}:", type(exc).__name__)
    """))
    assert out["after remove"] == "True True True"
    assert out["missing 3"] == "IndexError"
    assert out["missing nobody"] == "JobNotFoundError"
    assert out["ids"] == "True 4"
    assert out["call"] == "True True True"
    assert out["slice"] == "True 2 ['n1', 'n2']"
    assert out["iter"] == "['n0', 'n1', 'n2', 'n3']"
    assert out["missing"] == "raised"
    assert out["table"] == "Registry Slice: jobs[1:3] (2 jobs)"
    assert out["contains"] == "True False"


def test_select_filters_and_its_slice_acts_on_every_job() -> None:
    """Ganga: ``jobs.select(minid, maxid, status=, name= (wildcards), application=, backend=)``
    returns a slice with its own table and the collective ``submit``, ``kill``, ``copy`` and
    ``remove``."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        a = Job(name="alpha", application=Executable(exe="/bin/sleep", args=["30"]))
        b = Job(name="beta", application=Executable(exe="/bin/true"), backend=Local())
        c = Job(name="alps", application=Executable(exe="/bin/sleep", args=["30"]))
        print("name:", jobs.select(name="al*").ids() == [a.id, c.id])
        print("range:", jobs.select(a.id + 1, c.id).ids() == [b.id, c.id])
        print("plugins:", jobs.select(application="Executable", backend=Local).ids() == [a.id, b.id, c.id],
              jobs.select(backend="Slurm").ids())
        sleepers = jobs.select(name="al*")
        sleepers.submit()
        print("submitted:", all(j.status in ("submitting", "submitted", "running") for j in sleepers))
        sleepers.kill()
        for j in sleepers:
            j.wait(timeout=30)
        killed = jobs.select(status="killed")
        print("killed:", [str(j.status) for j in killed], len(killed))
        copies = sleepers.copy()
        print("copies:", len(copies), [str(j.status) for j in copies], len(jobs))
        print("table:", repr(jobs.select(status="killed")).splitlines()[0])
        copies.remove()
        print("removed:", len(jobs))
    """))
    assert out["name"] == "True"
    assert out["range"] == "True"
    assert out["plugins"] == "True []"
    assert out["submitted"] == "True"
    assert out["killed"] == "['killed', 'killed'] 2"
    assert out["copies"] == "2 ['new', 'new'] 5"
    assert out["table"] == "Registry Slice: jobs.select(status='killed') (2 jobs)"
    assert out["removed"] == "3"


def test_subjobs_by_id_position_and_select_with_collective_resubmit() -> None:
    """Ganga: ``j.subjobs(i)``, ``j.subjobs[i]``, ``len(j.subjobs)``,
    ``j.subjobs.select(status="failed")`` a slice whose ``resubmit()`` resubmits each one."""
    out = lines(run_script("""
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/sh"),
                splitter=ArgSplitter(args=[["-c", f"exit {code}"] for code in (0, 1, 0, 3)]))
        j.submit()
        j.wait(timeout=30)
        print("access:", j.subjobs(1).fqid == f"{j.id}.1", j.subjobs[1].fqid == f"{j.id}.1",
              j.subjobs[-1].fqid == f"{j.id}.3", len(j.subjobs))
        failed = j.subjobs.select(status="failed")
        print("failed:", failed.ids(), [str(s.status) for s in failed])
        print("table:", repr(failed).splitlines()[0])
        failed.resubmit()
        j.wait(timeout=30)
        print("again:", [s.info.submit_counter for s in j.subjobs], str(j.status))
        print("counts:", j.subjobs.counts())
    """))
    assert out["access"] == "True True True 4"
    assert out["failed"] == "[1, 3] ['failed', 'failed']"
    assert out["table"].endswith(".subjobs.select(status=failed) (2 jobs)")
    assert out["again"] == "[1, 2, 1, 2] failed"
    assert out["counts"] == "{'completed': 2, 'failed': 2}"
