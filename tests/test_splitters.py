"""Splitters yield only what each subjob changes, and refuse what cannot be split."""

import dataclasses
import types
from collections.abc import Iterator
from typing import Any

import pytest

from ganga_async import (
    ArgSplitter,
    Executable,
    FileSplitter,
    GenericSplitter,
    Job,
    JobSpecError,
    Local,
    Splitter,
)


def test_argsplitter_replaces_args() -> None:
    job = Job(application=Executable(args=["x"]))
    assert list(ArgSplitter(args=[["1"], ["2"]]).split(job)) == [
        {"application.args": ["1"]}, {"application.args": ["2"]},
    ]


def test_argsplitter_appends_to_the_masters_args() -> None:
    job = Job(application=Executable(args=["-v"]))
    overrides = list(ArgSplitter(args=[["1"]], append=True).split(job))
    assert overrides == [{"application.args": ["-v", "1"]}]


def test_argsplitter_streams() -> None:
    job = Job()
    splitter = ArgSplitter(args=[[str(i)] for i in range(100_000)])
    stream = splitter.split(job)
    assert next(stream) == {"application.args": ["0"]}


def test_empty_argsplitter_is_refused() -> None:
    with pytest.raises(JobSpecError, match="splitter.args: is empty"):
        ArgSplitter(args=[]).validate(Job())


def test_generic_splitter_over_one_attribute() -> None:
    job = Job()
    splitter = GenericSplitter(attribute="application.env", values=[{"A": "1"}, {"A": "2"}])
    splitter.validate(job)
    assert list(splitter.split(job))[1] == {"application.env": {"A": "2"}}


def test_generic_splitter_over_several_attributes() -> None:
    job = Job()
    splitter = GenericSplitter(multi_attrs={"application.args": [["a"], ["b"]], "name": ["x", "y"]})
    splitter.validate(job)
    assert list(splitter.split(job)) == [
        {"application.args": ["a"], "name": "x"}, {"application.args": ["b"], "name": "y"},
    ]


def test_generic_splitter_refuses_lists_of_different_length() -> None:
    splitter = GenericSplitter(multi_attrs={"application.args": [["a"]], "name": ["x", "y"]})
    with pytest.raises(JobSpecError, match="lists differ in length"):
        splitter.validate(Job())


def test_generic_splitter_refuses_an_unknown_attribute() -> None:
    with pytest.raises(JobSpecError, match="Executable has no field 'argz'"):
        GenericSplitter(attribute="application.argz", values=[["a"]]).validate(Job())


def test_generic_splitter_refuses_a_value_of_the_wrong_type() -> None:
    with pytest.raises(JobSpecError, match=r"expected list\[str\]"):
        GenericSplitter(attribute="application.args", values=["not-a-list"]).validate(Job())


def test_file_splitter_groups_inputfiles() -> None:
    job = Job(inputfiles=["a", "b", "c", "d", "e"])
    splitter = FileSplitter(files_per_subjob=2, max_files=4)
    splitter.validate(job)
    assert list(splitter.split(job)) == [{"inputfiles": ["a", "b"]}, {"inputfiles": ["c", "d"]}]


def test_file_splitter_needs_inputfiles() -> None:
    with pytest.raises(JobSpecError, match="inputfiles: is empty"):
        FileSplitter().validate(Job())


def test_splitters_see_a_job_only_through_its_description() -> None:
    view = types.SimpleNamespace(
        id=None, name="", application=Executable(), backend=Local(), splitter=None,
        inputfiles=["a", "b", "c"], outputfiles=[], credentials=[],
    )
    splitter = GenericSplitter(attribute="application.args", values=[["1"]])
    splitter.validate(view)
    assert list(FileSplitter(files_per_subjob=2).split(view)) == [
        {"inputfiles": ["a", "b"]}, {"inputfiles": ["c"]},
    ]


def test_a_plugin_annotated_with_job_still_splits_a_job() -> None:
    class OnePerFile(Splitter):
        def split(self, job: Job) -> Iterator[dict[str, Any]]:
            for path in job.inputfiles:
                yield {"inputfiles": [path]}

    splitter = dataclasses.dataclass(kw_only=True, repr=False)(OnePerFile)()
    assert list(splitter.split(Job(inputfiles=["a", "b"]))) == [
        {"inputfiles": ["a"]}, {"inputfiles": ["b"]},
    ]


def test_argsplitter_args_are_checked_and_copied_whatever_their_number() -> None:
    """Argument lists of plain strings are checked at once (a million of them in a fraction of
    a second), anything else item by item: a wrong one is named by its place."""
    given = [["a", "b"], ("c",)]
    splitter = ArgSplitter(args=given)  # type: ignore[arg-type]
    assert splitter.args == [["a", "b"], ["c"]]
    assert splitter.args is not given and splitter.args[0] is not given[0]
    with pytest.raises(JobSpecError, match=r"splitter.args\[1\]\[0\]: expected str, got int 3"):
        ArgSplitter(args=[["a"], [3]])  # type: ignore[list-item]
    with pytest.raises(JobSpecError, match=r"splitter.args\[1\]: expected list\[str\], got str"):
        ArgSplitter(args=[["a"], "b"])  # type: ignore[list-item]
