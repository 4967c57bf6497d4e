"""A Ganga user's script file (no ``if __name__ == "__main__":`` guard) on the engine's own
Dask cluster, in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _dask_helpers import require_distributed

pytestmark = pytest.mark.slow

require_distributed()


def test_a_script_without_a_main_guard_runs_on_the_engines_local_cluster(tmp_path: Path) -> None:
    """Workers started with multiprocessing would import the user's script again in every worker
    (which then opened a second engine on the gangadir, and no worker started): the engine's
    cluster runs its scheduler and workers as subprocesses of their own."""
    script = tmp_path / "analysis.py"
    script.write_text(textwrap.dedent("""
        from ganga_async.gpi import *
        j = Job(application=Executable(exe="/bin/sh"),
                splitter=ArgSplitter(args=[["-c", f"echo line {i}"] for i in range(3)]),
                backend=Dask())
        j.submit()
        j.wait(timeout=90)
        print("status:", j.status, open(j.subjobs[2].outputdir + "stdout").read().strip())
    """))
    env = dict(os.environ, GANGA_ASYNC_DASK_LOCAL_WORKERS="2")
    result = subprocess.run([sys.executable, "-W", "error", str(script)], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "status: completed line 2" in result.stdout, result.stdout + result.stderr
