"""Slurm: run jobs on a Slurm cluster, a split job as one job array.

The settings a user puts on a job are :class:`Slurm`; :class:`SlurmSystem` builds the Slurm
commands and parses what they print. Everything else (running the commands, manifests, polling,
states) is the shared batch machinery of :mod:`ganga_async.backends._batch`.

Commands, all without a shell:

- ``sbatch --parsable --job-name=ga.<job>-<token> --output=... --array=0-999%10 ... script``,
  where the script runs the job wrapper on the task's line of the manifest;
- ``squeue --noheader --array --states=all --jobs=<ids> --format=%i|%T|%S|%e``: one call per
  sweep, every array task on its own line;
- ``sacct --noheader --parsable2 --allocations --jobs=<ids> --format=JobID,State,ExitCode,Start,End``
  for jobs that left the queue;
- ``scancel <id>`` for a whole array, or ``scancel <id>_<task> ...`` for some of its tasks;
- ``scontrol show config`` for ``MaxArraySize``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

from .._exceptions import BackendError, JobSpecError
from ..states import Status
from ._batch import ACTIVE_NATIVE, BatchDriver, CommandResult, CommandSystem, SubmitRequest
from .base import Backend, BackendStatus, DriverContext

if TYPE_CHECKING:
    from .._component import JobView

__all__ = ["Slurm", "SlurmSystem"]

_RESERVED = {
    "-o": "--output", "-e": "--error", "-a": "--array", "-J": "--job-name", "-W": "--wait",
}
_RESERVED_LONG = ("--output", "--error", "--array", "--job-name", "--parsable", "--wrap", "--wait",
                  "--test-only")


@dataclasses.dataclass(kw_only=True, repr=False)
class Slurm(Backend):
    """Run each (sub)job on a Slurm cluster; a split job is one job array.

    ``partition``, ``account``, ``time`` (a Slurm time limit: ``"30"``, ``"2:00:00"``,
    ``"1-00:00:00"``), ``memory`` (``"2G"``) and ``cpus`` (per task) become ``sbatch`` options
    when set; ``extra_options`` are passed to ``sbatch`` as they are (``["--qos=short"]``), except
    those the engine's bookkeeping depends on (``-o``/``--output``, ``-e``/``--error``,
    ``-a``/``--array``, ``-J``/``--job-name``, ``--parsable``, ``--wrap``, ``-W``/``--wait``,
    ``--test-only``). ``max_running`` caps how many tasks of one array run at once
    (``--array=...%max_running``; 0: no cap).

    The commands must be on ``PATH`` and reach the cluster (``SLURM_CONF`` is passed on); the
    gangadir must be on a file system the worker nodes share. See docs/slurm.md.
    """

    submit_batch: ClassVar[int] = 10_000

    partition: str = ""
    account: str = ""
    time: str = ""
    memory: str = ""
    cpus: int = 0
    extra_options: list[str] = dataclasses.field(default_factory=list)
    max_running: int = 0

    def validate(self, job: JobView) -> None:
        if self.cpus < 0:
            raise JobSpecError("backend.cpus", "must be 0 (Slurm's default) or more")
        if self.max_running < 0:
            raise JobSpecError("backend.max_running", "must be 0 (no cap) or more")
        for name in ("partition", "account", "time", "memory"):
            value = getattr(self, name)
            if value != value.strip() or value.startswith("-"):
                raise JobSpecError(f"backend.{name}", f"{value!r} is not a valid value; give e.g. "
                                   f"{_EXAMPLES[name]}")
        for i, option in enumerate(self.extra_options):
            refused = _reserved(option)
            if refused:
                raise JobSpecError(
                    f"backend.extra_options[{i}]",
                    f"{option!r} is refused: the engine sets {refused} itself to keep track of "
                    "the job; remove it (the job's outputs are in its outputdir)")
            if not option.startswith("-"):
                raise JobSpecError(
                    f"backend.extra_options[{i}]",
                    f"{option!r} is not an sbatch option; write options with their value in one "
                    "item, e.g. '--qos=short'")

    @classmethod
    def make_driver(cls, context: DriverContext) -> BatchDriver:
        return BatchDriver(context, SlurmSystem(), "Slurm")


_EXAMPLES = {"partition": "'debug'", "account": "'myproject'", "time": "'2:00:00'", "memory": "'2G'"}


def _reserved(option: str) -> str | None:
    """The reserved sbatch option ``option`` would set, or None."""
    if option.startswith("--"):
        name = option.partition("=")[0]
        if len(name) > 2:
            for full in _RESERVED_LONG:
                if full.startswith(name):  # sbatch accepts unambiguous abbreviations
                    return full
        return None
    if option[:2] in _RESERVED:
        return f"{option[:2]}/{_RESERVED[option[:2]]}"
    return None


_TRANSIENT = re.compile(
    r"unable to contact slurm controller|socket timed out|temporarily unable|try again|"
    r"resource temporarily unavailable|connection refused|zero bytes were transmitted|"
    r"communication connection failure|slurm_persist_conn|transport endpoint|"
    r"slurmctld is not responding|controller is not responding|node failure",
    re.IGNORECASE,
)
_FORMAT = "%i|%T|%S|%e"
_HISTORY_FIELDS = "JobID,State,ExitCode,Start,End"


class SlurmSystem(CommandSystem):
    """The Slurm command builders and output parsers (``sbatch``, ``squeue``, ``sacct``,
    ``scancel``, ``scontrol``)."""

    name = "Slurm"
    default_max_array = 1001
    states: ClassVar[Mapping[str, tuple[Status, str | None]]] = {
        "PENDING": (Status.SUBMITTED, None),
        "REQUEUED": (Status.SUBMITTED, None),
        "REQUEUE_HOLD": (Status.SUBMITTED, None),
        "REQUEUE_FED": (Status.SUBMITTED, None),
        "RESV_DEL_HOLD": (Status.SUBMITTED, None),
        "CONFIGURING": (Status.RUNNING, None),
        "RUNNING": (Status.RUNNING, None),
        "COMPLETING": (Status.RUNNING, None),
        "SUSPENDED": (Status.RUNNING, None),
        "STOPPED": (Status.RUNNING, None),
        "SIGNALING": (Status.RUNNING, None),
        "STAGE_OUT": (Status.RUNNING, None),
        "RESIZING": (Status.RUNNING, None),
        "COMPLETED": (Status.COMPLETED, None),
        "FAILED": (Status.FAILED, None),
        "CANCELLED": (Status.KILLED, "cancelled in Slurm (scancel)"),
        "TIMEOUT": (Status.FAILED, "reached its time limit (Slurm state TIMEOUT)"),
        "OUT_OF_MEMORY": (Status.FAILED, "ran out of memory (Slurm state OUT_OF_MEMORY)"),
        "NODE_FAIL": (Status.FAILED, "its node failed (Slurm state NODE_FAIL)"),
        "BOOT_FAIL": (Status.FAILED, "its node failed to boot (Slurm state BOOT_FAIL)"),
        "DEADLINE": (Status.FAILED, "missed its deadline (Slurm state DEADLINE)"),
        "PREEMPTED": (Status.FAILED, "was preempted (Slurm state PREEMPTED)"),
        "SPECIAL_EXIT": (Status.FAILED, "ended in Slurm state SPECIAL_EXIT"),
        "REVOKED": (Status.FAILED, "was revoked (Slurm state REVOKED)"),
    }

    def script(self, python: str, wrapper: Path, manifest: Path, array: bool) -> str:
        task = '"$SLURM_ARRAY_TASK_ID"' if array else "0"
        return (
            "#!/bin/sh\n"
            "# Written by ganga-async: runs one task of the manifest through the job wrapper.\n"
            f"exec {shlex.join([python, '-I', '-S', str(wrapper), str(manifest)])} {task}\n"
        )

    def submit_argv(self, request: SubmitRequest) -> list[str]:
        settings = cast(Slurm, request.backend)
        argv = ["sbatch", "--parsable", f"--job-name={request.name}", f"--output={request.log}",
                f"--error={request.log}", f"--chdir={request.directory}"]
        if request.array is not None:
            cap = f"%{settings.max_running}" if settings.max_running else ""
            argv.append(f"--array={request.array}{cap}")
        for option, value in (("--partition", settings.partition), ("--account", settings.account),
                              ("--time", settings.time), ("--mem", settings.memory)):
            if value:
                argv.append(f"{option}={value}")
        if settings.cpus:
            argv.append(f"--cpus-per-task={settings.cpus}")
        argv += settings.extra_options
        argv.append(str(request.script))
        return argv

    def parse_submit(self, result: CommandResult) -> str:
        for line in result.stdout.splitlines():
            head = line.strip().partition(";")[0]
            if head.isdigit():
                return head
        raise BackendError(f"sbatch printed no job id: {result.stdout.strip()!r} {result.message}")

    def query_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["squeue", "--noheader", "--array", "--states=all", f"--jobs={','.join(job_ids)}",
                f"--format={_FORMAT}"]

    def parse_query(self, result: CommandResult) -> dict[str, BackendStatus]:
        found: dict[str, BackendStatus] = {}
        for line in result.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) != 4:
                continue
            native, state, start, end = parts
            observed = self.observe(state.split()[0] if state.strip() else "UNKNOWN",
                                    started=_timestamp(start))
            if observed.status not in ACTIVE_NATIVE:
                # For a pending or running job the end column is only Slurm's expected end.
                observed = dataclasses.replace(observed, ended=_timestamp(end))
            found[native] = observed
        return found

    def history_argv(self, job_ids: Sequence[str]) -> list[str]:
        return ["sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={','.join(job_ids)}",
                f"--format={_HISTORY_FIELDS}"]

    def parse_history(self, result: CommandResult) -> dict[str, BackendStatus]:
        found: dict[str, BackendStatus] = {}
        for line in result.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) != 5:
                continue
            native, state, exitcode, start, end = parts
            observed = self.observe(state.split()[0] if state.strip() else "UNKNOWN",
                                    exitcode=_exitcode(exitcode), started=_timestamp(start),
                                    ended=_timestamp(end))
            for one in _expand(native):
                found[one] = observed
        return found

    def kill_argv(self, native_ids: Sequence[str]) -> list[str]:
        return ["scancel", *native_ids]

    def find_argv(self, name: str) -> list[list[str]]:
        return [
            ["squeue", "--noheader", "--states=all", f"--name={name}", "--format=%F"],
            ["sacct", "--noheader", "--parsable2", "--allocations", f"--name={name}",
             "--starttime=now-7days", "--format=JobID"],
        ]

    def parse_find(self, result: CommandResult) -> str | None:
        for line in result.stdout.splitlines():
            head = line.strip().partition("_")[0]
            if head.isdigit():
                return head
        return None

    def config_argv(self) -> list[str]:
        return ["scontrol", "show", "config"]

    def parse_max_array(self, result: CommandResult) -> int:
        match = re.search(r"^MaxArraySize\s*=\s*(\d+)", result.stdout, re.MULTILINE)
        if result.returncode != 0 or match is None:
            raise ValueError(f"no MaxArraySize in scontrol's output ({result.message})")
        return int(match.group(1))

    def is_transient(self, result: CommandResult) -> bool:
        return bool(_TRANSIENT.search(result.stderr or result.stdout))

    def is_unknown_job(self, result: CommandResult) -> bool:
        return "Invalid job id specified" in result.stderr

    def has_no_history(self, result: CommandResult) -> bool:
        return "accounting storage is disabled" in (result.stderr + result.stdout)


@functools.lru_cache(maxsize=4096)
def _timestamp(text: str) -> float | None:
    """Slurm's local ``2026-11-21T11:25:04`` as epoch seconds; None for N/A, NONE, Unknown.
    Cached: the tasks of an array mostly share their times, and parsing one costs ~12 µs."""
    text = text.strip()
    if len(text) != 19 or text[4] != "-":
        return None
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _exitcode(text: str) -> int | None:
    """sacct's ``code:signal`` as an exit code (negative: the signal that ended it)."""
    code, _, sig = text.strip().partition(":")
    if not code.isdigit():
        return None
    if sig.isdigit() and int(sig):
        return -int(sig)
    return int(code)


def _expand(native: str) -> list[str]:
    """``1234_[3-5,9]`` (tasks sacct has not split up yet) as each task's id."""
    job, _, tasks = native.partition("_")
    if not tasks.startswith("["):
        return [native]
    ids = []
    for part in tasks.strip("[]").split("%")[0].split(","):
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            ids += [f"{job}_{i}" for i in range(int(first), int(last or first) + 1)]
    return ids
