"""Shared fixtures: every test gets its own gangadir and an empty user configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ganga_async import Config, load_config


@pytest.fixture
def anyio_backend() -> str:
    """aiosqlite needs asyncio, so the engine only runs on anyio's asyncio backend."""
    return "asyncio"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the user's own configuration and gangadir out of every test."""
    user_config = tmp_path / "user-config.toml"
    user_config.write_text("")
    monkeypatch.setenv("GANGA_ASYNC_CONFIG", str(user_config))
    monkeypatch.setenv("GANGA_ASYNC_GANGADIR", str(tmp_path / "gangadir"))
    for name in list(__import__("os").environ):
        if name.startswith("GANGA_ASYNC_") and name not in ("GANGA_ASYNC_CONFIG", "GANGA_ASYNC_GANGADIR"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def gangadir(tmp_path: Path) -> Path:
    return tmp_path / "gangadir"


@pytest.fixture
def config() -> Config:
    cfg = load_config()
    cfg["Monitoring"]["poll_interval"] = 0.5
    cfg["Repository"]["flush_interval"] = 0.02
    return cfg
