"""The shared batch machinery: state decisions, and the driver's submission, tracking, sweeps and
kill logic with a scripted command runner injected in place of the real Slurm commands."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import anyio
import pytest

from ganga_async import BackendUnavailableError, Config, Slurm, Status
from ganga_async.applications.base import Command
from ganga_async.backends import BackendStatus, DriverContext, Handle, SubmitUnit
from ganga_async.backends._batch import BatchDriver, CommandResult, compact_ranges, resolve
from ganga_async.backends.slurm import SlurmSystem
from ganga_async.model.job import output_dir, work_dir

pytestmark = pytest.mark.anyio

Answer = Callable[[list[str]], CommandResult]


class ScriptedRunner:
    """Answers each command from ``answers[argv[0]]``, a list used in turn (the last one repeats);
    an exception in the list is raised. Every argv is kept in ``calls``."""

    def __init__(self, answers: dict[str, list[CommandResult | Exception | Answer]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    async def __call__(self, argv: Sequence[str], seconds: float) -> CommandResult:
        self.calls.append(list(argv))
        queue = self.answers[argv[0]]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(list(argv))
        return answer

    def of(self, program: str) -> list[list[str]]:
        return [argv for argv in self.calls if argv[0] == program]


def ok(stdout: str = "") -> CommandResult:
    return CommandResult(["x"], 0, stdout, "")


def err(stderr: str) -> CommandResult:
    return CommandResult(["x"], 1, "", stderr)


def config_with(size: int) -> CommandResult:
    return ok(f"Configuration data as of now\nMaxArraySize            = {size}\nMinJobAge = 300 sec\n")


def unit(jobdir: Path, index: int | None, backend: Slurm | None = None) -> SubmitUnit:
    key = jobdir.name if index is None else f"{jobdir.name}.{index}"
    return SubmitUnit(key=key, job_id=int(jobdir.name), index=index, name="", backend=backend or Slurm(),
                      command=Command(argv=["/bin/echo", str(index)], env={"A": "1"}), inputfiles=[],
                      outputfiles=["*.txt"], workdir=work_dir(jobdir, index),
                      outputdir=output_dir(jobdir, index))


def driver(config: Config, tmp_path: Path, runner: ScriptedRunner) -> BatchDriver:
    config["Slurm"]["submit_retry"] = 30.0
    return BatchDriver(DriverContext(config=config, gangadir=tmp_path), SlurmSystem(), "Slurm", runner)


async def news_now(batch: BatchDriver) -> Mapping[str, BackendStatus]:
    """The news waiting in the driver's stream, {} when there are none."""
    with anyio.move_on_after(0.1):
        return await batch.news()
    return {}


# -- deciding a state ---------------------------------------------------------------------

NOW = 1_000_000.0


def decide(seen: BackendStatus | None, record: dict[str, object] | None = None,
           heartbeat: float | None = None, missing_for: float = 0.0) -> BackendStatus | None:
    return resolve("42_7", seen, record, heartbeat, now=NOW, missing_since=NOW - missing_for,
                   forget_after=600, heartbeat_timeout=90)


def ended(code: int | None, **extra: object) -> dict[str, object]:
    return {"key": "1.7", "start": NOW - 50, "pid": 10, "end": NOW - 10, "exitcode": code,
            "killed": False, "error": None, **extra}


def test_the_status_file_has_the_last_word_on_the_exit_code() -> None:
    status = decide(BackendStatus(Status.FAILED, exitcode=1), ended(3))
    assert status == BackendStatus(Status.FAILED, exitcode=3, reason="exit code 3", started=NOW - 50,
                                   ended=NOW - 10)


def test_slurms_reason_is_kept_with_the_wrappers_exit_code() -> None:
    seen = SlurmSystem().observe("TIMEOUT")
    status = decide(seen, ended(-15, killed=True))
    assert status is not None
    assert (status.status, status.exitcode) == (Status.FAILED, -15)
    assert status.reason == "reached its time limit (Slurm state TIMEOUT)"


def test_a_task_cancelled_while_pending_is_killed_before_it_started() -> None:
    status = decide(SlurmSystem().observe("CANCELLED"))
    assert status is not None and status.status is Status.KILLED
    assert status.reason == "cancelled in Slurm (scancel) before it started"


def test_completed_in_slurm_but_outputs_not_copied_back_fails_with_the_wrappers_error() -> None:
    status = decide(BackendStatus(Status.COMPLETED), ended(0, error="copying failed"))
    assert status is not None and (status.status, status.reason) == (Status.FAILED, "copying failed")


