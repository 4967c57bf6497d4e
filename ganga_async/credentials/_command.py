"""Running a credential's external commands: no shell, a timeout, and nothing secret in errors."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from collections.abc import Mapping, Sequence

import anyio

from .._exceptions import CredentialError

__all__ = ["Outcome", "run_command", "scrub"]

_SECRETS = re.compile(
    r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----"  # PEM blocks (keys, proxies)
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*",  # JWTs
    re.DOTALL,
)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did. ``stdout`` may hold secrets (a token): never log it."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def complaint(self) -> str:
        """The last three lines of stderr with anything that looks like a key or token removed."""
        text = scrub(self.stderr).strip().splitlines()
        return " / ".join(line.strip() for line in text[-3:] if line.strip())


def scrub(text: str) -> str:
    """``text`` with PEM blocks and JWT-looking strings replaced by ``[redacted]``."""
    return _SECRETS.sub("[redacted]", text)


async def run_command(
    argv: Sequence[str],
    *,
    timeout: float,  # noqa: ASYNC109 (each credential has its own command timeout)
    env: Mapping[str, str] | None = None,
    interactive: bool = False,
) -> Outcome:
    """Run ``argv`` (no shell) and return its outcome, whatever its exit code.

    Non-interactive runs get no standard input and a new session, so a command that wants a
    password cannot reach a terminal and fails instead of hanging. ``interactive`` runs share
    this process's terminal (for ``ganga-async credentials renew``) and capture nothing.
    A missing command, or one still running after ``timeout`` seconds (it is killed), raises
    :class:`CredentialError`.
    """
    if not argv:
        raise CredentialError("an empty command was given; name the program and its arguments")
    name = argv[0]
    full_env = {**os.environ, **env} if env else None
    try:
        with anyio.fail_after(timeout):
            if interactive:
                done = await anyio.run_process(list(argv), stdin=None, stdout=None, stderr=None,
                                               env=full_env, check=False)
            else:
                done = await anyio.run_process(list(argv), stdin=subprocess.DEVNULL, env=full_env,
                                               start_new_session=True, check=False)
    except FileNotFoundError:
        raise CredentialError(
            f"`{name}` is not installed (not found on PATH); install it, or give the credential "
            "another command"
        ) from None
    except PermissionError:
        raise CredentialError(f"`{name}` cannot be run (permission denied)") from None
    except TimeoutError:
        raise CredentialError(
            f"`{name}` did not finish within {timeout:g} s and was stopped; check that it can run "
            "without a terminal (it may be waiting for a password)"
        ) from None
    return Outcome(
        tuple(argv), done.returncode,
        (done.stdout or b"").decode(errors="replace"), (done.stderr or b"").decode(errors="replace"),
    )
