"""The testing helpers plugin authors use: an engine that the machine's configuration cannot change."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganga_async import Executable, Job
from ganga_async.testing import isolated_engine

pytestmark = pytest.mark.anyio


async def test_an_isolated_engine_ignores_the_users_file_and_variables_and_runs_a_job(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = tmp_path / "user.toml"
    hostile.write_text("[Monitoring]\npoll_interval = 999.0\n")
    monkeypatch.setenv("GANGA_ASYNC_CONFIG", str(hostile))
    monkeypatch.setenv("GANGA_ASYNC_LOCAL_MAX_CONCURRENT", "1")
    async with isolated_engine(tmp_path / "gangadir", options={"Local": {"kill_grace": 1.0}}) as engine:
        assert engine.config["Monitoring"]["poll_interval"] == 0.2
        assert engine.config["Local"]["max_concurrent"] == 0
        assert engine.config["Local"]["kill_grace"] == 1.0
        job = Job(application=Executable(exe="/bin/echo", args=["isolated"]))
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert job.status == "completed"
        assert await engine.peek(job) == "isolated\n"
