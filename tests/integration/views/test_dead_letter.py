"""The dead letter on the tenant admin's page: listed with its error, retried by the
admin; another tenant's admin gets 404 for it and for its retry."""

from __future__ import annotations

import socket
from typing import Any

from signoff.workflow import actions as A
from tests.integration.workflow.conftest import actor, in_tenant


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dead_delivery(app: Any, database: Any, tenant: Any) -> str:
    from signoff.extensions import db
    from signoff.notifications.dispatch import dispatch_tenant

    with in_tenant(app, tenant) as s:
        rid = A.do_submit(
            s,
            actor=actor(tenant, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": "2500", "description": "Laptop"},
        ).request_id
    old = dict(app.config)
    app.config.update(
        SIGNOFF_SMTP_URL=f"smtp://127.0.0.1:{_closed_port()}", SIGNOFF_NOTIFY_MAX_ATTEMPTS=1
    )
    try:
        with app.app_context():
            dispatch_tenant(db.session, tenant.id, request_id=rid)
            db.session.remove()
    finally:
        app.config.update(
            SIGNOFF_SMTP_URL=old.get("SIGNOFF_SMTP_URL"),
            SIGNOFF_NOTIFY_MAX_ATTEMPTS=old.get("SIGNOFF_NOTIFY_MAX_ATTEMPTS"),
        )
    with database.connect("admin") as conn:
        row = conn.execute(
            "SELECT d.id FROM notification_delivery d JOIN notification_outbox n "
            "ON n.tenant_id = d.tenant_id AND n.id = d.outbox_id "
            "WHERE n.request_id = %s AND d.status = 'dead' LIMIT 1",
            (rid,),
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_admin_sees_and_retries_the_dead_letter_and_others_cannot(
    app: Any, database: Any, portal_tenant: Any, tenant_factory: Any, login: Any
) -> None:
    tenant = portal_tenant
    dead = _dead_delivery(app, database, tenant)
    admin = login(tenant.username("admin"))
    page = admin.get(f"/t/{tenant.slug}/admin/deliveries/")
    assert page.status_code == 200
    assert b'data-testid="deliveries"' in page.data and b"Connection" in page.data

    other = tenant_factory()
    stranger = login(other.username("admin"))
    assert stranger.get(f"/t/{tenant.slug}/admin/deliveries/").status_code == 404
    listed = stranger.get(f"/t/{other.slug}/admin/deliveries/")
    assert dead.encode() not in listed.data
    refused = stranger.post(f"/t/{other.slug}/admin/deliveries/{dead}/retry")
    assert refused.status_code == 404
    member = login(tenant.username("manager"))
    assert member.post(f"/t/{tenant.slug}/admin/deliveries/{dead}/retry").status_code in (403, 404)

    done = admin.post(f"/t/{tenant.slug}/admin/deliveries/{dead}/retry")
    assert done.status_code == 302
    with database.connect("admin") as conn:
        status, attempts = conn.execute(
            "SELECT status, attempts FROM notification_delivery WHERE id = %s", (dead,)
        ).fetchone()
    assert (status, attempts) == ("pending", 0)


def test_the_operator_sees_counts_only_and_retries_a_tenants_dead_letter(
    app: Any, database: Any, portal_tenant: Any
) -> None:
    import uuid

    from signoff.cli.operator import create_operator_user
    from tests.fixtures.tenants import fresh_client, web_login

    dead = _dead_delivery(app, database, portal_tenant)
    name = f"op-{uuid.uuid4().hex[:6]}"
    create_operator_user(app, name, f"{name}@ops.example", "Operator-pass-0451", "Olga", "Ops")
    op = fresh_client(app)
    web_login(op, name, "Operator-pass-0451")
    page = op.get(f"/operator/tenants/?q={portal_tenant.slug}")
    assert page.status_code == 200
    assert b"Retry the dead deliveries of " + portal_tenant.slug.encode() in page.data
    assert b"Connection" not in page.data  # no error text: counts only
    with database.connect("admin") as conn:
        tenant_id = conn.execute(
            "SELECT id FROM tenant WHERE slug = %s", (portal_tenant.slug,)
        ).fetchone()[0]
    done = op.post(f"/operator/tenants/{tenant_id}/retry-deliveries")
    assert done.status_code == 302
    with database.connect("admin") as conn:
        status = conn.execute(
            "SELECT status FROM notification_delivery WHERE id = %s", (dead,)
        ).fetchone()[0]
        audited = conn.execute(
            "SELECT count(*) FROM audit_event WHERE tenant_id = %s "
            "AND action = 'notifications.retried'",
            (tenant_id,),
        ).fetchone()[0]
    assert status == "pending" and audited == 1
