"""The credentials on this machine now, and the ones the configuration says jobs need.

``CredentialStore().get_credentials()`` (Ganga's ``getCredentials`` works too) looks in the
default places: the grid proxy (``$X509_USER_PROXY`` or ``/tmp/x509up_u<uid>``; a
:class:`VomsProxy` when it carries VOMS attributes), the Kerberos ticket cache, AFS tokens and
the WLCG bearer token, and adds the entries of ``[Credentials] defaults`` that exist.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Sequence
from typing import Any

from .. import _plugins
from .._exceptions import ConfigError, RenewalError
from ..config import Config, credential_default, load_config
from .base import Credential, CredentialInfo

__all__ = ["CredentialStore", "DefaultCredential", "default_entries"]


@dataclasses.dataclass(frozen=True, slots=True)
class DefaultCredential:
    """An entry of ``[Credentials] defaults``: a credential and the jobs it applies to."""

    name: str
    credential: Credential
    backends: tuple[str, ...]
    applications: tuple[str, ...]

    def applies(self, backend: str, application: str) -> bool:
        """True for a job on ``backend`` running ``application`` (empty lists match all)."""
        return ((not self.backends or backend in self.backends)
                and (not self.applications or application in self.applications))


def _entry(name: str, data: Any) -> DefaultCredential:
    credential, scopes = credential_default(name, data)
    if not isinstance(credential, Credential):
        raise ConfigError(f"defaults.{name}: {credential.plugin_name} is not a credential type")
    return DefaultCredential(name, credential, scopes["backends"], scopes["applications"])


def default_entries(config: Config) -> list[DefaultCredential]:
    """The entries of ``[Credentials] defaults``, built."""
    return [_entry(name, data) for name, data in config["Credentials"]["defaults"].items()]


class CredentialStore:
    """The credentials on this machine: ``await store.get_credentials()``; ``renew``.

    ``config`` (default: :func:`~ganga_async.load_config`) supplies ``[Credentials]
    defaults`` and ``command_timeout``.
    """

    def __init__(self, config: Config | None = None) -> None:
        self.config = config if config is not None else load_config()

    def configured(self, credential: Credential) -> Credential:
        """``credential``, set up with this store's configuration (``[Credentials]
        command_timeout``) and returned."""
        credential.set_command_timeout(self.config["Credentials"]["command_timeout"])
        return credential

    async def get_credentials(self, *, include_missing: bool = False) -> list[Credential]:
        """The credentials found in the default places, then the configured defaults, each once.

        With ``include_missing`` the configured defaults that are absent are listed too.
        """
        found: list[Credential] = []
        proxy = self.configured(_builtin("X509Proxy")())
        proxy_info = await proxy.info()
        if proxy_info.exists:
            vo = proxy_info.details.get("vo")
            found.append(self.configured(_builtin("VomsProxy")(vo=vo)) if vo else proxy)
        candidates: list[Credential] = [_builtin("BearerToken")()]
        if shutil.which("klist"):
            candidates.append(_builtin("KerberosTicket")())
        if shutil.which("tokens"):
            candidates.append(_builtin("AFSToken")())
        for credential in candidates:
            if await self.configured(credential).exists():
                found.append(credential)
        keys = {c.key() for c in found}
        for entry in default_entries(self.config):
            credential = self.configured(entry.credential)
            if credential.key() in keys:
                continue
            if include_missing or await credential.exists():
                found.append(credential)
                keys.add(credential.key())
        return found

    getCredentials = get_credentials  # noqa: N815 (Ganga's name)

    async def renew(
        self, type_name: str | None = None, *, interactive: bool = False
    ) -> list[tuple[Credential, CredentialInfo | RenewalError]]:
        """Renew every credential found (only those of ``type_name`` when given, e.g.
        ``"VomsProxy"``); return each with its new state or the error that stopped it."""
        results: list[tuple[Credential, CredentialInfo | RenewalError]] = []
        for credential in await self.renewable(type_name):
            try:
                results.append((credential, await credential.renew(interactive=interactive)))
            except RenewalError as exc:
                results.append((credential, exc))
        return results

    async def renewable(self, type_name: str | None = None) -> list[Credential]:
        """What :meth:`renew` renews: every credential found and every configured default, or
        those of ``type_name`` (a type with none found gives its default place)."""
        if type_name is not None and type_name not in _plugins.available("credential"):
            names = ", ".join(_plugins.available("credential"))
            raise ConfigError(f"unknown credential type {type_name!r}; available: {names}")
        chosen = [c for c in await self.get_credentials(include_missing=True)
                  if type_name is None or c.plugin_name == type_name]
        if not chosen and type_name is not None:
            cls: type[Credential] = _plugins.load("credential", type_name)
            chosen = [self.configured(cls())]
        return chosen

    def min_time_left(self, backend: str) -> float:
        """``[Credentials] min_time_left`` for ``backend`` (its override when there is one)."""
        section = self.config["Credentials"]
        by_backend: dict[str, float] = section["min_time_left_by_backend"]
        return float(by_backend.get(backend, section["min_time_left"]))

    def valid_for(self, info: CredentialInfo, backends: Sequence[str] | None = None) -> list[str]:
        """The backends (default: every installed one) for which ``info`` has enough time left."""
        names = _plugins.available("backend") if backends is None else backends
        return [name for name in names if info.lasts(self.min_time_left(name))]


def _builtin(name: str) -> Callable[..., Credential]:
    """One of the credential types shipped with ganga-async, imported on first use like any
    plugin (importing them all made every ``import ganga_async`` slower)."""
    cls: Callable[..., Credential] = _plugins.load("credential", name)
    return cls
