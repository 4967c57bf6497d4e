"""The contract of a batch system, and how its commands are run.

A :class:`BatchSystem` builds the argv of each command (submit, query, history, kill, find by
name, read the configuration) and parses what they print into
:class:`~ganga_async.backends.BackendStatus` values through its table of native states; it does
no IO, so its parsers are unit-tested on recorded real output. :class:`CommandRunner` runs the
commands: no shell, a timeout, a per-backend limit on commands at once.
"""

from __future__ import annotations

import abc
import dataclasses
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import anyio

from ..._exceptions import BackendError, BackendUnavailableError
from ...states import Status
from ..base import Backend, BackendStatus

__all__ = [
    "ACTIVE_NATIVE", "BatchSystem", "CommandResult", "CommandSystem", "CommandRunner", "Runner",
    "SubmitRequest", "compact_ranges",
]

ACTIVE_NATIVE = frozenset({Status.SUBMITTED, Status.RUNNING, Status.HELD})
"""The statuses of a batch job that has not ended (``held``: the batch system holds it)."""


@dataclasses.dataclass(frozen=True, slots=True)
class CommandResult:
    """What one batch command did."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def message(self) -> str:
        """The command's own words about what went wrong, on one line."""
        text = " ".join(line.strip() for line in (self.stderr or self.stdout).splitlines() if line.strip())
        return text or f"{self.argv[0]} exited with code {self.returncode}"


@dataclasses.dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One submission: a single job, or an array when ``array`` holds its task ids as ranges
    (``"0-999"``, ``"3,17-18"``). ``backend`` is the job's settings, for the system's own options."""

    name: str
    script: Path
    log: Path
    directory: Path
    array: str | None
    backend: Backend


class BatchSystem(abc.ABC):
    """The command builders and output parsers of one batch system; no IO of its own.

    ``states`` maps each native state name to our status and, for final states that are not a
    plain success or failure by exit code, the reason in words. The parsers give the batch
    system's view of each job as a :class:`~ganga_async.backends.BackendStatus` (:meth:`observe`),
    which :func:`resolve` weighs against the job wrapper's status file.
    """

    name: ClassVar[str]
    states: ClassVar[Mapping[str, tuple[Status, str | None]]]
    default_max_array: ClassVar[int] = 1000
    task_separator: ClassVar[str] = "_"
    """What joins an array's id and a task's: ``1234_17`` (Slurm), ``1234.17`` (HTCondor)."""
    sparse_tasks: ClassVar[bool] = True
    """Whether an array may have any task ids (Slurm's ``--array=3,17``); otherwise they run
    from 0 in the order of the manifest (HTCondor's procs)."""

    def job_of(self, native_id: str) -> str:
        """The array (cluster) a native id belongs to."""
        return native_id.partition(self.task_separator)[0]

    def task_id(self, job: str, task: int) -> str:
        """The native id of task ``task`` of array ``job``."""
        return f"{job}{self.task_separator}{task}"

    def single_id(self, job: str) -> str:
        """The native id of a job submitted alone (not as an array) as :meth:`parse_submit`
        gave it."""
        return job

    @abc.abstractmethod
    def script(self, python: str, wrapper: Path, manifest: Path, array: bool) -> str:
        """The batch script that runs the job wrapper for one task of ``manifest``."""

    def observe(self, state: str, *, exitcode: int | None = None, started: float | None = None,
                ended: float | None = None) -> BackendStatus:
        """Map a native state through :attr:`states` (an unknown state is ``unknown``)."""
        status, why = self.states.get(state, (Status.UNKNOWN, f"unknown {self.name} state {state}"))
        return BackendStatus(status, exitcode=exitcode, reason=why, started=started, ended=ended)


class CommandSystem(BatchSystem):
    """A batch system driven through its command-line tools (Slurm's ``sbatch``, ``squeue``,
    ...): the argv of each command and the parsers of what it prints."""

    @abc.abstractmethod
    def submit_argv(self, request: SubmitRequest) -> list[str]:
        """The command that submits ``request`` and prints the new job's id."""

    @abc.abstractmethod
    def parse_submit(self, result: CommandResult) -> str:
        """The id of the job (or array) that :meth:`submit_argv` made."""

    @abc.abstractmethod
    def query_argv(self, job_ids: Sequence[str]) -> list[str]:
        """One query of the queue for these jobs (every array task on its own line)."""

    @abc.abstractmethod
    def parse_query(self, result: CommandResult) -> dict[str, BackendStatus]:
        """What the query says of each job, keyed by native id (``1234`` or ``1234_17``); {} when
        none are known."""

    def history_argv(self, job_ids: Sequence[str]) -> list[str] | None:
        """The accounting query for jobs that left the queue, or None when there is none."""
        return None

    def parse_history(self, result: CommandResult) -> dict[str, BackendStatus]:
        return {}

    @abc.abstractmethod
    def kill_argv(self, native_ids: Sequence[str]) -> list[str]:
        """One command cancelling these jobs, arrays (``1234``) or array tasks (``1234_17``)."""

    @abc.abstractmethod
    def find_argv(self, name: str) -> list[list[str]]:
        """Commands that print the id of the job named ``name``, tried in order."""

    @abc.abstractmethod
    def parse_find(self, result: CommandResult) -> str | None:
        """The job id found by a :meth:`find_argv` command, or None."""

    @abc.abstractmethod
    def config_argv(self) -> list[str]:
        """The command that prints the system's configuration."""

    @abc.abstractmethod
    def parse_max_array(self, result: CommandResult) -> int:
        """How many tasks one array may hold (task ids run from 0 to this minus one)."""

    @abc.abstractmethod
    def is_transient(self, result: CommandResult) -> bool:
        """True when a failed command should be retried (the controller is down or restarting)."""

    def is_unknown_job(self, result: CommandResult) -> bool:
        """True when a failed query only means that none of the jobs is known any more."""
        return False

    def has_no_history(self, result: CommandResult) -> bool:
        """True when the history command failed because the site keeps no accounting."""
        return False


Runner = Callable[[Sequence[str], float], Awaitable[CommandResult]]


class CommandRunner:
    """Runs batch commands without a shell, each within ``seconds``, ``limit`` at once.

    A command that does not answer in time is killed and raises
    :class:`~ganga_async.BackendUnavailableError`; ``calls`` counts the commands run.
    """

    def __init__(self, limit: int) -> None:
        self._limit = anyio.Semaphore(max(1, limit))
        self.calls = 0

    async def __call__(self, argv: Sequence[str], seconds: float) -> CommandResult:
        async with self._limit:
            self.calls += 1
            try:
                with anyio.fail_after(seconds):
                    done = await anyio.run_process(list(argv), check=False, stdin=subprocess.DEVNULL)
            except TimeoutError:
                raise BackendUnavailableError(
                    f"{argv[0]} did not answer within {seconds:g} s") from None
            except OSError as exc:
                raise BackendError(
                    f"cannot run {argv[0]}: {exc.strerror or exc}; is it installed and on PATH?") from exc
        return CommandResult(list(argv), done.returncode, done.stdout.decode(errors="replace"),
                             done.stderr.decode(errors="replace"))


def compact_ranges(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` as ``"0-2,5,7-8"`` (indices sorted ascending)."""
    parts: list[str] = []
    start = prev = indices[0]
    for i in [*indices[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(parts)
