"""The local runner: queues, starts and watches the Local backend's processes for one engine.

Standard library only; shipped inside the wheel and started by the engine as
``python -I -S local_runner.py`` with a Unix socket as stdin and stdout. It reads one JSON command
per line and answers with one JSON event per line:

    {"op": "run", "key": "3.17", "group": "3", "limit": 8, "argv": [...], "env": {...},
     "workdir": ..., "outputdir": ..., "inputs": [...], "outputs": [...]}
        -> {"ev": "started", "key", "pid", "t"}, later {"ev": "exited", "key", "code", "killed", "t", "error"}
    {"op": "kill", "key": "3.17", "grace": 5.0}

Commands of one ``group`` (a master job) run at most ``limit`` at a time; the rest wait here, in
the runner, so they still start after the engine has gone. Each process runs in its own session
(so a kill reaches its whole process group), in ``workdir``, with stdout and stderr in
``outputdir`` and the environment additions of its job. Its life is written to
``outputdir/__jobstatus__.json``: accepted (with the runner's pid) as soon as the command
arrives, then its pid and start, then its exit code and end. The record has a fixed size and is
overwritten in place with one ``pwrite``, so it is never missing or empty once accepted, and
costs no new file per update. The runner outlives the engine:
when its input ends it keeps running what it has, records every exit code, and exits once the
last process has ended. A restarted engine reads the status files.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from typing import Any

STATUS_FILE = "__jobstatus__.json"
KILL_FILE = "__kill__"
"""Created in the outputdir by an engine that cannot reach the runner: do not start it."""
RECORD_SIZE = 512
"""Bytes of every status record (JSON padded with spaces), so an update overwrites it whole."""


class Group:
    """The commands of one master job: at most ``limit`` running, the rest queued."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.running = 0
        self.queue: deque[dict[str, Any]] = deque()


