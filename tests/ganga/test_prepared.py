"""The prepared state and ``shareref`` as the seeds use them: ``j = Job(); j.submit()``,
``shareref.lookup(...)``, ``b = a.copy(unprepare=True)``, ``ShareDir.path()``."""

from __future__ import annotations

import os
from pathlib import Path

from gpi_script import lines, run_script


def test_seed_prepared_state_transcript_runs_as_written(tmp_path: Path) -> None:
    """Ganga (TestShared, the prepared-state notes): submitting prepares the application into a
    ShareDir whose ``path()`` is a directory holding the copied executable; ``shareref.lookup``
    names each job referencing it (``ShareDir conf-... is referenced by item #0 in job
    repository``); ``a.copy(unprepare=True)`` is unprepared while ``a`` stays prepared; the
    count follows the references."""
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    out = run_script(f"""
        import os, sys
        sys.stderr = sys.stdout
        from ganga_async.gpi import *
        j = Job(application=Executable(exe={str(script)!r}, args=[]))
        j.submit()
        j.wait(timeout=30)
        if j.status == "completed":
            print("status: completed")
        a = j
        name = a.application.is_prepared.name
        path = a.application.is_prepared.path()
        print("path:", os.path.isdir(path), path.endswith(name), os.listdir(path))
        shareref.lookup(name)
        b = a.copy(unprepare=True)
        c = a.copy()
        print("prepared:", b.application.is_prepared, c.application.is_prepared.name == name)
        print("count:", shareref.counts()[name])
    """)
    found = lines(out)
    assert found["status"] == "completed"
    assert found["path"] == "True True ['hello.sh']"
    assert found["prepared"] == "None True"
    assert found["count"] == "2"
    assert "INFO     Preparing Executable application.\n" in out
    assert "is referenced by item #0 in job repository" in out
    assert os.environ["GANGA_ASYNC_GANGADIR"] in out
