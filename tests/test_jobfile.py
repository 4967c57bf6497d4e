"""Job files: TOML in, Job out, and one clear JobSpecError for every kind of mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ganga_async import (
    ArgSplitter,
    Executable,
    FileSplitter,
    GenericSplitter,
    JobSpecError,
    Local,
)
from ganga_async._jobfile import job_from_dict, load_job_file

DOCS = Path(__file__).resolve().parent.parent / "docs" / "job-files.md"


def write(tmp_path: Path, text: str, name: str = "job.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def spec_error(path: Path) -> JobSpecError:
    with pytest.raises(JobSpecError) as info:
        load_job_file(path)
    return info.value


def test_every_field_of_a_full_file_reaches_the_job(tmp_path: Path) -> None:
    path = write(tmp_path, """
        name = "full"
        comment = "all fields"
        inputfiles = ["run.sh", "/data/a.txt"]
        outputfiles = ["*.root"]

        [application]
        type = "Executable"
        exe = "run.sh"
        args = ["--fast"]
        env = { MODE = "test" }

        [backend]
        type = "Local"
        max_concurrent = 3

        [splitter]
        type = "ArgSplitter"
        args = [["1"], ["2"]]
        append = true
    """)
    job = load_job_file(path)
    assert (job.name, job.comment) == ("full", "all fields")
    assert job.inputfiles == [str(tmp_path / "run.sh"), "/data/a.txt"]
    assert job.outputfiles == ["*.root"]
    assert job.application == Executable(exe="run.sh", args=["--fast"], env={"MODE": "test"})
    assert job.backend == Local(max_concurrent=3)
    assert job.splitter == ArgSplitter(args=[["1"], ["2"]], append=True)


def test_missing_application_and_backend_tables_mean_the_job_defaults(tmp_path: Path) -> None:
    job = load_job_file(write(tmp_path, 'name = "defaults"\n'))
    assert job.application == Executable()
    assert job.backend == Local()
    assert job.splitter is None


def test_relative_inputfiles_are_relative_to_the_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jobs").mkdir()
    write(tmp_path / "jobs", 'inputfiles = ["data/a.txt", "~/b.txt"]\n')
    job = load_job_file(Path("jobs/job.toml"))
    assert Path(job.inputfiles[0]).resolve() == (tmp_path / "jobs/data/a.txt").resolve()
    assert Path(job.inputfiles[0]).is_absolute()
    assert job.inputfiles[1] == str(Path.home() / "b.txt")


def test_job_from_dict_without_a_basedir_leaves_relative_inputfiles_alone() -> None:
    job = job_from_dict({"inputfiles": ["a.txt"]}, "<test>")
    assert job.inputfiles == ["a.txt"]


@pytest.mark.parametrize(
    ("toml", "splitter"),
    [
        ('type = "GenericSplitter"\nattribute = "name"\nvalues = ["a", "b"]',
         GenericSplitter(attribute="name", values=["a", "b"])),
        ('type = "GenericSplitter"\nmulti_attrs = { "application.args" = [["x"]], name = ["n"] }',
         GenericSplitter(multi_attrs={"application.args": [["x"]], "name": ["n"]})),
        ('type = "FileSplitter"\nfiles_per_subjob = 2\nmax_files = 5',
         FileSplitter(files_per_subjob=2, max_files=5)),
    ],
)
def test_each_splitter_is_built_from_its_table(tmp_path: Path, toml: str, splitter: object) -> None:
    job = load_job_file(write(tmp_path, f"[splitter]\n{toml}\n"))
    assert job.splitter == splitter


def test_every_example_in_the_job_file_docs_builds_a_job(tmp_path: Path) -> None:
    examples = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    assert len(examples) >= 4
    for i, example in enumerate(examples):
        job = load_job_file(write(tmp_path, example, f"example{i}.toml"))
        assert job.name


def test_an_unknown_top_level_key_is_named_with_the_valid_keys(tmp_path: Path) -> None:
    error = spec_error(write(tmp_path, 'nmae = "typo"\n'))
    assert error.field == "nmae"
    assert "valid keys: name, comment, inputfiles, outputfiles" in str(error)
    assert "[application]" in str(error)


@pytest.mark.parametrize(
    ("toml", "field", "expected"),
    [
        ("name = 3", "name", "expected str, got int 3"),
        ('inputfiles = "a.txt"', "inputfiles", "expected list[str]"),
        ('outputfiles = ["/abs/out"]', "outputfiles[0]", "relative to the working directory"),
        ('[backend]\ntype = "Local"\nmax_concurrent = "4"', "backend.max_concurrent",
         "expected int, got str '4'"),
        ('[application]\ntype = "Executable"\nargs = "-v"', "application.args",
         "expected list[str]"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_field(
    tmp_path: Path, toml: str, field: str, expected: str
) -> None:
    error = spec_error(write(tmp_path, toml + "\n"))
    assert error.field == field
    assert expected in str(error)


def test_an_unknown_plugin_type_lists_the_available_ones(tmp_path: Path) -> None:
    error = spec_error(write(tmp_path, '[backend]\ntype = "Dirac"\n'))
    assert error.field == "backend.type"
    assert "unknown backend 'Dirac'; available: Condor, Dask, Local, Slurm" in str(error)


def test_a_table_without_type_asks_for_one(tmp_path: Path) -> None:
    error = spec_error(write(tmp_path, '[splitter]\nargs = [["1"]]\n'))
    assert error.field == "splitter.type"
    assert 'add type = "ArgSplitter"' in str(error)


def test_a_component_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    error = spec_error(write(tmp_path, 'application = "Executable"\n'))
    assert error.field == "application"
    assert "must be a table" in str(error)


def test_an_unknown_plugin_field_is_named_with_the_valid_fields(tmp_path: Path) -> None:
    error = spec_error(write(tmp_path, '[application]\ntype = "Executable"\nexe_name = "ls"\n'))
    assert error.field == "application.exe_name"
    assert "valid fields: exe, args, env" in str(error)


def test_a_toml_syntax_error_keeps_the_line_and_column_and_says_where_to_fix(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, 'name = "x"\n\n[application]\nexe = \n')
    error = spec_error(path)
    assert "(at line 4, column 7)" in str(error)
    assert str(error).endswith("fix the TOML syntax at line 4")


def test_a_deeply_nested_job_file_is_one_line_not_a_recursion_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[application]\ntype = "Executable"\nexe = "/bin/true"\nargs = '
                 + "[" * 100_000 + "]" * 100_000 + "\n")
    error = spec_error(path)
    assert str(error).startswith(f"{path}: its arrays or tables are nested too deeply")


def test_every_error_starts_with_the_file_it_came_from(tmp_path: Path) -> None:
    path = write(tmp_path, "name = 3\n")
    assert str(spec_error(path)).startswith(f"{path}: name: ")
    with pytest.raises(JobSpecError, match=r"^<inline>: nmae: "):
        job_from_dict({"nmae": 1}, "<inline>")


def test_a_missing_file_is_a_spec_error_naming_the_path(tmp_path: Path) -> None:
    error = spec_error(tmp_path / "absent.toml")
    assert f"cannot read the job file {tmp_path / 'absent.toml'}" in str(error)
