"""Notifiers: tell a person when a job ends or a subjob fails.

A notifier hears the job's status transitions (the engine's events, whoever submitted the
job: the engine, the daemon) and sends, in a worker thread so the event loop never waits:

- when the master (or an unsplit job) reaches a final status;
- when a subjob fails, unless a retry policy will take it again;
- with ``verbose=True``, on every transition of the job and its subjobs.

:class:`Notifier` mails through ``[Configuration] SMTPHost`` (``host`` or ``host:port``),
whatever the log level (Ganga mailed only when verbose, ganga-devs/ganga#1894);
:class:`WebhookNotifier` POSTs the event as JSON (chat tools' incoming webhooks).
"""

from __future__ import annotations

import dataclasses
import getpass
import json
from typing import Any, ClassVar

from .._exceptions import JobSpecError, PostProcessError
from ..config import Config
from .base import PostProcessor

__all__ = ["Notification", "NotifierBase", "Notifier", "WebhookNotifier"]

_TIMEOUT = 30.0
"""Seconds a mail server or a webhook may take."""


@dataclasses.dataclass(frozen=True, slots=True)
class Notification:
    """One transition worth telling: ``fqid`` (``"3"`` or ``"3.17"``), the job's name, the
    statuses, the reason and the time (seconds since the epoch)."""

    fqid: str
    name: str
    old: str
    new: str
    reason: str | None
    time: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(kw_only=True, repr=False)
class NotifierBase(PostProcessor):
    """Base class of notifiers: ``verbose`` also tells of every transition."""

    order: ClassVar[int] = 3

    verbose: bool = False

    def wants(self, note: Notification, *, subjob: bool, final: bool, retried: bool) -> bool:
        """Whether this transition is told: a master's (or unsplit job's) final status, a
        subjob's failure, unless the retry policy takes it (``retried``), or anything when
        ``verbose``."""
        if self.verbose:
            return True
        if retried:
            return False
        return final if not subjob else note.new == "failed"

    def send(self, note: Notification, config: Config) -> None:
        """Tell of ``note`` (blocking; the engine calls it in a worker thread);
        PostProcessError when it cannot."""
        raise NotImplementedError


@dataclasses.dataclass(kw_only=True, repr=False)
class Notifier(NotifierBase):
    """Mail ``address`` through ``[Configuration] SMTPHost``."""

    address: str = ""

    def validate(self) -> None:
        if "@" not in self.address:
            raise JobSpecError(f"{self.label}.address",
                               f"{self.address!r} is not a mail address; give e.g. 'me@example.org'")

    def send(self, note: Notification, config: Config) -> None:
        host = str(config["Configuration"]["SMTPHost"])
        if not host:
            raise PostProcessError(f"{self.label}: [Configuration] SMTPHost is empty; set it to "
                                   "your mail server (host or host:port)")
        # Imported here: mail and HTTP are a tenth of importing ganga_async, for one job in many.
        import smtplib
        from email.message import EmailMessage

        name, _, port = host.partition(":")
        user = getpass.getuser()
        message = EmailMessage()
        message["Subject"] = (f"ganga-async: job {note.fqid}{f' ({note.name})' if note.name else ''}"
                              f" is {note.new}")
        message["From"] = f"{user}@localhost"
        message["To"] = self.address
        message.set_content(
            f"Job {note.fqid}{f', {note.name},' if note.name else ''} went from {note.old} to "
            f"{note.new}.\n" + (f"Reason: {note.reason}\n" if note.reason else "")
            + "\nThis is an automatic message from ganga-async; remove the Notifier from the "
            "job's postprocessors to stop them.\n")
        try:
            with smtplib.SMTP(name, int(port or 25), timeout=_TIMEOUT) as smtp:
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            raise PostProcessError(f"{self.label}: mailing {self.address} through {host} "
                                   f"failed: {exc}") from exc


@dataclasses.dataclass(kw_only=True, repr=False)
class WebhookNotifier(NotifierBase):
    """POST each notification as JSON to ``url`` (``{"fqid": "3", "new": "completed", ...}``
    and a ``text`` line for chat tools)."""

    url: str = ""

    def validate(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise JobSpecError(f"{self.label}.url",
                               f"{self.url!r} is not an http(s) URL; give the webhook's address")

    def send(self, note: Notification, config: Config) -> None:
        import urllib.error
        import urllib.request

        body = note.as_dict()
        body["text"] = f"ganga-async: job {note.fqid} is {note.new}" + (
            f" ({note.reason})" if note.reason else "")
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT) as reply:  # noqa: S310 (http(s) only, checked)
                reply.read()
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise PostProcessError(f"{self.label}: POST to {self.url} failed: {exc}") from exc
