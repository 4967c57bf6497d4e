"""Kerberos tickets: :class:`KerberosTicket`, read with ``klist`` and renewed with ``kinit``."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Hashable
from typing import ClassVar

from .._exceptions import CredentialError, RenewalError
from ._command import run_command
from .base import Credential, CredentialInfo, file_signature

__all__ = ["KerberosTicket", "Klist", "parse_klist"]

_STAMP = r"(\d{1,2}/\d{1,2}/\d{2,4} \d{2}:\d{2}:\d{2})"
_TICKET = re.compile(rf"^{_STAMP}\s+{_STAMP}\s+(\S+)\s*$")
_RENEW = re.compile(rf"^\s+renew until {_STAMP}\s*$")


@dataclasses.dataclass(frozen=True, slots=True)
class Ticket:
    """One line of ``klist``: times in epoch seconds."""

    start: float
    expires: float
    service: str
    renew_until: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Klist:
    """What ``klist`` (MIT, ``LC_ALL=C``) printed for one cache."""

    cache: str
    principal: str
    tickets: tuple[Ticket, ...]

    def tgt(self) -> Ticket | None:
        """The ticket-granting ticket of the principal's realm, else the first ticket."""
        realm = self.principal.rpartition("@")[2]
        for ticket in self.tickets:
            if ticket.service == f"krbtgt/{realm}@{realm}":
                return ticket
        return self.tickets[0] if self.tickets else None


def _stamp(text: str) -> float:
    form = "%m/%d/%Y %H:%M:%S" if len(text.split()[0].split("/")[2]) == 4 else "%m/%d/%y %H:%M:%S"
    return time.mktime(time.strptime(text, form))


def parse_klist(text: str) -> Klist:
    """Parse MIT ``klist`` output (dates in local time, as ``LC_ALL=C`` prints them).

    Raises ValueError when the output has no cache or principal line.
    """
    cache = principal = ""
    tickets: list[Ticket] = []
    for line in text.splitlines():
        if line.startswith("Ticket cache:"):
            cache = line.partition(":")[2].strip()
        elif line.startswith("Default principal:"):
            principal = line.partition(":")[2].strip()
        elif match := _TICKET.match(line):
            tickets.append(Ticket(_stamp(match[1]), _stamp(match[2]), match[3]))
        elif (match := _RENEW.match(line)) and tickets:
            tickets[-1] = dataclasses.replace(tickets[-1], renew_until=_stamp(match[1]))
    if not cache or not principal:
        raise ValueError("not klist output: no 'Ticket cache' or 'Default principal' line")
    return Klist(cache, principal, tuple(tickets))


@dataclasses.dataclass(kw_only=True, repr=False)
class KerberosTicket(Credential):
    """A Kerberos ticket-granting ticket: ``KerberosTicket(ccache="", principal="", keytab="")``.

    The cache is ``ccache``, else ``$KRB5CCNAME``, else the system default. Renewal runs
    ``kinit -R`` (possible until the ticket's *renew until* time), or ``kinit -k -t keytab
    principal`` when a ``keytab`` is given, or ``renew_command``. A renewal that ``kinit -R``
    cannot do needs a person (a password): the engine does not retry it by itself.
    """

    renew_hint: ClassVar[str] = "kinit"

    ccache: str = ""
    principal: str = ""
    keytab: str = ""

    @property
    def location(self) -> str:
        return self.ccache or os.environ.get("KRB5CCNAME", "") or "the default ticket cache"

    def _cache_file(self) -> str | None:
        name = self.ccache or os.environ.get("KRB5CCNAME", "")
        if name.startswith("FILE:"):
            return name[5:]
        if name and ":" not in name:
            return name
        return None

    def _signature(self) -> Hashable | None:
        path = self._cache_file()
        return file_signature(path) if path else None

    def _env(self) -> dict[str, str]:
        env = {"LC_ALL": "C"}
        if self.ccache:
            env["KRB5CCNAME"] = self.ccache
        return env

    def default_renew_command(self) -> list[str]:
        if self.keytab:
            command = ["kinit", "-k", "-t", os.path.expanduser(self.keytab)]
            return command + [self.principal] if self.principal else command
        return ["kinit", "-R"]

    async def _read(self) -> CredentialInfo:
        outcome = await run_command(["klist"], timeout=self._timeout, env=self._env())
        if outcome.returncode != 0:
            said = outcome.stderr.lower()
            if "not found" in said or "no credentials" in said or "no such file" in said:
                raise self._absent(f"no Kerberos ticket in {self.location}")
            raise CredentialError(f"klist failed for {self.location}: {outcome.complaint()}")
        try:
            listing = parse_klist(outcome.stdout)
        except ValueError as exc:
            raise CredentialError(f"klist printed something unexpected for {self.location}: {exc}") from None
        tgt = listing.tgt()
        if tgt is None:
            raise CredentialError(f"the ticket cache {listing.cache} holds no ticket: run kinit")
        details = {"renew_until": tgt.renew_until} if tgt.renew_until else {}
        return self._info(location=listing.cache, identity=listing.principal, expiry=tgt.expires,
                          details=details)

    async def _renew(self, interactive: bool) -> None:
        command = self.renew_command or self.default_renew_command()
        if command[:2] == ["kinit", "-k"] and not self.principal:
            info = await self.info()
            if info.identity is None:
                raise RenewalError(f"{self.describe()}: renewing with a keytab needs the principal; "
                                   "set principal=...", needs_user=True)
            command = [*command, info.identity]
        outcome = await self._run(command, interactive=interactive, env=self._env())
        try:
            self._check_renewal(outcome, interactive)
        except RenewalError as exc:
            if command == ["kinit", "-R"]:
                raise RenewalError(f"{exc}; a new ticket needs your password: run kinit",
                                   needs_user=True) from None
            raise
