"""The credential plugin contract.

A :class:`Credential` is a small settings object naming a credential (``VomsProxy(vo="lhcb")``,
``KerberosTicket()``): its fields say *which* one, never what it contains, so it can be stored
with a job and shown anywhere. Its methods look at the real thing each time (the proxy file,
the ticket cache, the token), with a cache that is kept only while the file is unchanged:

- ``await c.info()``: a :class:`CredentialInfo` (location, identity, expiry, and the problem
  that makes it unusable, if any); it never raises for a missing or broken credential;
- ``await c.identity()``, ``timeleft()`` (seconds, 0 when expired or absent),
  ``expiry_time()``, ``is_valid(min_time_left=...)``, ``exists()``;
- ``await c.renew()``: runs the renewal command (``renew_command``, or the type's default)
  without a shell and with a timeout. Without ``interactive=True`` the command gets no
  terminal, so one that asks for a password fails fast and :class:`RenewalError` says so
  (``needs_user``).

The plain-Python interface (:mod:`ganga_async.gpi`) offers the same methods without ``await``.
A new type subclasses :class:`Credential` and registers under the ``ganga_async.credentials``
entry-point group.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import stat
import time
from collections.abc import Hashable
from datetime import UTC, datetime
from typing import Any, ClassVar

import anyio

from .._component import Component
from .._duration import format_duration, parse_duration
from .._exceptions import CredentialError, RenewalError
from ._command import Outcome, run_command

__all__ = ["Credential", "CredentialInfo", "check_private_file", "file_signature", "missing_extra"]

_PASSWORD_WORDS = ("password", "pass phrase", "passphrase", "pin:", "tty", "terminal", "prompt")
RENEW_CLI = "`ganga-async credentials renew`"
_PLACES = frozenset({"proxy_path", "token_file", "ccache", "keytab"})


@dataclasses.dataclass(frozen=True, slots=True)
class CredentialInfo:
    """A credential as it is now. ``expiry`` is in epoch seconds; ``problem`` says why it cannot
    be used (missing, refused, corrupt), or is None. Never holds the credential's contents."""

    type: str
    description: str
    location: str
    exists: bool
    identity: str | None = None
    expiry: float | None = None
    problem: str | None = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    def time_left(self) -> float:
        """Seconds until it expires; 0 when it is absent, unusable or expired."""
        if self.problem is not None or self.expiry is None:
            return 0.0
        return max(0.0, self.expiry - time.time())

    def lasts(self, needed: float) -> bool:
        """True when it is usable, unexpired and has at least ``needed`` seconds left."""
        left = self.time_left()
        return left > 0 and left >= needed

    def to_dict(self) -> dict[str, Any]:
        left = self.time_left()
        return {
            "type": self.type, "credential": self.description, "location": self.location,
            "exists": self.exists, "identity": self.identity,
            "expiry": datetime.fromtimestamp(self.expiry, UTC).isoformat() if self.expiry else None,
            "time_left": round(left), "problem": self.problem, **self.details,
        }


