"""Giving back to the system the memory a finished job leaves free in the C allocator's heap.

A master of 1,000 subjobs allocates and frees a few MiB while it runs in blocks too large for
Python's own small-object allocator: the arrays of its rows and statuses, the batches the
repository writes, the table of interned strings that :mod:`pathlib` resizes as it interns each
subjob's directory name. glibc's ``malloc`` keeps most freed blocks inside its heap instead of
returning them, and where live blocks sit between them it cannot shrink the heap, so the
engine's resident memory ratchets up to the largest mix of peaks it has met: by 0.3 to 1 MiB
over the first 50 jobs of 1,000 subjobs, in steps, while the memory in use stays the same
(figure 6 of ``benchmarks/endurance.py``: ``mallinfo2`` in use flat, free in the heap up by as
much as the resident size).

So once a master job has ended (:meth:`MemoryReturn.job_ended`, from the registry of jobs in
memory), :meth:`MemoryReturn.run` waits :data:`DELAY` seconds, so that the job's last writes
are flushed and the jobs ending together are taken at once, then asks glibc to return the free
pages of its heaps to the system (``malloc_trim(0)``). That takes about a millisecond on the
heap of an engine running jobs of 1,000 subjobs, but tens to hundreds of milliseconds on one
of hundreds of MiB left by a master of 10^5 or 10^6 subjobs, so it runs in a worker thread
(``ctypes`` lets go of the GIL) and the event loop never waits for it. Nothing else changes:
the next job's blocks come back from the system as it touches them. With another C library
(musl, macOS) there is no ``malloc_trim`` and nothing is done.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus

__all__ = ["DELAY", "MemoryReturn", "malloc_trim"]

DELAY = 1.0
"""Seconds between a master job's end and the trim (the ends within it share one trim)."""


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only here: the engine's import does not need it

    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class MemoryReturn:
    """Trims the C allocator's heaps after master jobs end (see the module's documentation)."""

    def __init__(self, delay: float = DELAY,
                 trim: Callable[[int], int] | None | bool = True) -> None:
        self.delay = delay
        self._trim = malloc_trim() if trim is True else trim or None
        """What trims (``malloc_trim`` where the C library has it; a test may inject one)."""
        self._due = anyio.Event()
        self.trims = 0
        """How many trims were made (for tests and benchmarks)."""

    def job_ended(self) -> None:
        """A master job has ended: trim in :attr:`delay` seconds (called in the event loop)."""
        self._due.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Trim once after each burst of :meth:`job_ended` calls, until cancelled."""
        trim = self._trim
        task_status.started()
        if trim is None:
            return
        while True:
            await self._due.wait()
            await anyio.sleep(self.delay)
            self._due = anyio.Event()
            await anyio.to_thread.run_sync(trim, 0)
            self.trims += 1
