"""What a fresh process pays before its first job: the imports that are left for later.

structlog (and rich through it), ``importlib.metadata`` and the mail and HTTP modules were a
third of importing ganga_async; they are imported when first needed (an event some handler
receives, a plugin that is not built in, a notifier sending). These tests hold that, and that
logging and plugin look-ups still do what they did.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ganga_async import _plugins
from ganga_async._log import EVENT_ATTR, bound, get_logger

ROOT = Path(__file__).resolve().parent.parent
LATER = ("structlog", "rich", "importlib.metadata", "smtplib", "urllib.request")


def _loaded_after(code: str) -> list[str]:
    script = f"import sys\n{code}\nprint(' '.join(m for m in {LATER!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=60)
    return done.stdout.split()


def test_importing_and_finding_builtin_plugins_imports_none_of_the_later_modules() -> None:
    code = ("import ganga_async\nfrom ganga_async import _plugins\n"
            "for category in ('application', 'splitter'):\n"
            "    for name in _plugins.BUILTIN[category]:\n"
            "        _plugins.load(category, name)\n"
            "_plugins.load('backend', 'Local')\n"
            "from ganga_async._log import get_logger\nget_logger('ganga_async.x').info('dropped')")
    assert _loaded_after(code) == []


def test_the_table_of_contents_imports_each_export_when_first_named() -> None:
    """``import ganga_async`` is the exceptions, ``Status`` and the version; ``Engine``
    brings the engine and its repository (aiosqlite), a credential type only its module."""
    script = ("import sys, ganga_async\n"
              "first = {'ganga_async.engine', 'aiosqlite', 'ganga_async.credentials'} & set(sys.modules)\n"
              "from ganga_async import Engine, X509Proxy\n"
              "print(sorted(first), 'ganga_async.engine' in sys.modules, 'aiosqlite' in sys.modules,\n"
              "      'ganga_async.backends.slurm' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.split() == ["[]", "True", "True", "False"]


def test_the_command_line_loads_the_engine_only_to_open_one() -> None:
    """A command the daemon serves talks to its socket: the CLI imports neither the engine,
    the stages, the repository (aiosqlite) nor the credential manager until it opens an
    engine of its own."""
    script = ("import sys, ganga_async.cli\n"
              "print(sorted({'ganga_async.engine', 'ganga_async.pipeline', 'aiosqlite',\n"
              "              'ganga_async.credentials.manager'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_storing_and_loading_a_job_imports_none_of_the_later_modules(tmp_path: Path) -> None:
    code = ("import sys, anyio\n"
            "from ganga_async import ArgSplitter, Engine, Executable, Job, Local\n"
            "async def main():\n"
            f"    async with Engine({str(tmp_path)!r}, monitoring=False) as engine:\n"
            "        job = await engine.add(Job(application=Executable(exe='/bin/echo'),\n"
            "            backend=Local(), splitter=ArgSplitter(args=[['a']])))\n"
            f"    async with Engine({str(tmp_path)!r}, monitoring=False) as engine:\n"
            "        assert (await engine.get(job.id)).splitter.args == [['a']]\n"
            "anyio.run(main, backend='asyncio')")
    assert _loaded_after(code) == []


def test_a_submitted_job_imports_no_postprocessor_module_nor_uuid(tmp_path: Path) -> None:
    """A job without postprocessors needs no merger, checker or notifier; ``uuid`` (which
    imports ``platform``) is not used for ShareDir and ShareRef names."""
    code = ("import sys, anyio\n"
            "from ganga_async import ArgSplitter, Engine, Executable, Job, Local\n"
            "async def main():\n"
            f"    async with Engine({str(tmp_path)!r}) as engine:\n"
            "        job = Job(application=Executable(exe='/bin/echo'), backend=Local(),\n"
            "                  splitter=ArgSplitter(args=[['a'], ['b']]))\n"
            "        await engine.submit(job)\n"
            "        await engine.wait(job)\n"
            "        assert str(job.status) == 'completed', job.status\n"
            "anyio.run(main, backend='asyncio')\n"
            "print(' '.join(m for m in ('uuid', 'platform', 'gzip') if m in sys.modules))\n"
            "print(' '.join(m for m in sys.modules if m.startswith('ganga_async.postprocessors.')\n"
            "               and m != 'ganga_async.postprocessors.base'))")
    assert _loaded_after(code) == []


def test_an_event_a_handler_receives_imports_structlog() -> None:
    code = ("import logging\nlogging.basicConfig(level=logging.INFO)\n"
            "from ganga_async._log import get_logger\nget_logger('ganga_async.x').info('kept')")
    assert "structlog" in _loaded_after(code)


def test_the_builtin_plugins_are_the_entry_points_of_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {category: dict(project["entry-points"][group])
                for category, group in _plugins.GROUPS.items()}
    assert _plugins.BUILTIN == declared


def test_available_lists_builtin_and_third_party_plugins() -> None:
    assert set(_plugins.BUILTIN["backend"]) <= set(_plugins.available("backend"))


def test_events_carry_their_fields_the_bound_ones_and_redact_secrets(
        caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger("ganga_async.test_startup")
    with caplog.at_level(logging.INFO, logger="ganga_async.test_startup"):
        log.debug("below the level")
        with bound(job_id=3):
            log.info("job added", name="a", job_id_text="x", password="p")
            with bound(job_id=4):
                log.warning("inner")
        log.error("after", job_id=5)
    events = [getattr(r, EVENT_ATTR) for r in caplog.records]
    assert events == [
        {"name": "a", "job_id_text": "x", "password": "[redacted]", "event": "job added",
         "job_id": 3},
        {"event": "inner", "job_id": 4},
        {"job_id": 5, "event": "after"},
    ]
    assert caplog.records[0].getMessage() == \
        "job added name=a job_id_text=x password=[redacted] job_id=3"



def test_submit_wait_off_a_terminal_imports_no_rich(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Its progress bar is drawn on a terminal only: a script or a pipe does not import rich
    to learn that it has none (20-40 ms of the command's start)."""
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    job = tmp_path / "job.toml"
    job.write_text('[application]\ntype = "Executable"\nexe = "/bin/true"\n')
    code = ("import sys\nfrom ganga_async.cli import main\n"
            f"assert main(['submit', {str(job)!r}, '--wait']) == 0\n"
            "print('rich' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.splitlines()[-1] == "False"


@pytest.mark.anyio
async def test_an_engine_that_only_reads_starts_no_local_runner(tmp_path: Path) -> None:
    """A monitoring engine starts the Local runner while it opens (the first job's processes
    then need not wait for it); one opened with ``monitoring=False`` never does."""
    from ganga_async import Engine

    async with Engine(tmp_path, monitoring=False):
        pass
    assert not (tmp_path / "logs").exists()
