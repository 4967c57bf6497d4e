"""Benchmarks of ganga-async: the figures of DESIGN.md, each measured as a ratio in one run.

``python -m benchmarks`` runs them all and prints one table; each module also runs alone:

- :mod:`benchmarks.local_echo`: 1,000 local ``/bin/echo`` subjobs, 8 at a time, against the
  best bare asyncio or threaded loop spawning the same processes;
- :mod:`benchmarks.split_persist`: split and persist 100,000 subjobs (time and memory per
  subjob) against a bare ``sqlite3`` ``executemany`` of the same rows;
- :mod:`benchmarks.open_summary`: a fresh interpreter opening a repository holding a
  100,000-subjob master and printing the summary, against the interpreter's own start-up;
- :mod:`benchmarks.service_rpc`: the service's request round trips, 50 clients at once and its
  start-up, against a bare socket pair and ``python -c pass``;
- :mod:`benchmarks.slurm_submit`: a 1,000-subjob master submitted to Slurm as one array,
  against 1,000 ``sbatch`` calls, and one monitoring sweep (needs ``scripts/slurm-up.sh``);
- :mod:`benchmarks.shareref_actor`: the ShareRef actor's operations per second, its exact
  counts under concurrency and its rebuild after a crash;
- :mod:`benchmarks.peers` (optional, ``--peers``): figure 1 against Dask and Parsl.

See ``docs/benchmarks.md``.
"""
