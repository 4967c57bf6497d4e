"""Configuration layers: shipped defaults, user file, environment, runtime."""

from pathlib import Path

import pytest

from ganga_async import ConfigError, load_config


def test_defaults_come_from_the_shipped_file() -> None:
    config = load_config(environ={})
    assert config["Local"]["max_concurrent"] == 0
    assert config["Configuration"]["gangadir"] == "~/gangadir-async"


def test_user_file_overrides_defaults(tmp_path: Path) -> None:
    user = tmp_path / "c.toml"
    user.write_text("[Local]\nmax_concurrent = 3\n")
    assert load_config(user, environ={})["Local"]["max_concurrent"] == 3


def test_environment_overrides_the_user_file(tmp_path: Path) -> None:
    user = tmp_path / "c.toml"
    user.write_text("[Local]\nmax_concurrent = 3\n")
    env = {"GANGA_ASYNC_LOCAL_MAX_CONCURRENT": "5", "GANGA_ASYNC_GANGADIR": "/tmp/x"}
    config = load_config(user, environ=env)
    assert config["Local"]["max_concurrent"] == 5
    assert config.gangadir == Path("/tmp/x")


def test_runtime_assignment_is_checked_and_applied() -> None:
    config = load_config(environ={})
    config["Local"]["max_concurrent"] = 4
    assert config["Local"]["max_concurrent"] == 4
    with pytest.raises(ConfigError, match="max_concurrent.*not a valid int"):
        config["Local"]["max_concurrent"] = "four"


def test_unknown_section_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="valid sections: Condor, Configuration, .*Local"):
        load_config(environ={})["Lcoal"]


def test_unknown_option_lists_the_valid_ones() -> None:
    message = r"\[Local\] has no option 'max_concurent'; valid options: kill_grace, max_concurrent"
    with pytest.raises(ConfigError, match=message):
        load_config(environ={})["Local"]["max_concurent"] = 1


def test_unknown_option_in_the_user_file_is_an_error(tmp_path: Path) -> None:
    user = tmp_path / "c.toml"
    user.write_text("[Local]\nmax_parallel = 3\n")
    with pytest.raises(ConfigError, match="max_parallel"):
        load_config(user, environ={})


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    user = tmp_path / "c.toml"
    user.write_text("[Local]\nmax_concurrent = = 3\n")
    with pytest.raises(ConfigError, match="line 2"):
        load_config(user, environ={})


def test_unknown_environment_variable_is_an_error() -> None:
    with pytest.raises(ConfigError, match="GANGA_ASYNC_LOCAL_MAXCONCURRENT is not a ganga-async option"):
        load_config(environ={"GANGA_ASYNC_LOCAL_MAXCONCURRENT": "3"})


def test_bad_environment_value_names_the_option() -> None:
    with pytest.raises(ConfigError, match=r"\[Local\] max_concurrent \(from environment\)"):
        load_config(environ={"GANGA_ASYNC_LOCAL_MAX_CONCURRENT": "many"})


def test_a_missing_explicit_user_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(tmp_path / "absent.toml", environ={})


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("GANGA_ASYNC_PIPELINE_SUBMIT_BATCH", "-1", r"\[Pipeline\] submit_batch .*must be above 0"),
    ("GANGA_ASYNC_MONITORING_POLL_INTERVAL", "nan", r"\[Monitoring\] poll_interval .*not a number"),
    ("GANGA_ASYNC_MONITORING_POLL_INTERVAL", "inf", r"\[Monitoring\] poll_interval .*not a number"),
    ("GANGA_ASYNC_REPOSITORY_FLUSH_INTERVAL", "-1", r"\[Repository\] flush_interval .*0 or more"),
    ("GANGA_ASYNC_SERVICE_MAX_COMMANDS", "0", r"\[Service\] max_commands .*must be above 0"),
    ("GANGA_ASYNC_GANGADIR", "", r"\[Configuration\] gangadir .*is empty"),
    ("GANGA_ASYNC_CONFIGURATION_USER", "../../x", r"\[Configuration\] user .*not a user name"),
    ("GANGA_ASYNC_CONFIGURATION_USER", "/etc", r"\[Configuration\] user .*not a user name"),
])
def test_a_value_out_of_its_range_is_refused_naming_the_option(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_config(environ={variable: value})


def test_a_runtime_assignment_out_of_range_is_refused_and_changes_nothing() -> None:
    config = load_config(environ={})
    with pytest.raises(ConfigError, match="must be above 0"):
        config["Pipeline"]["submit_batch"] = 0
    assert config["Pipeline"]["submit_batch"] == 256
    config["Local"]["max_concurrent"] = 0


@pytest.mark.parametrize("path", ["/etc/hostname", "/dev/null"])
def test_a_gangadir_that_is_a_file_is_refused(path: str) -> None:
    with pytest.raises(ConfigError, match=r"\[Configuration\] gangadir .*is not a directory"):
        load_config(environ={"GANGA_ASYNC_GANGADIR": path})
