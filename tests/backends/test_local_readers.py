"""Which runners may still hold unread commands: the reading markers in the gangadir's logs."""

from __future__ import annotations

from pathlib import Path

from ganga_async.backends._local_readers import reading_runners


def test_live_runners_other_than_our_own_are_reading_and_dead_ones_markers_are_removed(
    tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("runner-11.reading", "runner-12.reading", "runner-13.reading",
                 "runner-x.reading", "local_runner.log"):
        (logs / name).touch()
    live = {11, 12}
    assert reading_runners(logs, 12, lambda pid: pid in live) == [11]
    assert sorted(p.name for p in logs.iterdir()) == [
        "local_runner.log", "runner-11.reading", "runner-12.reading", "runner-x.reading"]
    assert reading_runners(tmp_path / "none", None, lambda pid: True) == []
