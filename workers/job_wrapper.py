"""The job wrapper: runs one (sub)job on a batch system's worker node.

Standard library only, shipped inside the wheel; a batch backend copies it next to the job and
its batch script runs it as::

    python3 -I -S job_wrapper.py MANIFEST [TASK]

``MANIFEST`` is a JSON Lines file the engine wrote, one object per task::

    {"task": 17, "key": "3.17", "argv": [...], "env": {...}, "workdir": ..., "outputdir": ...,
     "inputs": [...], "outputs": [...], "heartbeat": 30.0}

``TASK`` defaults to ``$SLURM_ARRAY_TASK_ID`` (then 0). The wrapper creates the working and
output directories, copies the input files in, runs ``argv`` (never through a shell) in its
own session with ``env`` added to the inherited environment, stdin from /dev/null and stdout
and stderr written straight into the output directory (so they can be read while it runs),
then copies the ``outputs`` patterns back into the output directory.

Its record is ``outputdir/__jobstatus__.json``, which the batch driver reads
(``ganga_async/backends/_batch/status.py``): ``key``, ``host``, ``batch_id`` and ``start`` first, then
``pid``, and at the end ``end``, ``exitcode`` (negative: killed by that signal), ``killed`` and
``error`` (why it could not run). While the application runs, ``outputdir/__heartbeat__`` holds
the time of the last heartbeat.

Three optional manifest fields serve backends whose workers are long-lived processes (Dask):
``"once": true`` creates the status file exclusively, so a task a scheduler runs again (after
its worker died) exits at once when this (sub)job already started; ``"watch_parent": true``
ends the application and records an error when the process that started the wrapper dies
(checked every second); and a ``__kill__`` file in the outputdir, looked for before the
application starts and at every heartbeat, counts as a SIGTERM. The record then also has
``wrapper_pid``, the process to signal.

SIGTERM (``scancel``, a time limit) and SIGINT are forwarded to the application's process
group and recorded as ``killed``. The wrapper exits with the application's exit code (128 plus
the signal number when a signal ended it), so the batch system sees the same outcome.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

STATUS_FILE = "__jobstatus__.json"
HEARTBEAT_FILE = "__heartbeat__"
KILL_FILE = "__kill__"


def find_task(manifest: str, task: int) -> dict:
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                entry = json.loads(line)
                if entry.get("task") == task:
                    return entry
    raise LookupError(f"task {task} is not in {manifest}")


def write_json(path: str, record: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f)
    os.replace(tmp, path)


def batch_id() -> str | None:
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array:
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    return os.environ.get("SLURM_JOB_ID")


def stage_inputs(inputs: list, workdir: str) -> None:
    for src in inputs:
        dst = os.path.join(workdir, os.path.basename(src))
        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True, copy_function=copy_regular)
        else:
            copy_regular(src, dst)


def copy_regular(src: str, dst: str) -> str:
    """Copy a regular file (a link to one is followed); a fifo, socket or device is refused,
    never read (a fifo would block, a device could fill the disk)."""
    if not stat.S_ISREG(os.stat(src).st_mode):
        raise OSError(f"{src} is not a regular file; special files are not copied")
    return shutil.copy2(src, dst)


def collect_outputs(patterns: list, workdir: str, outputdir: str) -> None:
    for pattern in patterns:
        for path in glob.glob(os.path.join(workdir, pattern), recursive=True):
            dst = os.path.join(outputdir, os.path.relpath(path, workdir))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.isdir(path):
                shutil.copytree(path, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(path, dst)


class Wrapper:
    def __init__(self, entry: dict) -> None:
        self.entry = entry
        self.outputdir = str(entry["outputdir"])
        self.workdir = str(entry["workdir"])
        self.status_path = os.path.join(self.outputdir, STATUS_FILE)
        self.heartbeat_path = os.path.join(self.outputdir, HEARTBEAT_FILE)
        self.record: dict = {"key": str(entry["key"]), "host": socket.gethostname(),
                             "batch_id": batch_id(), "start": time.time()}
        self.proc: subprocess.Popen | None = None
        self.killed = False
        self.kill_path = os.path.join(self.outputdir, KILL_FILE)
        self.parent = os.getppid() if entry.get("watch_parent") else None
        self.orphaned: str | None = None
        if entry.get("once") or self.parent is not None:
            self.record["wrapper_pid"] = os.getpid()

    def on_signal(self, signum: int, frame: object) -> None:
        self.killed = True
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signum)
            except ProcessLookupError:
                pass

    def finish(self, code: int | None, error: str | None = None) -> int:
        self.record.update(end=time.time(), exitcode=code, killed=self.killed, error=error)
        write_json(self.status_path, self.record)
        try:
            os.unlink(self.heartbeat_path)
        except FileNotFoundError:
            pass
        if code is None:
            return 1
        return 128 - code if code < 0 else code

    def claim(self) -> bool:
        """Create the status file; with ``once``, False when it exists (this task already ran)."""
        os.makedirs(self.outputdir, exist_ok=True)
        if not self.entry.get("once"):
            write_json(self.status_path, self.record)
            return True
        try:
            fd = os.open(self.status_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.record, f)
        return True

    def run(self) -> int:
        if not self.claim():
            print(f"job_wrapper: {self.entry['key']} already started; not running it again",
                  file=sys.stderr)
            return 0
        if os.path.exists(self.kill_path):
            self.killed = True
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.on_signal)
        argv = [str(a) for a in self.entry["argv"]]
        try:
            os.makedirs(self.workdir, exist_ok=True)
            stage_inputs(list(self.entry.get("inputs") or []), self.workdir)
            if argv[0].startswith("./"):
                staged = os.path.join(self.workdir, argv[0][2:])
                os.chmod(staged, os.stat(staged).st_mode | 0o111)
            extra = {str(k): str(v) for k, v in dict(self.entry.get("env") or {}).items()}
            env = {**os.environ, **extra}
            if self.killed:
                return self.finish(None)
            with open(os.path.join(self.outputdir, "stdout"), "wb") as out, \
                    open(os.path.join(self.outputdir, "stderr"), "wb") as err:
                self.proc = subprocess.Popen(argv, cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=err, start_new_session=True)
        except (OSError, ValueError) as exc:
            return self.finish(None, f"cannot start {argv[0]}: {exc}")
        self.record["pid"] = self.proc.pid
        write_json(self.status_path, self.record)
        if self.killed:
            self.on_signal(signal.SIGTERM, None)
        code = self.wait(float(self.entry.get("heartbeat") or 30.0))
        error = None
        if self.entry.get("outputs"):
            try:
                collect_outputs(list(self.entry["outputs"]), self.workdir, self.outputdir)
            except OSError as exc:
                error = f"copying the output files back failed: {exc}"
        return self.finish(code, None if self.killed else (self.orphaned or error))

    def wait(self, interval: float) -> int:
        assert self.proc is not None
        step = interval if self.parent is None else min(interval, 1.0)
        beat = 0.0
        while True:
            now = time.time()
            if now - beat >= interval:
                beat = now
                with open(self.heartbeat_path, "w", encoding="utf-8") as f:
                    f.write(f"{now:.3f}\n")
                if not self.killed and os.path.exists(self.kill_path):
                    self.on_signal(signal.SIGTERM, None)
            try:
                return self.proc.wait(timeout=step)
            except subprocess.TimeoutExpired:
                pass
            if self.parent is not None and self.orphaned is None and os.getppid() != self.parent:
                self.orphaned = ("the process that ran its job wrapper (a Dask worker) ended while "
                                 "it ran; the application was stopped")
                try:
                    os.killpg(self.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass


def main(argv: list) -> int:
    if len(argv) not in (2, 3):
        print("usage: job_wrapper.py MANIFEST [TASK]", file=sys.stderr)
        return 2
    task = argv[2] if len(argv) == 3 else os.environ.get("SLURM_ARRAY_TASK_ID", "0")
    try:
        entry = find_task(argv[1], int(task))
    except (OSError, ValueError, LookupError) as exc:
        print(f"job_wrapper: {exc}", file=sys.stderr)
        return 2
    return Wrapper(entry).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
