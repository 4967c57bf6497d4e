"""The daemon's prepared-state operations: ``shareref``, ``shareref_ls``, ``shareref_lookup``,
``shareref_rebuild`` and ``box``, against a real daemon whose job ran a prepared script, by
name and through the clients' typed methods."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganga_async import ShareDirError
from ganga_async._exceptions import ProtocolError
from ganga_async.service import GangaService
from ganga_async.service._paths import ServicePaths

pytestmark = [pytest.mark.slow]


def test_shareref_and_box_operations_answer_from_the_daemons_actor(daemon: ServicePaths,
                                                                   tmp_path: Path) -> None:
    script = tmp_path / "analysis.sh"
    script.write_text("#!/bin/sh\necho analysed\n")
    script.chmod(0o755)
    gs = GangaService(daemon.gangadir)
    try:
        out = gs.send_cmd(f"j = Job(application=Executable(exe={str(script)!r}))\nj.submit()\n"
                          "j.wait(timeout=60)\nbox.add(j, 'kept')\n"
                          "print(j.id, j.application.is_prepared.name)")
        job_id, name = out.strip().splitlines()[-1].split()
        assert name.startswith("conf-"), out
        (row,) = [r for r in gs.call("shareref") if r["name"] == name]
        assert (row["count"], row["exists"]) == (2, True)
        assert "analysis.sh" in "\n".join(gs.call("shareref_ls", name=name)["tree"])
        found = gs.call("shareref_lookup", name=name)
        assert sorted(found["owners"]) == ["box:kept", f"job:{job_id}"] and not found["unprepared"]
        assert gs.call("shareref_rebuild")[name] == 2
        (entry,) = gs.call("box")
        assert (entry["name"], entry["kind"], entry["sharedir"]) == ("kept", "job", name)
        assert [(r["name"], r["count"]) for r in gs.shareref()] == [(name, 2)]
        assert gs.shareref_ls(name).splitlines() == gs.call("shareref_ls", name=name)["tree"]
        assert sorted(gs.shareref_lookup(name)) == ["box:kept", f"job:{job_id}"]
        assert gs.shareref_rebuild(rmdir=True) == {name: 2}
        assert gs.box() == gs.call("box")
        with pytest.raises(ShareDirError):
            gs.shareref_ls("../..")
        with pytest.raises(ShareDirError):
            gs.call("shareref_ls", name="../..")
        with pytest.raises(ProtocolError, match="argument 'rmdir' must be bool"):
            gs.call("shareref_rebuild", rmdir="yes")
    finally:
        gs.close()
