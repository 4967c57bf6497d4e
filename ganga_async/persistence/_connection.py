"""How the repository's SQLite connection is set up when it opens (:data:`PRAGMAS`).

WAL journal, ``synchronous=NORMAL`` (no sync at each commit: a power cut may lose the last
commits, never the database's consistency), foreign keys enforced, and a page cache of
:data:`CACHE_KIB` KiB instead of SQLite's default 2,000 KiB.

The page cache is what SQLite keeps in memory of the pages it read or wrote; it only grows, up
to its bound, as new pages are touched. A master of 1,000 subjobs writes about 100 KiB of new
pages, so the default cache filled over the engine's first 20 jobs and stood for 1 to 2 MiB of
the resident memory growth figure 6 measures after job 10. The pages that matter between two
writes are the B-trees' upper levels and the leaves of the subjobs being updated (a 1,000-subjob
master's rows fit in about 200 KiB); anything else is read again from the operating system's
file cache, which holds the database file anyway. 512 KiB holds both for a job of 1,000
subjobs and is full after the first five such jobs.
"""

from __future__ import annotations

__all__ = ["CACHE_KIB", "PRAGMAS"]

CACHE_KIB = 512
"""The page cache of the repository's connection, in KiB."""

PRAGMAS = ("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
           f"PRAGMA cache_size=-{CACHE_KIB};")
"""What the repository runs on its connection when it opens, before any schema change."""
