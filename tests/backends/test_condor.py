"""The Condor backend's settings, submit description and ClassAd reading, without a pool."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganga_async import Condor, Executable, Job, JobSpecError, Status
from ganga_async.backends._batch import SubmitRequest
from ganga_async.backends.condor import CondorSystem

SYSTEM = CondorSystem()


def ad(status: int, proc: int = 4, **more: object) -> dict[str, object]:
    return {"ClusterId": 12, "ProcId": proc, "JobStatus": status, **more}


@pytest.mark.parametrize(("state", "expected"), [
    (1, Status.SUBMITTED), (2, Status.RUNNING), (6, Status.RUNNING), (7, Status.RUNNING),
    (5, Status.HELD), (3, Status.KILLED),
])
def test_each_job_status_maps_onto_ours(state: int, expected: Status) -> None:
    native, status = SYSTEM.read_ad(ad(state)) or ("", None)
    assert native == "12.4"
    assert status is not None and status.status is expected


def test_a_completed_proc_is_completed_or_failed_by_its_exit_code_or_signal() -> None:
    ok = SYSTEM.read_ad(ad(4, ExitCode=0, JobCurrentStartDate=100, CompletionDate=160))
    bad = SYSTEM.read_ad(ad(4, ExitCode=3, ExitBySignal=False))
    signalled = SYSTEM.read_ad(ad(4, ExitBySignal=True, ExitSignal=9))
    assert ok and ok[1].status is Status.COMPLETED and (ok[1].started, ok[1].ended) == (100.0, 160.0)
    assert bad and (bad[1].status, bad[1].exitcode) == (Status.FAILED, 3)
    assert signalled and (signalled[1].status, signalled[1].exitcode) == (Status.FAILED, -9)


def test_a_held_proc_carries_its_hold_reason_and_a_removed_one_its_remove_reason() -> None:
    held = SYSTEM.read_ad(ad(5, HoldReason="Error from slot1: cannot open input"))
    removed = SYSTEM.read_ad(ad(3, RemoveReason="via condor_rm (by user htcuser)"))
    assert held and held[1].reason == "held by HTCondor: Error from slot1: cannot open input"
    assert removed and removed[1].reason == "removed in HTCondor: via condor_rm (by user htcuser)"


def test_an_ad_without_ids_or_status_is_skipped() -> None:
    assert SYSTEM.read_ads([{"ProcId": 1}, {"ClusterId": 3, "ProcId": 0, "JobStatus": "x"}]) == {}


def test_native_ids_are_cluster_dot_proc() -> None:
    assert (SYSTEM.task_id("12", 7), SYSTEM.single_id("12"), SYSTEM.job_of("12.7")) == ("12.7", "12.0", "12")


def job_with(backend: Condor) -> Job:
    return Job(application=Executable(exe="/bin/true"), backend=backend)


@pytest.mark.parametrize("key", ["executable", "Output", "error", "log", "queue", "+queue", "arguments",
                                 "initialdir", "batch_name"])
def test_submit_commands_the_bookkeeping_needs_are_refused_naming_the_field(key: str) -> None:
    backend = Condor(extra_submit={key: "x"})
    with pytest.raises(JobSpecError, match=r"backend\.extra_submit.*refused"):
        backend.validate(job_with(backend))


@pytest.mark.parametrize(("settings", "field"), [
    ({"request_cpus": -1}, "request_cpus"), ({"max_running": -2}, "max_running"),
    ({"universe": "grid"}, "universe"), ({"requirements": "a\nb"}, "requirements"),
])
def test_impossible_settings_are_refused_naming_the_field(settings: dict[str, object], field: str) -> None:
    backend = Condor(**settings)  # type: ignore[arg-type]
    with pytest.raises(JobSpecError, match=rf"backend\.{field}"):
        backend.validate(job_with(backend))


def test_the_submit_description_has_the_engines_commands_then_the_users(tmp_path: Path) -> None:
    backend = Condor(requirements='OpSysAndVer == "AlmaLinux9"', request_cpus=2, request_memory="2GB",
                     accounting_group="group_physics.me", max_running=50,
                     extra_submit={"+MaxRuntime": "3600"})
    request = SubmitRequest(name="ga.3-abcd", script=tmp_path / "3-abcd.sh", log=tmp_path / "3-abcd_%a.log",
                            directory=tmp_path, array="0-9", backend=backend)
    description = SYSTEM.submit_description(request)
    assert description == {
        "universe": "vanilla", "executable": str(tmp_path / "3-abcd.sh"), "transfer_executable": "false",
        "arguments": "$(ProcId)", "initialdir": str(tmp_path), "output": "3-abcd_$(ProcId).out",
        "error": "3-abcd_$(ProcId).err", "batch_name": "ga.3-abcd",
        "requirements": 'OpSysAndVer == "AlmaLinux9"', "request_cpus": "2", "request_memory": "2GB",
        "accounting_group": "group_physics.me", "max_materialize": "50", "+MaxRuntime": "3600",
    }


def test_the_script_runs_the_wrapper_on_the_procs_line(tmp_path: Path) -> None:
    text = SYSTEM.script("python3", tmp_path / "job_wrapper.py", tmp_path / "m.jsonl", True)
    wrapper, manifest = tmp_path / "job_wrapper.py", tmp_path / "m.jsonl"
    assert text.splitlines()[-1] == f'exec python3 -I -S {wrapper} {manifest} "${{1:-0}}"'
