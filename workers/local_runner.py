"""The local runner: queues, starts and watches the Local backend's processes for one engine.

Standard library only; shipped inside the wheel and started by the engine as
``python -I -S local_runner.py RUNDIR`` with a Unix socket as stdin. It reads one JSON command
per line from the socket and answers on it with one JSON event per line:

    {"op": "run", "key": "3.17", "group": "3", "limit": 8, "argv": [...], "env": {...},
     "workdir": ..., "outputdir": ..., "inputs": [...], "outputs": [...]}
        -> {"ev": "started", "key", "pid", "t"}, later {"ev": "exited", "key", "code", "killed", "t", "error"}
    {"op": "kill", "key": "3.17", "grace": 5.0}

Commands of one ``group`` (a master job) run at most ``limit`` at a time, in the order they
came; the rest wait here, in the runner, so they still start after the engine has gone. Each
process runs in its own session (so a kill reaches its whole process group), in ``workdir``,
with stdout and stderr in ``outputdir`` and the environment additions of its job.

What a restarted engine reads:

- ``RUNDIR/local_runner-PID.accepted``, the runner's *journal*: the key of every command it
  received, appended (one write per batch that arrived together) before anything else is done
  with them. It is removed when the runner exits, every command having its status file by then.
- ``outputdir/__jobstatus__.json``, each command's life: accepted (with the runner's pid), then
  its pid and start, then its exit code and end. The record has a fixed size and is overwritten
  in place with one ``pwrite``, so it is never missing or empty once written.

Threads, so that starting processes is never serialised behind anything else:

- the main thread reads commands;
- two *preparing* threads make what a command needs as soon as it arrives: its directories, its
  status record, empty stdout and stderr files, its staged inputs. Creating files is the slow
  part of starting a process on some file systems (ext4 without a journal scans recently
  deleted inodes on every create);
- each group has up to ``limit`` *slot* threads, each starting the group's next prepared
  command and waiting for its process, as a bare loop of threads would;
- one *writer* thread sends the events, all that piled up in one write.

The runner outlives the engine: when its input ends it keeps running what it has, records every
exit code, and exits once the last process has ended.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

STATUS_FILE = "__jobstatus__.json"
KILL_FILE = "__kill__"
"""Created in the outputdir by an engine that cannot reach the runner: do not start it."""
RECORD_SIZE = 512
"""Bytes of every status record (JSON padded with spaces), so an update overwrites it whole."""
PREPARING_THREADS = 2
THREAD_STACK = 512 * 1024
"""Bytes of stack per thread: each only starts, waits for and records processes."""
OUTPUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


class Command:
    """One ``run`` command and what became of it."""

    __slots__ = ("key", "group", "limit", "argv", "env", "workdir", "outputdir", "inputs", "outputs",
                 "record", "prepared", "error", "proc", "status_fd")

    def __init__(self, cmd: dict[str, Any], host: str) -> None:
        self.key = str(cmd["key"])
        self.group = str(cmd["group"])
        self.limit = max(1, int(cmd["limit"]))
        self.argv = [str(a) for a in cmd["argv"]]
        self.env = {str(k): str(v) for k, v in dict(cmd.get("env") or {}).items()}
        self.workdir = str(cmd["workdir"])
        self.outputdir = str(cmd["outputdir"])
        self.inputs = [str(p) for p in cmd.get("inputs") or ()]
        self.outputs = [str(p) for p in cmd.get("outputs") or ()]
        self.record: dict[str, object] = {"key": self.key, "runner_pid": os.getpid(), "host": host,
                                          "accepted": time.time()}
        self.prepared = False
        self.error: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.status_fd: int | None = None


class Group:
    """The commands of one master job, in order, and the slot threads running them.

    ``queue``, ``slots``, ``limit`` and the queued commands' ``prepared`` are guarded by
    ``cond``; ``pending`` (commands received and not yet finished) by the runner's lock.
    """

    def __init__(self, limit: int) -> None:
        self.cond = threading.Condition()
        self.limit = limit
        self.slots = 0
        self.queue: deque[Command] = deque()
        self.pending = 0


class Runner:
    def __init__(self, engine: int, rundir: str | None) -> None:
        self.engine = engine
        """The socket to the engine, as a blocking file descriptor."""
        self.engine_alive = True
        self.host = os.uname().nodename
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.journal = (os.path.join(rundir, f"local_runner-{os.getpid()}.accepted")
                        if rundir else None)
        self.lock = threading.Lock()
        self.groups: dict[str, Group] = {}
        self.idle = threading.Event()
        self.idle.set()
        self.procs: dict[str, Command] = {}
        self.kill_requested: dict[str, float] = {}
        self.to_prepare: queue.SimpleQueue[tuple[Group, Command]] = queue.SimpleQueue()
        self.outbox: list[bytes] = []
        self.outbox_ready = threading.Condition()
        for _ in range(PREPARING_THREADS):
            spawn_thread(self.preparing, "prepare")
        spawn_thread(self.writing, "write")

    # -- the main thread: commands ----------------------------------------------------------

    def serve(self) -> None:
        """Read commands until the engine goes, then wait for the last process to end."""
        buffer = b""
        while True:
            try:
                data = os.read(self.engine, 1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            *lines, buffer = (buffer + data).split(b"\n")
            self.commands([line for line in lines if line.strip()])
        self.engine_alive = False
        self.idle.wait()
        if self.journal is not None:
            try:
                os.unlink(self.journal)
            except FileNotFoundError:
                pass

    def commands(self, lines: list[bytes]) -> None:
        """Handle the lines that arrived together: every ``run`` among them is journalled, in
        one write, before any of them is queued."""
        runs: list[Command] = []
        for line in lines:
            try:
                cmd = json.loads(line)
                op = cmd["op"]
                if op == "run":
                    runs.append(Command(cmd, self.host))
                elif op == "kill":
                    self.kill(str(cmd["key"]), float(cmd.get("grace", 5.0)))
                else:
                    raise KeyError(op)
            except (ValueError, KeyError, TypeError) as exc:
                print(f"local_runner: ignoring malformed command ({exc!r}): {line[:200]!r}",
                      file=sys.stderr)
        if runs:
            self.write_journal([command.key for command in runs])
            for command in runs:
                self.accept(command)

    def write_journal(self, keys: list[str]) -> None:
        if self.journal is None:
            return
        try:
            fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, "".join(f"{key}\n" for key in keys).encode())
            finally:
                os.close(fd)
        except OSError as exc:
            print(f"local_runner: cannot write the journal {self.journal}: {exc}", file=sys.stderr)

    def accept(self, command: Command) -> None:
        with self.lock:
            group = self.groups.get(command.group)
            if group is None:
                group = self.groups[command.group] = Group(command.limit)
            group.pending += 1
            self.idle.clear()
        with group.cond:
            group.limit = command.limit
            group.queue.append(command)
            while group.slots < min(group.limit, len(group.queue)):
                group.slots += 1
                spawn_thread(self.slot, f"slot-{command.group}", group)
        self.to_prepare.put((group, command))

    def kill(self, key: str, grace: float) -> None:
        self.kill_requested[key] = grace
        running = self.procs.get(key)
        if running is not None:
            self.signal_group(running)
            return
        with self.lock:
            groups = list(self.groups.values())
        for group in groups:
            with group.cond:
                found = next((c for c in group.queue if c.key == key and c.prepared), None)
                if found is not None:
                    group.queue.remove(found)
            if found is not None:
                self.finish(found, None)
                return
        # Not prepared yet: dropped as soon as it is (see `preparing`), or when a slot takes it.

    def signal_group(self, command: Command) -> None:
        assert command.proc is not None
        try:
            os.killpg(command.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        timer = threading.Timer(self.kill_requested.get(command.key, 5.0), self.force_kill, (command,))
        timer.daemon = True
        timer.start()

    def force_kill(self, command: Command) -> None:
        if self.procs.get(command.key) is command and command.proc is not None:
            try:
                os.killpg(command.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- the preparing threads --------------------------------------------------------------

    def preparing(self) -> None:
        while True:
            group, command = self.to_prepare.get()
            try:
                prepare(command)
            except OSError as exc:
                command.error = f"cannot prepare it: {exc}"
            with group.cond:
                command.prepared = True
                dropped = command.key in self.kill_requested
                if dropped:
                    group.queue.remove(command)
                else:
                    group.cond.notify_all()
            if dropped:
                self.finish(command, None)

    # -- the slot threads -------------------------------------------------------------------

    def slot(self, group: Group) -> None:
        """Run the group's commands one after another, in order, while some are queued and the
        group's limit leaves room for this thread. When a process ends, the next one starts
        before the last one's status file is written: a slot never waits for bookkeeping."""
        ended: Command | None = None
        while True:
            with group.cond:
                while (ended is None and group.queue and group.slots <= group.limit
                       and not group.queue[0].prepared):
                    group.cond.wait()
                command = None
                if group.queue and group.slots <= group.limit and group.queue[0].prepared:
                    command = group.queue.popleft()
                elif ended is None:
                    group.slots -= 1
                    return
            proc = self.start(command) if command is not None else None
            if ended is not None:
                self.record_end(ended)
                ended = None
            if command is None or proc is None:
                continue
            code = proc.wait()
            end = time.time()
            del self.procs[command.key]
            if command.outputs:
                try:
                    sandbox().collect_outputs(command.outputs, command.workdir,
                                              command.outputdir)
                except OSError as exc:
                    print(f"local_runner: copying outputs of {command.key} failed: {exc}",
                          file=sys.stderr)
            self.announce(command, code, end)
            ended = command

    def start(self, command: Command) -> subprocess.Popen[bytes] | None:
        """Start the command's process; None (and the command finished) when it must not or
        cannot start."""
        if command.error is not None:
            self.finish(command, None, command.error)
            return None
        if take_kill_marker(command.outputdir):
            self.kill_requested.setdefault(command.key, 0.0)
        if command.key in self.kill_requested:
            self.finish(command, None)
            return None
        try:
            proc = spawn(command, self.devnull)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            self.finish(command, None, f"cannot start {command.argv[0]}: {exc}")
            return None
        self.procs[command.key] = command
        self.send({"ev": "started", "key": command.key, "pid": proc.pid, "t": command.record["start"]})
        if command.key in self.kill_requested:
            self.signal_group(command)
        return proc

    def finish(self, command: Command, code: int | None, error: str | None = None) -> None:
        """Tell the engine the command ended and record it; from any thread."""
        self.announce(command, code, time.time(), error)
        self.record_end(command)

    def announce(self, command: Command, code: int | None, end: float,
                 error: str | None = None) -> None:
        """Tell the engine the command ended (its status file says so after ``record_end``)."""
        killed = self.kill_requested.pop(command.key, None) is not None
        if killed:
            error = None
        command.record.update(end=end, exitcode=code, killed=killed, error=error)
        self.send({"ev": "exited", "key": command.key, "code": code, "killed": killed, "t": end,
                   "error": error})

    def record_end(self, command: Command) -> None:
        """Write the command's last record; the runner may exit once every command's is."""
        try:
            if command.status_fd is not None:
                try:
                    os.pwrite(command.status_fd, pack(command.record), 0)
                finally:
                    os.close(command.status_fd)
                    command.status_fd = None
            else:
                write_status(command.outputdir, command.record)
        except OSError as exc:
            print(f"local_runner: cannot write the status of {command.key}: {exc}", file=sys.stderr)
        with self.lock:
            group = self.groups[command.group]
            group.pending -= 1
            if not group.pending:
                del self.groups[command.group]
                if not self.groups:
                    self.idle.set()

    # -- the writer thread ------------------------------------------------------------------

    def send(self, event: dict[str, object]) -> None:
        """Queue an event for the engine, from any thread."""
        line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        with self.outbox_ready:
            self.outbox.append(line)
            self.outbox_ready.notify()

    def writing(self) -> None:
        while True:
            with self.outbox_ready:
                while not self.outbox:
                    self.outbox_ready.wait()
                data, self.outbox = b"".join(self.outbox), []
            if not self.engine_alive:
                continue
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.engine, view):]
            except OSError:
                self.engine_alive = False


