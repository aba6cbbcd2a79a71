"""Operator console: tenants (counts only), suspend/reactivate, audit status, health,
and the ``signoff create-operator`` command."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner

from signoff.cli.operator import create_operator_user
from tests.integration.views.conftest import fresh_client, submit, text_of

OPERATOR_PASSWORD = "Operat0r-passphrase!"


@pytest.fixture(scope="module")
def operator(app):
    name = f"op-{uuid.uuid4().hex[:6]}"
    create_operator_user(app, name, f"{name}@ops.example", OPERATOR_PASSWORD, "Olga", "Ops")
    return name


def _operator_client(app, operator):
    from tests.fixtures.tenants import web_login

    client = fresh_client(app)
    web_login(client, operator, OPERATOR_PASSWORD)
    return client


def test_tenant_members_cannot_open_the_console(tenant_a, login):
    admin = login(tenant_a.username("admin"))
    resp = admin.get("/operator/")
    assert resp.status_code in (302, 403)
    assert "Tenants" not in text_of(resp)
    assert admin.post(
        f"/operator/tenants/{tenant_a.id}/status", data={"status": "suspended"}
    ).status_code in (302, 403)
    assert fresh_client(admin.application).get("/operator/").status_code == 302


def test_dashboard_shows_counts_but_no_tenant_data(app, operator, portal_tenant):
    submit(
        app,
        portal_tenant,
        "purchase_request",
        {"item": "Top secret item", "amount": "9"},
        title="Confidential acquisition",
    )
    client = _operator_client(app, operator)
    page = client.get("/operator/")
    assert page.status_code == 200
    html = text_of(page)
    assert portal_tenant.slug in html
    row = html.split(f'data-slug="{portal_tenant.slug}"')[1].split("</tr>")[0]
    assert "<td>7</td><td>3</td><td>1</td><td>1</td>" in row  # members, workflows, requests
    assert "Confidential acquisition" not in html and "Top secret item" not in html
    assert f"alice@{portal_tenant.slug}" not in html
    assert 'data-testid="health"' in html and "postgresql" in html
    assert "tenant chains verified" in html or "broken" in html
    audit = text_of(client.get("/operator/audit/"))
    assert portal_tenant.slug in audit and "intact" in audit


def test_suspend_and_reactivate(app, database, operator, tenant_factory, login):
    t = tenant_factory()
    alice = login(t.username("alice"))
    assert alice.get(f"/t/{t.slug}/").status_code == 200
    client = _operator_client(app, operator)
    asked = client.post(f"/operator/tenants/{t.id}/status", data={"status": "suspended"})
    assert asked.status_code == 200 and "Yes, suspend" in text_of(asked)
    assert alice.get(f"/t/{t.slug}/").status_code == 200  # not yet: only asked
    resp = client.post(
        f"/operator/tenants/{t.id}/status", data={"status": "suspended", "confirm": "yes"}
    )
    assert resp.status_code == 302

    page = alice.get(f"/t/{t.slug}/")
    assert page.status_code == 403
    assert "This organisation is suspended" in text_of(page)
    assert alice.get(f"/t/{t.slug}/admin/").status_code == 403
    # Anonymous visitors are sent to sign in, as for any tenant.
    assert fresh_client(app).get(f"/t/{t.slug}/").status_code == 302

    with database.connect("admin") as conn:
        kept = conn.execute(
            "SELECT count(*) FROM membership WHERE tenant_id = %s", (t.id,)
        ).fetchone()[0]
        actions = [
            r[0]
            for r in conn.execute(
                "SELECT action FROM audit_event WHERE tenant_id = %s ORDER BY seq", (t.id,)
            )
        ]
    assert kept == 7 and "tenant.suspended" in actions

    client.post(f"/operator/tenants/{t.id}/status", data={"status": "active"})
    assert alice.get(f"/t/{t.slug}/").status_code == 200
    client.post(f"/operator/tenants/{t.id}/plan", data={"plan": "enterprise"})
    with database.connect("admin") as conn:
        assert conn.execute("SELECT plan FROM tenant WHERE id = %s", (t.id,)).fetchone() == (
            "enterprise",
        )
    assert (
        client.post(
            f"/operator/tenants/{uuid.uuid4()}/status", data={"status": "active"}
        ).status_code
        == 404
    )


def test_suspended_tenant_page_is_403_for_members_only(app, database, tenant_factory, login):
    t = tenant_factory()
    other = tenant_factory()
    with database.connect("admin") as conn:
        conn.execute("UPDATE tenant SET status = 'suspended' WHERE id = %s", (t.id,))
    outsider = login(other.username("admin"))
    assert outsider.get(f"/t/{t.slug}/").status_code == 404
    member = login(t.username("bob"))
    assert member.get(f"/t/{t.slug}/mine").status_code == 403


def test_create_operator_cli(app, database, monkeypatch):
    from signoff.cli import cli

    monkeypatch.setattr("signoff.app.create_app", lambda *a, **k: app)
    name = f"cli-op-{uuid.uuid4().hex[:6]}"
    runner = CliRunner()
    weak = runner.invoke(
        cli,
        ["create-operator", name, f"{name}@ops.example"],
        env={"SIGNOFF_OPERATOR_PASSWORD": "weak"},
    )
    assert weak.exit_code != 0 and "at least 10 characters" in weak.output
    result = runner.invoke(
        cli,
        ["create-operator", name, f"{name}@ops.example"],
        env={"SIGNOFF_OPERATOR_PASSWORD": OPERATOR_PASSWORD},
    )
    assert result.exit_code == 0, result.output
    with database.connect("admin") as conn:
        roles = conn.execute(
            "SELECT r.name FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id "
            "JOIN ab_role r ON r.id = ur.role_id WHERE u.username = %s",
            (name,),
        ).fetchall()
    assert roles == [("Operator",)]  # never FAB Admin (break-glass is create-platform-admin)
    again = runner.invoke(
        cli,
        ["create-operator", name, f"{name}@ops.example"],
        env={"SIGNOFF_OPERATOR_PASSWORD": OPERATOR_PASSWORD},
    )
    assert again.exit_code != 0 and "exists already" in again.output
    assert _operator_client(app, name).get("/operator/").status_code == 200
