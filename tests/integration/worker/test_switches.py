"""E-mail switched off, platform-wide (``FAB_APPROVAL_EMAIL_NOTIFICATIONS=False``, the
issue's original bug) or by a member's preference: the real worker fans the outbox out
and no e-mail delivery is made, no mail arrives; the in-app notification remains."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import app_config
from tests.fixtures.tenants import fresh_client, make_tenant
from tests.fixtures.workflows import spec_expense
from tests.integration.api.conftest import Api
from tests.integration.worker.conftest import Mailbox, start_worker
from tests.integration.worker.helpers import deliveries, outbox, user_id, wait_dispatched
from tests.integration.workflow.conftest import save


def _mails_of(mailbox: Mailbox, slug: str) -> list[str]:
    return [f"{m['To']}: {m['Subject']}" for m in mailbox.messages() if slug in m["To"]]


def test_email_switched_off_for_the_platform_sends_nothing(
    app: Any, database: Any, redis_url: str, redis_prefix: str, mailbox: Mailbox, tmp_path: Any
) -> None:
    from signoff.app import create_app

    queue = f"{redis_prefix}mail-off-{uuid.uuid4().hex[:6]}"
    off = {"FAB_APPROVAL_EMAIL_NOTIFICATIONS": "False"}
    web = create_app(
        app_config(database, redis_url, redis_prefix, SIGNOFF_SMTP_URL=mailbox.url)
        | {"SIGNOFF_WORKER_QUEUE": queue, "FAB_APPROVAL_EMAIL_NOTIFICATIONS": False}
    )
    worker = start_worker(
        database,
        broker_url=redis_url,
        redis_url=redis_url,
        queue=queue,
        smtp_url=mailbox.url,
        log=tmp_path / "worker.log",
        extra_env=off,
    )
    try:
        tenant = make_tenant(web)
        save(web, tenant, "expense_approval", spec_expense())
        api = Api(fresh_client(web), tenant)
        rid = api.submit(5000, title=f"Quiet {tenant.slug}")
        wait_dispatched(database, rid, {"approval_needed"})
        approved = api.post(f"/api/v1/approval-workflow/approve/{rid}/0", "manager")
        assert approved.status_code == 200, approved.get_json()
        # The approval notifies the finance step's approvers (in-app).
        finance = user_id(database, tenant.username("finance"))
        wait_dispatched(database, rid, {"approval_needed"})
        assert ("approval_needed", finance, True) in outbox(database, rid)
        assert [d for d in deliveries(database, rid) if d[1] == "email"] == []
        assert _mails_of(mailbox, tenant.slug) == []
        assert "signoff.deliver" in worker.log_text()  # the worker did handle them
    finally:
        worker.stop()


def test_a_member_who_switched_email_off_gets_none(
    app: Any, worker: Any, mailbox: Mailbox, database: Any, tenant_factory: Any
) -> None:
    tenant = tenant_factory()
    save(app, tenant, "expense_approval", spec_expense())
    api = Api(fresh_client(app), tenant)
    saved = api.put(
        "/api/v1/notifications/preferences",
        "manager",
        json={"email": {"approval_needed": False}},
    )
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["email"]["approval_needed"] is False

    title = f"Prefs {tenant.slug}"
    rid = api.submit(5000, title=title)
    # manager2 kept e-mail on: their mail arrives, fanned out in the same pass.
    told = mailbox.wait_for(
        lambda ms: [m for m in ms if m["To"] == f"manager2@{tenant.slug}.example"]
    )
    assert told and title in told[0]["Subject"]
    wait_dispatched(database, rid, {"approval_needed"})
    manager = user_id(database, tenant.username("manager"))
    assert ("approval_needed", manager, True) in outbox(database, rid)
    email_to = {d[2] for d in deliveries(database, rid) if d[1] == "email"}
    assert manager not in email_to and user_id(database, tenant.username("manager2")) in email_to
    assert [m for m in _mails_of(mailbox, tenant.slug) if m.startswith("manager@")] == []
