"""PythonScript: run a Python script with its arguments, in the interpreter or virtual
environment of your choice."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from ganga_async import JobSpecError
from ganga_async.applications import Application, Command

__all__ = ["PythonScript"]


@dataclasses.dataclass(kw_only=True, repr=False)
class PythonScript(Application):
    """Run ``script`` with ``args``: ``python script args...``, never through a shell.

    The interpreter is ``venv``'s ``bin/python`` when ``venv`` names a virtual environment,
    else ``python`` (a command on ``PATH`` or an absolute path). ``env`` is added to the
    environment the script inherits.

    Preparing copies ``script`` (and ``requirements``, a pip requirements file, when given)
    into the ShareDir: the job runs the copy, so later edits of the original change nothing,
    and the requirements the script was run with are kept beside it. Once prepared,
    ``script`` and ``requirements`` are read-only.
    """

    protected: ClassVar[tuple[str, ...]] = ("script", "requirements")

    script: str = ""
    args: list[str] = dataclasses.field(default_factory=list)
    python: str = "python3"
    venv: str = ""
    requirements: str = ""
    env: dict[str, str] = dataclasses.field(default_factory=dict)

    def preparable_files(self) -> dict[str, str]:
        files = {self.script: _existing_file(self.script, "script", "the Python script to run")}
        if self.requirements:
            files[self.requirements] = _existing_file(
                self.requirements, "requirements", "a pip requirements file, or leave it empty")
        return files

    def validate(self, inputfiles: Sequence[str], sharedir: Path | None = None) -> None:
        if sharedir is None:  # a prepared job runs the copy, whatever became of the original
            _existing_file(self.script, "script", "the Python script to run")
        self.interpreter()

    def command(self, inputfiles: Sequence[str], sharedir: Path | None = None) -> Command:
        script = os.path.abspath(os.path.expanduser(self.script))
        if sharedir is not None and self.is_prepared is not None:
            script = str(sharedir / self.is_prepared.files[self.script])
        return Command(argv=[self.interpreter(), script, *self.args], env=dict(self.env))

    def interpreter(self) -> str:
        """The absolute path of the Python that runs the script."""
        if self.venv:
            python = os.path.join(os.path.abspath(os.path.expanduser(self.venv)), "bin", "python")
            if not os.access(python, os.X_OK):
                raise JobSpecError(
                    "application.venv",
                    f"{python} does not exist; create the environment with "
                    f"python3 -m venv {self.venv}, or leave venv empty")
            return python
        found = shutil.which(os.path.expanduser(self.python))
        if found is None:
            raise JobSpecError(
                "application.python",
                f"{self.python!r} is not an executable file nor a command on PATH; "
                "give the interpreter's absolute path")
        return os.path.abspath(found)


def _existing_file(path: str, field: str, what: str) -> str:
    """The absolute path of ``path``, or a JobSpecError naming ``application.<field>``."""
    if not path:
        raise JobSpecError(f"application.{field}", f"is empty; give the path of {what}")
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(full):
        raise JobSpecError(f"application.{field}", f"{full} does not exist; fix the path")
    return full
