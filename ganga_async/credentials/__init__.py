"""Credentials: grid proxies, Kerberos tickets, AFS tokens and bearer tokens, and the manager
that gates submission and monitoring on their lifetimes.

Each type is a plugin of the ``ganga_async.credentials`` entry-point group; :mod:`.base`
describes the contract, :mod:`.manager` the gate.
"""

from .afs import AFSToken
from .base import Credential, CredentialInfo
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
