"""Credentials: grid proxies, Kerberos tickets, AFS tokens and bearer tokens, and the manager
that gates submission and monitoring on their lifetimes.

Each type is a plugin of the ``ganga_async.credentials`` entry-point group; :mod:`.base`
describes the contract, :mod:`.manager` the gate.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import Credential, CredentialInfo
from .manager import CredentialManager, Requirement
from .store import CredentialStore

if TYPE_CHECKING:
    from .afs import AFSToken
    from .kerberos import KerberosTicket
    from .token import BearerToken
    from .x509 import VomsProxy, X509Proxy

__all__ = [
    "AFSToken",
    "BearerToken",
    "Credential",
    "CredentialInfo",
    "CredentialManager",
    "CredentialStore",
    "KerberosTicket",
    "Requirement",
    "VomsProxy",
    "X509Proxy",
]

LAZY = {"AFSToken": ".afs", "BearerToken": ".token", "KerberosTicket": ".kerberos",
        "VomsProxy": ".x509", "X509Proxy": ".x509"}
"""The credential types, each imported when first named (as plugins are), by module."""


def __getattr__(name: str) -> Any:
    module = LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *LAZY})
