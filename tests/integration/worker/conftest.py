"""A real worker: ``signoff worker`` in a subprocess on a real Redis broker, delivering
e-mail to a real SMTP server (the quick start's aiosmtpd sink) on 127.0.0.1."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from signoff.devservers import EmbeddedSmtp, start_embedded_smtp

TEST_SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"
BASE_URL = "http://signoff.test"


class Mailbox:
    """The messages an :class:`EmbeddedSmtp` received, parsed, oldest first."""

    def __init__(self, smtp: EmbeddedSmtp) -> None:
        self.smtp = smtp

    @property
    def url(self) -> str:
        return self.smtp.url

    def messages(self) -> list[Message]:
        files = sorted(p for p in self.smtp.mailbox.iterdir() if p.suffix == ".eml")
        return [email.message_from_bytes(p.read_bytes()) for p in files]

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages() if m["To"] == address]

    def wait_for(
        self, predicate: Callable[[list[Message]], list[Message]], timeout: float = 30.0
    ) -> list[Message]:
        """Poll until ``predicate(messages)`` returns a non-empty list."""
        deadline = time.monotonic() + timeout
        while True:
            found = predicate(self.messages())
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


def body(message: Message, subtype: str = "plain") -> str:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8").replace("\r\n", "\n")
    raise AssertionError(f"no text/{subtype} part")


@pytest.fixture(scope="session")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailbox]:
    smtp = start_embedded_smtp(tmp_path_factory.mktemp("mailbox"))
    yield Mailbox(smtp)
    smtp.stop()


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path
    queue: str
    broker_url: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def worker_env(
    database: Any,
    *,
    broker_url: str,
    redis_url: str,
    queue: str,
    smtp_url: str,
    extra_env: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a ``signoff`` process of the tests (worker, beat, probes)."""
    return {
        **os.environ,
        "SIGNOFF_DATABASE_URL": database.app_url.render_as_string(hide_password=False),
        "SIGNOFF_REDIS_URL": redis_url,
        "SIGNOFF_BROKER_URL": broker_url,
        "SIGNOFF_WORKER_QUEUE": queue,
        "SIGNOFF_SECRET_KEY": TEST_SECRET_KEY,
        "SIGNOFF_AUDIT_KEY": "test-audit-key",
        "SIGNOFF_SMTP_URL": smtp_url,
        "SIGNOFF_BASE_URL": BASE_URL,
        "SIGNOFF_NOTIFY_BACKOFF_SECONDS": "1",
        # Webhook receivers of the tests listen on loopback.
        "SIGNOFF_OUTBOUND_ALLOW": "127.0.0.1/32",
        **(extra_env or {}),
    }


def start_worker(
    database: Any,
    *,
    broker_url: str,
    redis_url: str,
    queue: str,
    smtp_url: str,
    log: Path,
    extra_env: dict[str, str] | None = None,
    beat: bool = False,
) -> Worker:
    """``signoff worker`` as a subprocess; returns once it consumes its queue."""
    client = redis_lib.Redis.from_url(broker_url)
    client.delete(queue)  # tasks published before this worker existed are not its own
    client.close()
    env = worker_env(
        database,
        broker_url=broker_url,
        redis_url=redis_url,
        queue=queue,
        smtp_url=smtp_url,
        extra_env=extra_env,
    )
    args = [sys.executable, "-m", "signoff.cli", "worker", "--concurrency", "2"]
    if beat:
        args.append("--beat")
    handle = log.open("wb")
    proc = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT)
    worker = Worker(proc, log, queue, broker_url)
    deadline = time.monotonic() + 60
    while "ready." not in worker.log_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise AssertionError(f"the worker did not start:\n{worker.log_text()[-4000:]}")
        time.sleep(0.2)
    return worker


@pytest.fixture(scope="module")
def worker(
    database: Any,
    redis_url: str,
    redis_prefix: str,
    mailbox: Mailbox,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    running = start_worker(
        database,
        broker_url=redis_url,
        redis_url=redis_url,
        queue=f"{redis_prefix}signoff",
        smtp_url=mailbox.url,
        log=tmp_path_factory.mktemp("worker") / "worker.log",
    )
    yield running
    running.stop()