def test_a_job_slurm_forgot_is_decided_by_its_status_file() -> None:
    assert decide(None, ended(0)) == BackendStatus(Status.COMPLETED, exitcode=0, started=NOW - 50,
                                                   ended=NOW - 10)
    running = {"key": "1.7", "start": NOW - 500, "pid": 10}
    alive = decide(None, running, heartbeat=NOW - 20, missing_for=5000)
    assert alive is not None and alive.status is Status.RUNNING
    assert decide(None, running, heartbeat=NOW - 200, missing_for=30) is None
    silent = decide(None, running, heartbeat=NOW - 200, missing_for=700)
    assert silent is not None and silent.status is Status.FAILED
    assert silent.reason is not None
    assert "no record of 42_7" in silent.reason and "silent since" in silent.reason


def test_a_job_slurm_never_knew_fails_only_after_forget_after() -> None:
    assert decide(None, missing_for=599) is None
    never = decide(None, missing_for=601)
    assert never is not None and never.status is Status.FAILED
    assert never.reason == "the batch system has no record of 42_7 and it never started"


def test_active_states_need_no_status_file() -> None:
    assert decide(BackendStatus(Status.RUNNING, started=NOW - 3)) == BackendStatus(
        Status.RUNNING, started=NOW - 3)


def test_array_indices_are_written_as_compact_ranges() -> None:
    assert compact_ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert compact_ranges([4]) == "4"


# -- the driver ---------------------------------------------------------------------------

async def test_a_master_is_one_array_with_the_running_cap_and_a_manifest_line_per_task(
    config: Config, tmp_path: Path
) -> None:
    runner = ScriptedRunner({"scontrol": [config_with(1001)], "sbatch": [ok("77\n")]})
    jobdir = tmp_path / "5"
    units = [unit(jobdir, i, Slurm(max_running=3)) for i in range(12)]
    ids = await driver(config, tmp_path, runner).bulk_submit(units)
    assert ids == [f"77_{i}" for i in range(12)]
    (sbatch,) = runner.of("sbatch")
    assert "--array=0-11%3" in sbatch
    manifest = next((jobdir / "slurm").glob("*.jsonl"))
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [line["task"] for line in lines] == list(range(12))
    assert lines[3]["key"] == "5.3" and lines[3]["argv"] == ["/bin/echo", "3"]
    assert lines[3]["env"] == {"A": "1"} and lines[3]["outputs"] == ["*.txt"]
    assert (jobdir / "slurm" / "job_wrapper.py").is_file()
    assert (jobdir / "slurm" / f"{manifest.stem}.id").read_text() == "77\n"


async def test_a_master_larger_than_max_array_size_is_cut_into_arrays(config: Config, tmp_path: Path) -> None:
    runner = ScriptedRunner({"scontrol": [config_with(5)], "sbatch": [ok("10"), ok("11"), ok("12")]})
    ids = await driver(config, tmp_path, runner).bulk_submit([unit(tmp_path / "5", i) for i in range(12)])
    assert [argv[6] for argv in runner.of("sbatch")] == ["--array=0-4", "--array=0-4", "--array=0-1"]
    assert ids == [*(f"10_{t}" for t in range(5)), *(f"11_{t}" for t in range(5)), "12_0", "12_1"]


async def test_a_resubmission_of_some_subjobs_is_a_new_array_of_just_those(
    config: Config, tmp_path: Path
) -> None:
    runner = ScriptedRunner({"scontrol": [config_with(1001)], "sbatch": [ok("31")]})
    ids = await driver(config, tmp_path, runner).bulk_submit([unit(tmp_path / "5", i) for i in (3, 17, 18)])
    assert ids == ["31_3", "31_17", "31_18"]
    assert "--array=3,17-18" in runner.of("sbatch")[0]


async def test_an_unreachable_controller_is_retried_and_a_refusal_is_not(
    config: Config, tmp_path: Path
) -> None:
    down = err("sbatch: error: Batch job submission failed: "
               "Unable to contact slurm controller (connect failure)")
    runner = ScriptedRunner({"scontrol": [config_with(1001)], "sbatch": [down, ok("8")]})
    assert await driver(config, tmp_path, runner).bulk_submit([unit(tmp_path / "5", None)]) == ["8"]
    assert len(runner.of("sbatch")) == 2

    refused = err("sbatch: error: Batch job submission failed: Invalid partition name specified")
    runner = ScriptedRunner({"sbatch": [refused]})
    (result,) = await driver(config, tmp_path, runner).bulk_submit([unit(tmp_path / "6", None)])
    assert isinstance(result, Exception) and str(result).endswith("Invalid partition name specified")
    assert len(runner.of("sbatch")) == 1


