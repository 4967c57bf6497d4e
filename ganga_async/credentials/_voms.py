"""Reading the VOMS attribute certificates (RFC 5755) that a VOMS proxy carries.

The ``cryptography`` package reads the proxy chain but not attribute certificates, so this walks
the DER of the proxy's VOMS extension (OID 1.3.6.1.4.1.8005.100.100.5) just far enough to get
each AC's VO, FQANs and validity period. Nothing is verified here: the grid middleware that
accepts the proxy does that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime

__all__ = ["VomsAttributes", "VOMS_EXTENSION_OID", "parse_voms_extension"]

VOMS_EXTENSION_OID = "1.3.6.1.4.1.8005.100.100.5"
_FQAN_ATTRIBUTE_OID = bytes([0x2B, 0x06, 0x01, 0x04, 0x01, 0xBE, 0x45, 0x64, 0x64, 0x04])
"""1.3.6.1.4.1.8005.100.100.4 (VOMS FQANs), DER-encoded."""


@dataclasses.dataclass(frozen=True, slots=True)
class VomsAttributes:
    """One attribute certificate: its VO, FQANs (``/lhcb/Role=production/Capability=NULL``)
    and validity, in epoch seconds."""

    vo: str
    fqans: tuple[str, ...]
    not_before: float
    not_after: float


class _DerError(ValueError):
    pass


def _items(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The (tag, content) elements one after another in ``data``."""
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise _DerError("truncated element")
        tag = data[pos]
        length = data[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or pos + count > len(data):
                raise _DerError("bad length")
            length = int.from_bytes(data[pos:pos + count], "big")
            pos += count
        if pos + length > len(data):
            raise _DerError("element longer than its container")
        yield tag, data[pos:pos + length]
        pos += length


def _one(data: bytes, tag: int) -> bytes:
    items = list(_items(data))
    if len(items) != 1 or items[0][0] != tag:
        raise _DerError(f"expected one element of tag {tag:#x}")
    return items[0][1]


def _time(tag: int, content: bytes) -> float:
    text = content.decode("ascii")
    if tag == 0x18:  # GeneralizedTime
        stamp = datetime.strptime(text.rstrip("Z")[:14], "%Y%m%d%H%M%S")
    elif tag == 0x17:  # UTCTime
        stamp = datetime.strptime(text.rstrip("Z")[:12], "%y%m%d%H%M%S")
    else:
        raise _DerError("validity is not a time")
    return stamp.replace(tzinfo=UTC).timestamp()


def _attribute_certificate(content: bytes) -> VomsAttributes:
    fields = list(_items(content))
    if not fields or fields[0][0] != 0x30:
        raise _DerError("an attribute certificate starts with its info")
    info = list(_items(fields[0][1]))
    # version, holder, issuer, signature, serialNumber, attrCertValidityPeriod, attributes, ...
    if len(info) < 7 or info[5][0] != 0x30 or info[6][0] != 0x30:
        raise _DerError("attribute certificate info is incomplete")
    period = list(_items(info[5][1]))
    if len(period) != 2:
        raise _DerError("validity period needs two times")
    not_before, not_after = (_time(tag, value) for tag, value in period)
    fqans: list[str] = []
    for tag, attribute in _items(info[6][1]):
        if tag != 0x30:
            continue
        parts = list(_items(attribute))
        if len(parts) != 2 or parts[0] != (0x06, _FQAN_ATTRIBUTE_OID):
            continue
        for _, syntax in _items(parts[1][1]):  # SET OF IetfAttrSyntax
            for part_tag, part in _items(syntax):
                if part_tag != 0x30:  # [0] policyAuthority comes first; values are a SEQUENCE
                    continue
                fqans.extend(value.decode("utf-8", "replace") for _, value in _items(part))
    vo = fqans[0].strip("/").split("/")[0] if fqans else ""
    return VomsAttributes(vo, tuple(fqans), not_before, not_after)


def parse_voms_extension(der: bytes) -> list[VomsAttributes]:
    """The attribute certificates in the DER value of a proxy's VOMS extension.

    Raises ValueError when the value is not the SEQUENCE OF SEQUENCE OF AttributeCertificate
    that VOMS writes.
    """
    found = []
    for outer_tag, outer in _items(_one(der, 0x30)):
        if outer_tag != 0x30:
            raise _DerError("expected a sequence of attribute certificates")
        for tag, content in _items(outer):
            if tag == 0x30:
                found.append(_attribute_certificate(content))
    return found
