"""The package as PyPI would get it: the sdist and the wheel carry the LICENSE and the metadata
PyPI shows, and the wheel, installed into a fresh virtual environment outside the repository
(without extras), runs ``ganga-async --version`` and ``ganga-async demo`` from there.

Needs only the package index pip is configured with (PyPI in CI): the build backend and the
runtime dependencies are installed from it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from ganga_async import __version__

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/ganga-async/ganga-async"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built as for an upload."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], check=True,
                   capture_output=True, timeout=300)
    return out


def metadata(dist: Path) -> str:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(f"ganga_async-{__version__}.dist-info/METADATA").decode()


def test_the_license_is_in_the_sdist_and_the_wheel(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        licensed = archive.read(f"ganga_async-{__version__}.dist-info/licenses/LICENSE").decode()
    assert "Apache License" in licensed and "Version 2.0" in licensed
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        assert f"ganga_async-{__version__}/LICENSE" in archive.getnames()


def test_the_metadata_pypi_shows(dist: Path) -> None:
    meta = metadata(dist)
    assert f"Version: {__version__}\n" in meta
    assert "License-Expression: Apache-2.0\n" in meta
    assert "Classifier: Programming Language :: Python :: 3.11\n" in meta
    assert f"Project-URL: Repository, {REPOSITORY}\n" in meta
    assert "Description-Content-Type: text/markdown\n" in meta
    assert "Requires-Dist: cryptography>=42; extra == 'grid'\n" in meta
    assert "Requires-Dist: pyjwt>=2.8; extra == 'tokens'\n" in meta
    required = re.findall(r"^Requires-Dist: ([^;\n]+)$", meta, re.MULTILINE)
    assert not [r for r in required if r.lower().startswith(("cryptography", "pyjwt", "aiofiles"))]


def test_the_readme_links_work_on_pypi(dist: Path) -> None:
    description = metadata(dist).partition("\n\n")[2]
    links = re.findall(r"\]\(([^)]+)\)", description)
    assert links
    assert [link for link in links if not link.startswith("https://")] == []


def test_the_wheel_installed_in_a_fresh_venv_runs_version_and_demo(
        dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GANGA_ASYNC_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(GANGA_ASYNC_GANGADIR=str(tmp_path / "gangadir"),
               GANGA_ASYNC_CONFIG=str(tmp_path / "empty.toml"), HOME=str(tmp_path))
    (tmp_path / "empty.toml").write_text("")
    command = str(venv / "bin" / "ganga-async")

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([command, *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, env={**env, **extra})

    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import ganga_async; print(ganga_async.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, env=env)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    version = run("--version")
    assert (version.returncode, version.stdout) == (0, f"ganga-async {__version__}\n")
    try:
        demo = run("demo", "--subjobs", "20")
        assert demo.returncode == 0, demo.stderr
        found = re.search(r"^job (\d+) completed in", demo.stdout, re.MULTILINE)
        assert found, demo.stdout
        assert f"stdout of {found[1]}.0: hello from subjob 0" in demo.stdout
        assert "started the ganga-async service" in demo.stderr
    finally:
        run("service", "stop")

    proxy = tmp_path / "x509up"
    proxy.write_text("not a proxy")
    proxy.chmod(0o600)
    listed = run("credentials", "-o", "tsv", X509_USER_PROXY=str(proxy))
    assert listed.returncode == 0, listed.stderr
    assert "pip install 'ganga-async[grid]'" in listed.stdout + listed.stderr


def test_the_wheel_carries_the_dashboard_its_pages_and_its_extra(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    static = ROOT / "ganga_async" / "dashboard" / "static"
    pages = {p.relative_to(ROOT).as_posix() for p in static.rglob("*") if p.is_file()}
    assert "ganga_async/dashboard/server.py" in names and pages <= names
    assert "Provides-Extra: dashboard" in metadata(dist)
