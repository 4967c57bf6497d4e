"""The plain-Python interface (Ganga's GPI): jobs without ``async``, in scripts, IPython, Jupyter.

::

    from ganga_async.gpi import *

    j = Job(application=Executable(exe="/bin/echo"),
            splitter=ArgSplitter(args=[[str(i)] for i in range(20)]))
    j.submit()
    j.wait(timeout=60)
    j.subjobs[3].peek("stdout")  # what subjob 3 printed; peek() lists its files
    jobs                       # a table of every job
    jobs.select(status="failed")
    config["Local"]["max_concurrent"] = 4
    j.prepare(); j.application.is_prepared   # ShareDir(name='conf-...', subdir='.')
    shareref                   # the ShareDirs and their reference counts
    box.add(j, "analysis"); box["analysis"]

    t = CoreTask(name="analysis"); t.float = 10   # a task: units that make their own jobs
    t.appendTransform(CoreTransform(application=Executable(exe="/bin/echo"),
                                    unit_splitter=ArgSplitter(args=[["a"], ["b"]])))
    t.run(); t.overview(); tasks

    j = Job(credentials=[VomsProxy(vo="lhcb")])   # held, not failed, while the proxy is short
    credential_store                               # a table of the credentials on this machine
    KerberosTicket().timeleft()                    # the credential methods, without await
    credential_store.renew("VomsProxy")

The first use starts this interpreter's session: an :class:`~ganga_async.Engine` running in a
daemon thread with its own event loop, so the interface also works where a loop already runs in
the main thread (Jupyter, ``asyncio.run``). Every method here calls the engine through an anyio
blocking portal and blocks only the calling thread; the engine monitors jobs in the background
meanwhile. When the interpreter exits the engine is closed (queued repository writes are
flushed); Local jobs still running keep running and the next session picks them up.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

from .. import _blocking, _sharedir
from .._component import Component
from ..applications.executable import Executable
from ..backends.condor import Condor
from ..backends.dask import Dask
from ..backends.local import Local
from ..backends.slurm import Slurm
from ..credentials import afs as _afs
from ..credentials import base as _credentials
from ..credentials import kerberos as _kerberos
from ..credentials import token as _token
from ..credentials import x509 as _x509
from ..engine import Engine
from ..model import job as _core
from ..model.retry import Retry
from ..model.task import CoreTransform, TaskChainInput
from ..postprocessors.checkers import CustomChecker, FileChecker
from ..postprocessors.mergers import CustomMerger, SmartMerger, TextMerger
from ..postprocessors.notifiers import Notifier, WebhookNotifier
from ..prepared.sharedir import ShareDir
from ..prepared.shareref import render_table
from ..splitters.arg import ArgSplitter
from ..splitters.files import FileSplitter
from ..splitters.generic import GenericSplitter
from ._jobs import Job, jobs
from ._jobs import JobRegistry as JobRegistry
from ._jobs import JobSlice as JobSlice
from ._jobs import SubjobSlice as SubjobSlice
from ._jobs import adopt as _adopt
from ._session import Text as _Text
from ._session import attach as attach
from ._session import config
from ._session import run as _run
from ._session import session as _session
from ._tasks import CoreTask, tasks

__all__ = [
    "AFSToken",
    "ArgSplitter",
    "BearerToken",
    "Condor",
    "CoreTask",
    "CoreTransform",
    "CredentialStore",
    "CustomChecker",
    "CustomMerger",
    "Dask",
    "Executable",
    "FileChecker",
    "FileSplitter",
    "GenericSplitter",
    "Job",
    "KerberosTicket",
    "Local",
    "Notifier",
    "Retry",
    "ShareDir",
    "Slurm",
    "SmartMerger",
    "TaskChainInput",
    "TextMerger",
    "VomsProxy",
    "WebhookNotifier",
    "X509Proxy",
    "box",
    "config",
    "credential_store",
    "jobs",
    "shareref",
    "tasks",
]


# -- credentials ---------------------------------------------------------------------------

def _call(credential: _credentials.Credential, method: str, *args: Any) -> Any:
    """Run the async ``method`` of the engine's own instance of ``credential`` (shared with the
    credential gate, so readings and renewals are shared too) and return its result."""
    return _run(lambda engine: getattr(engine.credentials.managed(credential), method)(*args))


class _Blocking(_credentials.Credential):
    """The credential methods without ``await``: each runs in the session's engine thread.

    ``renew()`` goes through the engine's credential manager, so it shares a renewal already
    under way; in a terminal the renewal command may ask for a password.
    """

    def identity(self) -> str:  # type: ignore[override]
        """Who the credential says you are (a DN, a principal, a token's subject)."""
        return cast(str, _call(self, "identity"))

    def timeleft(self) -> float:  # type: ignore[override]
        """Seconds before it expires; 0 when it is expired, absent or unusable."""
        return cast(float, _call(self, "timeleft"))

    def expiry_time(self) -> datetime | None:  # type: ignore[override]
        """When it expires, or None when it is absent or unusable."""
        return cast("datetime | None", _call(self, "expiry_time"))

    def is_valid(self, min_time_left: float | str = 0) -> bool:  # type: ignore[override]
        """True when it has at least ``min_time_left`` left (seconds, or "1h", "30m")."""
        return cast(bool, _call(self, "is_valid", min_time_left))

    def exists(self) -> bool:  # type: ignore[override]
        """True when there is something at its location (valid or not)."""
        return cast(bool, _call(self, "exists"))

    def info(self) -> _credentials.CredentialInfo:  # type: ignore[override]
        """Everything known about it now (location, identity, expiry, problem)."""
        return cast(_credentials.CredentialInfo, _call(self, "info"))

    def renew(self, *, interactive: bool | None = None) -> _credentials.CredentialInfo:  # type: ignore[override]
        """Renew it (raises :class:`~ganga_async.RenewalError` when that fails). ``interactive``
        (default: when stdin is a terminal) lets the command ask for a password."""
        asked = sys.stdin.isatty() if interactive is None else interactive
        return _run(lambda engine: engine.credentials.renew(self, interactive=asked))


class X509Proxy(_Blocking, _x509.X509Proxy):
    __doc__ = _x509.X509Proxy.__doc__


class VomsProxy(_Blocking, _x509.VomsProxy):
    __doc__ = _x509.VomsProxy.__doc__


class KerberosTicket(_Blocking, _kerberos.KerberosTicket):
    __doc__ = _kerberos.KerberosTicket.__doc__


class AFSToken(_Blocking, _afs.AFSToken):
    __doc__ = _afs.AFSToken.__doc__


class BearerToken(_Blocking, _token.BearerToken):
    __doc__ = _token.BearerToken.__doc__


_BLOCKING: dict[str, type[_Blocking]] = {
    cls.__name__: cls for cls in (X509Proxy, VomsProxy, KerberosTicket, AFSToken, BearerToken)
}


def _as_blocking(credential: _credentials.Credential) -> _credentials.Credential:
    """The same credential with the methods of this interface (when its type is one of ours)."""
    cls = _BLOCKING.get(type(credential).__name__)
    if cls is not None and isinstance(credential, cls.__bases__[1]):
        credential.__class__ = cls
    return credential


class CredentialStoreView:
    """The credentials on this machine, as Ganga's ``credential_store``.

    ``credential_store.get_credentials()`` (or ``getCredentials()``) lists those found now;
    ``credential_store.renew()`` renews them (``renew("VomsProxy")`` only that type); its repr
    is a table with each one's identity, location and time left.
    """

    def __call__(self) -> CredentialStoreView:
        """``CredentialStore()`` is the store itself, as Ganga's ``credential_store``."""
        return self

    def get_credentials(self) -> list[_credentials.Credential]:
        """The credentials found in the default places and the configured defaults that exist."""
        found = _run(lambda engine: engine.credentials.store.get_credentials())
        return [_as_blocking(c) for c in found]

    getCredentials = get_credentials  # noqa: N815 (Ganga's name)

    def renew(self, type_name: str | None = None, *, interactive: bool | None = None) -> None:
        """Renew every credential found (or those of ``type_name``) through the engine's
        credential manager, as each one's ``renew()`` does; raise the first failure."""
        asked = sys.stdin.isatty() if interactive is None else interactive
        results = _run(lambda engine: engine.credentials.renew_all(type_name, interactive=asked))
        for _, outcome in results:
            if isinstance(outcome, BaseException):
                raise outcome

    def __iter__(self) -> Iterator[_credentials.Credential]:
        return iter(self.get_credentials())

    def __len__(self) -> int:
        return len(self.get_credentials())

    def __repr__(self) -> str:
        infos = _run(_credential_infos)
        if not infos:
            return "Credentials: none found"
        rows = [(i.description, i.identity or "", i.location, _left(i), i.problem or "") for i in infos]
        head = ("credential", "identity", "location", "time left", "problem")
        widths = [max(len(r[k]) for r in [head, *rows]) for k in range(len(head))]
        lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                 for r in [head, *rows]]
        return "\n".join([f"Credentials ({len(rows)})", lines[0], "-" * len(lines[0]), *lines[1:]])


