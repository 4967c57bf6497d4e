"""Ganga's documentation of the prepared state ("A 'prepared' state for Ganga applications",
Ganga 5.7 release notes in GangaIntroduction), replayed step by step through the plain-Python
interface, each session in a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from ganga_async import load_config

PREAMBLE = """
import logging, sys
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="LOG %(message)s")
for name in ("ganga_async.engine", "ganga_async.backends", "ganga_async.persistence.repository"):
    logging.getLogger(name).setLevel(logging.WARNING)
class _NoJobLines(logging.Filter):  # submissions and status changes: not this test's subject
    def filter(self, record):
        text = record.getMessage()
        return not (text.startswith(("submitting job", "killing job", "removing job"))
                    or " status changed to " in text)
logging.getLogger().handlers[0].addFilter(_NoJobLines())
from ganga_async import JobStateError
from ganga_async.gpi import *
"""


def session(script: str) -> list[str]:
    """Run ``script`` after the preamble in a fresh interpreter; its stdout lines."""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", PREAMBLE + textwrap.dedent(script)],
        env=dict(os.environ), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


CONF = r"conf-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def test_the_prepared_state_documentation_step_by_step(gangadir: Path, tmp_path: Path) -> None:
    script = tmp_path / "runMain.sh"
    script.write_text("#!/bin/sh\necho main\n")
    script.chmod(0o755)
    shared = gangadir / "shared" / load_config().user
    out = session(f"""
        print("is_prepared before:", Executable().is_prepared)
        a = Job()
        a.prepare()
        print("is_prepared after:", repr(a.application.is_prepared))
        b = Job()
        b.application.prepare()
        print("job.application.prepare() prepares the job:", b.application.is_prepared is not None)
        c = Job()
        c.submit()
        c.wait(timeout=30)
        print("submit prepared:", c.application.is_prepared is not None, c.status)
        print(shareref)
        d = Job(application=Executable(exe={str(script)!r}))
        d.prepare()
        name = d.application.is_prepared.name
        print(shareref.ls(name))
        e = d.copy()
        print("another job:", shareref.counts()[name])
        box.add(d, "mine")
        print("the box:", shareref.counts()[name])
        e.remove()
        print("job removed:", shareref.counts()[name])
        box.remove("mine")
        print("box entry removed:", shareref.counts()[name])
        lone = Executable(exe={str(script)!r})
        lone.prepare()
        print("lone app:", shareref.counts()[lone.is_prepared.name])
        try:
            d.application.exe = "/bin/true"
        except JobStateError as exc:
            print("protected:", exc)
        d.application.unprepare()
        d.application.exe = "/bin/true"
        print("after unprepare:", d.application.is_prepared, shareref.counts()[name])
        f = c.copy(unprepare=True)
        print("copy(unprepare=True):", f.application.is_prepared)
        a.application.is_prepared = None
        print("reset:", a.application.is_prepared)
        print("kept:", b.application.is_prepared.name, c.application.is_prepared.name)
        print("gone at exit:", name, lone.is_prepared.name)
    """)
    assert out[0] == "is_prepared before: None"
    assert out[1] == "LOG Preparing Executable application."
    assert re.fullmatch(rf"LOG Created shared directory: {re.escape(str(shared))}/{CONF}", out[2])
    assert re.fullmatch(rf"is_prepared after: ShareDir\(name='{CONF}', subdir='.'\)", out[3])
    rest = [line for line in out[4:] if not line.startswith("LOG Preparing")
            and not line.startswith("LOG Created")]
    assert rest[0] == "job.application.prepare() prepares the job: True"
    assert rest[1] == "submit prepared: True completed"
    table = rest[2:9]
    assert table[0].split("|") == [" " * 33 + "Shared directory ", "         Date created ",
                                   "  Reference count"]
    assert [re.fullmatch(rf"\s+({CONF}) \| .{{20}} \|\s+1", row) is not None
            for row in table[2:5]] == [True] * 3
    assert table[6] == f"The shared directory repository is rooted at {shared}"
    listing = rest[9:11]
    assert re.fullmatch(rf"{CONF}/", listing[0]) and listing[1] == "|  runMain.sh"
    assert rest[11:15] == ["another job: 2", "the box: 3", "job removed: 2", "box entry removed: 1"]
    assert rest[15] == "lone app: 1"
    assert re.fullmatch(r"protected: application.exe is read-only: the application is prepared "
                        rf"\(ShareDir {CONF}\); call unprepare\(\) first, or make an editable "
                        r"copy with copy\(unprepare=True\)", rest[16])
    assert rest[17:21] == ["LOG Unpreparing application.", "after unprepare: None 0",
                           "copy(unprepare=True): None", "LOG Unpreparing application."]
    assert rest[21] == "reset: None"
    kept = rest[22].split()[1:]
    gone = rest[23].split()[3:]

    on_disk = sorted(p.name for p in shared.iterdir())
    assert on_disk == sorted(kept), "unreferenced ShareDirs are deleted when the session ends"
    assert not set(gone) & set(on_disk)

    import shutil

    shutil.rmtree(shared / kept[1])
    out = session("""
        print(sorted(shareref.counts().items()))
    """)
    assert out[0] == str(sorted({kept[0]: 1, kept[1]: 1}.items()))
    assert out[1:] == [f"LOG ShareDir {kept[1]} vanished from disk; unpreparing its owner job:2",
                       "LOG Unpreparing application."]
    out = session("""
        print([j.application.is_prepared and j.application.is_prepared.name for j in jobs])
        print(shareref.counts())
    """)
    assert out[0] == str([None, kept[0], None, None, None]), "c was unprepared at close"
    assert out[1] == str({kept[0]: 1})
