"""The README's run command path: embedded PostgreSQL, Valkey and SMTP, migrate, serve a
page, run the worker, and show the approvers' e-mail at /dev/mail."""

from __future__ import annotations

import json
import os
import re
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent's wait is missing.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def _post_json(url: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(  # noqa: S310 (loopback)
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (loopback)
        return dict(json.loads(resp.read()))


def _login(base: str, username: str, password: str, tenant: str) -> str:
    body = {"username": username, "password": password, "provider": "db", "tenant": tenant}
    return str(_post_json(f"{base}/api/v1/security/login", body)["access_token"])


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
        # The worker runs beside the web server: its beat's heartbeat reaches /health.
        deadline = time.monotonic() + 60
        while json.loads(wait_for(f"{base}/health", proc))["status"] != "ok":
            assert time.monotonic() < deadline, (tmp_path / "data" / "worker.log").read_text()
            time.sleep(1)
        # A request's approvers are e-mailed; the quick start keeps the mail at /dev/mail,
        # with links that follow --port.
        token = _login(base, "acme-alice", "demo-acme-alice", "acme")
        _post_json(
            f"{base}/api/v1/requests/",
            {
                "workflow": "expense_approval",
                "title": "Quick start laptop",
                "input_data": {"amount": 2500, "description": "Laptop"},
            },
            token,
        )
        deadline = time.monotonic() + 60
        while b"Approval needed: Quick start laptop" not in wait_for(f"{base}/dev/mail/", proc):
            assert time.monotonic() < deadline, (tmp_path / "data" / "worker.log").read_text()
            time.sleep(1)
        mails = sorted((tmp_path / "data" / "mail").glob("*.eml"))
        assert any(f"http://127.0.0.1:{port}/act/".encode() in m.read_bytes() for m in mails)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.seek(0)
        output = log.read()
    assert "acme-admin" in output, output[-3000:]
    # Ctrl+C stopped the worker too.
    found = re.search(r"worker with beat: pid (\d+)", output)
    assert found, output[-3000:]
    worker_pid = int(found.group(1))
    deadline = time.monotonic() + 20
    while _alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(worker_pid), f"the worker (pid {worker_pid}) outlived signoff demo"
    assert f"http://127.0.0.1:{port}/" in output
    # Data survives: the embedded cluster is on disk.
    assert (tmp_path / "data" / "postgres" / "PG_VERSION").exists()


@pytest.mark.slow
def test_sigterm_stops_the_embedded_servers_and_the_worker(tmp_path):
    """Issue 12 item 17: SIGTERM (a service manager, `kill`) leaves no orphan: the
    worker, the embedded PostgreSQL's postmaster and Valkey all stop, like on Ctrl+C."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SIGNOFF_") and not k.startswith("TEST_")
    }
    port = free_port()
    data = tmp_path / "data"
    log = (tmp_path / "demo.log").open("w+")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "signoff.cli", "demo", "--port", str(port)),
            *("--data-dir", str(data), "--tenants-dir", str(tmp_path / "no-tenants")),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = wait_for(f"http://127.0.0.1:{port}/ready", proc)
        assert b'"redis":"ok"' in ready.replace(b" ", b"")
        postmaster = int((data / "postgres" / "postmaster.pid").read_text().split()[0])
        valkey = int(json.loads((data / "redis" / "embedded.json").read_text())["pid"])
        log.seek(0)
        found = re.search(r"worker with beat: pid (\d+)", log.read())
        assert found
        worker = int(found.group(1))
        assert _alive(postmaster) and _alive(valkey) and _alive(worker)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    log.seek(0)
    output = log.read()
    for name, pid in (("worker", worker), ("PostgreSQL", postmaster), ("Valkey", valkey)):
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(pid), f"{name} (pid {pid}) outlived signoff demo:\n{output[-3000:]}"
