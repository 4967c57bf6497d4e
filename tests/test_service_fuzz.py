"""Whatever a client sends, the daemon answers with a typed error or a result and keeps serving.

Every operation is sent random arguments (random names, types, sizes, nesting, ids past 2^63),
and some requests are malformed on purpose; after each, the daemon must still answer ``ping``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from _service_helpers import running_daemon
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganga_async.service._operations import OPERATIONS
from ganga_async.service._paths import ServicePaths

_FUZZED = sorted({*OPERATIONS, "events", "cancel", "ping", "send_cmd"} - {"credentials_renew"})
"""Every operation but ``shutdown`` (it stops the daemon, as it should) and ``credentials_renew``
(it would run the real renewal commands)."""

_NAMES = ["id", "job", "status", "name", "statuses", "filename", "timeout", "type", "unprepare",
          "rmdir", "basedir", "subjobs", "types", "code", "token", "task", "run"]
"""Argument names the operations know, mixed with unknown ones."""

_STREAMING = {"events", "wait"}
"""Operations that may rightly send nothing back at once (a stream, or a wait)."""

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.sampled_from([2**63, 2**63 - 1, -1, 0, 10**30]) | st.floats(allow_nan=True)
           | st.text(max_size=12) | st.sampled_from(["3", "3.17", "x", "0.0", "-1", "1e5", ".."]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=10)
arguments = st.dictionaries(st.sampled_from(_NAMES) | st.text(max_size=6), values, max_size=4)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServicePaths]:
    """One daemon for every example (starting one per example would take minutes)."""
    import os

    from _service_helpers import service_paths

    root = tmp_path_factory.mktemp("fuzz")
    config = root / "config.toml"
    config.write_text("")
    previous = {k: os.environ.get(k) for k in ("GANGA_ASYNC_CONFIG", "GANGA_ASYNC_GANGADIR")}
    os.environ["GANGA_ASYNC_CONFIG"] = str(config)
    os.environ["GANGA_ASYNC_GANGADIR"] = str(root / "gangadir")
    try:
        with running_daemon(service_paths(root / "gangadir")) as paths:
            yield paths
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def exchange(paths: ServicePaths, line: bytes, wait: float = 5.0) -> dict[str, Any] | None:
    """Send one line on a new connection and read the first message back (None if none came
    within ``wait`` seconds)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(wait)
        sock.connect(str(paths.socket))
        sock.sendall(line)
        received = b""
        try:
            while not received.endswith(b"\n"):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            return None
    return json.loads(received) if received else None


def alive(paths: ServicePaths) -> bool:
    reply = exchange(paths, b'{"v":1,"id":"alive","op":"ping"}\n')
    return reply is not None and reply.get("ok") is True


def check_reply(op: str, request_id: object, reply: dict[str, Any] | None) -> None:
    if reply is None:
        assert op in _STREAMING, f"{op}: no reply"
        return
    assert reply.get("v") == 1 and reply.get("id") in (request_id, None), reply
    if reply.get("ok") or (op in _STREAMING and "event" in reply):
        return
    error = reply["error"]
    assert error["type"] != "ServiceError", f"{op}: an untyped failure: {error['message']}"
    assert "Traceback" not in error["message"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=st.sampled_from(_FUZZED), args=arguments,
       request_id=st.integers(-(2**70), 2**70) | st.text(max_size=8))
def test_every_operation_answers_bad_arguments_with_a_typed_error_and_the_daemon_lives(
        served: ServicePaths, op: str, args: dict[str, Any], request_id: int | str) -> None:
    if op == "send_cmd" and isinstance(args.get("code"), str):
        args["code"] = 0  # code is run by design; its argument's type is what is fuzzed here
    line = json.dumps({"v": 1, "id": request_id, "op": op, "args": args}).encode() + b"\n"
    check_reply(op, request_id, exchange(served, line, wait=0.5 if op in _STREAMING else 10.0))
    assert alive(served)


@pytest.mark.parametrize("line", [
    b'{"v":1,"id":1,"op":"cancel"}\n',
    b'{"v":1,"id":1,"op":"cancel","args":{"id":[1]}}\n',
    b'{"v":1,"id":1,"op":"ping","args":' + b'[' * 100_000 + b']' * 100_000 + b'}\n',
    b'{"v":1,"id":1,"op":"jobs","args":{"status":' + b'{"a":' * 5_000 + b'1' + b'}' * 5_000 + b'}}\n',
    b'{"v":1,"id":1,"op":"job","args":{"id":' + str(2**63).encode() + b'}}\n',
    b'{"v":1,"id":1,"op":"job","args":{"id":"99999999999999999999"}}\n',
    b'{"v":1,"id":1,"op":"kill","args":{"id":"3.-1"}}\n',
    b'{"v":1,"id":1,"op":"events","args":{"job":"x"}}\n',
    b'{"v":1,"id":1,"op":"submit","args":{"job":{"inputfiles":5}}}\n',
    b'{"v":1,"id":1,"op":"submit","args":{"job":{"outputfiles":"res.txt"}}}\n',
])
def test_requests_that_once_stopped_the_daemon_or_failed_inside_it_get_a_typed_error(
        served: ServicePaths, line: bytes) -> None:
    reply = exchange(served, line)
    assert reply is not None and reply["ok"] is False, reply
    assert reply["error"]["type"] != "ServiceError", reply["error"]["message"]
    assert alive(served)


def test_two_requests_with_one_id_on_one_connection_are_refused(served: ServicePaths) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(served.socket))
        sock.sendall(b'{"v":1,"id":5,"op":"events","args":{}}\n{"v":1,"id":5,"op":"jobs","args":{}}\n')
        reply = json.loads(sock.makefile("rb").readline())
    assert reply["ok"] is False and reply["error"]["code"] == "duplicate_id", reply
    assert alive(served)
