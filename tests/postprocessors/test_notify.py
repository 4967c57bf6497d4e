"""Notifiers on real Local jobs, against a real SMTP server (aiosmtpd) and a real HTTP
server running in the test: the master's end and failed subjobs are told, whatever the log
level; a failure the retry policy takes is not."""

from __future__ import annotations

import email
import gc
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiosmtpd.controller import Controller

from ganga_async import (
    ArgSplitter,
    Config,
    Engine,
    Executable,
    Job,
    Local,
    Notifier,
    Retry,
    Status,
    WebhookNotifier,
)

pytestmark = pytest.mark.anyio


class Inbox:
    """What a server received, with a way to wait for the n-th message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.changed = threading.Condition()

    def add(self, message: Any) -> None:
        with self.changed:
            self.messages.append(message)
            self.changed.notify_all()

    async def wait_for(self, done: Callable[[list[Any]], bool]) -> list[Any]:
        """The messages once ``done(messages)`` (or after 20 seconds)."""
        def wait() -> list[Any]:
            with self.changed:
                self.changed.wait_for(lambda: done(self.messages), 20)
                return list(self.messages)
        return await anyio.to_thread.run_sync(wait)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[str, Inbox]]:
    inbox = Inbox()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            inbox.add((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"127.0.0.1:{port}", inbox
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[str, Inbox]]:
    inbox = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            inbox.add((self.path, json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", inbox
    finally:
        server.shutdown()
        server.server_close()


def split(script: str, n: int, **kwargs: object) -> Job:
    return Job(name="notified", application=Executable(exe="/bin/sh"), backend=Local(),
               splitter=ArgSplitter(args=[["-c", script, "sh", str(i)] for i in range(n)]),
               **kwargs)  # type: ignore[arg-type]


async def test_mail_and_webhook_tell_of_failed_subjobs_and_the_masters_end(
        gangadir: Path, config: Config, smtp: tuple[str, Inbox], webhook: tuple[str, Inbox]) -> None:
    config["Configuration"]["SMTPHost"] = smtp[0]
    job = split("[ $1 != 1 ]", 3, postprocessors=[Notifier(address="me@example.org"),
                                                  WebhookNotifier(url=webhook[0])])
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        mails = await smtp[1].wait_for(lambda got: len(got) >= 2)
        posts = [body for _, body in await webhook[1].wait_for(lambda got: len(got) >= 2)]
    assert job.status is Status.FAILED
    assert sorted(m["Subject"] for _, m in mails) == [
        "ganga-async: job 0 (notified) is failed", "ganga-async: job 0.1 (notified) is failed"]
    assert all(to == ["me@example.org"] for to, _ in mails)
    assert "Reason: exit code 1" in next(m for _, m in mails if "0.1" in m["Subject"]).get_payload()
    assert sorted((p["fqid"], p["new"]) for p in posts) == [("0", "failed"), ("0.1", "failed")]
    assert posts[0]["text"].startswith("ganga-async: job 0")
    assert len(smtp[1].messages) == 2 and len(webhook[1].messages) == 2


async def test_a_failure_the_retry_takes_is_not_told_unless_verbose(
        gangadir: Path, config: Config, webhook: tuple[str, Inbox], tmp_path: Path) -> None:
    mark = tmp_path / "ran"
    job = split(f'[ -e {mark} ] || {{ touch {mark}; exit 1; }}', 1,
                retry=Retry(backoff="0s"),
                postprocessors=[WebhookNotifier(url=webhook[0]),
                                WebhookNotifier(url=webhook[0] + "?verbose", verbose=True)])
    async with Engine(gangadir, config=config) as engine:
        await engine.submit(job)
        await engine.wait(job, timeout=60)
        assert job.status is Status.COMPLETED
        # Notifications are sent concurrently: they may arrive in any order.
        told = {("0.0", "failed"), ("0.0", "completed")}
        posts = await webhook[1].wait_for(lambda got: sum(
            body["fqid"] == "0" and body["new"] == "completed" for _, body in got) == 2
            and told <= {(body["fqid"], body["new"]) for path, body in got if path != "/hook"})
    quiet = [(body["fqid"], body["new"]) for path, body in posts if path == "/hook"]
    verbose = [(body["fqid"], body["new"]) for path, body in posts if path != "/hook"]
    assert quiet == [("0", "completed")]
    assert ("0.0", "failed") in verbose and ("0.0", "completed") in verbose


async def test_a_job_its_user_let_go_of_is_still_told_of_its_end(
        gangadir: Path, config: Config, webhook: tuple[str, Inbox]) -> None:
    async with Engine(gangadir, config=config) as engine:
        for _ in range(3):
            await engine.submit(split("true", 2, postprocessors=[WebhookNotifier(url=webhook[0])]))
        gc.collect()
        posts = await webhook[1].wait_for(lambda got: len(got) >= 3)
    assert sorted((body["fqid"], body["new"]) for _, body in posts) == [
        ("0", "completed"), ("1", "completed"), ("2", "completed")]
