"""How the Condor driver reaches the schedd: HTCondor's ``htcondor2`` bindings, or its command-line
tools where the bindings are missing. Both are blocking; the driver calls them in worker threads.

Each client raises a plain exception whose text is HTCondor's own words; the driver decides from
them whether the schedd could not be reached (a retry) or refused (an error).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

__all__ = ["BindingsClient", "Client", "CommandsClient", "bindings_available"]


class Client(Protocol):
    """What the driver asks of a schedd."""

    def query(self, constraint: str, projection: list[str], limit: int = -1) -> Sequence[Mapping[str, Any]]:
        """The job ads in the queue that match ``constraint``."""

    def history(self, constraint: str, projection: list[str], match: int) -> Sequence[Mapping[str, Any]]:
        """Up to ``match`` job ads of the history that match ``constraint``, newest first."""

    def submit(self, description: dict[str, str], count: int) -> int:
        """Submit ``count`` procs of ``description`` as one cluster; its id."""

    def act(self, action: str, ids: list[str]) -> None:
        """``Remove`` or ``Release`` these clusters (``"12"``) and procs (``"12.3"``) at once."""


def bindings_available() -> bool:
    try:
        import htcondor2  # noqa: F401
    except ImportError:
        return False
    return True


class BindingsClient:
    """The schedd through ``htcondor2.Schedd``, found through the pool's configuration."""

    def __init__(self) -> None:
        import htcondor2
        self._htcondor = htcondor2
        self._schedd = htcondor2.Schedd()

    def query(self, constraint: str, projection: list[str], limit: int = -1) -> Sequence[Mapping[str, Any]]:
        return list(self._schedd.query(constraint, projection, limit=limit))

    def history(self, constraint: str, projection: list[str], match: int) -> Sequence[Mapping[str, Any]]:
        return list(self._schedd.history(constraint, projection, match=match))

    def submit(self, description: dict[str, str], count: int) -> int:
        return int(self._schedd.submit(self._htcondor.Submit(description), count=count).cluster())

    def act(self, action: str, ids: list[str]) -> None:
        self._schedd.act(getattr(self._htcondor.JobAction, action), ids)


class CommandsClient:
    """The schedd through ``condor_q``, ``condor_history``, ``condor_submit``, ``condor_rm`` and
    ``condor_release`` on ``PATH``, without a shell, each within ``seconds``. A submission's
    description is written next to its manifest (``<initialdir>/<batch name>.sub``)."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def _run(self, argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self._seconds,
                                  stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise RuntimeError(f"{argv[0]} is not on PATH: install HTCondor's tools or the bindings "
                               "(pip install 'ganga-async[condor]')") from None
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{argv[0]} took more than {self._seconds:g} s") from None
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip() or done.stdout.strip()
                                or f"{argv[0]} exited with code {done.returncode}")
        return done.stdout

    @staticmethod
    def _ads(text: str) -> list[dict[str, Any]]:
        text = text.strip()
        if not text:
            return []
        loaded = json.loads(text)
        return [ad for ad in loaded if isinstance(ad, dict)] if isinstance(loaded, list) else []

    def query(self, constraint: str, projection: list[str], limit: int = -1) -> Sequence[Mapping[str, Any]]:
        argv = ["condor_q", "-allusers", "-json", "-constraint", constraint,
                "-attributes", ",".join(projection)]
        if limit > 0:
            argv += ["-limit", str(limit)]
        return self._ads(self._run(argv))

    def history(self, constraint: str, projection: list[str], match: int) -> Sequence[Mapping[str, Any]]:
        return self._ads(self._run(["condor_history", "-json", "-constraint", constraint,
                                    "-match", str(match), "-attributes", ",".join(projection)]))

    def submit(self, description: dict[str, str], count: int) -> int:
        path = Path(description["initialdir"]) / f"{description['batch_name']}.sub"
        lines = [f"{key} = {value}" for key, value in description.items()]
        path.write_text("\n".join([*lines, f"queue {count}", ""]))
        out = self._run(["condor_submit", "-terse", str(path)])
        first = out.strip().split(" ", 1)[0]
        cluster, dot, _ = first.partition(".")
        if not dot or not cluster.isdigit():
            raise RuntimeError(f"condor_submit printed no job id: {out.strip()!r}")
        return int(cluster)

    def act(self, action: str, ids: list[str]) -> None:
        self._run(["condor_rm" if action == "Remove" else "condor_release", *ids])
