"""Real credentials for the credential tests: a grid PKI made here and proxies made by the grid
tools, an MIT KDC on loopback, and JWTs signed here.

The tools come from Debian's packages through ``scripts/credentials-up.sh``; the KDC is started
by ``scripts/kdc.sh`` for the session. Where that cannot happen the tests skip, and fail when
``CI=true``.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
JWT_KEY = "k" * 32


def unavailable(reason: str) -> None:
    """Skip the test, or fail it under CI, where every credential test must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: credential tests must not skip)")
    pytest.skip(reason)


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` with mode 0600 (atomically, as the real tools do)."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(temporary, path)
    return path


def make_token(left: float, sub: str = "alice", iss: str = "https://tokens.test.local") -> str:
    """A JWT signed here that expires ``left`` seconds from now."""
    return jwt.encode({"sub": sub, "iss": iss, "exp": int(time.time() + left)}, JWT_KEY,
                      algorithm="HS256")


TOKEN_WRITER = """
import os, sys, time, jwt
path, left, count = sys.argv[1], float(sys.argv[2]), sys.argv[3]
with open(count, "a") as f:
    f.write("renewal\\n")
time.sleep(float(sys.argv[4]) if len(sys.argv) > 4 else 0)
token = jwt.encode({"sub": "alice", "exp": int(time.time() + left)}, "k" * 32, algorithm="HS256")
fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, token.encode())
os.close(fd)
os.replace(path + ".tmp", path)
"""


def token_renewer(path: Path, left: float, count: Path, delay: float = 0.0) -> list[str]:
    """A real renewal command: a Python process that logs its run in ``count`` and writes a
    new token good for ``left`` seconds."""
    return [sys.executable, "-c", TOKEN_WRITER, str(path), str(left), str(count), str(delay)]


def renewals(count: Path) -> int:
    return len(count.read_text().splitlines()) if count.exists() else 0


@pytest.fixture(scope="session")
def credential_tools() -> None:
    """The grid and Kerberos tools, installed by the project's script."""
    done = subprocess.run([str(SCRIPTS / "credentials-up.sh")], capture_output=True, text=True)
    if done.returncode != 0:
        unavailable(f"credentials-up.sh failed: {done.stderr.strip()[-400:]}")


# -- grid -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Pki:
    """A throwaway grid PKI: CA, user and "VOMS host" certificates, trust directory."""

    dir: Path
    usercert: Path
    userkey: Path
    userkey_encrypted: Path
    hostcert: Path
    hostkey: Path
    certdir: Path
    user_dn: str = "/DC=test/DC=local/OU=People/CN=Test User"

    def env(self) -> dict[str, str]:
        return {"X509_CERT_DIR": str(self.certdir), "X509_USER_CERT": str(self.usercert),
                "X509_USER_KEY": str(self.userkey), "RANDFILE": str(self.dir / ".rnd")}

    def grid_proxy_init(self, out: Path, valid: str = "0:10", *extra: str) -> list[str]:
        return ["grid-proxy-init", "-q", "-bits", "1024", "-valid", valid, "-cert", str(self.usercert),
                "-key", str(self.userkey), "-out", str(out), *extra]

    def make_proxy(self, out: Path, valid: str = "0:10") -> Path:
        run(self.grid_proxy_init(out, valid), self.env())
        return out

    def make_voms_proxy(self, out: Path, left: int, vo: str = "testvo",
                        fqans: tuple[str, ...] = ("/testvo/Role=NULL/Capability=NULL",
                                                  "/testvo/prod/Role=admin")) -> Path:
        """A VOMS proxy made by voms-proxy-fake: the proxy has ``left`` seconds, the AC an hour."""
        argv = ["voms-proxy-fake", "-q", "-cert", str(self.usercert), "-key", str(self.userkey),
                "-out", str(out), "-hours", "1", "-voms", vo, "-hostcert", str(self.hostcert),
                "-hostkey", str(self.hostkey), "-uri", "voms.test.local:15000", "-bits", "1024",
                "-pastproxy", str(3600 - left)]
        for fqan in fqans:
            argv += ["-fqan", fqan]
        run(argv, self.env())
        return out


def run(argv: list[str], env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(argv, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
    assert done.returncode == 0, f"{argv[0]} failed: {done.stderr}"
    return done.stdout


def _make_pki(base: Path) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
        return x509.Name([x509.RelativeDistinguishedName([x509.NameAttribute(o, v)]) for o, v in parts])

    now = datetime.datetime.now(datetime.UTC)
    dc = ((NameOID.DOMAIN_COMPONENT, "test"), (NameOID.DOMAIN_COMPONENT, "local"))
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = name(*dc, (NameOID.COMMON_NAME, "Test CA"))
    usage = dict(content_commitment=False, key_agreement=False, encipher_only=False, decipher_only=False)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, key_encipherment=False,
                                       data_encipherment=False, key_cert_sign=True, crl_sign=True,
                                       **usage), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    def leaf(stem: str, ou: str, cn: str) -> tuple[Path, Path, rsa.RSAPrivateKey]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (x509.CertificateBuilder()
                .subject_name(name(*dc, (NameOID.ORGANIZATIONAL_UNIT_NAME, ou), (NameOID.COMMON_NAME, cn)))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                             data_encipherment=True, key_cert_sign=False, crl_sign=False,
                                             **usage), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        cert_path = base / f"{stem}cert.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path = write_private(base / f"{stem}key.pem", key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()).decode())
        return cert_path, key_path, key

    usercert, userkey, user_key = leaf("user", "People", "Test User")
    hostcert, hostkey, _ = leaf("host", "Services", "voms.test.local")
    encrypted = write_private(base / "userkey-enc.pem", user_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"test-passphrase")).decode())
    certdir = base / "certificates"
    certdir.mkdir()
    (base / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    digest = run(["openssl", "x509", "-in", str(base / "ca.pem"), "-noout", "-hash"]).strip()
    (certdir / f"{digest}.0").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (certdir / f"{digest}.signing_policy").write_text(
        "access_id_CA   X509   '/DC=test/DC=local/CN=Test CA'\npos_rights     globus CA:sign\n"
        "cond_subjects  globus '\"/DC=test/DC=local/*\"'\n")
    (base / ".rnd").write_bytes(os.urandom(1024))
    return Pki(base, usercert, userkey, encrypted, hostcert, hostkey, certdir)


@pytest.fixture(scope="session")
def pki(credential_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return _make_pki(tmp_path_factory.mktemp("grid"))


@pytest.fixture
def grid(pki: Pki, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Pki:
    """The PKI's environment set, and the default proxy location inside this test's tmp_path."""
    for key, value in pki.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "x509up"))
    return pki


# -- Kerberos ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Kdc:
    """A KDC on loopback (realm TEST.LOCAL) and a way to get tickets from it."""

    env: dict[str, str]

    @property
    def principal(self) -> str:
        return self.env["KRB5_TEST_PRINCIPAL"]

    @property
    def keytab(self) -> str:
        return self.env["KRB5_TEST_KEYTAB"]

    def kinit(self, *options: str) -> None:
        """A ticket for the test user into ``$KRB5CCNAME``, with the password on stdin."""
        run(["kinit", *options, self.principal], stdin=self.env["KRB5_TEST_PASSWORD"] + "\n")


@pytest.fixture(scope="session")
def kdc_service(credential_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kdc]:
    where = tmp_path_factory.mktemp("kdc")
    env = {**os.environ, "KDC_MAX_LIFE": "5m", "KDC_MAX_RENEW": "30m"}
    done = subprocess.run([str(SCRIPTS / "kdc.sh"), "start", str(where)], capture_output=True,
                          text=True, env=env)
    if done.returncode != 0:
        unavailable(f"the test KDC did not start: {done.stderr.strip()[-400:]}")
    exports = {}
    for line in done.stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        exports[key] = value.strip("'")
    try:
        yield Kdc(exports)
    finally:
        subprocess.run([str(SCRIPTS / "kdc.sh"), "stop", str(where)], capture_output=True)


@pytest.fixture
def kdc(kdc_service: Kdc, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Kdc:
    """The session's KDC, with this test's own ticket cache."""
    monkeypatch.setenv("KRB5_CONFIG", kdc_service.env["KRB5_CONFIG"])
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'ccache'}")
    return kdc_service


