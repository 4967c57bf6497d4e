"""Credentials: grid proxies, Kerberos tickets, AFS tokens and bearer tokens, and the manager
that gates submission and monitoring on their lifetimes.

Each type is a plugin of the ``ganga_async.credentials`` entry-point group; :mod:`.base`
describes the contract, :mod:`.manager` the gate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _plugins
from .base import Credential, CredentialInfo

if TYPE_CHECKING:
    from .afs import AFSToken
    from .kerberos import KerberosTicket
    from .manager import CredentialManager, Requirement
    from .store import CredentialStore
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

# The credential types are plugins, imported when first named; so are the manager and the
# store (a job file naming credentials needs only their base class).
__getattr__, __dir__ = _plugins.lazy_exports(__name__, {
    "AFSToken": ".afs", "BearerToken": ".token", "KerberosTicket": ".kerberos",
    "VomsProxy": ".x509", "X509Proxy": ".x509", "CredentialManager": ".manager",
    "Requirement": ".manager", "CredentialStore": ".store",
}, globals())