async def _credential_infos(engine: Engine) -> list[_credentials.CredentialInfo]:
    return [await c.info() for c in await engine.credentials.store.get_credentials()]


def _left(info: _credentials.CredentialInfo) -> str:
    from .._duration import format_duration

    return format_duration(info.time_left()) if info.exists and not info.problem else "-"


credential_store = CredentialStoreView()
"""The credentials on this machine: ``credential_store.get_credentials()``, ``renew()``."""

CredentialStore = credential_store
"""Ganga's other name of the store: ``for c in CredentialStore.getCredentials(): ...``."""


class ShareRefRegistry:
    """The reference counts of prepared applications' ShareDirs, as Ganga's ``shareref``.

    Its repr is the table (Shared directory | Date created | Reference count). A count is one
    per stored job or box entry whose application is prepared, plus one per prepared
    application alive in this session on its own. ShareDirs left with no reference are
    deleted when the session ends.
    """

    def counts(self) -> dict[str, int]:
        """``{ShareDir name: reference count}``."""
        return _run(lambda engine: engine.shareref.counts())

    def ls(self, name: str) -> str:
        """The tree of the ShareDir ``name`` (``conf-<uuid>``)."""
        return _Text(_run(lambda engine: engine.shareref.ls(name)))

    def rebuild(self, unprepare: bool = True, rmdir: bool = False) -> dict[str, int]:
        """Rebuild the table from the jobs and the box; see
        :meth:`ganga_async.ShareRef.rebuild`. Returns the new counts."""
        return _run(lambda engine: engine.shareref.rebuild(unprepare, rmdir))

    def lookup(self, name: str, unprepare: bool = False) -> list[str]:
        """Log and return the stored jobs and box entries referencing ShareDir ``name``
        (``job:3``, ``box:analysis``); ``unprepare=True`` unprepares them."""
        return _run(lambda engine: engine.shareref.lookup(name, unprepare))

    def __repr__(self) -> str:
        rows = _run(lambda engine: engine.shareref.table())
        _, engine = _session.open()
        return render_table(rows, engine.shared.root)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


