"""Property-based tests of what users write: job and task files (as parsed dicts and as TOML text), Job
constructors and configuration (files and environment variables). Whatever they hold, the
answer is a value or one typed, one-line error (JobSpecError, ConfigError), never another
exception. The service's operations have theirs in test_service_fuzz.py."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganga_async import ArgSplitter, ConfigError, Executable, Job, JobSpecError, Local, load_config
from ganga_async._jobfile import job_from_dict, load_job_file
from ganga_async._taskfile import load_task_file, task_from_dict
from ganga_async.model.task import CoreTask

FIELDS = ["name", "comment", "inputfiles", "outputfiles", "application", "backend", "splitter",
          "type", "exe", "args", "env", "max_concurrent", "partition", "time", "values", "attribute",
          "Executable", "Local", "Slurm", "ArgSplitter", "GenericSplitter", "is_prepared"]
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
           | st.text(max_size=10) | st.sampled_from(["Executable", "Local", "Slurm", "ArgSplitter",
                                                   "/bin/echo", "..", "", "1h", "-1"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), inner,
                                        max_size=4), max_leaves=12)
job_dicts = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one_line(exc: Exception) -> None:
    assert "\n" not in str(exc) and "Traceback" not in str(exc), str(exc)


@FUZZ
@given(data=job_dicts)
def test_a_job_file_dict_builds_a_job_or_names_its_mistake(data: dict[str, Any]) -> None:
    try:
        assert isinstance(job_from_dict(data, "job.toml"), Job)
    except JobSpecError as exc:
        one_line(exc)


@FUZZ
@given(text=st.text(max_size=200).map(str.encode) | st.binary(max_size=200))
def test_job_file_text_builds_a_job_or_names_its_mistake(text: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "job.toml"
        path.write_bytes(b'[application]\ntype = "Executable"\nexe = "/bin/true"\n' + text)
        try:
            load_job_file(path)
        except JobSpecError as exc:
            one_line(exc)


@FUZZ
@given(kwargs=st.dictionaries(st.sampled_from(["name", "comment", "inputfiles", "outputfiles"]),
                              values, max_size=4),
       app=st.dictionaries(st.sampled_from(["exe", "args", "env"]), values, max_size=3),
       backend=st.dictionaries(st.sampled_from(["max_concurrent"]), values, max_size=1),
       split=values)
def test_constructors_take_their_values_or_name_the_field(
    kwargs: dict[str, Any], app: dict[str, Any], backend: dict[str, Any], split: Any
) -> None:
    for build in (lambda: Job(**kwargs), lambda: Executable(**app), lambda: Local(**backend),
                  lambda: ArgSplitter(args=split)):
        try:
            build()
        except JobSpecError as exc:
            one_line(exc)


TASK_FIELDS = ["task", "transforms", "float", "name", "run_limit", "requires", "unit_splitter",
               "chain_input", "input_trf", "include_file_mask", "exclude_file_mask", "single_unit",
               "application", "backend", "outputfiles", "type", "exe", "args", "ArgSplitter"]
task_values = st.recursive(scalars | st.sampled_from([0, 1, 2, "(", r"\.txt$"]),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(TASK_FIELDS), inner, max_size=4),
                           max_leaves=14)
transforms = st.lists(st.dictionaries(st.sampled_from(TASK_FIELDS), task_values, max_size=4), max_size=3)
task_dicts = (st.fixed_dictionaries({"task": st.fixed_dictionaries(
    {"transforms": transforms}, optional={"name": task_values, "float": task_values})})
    | st.dictionaries(st.sampled_from(TASK_FIELDS), task_values, max_size=3))


@FUZZ
@given(data=task_dicts)
def test_a_task_file_dict_builds_a_task_or_names_its_mistake(data: dict[str, Any]) -> None:
    try:
        assert isinstance(task_from_dict(data, "task.toml"), CoreTask)
    except JobSpecError as exc:
        one_line(exc)
        assert str(exc).startswith("task.toml: ")


@FUZZ
@given(text=st.text(max_size=200).map(str.encode) | st.binary(max_size=200))
def test_task_file_text_builds_a_task_or_names_its_mistake(text: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "task.toml"
        path.write_bytes(b'[task]\nfloat = 2\n[[task.transforms]]\nname = "a"\n' + text)
        try:
            load_task_file(path)
        except JobSpecError as exc:
            one_line(exc)


OPTIONS = ["LOCAL_MAX_CONCURRENT", "LOCAL_KILL_GRACE", "SLURM_POLL_MIN", "SLURM_PYTHON",
           "MONITORING_POLL_INTERVAL", "PIPELINE_SUBMIT_BATCH", "PIPELINE_MAX_INPUT_SIZE",
           "SERVICE_AUTOSTART", "CREDENTIALS_MIN_TIME_LEFT", "CREDENTIALS_MIN_TIME_LEFT_BY_BACKEND",
           "CREDENTIALS_DEFAULTS", "CONFIGURATION_USER", "REPOSITORY_FLUSH_INTERVAL"]


@FUZZ
@given(environ=st.dictionaries(st.sampled_from(OPTIONS).map(lambda o: f"GANGA_ASYNC_{o}"),
                               st.text(max_size=30), max_size=3),
       text=st.text(max_size=150))
def test_configuration_from_a_file_or_the_environment_loads_or_names_the_option(
    environ: dict[str, str], text: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        user = Path(tmp) / "config.toml"
        user.write_text("[Local]\n" + text)
        for source in ({"user_file": user}, {"environ": environ}):
            try:
                load_config(**source)  # type: ignore[arg-type]
            except ConfigError as exc:
                one_line(exc)
