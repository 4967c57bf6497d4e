"""Executable: run a program with arguments and extra environment variables."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Sequence

from .._exceptions import JobSpecError
from .base import Application, Command

__all__ = ["Executable"]


@dataclasses.dataclass(kw_only=True, repr=False)
class Executable(Application):
    """Run ``exe`` with ``args`` as its argv (never through a shell) and ``env`` added to the
    inherited environment.

    ``exe`` is one of:

    - an absolute path to an executable file;
    - the name of a file among the job's ``inputfiles``: it is copied into the working directory
      and run from there;
    - a command name looked up on ``PATH`` when the job is submitted (``"echo"``).

    Ganga's default application is ``Executable(exe="echo", args=["Hello World"])``, and so is ours.
    """

    exe: str = "echo"
    args: list[str] = dataclasses.field(default_factory=lambda: ["Hello World"])
    env: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("exe", "args", "env"):
            setattr(self, name, getattr(self, name))
        if not self.exe:
            raise JobSpecError("application.exe", "must not be empty; give a program to run")

    def validate(self, inputfiles: Sequence[str]) -> None:
        self.command(inputfiles)

    def command(self, inputfiles: Sequence[str]) -> Command:
        return Command(argv=[_resolve(self.exe, inputfiles), *self.args], env=dict(self.env))


def _resolve(exe: str, inputfiles: Sequence[str]) -> str:
    if os.path.isabs(exe):
        if not os.path.isfile(exe):
            raise JobSpecError("application.exe", f"{exe} does not exist; give the path of a program")
        if not os.access(exe, os.X_OK):
            raise JobSpecError("application.exe", f"{exe} is not executable; run chmod +x {exe}")
        return exe
    for path in inputfiles:
        if os.path.basename(path) == os.path.basename(exe) and (
            os.sep not in exe or os.path.normpath(exe) == os.path.normpath(path)
        ):
            return f"./{os.path.basename(path)}"
    if os.sep not in exe:
        found = shutil.which(exe)
        if found:
            return os.path.abspath(found)
    path_var = os.environ.get("PATH", "")
    raise JobSpecError(
        "application.exe",
        f"{exe!r} is not an absolute path, not among the job's inputfiles and not found on PATH "
        f"({path_var}); give an absolute path, add the file to inputfiles, or fix PATH",
    )
