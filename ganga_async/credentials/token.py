"""Bearer tokens (WLCG, SciTokens): :class:`BearerToken`, found as the WLCG discovery says.

Discovery, first match wins: ``token_file`` when given; the ``BEARER_TOKEN`` environment
variable (the token itself); ``BEARER_TOKEN_FILE``; ``$XDG_RUNTIME_DIR/bt_u<uid>``;
``/tmp/bt_u<uid>``. The lifetime is the JWT's ``exp`` claim, read with PyJWT *without*
verifying the signature (the services that accept the token do that). A token file that
group or others may open is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Hashable
from typing import Any, ClassVar

import anyio

from .._exceptions import CredentialError, RenewalError
from .base import Credential, CredentialInfo, check_private_file, file_signature, missing_extra

__all__ = ["BearerToken", "discover_token"]

ENV_TOKEN = "BEARER_TOKEN"
ENV_FILE = "BEARER_TOKEN_FILE"


def _candidates() -> list[str]:
    uid = os.getuid()
    places = []
    if os.environ.get(ENV_FILE):
        places.append(os.environ[ENV_FILE])
    if os.environ.get("XDG_RUNTIME_DIR"):
        places.append(os.path.join(os.environ["XDG_RUNTIME_DIR"], f"bt_u{uid}"))
    places.append(f"/tmp/bt_u{uid}")
    return places


def discover_token(token_file: str = "") -> str:
    """Where the token is: a path, or ``$BEARER_TOKEN`` when the variable holds it."""
    if token_file:
        return os.path.expanduser(token_file)
    if os.environ.get(ENV_TOKEN, "").strip():
        return f"${ENV_TOKEN}"
    places = _candidates()
    for place in places[:-1]:
        if os.path.exists(place):
            return place
    return places[-1]


def _claims(token: str, where: str) -> dict[str, Any]:
    # Imported on first use (it costs every ganga-async start ~30 ms), from the [tokens] extra.
    try:
        import jwt
    except ImportError as exc:
        raise missing_extra("PyJWT", "tokens", "reading a bearer token") from exc

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        # PyJWT's message may quote parts of the token: say what is wrong without it.
        raise CredentialError(
            f"the bearer token at {where} is not a valid JWT (three base64url parts with a JSON "
            "payload); get a new one (oidc-token, htgettoken)") from None
    if not isinstance(claims, dict):
        raise CredentialError(f"the bearer token at {where} has no claims")
    return claims


@dataclasses.dataclass(kw_only=True, repr=False)
class BearerToken(Credential):
    """A bearer token (a JWT): ``BearerToken(token_file="", renew_command=["oidc-token", "me"])``.

    Its identity is the token's ``sub`` (and ``iss``); its lifetime ends at ``exp``. Renewal runs
    ``renew_command`` (for example ``oidc-token``, ``htgettoken``); whatever the command prints
    is never logged. When it prints the token instead of writing the file, ``write_output``
    makes ganga-async write it (mode 0600) to the discovered location.
    """

    renew_hint: ClassVar[str] = "oidc-token or htgettoken"

    token_file: str = ""
    write_output: bool = False

    @property
    def location(self) -> str:
        return discover_token(self.token_file)

    def _signature(self) -> Hashable:
        where = self.location
        if where == f"${ENV_TOKEN}":
            return ("env", hashlib.sha256(os.environ.get(ENV_TOKEN, "").encode()).hexdigest())
        return file_signature(where)

    def default_renew_command(self) -> list[str]:
        return []

    def _token(self) -> tuple[str, str]:
        where = self.location
        if where == f"${ENV_TOKEN}":
            return os.environ.get(ENV_TOKEN, "").strip(), where
        data = check_private_file(where, "bearer token")
        return data.decode("utf-8", "replace").strip(), where

    async def _read(self) -> CredentialInfo:
        token, where = await anyio.to_thread.run_sync(self._token)
        if not token:
            raise CredentialError(f"the bearer token at {where} is empty; get a new one")
        claims = _claims(token, where)
        expiry = claims.get("exp")
        if not isinstance(expiry, int | float) or isinstance(expiry, bool):
            raise CredentialError(f"the bearer token at {where} has no `exp` claim, so how long it "
                                  "lasts cannot be known")
        subject, issuer = claims.get("sub"), claims.get("iss")
        identity = f"{subject} ({issuer})" if subject and issuer else str(subject or issuer or "")
        details = {"issuer": issuer} if issuer else {}
        return self._info(identity=identity or None, expiry=float(expiry), details=details)

    async def _renew(self, interactive: bool) -> None:
        if not self.renew_command:
            raise RenewalError(
                f"{self.describe()}: no renew_command is set; give one (e.g. "
                "renew_command=['oidc-token', '<account>']) or get a new token yourself",
                needs_user=True)
        if not self.write_output:
            await super()._renew(interactive)
            return
        outcome = await self._run(self.renew_command)
        self._check_renewal(outcome, interactive)
        token = outcome.stdout.strip()
        where = self.location
        if where == f"${ENV_TOKEN}":
            raise RenewalError(f"{self.describe()}: the token is taken from ${ENV_TOKEN}, which "
                               "ganga-async cannot change; set token_file")
        _claims(token, f"the output of `{self.renew_command[0]}`")
        await anyio.to_thread.run_sync(_write_private, where, token + "\n")


def _write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0600) through a temporary file, so no reader sees half."""
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
