"""The command line behaves as squeue, gh and kubectl users expect, run through the installed
``ganga-async`` entry point: options after the command, ``-o json|tsv|wide``, full width off a
terminal, ``--version``, ``--help`` everywhere, shell completion, honest exit codes, one-line
errors and a quiet end when the reader of stdout goes away."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ganga_async import cli
from ganga_async.commands import render

pytestmark = pytest.mark.slow

GANGA_ASYNC = str(Path(sys.executable).parent / "ganga-async")


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
        ) -> subprocess.CompletedProcess[str]:
    """``ganga-async ARGS`` as a user runs it, output captured."""
    return subprocess.run([GANGA_ASYNC, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def shell(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``script`` run by bash, with the entry point's directory first on PATH."""
    path = f"{Path(GANGA_ASYNC).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": path, **(env or {})})


def job_file(tmp_path: Path, application: str, extra: str = "", name: str = "job.toml") -> Path:
    path = tmp_path / name
    path.write_text(f'{extra}\n[application]\ntype = "Executable"\n{application}\n')
    return path


def done_job(tmp_path: Path, comment: str = "") -> int:
    """The id of a new job that completed (ids may start at 0 or 1: the tests take them as given)."""
    path = job_file(tmp_path, 'exe = "/bin/echo"\nargs = ["hi"]',
                    f'name = "hello"\ncomment = "{comment}"')
    submitted = run("--json", "submit", str(path), "--wait")
    assert submitted.returncode == 0, submitted.stderr
    return int(json.loads(submitted.stdout)["id"])


def test_output_options_are_accepted_before_and_after_the_command(tmp_path: Path) -> None:
    job = done_job(tmp_path)
    documents = [run(*args) for args in (["--json", "jobs"], ["jobs", "--json"], ["jobs", "-o", "json"],
                                         ["-o", "json", "jobs"], ["jobs", "--output=json"])]
    assert all(d.returncode == 0 for d in documents), [d.stderr for d in documents]
    first = json.loads(documents[0].stdout)
    assert [row["id"] for row in first] == [job]
    assert all(json.loads(d.stdout) == first for d in documents)
    assert json.loads(run("show", str(job), "--json").stdout)["status"] == "completed"


def test_tsv_prints_one_tab_separated_row_per_job_without_a_header(tmp_path: Path) -> None:
    job = done_job(tmp_path, comment="two words")
    result = run("jobs", "-o", "tsv")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{job}\tcompleted\thello\t0\tExecutable\tLocal\t" + \
        json.loads(run("jobs", "--json").stdout)[0]["backend_id"] + "\ttwo words\n"


def test_a_piped_table_is_full_width_and_never_cut(tmp_path: Path) -> None:
    comment = "a comment far longer than any terminal is wide " * 3
    done_job(tmp_path, comment=comment.strip())
    piped = run("jobs", env={"COLUMNS": "80"})
    assert piped.returncode == 0, piped.stderr
    header, row = piped.stdout.splitlines()
    assert header.split() == ["fqid", "status", "name", "subjobs", "application", "backend",
                              "backend_id", "comment"]
    assert row.endswith(comment.strip())
    assert "…" not in piped.stdout
    assert run("jobs", "-o", "wide").stdout == piped.stdout


def test_a_terminal_gets_the_table_fitted_to_its_width(tmp_path: Path) -> None:
    done_job(tmp_path, comment="x" * 200)
    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": "100"}
    with subprocess.Popen([GANGA_ASYNC, "jobs"], stdout=terminal, stderr=subprocess.PIPE,
                          env=env) as process:
        os.close(terminal)
        out = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        assert process.wait(timeout=60) == 0
    os.close(controller)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.decode())
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "…" in text


def test_version_prints_the_installed_distributions_version() -> None:
    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"ganga-async {importlib.metadata.version('ganga-async')}\n"


def every_command() -> list[list[str]]:
    commands = cli.parser().commands
    assert commands is not None
    found: list[list[str]] = []
    for name, sub in commands.choices.items():
        if name.startswith("_"):
            continue
        found.append([name])
        if sub.commands is not None:
            found += [[name, action] for action in sub.commands.choices]
    return found


