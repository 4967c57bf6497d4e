"""The ShareRef actor: the one owner of the reference counts of prepared applications' ShareDirs.

The counting rule is one and the same for every splitter: one reference per persisted owner
(a job, however many subjobs it has; a box entry) plus one per prepared application alive in
the session that is not part of a persisted owner. The actor keeps, for every *holder*
(``job:3``, ``box:analysis``, ``session:<id>:<n>``), the name of the ShareDir it references;
a ShareDir's count is the number of holders referencing it.

One task runs the actor (the engine starts it with ``task_group.start``). Every operation is
a message on its bounded inbox and carries a one-shot stream for the reply. Messages that
change a holder carry a *probe*: a function the actor calls when it applies the message and
that returns the ShareDir the holder references at that moment. Messages about one holder
therefore never need to arrive in order: the last one applied reflects the holder as it is.

Group commit: each time the actor wakes it takes every message waiting in the inbox, applies
them, writes all the changes in one repository transaction and only then replies. Code that
cannot wait (a finaliser, a plain attribute assignment) posts with :meth:`ShareRef.refresh_soon`,
from any thread; such posts join the next group.

Nothing else writes the ShareDir tables. Holders are rows of their own, so engines of several
processes on one gangadir never overwrite each other's counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._exceptions import EngineClosedError, ShareDirError
from .._log import get_logger, user_logger
from ..persistence.repository import Repository
from .sharedir import SharedArea, check_name

__all__ = ["ShareRef", "ShareDirInfo", "Owners", "Unprepare", "Probe", "SESSION", "holder_label",
           "render_table"]

log = get_logger(__name__)
say = user_logger()

SESSION = "session:"
"""The prefix of the holders that stand for applications alive in a session."""

Probe = Callable[[], "str | None"]
"""Returns the name of the ShareDir a holder references now, or None."""

_BATCH_LIMIT = 8192
"""Most messages applied in one group (one transaction)."""


Owners = Callable[[], Awaitable[list[tuple[str, str]]]]
"""Reads ``(holder, ShareDir name)`` of every persisted owner from the repository."""

Unprepare = Callable[[Sequence[str]], Awaitable[None]]
"""Unprepares the applications of these owners (``job:3``, ``box:name``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ShareDirInfo:
    """One line of the shareref table."""

    name: str
    created: float
    count: int
    exists: bool


@dataclasses.dataclass(slots=True, eq=False)
class _Request:
    op: str
    args: dict[str, Any]
    reply: MemoryObjectSendStream[Any]


_WAKE = object()
"""Sent when something was posted with refresh_soon while the inbox was idle."""

_Message = _Request | object


def holder_label(holder: str) -> tuple[str, str]:
    """``("job", "3")`` for ``job:3``: the repository and the item a holder stands for."""
    kind, _, ident = holder.partition(":")
    return kind, ident


class ShareRef:
    """The reference counts of ShareDirs; available as ``engine.shareref``.

    ``await shareref.counts()`` gives ``{name: count}``; :meth:`table` the rows Ganga's
    ``shareref`` shows; :meth:`ls` a ShareDir's tree; :meth:`rebuild` and :meth:`lookup`
    repair and inspect. :meth:`incref`/:meth:`decref` set what a named holder references; the
    engine uses :meth:`refresh` and :meth:`refresh_soon` for jobs, box entries and applications.
    """

    def __init__(self, repository: Repository, area: SharedArea, *, owners: Owners,
                 unprepare: Unprepare, inbox_size: int = 4096) -> None:
        self._repository = repository
        self._area = area
        self._owners = owners
        self._unprepare = unprepare
        self._inbox_size = inbox_size
        self._send: MemoryObjectSendStream[_Message] | None = None
        self._session = f"{SESSION}{os.getpid()}-{os.urandom(4).hex()}:"
        self._serial = itertools.count(1)
        self._sharedirs: dict[str, float] = {}
        self._holders: dict[str, str] = {}
        self._counts: Counter[str] = Counter()
        self._dirty: set[str] = set()
        self._new: dict[str, float] = {}
        self._soon: list[tuple[str, Probe]] = []
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._running = False

    # -- lifecycle --------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The actor: load the counts, then serve the inbox until :meth:`aclose` closes it.

        A cancelled task group does not stop it (its loop is shielded): the engine cancels
        its stages first and then, at :meth:`aclose`, has the actor write its last changes
        and clean up.
        """
        self._sharedirs, self._holders = await self._repository.shareref_rows()
        self._counts = Counter(self._holders.values())
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._send, inbox = anyio.create_memory_object_stream[_Message](self._inbox_size)
        self._running = True
        try:
            with anyio.CancelScope(shield=True):
                async with inbox:
                    task_status.started()
                    await self._serve_inbox(inbox)
        finally:
            self._running = False
            self._send.close()

    async def _serve_inbox(self, inbox: MemoryObjectReceiveStream[_Message]) -> None:
        while True:
            try:
                batch = [await inbox.receive()]
            except anyio.EndOfStream:
                return
            while len(batch) < _BATCH_LIMIT:
                try:
                    batch.append(inbox.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            await self._serve(batch)

    async def aclose(self) -> None:
        """At engine close: drop this session's references, delete the ShareDirs nothing
        references any more, unprepare the owners of ShareDirs that vanished from disk, and
        stop the actor."""
        if not self._running:
            return
        try:
            vanished: list[str] = await self._request("cleanup")
            if vanished:
                await self._unprepare(vanished)
        finally:
            self._running = False
            if self._send is not None:
                self._send.close()

    # -- holders ----------------------------------------------------------------------

    def new_session_holder(self) -> str:
        """A holder name for one application alive in this session."""
        return f"{self._session}{next(self._serial)}"

    async def incref(self, holder: str, name: str) -> None:
        """Make ``holder`` reference ShareDir ``name`` (once, however often it is called)."""
        check_name(name)
        await self.refresh(holder, lambda: name)

    async def decref(self, holder: str) -> None:
        """Make ``holder`` reference nothing."""
        await self.refresh(holder, lambda: None)

    async def refresh(self, holder: str, probe: Probe) -> None:
        """Set ``holder`` to what ``probe()`` returns when the actor applies the message, and
        return once that is committed to the repository."""
        await self._request("hold", holder=holder, probe=probe)

    def refresh_soon(self, holder: str, probe: Probe) -> None:
        """Post a refresh without waiting, from any thread; it joins the next group commit.
        Ignored once the engine has closed (this session's references end with it).

        The post itself always runs as a loop callback of its own: this is called from
        finalisers, which the garbage collector runs at arbitrary points, possibly in the
        middle of the inbox's own code.
        """
        loop = self._loop
        if not self._running or loop is None:
            return
        try:
            if threading.get_ident() == self._thread:
                loop.call_soon(self._post, holder, probe)
            else:
                loop.call_soon_threadsafe(self._post, holder, probe)
        except RuntimeError:
            pass

    def _post(self, holder: str, probe: Probe) -> None:
        if not self._running or self._send is None:
            return
        self._soon.append((holder, probe))
        if self._wake_pending:
            return
        try:
            self._send.send_nowait(_WAKE)
            self._wake_pending = True
        except anyio.WouldBlock:
            pass  # the inbox is full, so the actor wakes for it and takes the posts too
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    async def flush(self) -> None:
        """Return once everything posted before the call is committed."""
        await self._request("flush")

    # -- queries and repairs ----------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        """``{ShareDir name: reference count}`` for every ShareDir in the table."""
        result: dict[str, int] = await self._request("counts")
        return result

    async def table(self) -> list[ShareDirInfo]:
        """Every ShareDir in the table, oldest first, with its count and whether it exists."""
        result: list[ShareDirInfo] = await self._request("table")
        return result

    async def ls(self, name: str) -> str:
        """The tree of ShareDir ``name`` (``conf-<uuid>``), one entry a line."""
        check_name(name)
        result: str = await self._request("ls", name=name)
        return result

    async def lookup(self, name: str, unprepare: bool = False) -> list[str]:
        """The persisted owners referencing ShareDir ``name`` (``job:3``, ``box:analysis``),
        each logged as Ganga does; with ``unprepare=True`` their applications are unprepared."""
        check_name(name)
        holders: list[str] = await self._request("lookup", name=name)
        if unprepare and holders:
            for holder in holders:
                kind, ident = holder_label(holder)
                say.info(f"Unpreparing {kind} repository object #{ident} associated with "
                         f"ShareDir {name}")
            await self._unprepare(holders)
        return holders

    async def rebuild(self, unprepare: bool = True, rmdir: bool = False) -> dict[str, int]:
        """Clear the table and rebuild it from the job and box repositories.

        Owners whose ShareDir is missing from disk are unprepared (with ``unprepare=False``
        they are counted and shown as missing). ShareDirs on disk that nothing references get
        count 0, so they are deleted when the engine closes, or are deleted at once with
        ``rmdir=True``. References held by applications alive in this session are kept.
        Returns the new counts.
        """
        missing: list[str] = await self._request("rebuild", unprepare=unprepare, rmdir=rmdir)
        if missing:
            await self._unprepare(missing)
        return await self.counts()

    # -- plumbing ---------------------------------------------------------------------

    async def _request(self, op: str, **args: Any) -> Any:
        """Put a message in the inbox and return the actor's answer (raised if an error)."""
        if not self._running or self._send is None:
            raise EngineClosedError("the ShareRef actor is not running; open the engine first")
        reply_send, reply_recv = anyio.create_memory_object_stream[Any](1)
        with reply_recv:
            try:
                await self._send.send(_Request(op, args, reply_send))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                reply_send.close()
                raise EngineClosedError("the engine closed; the ShareRef actor stopped") from None
            except BaseException:
                reply_send.close()
                raise
            try:
                outcome = await reply_recv.receive()
            except anyio.EndOfStream:
                raise EngineClosedError("the ShareRef actor stopped before answering") from None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    # -- the actor's side -------------------------------------------------------------

    async def _serve(self, batch: list[_Message]) -> None:
        self._wake_pending = False
        waiting: list[tuple[MemoryObjectSendStream[Any], Any]] = []
        soon, self._soon = self._soon, []
        for holder, probe in soon:
            self._apply(holder, probe)
        for message in batch:
            if isinstance(message, _Request):
                if message.op == "hold":
                    waiting.append((message.reply, self._apply(**message.args)))
                    continue
                if message.op == "flush":
                    waiting.append((message.reply, None))
                    continue
                if message.op == "counts":
                    counts = {name: self._counts.get(name, 0) for name in self._sharedirs}
                    waiting.append((message.reply, counts))
                    continue
                await self._commit(waiting)
                waiting = []
                try:
                    result = await self._handle(message.op, **message.args)
                except Exception as exc:
                    result = exc
                _reply(message.reply, result)
        await self._commit(waiting)

    def _apply(self, holder: str, probe: Probe) -> BaseException | None:
        try:
            name = probe()
            if name is not None:
                check_name(name)
        except Exception as exc:
            log.error("a ShareDir reference could not be read", holder=holder, error=repr(exc))
            return exc
        old = self._holders.get(holder)
        if old == name:
            return None
        if old is not None:
            self._counts[old] -= 1
        if name is None:
            del self._holders[holder]
        else:
            self._holders[holder] = name
            self._counts[name] += 1
            if name not in self._sharedirs:
                self._sharedirs[name] = self._new[name] = time.time()
        self._dirty.add(holder)
        return None

    async def _commit(self, waiting: list[tuple[MemoryObjectSendStream[Any], Any]]) -> None:
        """Write every change since the last commit in one transaction, then reply."""
        error: BaseException | None = None
        if self._dirty or self._new:
            holders = {h: self._holders.get(h) for h in self._dirty}
            new = self._new
            self._dirty, self._new = set(), {}
            try:
                await self._repository.shareref_write(new, holders)
            except Exception as exc:
                self._dirty |= holders.keys()
                self._new.update(new)
                log.error("writing ShareDir counts failed; retried with the next change",
                          error=str(exc))
                error = exc
        for reply, value in waiting:
            _reply(reply, error if error is not None and value is None else value)

    async def _handle(self, op: str, **args: Any) -> Any:
        handler: Callable[..., Awaitable[Any]] = getattr(self, f"_op_{op}")
        return await handler(**args)

    async def _op_table(self) -> list[ShareDirInfo]:
        names = list(self._sharedirs)
        on_disk = set(await self._area.created(names))
        rows = [ShareDirInfo(n, self._sharedirs[n], self._counts.get(n, 0), n in on_disk)
                for n in names]
        return sorted(rows, key=lambda r: (r.created, r.name))

    async def _op_ls(self, name: str) -> str:
        return await self._area.ls(name)

    async def _op_lookup(self, name: str) -> list[str]:
        owners = [holder for holder, held in await self._owners() if held == name]
        for holder in owners:
            kind, ident = holder_label(holder)
            say.info(f"ShareDir {name} is referenced by item #{ident} in {kind} repository")
        say.info(f"{len(owners)} item(s) found referencing ShareDir {name}")
        return owners

    async def _op_rebuild(self, unprepare: bool, rmdir: bool) -> list[str]:
        owners = await self._owners()
        on_disk = set(await self._area.names())
        holders = {h: n for h, n in self._holders.items() if h.startswith(self._session)}
        missing = []
        for holder, name in owners:
            if name not in on_disk:
                say.info(f"Shared directory {name} not found on disk")
                if unprepare:
                    missing.append(holder)
                    continue
            holders[holder] = name
        referenced = set(holders.values())
        orphans = sorted(on_disk - referenced)
        if rmdir:
            for name in orphans:
                say.info(f"Removing ShareDir {name}: nothing references it")
                await self._area.remove(name)
            orphans = []
        await self._area.remove_stale_partials()
        names = referenced.union(orphans)
        created = await self._area.created(sorted(names - self._sharedirs.keys()))
        now = time.time()
        sharedirs = {name: self._sharedirs[name] if name in self._sharedirs else created.get(name, now)
                     for name in names}
        await self._repository.shareref_write(sharedirs, dict(holders), replace=True)
        self._sharedirs, self._holders = sharedirs, holders
        self._counts = Counter(holders.values())
        self._dirty, self._new = set(), {}
        log.info("shareref rebuilt", sharedirs=len(sharedirs), references=len(holders),
                 unprepared=len(missing), orphans=len(orphans))
        return missing

    async def _op_cleanup(self) -> list[str]:
        for holder in [h for h in self._holders if h.startswith(self._session)]:
            self._apply(holder, lambda: None)
        await self._commit([])
        names = list(self._sharedirs)
        on_disk = set(await self._area.created(names))
        unreferenced, vanished = await self._repository.shareref_sweep(
            [n for n in names if n not in on_disk])
        for name in unreferenced:
            if name in on_disk:
                try:
                    await self._area.remove(name)
                except ShareDirError as exc:
                    log.error("a ShareDir was not deleted", sharedir=name, error=str(exc))
                    continue
                say.info(f"Removed: {name} (no references left)")
        dropped = {*unreferenced, *(name for _, name in vanished)}
        for name in dropped:
            self._sharedirs.pop(name, None)
        for holder, name in vanished:
            say.info(f"ShareDir {name} vanished from disk; unpreparing its owner {holder}")
        self._holders = {h: n for h, n in self._holders.items() if n not in dropped}
        self._counts = Counter(self._holders.values())
        return [holder for holder, _ in vanished if not holder.startswith(SESSION)]


def render_table(rows: Sequence[ShareDirInfo], root: os.PathLike[str] | str) -> str:
    """The shareref table as Ganga prints it: Shared directory | Date created | Reference count."""
    if not rows:
        return "No objects stored in the shared directory."
    line = " {:>48} | {:>20} | {:>16}".format
    lines = [line("Shared directory", "Date created", "Reference count"),
             line("-" * 48, "-" * 20, "-" * 15)]
    for row in rows:
        created = (time.strftime("%d %b %Y %H:%M:%S", time.localtime(row.created))
                   if row.exists else "Directory not found")
        lines.append(line(row.name, created, row.count))
    lines += ["", f"The shared directory repository is rooted at {os.fspath(root)}"]
    if any(row.count == 0 for row in rows):
        lines += ["", "Shared directories with a zero reference count will be removed when the "
                      "engine closes."]
    return "\n".join(lines)


def _reply(reply: MemoryObjectSendStream[Any], value: Any) -> None:
    with reply:
        try:
            reply.send_nowait(value)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.WouldBlock):
            pass
