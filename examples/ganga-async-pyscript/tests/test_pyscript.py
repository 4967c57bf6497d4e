"""The PythonScript application and the LineSplitter: unit tests, then one split job run by
a real engine on local processes."""

import sys
from pathlib import Path

import pytest
from ganga_async import Job, JobSpecError
from ganga_async.testing import isolated_engine

from ganga_pyscript import LineSplitter, PythonScript

DEMO = Path(__file__).parent.parent / "demo"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the engine runs on anyio's asyncio backend


def analysis(*args: str, venv: str = "") -> PythonScript:
    return PythonScript(script=str(DEMO / "analysis.py"), args=list(args), python=sys.executable,
                        venv=venv)


def test_each_subjob_gets_the_master_args_then_its_lines() -> None:
    splitter = LineSplitter(listfile=str(DEMO / "runs.txt"), lines_per_subjob=2)
    job = Job(application=analysis("--cut", "x"), splitter=splitter)
    splitter.validate(job)
    assert list(splitter.split(job)) == [
        {"application.args": ["--cut", "x", "run-001", "run-002"]},
        {"application.args": ["--cut", "x", "run-003", "run-004"]},
        {"application.args": ["--cut", "x", "run-005"]},
    ]


def test_the_command_runs_the_script_with_the_chosen_python() -> None:
    command = analysis("run-001").command([])
    assert command.argv == [sys.executable, str(DEMO / "analysis.py"), "run-001"]


def test_a_missing_script_is_refused_naming_the_field() -> None:
    with pytest.raises(JobSpecError, match=r"^application\.script: .* does not exist"):
        PythonScript(script="no-such-script.py").preparable_files()


def test_a_venv_without_python_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(JobSpecError, match=r"^application\.venv: "):
        analysis(venv=str(tmp_path)).interpreter()


def test_the_split_streams_a_list_of_100000_runs(tmp_path: Path) -> None:
    listfile = tmp_path / "runs.txt"
    listfile.write_text("".join(f"run-{i}\n" for i in range(100_000)))
    splitter = LineSplitter(listfile=str(listfile), lines_per_subjob=2)
    subjobs = splitter.split(Job(application=analysis(), splitter=splitter))
    assert next(subjobs) == {"application.args": ["run-0", "run-1"]}
    assert sum(1 for _ in subjobs) == 49_999


@pytest.mark.anyio
async def test_a_split_job_runs_the_prepared_copy_of_the_script(tmp_path: Path) -> None:
    script = tmp_path / "analysis.py"
    script.write_text((DEMO / "analysis.py").read_text())
    job = Job(application=PythonScript(script=str(script), python=sys.executable, args=["--cut", "x"]),
              splitter=LineSplitter(listfile=str(DEMO / "runs.txt"), lines_per_subjob=2))
    async with isolated_engine(tmp_path / "gangadir") as engine:
        await engine.submit(job)
        script.write_text("raise SystemExit('the original was run, not the copy')")
        await engine.wait(job, timeout=60)
        assert [str(sj.status) for sj in job.subjobs] == ["completed"] * 3
        assert await engine.peek(job.subjobs[2]) == "run-005: selected x\n"
        assert job.application.is_prepared is not None
        assert (await engine.shareref.counts())[job.application.is_prepared.name] == 1
