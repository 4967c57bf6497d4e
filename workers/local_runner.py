"""The local runner: queues, starts and watches the Local backend's processes for one engine.

Standard library only; shipped inside the wheel and started by the engine with a Unix socket
as stdin, as ``python -I -S -c "...; local_runner.main(sys.argv[2])" .../local_runner.py LOGDIR``
(imported, so from its cached bytecode; ``python -I -S local_runner.py LOGDIR`` works the same),
``LOGDIR`` being the gangadir's log directory. Its first process prints the pid of the
runner it leaves behind on stdout and exits. The runner reads one JSON command per line from the
socket and answers on it with one JSON event per line:

    {"op": "run", "key": "3.17", "group": "3", "limit": 8, "log": ".../3/__localstatus__.jsonl",
     "argv": [...], "env": {...}, "workdir": ..., "scratch": ".../3/work" or null,
     "outputdir": ..., "inputs": [...], "outputs": [...]}
        -> {"ev": "started", "key", "pid", "t"}, later {"ev": "exited", "key", "code", "killed", "t", "error"}
    {"op": "kill", "key": "3.17", "grace": 5.0}

Commands of one ``group`` (a master job) run at most ``limit`` at a time, in the order they
came; the rest wait here, in the runner, so they still start after the engine has gone. Each
process runs in its own session (so a kill reaches its whole process group), with stdout and
stderr in ``outputdir`` and the environment additions of its job: in its slot's directory under
``scratch`` when there is one (emptied after each command, its ``outputs`` copied back first),
otherwise in ``workdir``, which is kept.

What a restarted engine reads is the group's *status log* ``log``, one per master job, append
only, one JSON record per line:

- ``{"ev": "accepted", "key", "runner_pid", "host", "t"}`` for every command received, written
  (one write for all that arrived together) before anything else is done with them;
- ``{"ev": "launching", "key", "t"}`` just before its process is started (logged only), so that
  after a crash of the runner a command whose process may have started before its ``started``
  line was written is known as such and never started again blindly;
- then the same ``started`` and ``exited`` lines the engine is sent, each written before it is
  sent, so the log always knows at least what the engine was told.

The last ``accepted`` of a key starts its current run. One log per job, rather than a status
file per subjob, saves a file creation per process, which is costly on some file systems (ext4
without a journal scans recently deleted inodes on every create).

While it may hold commands it has not read, the runner has a *reading marker*
``LOGDIR/runner-<pid>.reading``: made by its first process before the engine is told the runner
started (so before any command is sent), removed once its input reached its end, every command
read and logged as accepted. A restarted engine concludes that a command it finds no record of
was never received only when no other live runner has a marker: one that does may still read it
from its socket buffer, and would run it a second time.

Threads, so that starting processes is never serialised behind anything else:

- the main thread reads commands and logs their acceptance;
- each group has up to ``limit`` *slot* threads, each making the next command's directories
  and output files, starting its process and waiting for it, as a bare loop of threads would,
  and logging and sending its ``started`` and ``exited`` events itself;
- a *sender* thread sends what the engine's socket would not take at once, so that an engine
  slow to read never holds up the log or the next process.

The runner outlives the engine: when its input ends it keeps running what it has, logs every
exit code, and exits once the last process has ended.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque

TYPE_CHECKING = False  # not typing's: importing typing took 5 ms of the runner's start
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

KILL_FILE = "__kill__"
"""Created in the outputdir by a later engine, which cannot reach this runner: do not start it.
Looked for only once the runner's own engine has gone (until then kills come as commands)."""
THREAD_STACK = 512 * 1024
"""Bytes of stack per thread: each only starts, waits for and records processes."""
OUTPUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


class Command:
    """One ``run`` command and what became of it."""

    __slots__ = ("key", "group", "limit", "log", "argv", "env", "workdir", "scratch", "outputdir",
                 "inputs", "outputs", "proc")

    def __init__(self, cmd: dict[str, Any]) -> None:
        self.key = str(cmd["key"])
        self.group = str(cmd["group"])
        self.limit = max(1, int(cmd["limit"]))
        self.log = str(cmd["log"])
        self.argv = [str(a) for a in cmd["argv"]]
        self.env = {str(k): str(v) for k, v in dict(cmd.get("env") or {}).items()}
        self.workdir = str(cmd["workdir"])
        self.scratch = str(cmd["scratch"]) if cmd.get("scratch") else None
        self.outputdir = str(cmd["outputdir"])
        self.inputs = [str(p) for p in cmd.get("inputs") or ()]
        self.outputs = [str(p) for p in cmd.get("outputs") or ()]
        self.proc: subprocess.Popen[bytes] | None = None


