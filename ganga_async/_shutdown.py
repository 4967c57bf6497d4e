"""A shorter interpreter exit for the command line's process.

When Python shuts down it clears every module and runs full garbage collections over every
object still alive: in a process that imported ganga_async (about 270 modules, their classes,
functions and typing objects) and ran a job, that took 15 to 20 ms of the 23 ms its exit took,
against 2 ms for a bare interpreter (figure 1 of docs/benchmarks.md). None of it is needed: the
engine has closed, written everything and stopped its threads before the process exits, and
the operating system takes the memory back whole.

:func:`skip_final_collections` registers, once per process, an ``atexit`` hook that moves the
objects alive at that moment into the collector's permanent generation (``gc.freeze()``), so
the collections at shutdown no longer walk them. Modules are still cleared, files still
closed and every other ``atexit`` hook still runs. What changes is only what Python never
promised at exit: a ``__del__`` of an object kept alive by a reference cycle at that moment
is not called (objects the exit frees by reference counting are finalised as before).
Only the command line registers the hook, when it has parsed its command: that process is
ours. An engine embedded in a user's script or application never does, since the process and
what its exit finalises belong to the user (a buffered file in a reference cycle would lose its
last write), and a process that only imports ganga_async exits as it would without it.
"""

from __future__ import annotations

import atexit
import gc

__all__ = ["skip_final_collections"]

_registered = False


def skip_final_collections() -> None:
    """Have the interpreter's exit skip the garbage collections over what is alive then
    (registered once per process; see the module's documentation)."""
    global _registered
    if not _registered:
        _registered = True
        atexit.register(gc.freeze)
