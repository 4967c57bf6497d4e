"""A real one-node Slurm cluster for the backend tests, started by the project's own script.

``slurm_cluster`` runs ``scripts/slurm-up.sh`` once per session (it installs Slurm from Debian's
packages when missing and leaves a healthy cluster alone) and puts its ``SLURM_CONF`` in the
environment. The cluster stays up afterwards for the next run; ``scripts/slurm-down.sh`` stops
it. Where it cannot start (not root, no apt-get) the tests skip, except under ``CI=true``,
where they fail: CI must run them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ganga_async import Config

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; with CI=true the Slurm tests must run, not skip")
    pytest.skip(why)


def cluster_script(name: str, *args: str) -> str:
    """Run ``scripts/<name>`` and return its stdout; a failure fails the test with its log."""
    done = subprocess.run([str(SCRIPTS / name), *args], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"scripts/{name} {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[str]:
    """The ``SLURM_CONF`` of a running cluster, also set in ``os.environ`` for the session."""
    if os.geteuid() != 0:
        _unavailable("the Slurm tests start a cluster with scripts/slurm-up.sh, which needs root")
    if shutil.which("sbatch") is None and shutil.which("apt-get") is None:
        _unavailable("Slurm is not installed and there is no apt-get to install it")
    match = re.search(r"export SLURM_CONF='([^']+)'", cluster_script("slurm-up.sh"))
    assert match, "scripts/slurm-up.sh printed no SLURM_CONF"
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = match.group(1)
    yield match.group(1)
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous


@pytest.fixture
def slurm_config(config: Config) -> Config:
    """The test configuration with Slurm polled often, so the tests do not wait on the poller."""
    config["Slurm"]["poll_min"] = 0.3
    config["Slurm"]["poll_max"] = 1.0
    config["Slurm"]["heartbeat"] = 2.0
    return config


@pytest.fixture
def slurm_script() -> Callable[..., str]:
    """Runs one of the cluster scripts: ``slurm_script("slurm-down.sh", "slurmctld")``."""
    return cluster_script


_CONDOR_CLIENT_ENV = ("CONDOR_CONFIG", "_CONDOR_SEC_TOKEN_DIRECTORY",
                      "_CONDOR_SEC_CLIENT_AUTHENTICATION_METHODS")


@pytest.fixture(scope="session")
def condor_pool() -> Iterator[dict[str, str]]:
    """A running single-node HTCondor pool (``scripts/condor-up.sh``): its exports, the client
    ones (``CONDOR_CONFIG`` and the token) also set in ``os.environ`` for the session."""
    if os.geteuid() != 0:
        _unavailable("the HTCondor tests start a pool with scripts/condor-up.sh, which needs root")
    if shutil.which("debootstrap") is None and shutil.which("apt-get") is None:
        _unavailable("the HTCondor pool is built with debootstrap, and there is no apt-get to install it")
    try:
        import htcondor2
    except ImportError:
        _unavailable("the htcondor2 bindings are missing: pip install 'ganga-async[condor]'")
    exports = dict(re.findall(r"export (\w+)='([^']*)'", cluster_script("condor-up.sh")))
    assert "CONDOR_CONFIG" in exports, "scripts/condor-up.sh printed no CONDOR_CONFIG"
    previous = {name: os.environ.get(name) for name in _CONDOR_CLIENT_ENV}
    for name in _CONDOR_CLIENT_ENV:
        os.environ[name] = exports[name]
    htcondor2.reload_config()
    yield exports
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def condor_config(config: Config) -> Config:
    """The test configuration with the schedd asked often, so the tests do not wait on the poller."""
    config["Condor"]["poll_min"] = 0.3
    config["Condor"]["poll_max"] = 1.0
    config["Condor"]["heartbeat"] = 2.0
    return config


@pytest.fixture
def condor_cli(condor_pool: dict[str, str]) -> Callable[..., str]:
    """Runs one of the pool's command-line tools inside its chroot: ``condor_cli("condor_rm", "12.3")``."""
    def run(*argv: str) -> str:
        done = subprocess.run([str(Path(condor_pool["HTCONDOR_BIN"]) / argv[0]), *argv[1:]],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr or done.stdout}"
        return done.stdout
    return run
