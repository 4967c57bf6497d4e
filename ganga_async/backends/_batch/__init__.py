"""What every batch backend shares: running its commands, submitting arrays, watching, states.

A batch backend is two small things, kept apart from the IO:

- a :class:`BatchSystem` (:mod:`.system`): builds the argv of each command (submit, query,
  history, kill, find by name, read the configuration) and parses what they print into
  :class:`~ganga_async.backends.BackendStatus` values, through its table of native states;
- the :class:`BatchDriver` (:mod:`.driver`) runs those commands (through
  :class:`CommandRunner`: no shell, a timeout, a per-backend limit on commands at once),
  writes what the worker nodes read (the job wrapper ``workers/job_wrapper.py`` and a JSON
  Lines manifest of the tasks, next to the job), and sweeps: one query for every job it
  tracks, decided from the batch system's view and the wrapper's status file
  (:func:`resolve`, :mod:`.status`), once for every batch system.
"""

from .driver import BatchDriver, install_wrapper, manifest_entry, write_manifest
from .status import HEARTBEAT_FILE, KILL_FILE, STATUS_FILE, read_records, remove_status_files, resolve
from .system import (
    ACTIVE_NATIVE,
    BatchSystem,
    CommandResult,
    CommandRunner,
    CommandSystem,
    SubmitRequest,
    compact_ranges,
)

__all__ = [
    "ACTIVE_NATIVE", "BatchDriver", "BatchSystem", "CommandResult", "CommandRunner", "CommandSystem",
    "HEARTBEAT_FILE", "KILL_FILE", "STATUS_FILE", "SubmitRequest", "compact_ranges", "install_wrapper",
    "manifest_entry", "read_records", "remove_status_files", "resolve", "write_manifest",
]
