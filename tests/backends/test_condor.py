"""The Condor backend's settings, submit description and ClassAd reading, without a pool."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import anyio
import pytest

from ganga_async import BackendUnavailableError, Condor, Config, Executable, Job, JobSpecError, Status
from ganga_async.applications.base import Command
from ganga_async.backends import BackendStatus, DriverContext, Handle, SubmitUnit
from ganga_async.backends._batch import SubmitRequest
from ganga_async.backends.condor import CondorDriver, CondorSystem
from ganga_async.model.job import output_dir, work_dir

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


# -- the driver, with a fake schedd in place of the bindings' -----------------------------

class FakeSchedd:
    """Answers query and history from ``queue`` and ``history`` (lists of job ads), records
    every call, and raises ``error`` (when set) from every call."""

    def __init__(self) -> None:
        self.queue: list[dict[str, object]] = []
        self.history_ads: list[dict[str, object]] = []
        self.calls: list[tuple[str, object]] = []
        self.error: Exception | None = None
        self.next_cluster = 40

    def _check(self, what: str, arg: object) -> None:
        self.calls.append((what, arg))
        if self.error is not None:
            raise self.error

    def query(self, constraint: str, projection: list[str], limit: int = -1) -> list[dict[str, object]]:
        self._check("query", constraint)
        if "JobMaterializeLimit" in constraint:
            return [a for a in self.queue if a.get("JobMaterializeLimit")]
        return list(self.queue)

    def history(self, constraint: str, projection: list[str], match: int = -1) -> list[dict[str, object]]:
        self._check("history", constraint)
        return list(self.history_ads)

    def submit(self, description: dict[str, str], count: int) -> int:
        self._check("submit", count)
        self.next_cluster += 1
        return self.next_cluster - 1

    def act(self, action: str, ids: list[str]) -> None:
        self._check(action, ids)


def condor_driver(config: Config, tmp_path: Path, schedd: FakeSchedd) -> CondorDriver:
    config["Condor"]["submit_retry"] = 5.0
    return CondorDriver(DriverContext(config=config, gangadir=tmp_path), schedd=schedd)


def unit(jobdir: Path, index: int | None) -> SubmitUnit:
    key = jobdir.name if index is None else f"{jobdir.name}.{index}"
    return SubmitUnit(key=key, job_id=int(jobdir.name), index=index, name="", backend=Condor(),
                      command=Command(argv=["/bin/echo", str(index)], env={}), inputfiles=[],
                      outputfiles=[], workdir=work_dir(jobdir, index), outputdir=output_dir(jobdir, index))


async def news_now(driver: CondorDriver) -> Mapping[str, BackendStatus]:
    with anyio.move_on_after(0.1):
        return await driver.news()
    return {}


@pytest.mark.anyio
async def test_a_master_is_one_submission_of_n_procs_with_cluster_dot_proc_ids(
    config: Config, tmp_path: Path
) -> None:
    schedd = FakeSchedd()
    driver = condor_driver(config, tmp_path, schedd)
    jobdir = tmp_path / "7"
    ids = await driver.bulk_submit([unit(jobdir, i) for i in range(3)])
    single = await driver.bulk_submit([unit(tmp_path / "8", None)])
    assert (ids, single) == (["40.0", "40.1", "40.2"], ["41.0"])
    assert [c for c in schedd.calls if c[0] == "submit"] == [("submit", 3), ("submit", 1)]
    manifest = next((jobdir / "condor").glob("*.jsonl")).read_text().splitlines()
    assert [json.loads(line)["task"] for line in manifest] == [0, 1, 2]


@pytest.mark.anyio
async def test_a_sweep_is_one_query_and_history_only_when_procs_left_the_queue(
    config: Config, tmp_path: Path
) -> None:
    schedd = FakeSchedd()
    driver = condor_driver(config, tmp_path, schedd)
    await driver.bulk_submit([unit(tmp_path / "7", i) for i in range(3)])
    schedd.queue = [ad(1, proc=0) | {"ClusterId": 40}, ad(2, proc=1) | {"ClusterId": 40},
                    ad(5, proc=2, HoldReason="disk full") | {"ClusterId": 40}]
    await driver.sweep()
    assert [c[0] for c in schedd.calls[1:]] == ["query"]
    news = await news_now(driver)
    assert news["7.1"].status is Status.RUNNING
    assert (news["7.2"].status, news["7.2"].reason) == (Status.HELD, "held by HTCondor: disk full")
    assert "7.0" not in news  # still idle: no news
    schedd.queue = schedd.queue[:2]
    schedd.history_ads = [ad(4, proc=2, ExitCode=0) | {"ClusterId": 40}]
    schedd.calls.clear()
    await driver.sweep()
    assert [c[0] for c in schedd.calls] == ["query", "history", "query"]
    assert (await news_now(driver))["7.2"].status is Status.COMPLETED


@pytest.mark.anyio
async def test_a_proc_the_pool_forgot_is_decided_by_its_status_file(config: Config, tmp_path: Path) -> None:
    schedd = FakeSchedd()
    driver = condor_driver(config, tmp_path, schedd)
    jobdir = tmp_path / "7"
    await driver.bulk_submit([unit(jobdir, 0)])
    outputdir = output_dir(jobdir, 0)
    outputdir.mkdir(parents=True)
    (outputdir / "__jobstatus__.json").write_text(json.dumps(
        {"key": "7.0", "start": 1.0, "end": 2.0, "exitcode": 4, "killed": False, "error": None}))
    await driver.sweep()
    news = await news_now(driver)
    assert (news["7.0"].status, news["7.0"].exitcode, news["7.0"].reason) == (Status.FAILED, 4, "exit code 4")


@pytest.mark.anyio
async def test_procs_not_yet_materialised_are_submitted(config: Config, tmp_path: Path) -> None:
    schedd = FakeSchedd()
    driver = condor_driver(config, tmp_path, schedd)
    await driver.bulk_submit([unit(tmp_path / "7", i) for i in range(4)])
    schedd.queue = [ad(2, proc=1) | {"ClusterId": 40, "JobMaterializeLimit": 2}]
    schedd.history_ads = [ad(4, proc=0, ExitCode=0) | {"ClusterId": 40}]
    await driver.sweep()
    news = await news_now(driver)
    assert news["7.0"].status is Status.COMPLETED and news["7.1"].status is Status.RUNNING
    assert "7.2" not in news and "7.3" not in news  # still submitted, as they were
    assert set(driver.tracked) == {"7.1", "7.2", "7.3"}


@pytest.mark.anyio
async def test_a_schedd_that_cannot_be_found_makes_the_sweep_a_retry_not_a_failure(
    config: Config, tmp_path: Path
) -> None:
    schedd = FakeSchedd()
    driver = condor_driver(config, tmp_path, schedd)
    await driver.bulk_submit([unit(tmp_path / "7", 0)])
    schedd.error = RuntimeError("Unable to locate local daemon.")
    with pytest.raises(BackendUnavailableError, match="Unable to locate local daemon"):
        await driver.sweep()
    assert await news_now(driver) == {}
    assert set(driver.tracked) == {"7.0"}


@pytest.mark.anyio
async def test_kill_removes_the_whole_cluster_or_the_listed_procs_in_one_action(
    config: Config, tmp_path: Path
) -> None:
    schedd = FakeSchedd()
    driver = condor_driver(config, tmp_path, schedd)
    jobdir = tmp_path / "7"
    ids = await driver.bulk_submit([unit(jobdir, i) for i in range(3)])
    handles = [Handle(f"7.{i}", str(native), output_dir(jobdir, i)) for i, native in enumerate(ids)]
    await driver.kill(handles[:2])
    await driver.kill(handles)
    await driver.release(handles[2:])
    acts = [c for c in schedd.calls if c[0] != "submit"]
    assert acts == [
        ("Remove", ["40.0", "40.1"]), ("Remove", ["40"]), ("Release", ["40.2"])]


@pytest.mark.anyio
async def test_a_submission_without_an_answer_is_looked_for_by_name_before_it_is_made_again(
    config: Config, tmp_path: Path
) -> None:
    schedd = FakeSchedd()
    made: list[int] = []

    def submit_lost(description: dict[str, str], count: int) -> int:
        made.append(count)
        schedd.history_ads = [{"ClusterId": 40, "ProcId": 0, "JobStatus": 4,
                               "JobBatchName": description["batch_name"]}]
        raise TimeoutError("condor_submit took more than 30 s")

    schedd.submit = submit_lost  # type: ignore[method-assign]
    driver = condor_driver(config, tmp_path, schedd)
    assert await driver.bulk_submit([unit(tmp_path / "7", 0), unit(tmp_path / "7", 1)]) == ["40.0", "40.1"]
    assert made == [2]
    assert [what for what, _ in schedd.calls] == ["query", "history"]