async def test_a_timed_out_sbatch_is_found_by_its_name_not_submitted_twice(
    config: Config, tmp_path: Path
) -> None:
    runner = ScriptedRunner({
        "scontrol": [config_with(1001)],
        "sbatch": [BackendUnavailableError("sbatch did not answer within 30 s")],
        "squeue": [lambda argv: ok("55\n55\n")],
    })
    ids = await driver(config, tmp_path, runner).bulk_submit([unit(tmp_path / "5", i) for i in range(2)])
    assert ids == ["55_0", "55_1"]
    assert len(runner.of("sbatch")) == 1
    (search,) = runner.of("squeue")
    assert search[3].startswith("--name=ga.5-")


async def test_a_lost_sbatch_reply_is_searched_for_until_a_search_answers_never_resubmitted_blindly(
    config: Config, tmp_path: Path
) -> None:
    down = err("slurm_load_jobs error: Unable to contact slurm controller (connect failure)")
    runner = ScriptedRunner({
        "scontrol": [config_with(1001)],
        "sbatch": [BackendUnavailableError("sbatch did not answer within 30 s"), ok("99")],
        "squeue": [down, down, ok("55\n55\n")],
        "sacct": [down],
    })
    ids = await driver(config, tmp_path, runner).bulk_submit([unit(tmp_path / "5", i) for i in range(2)])
    assert ids == ["55_0", "55_1"]
    assert len(runner.of("sbatch")) == 1, "submitted again while searches failed"


async def test_a_lost_sbatch_reply_is_submitted_again_once_a_search_answers_it_is_not_there(
    config: Config, tmp_path: Path
) -> None:
    runner = ScriptedRunner({
        "scontrol": [config_with(1001)],
        "sbatch": [BackendUnavailableError("sbatch did not answer within 30 s"), ok("99")],
        "squeue": [ok("")],
        "sacct": [ok("")],
    })
    assert await driver(config, tmp_path, runner).bulk_submit([unit(tmp_path / "5", None)]) == ["99"]
    assert len(runner.of("sbatch")) == 2


async def test_a_failed_query_is_no_news_and_never_fails_a_job(config: Config, tmp_path: Path) -> None:
    runner = ScriptedRunner({"squeue": [err("slurm_load_jobs error: Unable to contact slurm controller")]})
    handle = Handle("5.0", "90_0", tmp_path / "5" / "0" / "output")
    batch = driver(config, tmp_path, runner)
    await batch.track([handle])
    with pytest.raises(BackendUnavailableError):
        await batch.sweep()
    assert not await news_now(batch)
    assert set(batch.tracked) == {"5.0"}


async def test_a_job_slurm_and_accounting_forgot_is_resolved_from_its_status_file(
    config: Config, tmp_path: Path
) -> None:
    runner = ScriptedRunner({
        "squeue": [err("slurm_load_jobs error: Invalid job id specified")],
        "sacct": [err("sacct: error: Slurm accounting storage is disabled")],
    })
    outputdir = tmp_path / "5" / "0" / "output"
    outputdir.mkdir(parents=True)
    (outputdir / "__jobstatus__.json").write_text(json.dumps(ended(4)))
    batch = driver(config, tmp_path, runner)
    await batch.track([Handle("5.0", "90_0", outputdir)])
    assert await batch.sweep() == 1
    news = await news_now(batch)
    assert news["5.0"].status is Status.FAILED and news["5.0"].exitcode == 4
    assert not batch.tracked


async def test_kill_cancels_a_whole_array_at_once_or_only_the_listed_tasks(
    config: Config, tmp_path: Path
) -> None:
    runner = ScriptedRunner({"scontrol": [config_with(1001)], "sbatch": [ok("60")], "scancel": [ok()]})
    batch = driver(config, tmp_path, runner)
    units = [unit(tmp_path / "5", i) for i in range(3)]
    await batch.bulk_submit(units)
    handles = [Handle(u.key, f"60_{u.index}", u.outputdir) for u in units]
    await batch.kill(handles[1:])
    await batch.kill(handles)
    assert runner.of("scancel") == [["scancel", "60_1", "60_2"], ["scancel", "60"]]


