"""The CredentialManager: gates submission and monitoring on credentials' time left, and renews.

The engine owns one manager and runs :meth:`CredentialManager.run` in its task group:

- the submit stage asks :meth:`~CredentialManager.check` before a chunk of (sub)jobs goes to its
  backend. When a credential is short the chunk is *held* (status ``held``, with the reason) and
  handed to :meth:`~CredentialManager.hold`; the manager resumes it by itself as soon as every
  credential it needs has enough time left again (a new proxy file, a renewed ticket), looking
  every ``[Credentials] check_interval``;
- each backend's monitor asks :meth:`~CredentialManager.expired` before a sweep and pauses while
  a credential its jobs need has expired (answered from the watcher's last readings);
- the watcher renews a credential once its time left falls under ``min_time_left`` plus
  ``renew_margin``, and publishes :class:`~ganga_async.events.CredentialEvent`\\ s (logged too)
  when it runs short, expires, is renewed, or cannot be.

Renewal is single-flight: whoever asks while a renewal of the same credential runs waits for it
and shares its outcome. A renewal that failed because it needs a person (a password) is not
tried again automatically until the credential changes or becomes valid; other failures are
tried again after :data:`RETRY_AFTER` seconds.
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .. import _plugins
from .._component import JobView
from .._duration import format_duration
from .._exceptions import JobSpecError, RenewalError
from .._log import get_logger
from ..events import CredentialEvent
from .base import Credential, CredentialInfo
from .store import CredentialStore, default_entries

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["CredentialManager", "Requirement", "Waiter", "RETRY_AFTER"]

log = get_logger(__name__)

RETRY_AFTER = 300.0
"""Seconds before an automatic renewal that failed (not for want of a password) is tried again."""


@dataclasses.dataclass(frozen=True, slots=True)
class Requirement:
    """A credential a job needs, and the time it must have left."""

    credential: Credential
    min_time_left: float


@runtime_checkable
class _RequiresCredentials(Protocol):
    """A component naming credentials its jobs need: a backend (``Backend.required_credentials``)."""

    def required_credentials(self) -> Sequence[Credential]: ...


class Waiter(Protocol):
    """Held work: what it needs, how to resume it, and where to put the reason it waits."""

    needs: Sequence[Requirement]

    async def resume(self) -> None: ...

    def explain(self, reason: str) -> None: ...


class _Flight:
    """One renewal under way, shared by everyone who asks meanwhile."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.info: CredentialInfo | None = None
        self.error: RenewalError | None = None


