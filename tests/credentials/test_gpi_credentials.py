"""The credential classes of the plain-Python interface: the same methods, without await."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from realcreds import make_token, write_private


def test_gpi_credentials_answer_without_await_and_the_store_lists_them(tmp_path: Path) -> None:
    path = write_private(tmp_path / "token", make_token(5400))
    script = textwrap.dedent(f"""
        from ganga_async.gpi import *
        token = BearerToken(token_file={str(path)!r})
        print(int(token.timeleft() // 60), token.identity(), token.is_valid("1h"), token.exists())
        print([type(c).__name__ for c in credential_store.getCredentials()])
        print(repr(credential_store).splitlines()[0])
        j = Job(credentials=[token])
        j.submit()
        j.wait(timeout=30)
        print(j.status)
    """)
    env = {**os.environ, "BEARER_TOKEN_FILE": str(path), "X509_USER_PROXY": str(tmp_path / "none"),
           "KRB5CCNAME": f"FILE:{tmp_path / 'none'}", "GANGA_ASYNC_MONITORING_POLL_INTERVAL": "0.2"}
    done = subprocess.run([sys.executable, "-W", "error", "-c", script], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "89 alice (https://tokens.test.local) True True",
        "['BearerToken']",
        "Credentials (1)",
        "completed",
    ]
