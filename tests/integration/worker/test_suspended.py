"""A suspended tenant's notifications wait: the real worker runs the tenant's delivery
task and the outbox sweep and sends nothing; after reactivation the next sweep (what
the beat runs every 15 s) delivers every one of them, once."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

from tests.conftest import app_config
from tests.fixtures.tenants import fresh_client, make_tenant
from tests.fixtures.workflows import spec_expense
from tests.integration.api.conftest import Api
from tests.integration.worker.conftest import Mailbox, Worker, start_worker
from tests.integration.worker.helpers import deliveries, outbox
from tests.integration.workflow.conftest import save


def _set_status(database: Any, tenant: Any, status: str) -> None:
    with database.connect("admin") as conn:
        conn.execute("UPDATE tenant SET status = %s WHERE id = %s", (status, tenant.id))
        conn.commit()


def _finished(worker: Worker, task: str) -> int:
    return sum(
        1
        for line in worker.log_text().splitlines()
        if f"Task {task}[" in line and "succeeded" in line
    )


def _wait_finished(worker: Worker, task: str, count: int) -> None:
    deadline = time.monotonic() + 30
    while _finished(worker, task) < count:
        assert time.monotonic() < deadline, worker.log_text()[-3000:]
        time.sleep(0.2)


def _mails(mailbox: Mailbox, slug: str) -> Counter[tuple[str, str]]:
    return Counter((m["To"], m["Subject"]) for m in mailbox.messages() if slug in m["To"])


def test_a_suspended_tenant_waits_and_catches_up_after_reactivation(
    app: Any, database: Any, redis_url: str, redis_prefix: str, mailbox: Mailbox, tmp_path: Any
) -> None:
    from signoff.app import create_app
    from signoff.worker.app import enqueue

    queue = f"{redis_prefix}suspended-{uuid.uuid4().hex[:6]}"
    web = create_app(
        app_config(database, redis_url, redis_prefix) | {"SIGNOFF_WORKER_QUEUE": queue}
    )
    tenant = make_tenant(web)
    save(web, tenant, "expense_approval", spec_expense())
    api = Api(fresh_client(web), tenant)
    # No worker consumes the queue yet: the delivery task waits there while the
    # operator suspends the tenant.
    title = f"Suspended {tenant.slug}"
    rid = api.submit(800, title=title)
    assert outbox(database, rid) and not any(d for _, _, d in outbox(database, rid))
    _set_status(database, tenant, "suspended")

    worker = start_worker(
        database,
        broker_url=redis_url,
        redis_url=redis_url,
        queue=queue,
        smtp_url=mailbox.url,
        log=tmp_path / "worker.log",
    )
    try:
        # The queue was emptied when the worker started (start_worker): enqueue again
        # what the action and the beat would.
        with web.app_context():
            assert enqueue(web, "signoff.deliver", str(tenant.id), "")
            assert enqueue(web, "signoff.sweep_outbox")
        _wait_finished(worker, "signoff.deliver", 1)
        _wait_finished(worker, "signoff.sweep_outbox", 1)
        assert not any(d for _, _, d in outbox(database, rid))  # nothing fanned out
        assert deliveries(database, rid) == []
        assert _mails(mailbox, tenant.slug) == Counter()

        _set_status(database, tenant, "active")
        with web.app_context():
            assert enqueue(web, "signoff.sweep_outbox")
        expected = {
            (f"{who}@{tenant.slug}.example", f"[Tenant {tenant.slug}] Approval needed: {title}")
            for who in ("manager", "manager2")
        }
        mailbox.wait_for(lambda _: [1] if set(_mails(mailbox, tenant.slug)) >= expected else [])
        with web.app_context():
            assert enqueue(web, "signoff.sweep_outbox")
        _wait_finished(worker, "signoff.sweep_outbox", 3)
        mails = _mails(mailbox, tenant.slug)
        assert set(mails) == expected and set(mails.values()) == {1}, mails
        assert all(d for _, _, d in outbox(database, rid))
        assert {d[3] for d in deliveries(database, rid) if d[1] == "email"} == {"sent"}
    finally:
        worker.stop()
        _set_status(database, tenant, "active")
