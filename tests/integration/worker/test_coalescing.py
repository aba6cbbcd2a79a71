"""Delivery tasks are coalesced per tenant through a short-lived Redis key (real Redis)."""

from __future__ import annotations

import uuid

from signoff.worker import pending


def test_one_waiting_task_per_tenant_and_the_next_after_it_starts(redis_url: str) -> None:
    config = {"SIGNOFF_REDIS_URL": redis_url, "SIGNOFF_WORKER_QUEUE": f"q-{uuid.uuid4().hex}"}
    tenant, other = uuid.uuid4(), uuid.uuid4()
    assert pending.claim(config, tenant)  # the first action enqueues
    assert not pending.claim(config, tenant)  # a task waits: the next action adds nothing
    assert pending.claim(config, other)  # another tenant has its own
    pending.release(config, str(tenant))  # the task starts
    assert pending.claim(config, tenant)  # an action after that enqueues again
    pending.release(config, str(tenant))
    pending.release(config, str(other))


def test_without_redis_every_action_enqueues() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = {"SIGNOFF_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
    tenant = uuid.uuid4()
    assert pending.claim(config, tenant) and pending.claim(config, tenant)
    pending.release(config, str(tenant))  # never raises
