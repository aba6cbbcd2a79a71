"""The worker's processes as an operator runs them: ``signoff worker-ping`` answers for a
running worker and fails clearly once it stopped; ``signoff beat`` alone schedules the
tasks a separate ``signoff worker`` runs (the heartbeat shows up, ``/health`` and
``signoff beat-ping`` say so). A Redis of their own: worker names are per host, and the
tests' shared Redis may carry other workers of the same host."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
import redis as redis_lib

from signoff.devservers import start_embedded_redis
from signoff.worker.health import beat_key, heartbeat_key
from tests.conftest import app_config
from tests.fixtures.tenants import fresh_client
from tests.integration.worker.conftest import Mailbox, start_worker, worker_env


@pytest.fixture
def own_redis(tmp_path: Any) -> Any:
    server = start_embedded_redis(tmp_path / "redis")
    yield server
    server.stop()


def _signoff(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signoff.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_worker_ping_answers_for_a_running_worker_and_fails_after_it_stops(
    app: Any, database: Any, own_redis: Any, mailbox: Mailbox, tmp_path: Any
) -> None:
    queue = f"ping-{uuid.uuid4().hex[:6]}"
    env = worker_env(
        database, broker_url=own_redis.url, redis_url=own_redis.url, queue=queue, smtp_url=""
    )
    worker = start_worker(
        database,
        broker_url=own_redis.url,
        redis_url=own_redis.url,
        queue=queue,
        smtp_url=mailbox.url,
        log=tmp_path / "worker.log",
    )
    try:
        alive = _signoff(env, "worker-ping", "--timeout=10")
        assert alive.returncode == 0, alive.stderr[-2000:]
        assert alive.stdout.strip().endswith(": ok")
    finally:
        worker.stop()
    dead = _signoff(env, "worker-ping", "--timeout=2")
    assert dead.returncode != 0
    assert "did not answer within 2.0 s" in dead.stderr, dead.stderr[-2000:]


def test_beat_alone_schedules_what_a_separate_worker_runs(
    app: Any, database: Any, own_redis: Any, mailbox: Mailbox, tmp_path: Any
) -> None:
    queue = f"beat-{uuid.uuid4().hex[:6]}"
    config = {"SIGNOFF_WORKER_QUEUE": queue}
    env = worker_env(
        database,
        broker_url=own_redis.url,
        redis_url=own_redis.url,
        queue=queue,
        smtp_url=mailbox.url,
        extra_env={"SIGNOFF_DATA_DIR": str(tmp_path)},  # the beat's schedule file
    )
    client = redis_lib.Redis.from_url(own_redis.url)
    worker = start_worker(
        database,
        broker_url=own_redis.url,
        redis_url=own_redis.url,
        queue=queue,
        smtp_url=mailbox.url,
        log=tmp_path / "worker.log",
    )
    beat_log = tmp_path / "beat.log"
    beat: subprocess.Popen[bytes] | None = None
    try:
        # A worker without a beat: nothing schedules the heartbeat.
        assert client.get(heartbeat_key(config)) is None
        before = _signoff(env, "beat-ping")
        assert before.returncode != 0 and "no beat heartbeat" in before.stderr, before.stderr

        with beat_log.open("wb") as handle:
            beat = subprocess.Popen(
                [sys.executable, "-m", "signoff.cli", "beat"],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while client.get(heartbeat_key(config)) is None:
            assert beat.poll() is None, beat_log.read_text()[-3000:]
            assert time.monotonic() < deadline, (
                f"no heartbeat.\nbeat:\n{beat_log.read_text()[-2000:]}\n"
                f"worker:\n{worker.log_text()[-2000:]}"
            )
            time.sleep(0.5)
        # The beat published it; the separate worker ran it.
        assert "signoff.heartbeat" in worker.log_text()
        assert client.get(beat_key(config)) is not None
        after = _signoff(env, "beat-ping")
        assert after.returncode == 0 and "beat: ok" in after.stdout, after.stderr

        from signoff.app import create_app

        web = create_app(app_config(database, own_redis.url, "beat:", SIGNOFF_WORKER_QUEUE=queue))
        health = fresh_client(web).get("/health").get_json()
        assert health["checks"] == {"broker": "ok", "worker": "ok", "beat": "ok"}
        assert health["status"] == "ok"
    finally:
        if beat is not None and beat.poll() is None:
            beat.send_signal(signal.SIGTERM)
            try:
                beat.wait(timeout=20)
            except subprocess.TimeoutExpired:
                beat.kill()
                beat.wait(timeout=10)
        worker.stop()
        client.close()