class Group:
    """The commands of one master job, in order, the slot threads running them and its status
    log, open while it has commands.

    ``queue``, ``slots`` and ``limit`` are guarded by ``cond``; ``pending`` (commands received
    and not yet logged as ended) by the runner's lock.
    """

    def __init__(self, key: str, limit: int, log: str) -> None:
        self.key = key
        self.cond = threading.Condition()
        self.limit = limit
        self.slots = 0
        self.queue: deque[Command] = deque()
        self.pending = 0
        self.log_path = log
        self.log_fd: int | None = None
        try:
            os.makedirs(os.path.dirname(log), exist_ok=True)
            self.log_fd = os.open(log, LOG_FLAGS, 0o644)
        except OSError as exc:
            complain(f"cannot open the status log {log}: {exc}")

    def append(self, data: bytes) -> None:
        if self.log_fd is None:
            return
        try:
            write_all(self.log_fd, data)
        except OSError as exc:
            complain(f"cannot write the status log {self.log_path}: {exc}")

    def close(self) -> None:
        if self.log_fd is not None:
            os.close(self.log_fd)
            self.log_fd = None


class Runner:
    def __init__(self, engine: int, marker: str) -> None:
        self.engine = engine
        """The socket to the engine, as a blocking file descriptor."""
        self.marker = marker
        """The reading marker, removed once the input ended."""
        self.engine_socket = socket_of(engine)
        """The same socket, for sends that must not block (``MSG_DONTWAIT``); None when the
        engine's end is not a socket (then the sender thread sends everything)."""
        self.engine_alive = True
        self.host = os.uname().nodename
        self.pid = os.getpid()
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.lock = threading.Lock()
        self.groups: dict[str, Group] = {}
        self.idle = threading.Event()
        self.idle.set()
        self.procs: dict[str, Command] = {}
        self.kill_requested: dict[str, float] = {}
        self.scratch_ids = itertools.count()
        self.unsent = bytearray()
        self.sending = False
        self.unsent_ready = threading.Condition()
        spawn_thread(self.send_unsent, "send")

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
        # Every command is read and its acceptance logged: none can arrive any more.
        try:
            os.unlink(self.marker)
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError):
                complain(f"cannot remove the reading marker {self.marker}: {exc}")
        self.idle.wait()

    def commands(self, lines: list[bytes]) -> None:
        """Handle the lines that arrived together: every ``run`` among them is logged as
        accepted, in one write per group, before any of them is queued."""
        runs: list[tuple[Group, Command]] = []
        for line in lines:
            try:
                cmd = json.loads(line)
                op = cmd["op"]
                if op == "run":
                    command = Command(cmd)
                    runs.append((self.group_of(command), command))
                elif op == "kill":
                    self.kill(str(cmd["key"]), float(cmd.get("grace", 5.0)))
                else:
                    raise KeyError(op)
            except (ValueError, KeyError, TypeError) as exc:
                complain(f"ignoring malformed command ({exc!r}): {line[:200]!r}")
        if not runs:
            return
        now = time.time()
        accepted: dict[Group, list[bytes]] = {}
        for group, command in runs:
            accepted.setdefault(group, []).append(encode({
                "ev": "accepted", "key": command.key, "runner_pid": self.pid, "host": self.host,
                "t": now}))
        for group, records in accepted.items():
            group.append(b"".join(records))
        for group, command in runs:
            self.queue(group, command)

    def group_of(self, command: Command) -> Group:
        """The command's group, counting it as pending (so its log stays open)."""
        with self.lock:
            group = self.groups.get(command.group)
            if group is None:
                group = self.groups[command.group] = Group(command.group, command.limit, command.log)
            group.pending += 1
            self.idle.clear()
        return group

    def queue(self, group: Group, command: Command) -> None:
        with group.cond:
            group.limit = command.limit
            group.queue.append(command)
            while group.slots < min(group.limit, len(group.queue)):
                group.slots += 1
                spawn_thread(self.slot, f"slot-{command.group}", group)

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
                found = next((c for c in group.queue if c.key == key), None)
                if found is not None:
                    group.queue.remove(found)
            if found is not None:
                self.announce(group, found, None)
                return
        # Being started by a slot right now: the slot sees the request once it has the pid.

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

    # -- the slot threads -------------------------------------------------------------------

    def slot(self, group: Group) -> None:
        """Run the group's commands one after another, in order, while some are queued and the
        group's limit leaves room for this thread. A command with a ``scratch`` directory runs
        in the slot's own directory under it, emptied after each command and removed when the
        slot ends; any other runs in its ``workdir``, which is kept."""
        scratch: str | None = None
        while True:
            with group.cond:
                if not group.queue or group.slots > group.limit:
                    group.slots -= 1
                    break
                command = group.queue.popleft()
            cwd, made = command.workdir, False
            if command.scratch is not None:
                if scratch is None or os.path.dirname(scratch) != command.scratch:
                    scratch = os.path.join(command.scratch, f"{self.pid}-{next(self.scratch_ids)}")
                else:
                    made = True  # by this slot, for its previous command
                cwd = scratch
            if not self.run(group, command, cwd, made) and cwd is scratch:
                scratch = None  # not emptied, or gone: the next command gets a new one
        if scratch is not None:
            for path in (scratch, os.path.dirname(scratch)):
                try:
                    os.rmdir(path)
                except OSError:
                    break  # the scratch root still has other slots' directories

    def run(self, group: Group, command: Command, cwd: str, made: bool) -> bool:
        """Start the command's process in ``cwd`` (``made`` when it exists) unless it must not
        or cannot start, wait for it, copy its outputs back, empty a scratch ``cwd`` and tell
        of its end. False when a scratch ``cwd`` could not be emptied."""
        clean = True
        if not self.engine_alive and take_kill_marker(command.outputdir):
            self.kill_requested.setdefault(command.key, 0.0)
        if command.key in self.kill_requested:
            self.announce(group, command, None)
            return clean
        group.append(encode({"ev": "launching", "key": command.key, "t": time.time()}))
        try:
            proc = spawn(command, cwd, made, self.devnull)
        except Exception as exc:  # whatever stops a start ends this command, never its slot
            self.announce(group, command, None, f"cannot start {command.argv[0]}: {exc}")
            return cwd == command.workdir or empty(cwd)
        self.procs[command.key] = command
        self.record(group, {"ev": "started", "key": command.key, "pid": proc.pid, "t": time.time()})
        if command.key in self.kill_requested:
            self.signal_group(command)
        code = proc.wait()
        end = time.time()
        del self.procs[command.key]
        if command.outputs:
            try:
                sandbox().collect_outputs(command.outputs, cwd, command.outputdir)
            except OSError as exc:
                complain(f"copying outputs of {command.key} failed: {exc}")
        if cwd != command.workdir:
            clean = empty(cwd)
        self.announce(group, command, code, None, end)
        return clean

    def announce(self, group: Group, command: Command, code: int | None, error: str | None = None,
                 end: float | None = None) -> None:
        """Log and tell the engine that the command ended; from any thread."""
        killed = self.kill_requested.pop(command.key, None) is not None
        self.record(group, {"ev": "exited", "key": command.key, "code": code, "killed": killed,
                            "t": time.time() if end is None else end,
                            "error": None if killed else error})

    # -- events: logged, then sent ----------------------------------------------------------

    def record(self, group: Group, event: dict[str, object]) -> None:
        """Log an event in its group's status log, then tell the engine; from any thread, which
        does both itself (an append is one write, so lines of several threads never mix) unless
        the engine reads too slowly: then the sender thread sends what the socket would not
        take, so that a slow engine never holds up the log or the next process."""
        line = encode(event)
        group.append(line)
        if self.engine_alive:
            with self.unsent_ready:
                if not self.unsent and not self.sending and self.engine_socket is not None:
                    try:
                        line = line[self.engine_socket.send(line, socket.MSG_DONTWAIT):]
                    except BlockingIOError:
                        pass
                    except OSError:
                        self.engine_alive = False
                        line = b""
                if line:
                    self.unsent += line
                    self.unsent_ready.notify()
        if event["ev"] == "exited":
            self.ended(group)

    def send_unsent(self) -> None:
        """The sender thread: send what the socket would not take at once, in order."""
        while True:
            with self.unsent_ready:
                self.sending = False
                while not self.unsent:
                    self.unsent_ready.wait()
                data, self.unsent = bytes(self.unsent), bytearray()
                self.sending = True
            try:
                write_all(self.engine, data)
            except OSError:
                self.engine_alive = False

    def ended(self, group: Group) -> None:
        """Count a logged end; the runner may exit once every command's is."""
        with self.lock:
            group.pending -= 1
            if not group.pending:
                group.close()
                if self.groups.get(group.key) is group:
                    del self.groups[group.key]
            if not self.groups:
                self.idle.set()


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def socket_of(fd: int) -> socket.socket | None:
    """A socket object sharing ``fd`` (never closing it), or None if ``fd`` is no socket."""
    dup = os.dup(fd)
    try:
        return socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        return None


