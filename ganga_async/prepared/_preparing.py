"""Preparing and unpreparing applications, and who holds references through them.

An application keeps, in ``_holders``, a callback for each holder that references its ShareDir
through it: its session holder while it belongs to no persisted owner, and each stored job it
is the application of. Whenever ``is_prepared`` changes every callback runs; callbacks never
block and may run in any thread, and the ShareRef actor then re-reads each holder.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .._exceptions import JobStateError
from .._log import get_logger
from .sharedir import SharedArea, ShareDir

if TYPE_CHECKING:
    from ..applications.base import Application
    from .shareref import ShareRef

__all__ = ["holders", "notify", "hold_in_session", "attach", "prepare", "unprepare"]

log = get_logger(__name__)

SESSION = "session:"


def holders(app: Application) -> dict[str, Callable[[], None]]:
    """The holders referencing a ShareDir through ``app`` (key: holder name)."""
    found: dict[str, Callable[[], None]] = app.__dict__.setdefault("_holders", {})
    return found


def notify(app: Application) -> None:
    """Tell every holder of ``app`` that its prepared state changed."""
    for callback in list(holders(app).values()):
        callback()


def _owned(app: Application) -> bool:
    return any(not key.startswith(SESSION) for key in list(holders(app)))


def _session_sharedir(ref: weakref.ref[Application]) -> str | None:
    """What a session holder references: its application's ShareDir while the application is
    alive, prepared and not part of a persisted owner."""
    app = ref()
    if app is None or _owned(app):
        return None
    sharedir = app.is_prepared
    return sharedir.name if sharedir is not None else None


def hold_in_session(app: Application, shareref: ShareRef | None = None) -> None:
    """Count a prepared application that belongs to no persisted owner for as long as it lives,
    then tell every holder of ``app`` that its prepared state or its owners changed.

    An application with holders already has its session holder, or an owner; a session holder
    is added when it has neither.
    """
    shareref = shareref or app.__dict__.get("_shareref")
    if shareref is not None and app.is_prepared is not None:
        object.__setattr__(app, "_shareref", shareref)
        if not holders(app):
            key = shareref.new_session_holder()
            probe = functools.partial(_session_sharedir, weakref.ref(app))
            holders(app)[key] = functools.partial(shareref.refresh_soon, key, probe)
            weakref.finalize(app, shareref.refresh_soon, key, probe)
    notify(app)


def attach(app: Application, key: str, callback: Callable[[], None], shareref: ShareRef,
           *, announce: bool = True) -> None:
    """Make persisted owner ``key`` hold its reference through ``app``."""
    object.__setattr__(app, "_shareref", shareref)
    holders(app)[key] = callback
    if announce:
        notify(app)


def detach(app: Application, key: str) -> None:
    """``app`` stopped being the application of owner ``key``: it counts for the session again."""
    holders(app).pop(key, None)
    hold_in_session(app)


async def prepare(app: Application, area: SharedArea, shareref: ShareRef, *,
                  force: bool = False) -> ShareDir:
    """Copy what ``app`` needs into a new ShareDir, make ``app`` prepared and return once its
    reference is committed. On failure nothing is left: no directory and no count."""
    if app._frozen_by is not None:
        raise JobStateError(
            f"the application is read-only: {app._frozen_by}; make an editable copy with job.copy()"
        )
    previous = app.is_prepared
    if previous is not None and not force:
        raise JobStateError(
            f"{app.plugin_name} application is already prepared (ShareDir {previous.name}); "
            "use prepare(force=True) to prepare it again into a new ShareDir"
        )
    sources = await anyio.to_thread.run_sync(app.preparable_files)
    log.info(f"Preparing {app.plugin_name} application.")
    sharedir = await area.create(sources)
    log.info(f"Created shared directory: {area.root / sharedir.name}")
    object.__setattr__(app, "is_prepared", sharedir)
    try:
        hold_in_session(app, shareref)
        await shareref.flush()
    except BaseException:
        object.__setattr__(app, "is_prepared", previous)
        notify(app)
        with anyio.CancelScope(shield=True):
            await area.remove(sharedir.name)
        raise
    return sharedir


def unprepare(app: Application) -> bool:
    """Leave the prepared state (whatever the job's status) and release the references;
    False when ``app`` was not prepared."""
    if app.is_prepared is None:
        return False
    log.info("Unpreparing application.")
    object.__setattr__(app, "is_prepared", None)
    notify(app)
    return True
