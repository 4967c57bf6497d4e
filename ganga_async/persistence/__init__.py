"""Persistence: the SQLite repository (aiosqlite, WAL) where jobs, compact subjob rows, the box
and ShareDir holders are kept, with batched, coalesced writes. It knows rows, not engines."""
