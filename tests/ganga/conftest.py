"""The real grid credentials of ``tests/credentials`` (a throwaway PKI, VOMS proxies made by
voms-proxy-fake), for the credentials transcript."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "credentials"))

from realcreds import credential_tools, grid, pki  # noqa: E402, F401
