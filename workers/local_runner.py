"""The local runner: starts and watches the Local backend's processes for one engine.

Standard library only; shipped inside the wheel and started by the engine as
``python -I local_runner.py``. It reads one JSON command per line on stdin and answers with one
JSON event per line on stdout:

    {"op": "run", "key": "3.17", "argv": [...], "env": {...}, "workdir": ..., "outputdir": ...,
     "inputs": [...], "outputs": [...]}
        -> {"ev": "started", "key", "pid", "t"}, later {"ev": "exited", "key", "code", "killed", "t", "error"}
    {"op": "kill", "key": "3.17", "grace": 5.0}

Each process runs in its own session (so a kill reaches its whole process group), in
``workdir``, with stdout and stderr in ``outputdir`` and the environment additions of its job.
Its life is written to ``outputdir/__jobstatus__.json``: accepted (with the runner's pid)
before the process starts, then its pid and start, then its exit code and end. The runner outlives the engine: when stdin closes it keeps watching its processes,
records their exit codes, and exits once the last one has ended. A restarted engine reads
the status files.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import shutil
import signal
import socket
import sys
import time

STATUS_FILE = "__jobstatus__.json"


class Runner:
    def __init__(self) -> None:
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.kill_requested: dict[str, float] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.engine_alive = True
        self.host = socket.gethostname()

    def send(self, event: dict[str, object]) -> None:
        if not self.engine_alive:
            return
        try:
            sys.stdout.buffer.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
            sys.stdout.buffer.flush()
        except OSError:
            self.engine_alive = False
            with open(os.devnull, "wb") as devnull:
                os.dup2(devnull.fileno(), sys.stdout.fileno())

    def write_status(self, outputdir: str, record: dict[str, object]) -> None:
        path = os.path.join(outputdir, STATUS_FILE)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, path)

    async def run(self, cmd: dict[str, object]) -> None:
        key = str(cmd["key"])
        workdir, outputdir = str(cmd["workdir"]), str(cmd["outputdir"])
        argv = [str(a) for a in cmd["argv"]]  # type: ignore[attr-defined]
        record: dict[str, object] = {"key": key, "runner_pid": os.getpid(), "host": self.host}
        try:
            os.makedirs(workdir, exist_ok=True)
            os.makedirs(outputdir, exist_ok=True)
            # Recorded before the process exists, so a restarted engine never starts it twice.
            record["accepted"] = time.time()
            self.write_status(outputdir, record)
            inputs = list(cmd.get("inputs") or [])  # type: ignore[call-overload]
            if inputs:
                await asyncio.to_thread(stage_inputs, inputs, workdir)
            if argv[0].startswith("./"):
                staged = os.path.join(workdir, argv[0][2:])
                os.chmod(staged, os.stat(staged).st_mode | 0o111)
            if key in self.kill_requested:
                raise ProcessLookupError("killed before it started")
            env = dict(os.environ)
            env.update({str(k): str(v) for k, v in dict(cmd.get("env") or {}).items()})  # type: ignore[call-overload]
            out, err = open_outputs(outputdir)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, cwd=workdir, env=env, stdin=asyncio.subprocess.DEVNULL,
                    stdout=out, stderr=err, start_new_session=True,
                )
            finally:
                os.close(out)
                os.close(err)
        except (OSError, ValueError) as exc:
            killed = key in self.kill_requested
            error = None if killed else f"cannot start {argv[0]}: {exc}"
            record.update(end=time.time(), exitcode=None, killed=killed, error=error)
            self.finish(outputdir, record)
            self.send({"ev": "exited", "key": key, "code": None, "killed": killed,
                       "t": record["end"], "error": error})
            return
        self.procs[key] = proc
        started = time.time()
        record.update(pid=proc.pid, start=started)
        self.write_status(outputdir, record)
        self.send({"ev": "started", "key": key, "pid": proc.pid, "t": started})
        code = await proc.wait()
        del self.procs[key]
        outputs = list(cmd.get("outputs") or [])  # type: ignore[call-overload]
        if outputs:
            await asyncio.to_thread(collect_outputs, outputs, workdir, outputdir)
        killed = key in self.kill_requested
        record.update(end=time.time(), exitcode=code, killed=killed)
        self.finish(outputdir, record)
        self.send({"ev": "exited", "key": key, "code": code, "killed": killed, "t": record["end"]})

    def finish(self, outputdir: str, record: dict[str, object]) -> None:
        self.kill_requested.pop(str(record["key"]), None)
        try:
            os.makedirs(outputdir, exist_ok=True)
            self.write_status(outputdir, record)
        except OSError as exc:
            print(f"local_runner: cannot write status of {record['key']}: {exc}", file=sys.stderr)

    def kill(self, key: str, grace: float) -> None:
        self.kill_requested[key] = grace
        proc = self.procs.get(key)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        asyncio.get_running_loop().call_later(grace, self.force_kill, key, proc)

    def force_kill(self, key: str, proc: asyncio.subprocess.Process) -> None:
        if self.procs.get(key) is proc:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


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
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        try:
            line = await reader.readline()
        except (ConnectionError, OSError, ValueError):
            # An engine killed with events still unread resets the connection: that is an
            # end of input like any other, and the processes must still be watched.
            break
        if not line:
            break
        try:
            cmd = json.loads(line)
            op = cmd["op"]
        except (ValueError, KeyError, TypeError):
            print(f"local_runner: ignoring malformed command {line[:200]!r}", file=sys.stderr)
            continue
        if op == "run":
            runner.spawn(runner.run(cmd))
        elif op == "kill":
            runner.kill(str(cmd["key"]), float(cmd.get("grace", 5.0)))
    runner.engine_alive = False
    while runner.tasks:
        await asyncio.gather(*list(runner.tasks), return_exceptions=True)


if __name__ == "__main__":
    # Daemonise: the engine waits for this first process only; the runner it leaves behind
    # is nobody's child but init's, so it outlives the engine without becoming a zombie of it.
    if os.fork() > 0:
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    asyncio.run(main())
