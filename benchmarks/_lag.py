"""How long the event loop was kept from running a task: a ticker that sleeps 5 ms at a time
and notes by how much each sleep overshot.

An overshoot is the time the loop spent on something else after the ticker was due (a task
that did not yield, a long callback). The largest one over a window is the longest the loop
was blocked there, give or take the 5 ms resolution. On a loaded machine it also holds the
time the process waited for a CPU, so the ticker notes as well the loop thread's CPU time
between two ticks (``worst_cpu``): the longest the loop computed without coming back to it,
whatever the load.
"""

from __future__ import annotations

import time

import anyio

__all__ = ["LagTicker"]


class LagTicker:
    """Run :meth:`run` in a task group; :meth:`window` starts a new measurement and returns the
    largest overshoot of the one it ends, in seconds."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.worst = 0.0
        self.worst_cpu = 0.0
        self.ticks = 0

    def window(self) -> float:
        """The worst overshoot since the last call (``worst_cpu`` is reset too)."""
        worst, self.worst, self.worst_cpu, self.ticks = self.worst, 0.0, 0.0, 0
        return worst

    def window_cpu(self) -> tuple[float, float]:
        """The worst overshoot and the worst loop CPU between ticks since the last call."""
        cpu = self.worst_cpu
        return self.window(), cpu

    async def run(self) -> None:
        period = self.period
        clock, cpu_clock = time.perf_counter, time.thread_time
        while True:
            due, cpu = clock() + period, cpu_clock()
            await anyio.sleep(period)
            late, busy = clock() - due, cpu_clock() - cpu
            self.ticks += 1
            if late > self.worst:
                self.worst = late
            if busy > self.worst_cpu:
                self.worst_cpu = busy
