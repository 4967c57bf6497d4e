"""docs/plugins.md is the code of examples/ganga-async-pyscript, and it works as the guide says.

Every fenced block of the guide follows a marker, ``<!-- test: KIND [ARGS] -->``, that says how
this test exercises it:

- ``excerpt PATH``: a piece of the example package's file PATH, verbatim; together the excerpts
  show every line of every file of the package;
- ``tree``: the package's layout; every file listed exists;
- ``bash DIR [exit=N]``: run by bash in DIR of a copy of the package, in a fresh virtual
  environment where ganga-async (from this worktree) and the package are installed; its exit
  code must be N (default 0);
- ``python DIR``: run in that environment, with DIR as the working directory; consecutive
  python blocks share one interpreter, as one interactive session would, until a bash block;
  an exception is printed as the interpreter prints its last line;
- ``output``: what the run block before it prints (stdout for python, stdout and stderr for
  bash), ShareDir names shown as ``conf-...``.

The fresh environment reuses this environment's packages through a ``.pth`` file, so only
ganga-async and the example are installed into it (``--no-deps``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "plugins.md"
EXAMPLE = ROOT / "examples" / "ganga-async-pyscript"
PACKAGE_FILES = ("pyproject.toml", "src", "tests", "demo")
"""What the guide shows of the example, all of it (its README only points to the guide)."""

_MARKED = re.compile(
    r"<!-- test: (?P<kind>\w+)(?P<args>[^>]*?) -->\n```(?P<lang>\w*)\n(?P<body>.*?)\n?```\n", re.S
)
_SENTINEL = "----- end of block -----"
_SHAREDIR = re.compile(r"conf-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DRIVER = f"""\
import json, os, sys
namespace = {{"__name__": "__main__"}}
for directory, code in json.load(open(sys.argv[1])):
    os.chdir(directory)
    try:
        exec(compile(code, "<docs/plugins.md>", "exec"), namespace)
    except Exception as exc:
        print(f"{{type(exc).__name__}}: {{exc}}")
    print({_SENTINEL!r}, flush=True)
