"""Paths to the files shipped beside the package: ``config/`` and ``workers/``.

In a wheel they live in ``ganga_async/_shipped/``; in a source checkout (editable install)
they are the top-level directories of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped(kind: str, name: str) -> Path:
    """The path of ``kind/name`` (kind is ``config`` or ``workers``)."""
    for base in (_PACKAGE / "_shipped" / kind, _PACKAGE.parent / kind):
        candidate = base / name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{kind}/{name} is missing from the ganga-async installation ({_PACKAGE})")
