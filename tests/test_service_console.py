"""The daemon's console keeps the source of its last programs only, so that a daemon driven by
``send_cmd`` for weeks does not grow with every program it was sent."""

from __future__ import annotations

import linecache
import sys

import pytest

from ganga_async.service import _console

pytestmark = pytest.mark.anyio


async def test_only_the_last_programs_keep_their_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_console, "SOURCES_KEPT", 3)
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # put back after the daemon's router
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    _console.install_output_router()
    console = _console.Console(max_running=2, output_limit=10_000)
    for i in range(10):
        assert await console.run(console.execution(), f"x = {i}\nx") == f"{i}\n"
    kept = sorted(name for name in linecache.cache if name.startswith("<send_cmd "))
    assert kept == ["<send_cmd 10>", "<send_cmd 8>", "<send_cmd 9>"]
    failed = await console.run(console.execution(), "def f():\n    raise ValueError('no')\nf()")
    assert "raise ValueError('no')" in failed  # a traceback still shows the recent source