@dataclasses.dataclass(kw_only=True, repr=False)
class Credential(Component):
    """Base class of credential types. ``renew_command`` replaces the type's default renewal
    command (a list: program and arguments, run without a shell)."""

    user_methods: ClassVar[tuple[str, ...]] = (
        "identity", "timeleft", "expiry_time", "is_valid", "exists", "info", "renew")

    category: ClassVar[str] = "credential"
    renew_hint: ClassVar[str] = ""
    """What a person runs to renew it (``voms-proxy-init``), for messages."""
    cache_seconds: ClassVar[float] = 1.0
    """How long a reading is kept when there is no file whose change would tell."""

    renew_command: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self._cache: tuple[Hashable, CredentialInfo, float] | None = None
        self._timeout = 60.0

    # -- what a type provides ----------------------------------------------------------

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the credential is looked for now (a path, a ticket cache name, ``$BEARER_TOKEN``)."""

    @abc.abstractmethod
    async def _read(self) -> CredentialInfo:
        """Read the credential; raise CredentialError for one that is missing, refused or corrupt."""

    @abc.abstractmethod
    def default_renew_command(self) -> list[str]:
        """The command that renews it when ``renew_command`` is empty."""

    def _signature(self) -> Hashable | None:
        """Something that changes whenever the credential does (a file's stat), or None when
        nothing cheap tells (then a reading is kept ``cache_seconds``). Runs in a thread."""
        return None

    async def _renew(self, interactive: bool) -> None:
        """Renew it; the default runs the renewal command once."""
        command = self.renew_command or self.default_renew_command()
        outcome = await self._run(command, interactive=interactive)
        self._check_renewal(outcome, interactive)

    # -- the interface -----------------------------------------------------------------

    def signature(self) -> Hashable | None:
        """What the type's ``_signature`` gives: something that changes whenever the
        credential does, or None. It may block: call it in a worker thread."""
        return self._signature()

    def set_command_timeout(self, seconds: float) -> None:
        """How long each command run for this credential (reading, renewal) may take; the
        store sets ``[Credentials] command_timeout``."""
        self._timeout = seconds

    def describe(self) -> str:
        """``"VomsProxy vo=lhcb"``: the type and the fields that differ from their defaults."""
        parts = [self.plugin_name]
        # what the credential is first, where it lives last: "VomsProxy vo=lhcb proxy_path=..."
        for field in sorted(dataclasses.fields(self), key=lambda f: f.name in _PLACES):
            if field.name == "renew_command":
                continue
            value = getattr(self, field.name)
            default = field.default if field.default is not dataclasses.MISSING else None
            if value != default and value not in ("", [], None):
                parts.append(f"{field.name}={value}")
        return " ".join(parts)

    def key(self) -> str:
        """Identifies the credential a job needs: equal keys, same credential."""
        return repr(sorted(self.to_dict().items()))

    async def info(self) -> CredentialInfo:
        """What the credential is now; a missing or broken one has ``problem`` set."""
        signature = await anyio.to_thread.run_sync(self._signature)
        cached = self._cache
        now = time.monotonic()
        if cached is not None:
            if signature is not None and cached[0] == signature:
                return cached[1]
            if signature is None and cached[0] is None and now - cached[2] < self.cache_seconds:
                return cached[1]
        try:
            info = await self._read()
        except CredentialError as exc:
            info = self._unusable(str(exc), exists=not isinstance(exc, _Absent))
        self._cache = (signature, info, now)
        return info

    async def identity(self) -> str:
        """Who the credential says you are (a DN, a principal, a token's subject)."""
        info = await self.info()
        if info.problem is not None or info.identity is None:
            raise CredentialError(info.problem or f"{self.describe()} has no identity")
        return info.identity

    async def timeleft(self) -> float:
        """Seconds before it expires; 0 when it is expired, absent or unusable."""
        return (await self.info()).time_left()

    async def expiry_time(self) -> datetime | None:
        """When it expires (timezone-aware), or None when it is absent or unusable."""
        info = await self.info()
        if info.problem is not None or info.expiry is None:
            return None
        return datetime.fromtimestamp(info.expiry, UTC)

    async def is_valid(self, min_time_left: float | str = 0) -> bool:
        """True when it exists, is usable and has at least ``min_time_left`` left (seconds or
        text such as ``"1h"``); an expired one is never valid."""
        needed = parse_duration(min_time_left, "min_time_left")
        return (await self.info()).lasts(needed)

    async def exists(self) -> bool:
        """True when there is something at its location (valid or not)."""
        return (await self.info()).exists

    async def renew(self, *, interactive: bool = False) -> CredentialInfo:
        """Renew it and return what it is afterwards.

        Raises :class:`RenewalError` when the command is missing, hangs or fails; the message
        carries the command's complaint (secrets removed) and how to renew by hand.
        """
        try:
            await self._renew(interactive)
        finally:
            self._cache = None
        return await self.info()

    def reason(self, info: CredentialInfo, needed: float) -> str:
        """Why a job needing ``needed`` seconds of it cannot go on, and what to do."""
        what = info.problem or (
            f"{format_duration(info.time_left())} left, {format_duration(needed)} needed"
            if info.exists else f"none found at {info.location}"
        )
        return f"{self.describe()}: {what}: {self.advice()}"

    def advice(self) -> str:
        """What a person does to renew it (the end of :meth:`reason`), for messages."""
        return f"run {self.renew_hint} or {RENEW_CLI}" if self.renew_hint else f"run {RENEW_CLI}"

    # -- helpers for types ---------------------------------------------------------------

    async def _run(self, argv: list[str], *, interactive: bool = False,
                   env: dict[str, str] | None = None) -> Outcome:
        try:
            return await run_command(argv, timeout=self._timeout, env=env, interactive=interactive)
        except CredentialError as exc:
            raise RenewalError(f"{self.describe()}: {exc}") from None

    def _check_renewal(self, outcome: Outcome, interactive: bool) -> None:
        """Raise RenewalError for a renewal command that failed, saying whether it needs a person."""
        if outcome.returncode == 0:
            return
        said = (outcome.stderr + outcome.stdout).lower()
        needs_user = not interactive and any(word in said for word in _PASSWORD_WORDS)
        complaint = outcome.complaint() or "no message"
        if needs_user:
            message = (f"{self.describe()}: `{outcome.argv[0]}` needs a password the engine cannot "
                       f"give ({complaint}); run {RENEW_CLI} in a terminal")
        else:
            message = (f"{self.describe()}: `{' '.join(outcome.argv[:1])}` failed with exit code "
                       f"{outcome.returncode} ({complaint})")
        raise RenewalError(message, needs_user=needs_user)

    def _info(self, *, location: str | None = None, **fields: Any) -> CredentialInfo:
        """A reading of a usable credential; ``location`` replaces :attr:`location` when the
        reading names where it was found (klist names the cache it read)."""
        return CredentialInfo(type=self.plugin_name, description=self.describe(),
                              location=self.location if location is None else location,
                              exists=True, **fields)

    def _unusable(self, problem: str, *, exists: bool) -> CredentialInfo:
        return CredentialInfo(type=self.plugin_name, description=self.describe(),
                              location=self.location, exists=exists, problem=problem)

    def _absent(self, message: str) -> _Absent:
        return _Absent(message)


class _Absent(CredentialError):
    """Raised by ``_read`` when there is nothing at the location."""


def missing_extra(package: str, extra: str, needed_for: str) -> CredentialError:
    """The error for a credential type whose optional dependency ``package`` is not installed:
    it names the ``extra`` that installs it (``pip install 'ganga-async[grid]'``)."""
    return CredentialError(f"{needed_for} needs the {package} package, which is not installed; "
                           f"install it with: pip install 'ganga-async[{extra}]'")


def file_signature(path: str) -> Hashable:
    """A file's identity and state: changes when it is replaced, rewritten or chmod'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return ("missing", path)
    return (path, st.st_ino, st.st_mtime_ns, st.st_size, st.st_mode, st.st_uid)


def check_private_file(path: str, what: str) -> bytes:
    """The bytes of ``path``, refusing (like the grid tools) a file that others may read or
    that belongs to another user. A missing file raises the ``_Absent`` CredentialError."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _Absent(f"no {what} at {path}") from None
    except OSError as exc:
        raise CredentialError(f"cannot read the {what} at {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CredentialError(f"the {what} at {path} is not a regular file")
    if st.st_uid != os.getuid():
        raise CredentialError(
            f"the {what} at {path} belongs to another user (uid {st.st_uid}); refusing to use it")
    if st.st_mode & 0o077:
        raise CredentialError(
            f"the {what} at {path} is open to group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"refusing to use it: chmod 600 {path}")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise CredentialError(f"cannot read the {what} at {path}: {exc.strerror}") from None
