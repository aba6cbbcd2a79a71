"""The README's run command path: embedded PostgreSQL, Valkey and SMTP, migrate, serve a
page, run the worker, and show the approvers' e-mail at /dev/mail."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A fresh directory outside pytest's ``tmp_path``: run as root, the embedded
    PostgreSQL runs as another user and needs to traverse its parents, while every
    pytest session that starts (another run on the machine) makes
    ``/tmp/pytest-of-<user>`` mode 0700 again."""
    path = Path(tempfile.mkdtemp(prefix="signoff-quickstart-"))
    yield path
    # A failed test may leave servers running on it (a test that kill -9s on purpose,
    # or code under test that leaks them): none may outlive the test.
    for proc in psutil.process_iter(["cmdline", "cwd", "environ"]):
        seen = [
            " ".join(proc.info.get("cmdline") or []),
            proc.info.get("cwd") or "",
            (proc.info.get("environ") or {}).get("SIGNOFF_DATA_DIR", ""),  # the worker
        ]
        if any(str(path) in text for text in seen):
            with contextlib.suppress(psutil.Error):
                proc.kill()
    shutil.rmtree(path, ignore_errors=True)


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
def test_demo_starts_embedded_servers_migrates_and_serves(workdir):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SIGNOFF_") and not k.startswith("TEST_")
    }
    port = free_port()
    log = (workdir / "demo.log").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "signoff.cli",
            "demo",
            "--port",
            str(port),
            "--data-dir",
            str(workdir / "data"),
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
            assert time.monotonic() < deadline, (workdir / "data" / "worker.log").read_text()
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
            assert time.monotonic() < deadline, (workdir / "data" / "worker.log").read_text()
            time.sleep(1)
        mails = sorted((workdir / "data" / "mail").glob("*.eml"))
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
    assert (workdir / "data" / "postgres" / "PG_VERSION").exists()


def _demo_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SIGNOFF_") and not k.startswith("TEST_")
    }


class _Demo:
    """``signoff demo`` as a real subprocess on a data dir, without demo tenants."""

    def __init__(self, workdir: Path, data: Path, name: str) -> None:
        self.port = free_port()
        self.data = data
        self.log = (workdir / f"{name}.log").open("w+")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "signoff.cli", "demo", "--port", str(self.port)),
                *("--data-dir", str(data), "--tenants-dir", str(workdir / "no-tenants")),
            ],
            cwd=ROOT,
            env=_demo_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def ready(self) -> None:
        try:
            ready = wait_for(f"http://127.0.0.1:{self.port}/ready", self.proc)
        except AssertionError as exc:
            raise AssertionError(f"{exc}:\n{self.output()[-3000:]}") from None
        assert b'"postgresql":"ok"' in ready.replace(b" ", b"")
        assert b'"redis":"ok"' in ready.replace(b" ", b"")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def worker(self) -> int:
        found = re.search(r"worker with beat: pid (\d+)", self.output())
        assert found, self.output()[-3000:]
        return int(found.group(1))

    def postmaster(self) -> int:
        return int((self.data / "postgres" / "postmaster.pid").read_text().split()[0])

    def valkey(self) -> int:
        return int(json.loads((self.data / "redis" / "embedded.json").read_text())["pid"])

    def processes(self) -> dict[int, str]:
        """Every process the quick start runs: its own descendants (the worker and its
        children, Valkey) and the PostgreSQL server with its backends."""
        found = {self.proc.pid: "signoff demo"}
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            found[child.pid] = " ".join(child.cmdline()[:4])
        found[self.worker()] = "worker"
        found[self.valkey()] = "Valkey"
        postmaster = self.postmaster()
        found[postmaster] = "PostgreSQL"
        for child in psutil.Process(postmaster).children(recursive=True):
            found[child.pid] = f"PostgreSQL child {' '.join(child.cmdline()[:2])}"
        return found

    def stop(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)
        try:
            self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(30)


def _assert_gone(processes: dict[int, str], output: str) -> None:
    for pid, name in processes.items():
        deadline = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(pid), f"{name} (pid {pid}) outlived signoff demo:\n{output[-3000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_every_process_of_the_quick_start(workdir, sig):
    """Issue 12 item 17: SIGTERM (a service manager, `kill`) and SIGINT leave no orphan:
    the worker and its children, the embedded PostgreSQL with its backends and Valkey
    all stop, and signoff demo exits 0."""
    demo = _Demo(workdir, workdir / "data", "demo")
    try:
        demo.ready()
        processes = demo.processes()
        assert {"worker", "Valkey", "PostgreSQL"} <= set(processes.values())
        assert all(_alive(pid) for pid in processes)
        demo.stop(sig)
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
    assert demo.proc.returncode == 0, demo.output()[-3000:]
    _assert_gone(processes, demo.output())
    assert not (workdir / "data" / "worker.pid").exists()


