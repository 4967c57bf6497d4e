"""The Slurm settings and the Slurm command builders and parsers, on output recorded from the
real test cluster (tests/backends/data/slurm, made by record.sh there)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ganga_async import Job, JobSpecError, Slurm, Status
from ganga_async.backends._batch import CommandResult, SubmitRequest
from ganga_async.backends.slurm import SlurmSystem

DATA = Path(__file__).parent / "data" / "slurm"
system = SlurmSystem()


def recorded(name: str, returncode: int = 0) -> CommandResult:
    text = (DATA / name).read_text()
    if name.endswith(".err"):
        return CommandResult(["slurm"], returncode or 1, "", text)
    return CommandResult(["slurm"], returncode, text, "")


def local(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))


def test_sbatch_parsable_gives_the_job_id() -> None:
    assert system.parse_submit(recorded("sbatch_parsable.out")) == "229"
    assert system.parse_submit(CommandResult(["sbatch"], 0, "4242;cluster2\n", "")) == "4242"


def test_squeue_gives_each_array_task_its_state_and_times() -> None:
    seen = system.parse_query(recorded("squeue_mixed.out"))
    assert seen["230_0"].status is Status.COMPLETED
    assert seen["230_2"].status is Status.FAILED and seen["230_2"].reason is None
    assert seen["230_4"].status is Status.KILLED
    assert seen["230_4"].reason == "cancelled in Slurm (scancel)"
    assert seen["230_5"].status is Status.RUNNING
    assert seen["230_5"].started == local("2026-11-21T11:30:08")
    assert seen["232"].status is Status.RUNNING and seen["232"].ended is None
    assert {k for k in seen if k.startswith("231_")} == {"231_0", "231_1", "231_2", "231_3"}


def test_squeue_shows_pending_tasks_one_by_one_and_a_time_limit_as_failed_with_the_reason() -> None:
    seen = system.parse_query(recorded("squeue_pending_timeout.out"))
    assert [seen[f"238_{i}"].status for i in range(3)] == [Status.SUBMITTED] * 3
    assert seen["238_0"].started is None
    assert seen["239"].status is Status.FAILED
    assert seen["239"].reason == "reached its time limit (Slurm state TIMEOUT)"


def test_sacct_gives_exit_codes_and_signals_and_expands_unsplit_task_ranges() -> None:
    seen = system.parse_history(recorded("sacct_mixed.out"))
    assert (seen["230_2"].status, seen["230_2"].exitcode) == (Status.FAILED, 3)
    assert (seen["230_3"].status, seen["230_3"].exitcode) == (Status.FAILED, -9)
    assert seen["230_4"].status is Status.KILLED
    assert seen["230_0"].ended == local("2026-11-21T11:30:08")
    assert seen["232"].ended is None
    assert [seen[f"231_{i}"].status for i in range(4)] == [Status.KILLED] * 4
    pending = system.parse_history(recorded("sacct_pending_timeout.out"))
    assert [pending[f"238_{i}"].status for i in range(3)] == [Status.SUBMITTED] * 3
    assert pending["239"].status is Status.FAILED


def test_the_array_size_limit_is_read_from_scontrol() -> None:
    assert system.parse_max_array(recorded("scontrol_show_config.out")) == 1001


def test_an_unreachable_controller_is_transient_and_refusals_are_not() -> None:
    assert system.is_transient(recorded("squeue_controller_down.err"))
    assert system.is_transient(recorded("sbatch_controller_down.err"))
    assert not system.is_transient(recorded("sbatch_bad_partition.err"))
    assert not system.is_transient(recorded("sbatch_bad_time.err"))
    assert recorded("sbatch_bad_partition.err").message.endswith("Invalid partition name specified")


def test_squeue_for_ids_slurm_forgot_means_no_jobs_not_an_error() -> None:
    result = recorded("squeue_unknown_id.err")
    assert system.is_unknown_job(result)
    assert not system.is_transient(result)


def test_sbatch_argv_carries_the_settings_the_array_and_the_reserved_options() -> None:
    settings = Slurm(partition="debug", account="hep", time="2:00:00", memory="2G", cpus=4,
                     extra_options=["--qos=short", "--hold"], max_running=10)
    request = SubmitRequest(name="ga.3-ab12", script=Path("/g/3/slurm/3-ab12.sh"),
                            log=Path("/g/3/slurm/3-ab12_%a.log"), directory=Path("/g/3/slurm"),
                            array="0-999", backend=settings)
    assert system.submit_argv(request) == [
        "sbatch", "--parsable", "--job-name=ga.3-ab12", "--output=/g/3/slurm/3-ab12_%a.log",
        "--error=/g/3/slurm/3-ab12_%a.log", "--chdir=/g/3/slurm", "--array=0-999%10",
        "--partition=debug", "--account=hep", "--time=2:00:00", "--mem=2G", "--cpus-per-task=4",
        "--qos=short", "--hold", "/g/3/slurm/3-ab12.sh",
    ]


def test_the_batch_script_runs_the_wrapper_on_its_own_task_with_quoted_paths() -> None:
    text = system.script("python3", Path("/g dir/job_wrapper.py"), Path("/g dir/m.jsonl"), array=True)
    assert text.splitlines()[-1] == (
        "exec python3 -I -S '/g dir/job_wrapper.py' '/g dir/m.jsonl' \"$SLURM_ARRAY_TASK_ID\"")
    single = system.script("python3", Path("/g/w.py"), Path("/g/m.jsonl"), array=False)
    assert single.splitlines()[-1].endswith(" /g/m.jsonl 0")


@pytest.mark.parametrize("option", [
    "-o", "-oout.txt", "--output=x", "--out=x", "-e", "--error=e", "-a", "--array=0-3",
    "--parsable", "-Jname", "--job-name=x", "--wrap=true", "-W", "--wait", "--test-only",
])
def test_extra_options_the_engine_depends_on_are_refused_naming_the_field(option: str) -> None:
    job = Job(backend=Slurm(extra_options=["--qos=short", option]))
    with pytest.raises(JobSpecError, match=r"backend.extra_options\[1\]: .* is refused") as info:
        job.backend.validate(job)
    assert info.value.field == "backend.extra_options[1]"


def test_plain_sbatch_options_pass_and_a_bare_value_is_refused() -> None:
    job = Job(backend=Slurm(extra_options=["--qos=short", "-N1", "--exclusive", "--open-mode=append"]))
    job.backend.validate(job)
    job.backend = Slurm(extra_options=["--qos", "short"])
    with pytest.raises(JobSpecError, match=r"extra_options\[1\].*'--qos=short'"):
        job.backend.validate(job)


def test_bad_settings_name_their_field() -> None:
    with pytest.raises(JobSpecError, match="backend.cpus"):
        Job(backend=Slurm(cpus=-1)).backend.validate(Job())
    with pytest.raises(JobSpecError, match="backend.partition"):
        Job(backend=Slurm(partition="--debug")).backend.validate(Job())
    with pytest.raises(JobSpecError, match="backend.max_running"):
        Slurm(max_running="ten")  # type: ignore[arg-type]
