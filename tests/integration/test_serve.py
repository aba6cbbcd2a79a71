"""`signoff serve` (gunicorn) as production runs it: a client that keeps its connection
open between requests, as a proxy does, is not reset after gunicorn's default 2 s."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.worker.conftest import TEST_SECRET_KEY


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(database, redis_url, tmp_path: Path):
    port = _free_port()
    env = {
        **os.environ,
        "SIGNOFF_DATABASE_URL": database.app_url.render_as_string(hide_password=False),
        "SIGNOFF_REDIS_URL": redis_url,
        "SIGNOFF_SECRET_KEY": TEST_SECRET_KEY,
        "SIGNOFF_AUDIT_KEY": "test-audit-key",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "signoff.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text(errors="replace")[-4000:]) from None
                time.sleep(0.2)
        yield port, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_kept_alive_connection_survives_an_idle_pause(served):
    port, log = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/health")
    first = conn.getresponse()
    first.read()
    assert first.status in (200, 503), log.read_text(errors="replace")[-2000:]
    assert first.getheader("Connection", "").lower() != "close"
    time.sleep(3)  # longer than gunicorn's default keep-alive of 2 s
    conn.request("GET", "/health")  # the same socket: no reset, no reconnect
    second = conn.getresponse()
    second.read()
    assert second.status == first.status
    conn.close()
    assert "Using worker: gthread" in log.read_text(errors="replace")
