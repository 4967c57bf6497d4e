"""The ShareDir value: the name of the shared directory a prepared application runs its copies
from, as ``Application.is_prepared`` holds it. The directories themselves and what is done with
them (:class:`~ganga_async.prepared.sharedir.SharedArea`) belong to the prepared-state package.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._exceptions import ShareDirError

__all__ = ["NAME_PATTERN", "ShareDir", "check_name", "new_name", "use_root"]

_root: Callable[[], Path] | None = None


def use_root(root: Callable[[], Path] | None) -> None:
    """Make ``root()`` the shared area :meth:`ShareDir.path` joins names to (the plain-Python
    interface installs its session's)."""
    global _root  # noqa: PLW0603 (one shared area per interpreter session)
    _root = root

NAME_PATTERN = re.compile(r"conf-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""What every ShareDir is called: ``conf-<uuid>``."""


def new_name() -> str:
    """A new ShareDir name, ``conf-`` and a random (version 4) UUID. Made here rather than by
    :func:`uuid.uuid4`: importing :mod:`uuid` imports :mod:`platform`, a few ms of every fresh
    process's first job."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"conf-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def check_name(name: object) -> str:
    """Return ``name`` if it is a ShareDir name (``conf-<uuid>``), else raise ShareDirError."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ShareDirError(
            f"{name!r} is not a ShareDir name: expected conf-<uuid> as shown by shareref "
            "(e.g. conf-0f6c3b8e-1d2a-4c5b-9e8f-7a6b5c4d3e2f), not a path"
        )
    return name


@dataclasses.dataclass(frozen=True)
class ShareDir:
    """A prepared application's shared directory: ``ShareDir(name='conf-<uuid>', subdir='.')``.

    ``name`` is the directory's name in the shared area, never a path. ``files`` maps each
    file of the application that was copied (as the application names it, e.g. its ``exe``)
    to its place inside the directory; a prepared job runs those copies.
    """

    name: str
    subdir: str = "."
    files: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name(self.name)
        _check_relative(self.subdir, "subdir")
        for original, copied in self.files.items():
            if not isinstance(original, str):
                raise ShareDirError(f"ShareDir.files: {original!r} is not a file name")
            _check_relative(copied, f"files[{original!r}]")

    def path(self) -> str:
        """The full path of the directory, as Ganga's ``ShareDir.path()`` (in the plain-Python
        interface, under its session's gangadir)."""
        if _root is None:
            raise ShareDirError(f"ShareDir {self.name} has no known place: ask the engine "
                                "(engine.shared.root / name) outside the plain-Python interface")
        return str(_root() / self.name)

    def to_dict(self) -> dict[str, Any]:
        """The serialised form stored with the application."""
        return {"name": self.name, "subdir": self.subdir, "files": dict(self.files)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShareDir:
        """Build from :meth:`to_dict`'s form; a wrong shape is a ShareDirError."""
        unknown = set(data) - {"name", "subdir", "files"}
        if unknown:
            raise ShareDirError(f"ShareDir has no field {sorted(unknown)[0]!r}; fields: name, subdir")
        files = data.get("files", {})
        if not isinstance(files, Mapping):
            raise ShareDirError("ShareDir.files must be a table of file names")
        return cls(name=data.get("name", ""), subdir=data.get("subdir", "."), files=dict(files))


def _check_relative(path: object, field: str) -> None:
    if (not isinstance(path, str) or not path or os.path.isabs(path)
            or ".." in Path(path).parts):
        raise ShareDirError(f"ShareDir.{field}: {path!r} must be a relative path inside the ShareDir")
