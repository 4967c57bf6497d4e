"""Dask: run jobs on a Dask cluster, each (sub)job as one fire-and-forget task.

The settings a user puts on a job are :class:`Dask`; the driver (:mod:`._driver`) imports
``distributed`` only when the engine first needs it, so naming the plugin costs nothing and an
installation without the ``dask`` extra fails with a one-line hint, on use.

Each task runs the same job wrapper as the batch backends (``workers/job_wrapper.py``) in a
subprocess of its worker, so stdout, stderr, the status and heartbeat files, output files and
SIGTERM behave as on Slurm, and the status files, not Dask's futures, are the truth of a
(sub)job. See docs/dask.md.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, ClassVar

from ..._exceptions import JobSpecError, PluginError
from ..base import Backend, BackendDriver, DriverContext

if TYPE_CHECKING:
    from ..._component import JobView

__all__ = ["Dask"]

SECURITY_OPTIONS = frozenset({"tls_ca_file", "tls_client_cert", "tls_client_key", "require_encryption"})
"""The keys of ``Dask.security``: ``distributed.Security`` arguments naming files (no secrets)."""

_SCHEMES = ("tcp://", "tls://", "ws://", "wss://", "ucx://")


@dataclasses.dataclass(kw_only=True, repr=False)
class Dask(Backend):
    """Run each (sub)job as a task on a Dask cluster; a split job is one submission of N tasks.

    ``address`` is the scheduler's (``"tcp://host:8786"``); None starts a local cluster (a
    ``SubprocessCluster``) of worker processes that the engine owns and closes with it
    (``[Dask] local_workers``).
    ``resources`` are Dask worker resources each task needs (``{"GPU": 1}``: only workers
    started with ``--resources GPU=1`` take it). ``max_running`` caps how many tasks of one
    job are in the cluster at once (0: no cap); the engine hands the rest over as tasks end.
    ``security`` holds ``distributed.Security`` file options for a TLS scheduler:
    ``tls_ca_file``, ``tls_client_cert``, ``tls_client_key`` and ``require_encryption``
    (``"true"``).

    The gangadir must be on a file system the workers share (the job wrapper, its manifest and
    each job's outputdir live there), and a remote cluster's workers need ``[Dask] python``.
    """

    submit_batch: ClassVar[int] = 10_000

    address: str | None = None
    resources: dict[str, float] = dataclasses.field(default_factory=dict)
    max_running: int = 0
    security: dict[str, str] = dataclasses.field(default_factory=dict)

    def validate(self, job: JobView) -> None:
        if self.address is not None and not self.address.startswith(_SCHEMES):
            raise JobSpecError("backend.address",
                               f"{self.address!r} is not a Dask scheduler address; give e.g. "
                               "'tcp://host:8786', or None for a local cluster")
        if self.max_running < 0:
            raise JobSpecError("backend.max_running", "must be 0 (no cap) or more")
        for name, amount in self.resources.items():
            if not name or not math.isfinite(amount) or amount <= 0:
                raise JobSpecError(f"backend.resources[{name!r}]",
                                   "give a resource name and an amount above 0, e.g. {'GPU': 1}")
        for name in self.security:
            if name not in SECURITY_OPTIONS:
                raise JobSpecError(f"backend.security[{name!r}]",
                                   f"unknown option; use {', '.join(sorted(SECURITY_OPTIONS))}")
        if self.security and self.address is None:
            raise JobSpecError("backend.security", "applies to a remote scheduler; set address too")

    @classmethod
    def make_driver(cls, context: DriverContext) -> BackendDriver:
        try:
            from ._driver import DaskDriver
        except ImportError as exc:
            raise PluginError(f"the Dask backend needs the 'distributed' package ({exc}); "
                              "install it with: pip install 'ganga-async[dask]'") from exc
        return DaskDriver(context)
