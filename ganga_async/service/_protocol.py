"""The service protocol: versioned JSON messages, one per line, over a Unix socket.

A request is one JSON object on one line (UTF-8, ended by ``\\n``; JSON escapes every newline
inside strings)::

    {"v": 1, "id": 7, "op": "kill", "args": {"id": "3.17"}}

and every message the daemon sends back carries the request's ``id``:

    {"v": 1, "id": 7, "ok": true, "result": {...}}                   the answer
    {"v": 1, "id": 7, "ok": false, "error": {"type": ..., "message": ...}}  the request failed
    {"v": 1, "id": 7, "event": {...}}                                one item of a stream

A connection carries many requests at once; replies come in the order they are ready. A
request is at most :data:`MAX_REQUEST_BYTES`, a reply at most :data:`MAX_REPLY_BYTES`.
``error.type`` names a class of :mod:`ganga_async._exceptions` (``JobSpecError`` with a
``field``, ``ProtocolError`` with a ``code``, ...), or ``FileNotFoundError``; the client raises
that class again. A request that is malformed, truncated, too large or of another version gets
an error reply (``id`` null when it cannot be read) and its connection is closed.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from .. import _exceptions
from .._exceptions import GangaAsyncError, ProtocolError, ServiceError
from ..events import CredentialEvent, JobEvent, PostprocessEvent, RetryEvent

__all__ = [
    "CANCELLABLE", "EVENT_TYPES", "MAX_REPLY_BYTES", "MAX_REQUEST_BYTES", "VERSION", "Request",
    "credential_event", "decode_reply", "decode_request", "encode", "error_reply", "event_message",
    "exception_from", "ok_reply", "postprocessed_event", "request_message", "retrying_event",
    "status_event",
]

VERSION = 1
"""The protocol version; a message of another version is refused."""

MAX_REQUEST_BYTES = 1 << 20
"""The largest request line, newline excluded (1 MiB): enough for any job description or code."""

MAX_DEPTH = 32
"""The deepest nesting of arrays and objects a request may have: far more than any job
description needs, and shallow enough that nothing handling it can run out of stack."""

MAX_REPLY_BYTES = 64 << 20
"""The largest reply line (64 MiB); a larger answer is replaced by an error saying so."""

EVENT_TYPES = ("status", "credential", "postprocessed", "retrying")
"""What an ``events`` stream carries (its events' ``type``): job status transitions,
credential warnings, postprocessors' outcomes and retries."""

CANCELLABLE = frozenset({"wait"})
"""The operations that, like ``events`` streams, belong to their connection: a ``cancel``
request stops them, and a client cancels them when its caller gives up. The others run to their
end once accepted."""

RequestId = int | str

_ERROR_ATTRIBUTES = ("field", "code", "pid", "output", "needs_user")
"""The attributes of an exception an error reply carries, and the client sets again."""


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """A request as the daemon reads it."""

    id: RequestId
    op: str
    args: dict[str, Any]


def encode(message: dict[str, Any]) -> bytes:
    """One message as its line on the wire."""
    return json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


def request_message(request_id: RequestId, op: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"v": VERSION, "id": request_id, "op": op, "args": args}


def ok_reply(request_id: RequestId | None, result: Any) -> dict[str, Any]:
    return {"v": VERSION, "id": request_id, "ok": True, "result": result}


def event_message(request_id: RequestId, event: dict[str, Any]) -> dict[str, Any]:
    return {"v": VERSION, "id": request_id, "event": event}


def status_event(event: JobEvent, job_id: int | None = None, subjobs: bool = True
                 ) -> dict[str, Any] | None:
    """A status transition as an ``events`` stream carries it; None when the subscription
    filters it out (another job than ``job_id``, or a subjob's own one without ``subjobs``)."""
    if (job_id is not None and event.job_id != job_id) or (not subjobs and event.index is not None):
        return None
    return {"type": "status", "fqid": event.fqid, "job_id": event.job_id, "index": event.index,
            "old": str(event.old), "new": str(event.new), "time": event.time,
            "reason": event.reason}


def postprocessed_event(event: PostprocessEvent, job_id: int | None = None, subjobs: bool = True
                        ) -> dict[str, Any] | None:
    """A postprocessor's outcome as an ``events`` stream carries it (filtered as
    :func:`status_event`)."""
    if (job_id is not None and event.job_id != job_id) or (not subjobs and event.index is not None):
        return None
    return {"type": "postprocessed", "fqid": event.fqid, "job_id": event.job_id,
            "index": event.index, "postprocessor": event.postprocessor, "ok": event.ok,
            "detail": event.detail, "time": event.time}


def retrying_event(event: RetryEvent, job_id: int | None = None, subjobs: bool = True
                   ) -> dict[str, Any] | None:
    """A retry as an ``events`` stream carries it (filtered as :func:`status_event`)."""
    if (job_id is not None and event.job_id != job_id) or (not subjobs and event.index is not None):
        return None
    return {"type": "retrying", "fqid": event.fqid, "job_id": event.job_id, "index": event.index,
            "attempt": event.attempt, "delay": event.delay, "time": event.time,
            "reason": event.reason}


def credential_event(event: CredentialEvent) -> dict[str, Any]:
    """A credential warning as an ``events`` stream carries it."""
    return {"type": "credential", "kind": event.kind, "credential": event.credential,
            "time_left": event.time_left, "time": event.time, "message": event.message}


def error_reply(request_id: RequestId | None, exc: BaseException) -> dict[str, Any]:
    """The error reply for ``exc``: its class name, message and the attributes that matter."""
    error: dict[str, Any] = {"type": _public_type(exc), "message": str(exc)}
    for attribute in _ERROR_ATTRIBUTES:
        value = getattr(exc, attribute, None)
        if value is not None:
            error[attribute] = value
    return {"v": VERSION, "id": request_id, "ok": False, "error": error}


def _public_type(exc: BaseException) -> str:
    if isinstance(exc, GangaAsyncError | FileNotFoundError):
        return type(exc).__name__
    return "ServiceError"


def decode_request(line: bytes) -> Request:
    """Read one request line; raises :class:`ProtocolError` saying what is wrong with it."""
    message = _load(line)
    version = message.get("v")
    if version != VERSION:
        raise ProtocolError("unsupported_version",
                            f"protocol version {version!r} is not supported; send \"v\": {VERSION}")
    request_id = message.get("id")
    if not isinstance(request_id, int | str) or isinstance(request_id, bool):
        raise ProtocolError("malformed", "\"id\" must be an integer or a string naming the request")
    op = message.get("op")
    if not isinstance(op, str) or not op:
        raise ProtocolError("malformed", "\"op\" must be the name of an operation, e.g. \"ping\"")
    args = message.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("malformed", "\"args\" must be an object of named arguments")
    return Request(request_id, op, args)


def decode_reply(line: bytes) -> dict[str, Any]:
    """Read one message from the daemon; raises :class:`ProtocolError` if it is not one."""
    message = _load(line)
    if message.get("v") != VERSION or "id" not in message:
        raise ProtocolError("unsupported_version",
                            f"the daemon speaks protocol {message.get('v')!r}, this client {VERSION}; "
                            "restart the daemon with this version (ganga-async service stop)")
    return message


def _load(line: bytes) -> dict[str, Any]:
    depth = _nesting(line)
    if depth > MAX_DEPTH:
        raise ProtocolError("too_deep", f"a message may nest arrays and objects {MAX_DEPTH} "
                            f"levels deep, not {depth}")
    try:
        message = json.loads(line)
    except UnicodeDecodeError:
        raise ProtocolError("malformed", "a message must be UTF-8 text") from None
    except ValueError as exc:
        raise ProtocolError("malformed", f"a message must be one JSON object per line: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("malformed", "a message must be a JSON object, not "
                            f"{type(message).__name__}")
    return message


def _nesting(line: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (brackets inside strings not counted),
    found without parsing it, so a hostile message cannot exhaust the stack."""
    opened = line.count(b"[") + line.count(b"{")
    if opened <= MAX_DEPTH:
        return opened  # never deeper than the brackets it has
    deepest = depth = 0
    in_string = escaped = False
    for byte in line:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def exception_from(error: dict[str, Any]) -> Exception:
    """The exception an error reply describes, of the class it names (``ServiceError`` when
    the name is not one of ganga-async's)."""
    name = str(error.get("type", "ServiceError"))
    message = str(error.get("message", "the daemon gave no reason"))
    if name == "FileNotFoundError":
        return FileNotFoundError(message)
    cls = getattr(_exceptions, name, None)
    if not (isinstance(cls, type) and issubclass(cls, GangaAsyncError)):
        cls = ServiceError
    exc: Exception = cls.__new__(cls)
    Exception.__init__(exc, message)
    for attribute in _ERROR_ATTRIBUTES:
        if attribute in error:
            setattr(exc, attribute, error[attribute])
    return exc
