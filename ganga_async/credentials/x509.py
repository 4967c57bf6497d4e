"""X.509 grid proxies: :class:`X509Proxy` (RFC 3820) and :class:`VomsProxy` (with VOMS attributes).

The proxy file is ``proxy_path``, else ``$X509_USER_PROXY``, else ``/tmp/x509up_u<uid>``. It is
read with the ``cryptography`` package: its lifetime is the earliest ``notAfter`` of the chain
(and, for a VomsProxy, of the VO's attribute certificate); its identity is the subject of the
user certificate the proxies derive from, in the grid's ``/DC=.../CN=...`` form. A file that
group or others may open, or that belongs to another user, is refused as the grid tools do.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Hashable
from typing import TYPE_CHECKING, ClassVar

import anyio

from .._exceptions import CredentialError
from ._voms import VOMS_EXTENSION_OID, VomsAttributes, parse_voms_extension
from .base import Credential, CredentialInfo, check_private_file, file_signature, missing_extra

__all__ = ["X509Proxy", "VomsProxy", "ProxyChain", "read_proxy", "default_proxy_path"]

if TYPE_CHECKING:
    from cryptography import x509

_PROXY_CERT_INFO = ("1.3.6.1.5.5.7.1.14",  # RFC 3820
                    "1.3.6.1.4.1.3536.1.222")  # pre-RFC Globus proxies


def default_proxy_path() -> str:
    """``$X509_USER_PROXY`` or ``/tmp/x509up_u<uid>``, as the grid tools look for it."""
    return os.environ.get("X509_USER_PROXY") or f"/tmp/x509up_u{os.getuid()}"


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyChain:
    """What a proxy file says: the user's DN, the chain's earliest notAfter, its VOMS ACs."""

    identity: str
    not_after: float
    attributes: tuple[VomsAttributes, ...]


def _grid_dn(name: x509.Name) -> str:
    return "".join(
        f"/{attribute.rfc4514_attribute_name}={attribute.value!s}"
        for rdn in name.rdns for attribute in rdn
    )


def _is_proxy(cert: x509.Certificate) -> bool:
    return any(ext.oid.dotted_string in _PROXY_CERT_INFO for ext in cert.extensions)


def read_proxy(path: str) -> ProxyChain:
    """Read the proxy at ``path`` (blocking). Raises CredentialError for a missing, refused or
    corrupt file; the message never quotes the file."""
    # cryptography is imported on first use: it costs every ganga-async start otherwise, and
    # only the [grid] extra installs it.
    try:
        from cryptography import x509
        from cryptography.x509.oid import ObjectIdentifier
    except ImportError as exc:
        raise missing_extra("cryptography", "grid", "reading an X.509 or VOMS proxy") from exc

    data = check_private_file(path, "proxy")
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CredentialError(
            f"the proxy at {path} is not a PEM certificate chain (corrupt or truncated); make a new "
            "one with voms-proxy-init or grid-proxy-init") from None
    if not chain:
        raise CredentialError(f"the proxy at {path} holds no certificate")
    user = next((cert for cert in chain if not _is_proxy(cert)), chain[-1])
    attributes: list[VomsAttributes] = []
    for cert in chain:
        try:
            extension = cert.extensions.get_extension_for_oid(ObjectIdentifier(VOMS_EXTENSION_OID))
        except x509.ExtensionNotFound:
            continue
        value = extension.value
        raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
        try:
            attributes.extend(parse_voms_extension(raw))
        except ValueError:
            raise CredentialError(
                f"the VOMS attributes of the proxy at {path} cannot be read (corrupt); make a new "
                "proxy with voms-proxy-init") from None
        break
    return ProxyChain(
        identity=_grid_dn(user.subject),
        not_after=min(cert.not_valid_after_utc.timestamp() for cert in chain),
        attributes=tuple(attributes),
    )


@dataclasses.dataclass(kw_only=True, repr=False)
class X509Proxy(Credential):
    """An RFC 3820 grid proxy: ``X509Proxy(proxy_path="")``.

    Renewal runs ``grid-proxy-init`` (with ``-out proxy_path`` when a path is given), or
    ``renew_command``.
    """

    renew_hint: ClassVar[str] = "grid-proxy-init"

    proxy_path: str = ""

    @property
    def location(self) -> str:
        return os.path.expanduser(self.proxy_path) if self.proxy_path else default_proxy_path()

    def _signature(self) -> Hashable:
        return file_signature(self.location)

    def default_renew_command(self) -> list[str]:
        command = ["grid-proxy-init"]
        if self.proxy_path:
            command += ["-out", self.location]
        return command

    async def _chain(self) -> ProxyChain:
        return await anyio.to_thread.run_sync(read_proxy, self.location)

    async def _read(self) -> CredentialInfo:
        chain = await self._chain()
        details = {"vo": chain.attributes[0].vo} if chain.attributes else {}
        return self._info(identity=chain.identity, expiry=chain.not_after, details=details)


@dataclasses.dataclass(kw_only=True, repr=False)
class VomsProxy(X509Proxy):
    """A grid proxy with VOMS attributes: ``VomsProxy(vo="lhcb", role="production", group="",
    proxy_path="")``.

    Its lifetime ends with the chain or with the VO's attribute certificate, whichever is first.
    A proxy without an attribute certificate for ``vo`` (or without the FQAN that ``group`` and
    ``role`` ask for) is not usable. Renewal runs ``voms-proxy-init -voms vo[:/vo/group/Role=role]``
    (``-out proxy_path`` when a path is given), or ``renew_command``.
    """

    renew_hint: ClassVar[str] = "voms-proxy-init"

    vo: str = ""
    role: str = ""
    group: str = ""

    def _fqan(self) -> str:
        if not self.vo or not (self.role or self.group):
            return ""
        group = self.group if self.group.startswith("/") else f"/{self.vo}/{self.group}".rstrip("/")
        return f"{group}/Role={self.role}" if self.role else group

    def default_renew_command(self) -> list[str]:
        command = ["voms-proxy-init"]
        if self.vo:
            fqan = self._fqan()
            command += ["-voms", f"{self.vo}:{fqan}" if fqan else self.vo]
        if self.proxy_path:
            command += ["-out", self.location]
        return command

    async def _read(self) -> CredentialInfo:
        chain = await self._chain()
        where = self.location
        if not chain.attributes:
            raise CredentialError(f"the proxy at {where} has no VOMS attributes; make one with "
                                  f"voms-proxy-init -voms {self.vo or '<vo>'}")
        matching = [ac for ac in chain.attributes if not self.vo or ac.vo == self.vo]
        if not matching:
            held = ", ".join(sorted({ac.vo for ac in chain.attributes}))
            raise CredentialError(f"the proxy at {where} has VOMS attributes for {held}, not for "
                                  f"{self.vo}; make one with voms-proxy-init -voms {self.vo}")
        ac = matching[0]
        fqan = self._fqan()
        if fqan and not any(f == fqan or f.startswith(fqan + "/") for f in ac.fqans):
            raise CredentialError(f"the proxy at {where} has no FQAN {fqan} (it has "
                                  f"{', '.join(ac.fqans)}); make one with voms-proxy-init -voms "
                                  f"{self.vo}:{fqan}")
        return self._info(identity=chain.identity, expiry=min(chain.not_after, ac.not_after),
                          details={"vo": ac.vo, "fqans": list(ac.fqans)})
