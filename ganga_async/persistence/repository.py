"""The job repository: one SQLite database (WAL mode) in the gangadir, written through aiosqlite.

Masters are rows of ``jobs``; subjobs are compact rows of ``subjobs`` holding only what the
splitter changed (``overrides``, JSON) plus status, backend id, exit code and timestamps.
Status updates are queued and coalesced (the latest values of a row win) and written by a
background task in one transaction every ``[Repository] flush_interval`` seconds;
:meth:`Repository.flush` writes them at once. Everything that must survive a crash before the
engine acts on it (a new job, the intent to submit) is written with an explicit flush.

The schema carries a version. A repository written by a newer ganga-async is refused with
:class:`~ganga_async.SchemaVersionError` and never modified; one written by an older version is
upgraded in place, in one transaction (version 2 added the ShareDir and box tables; version 3
the next job id, so that ids start at 0, as Ganga's, and a removed job's id is never given again;
version 4 the retry policy's state: when a (sub)job waiting for a retry is due, ``retry_at``,
and the ``attempts`` table, one row for each earlier run of a (sub)job, ``idx`` -1 for a job
without subjobs;
version 5 the submission tokens, ``submit_tokens`` (token, job id, created): a token is written in
the transaction that accepts its job, so a repeated submission with it finds that job, across
crashes and restarts; version 6 the tasks, version 7 their tokens, ``task_tokens``).

The ShareDir tables are written only by the ShareRef actor (:mod:`ganga_async.prepared.shareref`):
``sharedirs`` (name, created) and ``shareref_holders`` (holder, name), one row for each thing
holding a reference (a job, a box entry, an application alive in a session).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import anyio
from anyio.abc import TaskStatus

from .._exceptions import RepositoryError, SchemaVersionError
from .._log import get_logger
from ..model.subjobs import SubjobTable
from ._connection import PRAGMAS
from .schema import SCHEMA, SCHEMA_VERSION, UPGRADES
from .subjob_writes import MOVE_SQL, PendingSubjobs, SubjobUpdate, SubjobWrites
from .tasks import prepared_task_owners

__all__ = ["Repository", "JobRow", "SubjobRow", "AttemptRow", "BoxRow", "JOB_COLUMNS", "SCHEMA_VERSION"]

log = get_logger(__name__)


JOB_COLUMNS = ("name", "comment", "status", "application", "backend", "spec", "n_subjobs",
               "backend_id", "exitcode", "reason", "submit_counter", "times", "retry_at")
"""A master's columns after its id, in the order :class:`JobRow` is read from them."""
_COUNT_SUBJOBS = ("UPDATE jobs SET n_subjobs=NULLIF((SELECT COUNT(*) FROM subjobs WHERE job_id=?), 0) "
                  "WHERE id=?")
"""A master's number of subjobs, from its stored rows (NULL: not split)."""
_SUB_UPDATE = ("status", "backend_id", "exitcode", "reason", "submit_counter", "t_submitted",
               "t_running", "t_final", "retry_at")


@dataclasses.dataclass(slots=True)
class JobRow:
    """A master job as stored."""

    id: int
    name: str
    comment: str
    status: str
    application: str
    backend: str
    spec: dict[str, Any]
    n_subjobs: int | None
    backend_id: str | None
    exitcode: int | None
    reason: str | None
    submit_counter: int
    times: dict[str, float]
    retry_at: float = 0.0


SubjobRow = tuple[int, int, str | None, str | None, int | None, str | None, int, float, float, float,
                  float]
"""(idx, status code, overrides, backend_id, exitcode, reason, submit_counter, t_submitted,
t_running, t_final, retry_at)"""

AttemptRow = tuple[int, str, str | None, int | None, str | None, float, float, float]
"""An earlier run: (n, status, backend_id, exitcode, reason, t_submitted, t_running, t_final)."""