@pytest.mark.slow
def test_a_killed_run_leaves_no_worker_and_stale_pids_do_not_stop_a_start(workdir):
    """`kill -9` of signoff demo: the worker dies with it (parent-death signal). The
    PostgreSQL it leaves running is reused and stopped by the next run; a Valkey that
    died meanwhile, a worker.pid naming some other live process (which is left alone)
    and a postmaster.pid of a process that no longer exists do not stop a start."""
    data = workdir / "data"
    first = _Demo(workdir, data, "first")
    try:
        first.ready()
        worker = first.worker()
        workers = [worker, *(c.pid for c in psutil.Process(worker).children(recursive=True))]
        postmaster, valkey = first.postmaster(), first.valkey()
        pidfile_text = (data / "postgres" / "postmaster.pid").read_text()
        assert (data / "worker.pid").read_text().strip() == str(worker)
        first.proc.kill()
        first.proc.wait(30)
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    _assert_gone(dict.fromkeys(workers, "worker"), first.output())
    assert _alive(postmaster)  # left over: the next start reuses it
    os.kill(valkey, signal.SIGKILL)  # embedded.json now names a dead process
    _assert_gone({valkey: "Valkey"}, "")
    bystander = subprocess.Popen(["sleep", "300"])
    (data / "worker.pid").write_text(f"{bystander.pid}\n")
    try:
        second = _Demo(workdir, data, "second")
        try:
            second.ready()
            assert second.postmaster() == postmaster
            processes = second.processes()
            second.stop(signal.SIGTERM)
        finally:
            if second.proc.poll() is None:
                second.proc.kill()
        assert second.proc.returncode == 0, second.output()[-3000:]
        _assert_gone(processes, second.output())
        assert _alive(bystander.pid), "a worker.pid naming another process killed it"
    finally:
        bystander.kill()
        bystander.wait()

    # A postmaster.pid whose process no longer exists (a crash, a reboot).
    gone = subprocess.Popen(["true"])
    gone.wait()
    lines = pidfile_text.splitlines()
    lines[0] = str(gone.pid)
    (data / "postgres" / "postmaster.pid").write_text("\n".join(lines) + "\n")
    third = _Demo(workdir, data, "third")
    try:
        third.ready()
        processes = third.processes()
        third.stop(signal.SIGTERM)
    finally:
        if third.proc.poll() is None:
            third.proc.kill()
    assert third.proc.returncode == 0, third.output()[-3000:]
    _assert_gone(processes, third.output())


def readme_curl_block() -> str:
    """The README's bash block with the API examples (the one that logs in with curl)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    found = [b for b in blocks if "curl " in b and "/api/v1/security/login" in b]
    assert len(found) == 1, f"expected one README block with the curl examples, got {len(found)}"
    return found[0]


def _signoff(
    data: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``scripts/signoff ARGS`` as the README says, with no SIGNOFF_* variable but the
    data dir (which scripts/signoff sets to ./var of the checkout by default)."""
    return subprocess.run(
        [str(ROOT / "scripts" / "signoff"), *args],
        cwd=ROOT,
        env={**_demo_env(), "SIGNOFF_DATA_DIR": str(data), **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.slow
def test_commands_and_the_readme_curl_lines_work_against_the_quick_start(workdir):
    data = workdir / "data"
    port = free_port()
    log = (workdir / "demo.log").open("w+")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "signoff.cli", "demo", "--port", str(port), "--no-worker"),
            *("--data-dir", str(data), "--tenants-dir", str(ROOT / "tenants")),
        ],
        cwd=ROOT,
        env=_demo_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # A first start migrates and plays the demo requests: slow on a busy machine.
        wait_for(f"{base}/ready", proc, timeout=420)
        log.seek(0)
        output = log.read()
        assert re.search(r"\(platform\)\s+operator\s+Demo-Console-2026", output), output[-3000:]
        assert (data / "quickstart.json").stat().st_mode & 0o077 == 0

        # Commands find the embedded servers through the data dir: no variables set.
        exported = _signoff(data, "tenants", "export", "acme")
        assert exported.returncode == 0, exported.stderr[-3000:]
        assert "slug: acme" in exported.stdout
        verified = _signoff(data, "audit", "verify")
        assert verified.returncode == 0, verified.stderr[-3000:] + verified.stdout[-2000:]
        created = _signoff(
            data,
            "create-operator",
            "ops2",
            "ops2@example.com",
            env={"SIGNOFF_OPERATOR_PASSWORD": "Another-Console-2026"},
        )
        assert created.returncode == 0, created.stderr[-3000:]
        assert _login_page_accepts(base, "ops2", "Another-Console-2026")
        for args in (("db", "upgrade"), ("escalations", "run"), ("notifications", "send")):
            done = _signoff(data, *args)
            assert done.returncode == 0, (args, done.stderr[-3000:])

        # The README's curl lines, as written, on this server's port.
        script = readme_curl_block().replace("http://127.0.0.1:8080", base)
        ran = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        answers = _json_values(ran.stdout)
        assert answers[0]["count"] >= 1  # something waits for acme-manager
        uploaded = next(a for a in answers if a.get("content_type"))
        assert uploaded["content_type"] == "text/plain" and uploaded["filename"] == "receipt.txt"
        decided = answers[-1]
        assert "status" in decided, (answers, ran.stderr[-2000:])
        assert decided["status"] in ("pending", "approved")
        assert "decision_recorded" in decided["events"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    # Stopped: the file is gone and a command says the quick start is not running.
    assert not (data / "quickstart.json").exists()
    (data / "quickstart.json").write_text(json.dumps({"pid": 2**22 + 7}))
    stopped = _signoff(data, "tenants", "export", "acme")
    assert stopped.returncode != 0
    assert "is not running" in stopped.stderr and "Traceback" not in stopped.stderr


def _json_values(text: str) -> list[dict]:
    """The JSON objects curl printed one after another (curl adds no line breaks)."""
    decoder = json.JSONDecoder()
    found, at = [], 0
    while (start := text.find("{", at)) != -1:
        value, at = decoder.raw_decode(text, start)
        found.append(value)
    return found


def _login_page_accepts(base: str, username: str, password: str) -> bool:
    """An operator can sign in (the API login needs a tenant; the page does not)."""
    import http.cookiejar

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login/", timeout=10).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    fields = {"username": username, "password": password}
    if token:
        fields["csrf_token"] = token.group(1)
    body = urllib.parse.urlencode(fields).encode()
    resp = opener.open(f"{base}/login/", data=body, timeout=10)
    return "/login/" not in resp.geturl()
