"""The repository's schema: the tables of a new repository and, for each version, what it adds
to the one before (an older repository is upgraded in place; see :mod:`.repository`)."""

from __future__ import annotations

from .tasks import TASK_TABLES, TASK_TOKENS

__all__ = ["SCHEMA", "SCHEMA_VERSION", "UPGRADES"]

SCHEMA_VERSION = 7

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    comment TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    application TEXT NOT NULL,
    backend TEXT NOT NULL,
    spec TEXT NOT NULL,
    n_subjobs INTEGER,
    backend_id TEXT,
    exitcode INTEGER,
    reason TEXT,
    submit_counter INTEGER NOT NULL DEFAULT 0,
    times TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX jobs_status ON jobs(status);
CREATE TABLE subjobs (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    status INTEGER NOT NULL,
    overrides TEXT,
    backend_id TEXT,
    exitcode INTEGER,
    reason TEXT,
    submit_counter INTEGER NOT NULL DEFAULT 0,
    t_submitted REAL NOT NULL DEFAULT 0,
    t_running REAL NOT NULL DEFAULT 0,
    t_final REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
"""

UPGRADES = {
    2: """
CREATE TABLE sharedirs (name TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE shareref_holders (holder TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE INDEX shareref_holders_name ON shareref_holders(name);
CREATE TABLE box (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    object TEXT NOT NULL,
    sharedir TEXT,
    created REAL NOT NULL
);
""",
    3: """
INSERT OR REPLACE INTO meta VALUES ('next_job_id', (SELECT COALESCE(MAX(id) + 1, 0) FROM jobs));
""",
    4: """
ALTER TABLE jobs ADD COLUMN retry_at REAL NOT NULL DEFAULT 0;
ALTER TABLE subjobs ADD COLUMN retry_at REAL NOT NULL DEFAULT 0;
CREATE TABLE attempts (
    job_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    n INTEGER NOT NULL,
    status TEXT NOT NULL,
    backend_id TEXT,
    exitcode INTEGER,
    reason TEXT,
    t_submitted REAL NOT NULL DEFAULT 0,
    t_running REAL NOT NULL DEFAULT 0,
    t_final REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, idx, n)
) WITHOUT ROWID;
""",
    5: """
CREATE TABLE submit_tokens (token TEXT PRIMARY KEY, job_id INTEGER NOT NULL, created REAL NOT NULL);
""",
    6: TASK_TABLES,
    7: TASK_TOKENS,
}
"""What each schema version adds to the one before it."""