def spawn_thread(target: Callable[..., None], name: str, *args: object) -> None:
    threading.Thread(target=target, args=args, name=name, daemon=True).start()


def prepare(command: Command) -> None:
    """Everything a command needs before its process can start, made before it is its turn."""
    make_dir(command.outputdir)
    # Written before anything runs, so a restarted engine never starts it twice.
    write_status(command.outputdir, command.record)
    make_dir(command.workdir)
    for name in ("stdout", "stderr"):
        os.close(os.open(os.path.join(command.outputdir, name), OUTPUT_FLAGS, 0o644))
    if command.inputs:
        sandbox().stage_inputs(command.inputs, command.workdir)
    if command.argv[0].startswith("./"):
        staged = os.path.join(command.workdir, command.argv[0][2:])
        os.chmod(staged, os.stat(staged).st_mode | 0o111)


def make_dir(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)`` in one system call when only ``path`` is missing."""
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)


def spawn(command: Command, devnull: int) -> subprocess.Popen[bytes]:
    """Start the command's process, its status record saying so."""
    out = os.open(os.path.join(command.outputdir, "stdout"), OUTPUT_FLAGS, 0o644)
    try:
        err = os.open(os.path.join(command.outputdir, "stderr"), OUTPUT_FLAGS, 0o644)
        try:
            env = {**os.environ, **command.env} if command.env else None
            proc = subprocess.Popen(command.argv, cwd=command.workdir, env=env, stdin=devnull,
                                    stdout=out, stderr=err, start_new_session=True)
        finally:
            os.close(err)
    finally:
        os.close(out)
    command.proc = proc
    command.record.update(pid=proc.pid, start=time.time())
    try:
        # Kept open until the process ends, for its last record.
        command.status_fd = os.open(os.path.join(command.outputdir, STATUS_FILE),
                                    os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        os.pwrite(command.status_fd, pack(command.record), 0)
    except OSError as exc:
        print(f"local_runner: cannot write the status of {command.key}: {exc}", file=sys.stderr)
    return proc


def write_status(outputdir: str, record: dict[str, object]) -> None:
    fd = os.open(os.path.join(outputdir, STATUS_FILE), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.pwrite(fd, pack(record), 0)
    finally:
        os.close(fd)


def pack(record: dict[str, object]) -> bytes:
    """The record as JSON padded to RECORD_SIZE bytes; a long error message is shortened to fit
    (the other fields are numbers, the key and the host name)."""
    data = json.dumps(record).encode()
    if len(data) >= RECORD_SIZE:
        data = json.dumps({**record, "error": f"{str(record.get('error'))[:150]}...",
                           "host": str(record.get("host"))[:64]}).encode()
    return data.ljust(RECORD_SIZE - 1) + b"\n"


def take_kill_marker(outputdir: str) -> bool:
    """True (and the marker removed) when an engine asked, through the file, not to start this."""
    try:
        os.unlink(os.path.join(outputdir, KILL_FILE))
    except FileNotFoundError:
        return False
    return True


def sandbox() -> ModuleType:
    """The job wrapper beside this file, whose input staging and output collection the runner
    uses too; imported only for a job that has inputs or output patterns (most have neither,
    and the runner starts faster without its imports)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.append(here)
    import job_wrapper

    return job_wrapper


def main() -> None:
    # Daemonise: the engine waits for this first process only; the runner it leaves behind
    # is nobody's child but init's, so it outlives the engine without becoming a zombie of it.
    if os.fork() > 0:
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    threading.stack_size(THREAD_STACK)
    engine = sys.stdin.fileno()
    os.set_blocking(engine, True)
    Runner(engine, sys.argv[1] if len(sys.argv) > 1 else None).serve()


if __name__ == "__main__":
    main()
