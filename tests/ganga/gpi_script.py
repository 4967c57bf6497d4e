"""Running a user's GPI script in a fresh interpreter, as Ganga users run theirs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def run_script(script: str, *, timeout: float = 60, check: bool = True) -> str:
    """Run ``script`` (dedented) with ``python -c`` in a fresh interpreter under the test's
    isolated gangadir and configuration; its stdout. With ``check`` it must exit 0."""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(script)],
        env=dict(os.environ), capture_output=True, text=True, timeout=timeout,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def lines(out: str) -> dict[str, str]:
    """``key: value`` lines of a script's output, as a dict."""
    found = {}
    for line in out.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            found[key] = value
    return found