async def test_a_submission_an_earlier_engine_never_recorded_is_found_from_its_manifest(
    config: Config, tmp_path: Path
) -> None:
    runner = ScriptedRunner({
        "scontrol": [config_with(1001)], "sbatch": [ok("70")],
        "squeue": [ok("70_0|PENDING|N/A|N/A\n70_1|RUNNING|2026-11-21T11:30:08|N/A\n")],
    })
    units = [unit(tmp_path / "5", i) for i in range(2)]
    await driver(config, tmp_path, runner).bulk_submit(units)
    later = driver(config, tmp_path, runner)
    await later.track([Handle(u.key, "", u.outputdir) for u in units])
    await later.sweep()
    news = await news_now(later)
    assert (news["5.0"].status, news["5.0"].native_id) == (Status.SUBMITTED, "70_0")
    assert (news["5.1"].status, news["5.1"].native_id) == (Status.RUNNING, "70_1")
    await later.track([Handle("6", "", tmp_path / "6" / "output")])
    unknown = await news_now(later)
    assert unknown["6"].status is Status.NEW
    assert set(later.tracked) == {"5.0", "5.1"}


async def test_a_submission_an_earlier_engine_never_made_is_looked_up_once_for_all_its_tasks(
    config: Config, tmp_path: Path
) -> None:
    refused = err("sbatch: error: Batch job submission failed: Invalid partition name specified")
    runner = ScriptedRunner({"scontrol": [config_with(1001)], "sbatch": [refused],
                             "squeue": [ok()], "sacct": [ok()]})
    units = [unit(tmp_path / "5", i) for i in range(3)]
    await driver(config, tmp_path, runner).bulk_submit(units)
    later = driver(config, tmp_path, runner)
    await later.track([Handle(u.key, "", u.outputdir) for u in units])
    news = await news_now(later)
    assert {key: status.status for key, status in news.items()} == dict.fromkeys(
        ["5.0", "5.1", "5.2"], Status.NEW)
    assert len(runner.of("squeue")) == len(runner.of("sacct")) == 1


async def test_a_sweep_that_finds_nothing_changed_is_no_news(config: Config, tmp_path: Path) -> None:
    runner = ScriptedRunner({"scontrol": [config_with(1001)], "sbatch": [ok("60")],
                             "squeue": [ok("60_0|PENDING|N/A|N/A\n60_1|PENDING|N/A|N/A\n")]})
    batch = driver(config, tmp_path, runner)
    await batch.bulk_submit([unit(tmp_path / "5", i) for i in range(2)])
    assert set(batch.tracked) == {"5.0", "5.1"}
    assert await batch.sweep() == 0
    assert await news_now(batch) == {}
    assert len(runner.of("squeue")) == 1


async def test_a_killed_task_ends_killed_and_its_tracking_with_it(config: Config, tmp_path: Path) -> None:
    runner = ScriptedRunner({
        "scontrol": [config_with(1001)], "sbatch": [ok("60")], "scancel": [ok()],
        "squeue": [ok("60_0|FAILED|2026-11-21T11:30:08|2026-11-21T11:30:09\n60_1|RUNNING|N/A|N/A\n")],
    })
    batch = driver(config, tmp_path, runner)
    units = [unit(tmp_path / "5", i) for i in range(2)]
    await batch.bulk_submit(units)
    await batch.kill([Handle("5.0", "60_0", units[0].outputdir)])
    assert await batch.sweep() == 2
    news = await news_now(batch)
    assert (news["5.0"].status, news["5.0"].reason) == (Status.KILLED, "killed")
    assert news["5.1"].status is Status.RUNNING
    assert set(batch.tracked) == {"5.1"}


async def test_untracked_and_forgotten_jobs_are_not_swept(config: Config, tmp_path: Path) -> None:
    runner = ScriptedRunner({"scontrol": [config_with(1001)], "sbatch": [ok("60")], "squeue": [ok()]})
    batch = driver(config, tmp_path, runner)
    units = [unit(tmp_path / "5", i) for i in range(2)]
    await batch.bulk_submit(units)
    batch.untrack(["5.0"])
    await batch.forget([Handle("5.1", "60_1", units[1].outputdir)])
    assert await batch.sweep() == 0
    assert runner.of("squeue") == []


async def test_the_sweep_interval_bounds_are_poll_min_and_poll_max(config: Config, tmp_path: Path) -> None:
    config["Slurm"]["poll_min"] = 2.0
    config["Slurm"]["poll_max"] = 40.0
    assert driver(config, tmp_path, ScriptedRunner({})).poll_bounds() == (2.0, 40.0)
