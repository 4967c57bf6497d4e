"""How long the event loop was kept from running a task: a ticker that sleeps 5 ms at a time
and notes by how much each sleep overshot.

An overshoot is the time the loop spent on something else after the ticker was due (a task
that did not yield, a long callback). The largest one over a window is the longest the loop
was blocked there, give or take the 5 ms resolution.
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
        self.ticks = 0

    def window(self) -> float:
        worst, self.worst, self.ticks = self.worst, 0.0, 0
        return worst

    async def run(self) -> None:
        period = self.period
        clock = time.perf_counter
        while True:
            due = clock() + period
            await anyio.sleep(period)
            late = clock() - due
            self.ticks += 1
            if late > self.worst:
                self.worst = late
