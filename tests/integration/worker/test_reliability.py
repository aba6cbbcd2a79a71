"""Delivery survives the broker and does not double: a real Redis used as the broker
is stopped and started while decisions go on, and two workers race on one queue."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from typing import Any

from signoff.devservers import start_embedded_redis
from tests.conftest import app_config
from tests.fixtures.tenants import fresh_client, make_tenant
from tests.fixtures.workflows import spec_expense
from tests.integration.api.conftest import Api
from tests.integration.worker.conftest import Mailbox, start_worker
from tests.integration.workflow.conftest import save


def _approval_mails(mailbox: Mailbox, slug: str) -> Counter[tuple[str, str]]:
    return Counter(
        (m["To"], m["Subject"])
        for m in mailbox.messages()
        if m["To"].endswith(f"@{slug}.example") and "Approval needed" in m["Subject"]
    )


def test_decisions_commit_with_the_broker_down_and_every_mail_arrives_once_after(
    app: Any,
    database: Any,
    redis_url: str,
    redis_prefix: str,
    mailbox: Mailbox,
    tmp_path: Any,
    caplog: Any,
) -> None:
    from signoff.app import create_app
    from signoff.worker.app import enqueue

    broker = start_embedded_redis(tmp_path / "broker")
    port = broker.port
    queue = f"{redis_prefix}outage-{uuid.uuid4().hex[:6]}"
    outage = create_app(
        app_config(database, redis_url, redis_prefix, SIGNOFF_BROKER_URL=broker.url)
        | {"SIGNOFF_WORKER_QUEUE": queue}
    )
    tenant = make_tenant(outage)
    save(outage, tenant, "expense_approval", spec_expense())
    api = Api(fresh_client(outage), tenant)
    worker = start_worker(
        database,
        broker_url=broker.url,
        redis_url=redis_url,
        queue=queue,
        smtp_url=mailbox.url,
        log=tmp_path / "worker.log",
    )
    try:
        broker.stop()
        health = api.client.get("/health").get_json()
        assert health["status"] == "degraded" and health["checks"]["broker"] == "unreachable"
        titles = [f"Outage {i} {tenant.slug}" for i in range(3)]
        with caplog.at_level(logging.WARNING, logger="signoff.worker.app"):
            for title in titles:
                api.submit(800, title=title)  # commits; the enqueue fails and is logged
        failed = [r for r in caplog.records if "could not enqueue" in r.getMessage()]
        assert len(failed) >= len(titles), [r.getMessage() for r in caplog.records]
        assert _approval_mails(mailbox, tenant.slug) == Counter()

        broker = start_embedded_redis(tmp_path / "broker", port=port)
        # What the beat's outbox sweep does for every tenant, here for this one.
        with outage.app_context():
            assert enqueue(outage, "signoff.deliver", str(tenant.id), "")
        expected = {
            (f"{who}@{tenant.slug}.example", f"[Tenant {tenant.slug}] Approval needed: {title}")
            for who in ("manager", "manager2")
            for title in titles
        }
        mailbox.wait_for(
            lambda _: [1] if set(_approval_mails(mailbox, tenant.slug)) >= expected else []
        )
        # Another sweep finds nothing more to send.
        with app.app_context():
            enqueue(app, "signoff.deliver", str(tenant.id), "")
        time.sleep(2)
        mails = _approval_mails(mailbox, tenant.slug)
        assert set(mails) == expected and set(mails.values()) == {1}, mails
    finally:
        worker.stop()
        broker.stop()


def test_two_workers_never_deliver_a_row_twice(
    app: Any, database: Any, redis_url: str, redis_prefix: str, mailbox: Mailbox, tmp_path: Any
) -> None:
    from signoff.app import create_app
    from signoff.worker.app import enqueue

    queue = f"{redis_prefix}pair-{uuid.uuid4().hex[:6]}"
    pair = create_app(
        app_config(database, redis_url, redis_prefix) | {"SIGNOFF_WORKER_QUEUE": queue}
    )
    workers = [
        start_worker(
            database,
            broker_url=redis_url,
            redis_url=redis_url,
            queue=queue,
            smtp_url=mailbox.url,
            log=tmp_path / f"worker{i}.log",
        )
        for i in range(2)
    ]
    try:
        tenant = make_tenant(pair)
        save(pair, tenant, "expense_approval", spec_expense())
        api = Api(fresh_client(pair), tenant)
        titles = [f"Pair {i} {tenant.slug}" for i in range(5)]
        for title in titles:
            rid = api.submit(800, title=title)
            with pair.app_context():  # the same work enqueued twice more: a retry, a sweep
                enqueue(pair, "signoff.deliver", str(tenant.id), rid)
                enqueue(pair, "signoff.deliver", str(tenant.id), "")
        expected = 2 * len(titles)
        mailbox.wait_for(
            lambda _: [1] if sum(_approval_mails(mailbox, tenant.slug).values()) >= expected else []
        )
        time.sleep(2)  # anything doubled would have arrived by now
        mails = _approval_mails(mailbox, tenant.slug)
        assert sum(mails.values()) == expected and set(mails.values()) == {1}, mails
        assert all("ready." in w.log_text() for w in workers)
    finally:
        for w in workers:
            w.stop()
