"""Shared directories: where a prepared application keeps the files it needs.

A :class:`ShareDir` names one directory ``<gangadir>/shared/<user>/conf-<uuid>``; it is what a
prepared application holds in ``is_prepared`` (so it is defined below the applications, in
``ganga_async._sharedir``, and re-exported here). :class:`SharedArea` is the directory that
holds them all. It refuses every name that is not a ``conf-<uuid>`` directory of its own (``../..``,
an absolute path, a symbolic link leading elsewhere), so nothing outside the shared area is ever
read or deleted.

A ShareDir is made whole or not at all: the files are copied into a hidden sibling
``.partial-conf-<uuid>`` which is renamed into place once complete. A copy that fails (a
missing file, a full disk) removes the partial directory and raises.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from .._exceptions import JobSpecError, ShareDirError
from .._sharedir import NAME_PATTERN, ShareDir, check_name, new_name

__all__ = ["ShareDir", "SharedArea", "check_name"]

PARTIAL_PREFIX = ".partial-"
_STALE_PARTIAL = 3600.0
"""Seconds after which a partial directory is taken for the leftover of a crashed prepare."""


class SharedArea:
    """The directory of one user's ShareDirs, ``<gangadir>/shared/<user>``.

    Every method that takes a name validates it with :meth:`path` first. The blocking file
    system work runs in worker threads.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_user(cls, gangadir: Path, user: str) -> SharedArea:
        """The shared area of ``user`` in ``gangadir``, ``<gangadir>/shared/<user>``: the one an
        engine (the daemon's too) for that gangadir and user keeps its ShareDirs in."""
        return cls(gangadir / "shared" / user)

    def path(self, name: str) -> Path:
        """The directory of ShareDir ``name``, after checking that it is a ``conf-<uuid>`` name
        and that it does not lead out of the shared area through a symbolic link."""
        check_name(name)
        candidate = self.root / name
        real_root = os.path.realpath(self.root)
        if os.path.realpath(candidate) != os.path.join(real_root, name):
            raise ShareDirError(
                f"{candidate} is a symbolic link; a ShareDir must be a directory of "
                f"{self.root} itself. It was left untouched; remove the link by hand"
            )
        return candidate

    async def existing(self, sharedir: ShareDir) -> Path:
        """The directory a prepared application with ``sharedir`` runs its copies from, after
        checking that the ShareDir exists in this area; JobSpecError (naming the fix) if not."""
        path = self.path(sharedir.name)
        if not await anyio.Path(path).is_dir():
            raise JobSpecError(
                "application.is_prepared",
                f"ShareDir {sharedir.name} does not exist in {self.root}; unprepare the "
                "application (app.unprepare()) and prepare it again",
            )
        return path / sharedir.subdir

    async def create(self, sources: Mapping[str, str]) -> ShareDir:
        """A new ShareDir holding copies of the local files ``sources`` (``{name the
        application gives it: absolute path}``); ``files`` of the result maps each name to its
        copy. Returns once the directory is complete and in place; on failure nothing is left.
        """
        return await anyio.to_thread.run_sync(self._create, dict(sources))

    def _create(self, sources: dict[str, str]) -> ShareDir:
        name = new_name()
        partial = self.root / f"{PARTIAL_PREFIX}{name}"
        files: dict[str, str] = {}
        source = ""
        try:
            partial.mkdir(parents=True)
            for given, source in sources.items():
                target = _free_name(os.path.basename(source), files.values())
                (partial / target).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, partial / target)
                files[given] = target
            os.rename(partial, self.path(name))
        except OSError as exc:
            shutil.rmtree(partial, ignore_errors=True)
            what = f"copying {source}" if source else f"creating {partial}"
            raise ShareDirError(
                f"preparing failed while {what} into {self.root}: {exc.strerror or exc}; "
                "nothing was kept. Fix the cause (a missing file, a full disk) and prepare again"
            ) from exc
        return ShareDir(name=name, files=files)

    async def remove(self, name: str) -> None:
        """Delete ShareDir ``name`` and everything in it (nothing if it is already gone)."""
        path = self.path(name)
        await anyio.to_thread.run_sync(shutil.rmtree, path, True)

    async def names(self) -> list[str]:
        """The ShareDirs on disk (only ``conf-<uuid>`` directories; anything else is ignored)."""
        return await anyio.to_thread.run_sync(self._names)

    def _names(self) -> list[str]:
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return sorted(e.name for e in entries
                      if NAME_PATTERN.fullmatch(e.name) and e.is_dir(follow_symlinks=False))

    async def created(self, names: Sequence[str]) -> dict[str, float]:
        """When each existing ShareDir was made (its change time), by name."""
        return await anyio.to_thread.run_sync(self._created, list(names))

    def _created(self, names: list[str]) -> dict[str, float]:
        stamps = {}
        for name in names:
            try:
                stamps[name] = self.path(name).stat().st_ctime
            except FileNotFoundError:
                continue
        return stamps

    async def remove_stale_partials(self) -> list[str]:
        """Delete what crashed prepares left (partial directories older than an hour)."""
        return await anyio.to_thread.run_sync(self._remove_stale_partials)

    def _remove_stale_partials(self) -> list[str]:
        removed: list[str] = []
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return removed
        now = time.time()
        for entry in entries:
            if (entry.name.startswith(PARTIAL_PREFIX)
                    and NAME_PATTERN.fullmatch(entry.name[len(PARTIAL_PREFIX):])
                    and entry.is_dir(follow_symlinks=False)
                    and now - entry.stat(follow_symlinks=False).st_mtime > _STALE_PARTIAL):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.name)
        return removed

    async def ls(self, name: str) -> str:
        """The tree of ShareDir ``name``, one entry a line, as Ganga's ``shareref.ls``."""
        path = self.path(name)
        return await anyio.to_thread.run_sync(_tree, path)


def _free_name(basename: str, taken: Any) -> str:
    """``basename``, or ``<n>/basename`` when another copied file already has that name."""
    used = set(taken)
    if basename not in used:
        return basename
    n = 1
    while f"{n}/{basename}" in used:
        n += 1
    return f"{n}/{basename}"


def _tree(path: Path) -> str:
    if not path.is_dir():
        raise ShareDirError(f"ShareDir {path.name} does not exist in {path.parent}")
    lines = [f"{path.name}/"]

    def walk(directory: Path, depth: int) -> None:
        for entry in sorted(directory.iterdir(), key=lambda p: p.name):
            is_dir = entry.is_dir() and not entry.is_symlink()
            lines.append("|  " * depth + entry.name + ("/" if is_dir else ""))
            if is_dir:
                walk(entry, depth + 1)

    walk(path, 1)
    return "\n".join(lines)