def encode(record: dict[str, object]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def complain(message: str) -> None:
    print(f"local_runner: {message}", file=sys.stderr, flush=True)


MAKE_DIR_TRIES = 100
"""How many times :func:`make_dir` makes a parent again that went as it made the child."""


def spawn_thread(target: Callable[..., None], name: str, *args: object) -> None:
    threading.Thread(target=target, args=args, name=name, daemon=True).start()


def spawn(command: Command, cwd: str, made: bool, devnull: int) -> subprocess.Popen[bytes]:
    """Make the command's directories (``cwd`` too unless ``made``) and output files and
    start its process in ``cwd``."""
    make_dir(command.outputdir)
    if not made:
        make_dir(cwd)
    if command.inputs:
        sandbox().stage_inputs(command.inputs, cwd)
    if command.argv[0].startswith("./"):
        staged = os.path.join(cwd, command.argv[0][2:])
        os.chmod(staged, os.stat(staged).st_mode | 0o111)
    out = os.open(os.path.join(command.outputdir, "stdout"), OUTPUT_FLAGS, 0o644)
    try:
        err = os.open(os.path.join(command.outputdir, "stderr"), OUTPUT_FLAGS, 0o644)
        try:
            env = {**os.environ, **command.env} if command.env else None
            proc = subprocess.Popen(command.argv, cwd=cwd, env=env, stdin=devnull,
                                    stdout=out, stderr=err, start_new_session=True)
        finally:
            os.close(err)
    finally:
        os.close(out)
    command.proc = proc
    return proc


def empty(path: str) -> bool:
    """Remove everything in directory ``path``; False when something stays, or when ``path``
    itself is gone (a process removed it): either way the slot takes a new one."""
    try:
        with os.scandir(path) as entries:
            found = [entry.path for entry in entries]
    except FileNotFoundError:
        return False
    except OSError as exc:
        complain(f"cannot empty the scratch directory {path}: {exc}")
        return False
    if found:
        import shutil  # only for a process that left files, to keep start-up light

        for item in found:
            try:
                if os.path.isdir(item) and not os.path.islink(item):
                    shutil.rmtree(item)
                else:
                    os.unlink(item)
            except OSError as exc:
                complain(f"cannot empty the scratch directory {path}: {exc}")
                return False
    return True


def make_dir(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)`` in one system call when only ``path`` is missing,
    safe against a slot that ends meanwhile: it removes the scratch root once that is empty (see
    :meth:`Runner.slot`), which may be between making the root and making ``path`` in it."""
    for _ in range(MAKE_DIR_TRIES):
        try:
            os.mkdir(path)
            return
        except FileExistsError:
            return
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if parent == path:
                raise
            make_dir(parent)
    os.mkdir(path)  # raises what keeps failing


def take_kill_marker(outputdir: str) -> bool:
    """True (and the marker removed) when an engine asked, through the file, not to start this."""
    try:
        os.unlink(os.path.join(outputdir, KILL_FILE))
    except OSError:  # mostly FileNotFoundError; any other is met again making the outputdir
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


def reading_marker(logdir: str, pid: int) -> str:
    """The file that says runner ``pid`` may hold commands it has not read yet."""
    return os.path.join(logdir, f"runner-{pid}.reading")


def main(logdir: str) -> None:
    # Daemonise: the engine waits for this first process only; the runner it leaves behind
    # is nobody's child but init's, so it outlives the engine without becoming a zombie of it.
    pid = os.fork()
    if pid > 0:
        # The marker exists before the engine may send anything (it waits for this exit).
        try:
            os.close(os.open(reading_marker(logdir, pid), OUTPUT_FLAGS, 0o644))
            write_all(1, b"%d\n" % pid)
        except OSError as exc:
            complain(f"cannot make the reading marker in {logdir}: {exc}")
            os.kill(pid, signal.SIGKILL)  # never read a command: nothing would say it may
            os._exit(1)
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    threading.stack_size(THREAD_STACK)
    engine = sys.stdin.fileno()
    os.set_blocking(engine, True)
    os.dup2(engine, 1)  # stdout told the engine the pid; nothing else is written there
    Runner(engine, reading_marker(logdir, os.getpid())).serve()


if __name__ == "__main__":
    main(sys.argv[1])
