"""A credential type whose optional dependency is not installed names the extra to install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ganga_async import CredentialError
from ganga_async.credentials.token import _claims
from ganga_async.credentials.x509 import read_proxy


def test_reading_a_proxy_without_cryptography_names_the_grid_extra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = tmp_path / "x509up"
    proxy.write_text("-----BEGIN CERTIFICATE-----\n")
    proxy.chmod(0o600)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(CredentialError, match=r"needs the cryptography package.*"
                                              r"pip install 'ganga-async\[grid\]'"):
        read_proxy(str(proxy))


def test_reading_a_token_without_pyjwt_names_the_tokens_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jwt", None)
    with pytest.raises(CredentialError, match=r"needs the PyJWT package.*"
                                              r"pip install 'ganga-async\[tokens\]'"):
        _claims("a.b.c", "$BEARER_TOKEN")