class CredentialManager:
    """Gates submission and monitoring on credentials; one per engine (see the module doc).

    ``publish`` receives every :class:`CredentialEvent` (the engine forwards them to
    ``engine.credential_events()`` subscribers).
    """

    def __init__(self, config: Config, publish: Callable[[CredentialEvent], None] | None = None) -> None:
        self.config = config
        self.store = CredentialStore(config)
        self._publish = publish or (lambda event: None)
        self._managed: dict[str, Credential] = {}
        self._thresholds: dict[str, float] = {}
        self._flights: dict[str, _Flight] = {}
        self._failed: dict[str, tuple[Hashable, float, bool]] = {}
        self._alerts: dict[str, str] = {}
        self._readings: dict[str, CredentialInfo] = {}
        self._waiters: list[Waiter] = []
        self._wake = anyio.Event()
        self._swept = anyio.Event()
        self._job_needs: weakref.WeakKeyDictionary[JobView, list[Requirement]] = weakref.WeakKeyDictionary()
        self._tg: TaskGroup | None = None

    # -- what jobs need ---------------------------------------------------------------

    def managed(self, credential: Credential) -> Credential:
        """The manager's own instance of ``credential`` (one per distinct credential, so that
        every job needing it shares its readings and its renewals)."""
        key = credential.key()
        found = self._managed.get(key)
        if found is None:
            cls: type[Credential] = _plugins.load("credential", credential.plugin_name)
            data = credential.to_dict()
            data.pop("type")
            found = self.store.configured(cls.from_fields(data, where="credentials"))
            self._managed[key] = found
        return found

    def requirements(self, job: JobView) -> list[Requirement]:
        """What ``job`` needs: its own ``credentials``, its backend's, and the configured
        defaults for its backend and application, each once. Worked out once per stored job
        (kept with the job object: a removed job's id may be given to a new one)."""
        known = self._job_needs.get(job)
        if known is not None:
            return known
        backend = job.backend
        needed = self.store.min_time_left(backend.plugin_name)
        chosen: dict[str, Credential] = {}
        candidates = list(job.credentials)
        if isinstance(backend, _RequiresCredentials):
            candidates += backend.required_credentials()
        candidates += [entry.credential for entry in default_entries(self.config)
                       if entry.applies(backend.plugin_name, job.application.plugin_name)]
        for credential in candidates:
            if not isinstance(credential, Credential):
                raise JobSpecError("credentials", f"{credential!r} is not a credential")
            chosen.setdefault(credential.key(), credential)
        needs = [Requirement(self.managed(c), needed) for c in chosen.values()]
        self._watch(needs)
        if job.id is not None:
            self._job_needs[job] = needs
        return needs

    # -- gating -----------------------------------------------------------------------

    async def check(self, needs: Sequence[Requirement]) -> str | None:
        """None when every need has its time left; else why not and what to do."""
        return _shortfall([(need, await need.credential.info()) for need in needs])

    async def expired(self, needs: Sequence[Requirement]) -> str | None:
        """None when no credential in ``needs`` has expired (the monitor's test); else why.

        Asked before every poll, so it answers from the watcher's last readings: an expiry
        shows at once (the time left is counted from the reading's expiry), a replaced or
        renewed credential by the next look, at most ``check_interval`` later. Only a
        credential the watcher has not read yet is read here.
        """
        reasons = []
        for need in needs:
            info = self._readings.get(need.credential.key()) or await need.credential.info()
            if info.time_left() <= 0:
                reasons.append(need.credential.reason(info, 1.0))
        return "; ".join(reasons) or None

    def _watch(self, needs: Sequence[Requirement]) -> None:
        """Have the watcher keep these credentials above their thresholds from now on."""
        for need in needs:
            key = need.credential.key()
            self._managed.setdefault(key, need.credential)
            self._thresholds[key] = max(self._thresholds.get(key, 0.0), need.min_time_left)

    def hold(self, waiter: Waiter) -> None:
        """Keep ``waiter`` until its needs are met, then call its ``resume``."""
        self._watch(waiter.needs)
        self._waiters.append(waiter)
        self._wake.set()

    async def next_sweep(self) -> None:
        """Wait until the manager has looked at its credentials again (at most
        ``check_interval`` from now)."""
        self._wake.set()
        await self._swept.wait()

    @property
    def in_use(self) -> bool:
        """True once any job or held work has needed a credential."""
        return bool(self._thresholds)

    @property
    def held(self) -> int:
        """How many held chunks wait."""
        return len(self._waiters)

    # -- renewal ----------------------------------------------------------------------

    async def renew(self, credential: Credential, *, interactive: bool = False) -> CredentialInfo:
        """Renew ``credential`` once for every caller that asks while it runs (single-flight).

        Raises :class:`RenewalError` when it fails; every caller sharing the attempt gets it.
        An explicit call always tries, even after an automatic attempt failed.
        """
        managed = self.managed(credential)
        key = managed.key()
        flight = self._flights.get(key)
        if flight is None:
            flight = self._flights[key] = _Flight()
            try:
                flight.info = self._readings[key] = await managed.renew(interactive=interactive)
                self._failed.pop(key, None)
                self._alert(managed, "renewed", flight.info.time_left(),
                            f"renewed: {_left(flight.info)} left", force=True)
            except RenewalError as exc:
                flight.error = exc
                signature = await anyio.to_thread.run_sync(managed.signature)
                self._failed[key] = (signature, time.monotonic(), exc.needs_user)
                info = self._readings[key] = await managed.info()
                self._alert(managed, "renewal_failed", info.time_left(), str(exc), force=True)
            finally:
                del self._flights[key]
                flight.done.set()
                self._wake.set()
        else:
            await flight.done.wait()
        if flight.error is not None:
            raise flight.error
        assert flight.info is not None
        return flight.info

    async def renew_all(
        self, type_name: str | None = None, *, interactive: bool = False
    ) -> list[tuple[Credential, CredentialInfo | RenewalError]]:
        """Renew every credential found (only those of ``type_name`` when given, as
        :meth:`CredentialStore.renewable` picks them), each through :meth:`renew`: shared with a
        renewal under way, announced, and waking held work. Return each with its new state or
        the error that stopped it."""
        results: list[tuple[Credential, CredentialInfo | RenewalError]] = []
        for credential in await self.store.renewable(type_name):
            try:
                results.append((credential, await self.renew(credential, interactive=interactive)))
            except RenewalError as exc:
                results.append((credential, exc))
        return results

    async def _auto_renew(self, credential: Credential) -> None:
        try:
            await self.renew(credential)
        except RenewalError:
            pass  # published and logged; held jobs keep waiting with the reason

    async def _may_renew(self, credential: Credential) -> bool:
        """Whether the watcher may try to renew now (never twice for the same failure)."""
        key = credential.key()
        if key in self._flights:
            return False
        failed = self._failed.get(key)
        if failed is None:
            return True
        signature, when, needs_user = failed
        if needs_user:
            now_signature = await anyio.to_thread.run_sync(credential.signature)
            return now_signature is not None and now_signature != signature
        return time.monotonic() - when >= RETRY_AFTER

    # -- the watcher ------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Watch credentials, renew them in time, and resume held work (until cancelled)."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            try:
                while True:
                    self._wake = anyio.Event()
                    await self._sweep()
                    swept, self._swept = self._swept, anyio.Event()
                    swept.set()
                    with anyio.move_on_after(self.config["Credentials"]["check_interval"]):
                        await self._wake.wait()
            finally:
                self._tg = None

    async def _sweep(self) -> None:
        section = self.config["Credentials"]
        for key, threshold in list(self._thresholds.items()):
            credential = self._managed[key]
            info = self._readings[key] = await credential.info()
            left = info.time_left()
            if left >= threshold + section["renew_margin"]:
                self._failed.pop(key, None)
                self._alert(credential, "valid", left, f"valid: {_left(info)} left")
                continue
            if await self._may_renew(credential) and self._tg is not None:
                self._tg.start_soon(self._auto_renew, credential)
                continue
            if left <= 0:
                self._alert(credential, "expired", 0.0, credential.reason(info, threshold))
            elif left < threshold:
                self._alert(credential, "short", left, credential.reason(info, threshold))
            elif key not in self._flights:
                self._alert(credential, "expiring", left,
                            f"{_left(info)} left and it cannot be renewed automatically: "
                            + credential.advice())
        for waiter in list(self._waiters):
            reason = _shortfall([(need, self._readings.get(need.credential.key())
                                  or await need.credential.info())
                                 for need in waiter.needs])
            if reason is None:
                self._waiters.remove(waiter)
                await waiter.resume()
            else:
                waiter.explain(reason)

    def _alert(self, credential: Credential, kind: str, left: float, message: str,
               *, force: bool = False) -> None:
        """Publish and log a change of a credential's condition (each condition once)."""
        key = credential.key()
        previous = self._alerts.get(key)
        if kind == "valid" and previous in (None, "valid", "renewed"):
            self._alerts[key] = "valid"
            return
        if previous == kind and not force:
            return
        self._alerts[key] = kind
        description = credential.describe()
        self._publish(CredentialEvent(kind, description, left, time.time(), message))
        if kind in ("valid", "renewed"):
            log.info("credential " + kind, credential=description, detail=message)
        else:
            log.warning("credential " + kind, credential=description, detail=message)


def _shortfall(readings: Iterable[tuple[Requirement, CredentialInfo]]) -> str | None:
    """None when every credential read has its need's time left; else why not, and what to do."""
    reasons = []
    for need, info in readings:
        if not info.lasts(need.min_time_left):
            reasons.append(need.credential.reason(info, need.min_time_left))
    return "; ".join(reasons) or None


def _left(info: CredentialInfo) -> str:
    return format_duration(info.time_left())
