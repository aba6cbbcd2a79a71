"""The README's run command path: embedded PostgreSQL and Valkey, migrate, serve a page."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 120) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"signoff demo exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback)
                return resp.read()
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout}s")


@pytest.mark.slow
def test_demo_starts_embedded_servers_migrates_and_serves(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SIGNOFF_") and not k.startswith("TEST_")
    }
    port = free_port()
    log = (tmp_path / "demo.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signoff.cli",
            "demo",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
            "--tenants-dir",
            str(ROOT / "tenants"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert b"ok" in wait_for(f"{base}/health", proc)
        login_page = wait_for(f"{base}/login/", proc)
        assert b"password" in login_page.lower()
        ready = wait_for(f"{base}/ready", proc)
        assert b'"postgresql":"ok"' in ready.replace(b" ", b"")
        assert b'"redis":"ok"' in ready.replace(b" ", b"")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.seek(0)
        output = log.read()
    assert "acme-admin" in output, output[-3000:]
    assert f"http://127.0.0.1:{port}/" in output
    # Data survives: the embedded cluster is on disk.
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()
