"""The service protocol's parsing and error round trip (pure functions, no daemon)."""

from __future__ import annotations

import json

import pytest

from ganga_async import JobNotFoundError, JobSpecError
from ganga_async._exceptions import ProtocolError, ServiceError
from ganga_async.service import _protocol as protocol


def test_a_request_line_is_read_with_its_id_op_and_args() -> None:
    request = protocol.decode_request(b'{"v": 1, "id": 7, "op": "kill", "args": {"id": "3.1"}}')
    assert (request.id, request.op, request.args) == (7, "kill", {"id": "3.1"})


@pytest.mark.parametrize(("line", "code", "words"), [
    (b"not json", "malformed", "one JSON object per line"),
    (b"[1, 2]", "malformed", "JSON object, not list"),
    (b'{"v": 2, "id": 1, "op": "ping"}', "unsupported_version", 'send "v": 1'),
    (b'{"v": 1, "op": "ping"}', "malformed", '"id" must be'),
    (b'{"v": 1, "id": true, "op": "ping"}', "malformed", '"id" must be'),
    (b'{"v": 1, "id": 1, "op": ""}', "malformed", '"op" must be'),
    (b'{"v": 1, "id": 1, "op": "ping", "args": [1]}', "malformed", '"args" must be an object'),
    (b'\xff{"v": 1}', "malformed", "UTF-8"),
])
def test_a_bad_request_is_a_protocol_error_saying_what_is_wrong(line: bytes, code: str, words: str) -> None:
    with pytest.raises(ProtocolError, match=words) as caught:
        protocol.decode_request(line)
    assert caught.value.code == code


def test_an_error_reply_raises_the_same_class_again_with_its_field() -> None:
    reply = protocol.error_reply(3, JobSpecError("application.exe", "no such file"))
    assert json.loads(protocol.encode(reply)) == reply
    exc = protocol.exception_from(reply["error"])
    assert isinstance(exc, JobSpecError)
    assert (exc.field, str(exc)) == ("application.exe", "application.exe: no such file")
    assert isinstance(protocol.exception_from(protocol.error_reply(1, JobNotFoundError("no job 4"))["error"]),
                      LookupError)


def test_an_unknown_error_type_comes_back_as_a_service_error() -> None:
    exc = protocol.exception_from({"type": "os.system", "message": "nope"})
    assert type(exc) is ServiceError
    assert protocol.error_reply(None, KeyError("x"))["error"]["type"] == "ServiceError"
