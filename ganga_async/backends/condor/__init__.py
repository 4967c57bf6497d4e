"""HTCondor: run jobs in an HTCondor pool, a split job as one cluster of procs.

The settings a user puts on a job are :class:`Condor`; :class:`CondorSystem` reads job ClassAds
into our statuses (no IO); :class:`CondorDriver` is the shared batch driver
(:mod:`ganga_async.backends._batch`) talking to the schedd through the ``htcondor2`` bindings
(``pip install 'ganga-async[condor]'``), or HTCondor's command-line tools where they are
missing (``condor_q -json``, ``condor_history -json``, ``condor_submit``, ``condor_rm``,
``condor_release``), each blocking call in a worker thread:

- a submission is one ``Schedd.submit(..., count=N)``: a cluster of N procs, each running the
  job wrapper on its line of the manifest (``arguments = $(ProcId)``), named
  ``JobBatchName = ga.<job>-<token>`` so that a submission whose reply was lost is found;
- one sweep is one ``Schedd.query`` for every active cluster, one ``Schedd.history`` for the
  procs that left the queue, and the wrapper's status files for those that ended;
- a kill is one ``Schedd.act(JobAction.Remove, ...)`` for whole clusters or listed procs, a
  release one ``Schedd.act(JobAction.Release, ...)``.

The pool is found the way every HTCondor tool finds it (``CONDOR_CONFIG``, ``_CONDOR_*``), and
authentication is the pool's (IDTOKENS, Kerberos, ...).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from ..._component import owner_of
from ..._exceptions import JobSpecError, JobStateError
from ..base import Backend, DriverContext
from ._driver import CondorDriver
from ._system import CondorSystem

if TYPE_CHECKING:
    from ..._component import JobView

__all__ = ["Condor", "CondorDriver", "CondorSystem"]

RESERVED = ("executable", "arguments", "output", "error", "log", "queue", "initialdir", "batch_name",
            "jobbatchname", "transfer_executable", "universe")
"""Submit commands the engine sets itself to keep track of the job."""


@dataclasses.dataclass(kw_only=True, repr=False)
class Condor(Backend):
    """Run each (sub)job in an HTCondor pool; a split job is one cluster of procs.

    ``requirements`` (a ClassAd expression), ``request_cpus``, ``request_memory`` (MiB, or with
    a unit: ``"2GB"``), ``request_disk`` (KiB, or ``"1GB"``), ``universe`` (``"vanilla"``) and
    ``accounting_group`` become the submit commands of the same names when set;
    ``extra_submit`` adds any others (``{"+MaxRuntime": "3600"}``), except those the engine's
    bookkeeping depends on (``executable``, ``arguments``, ``output``, ``error``, ``log``,
    ``queue``, ``initialdir``, ``batch_name``, ``transfer_executable``). ``max_running`` caps
    how many procs of one cluster are in the queue at once (``max_materialize``; 0: no cap).

    The schedd is found through the pool's configuration (``CONDOR_CONFIG``); the gangadir must
    be on a file system the execute nodes share. See docs/condor.md.
    """

    submit_batch: ClassVar[int] = 10_000

    requirements: str = ""
    request_cpus: int = 0
    request_memory: str = ""
    request_disk: str = ""
    universe: str = "vanilla"
    accounting_group: str = ""
    extra_submit: dict[str, str] = dataclasses.field(default_factory=dict)
    max_running: int = 0

    def validate(self, job: JobView) -> None:
        if self.request_cpus < 0:
            raise JobSpecError("backend.request_cpus", "must be 0 (the pool's default) or more")
        if self.max_running < 0:
            raise JobSpecError("backend.max_running", "must be 0 (no cap) or more")
        if self.universe not in ("vanilla", "docker", "container", "parallel", "java", "vm"):
            raise JobSpecError("backend.universe", f"{self.universe!r} is not a universe the job "
                               "wrapper can run in; give 'vanilla' (the default)")
        for name in ("requirements", "request_memory", "request_disk", "accounting_group"):
            value = getattr(self, name)
            if "\n" in value:
                raise JobSpecError(f"backend.{name}", "must be one line")
        for key, value in self.extra_submit.items():
            bare = key.strip().lstrip("+").lower()
            if not isinstance(value, str) or not key.strip() or "\n" in key + str(value):
                raise JobSpecError(f"backend.extra_submit[{key!r}]",
                                   "give submit commands as one-line strings, e.g. {'+MaxRuntime': '3600'}")
            if bare in RESERVED or bare.startswith("queue"):
                raise JobSpecError(
                    f"backend.extra_submit[{key!r}]",
                    f"{key!r} is refused: the engine sets it itself to keep track of the job; "
                    "remove it (the job's outputs are in its outputdir)")

    def release(self) -> None:
        """Release the procs HTCondor holds of this backend's job (Ganga's
        ``j.backend.release()``), through the plain-Python interface's session
        (``ganga_async.gpi``); with the async API, call ``engine.release(job)``."""
        job = owner_of(self)
        release = getattr(job, "release", None)
        if release is None:
            raise JobStateError("j.backend.release() works on a job of the plain-Python interface "
                                "(ganga_async.gpi); with the async API call await engine.release(job)")
        release()

    @classmethod
    def make_driver(cls, context: DriverContext) -> CondorDriver:
        return CondorDriver(context)


