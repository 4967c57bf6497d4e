"""Executable: run a program with arguments and extra environment variables."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

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

    Preparing copies into the ShareDir ``exe`` when it is a path to a file of yours (one that
    is not in a directory of ``PATH``, where system programs live), and every argument that
    names an existing file. The prepared job runs those copies, so editing the originals later
    changes nothing. Once prepared, ``exe`` is read-only, and so is ``args`` when one of them
    named a copied file.
    """

    protected: ClassVar[tuple[str, ...]] = ("exe", "args")

    exe: str = "echo"
    args: list[str] = dataclasses.field(default_factory=lambda: ["Hello World"])
    env: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.exe:
            raise JobSpecError("application.exe", "must not be empty; give a program to run")

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "args" and isinstance(value, list | tuple):
            # Ganga's: numbers in args become strings (args=[1, 2.5] is ["1", "2.5"]).
            value = [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                     for v in value]
        super().__setattr__(name, value)

    def _protects(self, name: str) -> bool:
        if name == "args" and self.is_prepared is not None:
            return any(arg in self.is_prepared.files for arg in self.args)
        return True

    def preparable_files(self) -> dict[str, str]:
        sources = {}
        if os.sep in self.exe:
            path = os.path.abspath(os.path.expanduser(self.exe))
            if not os.path.isfile(path):
                raise JobSpecError("application.exe", f"{path} does not exist; give the path of a program")
            if os.path.dirname(os.path.realpath(path)) not in _path_dirs():
                sources[self.exe] = path
        for arg in self.args:
            if arg not in sources and os.path.isfile(os.path.expanduser(arg)):
                sources[arg] = os.path.abspath(os.path.expanduser(arg))
        return sources

    def validate(self, inputfiles: Sequence[str], sharedir: Path | None = None) -> None:
        exe = self.command(inputfiles, sharedir).argv[0]
        if os.path.isabs(exe):
            if not os.path.isfile(exe):
                raise JobSpecError("application.exe", f"{exe} does not exist; give the path of a program")
            if not os.access(exe, os.X_OK):
                raise JobSpecError("application.exe", f"{exe} is not executable; run chmod +x {exe}")

    def command(self, inputfiles: Sequence[str], sharedir: Path | None = None) -> Command:
        """The argv and environment additions; :meth:`validate` checks that the program exists
        (once per job: a subjob whose program went missing since fails with its reason)."""
        exe, args = self.exe, self.args
        files = self.is_prepared.files if self.is_prepared is not None else None
        if sharedir is not None and files:
            exe = str(sharedir / files[exe]) if exe in files else exe
            args = [str(sharedir / files[arg]) if arg in files else arg for arg in args]
        return Command(argv=[_resolve(exe, inputfiles), *args], env=dict(self.env))


def _path_dirs() -> set[str]:
    return {os.path.realpath(d) for d in os.environ.get("PATH", "").split(os.pathsep) if d}


def _resolve(exe: str, inputfiles: Sequence[str]) -> str:
    if os.path.isabs(exe):
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
    raise JobSpecError(
        "application.exe",
        f"{exe!r} is not an absolute path, not among the job's inputfiles and not found in "
        f"{_where_looked()}; give an absolute path, add the file to inputfiles, or fix PATH",
    )


def _where_looked(shown: int = 3) -> str:
    """The directories of ``$PATH``, briefly: the first few and how many more."""
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    if not dirs:
        return "$PATH (empty)"
    more = f" and {len(dirs) - shown} more" if len(dirs) > shown else ""
    return f"$PATH ({', '.join(dirs[:shown])}{more})"
