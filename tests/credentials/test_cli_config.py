"""`ganga-async credentials` run for real, and the [Credentials] configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from realcreds import make_token, token_renewer, write_private

from ganga_async import ConfigError, Job, JobSpecError, VomsProxy, load_config
from ganga_async._jobfile import job_from_dict


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ganga_async.cli", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **env})


@pytest.fixture
def no_grid_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BEARER_TOKEN", "BEARER_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "no-proxy"))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-ccache'}")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))


def test_the_table_and_json_list_a_token_with_the_backends_it_is_valid_for(
    no_grid_credentials: None, tmp_path: Path
) -> None:
    path = write_private(tmp_path / "token", make_token(7200))
    done = cli("credentials", "--json", BEARER_TOKEN_FILE=str(path))
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["type"] == "BearerToken" and row["location"] == str(path)
    assert row["identity"] == "alice (https://tokens.test.local)"
    assert 7190 <= row["time_left"] <= 7200 and "Local" in row["valid_for"]
    assert make_token(7200)[:20] not in done.stdout
    only = cli("credentials", "--json", "BearerToken", BEARER_TOKEN_FILE=str(path))
    assert [r["location"] for r in json.loads(only.stdout)] == [str(path)]
    assert json.loads(cli("credentials", "--json", "VomsProxy", BEARER_TOKEN_FILE=str(path)).stdout) == []
    table = cli("credentials", GANGA_ASYNC_CREDENTIALS_MIN_TIME_LEFT="3h", BEARER_TOKEN_FILE=str(path))
    assert "BearerToken" in table.stdout and "1 h 59 min" in table.stdout and "too short" in table.stdout


def test_renew_of_one_type_runs_its_command_and_reports(no_grid_credentials: None, tmp_path: Path) -> None:
    path = write_private(tmp_path / "token", make_token(10))
    count = tmp_path / "count"
    config = tmp_path / "config.toml"
    command = json.dumps(token_renewer(path, 3600, count))
    config.write_text(f'[Credentials.defaults.site]\ntype = "BearerToken"\ntoken_file = "{path}"\n'
                      f"renew_command = {command}\n")
    done = cli("credentials", "renew", "BearerToken", GANGA_ASYNC_CONFIG=str(config))
    assert done.returncode == 0, done.stderr
    assert "renewed, 59 min left" in done.stdout or "renewed, 1 h left" in done.stdout
    failed = cli("credentials", "renew", "KerberosTicket", GANGA_ASYNC_CONFIG=str(config),
                 PATH=str(tmp_path))
    assert failed.returncode == 2 and "error: KerberosTicket" in failed.stderr


def test_durations_accept_seconds_and_text() -> None:
    config = load_config()
    assert config["Credentials"]["min_time_left"] == 3600.0
    config["Credentials"]["min_time_left"] = "1h30m"
    assert config["Credentials"]["min_time_left"] == 5400.0
    config["Credentials"]["min_time_left"] = 90
    assert config["Credentials"]["min_time_left"] == 90.0
    with pytest.raises(ConfigError, match=r"\[Credentials\] min_time_left .*'an hour' is not a duration"):
        config["Credentials"]["min_time_left"] = "an hour"
    config["Credentials"]["min_time_left_by_backend"] = {"Local": "5m"}
    assert config["Credentials"]["min_time_left_by_backend"] == {"Local": 300.0}


def test_environment_variables_set_durations_and_tables() -> None:
    config = load_config(environ={"GANGA_ASYNC_CREDENTIALS_MIN_TIME_LEFT": "30m",
                                  "GANGA_ASYNC_CREDENTIALS_MIN_TIME_LEFT_BY_BACKEND": '{Local = "2h"}'})
    assert config["Credentials"]["min_time_left"] == 1800.0
    assert config["Credentials"]["min_time_left_by_backend"] == {"Local": 7200.0}


def test_bad_default_entries_name_the_entry_and_the_fix(tmp_path: Path) -> None:
    config = load_config()
    with pytest.raises(ConfigError, match=r"defaults\.lhcb: credential\.type: unknown credential 'Voms'"):
        config["Credentials"]["defaults"] = {"lhcb": {"type": "Voms", "vo": "lhcb"}}
    with pytest.raises(ConfigError, match=r"defaults\.lhcb\.backends must be a list"):
        config["Credentials"]["defaults"] = {"lhcb": {"type": "VomsProxy", "backends": "Dirac"}}
    with pytest.raises(ConfigError, match=r"defaults\.lhcb: credential\.colour: VomsProxy has no field"):
        config["Credentials"]["defaults"] = {"lhcb": {"type": "VomsProxy", "colour": "red"}}


def test_job_files_and_jobs_carry_credentials() -> None:
    job = job_from_dict({"credentials": [{"type": "VomsProxy", "vo": "lhcb"}]}, "job.toml")
    assert job.credentials == [VomsProxy(vo="lhcb")]
    assert job.spec()["credentials"] == [{"type": "VomsProxy", "renew_command": [], "proxy_path": "",
                                          "vo": "lhcb", "role": "", "group": ""}]
    with pytest.raises(JobSpecError, match=r"job.toml: credentials\[0\]"):
        job_from_dict({"credentials": [{"type": "Nope"}]}, "job.toml")
    with pytest.raises(JobSpecError, match="credentials"):
        Job(credentials=["VomsProxy"])  # type: ignore[list-item]
