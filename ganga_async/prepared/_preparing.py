"""Preparing and unpreparing applications, and who holds references through them.

Each application the engine has seen gets one :class:`Holders`, registered as its
:class:`~ganga_async.applications.PreparedListener`: a callback for each holder that
references its ShareDir through it (its session holder while it belongs to no persisted
owner, and each stored job it is the application of), and the ShareRef actor they post to.
Whenever ``is_prepared`` changes every callback runs; callbacks never block and may run in
any thread, and the ShareRef actor then re-reads each holder.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .._component import frozen_by
from .._exceptions import JobStateError
from .._log import get_logger, user_logger
from ..model.job import Job
from ..states import Status
from .sharedir import SharedArea, ShareDir
from .shareref import SESSION, ShareRef

if TYPE_CHECKING:
    from ..applications.base import Application

__all__ = ["Holders", "application_of", "hold_in_session", "attach", "detach", "prepare", "unprepare"]

log = get_logger(__name__)
say = user_logger()


class Holders:
    """The holders referencing a ShareDir through one application (its prepared-state
    listener): ``callbacks`` by holder name, and the ShareRef actor of the engine that
    last took the application in."""

    def __init__(self, shareref: ShareRef) -> None:
        self.shareref = shareref
        self.callbacks: dict[str, Callable[[], None]] = {}

    def notify(self) -> None:
        """Tell every holder that the prepared state or the owners changed."""
        for callback in list(self.callbacks.values()):
            callback()

    def owned(self) -> bool:
        """Whether a persisted owner (not only the session) holds through the application."""
        return any(not key.startswith(SESSION) for key in list(self.callbacks))

    def hold_in_session(self, app: Application) -> None:
        """Give ``app`` a session holder, counted for as long as it lives."""
        key = self.shareref.new_session_holder()
        probe = functools.partial(_session_sharedir, weakref.ref(app))
        self.callbacks[key] = functools.partial(self.shareref.refresh_soon, key, probe)
        weakref.finalize(app, self.shareref.refresh_soon, key, probe)

    def prepared_changed(self, app: Application) -> None:
        self.notify()

    def copied(self, original: Application, clone: Application) -> None:
        hold_in_session(clone, self.shareref)


def _find(app: Application) -> Holders | None:
    for listener in app.prepared_listeners():
        if isinstance(listener, Holders):
            return listener
    return None


def _track(app: Application, shareref: ShareRef) -> Holders:
    """The holders of ``app``, registered now if it had none; they post to ``shareref``."""
    holders = _find(app)
    if holders is None:
        holders = Holders(shareref)
        app.add_prepared_listener(holders)
    holders.shareref = shareref
    return holders


def _session_sharedir(ref: weakref.ref[Application]) -> str | None:
    """What a session holder references: its application's ShareDir while the application is
    alive, prepared and not part of a persisted owner."""
    app = ref()
    if app is None:
        return None
    holders = _find(app)
    if holders is not None and holders.owned():
        return None
    sharedir = app.is_prepared
    return sharedir.name if sharedir is not None else None


def hold_in_session(app: Application, shareref: ShareRef | None = None) -> None:
    """Count a prepared application that belongs to no persisted owner for as long as it lives,
    then tell every holder of ``app`` that its prepared state or its owners changed.

    An application with holders already has its session holder, or an owner; a session holder
    is added when it has neither. ``shareref`` defaults to the one ``app`` was last seen by.
    """
    holders = _find(app)
    shareref = shareref or (holders.shareref if holders is not None else None)
    if shareref is not None and app.is_prepared is not None:
        holders = _track(app, shareref)
        if not holders.callbacks:
            holders.hold_in_session(app)
    if holders is not None:
        holders.notify()


def attach(app: Application, key: str, callback: Callable[[], None], shareref: ShareRef,
           *, announce: bool = True) -> None:
    """Make persisted owner ``key`` hold its reference through ``app``."""
    holders = _track(app, shareref)
    holders.callbacks[key] = callback
    if announce:
        holders.notify()


def detach(app: Application, key: str) -> None:
    """``app`` stopped being the application of owner ``key``: it counts for the session again."""
    holders = _find(app)
    if holders is not None:
        holders.callbacks.pop(key, None)
    hold_in_session(app)


async def prepare(app: Application, area: SharedArea, shareref: ShareRef, *,
                  force: bool = False) -> ShareDir:
    """Copy what ``app`` needs into a new ShareDir, make ``app`` prepared and return once its
    reference is committed. On failure nothing is left: no directory and no count."""
    reason = frozen_by(app)
    if reason is not None:
        raise JobStateError(
            f"the application is read-only: {reason}; make an editable copy with job.copy()"
        )
    previous = app.is_prepared
    if previous is not None and not force:
        raise JobStateError(
            f"{app.plugin_name} application is already prepared (ShareDir {previous.name}); "
            "use prepare(force=True) to prepare it again into a new ShareDir"
        )
    sources = await anyio.to_thread.run_sync(app.preparable_files)
    say.info(f"Preparing {app.plugin_name} application.")
    sharedir = await area.create(sources)
    say.info(f"Created shared directory: {area.root / sharedir.name}")
    try:
        holders = _track(app, shareref)
        if not holders.callbacks:
            holders.hold_in_session(app)
        app.mark_prepared(sharedir)
        await shareref.flush()
    except BaseException:
        app.mark_prepared(previous)
        with anyio.CancelScope(shield=True):
            await area.remove(sharedir.name)
        raise
    return sharedir


def unprepare(app: Application) -> bool:
    """Leave the prepared state (whatever the job's status) and release the references;
    False when ``app`` was not prepared."""
    if app.is_prepared is None:
        return False
    say.info("Unpreparing application.")
    app.mark_prepared(None)
    return True


def application_of(target: Job | Application, verb: str) -> Application:
    """The application of a new master job (or ``target`` itself when it is an application) to
    be ``verb`` (prepared, unprepared); a one-line JobStateError for any other job."""
    if not isinstance(target, Job):
        return target
    if target.master is not None:
        raise JobStateError(f"subjob {target.fqid} cannot be {verb} on its own; use its master")
    if target.status is not Status.NEW:
        raise JobStateError(
            f"job {target.fqid} is {target.status}: only a new job can be {verb}; make an "
            "editable copy with job.copy() (copy(unprepare=True) for an unprepared one)"
        )
    return target.application
