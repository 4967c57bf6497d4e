"""The dashboard's pages load nothing from outside the daemon, every file they name is there, and
the vendored chart library is the one its README names (no browser needed)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "ganga_async" / "dashboard" / "static"
PAGES = ["jobs.html", "job.html", "credentials.html", "events.html"]


def _text_files() -> list[Path]:
    return [p for p in STATIC.rglob("*") if p.suffix in {".html", ".js", ".css"} and "vendor" not in p.parts]


@pytest.mark.parametrize("page", PAGES)
def test_every_file_a_page_names_is_served_from_static(page: str) -> None:
    html = (STATIC / page).read_text()
    named = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any(n.endswith(".js") for n in named) and any(n.endswith(".css") for n in named)
    for path in named:
        assert (STATIC / path.removeprefix("/static/")).is_file(), path


def test_the_modules_import_only_files_beside_them() -> None:
    for module in (STATIC / "js").glob("*.js"):
        for name in re.findall(r'from "([^"]+)"', module.read_text()):
            assert name.startswith("./"), f"{module.name} imports {name}"
            assert (module.parent / name).is_file(), f"{module.name} imports {name}"


def test_nothing_is_fetched_from_another_host() -> None:
    for path in _text_files():
        text = path.read_text()
        assert not re.search(r"""(?:src|href|url\(|import|fetch\()\s*=?\s*["']?(?:https?:)?//""", text), path


def test_the_vendored_uplot_is_the_version_its_readme_names() -> None:
    readme = (STATIC / "vendor" / "README").read_text()
    assert "uPlot 1.6.32 (MIT" in readme
    assert "MIT License" in (STATIC / "vendor" / "uPlot.LICENSE").read_text()
    script = (STATIC / "vendor" / "uPlot.iife.min.js").read_bytes()
    assert script.startswith(b"/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    assert len(script) < 60_000
    assert hashlib.sha256(script).hexdigest() in readme
