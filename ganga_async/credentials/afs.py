"""AFS tokens: :class:`AFSToken`, read with OpenAFS ``tokens`` and renewed through Kerberos."""

from __future__ import annotations

import dataclasses
import re
import time
from typing import ClassVar

from .._exceptions import CredentialError, RenewalError
from ._command import run_command
from .base import Credential, CredentialInfo
from .kerberos import KerberosTicket

__all__ = ["AFSToken", "AfsTokenLine", "parse_tokens"]

_LINE = re.compile(
    r"^(?:User's \(AFS ID (?P<id>\d+)\)\s+)?(?:(?P<kind>\w+) )?[Tt]okens for (?:afs@)?(?P<cell>\S+)\s+"
    r"\[(?:Expires (?P<month>\w{3})\s+(?P<day>\d{1,2}) (?P<hour>\d{1,2}):(?P<minute>\d{2})|>> Expired <<)\]"
)
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}


@dataclasses.dataclass(frozen=True, slots=True)
class AfsTokenLine:
    """One token ``tokens`` listed; ``expires`` in epoch seconds (0 when it has expired)."""

    cell: str
    afs_id: str | None
    expires: float


def _expiry(month: str, day: int, hour: int, minute: int, now: float) -> float:
    """``tokens`` prints no year: take the one that puts the time nearest to now."""
    year = time.localtime(now).tm_year
    candidates = [
        time.mktime((y, _MONTHS[month], day, hour, minute, 0, 0, 0, -1)) for y in (year - 1, year, year + 1)
    ]
    return min(candidates, key=lambda t: abs(t - now))


def parse_tokens(text: str, now: float | None = None) -> list[AfsTokenLine]:
    """The tokens in OpenAFS ``tokens`` output (times in local time, as it prints them)."""
    moment = time.time() if now is None else now
    found = []
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match is None:
            continue
        expires = 0.0
        if match["month"] is not None and match["month"] in _MONTHS:
            expires = _expiry(match["month"], int(match["day"]), int(match["hour"]),
                              int(match["minute"]), moment)
        found.append(AfsTokenLine(match["cell"], match["id"], expires))
    return found


@dataclasses.dataclass(kw_only=True, repr=False)
class AFSToken(Credential):
    """An AFS token: ``AFSToken(cell="", ccache="", principal="", keytab="")``.

    Read with ``tokens`` (the token for ``cell``, else the first one listed). Renewal renews
    the Kerberos ticket (``ccache``, ``principal`` and ``keytab`` as for
    :class:`KerberosTicket`) and then runs ``aklog`` (``aklog -c cell`` when a cell is given),
    or runs ``renew_command`` instead.
    """

    renew_hint: ClassVar[str] = "kinit and aklog"

    cell: str = ""
    ccache: str = ""
    principal: str = ""
    keytab: str = ""

    @property
    def location(self) -> str:
        return f"AFS cell {self.cell}" if self.cell else "the AFS cache manager"

    def kerberos(self) -> KerberosTicket:
        """The Kerberos ticket its renewal goes through."""
        ticket = KerberosTicket(ccache=self.ccache, principal=self.principal, keytab=self.keytab)
        ticket.set_command_timeout(self._timeout)
        return ticket

    def default_renew_command(self) -> list[str]:
        return ["aklog", "-c", self.cell] if self.cell else ["aklog"]

    async def _read(self) -> CredentialInfo:
        outcome = await run_command(["tokens"], timeout=self._timeout, env={"LC_ALL": "C"})
        if outcome.returncode != 0:
            raise CredentialError(f"`tokens` failed: {outcome.complaint()}")
        tokens = parse_tokens(outcome.stdout)
        chosen = [t for t in tokens if not self.cell or t.cell == self.cell]
        if not chosen:
            raise self._absent(f"no AFS token for {self.cell or 'any cell'}")
        token = chosen[0]
        identity = f"AFS ID {token.afs_id}@{token.cell}" if token.afs_id else token.cell
        return self._info(identity=identity, expiry=token.expires, details={"cell": token.cell})

    async def _renew(self, interactive: bool) -> None:
        if self.renew_command:
            await super()._renew(interactive)
            return
        await self.kerberos().renew(interactive=interactive)
        env = {"KRB5CCNAME": self.ccache} if self.ccache else None
        try:
            outcome = await self._run(self.default_renew_command(), interactive=interactive, env=env)
            self._check_renewal(outcome, interactive)
        except RenewalError as exc:
            raise RenewalError(f"{exc} (the Kerberos ticket was renewed)",
                               needs_user=exc.needs_user) from None