@dataclasses.dataclass(slots=True)
class BoxRow:
    """A box entry as stored: ``kind`` is ``job`` or a component category, ``object`` its
    serialised form, ``sharedir`` the ShareDir it references (if prepared)."""

    name: str
    kind: str
    object: dict[str, Any]
    sharedir: str | None
    created: float


class Repository:
    """The SQLite store of one gangadir. Open with ``await repo.open()``; the engine runs
    :meth:`run` (the writer of queued updates) in its task group."""

    def __init__(self, path: Path, *, flush_interval: float = 0.1) -> None:
        self.path = path
        self.flush_interval = flush_interval
        self._db: aiosqlite.Connection | None = None
        self._dirty_jobs: dict[int, dict[str, Any]] = {}
        self._subjobs = SubjobWrites()
        self._new_attempts: list[tuple[int, int, AttemptRow]] = []
        self._dirty_tokens: dict[str, tuple[int, float]] = {}
        self._wake = anyio.Event()
        self._write_lock = anyio.Lock()

    # -- lifecycle --------------------------------------------------------------------

    async def open(self) -> None:
        """Open (creating if needed) and check the schema version."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise RepositoryError(f"cannot open the repository {self.path}: {exc}") from exc
        try:
            await self._check_schema(db)
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def _check_schema(self, db: aiosqlite.Connection) -> None:
        try:
            async with db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'"
            ) as cur:
                has_meta = await cur.fetchone() is not None
            if has_meta:
                async with db.execute("SELECT value FROM meta WHERE key='schema_version'") as cur:
                    row = await cur.fetchone()
                version = int(row[0]) if row else 0
                if version > SCHEMA_VERSION:
                    raise SchemaVersionError(
                        f"{self.path} was written by a newer ganga-async (schema version {version}; "
                        f"this one knows up to {SCHEMA_VERSION}); upgrade ganga-async or use another "
                        "gangadir. The repository was not modified."
                    )
            await db.executescript(PRAGMAS)
            if not has_meta:
                await db.executescript(
                    "BEGIN;" + SCHEMA + "".join(UPGRADES.values()) +
                    f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
                )
            elif version < SCHEMA_VERSION:
                steps = "".join(UPGRADES[v] for v in range(version + 1, SCHEMA_VERSION + 1))
                await db.executescript(
                    "BEGIN IMMEDIATE;" + steps +
                    f"UPDATE meta SET value='{SCHEMA_VERSION}' WHERE key='schema_version'; COMMIT;"
                )
                log.info("repository upgraded", path=str(self.path), old=version, new=SCHEMA_VERSION)
        except sqlite3.DatabaseError as exc:
            raise RepositoryError(
                f"{self.path} is not a ganga-async repository ({exc}); move it away or choose "
                "another gangadir"
            ) from exc

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RepositoryError("the repository is not open")
        return self._db

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Write queued updates every ``flush_interval`` seconds while any are waiting."""
        task_status.started()
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()  # only here: a flush by another task must not strand it
            await anyio.sleep(self.flush_interval)
            await self.flush()

    async def aclose(self) -> None:
        """Write what is queued and close."""
        if self._db is None:
            return
        with anyio.CancelScope(shield=True):
            await self.flush()
            await self._db.close()
        self._db = None

    # -- queued, coalesced writes -----------------------------------------------------

    def queue_job(self, job_id: int, **columns: Any) -> None:
        """Queue an update of a master's columns (merged with earlier queued ones). They are
        encoded now: a value that cannot be stored raises RepositoryError here, never in the
        writer."""
        encoded = {}
        for key, value in columns.items():
            if key not in JOB_COLUMNS:
                raise RepositoryError(f"jobs has no column {key!r}")
            try:
                encoded[key] = _encode(value)
            except (TypeError, ValueError) as exc:
                raise RepositoryError(f"the {key} of job {job_id} cannot be stored: {exc}") from None
        self._dirty_jobs.setdefault(job_id, {}).update(encoded)
        self._wake.set()

    def queue_subjob(self, job_id: int, idx: int, values: SubjobUpdate) -> None:
        """Queue the current mutable values of one subjob; only the latest is written."""
        self._subjobs.queue_row(job_id, idx, values)
        self._wake.set()

    def queue_moved(self, job_id: int, table: SubjobTable, indices: Sequence[int]) -> None:
        """Queue subjobs only whose status and times changed (see :mod:`.subjob_writes`)."""
        self._subjobs.queue_moved(job_id, table, indices)
        self._wake.set()

    def queue_attempt(self, job_id: int, idx: int | None, attempt: AttemptRow) -> None:
        """Queue an earlier run of a (sub)job to keep (``idx`` None: the job itself); written
        with the next flush, in the transaction of the status that followed it."""
        self._new_attempts.append((job_id, -1 if idx is None else idx, attempt))
        self._wake.set()

    def queue_token(self, token: str, job_id: int, created: float) -> None:
        """Queue a submission token of a job, written with the next flush (the one that
        accepts the job)."""
        self._dirty_tokens[token] = (job_id, created)
        self._wake.set()

    async def token_job(self, token: str) -> int | None:
        """The id of the job accepted with submission ``token``, or None."""
        if token in self._dirty_tokens:
            return self._dirty_tokens[token][0]
        async with self.db.execute("SELECT job_id FROM submit_tokens WHERE token=?", (token,)) as cur:
            row = await cur.fetchone()
        return None if row is None else int(row[0])

    async def flush(self, job_id: int | None = None) -> None:
        """Write every queued update in one transaction; with ``job_id``, only that master's
        queued columns and submission tokens (what accepting it makes durable), without writing
        what other jobs queued meanwhile: thousands of their status rows under load."""
        async with self._write_lock:
            if job_id is None:
                jobs, self._dirty_jobs = self._dirty_jobs, {}
                subjobs = self._subjobs.take()
                attempts, self._new_attempts = self._new_attempts, []
                tokens, self._dirty_tokens = self._dirty_tokens, {}
            else:
                own = self._dirty_jobs.pop(job_id, None)
                jobs = {} if own is None else {job_id: own}
                subjobs, attempts = PendingSubjobs({}, {}, []), []
                tokens = {t: v for t, v in self._dirty_tokens.items() if v[0] == job_id}
                for token in tokens:
                    del self._dirty_tokens[token]
            if not jobs and not subjobs and not attempts and not tokens:
                return
            statements: list[tuple[str, Sequence[Any]]] = []
            for job_id, columns in jobs.items():
                encoded = {k: _encode(v) for k, v in columns.items()}
                sets = ", ".join(f"{k}=?" for k in encoded)
                statements.append((f"UPDATE jobs SET {sets} WHERE id=?", [*encoded.values(), job_id]))
            sets = ", ".join(f"{k}=?" for k in _SUB_UPDATE)
            try:  # the subjobs' parameters are made in the database thread
                await self._transaction(statements, many=[
                    (f"UPDATE subjobs SET {sets} WHERE job_id=? AND idx=?", subjobs.row_params()),
                    (MOVE_SQL, subjobs.move_params()),
                    ("INSERT OR REPLACE INTO attempts (job_id, idx, n, status, backend_id, exitcode, "
                     "reason, t_submitted, t_running, t_final) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [(job_id, idx, *attempt) for job_id, idx, attempt in attempts]),
                    ("INSERT OR REPLACE INTO submit_tokens VALUES (?, ?, ?)",
                     [(t, j, c) for t, (j, c) in tokens.items()]),
                ])
            except BaseException:
                self._new_attempts[:0] = attempts
                for token, value in tokens.items():
                    self._dirty_tokens.setdefault(token, value)
                for job_id, columns in jobs.items():
                    self._dirty_jobs.setdefault(job_id, {}).update(
                        {k: v for k, v in columns.items() if k not in self._dirty_jobs.get(job_id, {})}
                    )
                self._subjobs.restore(subjobs)
                raise

    @contextlib.asynccontextmanager
    async def _immediate(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        db = self.db
        try:
            # Shielded: a cancellation between BEGIN and COMMIT must not leave a transaction open.
            with anyio.CancelScope(shield=True):
                await db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    await db.execute("COMMIT")
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            raise RepositoryError(f"writing {self.path} failed: {exc}") from exc

    async def _transaction(
        self,
        statements: Iterable[tuple[str, Sequence[Any]]] = (),
        many: Iterable[tuple[str, Iterable[Sequence[Any]]]] = (),
    ) -> None:
        async with self._immediate() as db:
            for sql, params in statements:
                await db.execute(sql, params)
            for sql, seq in many:
                await db.executemany(sql, seq)

    # -- direct writes ----------------------------------------------------------------

    async def insert_job(self, row: dict[str, Any]) -> int:
        """Insert a master job and return its new id (written before returning): the next of
        the repository's ids, which start at 0 and are never given twice (not after a remove)."""
        columns = [c for c in JOB_COLUMNS if c in row]
        values = [_encode(row[c]) for c in columns]
        marks = ", ".join("?" for _ in columns)
        async with self._write_lock, self._immediate() as db:
            async with db.execute("SELECT CAST(value AS INTEGER) FROM meta WHERE key='next_job_id'") as cur:
                found = await cur.fetchone()
            job_id = int(found[0]) if found is not None else 0
            await db.execute(f"INSERT INTO jobs (id, {', '.join(columns)}) VALUES (?, {marks})",
                             [job_id, *values])
            await db.execute("INSERT OR REPLACE INTO meta VALUES ('next_job_id', ?)", (str(job_id + 1),))
        return job_id

    async def insert_subjobs(self, job_id: int, rows: Iterable[tuple[int, int, str | None]]) -> None:
        """Store the subjobs ``(idx, status code, overrides)`` of one master, and their number
        in its row, in one transaction that first deletes any it had (an interrupted split):
        all of them or, when ``rows`` raises, none and the old ones kept."""
        async with self._write_lock:
            await self._transaction([
                ("DELETE FROM subjobs WHERE job_id=?", (job_id,)),
                ("DELETE FROM attempts WHERE job_id=?", (job_id,)),
            ], many=[(
                "INSERT INTO subjobs (job_id, idx, status, overrides) VALUES (?, ?, ?, ?)",
                ((job_id, idx, status, overrides) for idx, status, overrides in rows),
            ), (_COUNT_SUBJOBS, [(job_id, job_id)])])
            self._subjobs.drop(job_id)

    async def delete_subjobs(self, job_id: int) -> None:
        async with self._write_lock:
            await self._transaction([("DELETE FROM subjobs WHERE job_id=?", (job_id,)),
                                     ("DELETE FROM attempts WHERE job_id=?", (job_id,))])
            self._subjobs.drop(job_id)

    async def delete_job(self, job_id: int) -> None:
        """Remove a master and its subjobs."""
        async with self._write_lock:
            await self._transaction([
                ("DELETE FROM subjobs WHERE job_id=?", (job_id,)),
                ("DELETE FROM attempts WHERE job_id=?", (job_id,)),
                ("DELETE FROM jobs WHERE id=?", (job_id,)),
            ])
            self._dirty_jobs.pop(job_id, None)
            self._subjobs.drop(job_id)

    # -- reads ------------------------------------------------------------------------

    async def job_rows(
        self, ids: Sequence[int] | None = None, statuses: Sequence[str] | None = None
    ) -> list[JobRow]:
        """Master rows, by id or status (all when neither is given), in id order."""
        sql = f"SELECT id, {', '.join(JOB_COLUMNS)} FROM jobs"
        params: list[Any] = []
        if ids is not None:
            sql += f" WHERE id IN ({', '.join('?' for _ in ids)})"
            params.extend(ids)
        elif statuses is not None:
            sql += f" WHERE status IN ({', '.join('?' for _ in statuses)})"
            params.extend(statuses)
        sql += " ORDER BY id"
        async with self.db.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [_job_row(r) for r in rows]

    async def subjob_counts(self, job_ids: list[int]) -> dict[int, dict[int, int]]:
        """``{master id: {status code: count}}`` of these masters' subjobs, in one read."""
        counts: dict[int, dict[int, int]] = {}
        if not job_ids:
            return counts
        marks = ",".join("?" * len(job_ids))
        async with self.db.execute(
            f"SELECT job_id, status, COUNT(*) FROM subjobs WHERE job_id IN ({marks}) "  # noqa: S608
            "GROUP BY job_id, status", job_ids,
        ) as cur:
            for job_id, code, n in await cur.fetchall():
                counts.setdefault(job_id, {})[code] = n
        return counts

    async def subjob_rows(self, job_id: int) -> list[SubjobRow]:
        async with self.db.execute(
            "SELECT idx, status, overrides, backend_id, exitcode, reason, submit_counter, "
            "t_submitted, t_running, t_final, retry_at FROM subjobs WHERE job_id=? ORDER BY idx",
            (job_id,),
        ) as cur:
            return list(await cur.fetchall())  # type: ignore[arg-type]

    async def attempt_rows(self, job_id: int) -> dict[int | None, list[AttemptRow]]:
        """The earlier runs of a job's (sub)jobs, by subjob index (None: the job itself), in
        order."""
        found: dict[int | None, list[AttemptRow]] = {}
        async with self.db.execute(
            "SELECT idx, n, status, backend_id, exitcode, reason, t_submitted, t_running, t_final "
            "FROM attempts WHERE job_id=? ORDER BY idx, n", (job_id,),
        ) as cur:
            for idx, *attempt in await cur.fetchall():
                found.setdefault(None if idx < 0 else idx, []).append(tuple(attempt))
        return found


    # -- the ShareRef actor's tables ----------------------------------------------------

    async def shareref_rows(self) -> tuple[dict[str, float], dict[str, str]]:
        """``({name: created}, {holder: name})`` as stored."""
        async with self.db.execute("SELECT name, created FROM sharedirs") as cur:
            sharedirs = {name: created for name, created in await cur.fetchall()}
        async with self.db.execute("SELECT holder, name FROM shareref_holders") as cur:
            holders = {holder: name for holder, name in await cur.fetchall()}
        return sharedirs, holders

    async def shareref_write(
        self, sharedirs: dict[str, float], holders: dict[str, str | None], *, replace: bool = False
    ) -> None:
        """One transaction: add ShareDir rows and set each holder to its ShareDir (``None``
        deletes it). ``replace`` clears both tables first."""
        statements: list[tuple[str, Sequence[Any]]] = []
        if replace:
            statements += [("DELETE FROM shareref_holders", ()), ("DELETE FROM sharedirs", ())]
        async with self._write_lock:
            await self._transaction(statements, many=[
                ("INSERT OR IGNORE INTO sharedirs (name, created) VALUES (?, ?)",
                 list(sharedirs.items())),
                ("DELETE FROM shareref_holders WHERE holder=?",
                 [(h,) for h, n in holders.items() if n is None]),
                ("INSERT OR REPLACE INTO shareref_holders (holder, name) VALUES (?, ?)",
                 [(h, n) for h, n in holders.items() if n is not None]),
            ])

    async def shareref_sweep(self, gone: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
        """In one transaction: delete the ShareDirs no holder references, and those in ``gone``
        (vanished from disk) with their holders. Returns the unreferenced names and the
        ``(holder, name)`` pairs that referenced a vanished one."""
        async with self._write_lock, self._immediate() as db:
            async with db.execute(
                "SELECT name FROM sharedirs s WHERE NOT EXISTS "
                "(SELECT 1 FROM shareref_holders h WHERE h.name = s.name)"
            ) as cur:
                unreferenced = [row[0] for row in await cur.fetchall()]
            async with db.execute(
                "SELECT holder, name FROM shareref_holders "
                "WHERE name IN (SELECT value FROM json_each(?)) ORDER BY name, rowid",
                (json.dumps(list(gone)),),
            ) as cur:
                vanished: list[tuple[str, str]] = [(h, n) for h, n in await cur.fetchall()]
            dropped = [(name,) for name in {*unreferenced, *gone}]
            await db.executemany("DELETE FROM shareref_holders WHERE name=?", dropped)
            await db.executemany("DELETE FROM sharedirs WHERE name=?", dropped)
        return unreferenced, vanished

    async def prepared_owners(self) -> list[tuple[str, str]]:
        """``(holder, ShareDir name)`` for every stored job, box entry and task transform whose
        application is prepared, read from the stored descriptions (``job:<id>``, ``box:<name>``,
        ``task:<id>.<transform>``)."""
        async with self.db.execute(
            "SELECT id, json_extract(spec, '$.application.is_prepared.name') AS sharedir "
            "FROM jobs WHERE sharedir IS NOT NULL ORDER BY id"
        ) as cur:
            owners = [(f"job:{job_id}", name) for job_id, name in await cur.fetchall()]
        async with self.db.execute(
            "SELECT name, sharedir FROM box WHERE sharedir IS NOT NULL ORDER BY name"
        ) as cur:
            owners += [(f"box:{name}", sharedir) for name, sharedir in await cur.fetchall()]
        return owners + await prepared_task_owners(self)

    async def write(self, statements: Iterable[tuple[str, Sequence[Any]]],
                    many: Iterable[tuple[str, Iterable[Sequence[Any]]]] = ()) -> None:
        """Run these statements in one transaction now (the tasks' rows)."""
        async with self._write_lock:
            await self._transaction(statements, many)

    # -- the box ----------------------------------------------------------------------

    async def box_insert(self, row: BoxRow) -> None:
        """Store a new box entry; an existing name is a RepositoryError."""
        async with self._write_lock:
            await self._transaction([(
                "INSERT INTO box (name, kind, object, sharedir, created) VALUES (?, ?, ?, ?, ?)",
                (row.name, row.kind, _encode(row.object), row.sharedir, row.created),
            )])

    async def box_update(self, name: str, obj: dict[str, Any], sharedir: str | None) -> None:
        async with self._write_lock:
            await self._transaction([(
                "UPDATE box SET object=?, sharedir=? WHERE name=?", (_encode(obj), sharedir, name)
            )])

    async def box_delete(self, name: str) -> bool:
        """Delete a box entry; False when there was none."""
        async with self._write_lock:
            async with self.db.execute("SELECT 1 FROM box WHERE name=?", (name,)) as cur:
                found = await cur.fetchone() is not None
            if found:
                await self._transaction([("DELETE FROM box WHERE name=?", (name,))])
        return found

    async def box_rows(self, name: str | None = None) -> list[BoxRow]:
        """Every box entry (or the one named ``name``), by name."""
        sql = "SELECT name, kind, object, sharedir, created FROM box"
        params: tuple[Any, ...] = ()
        if name is not None:
            sql += " WHERE name=?"
            params = (name,)
        async with self.db.execute(sql + " ORDER BY name", params) as cur:
            return [BoxRow(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in await cur.fetchall()]


def _encode(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def _job_row(r: Sequence[Any]) -> JobRow:
    return JobRow(
        id=r[0], name=r[1], comment=r[2], status=r[3], application=r[4], backend=r[5],
        spec=json.loads(r[6]), n_subjobs=r[7], backend_id=r[8], exitcode=r[9], reason=r[10],
        submit_counter=r[11], times=json.loads(r[12]), retry_at=r[13],
    )