shareref = ShareRefRegistry()
"""The ShareDirs of prepared applications and their reference counts."""


class BoxRegistry:
    """Named jobs and applications kept in the repository, as Ganga's ``box``.

    ``box.add(j, "analysis")`` keeps a copy of job ``j``'s description; ``box["analysis"]``
    gives a new copy of it each time (submit it, or ``copy()`` it); ``box.remove("analysis")``.
    ``"analysis" in box``, ``len(box)``, iteration over the names; the repr lists the entries.
    A prepared application in an entry holds a reference to its ShareDir.
    """

    def add(self, obj: _core.Job | Component, name: str) -> None:
        """Keep a copy of ``obj`` (a job, an application, a backend or a splitter) as ``name``."""
        _run(lambda engine: engine.box.add(obj, name))

    def __getitem__(self, name: str) -> Job | Component:
        obj = _run(lambda engine: engine.box.get(name))
        return _adopt(obj) if isinstance(obj, _core.Job) else obj

    def remove(self, name: str) -> None:
        """Delete the entry ``name``."""
        _run(lambda engine: engine.box.remove(name))

    def _names(self) -> list[str]:
        return [entry.name for entry in _run(lambda engine: engine.box.entries())]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __repr__(self) -> str:
        entries = _run(lambda engine: engine.box.entries())
        rows = [["name", "kind", "type", "sharedir"]]
        rows += [[e.name, e.kind, e.type, e.sharedir or ""] for e in entries]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in rows]
        title = f"Registry: box ({len(entries)} {'entry' if len(entries) == 1 else 'entries'})"
        return "\n".join([title, lines[0], "-" * len(lines[0]), *lines[1:]])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


box = BoxRegistry()
"""Named jobs and applications kept in the repository."""


def _run_on_engine(method: str, *args: Any, **kwargs: Any) -> Any:
    return _run(lambda engine: getattr(engine, method)(*args, **kwargs))


_blocking.install(_run_on_engine)
_sharedir.use_root(lambda: _session.open()[1].shared.root)
