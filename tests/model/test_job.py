"""The Job description: defaults, checked assignments, copies, subjob views."""

import json
from pathlib import Path

import pytest

from ganga_async import (
    ArgSplitter,
    BearerToken,
    Config,
    Engine,
    Executable,
    Job,
    JobSpecError,
    JobStateError,
    Local,
    Status,
)
from ganga_async._describe import describe
from ganga_async.config import load_config
from ganga_async.model.record import JobRecord
from ganga_async.model.subjobs import SubjobTable


def test_default_job_is_gangas_hello_world_on_local() -> None:
    job = Job()
    assert job.application == Executable(exe="echo", args=["Hello World"])
    assert isinstance(job.backend, Local)
    assert job.status is Status.NEW
    assert job.fqid == "?"


def test_unknown_attribute_names_the_valid_ones() -> None:
    job = Job()
    with pytest.raises(JobSpecError, match="Job has no attribute 'nmae'; valid: name, comment"):
        job.nmae = "x"


def test_wrong_type_names_the_field() -> None:
    with pytest.raises(JobSpecError, match=r"application\.args: expected list\[str\]"):
        Executable(args="not a list")  # type: ignore[arg-type]
    with pytest.raises(JobSpecError, match=r"application\.args\[1\]: expected str"):
        Executable(args=["a", None])  # type: ignore[list-item]


def test_unknown_component_field_lists_the_valid_ones() -> None:
    app = Executable()
    with pytest.raises(JobSpecError, match="valid fields: exe, args, env"):
        app.exes = "x"


def test_outputfiles_must_stay_inside_the_working_directory() -> None:
    with pytest.raises(JobSpecError, match=r"outputfiles\[0\]"):
        Job(outputfiles=["../escape.txt"])


class _Observer:
    """Stands in for the engine a job is bound to: takes no notice of edits."""

    config = load_config()

    def edited(self, job: Job, name: str, previous: object) -> None:
        pass


def test_submitted_job_is_read_only_except_comment() -> None:
    job = Job()
    job.bind(JobRecord(status=Status.SUBMITTED), _Observer())
    with pytest.raises(JobStateError, match="only comment may change"):
        job.name = "x"
    with pytest.raises(JobStateError, match="read-only"):
        job.application.args = ["x"]
    job.comment = "still editable"
    assert job.comment == "still editable"


def test_copy_is_new_and_editable() -> None:
    job = Job(name="a", application=Executable(exe="/bin/echo", args=["1"]))
    job.bind(JobRecord(status=Status.COMPLETED), _Observer())
    clone = job.copy()
    assert clone.status is Status.NEW
    clone.application.args = ["2"]
    assert job.application.args == ["1"]


def test_subjob_view_applies_the_splitters_overrides() -> None:
    master = Job(application=Executable(exe="/bin/echo", args=["base"]),
                 splitter=ArgSplitter(args=[["a"], ["b"]]))
    table = SubjobTable()
    for overrides in master.splitter.split(master):  # type: ignore[union-attr]
        table.append(Status.SUBMITTED, json.dumps(overrides))
    master.bind(JobRecord(7, status=Status.SUBMITTED, table=table), _Observer())
    sub = master.subjobs[1]
    assert sub.fqid == "7.1"
    assert sub.application.args == ["b"]
    assert master.application.args == ["base"]
    assert sub.status is Status.SUBMITTED
    table.set_status(1, Status.RUNNING)
    assert sub.status is Status.RUNNING
    assert len(master.subjobs) == 2
    with pytest.raises(IndexError, match="has 2 subjobs"):
        master.subjobs[2]


@pytest.mark.anyio
async def test_describe_shows_the_whole_description_credentials_included(
    tmp_path: Path, gangadir: Path, config: Config
) -> None:
    token = BearerToken(token_file=str(tmp_path / "token"))
    job = Job(name="x", credentials=[token], splitter=ArgSplitter(args=[["a"]]))
    async with Engine(gangadir, config=config) as engine:
        await engine.add(job)
    info = describe(job)
    assert info["credentials"] == [token.to_dict()]
    assert info["splitter"] == job.splitter.to_dict()  # type: ignore[union-attr]
    assert {k: info[k] for k in job.spec()} == job.spec()


@pytest.mark.parametrize(("fields", "named"), [
    ({"inputfiles": 5}, r"inputfiles: expected list\[str\], got int 5"),
    ({"outputfiles": "res.txt"}, r"outputfiles: expected list\[str\], got str 'res.txt'"),
    ({"credentials": "VomsProxy"}, r"credentials: expected list\[Credential\]"),
])
def test_a_list_field_given_something_else_is_refused_by_name(fields: dict[str, object], named: str) -> None:
    with pytest.raises(JobSpecError, match=named):
        Job(**fields)  # type: ignore[arg-type]
