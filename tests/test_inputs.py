"""The guards on input files: special files refused, a size limit that names the file and the
setting, symbolic link loops and links to the gangadir refused; all before anything is copied."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from ganga_async import Config, Engine, Executable, Job, JobSpecError, Local, Status

pytestmark = pytest.mark.anyio


async def refused(gangadir: Path, config: Config, inputs: list[str]) -> str:
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/true"), backend=Local(), inputfiles=inputs)
        with pytest.raises(JobSpecError) as info:
            await engine.submit(job)
        assert job.status is Status.NEW
        return str(info.value)


async def test_a_fifo_a_socket_or_a_device_in_the_inputs_is_refused_by_name(
    gangadir: Path, config: Config, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.txt").write_text("x")
    os.mkfifo(data / "pipe")
    message = await refused(gangadir, config, [str(data)])
    assert "inputfiles[0]" in message and f"{data / 'pipe'} is a named pipe (fifo)" in message
    os.unlink(data / "pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(data / "sock"))
        assert "is a socket" in await refused(gangadir, config, [str(data)])
    assert "/dev/null is a character device" in await refused(gangadir, config, ["/dev/null"])


async def test_inputs_over_the_size_limit_name_the_file_and_the_setting(
    gangadir: Path, config: Config, tmp_path: Path
) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"x" * 10)
    big.write_bytes(b"x" * 30)
    config["Pipeline"]["max_input_size"] = 32
    message = await refused(gangadir, config, [str(small), str(big)])
    assert "inputfiles[1]" in message and str(big) in message
    assert "[Pipeline] max_input_size = 32" in message and "raise the limit" in message
    config["Pipeline"]["max_input_size"] = 0  # no limit
    async with Engine(gangadir, config=config) as engine:
        job = Job(application=Executable(exe="/bin/true"), backend=Local(),
                  inputfiles=[str(small), str(big)])
        await engine.submit(job)
        await engine.wait(job, timeout=30)
        assert job.status is Status.COMPLETED


async def test_symbolic_link_loops_dangling_links_and_links_to_the_gangadir_are_refused(
    gangadir: Path, config: Config, tmp_path: Path
) -> None:
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "again").symlink_to(loop)
    assert "a second time (a symbolic link loop" in await refused(gangadir, config, [str(loop)])
    dangling = tmp_path / "dangling"
    dangling.mkdir()
    (dangling / "gone").symlink_to(tmp_path / "nothing")
    assert "is a symbolic link to nothing" in await refused(gangadir, config, [str(dangling)])
    sneaky = tmp_path / "sneaky"
    sneaky.mkdir()
    (sneaky / "g").symlink_to(tmp_path)  # the gangadir's parent
    message = await refused(gangadir, config, [str(sneaky)])
    assert f"(a symbolic link to {tmp_path}) holds the gangadir" in message


def test_the_job_wrapper_never_reads_a_special_file(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
    try:
        import job_wrapper
    finally:
        sys.path.pop(0)
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OSError, match="not a regular file"):
        job_wrapper.copy_regular(str(tmp_path / "pipe"), str(tmp_path / "copy"))
