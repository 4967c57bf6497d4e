"""Benchmarks of ganga-async: the figures of DESIGN.md, each measured as a ratio in one run.

``python -m benchmarks`` runs them all and prints one table; each module also runs alone:

- :mod:`benchmarks.local_echo`: 1,000 local ``/bin/echo`` subjobs, 8 at a time, against the
  best bare asyncio or threaded loop spawning the same processes;
- :mod:`benchmarks.split_persist`: split and persist 100,000 subjobs (time and memory per
  subjob) against a bare ``sqlite3`` ``executemany`` of the same rows;
- :mod:`benchmarks.open_summary`: a fresh interpreter opening a repository holding a
  100,000-subjob master and printing the summary, against the interpreter's own start-up.

See ``docs/benchmarks.md``.
"""