"""


@dataclasses.dataclass
class Block:
    kind: str
    args: list[str]
    body: str
    line: int

    def where(self) -> str:
        return f"docs/plugins.md line {self.line} ({self.kind} {' '.join(self.args)})"


def guide_blocks() -> list[Block]:
    text = GUIDE.read_text()
    return [
        Block(m["kind"], m["args"].split(), m["body"], text.count("\n", 0, m.start()) + 2)
        for m in _MARKED.finditer(text)
    ]


def package_files() -> list[Path]:
    found = []
    for name in PACKAGE_FILES:
        path = EXAMPLE / name
        found += [p for p in sorted(path.rglob("*")) if p.is_file() and "__pycache__" not in p.parts] \
            if path.is_dir() else [path]
    return found


def test_every_code_block_of_the_guide_is_marked_for_this_test() -> None:
    fences = sum(1 for line in GUIDE.read_text().splitlines() if line.startswith("```"))
    blocks = guide_blocks()
    assert fences == 2 * len(blocks), "a code block of docs/plugins.md has no <!-- test: --> marker"
    kinds = {"excerpt", "tree", "bash", "python", "output"}
    assert {b.kind for b in blocks} <= kinds
    for before, block in zip(blocks, blocks[1:], strict=False):
        if block.kind == "output":
            assert before.kind in ("bash", "python"), f"{block.where()} follows no block that runs"


def test_the_guide_shows_every_line_of_the_example_package_verbatim() -> None:
    shown: dict[Path, list[str]] = {}
    for block in guide_blocks():
        if block.kind == "excerpt":
            path = EXAMPLE / block.args[0]
            assert block.body in path.read_text(), f"{block.where()} differs from {path}"
            shown.setdefault(path, []).append(block.body)
        elif block.kind == "tree":
            for entry in block.body.splitlines()[1:]:
                assert (EXAMPLE / entry.strip()).is_file(), f"{block.where()}: no {entry.strip()}"
    for path in package_files():
        excerpts = "\n".join(shown.get(path, []))
        missing = [line for line in path.read_text().splitlines()
                   if line.strip() and line not in excerpts.splitlines()]
        assert not missing, f"docs/plugins.md does not show these lines of {path}: {missing}"


def _normalised(text: str) -> str:
    return _SHAREDIR.sub("conf-...", text).strip()


class FreshEnvironment:
    """A virtual environment with this environment's packages (through a .pth file), ganga-async
    installed from this worktree, and a copy of the example package to work in."""

    def __init__(self, tmp: Path) -> None:
        self.package = tmp / "ganga-async-pyscript"
        shutil.copytree(EXAMPLE, self.package,
                        ignore=shutil.ignore_patterns("__pycache__", ".*_cache", "*.egg-info"))
        venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        self.python = venv / "bin" / "python"
        site = Path(subprocess.run(
            [self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True).stdout.strip())
        (site / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        self.env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
                    "PYTHONDONTWRITEBYTECODE": "1"}
        self.pip(str(ROOT))

    def pip_command(self) -> list[str]:
        """pip of this environment, installing into the fresh one, without dependencies (they
        come through the .pth file) and, when the build backend is here, without isolation."""
        isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
        return [sys.executable, "-m", "pip", "--python", str(self.python), "install", "--quiet",
                "--no-deps", *isolation]

    def pip(self, *args: str) -> None:
        subprocess.run([*self.pip_command(), *args], check=True, env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def bash(self, block: Block) -> tuple[int, str]:
        """Run a bash block; ``pip install`` in it installs into the fresh environment."""
        pip = " ".join(f"'{part}'" for part in self.pip_command())
        script = f'pip() {{ shift; {pip} "$@"; }}\n{block.body}\n'
        done = subprocess.run(["bash", "-c", script], cwd=self.package / block.args[0],
                              env=self.env, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout + done.stderr

    def python_session(self, blocks: list[Block], workdir: Path) -> list[str]:
        """Run python blocks in one interpreter; what each printed."""
        plan = workdir / "session.json"
        plan.write_text(json.dumps([[str(self.package / b.args[0]), b.body] for b in blocks]))
        driver = workdir / "driver.py"
        driver.write_text(_DRIVER)
        done = subprocess.run([self.python, driver, plan], env=self.env, capture_output=True,
                              text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        printed = done.stdout.split(_SENTINEL + "\n")
        assert len(printed) == len(blocks) + 1, done.stdout + done.stderr
        return printed[:-1]


def _check(block: Block, expected: Block | None, printed: str) -> None:
    if expected is not None:
        assert _normalised(printed) == expected.body.strip(), f"{block.where()} printed:\n{printed}"


@pytest.mark.slow
def test_the_guide_runs_as_written_in_a_fresh_environment(tmp_path: Path) -> None:
    fresh = FreshEnvironment(tmp_path)
    blocks = [b for b in guide_blocks() if b.kind in ("bash", "python", "output")]
    runs = [(b, blocks[i + 1] if i + 1 < len(blocks) and blocks[i + 1].kind == "output" else None)
            for i, b in enumerate(blocks) if b.kind != "output"]
    session: list[tuple[Block, Block | None]] = []

    def end_session() -> None:
        if session:
            printed = fresh.python_session([b for b, _ in session], tmp_path)
            for (block, expected), text in zip(session, printed, strict=True):
                _check(block, expected, text)
            session.clear()

    for block, expected in runs:
        if block.kind == "python":
            session.append((block, expected))
            continue
        end_session()
        code, printed = fresh.bash(block)
        wanted = int(block.args[1].removeprefix("exit=")) if len(block.args) > 1 else 0
        assert code == wanted, f"{block.where()} exited {code}:\n{printed}"
        _check(block, expected, printed)
    end_session()

    # What the guide's runs left behind: the GPI job and its unprepared copy, the CLI's job.
    check = tmp_path / "check.py"
    check.write_text(_AFTERWARDS)
    done = subprocess.run([fresh.python, check], env=fresh.env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


_AFTERWARDS = """\
import anyio
from ganga_async import Engine, load_config

async def main():
    async with Engine(config=load_config()) as engine:
        jobs = await engine.jobs(name="runs")
        prepared = [j for j in jobs if j.application.is_prepared is not None]
        assert len(jobs) == 3 and len(prepared) == 2, jobs   # GPI, its unprepared copy, CLI
        counts = await engine.shareref.counts()
        for job in prepared:
            assert str(job.status) == "completed" and len(job.subjobs) == 3, job
            assert counts[job.application.is_prepared.name] == 1, counts
            assert await engine.peek(job.subjobs[2]) == "run-005: selected pt>20\\n"
        assert sorted(job.application.is_prepared.files) == ["analysis.py", "requirements.txt"]

anyio.run(main, backend="asyncio")
"""