class Runner:
    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.groups: dict[str, Group] = {}
        self.kill_requested: dict[str, float] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.engine_alive = True
        self.host = socket.gethostname()
        self.idle = asyncio.Event()
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.outbox: list[bytes] = []

    # -- talking to the engine -----------------------------------------------------------

    def send(self, event: dict[str, object]) -> None:
        """Queue an event; everything queued in one pass of the loop goes out in one write."""
        if not self.engine_alive:
            return
        if not self.outbox:
            asyncio.get_running_loop().call_soon(self.flush)
        self.outbox.append(json.dumps(event, separators=(",", ":")).encode() + b"\n")

    def flush(self) -> None:
        data, self.outbox = b"".join(self.outbox), []
        if not self.engine_alive:
            return
        try:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except OSError:
            self.engine_alive = False
            with open(os.devnull, "wb") as devnull:
                os.dup2(devnull.fileno(), sys.stdout.fileno())

    def command(self, line: bytes) -> None:
        try:
            cmd = json.loads(line)
            op = cmd["op"]
            if op == "run":
                self.accept(cmd)
            elif op == "kill":
                self.kill(str(cmd["key"]), float(cmd.get("grace", 5.0)))
            else:
                raise KeyError(op)
        except (ValueError, KeyError, TypeError) as exc:
            print(f"local_runner: ignoring malformed command ({exc!r}): {line[:200]!r}", file=sys.stderr)

    # -- status files ---------------------------------------------------------------------

    def write_status(self, outputdir: str, record: dict[str, object]) -> None:
        fd = os.open(os.path.join(outputdir, STATUS_FILE), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.pwrite(fd, pack(record), 0)
        finally:
            os.close(fd)

    def finish(self, cmd: dict[str, Any], record: dict[str, object], code: int | None,
               error: str | None = None) -> None:
        key = str(cmd["key"])
        killed = self.kill_requested.pop(key, None) is not None
        if killed:
            error = None
        record.update(end=time.time(), exitcode=code, killed=killed, error=error)
        try:
            self.write_status(str(cmd["outputdir"]), record)
        except OSError as exc:
            print(f"local_runner: cannot write the status of {key}: {exc}", file=sys.stderr)
        self.send({"ev": "exited", "key": key, "code": code, "killed": killed, "t": record["end"],
                   "error": error})

    # -- queueing -------------------------------------------------------------------------

    def accept(self, cmd: dict[str, Any]) -> None:
        record = {"key": str(cmd["key"]), "runner_pid": os.getpid(), "host": self.host,
                  "accepted": time.time()}
        cmd["_record"] = record
        try:
            os.makedirs(str(cmd["outputdir"]), exist_ok=True)
            # Written before anything runs, so a restarted engine never starts it twice.
            self.write_status(str(cmd["outputdir"]), record)
        except OSError as exc:
            self.finish(cmd, record, None, f"cannot write to {cmd['outputdir']}: {exc}")
            return
        group = self.groups.get(str(cmd["group"]))
        if group is None:
            group = self.groups[str(cmd["group"])] = Group(int(cmd["limit"]))
        group.limit = max(1, int(cmd["limit"]))
        group.queue.append(cmd)
        self.idle.clear()
        self.pump(str(cmd["group"]))

    def pump(self, name: str) -> None:
        group = self.groups[name]
        while group.queue and group.running < group.limit:
            cmd = group.queue.popleft()
            group.running += 1
            task = asyncio.ensure_future(self.run(cmd))
            self.tasks.add(task)
            task.add_done_callback(lambda t, n=name: self.done(t, n))
        if not group.queue and not group.running:
            del self.groups[name]
            if not self.groups:
                self.idle.set()

    def done(self, task: asyncio.Task[None], name: str) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            print(f"local_runner: internal error: {task.exception()!r}", file=sys.stderr)
        self.groups[name].running -= 1
        self.pump(name)

    # -- running --------------------------------------------------------------------------

    async def run(self, cmd: dict[str, Any]) -> None:
        key = str(cmd["key"])
        record: dict[str, object] = cmd["_record"]
        workdir, outputdir = str(cmd["workdir"]), str(cmd["outputdir"])
        argv = [str(a) for a in cmd["argv"]]
        if take_kill_marker(outputdir):
            self.kill_requested.setdefault(key, 0.0)
        if key in self.kill_requested:
            self.finish(cmd, record, None)
            return
        try:
            os.makedirs(workdir, exist_ok=True)
            if cmd.get("inputs"):
                await asyncio.to_thread(stage_inputs, list(cmd["inputs"]), workdir)
            if argv[0].startswith("./"):
                staged = os.path.join(workdir, argv[0][2:])
                os.chmod(staged, os.stat(staged).st_mode | 0o111)
            extra = {str(k): str(v) for k, v in dict(cmd.get("env") or {}).items()}
            env = {**os.environ, **extra} if extra else None
            out, err = open_outputs(outputdir)
            try:
                # Starting blocks only for the fork and exec, as asyncio's own subprocess transport
                # does; the wait is on a pidfd, not a thread per process as asyncio's is on 3.11.
                proc = subprocess.Popen(argv, cwd=workdir, env=env, stdin=self.devnull,  # noqa: ASYNC220
                                        stdout=out, stderr=err, start_new_session=True)
            finally:
                os.close(out)
                os.close(err)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            self.finish(cmd, record, None, f"cannot start {argv[0]}: {exc}")
            return
        self.procs[key] = proc
        record.update(pid=proc.pid, start=time.time())
        try:
            self.write_status(outputdir, record)
        except OSError as exc:
            print(f"local_runner: cannot write the status of {key}: {exc}", file=sys.stderr)
        self.send({"ev": "started", "key": key, "pid": proc.pid, "t": record["start"]})
        if key in self.kill_requested:
            self.signal_group(key, proc)
        code = await wait_for(proc)
        del self.procs[key]
        if cmd.get("outputs"):
            try:
                await asyncio.to_thread(collect_outputs, list(cmd["outputs"]), workdir, outputdir)
            except OSError as exc:
                print(f"local_runner: copying outputs of {key} failed: {exc}", file=sys.stderr)
        self.finish(cmd, record, code)

    def kill(self, key: str, grace: float) -> None:
        self.kill_requested[key] = grace
        proc = self.procs.get(key)
        if proc is not None:
            self.signal_group(key, proc)
            return
        for name, group in list(self.groups.items()):
            for cmd in group.queue:
                if cmd["key"] == key:
                    group.queue.remove(cmd)
                    self.finish(cmd, cmd["_record"], None)
                    self.pump(name)
                    return

    def signal_group(self, key: str, proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        grace = self.kill_requested.get(key, 5.0)
        asyncio.get_running_loop().call_later(grace, self.force_kill, key, proc)

    def force_kill(self, key: str, proc: subprocess.Popen[bytes]) -> None:
        if self.procs.get(key) is proc:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Commands(asyncio.Protocol):
    """Splits the engine's byte stream into lines. Every complete line that arrived is handled,
    even when the connection then breaks (an engine killed with unread events resets it)."""

    def __init__(self, runner: Runner, closed: asyncio.Future[None]) -> None:
        self.runner = runner
        self.closed = closed
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self.runner.command(line)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def wait_for(proc: subprocess.Popen[bytes]) -> int:
    """The exit code, learnt from a pidfd on the loop; a thread per process waits where the
    kernel has no pidfds (before Linux 5.3)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return await asyncio.to_thread(proc.wait)
    loop = asyncio.get_running_loop()
    ended = loop.create_future()
    loop.add_reader(pidfd, ended.set_result, None)
    try:
        await ended
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return proc.wait()


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


def open_outputs(outputdir: str) -> tuple[int, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    out = os.open(os.path.join(outputdir, "stdout"), flags, 0o644)
    try:
        return out, os.open(os.path.join(outputdir, "stderr"), flags, 0o644)
    except OSError:
        os.close(out)
        raise


def stage_inputs(inputs: list[str], workdir: str) -> None:
    for src in inputs:
        dst = os.path.join(workdir, os.path.basename(src))
        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def collect_outputs(patterns: list[str], workdir: str, outputdir: str) -> None:
    for pattern in patterns:
        for path in glob.glob(os.path.join(workdir, pattern), recursive=True):
            dst = os.path.join(outputdir, os.path.relpath(path, workdir))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.isdir(path):
                shutil.copytree(path, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(path, dst)


async def main() -> None:
    runner = Runner()
    runner.idle.set()
    loop = asyncio.get_running_loop()
    closed: asyncio.Future[None] = loop.create_future()
    await loop.connect_read_pipe(lambda: Commands(runner, closed), sys.stdin)
    await closed
    runner.engine_alive = False
    await runner.idle.wait()


if __name__ == "__main__":
    # Daemonise: the engine waits for this first process only; the runner it leaves behind
    # is nobody's child but init's, so it outlives the engine without becoming a zombie of it.
    if os.fork() > 0:
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    asyncio.run(main())
