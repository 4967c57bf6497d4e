"""Every error ganga-async raises on purpose.

    GangaAsyncError
    ├── ConfigError           an unknown section or option, or a value of the wrong type
    ├── JobSpecError          a job description that cannot run (unknown field, wrong type, missing exe)
    ├── JobStateError         an operation the job's status forbids (editing a submitted job, ...)
    ├── JobNotFoundError      no job with that id in the repository
    ├── BoxEntryNotFoundError no box entry of that name
    ├── PluginError           an application, splitter or backend that cannot be found or imported
    ├── PostProcessError      a merger, checker or notifier that could not do its work (the reason
    │                         fails the job, naming the postprocessor and the field)
    ├── RepositoryError       the repository cannot be opened or written
    │   ├── SchemaVersionError  written by a newer ganga-async; refused, never rewritten
    │   └── RepositoryLockedError  another engine already works on this gangadir
    ├── ShareDirError         a ShareDir name or path that is not a directory of this shared area
    ├── BackendError          a backend refused or failed an operation
    │   └── BackendUnavailableError  the batch system did not answer (down, restarting, timed out); retried
    ├── CredentialError       a credential is missing, unreadable, refused or of the wrong kind
    │   └── RenewalError        renewing a credential failed (a missing or hanging command,
    │                           a password that only a person can type)
    ├── EngineClosedError     the engine is not running (use ``async with Engine(...)``)
    ├── WaitTimeoutError      ``wait(timeout=...)`` ran out before the job finished
    └── ServiceError          the service daemon cannot be started, reached or used
        ├── ProtocolError         a message that breaks the protocol (malformed, truncated, too large)
        ├── ServiceAccessError    a connection from another user, refused
        ├── ServiceRunningError   a daemon already runs for that gangadir
        ├── CommandTimeoutError   ``send_cmd(timeout=...)`` ran out; the code was interrupted
        └── SlowClientError       an ``events`` stream dropped: its client fell too far behind

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


class PostProcessError(GangaAsyncError):
    """A postprocessor could not do its work: a merge that cannot go on, a checker that cannot
    check (a missing module, a bad regular expression), a mail that cannot be sent."""


class RepositoryError(GangaAsyncError):
    """The job repository cannot be opened, read or written."""


class SchemaVersionError(RepositoryError):
    """The repository was written by a newer ganga-async."""


class RepositoryLockedError(RepositoryError):
    """Another engine (``pid``, when known) holds the gangadir: only one may submit to
    backends and monitor its jobs."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class ShareDirError(GangaAsyncError):
    """A ShareDir name is not a ``conf-<uuid>`` directory of this gangadir's shared area, or
    the shared area cannot be read or written. Nothing outside the shared area is touched."""


class BackendError(GangaAsyncError):
    """A backend failed an operation (submission, kill, status query)."""


class BackendUnavailableError(BackendError):
    """The batch system could not be reached or did not answer in time; the operation is retried."""


class CredentialError(GangaAsyncError):
    """A credential is missing, unreadable, refused (e.g. a proxy readable by others) or corrupt.

    Messages name the credential and its location, never its contents.
    """


class RenewalError(CredentialError):
    """Renewing a credential failed. ``needs_user`` is true when only a person can renew it
    (the command asked for a password, or a renewable ticket ran out): the engine does not
    retry it by itself."""

    def __init__(self, message: str, *, needs_user: bool = False) -> None:
        super().__init__(message)
        self.needs_user = needs_user


class EngineClosedError(GangaAsyncError):
    """The engine is not running."""


class WaitTimeoutError(GangaAsyncError, TimeoutError):
    """A wait ran out of time before the job reached a final status."""


class ServiceError(GangaAsyncError):
    """The service daemon cannot be started, reached or used, or failed a request."""


class ProtocolError(ServiceError):
    """A message breaks the service protocol; ``code`` says how (``malformed``, ``truncated``,
    ``too_large``, ``unsupported_version``, ``unknown_op``, ``bad_args``, ``duplicate_id``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ServiceAccessError(ServiceError, PermissionError):
    """The daemon refused the connection (another user), or the socket is not the user's own."""


class ServiceRunningError(ServiceError):
    """A daemon already runs for the gangadir; ``pid`` is its process id when known."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class CommandTimeoutError(ServiceError, TimeoutError):
    """``send_cmd(timeout=...)`` ran out: the code was interrupted; ``output`` holds what it
    printed, its traceback included."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


class SlowClientError(ServiceError):
    """An ``events`` stream was dropped because its client fell more than ``[Service]
    event_backlog`` events behind; follow again, reading as events come (or fewer of them)."""