@pytest.mark.parametrize("words", every_command(), ids=" ".join)
def test_every_command_has_help(words: list[str]) -> None:
    result = run(*words, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: ganga-async {' '.join(words)}")
    assert "--json" in result.stdout


def complete_with_bash(words: list[str]) -> list[str]:
    """What bash offers for the last of ``words`` with the script of ``completion bash``."""
    quoted = " ".join(f"'{w}'" for w in ["ganga-async", *words])
    result = shell('eval "$(ganga-async completion bash)"; '
                   f"COMP_WORDS=({quoted}); COMP_CWORD={len(words)}; _ganga_async_complete; "
                   'printf "%s\\n" "${COMPREPLY[@]}"')
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_bash_completes_commands_options_choices_and_job_ids(tmp_path: Path) -> None:
    assert complete_with_bash(["ki"]) == ["kill"]
    assert complete_with_bash(["service", "st"]) == ["start", "status", "stop"]
    assert {"--json", "--output", "--status", "--help"} <= set(complete_with_bash(["jobs", "--"]))
    assert complete_with_bash(["jobs", "-o", ""]) == ["json", "tsv", "wide"]
    (tmp_path / "hello.toml").touch()
    assert complete_with_bash(["submit", f"{tmp_path}/he"]) == [f"{tmp_path}/hello.toml"]
    assert complete_with_bash(["show", ""]) == []
    ids = [str(done_job(tmp_path)), str(done_job(tmp_path))]
    assert complete_with_bash(["show", ""]) == sorted(ids)
    assert complete_with_bash(["--json", "kill", ids[1]]) == [ids[1]]


def test_the_zsh_script_asks_the_same_completer() -> None:
    script = run("completion", "zsh")
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith("#compdef ganga-async")
    assert "ganga-async __complete" in script.stdout
    assert run("__complete", "wa").stdout == "wait\n"


def test_a_submission_the_backend_refuses_exits_1_with_its_message(tmp_path: Path) -> None:
    bin_dir = tmp_path / "slurm-bin"
    bin_dir.mkdir()
    scripts = {
        "scontrol": 'printf "MaxArraySize            = 1001\\nMinJobAge = 300 sec\\n"',
        "sbatch": 'echo "sbatch: error: Batch job submission failed: Invalid account" >&2; exit 1',
        "squeue": "exit 0", "sacct": "exit 0",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    path = job_file(tmp_path, 'exe = "/bin/echo"', '[backend]\ntype = "Slurm"\n')
    path.write_text(path.read_text().replace('[backend]\ntype = "Slurm"\n', "") +
                    '\n[backend]\ntype = "Slurm"\n')
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = run("submit", str(path), env=env)
    assert result.returncode == 1, result.stderr
    job = result.stdout.strip()
    assert job.isdigit()
    assert (f"error: job {job} failed at submission: submission refused: sbatch: error: Batch job "
            "submission failed: Invalid account\n") in result.stderr
    as_json = run("--json", "submit", str(path), env=env)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["status"] == "failed"
    assert "Invalid account" in json.loads(as_json.stdout)["reason"]
    waited = run("--json", "wait", job)
    assert json.loads(waited.stdout)["reached_backend"] is False


def test_a_job_that_ran_and_failed_before_submit_returned_was_not_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ran = run("--json", "submit", "--wait", str(job_file(tmp_path, 'exe = "/bin/false"')))
    assert ran.returncode == 1  # it failed
    info = json.loads(ran.stdout)
    assert info["status"] == "failed" and info["reached_backend"] is True
    # How `submit` without --wait reports such a job once it has ended by the time it looks
    # (a split job of fast subjobs can): handed over, with where to see it; not "refused".
    args = cli.parser().parse_args(["submit", "job.toml"])
    assert render.print_handed_over({**info, "subjobs": 0}, args, by_daemon=False) == 0
    out, err = capsys.readouterr()
    assert out == f"{info['id']}\n"
    assert err == f"job {info['id']} already ran and is failed; see it with: ganga-async show {info['id']}\n"
    refused = {**info, "reached_backend": False, "reason": "sbatch said no"}
    assert render.print_handed_over(refused, args, by_daemon=False) == 1
    assert "failed at submission: sbatch said no" in capsys.readouterr().err


def test_an_exe_not_found_is_one_brief_line_and_leaves_no_job(tmp_path: Path) -> None:
    path = job_file(tmp_path, 'exe = "no-such-program"')
    result = run("submit", str(path), env={"PATH": os.pathsep.join(
        [os.environ["PATH"], *(f"/nowhere/{i}" for i in range(40))])})
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: application.exe: 'no-such-program' is not an absolute path, not "
                           "among the job's inputfiles and not found in $PATH (")
    assert "/nowhere/39" not in line and " more)" in line
    assert len(line) < 400
    assert json.loads(run("jobs", "--json").stdout) == []


def test_an_unknown_environment_variable_is_a_warning(tmp_path: Path) -> None:
    result = run("jobs", env={"GANGA_ASYNC_LOCAL_MAXCONCURRENT": "4"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("no jobs in")
    (warning,) = result.stderr.splitlines()
    assert warning.startswith("warning: environment variable GANGA_ASYNC_LOCAL_MAXCONCURRENT "
                              "is not a ganga-async option; ignored")


def test_output_piped_into_head_ends_without_a_traceback(tmp_path: Path) -> None:
    path = job_file(tmp_path, 'exe = "seq"\nargs = ["1", "300000"]')
    submitted = run("--json", "submit", str(path), "--wait")
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)["id"]
    result = shell(f"ganga-async peek {job} | head -n 2")
    assert (result.stdout, result.stderr) == ("1\n2\n", "")
    # `true` reads nothing and is gone before the command writes: the write meets a closed pipe.
    for command in (f"peek {job}", "jobs", "--json jobs", "completion bash"):
        closed = shell(f"ganga-async {command} | true; echo ${{PIPESTATUS[0]}}")
        assert (closed.stdout, closed.stderr) == ("141\n", ""), command


def test_an_os_error_is_one_line_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    result = run("--gangadir", str(tmp_path / "a-file" / "gangadir"), "jobs")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {tmp_path / 'a-file'}/gangadir")
    assert line.endswith(": Not a directory")
