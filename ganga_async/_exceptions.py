"""Every error ganga-async raises on purpose.

    GangaAsyncError
    ├── ConfigError           an unknown section or option, or a value of the wrong type
    ├── JobSpecError          a job description that cannot run (unknown field, wrong type, missing exe)
    ├── JobStateError         an operation the job's status forbids (editing a submitted job, ...)
    ├── JobNotFoundError      no job with that id in the repository
    ├── BoxEntryNotFoundError no box entry of that name
    ├── PluginError           an application, splitter or backend that cannot be found or imported
    ├── RepositoryError       the repository cannot be opened or written
    │   └── SchemaVersionError  written by a newer ganga-async; refused, never rewritten
    ├── ShareDirError         a ShareDir name or path that is not a directory of this shared area
    ├── BackendError          a backend refused or failed an operation
    ├── EngineClosedError     the engine is not running (use ``async with Engine(...)``)
    └── WaitTimeoutError      ``wait(timeout=...)`` ran out before the job finished

Messages say what was wrong and how to fix it. Foreign exceptions (OSError, sqlite3.Error, ...)
are translated where they cross into ganga-async, with the original kept as ``__cause__``.
"""

from __future__ import annotations


class GangaAsyncError(Exception):
    """Base class of every error ganga-async raises on purpose."""


class ConfigError(GangaAsyncError):
    """A configuration section, option or value is not valid."""


class JobSpecError(GangaAsyncError):
    """A job description is invalid; ``field`` names the offending attribute (e.g. ``application.exe``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class JobStateError(GangaAsyncError):
    """The job's status does not allow the operation."""


class JobNotFoundError(GangaAsyncError, LookupError):
    """No job with the given id exists in the repository."""


class BoxEntryNotFoundError(GangaAsyncError, LookupError):
    """The box has no entry of the given name."""


class PluginError(GangaAsyncError):
    """A plugin is unknown or failed to import."""


class RepositoryError(GangaAsyncError):
    """The job repository cannot be opened, read or written."""


class SchemaVersionError(RepositoryError):
    """The repository was written by a newer ganga-async."""


class ShareDirError(GangaAsyncError):
    """A ShareDir name is not a ``conf-<uuid>`` directory of this gangadir's shared area, or
    the shared area cannot be read or written. Nothing outside the shared area is touched."""


class BackendError(GangaAsyncError):
    """A backend failed an operation (submission, kill, status query)."""


class EngineClosedError(GangaAsyncError):
    """The engine is not running."""


class WaitTimeoutError(GangaAsyncError, TimeoutError):
    """A wait ran out of time before the job reached a final status."""
