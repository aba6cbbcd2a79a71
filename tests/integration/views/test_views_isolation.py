"""Another tenant's ids in page URLs answer exactly like random ids (404), for reads
and writes, and change nothing. The views do not filter by tenant themselves:
row-level security hides the rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.views.conftest import comparable_page, submit, text_of


@pytest.fixture(scope="module")
def victims(app, tenant_factory, database):
    """Tenant B's request, workflow key, member, invitation, rule and delegation ids."""
    from signoff.tenancy.invites import create_invitation
    from signoff.workflow.actions import do_delegate
    from signoff.workflow.models import ApprovalRule
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import actor, in_tenant, save

    b = tenant_factory()
    save(app, b, "secret_b_flow", spec_expense())
    rid = submit(app, b, "secret_b_flow", {"amount": "500"}, title="B secret")
    with in_tenant(app, b) as session:
        session.add(ApprovalRule(name="b-rule", definition={"name": "b-rule"}))
        session.commit()
        now = datetime.now(UTC)
        delegation = do_delegate(
            session,
            actor=actor(b, "manager"),
            delegate_id=b.user("manager2"),
            starts_at=now,
            ends_at=now + timedelta(days=1),
        )
    with app.test_request_context(), in_tenant(app, b) as session:
        from flask import g

        g.user = None
        invitation, _ = create_invitation(
            session, invited_by=b.user("admin"), email="victim@example.org", roles=["Requester"]
        )
        invitation_id = invitation.id
        session.commit()
    with database.connect("admin") as conn:
        (member_id,) = conn.execute(
            "SELECT id FROM membership WHERE tenant_id = %s AND user_id = %s",
            (b.id, b.user("alice")),
        ).fetchone()
        (rule_id,) = conn.execute(
            "SELECT id FROM approval_rule WHERE tenant_id = %s", (b.id,)
        ).fetchone()
    with in_tenant(app, b) as session:
        from signoff.tenancy.support import grant

        support_grant = grant(session, granted_by=b.user("admin"), hours=2, reason="b support")
        support_grant_id = support_grant.id
        session.commit()
    return {
        "tenant": b,
        "request": rid,
        "member": member_id,
        "invitation": invitation_id,
        "rule": rule_id,
        "delegation": delegation,
        "grant": support_grant_id,
    }


GETS = [
    "/requests/{request}",
    "/requests/{request}/resubmit",
    "/new/secret_b_flow",
    "/admin/members/{member}",
    "/admin/workflows/secret_b_flow/",
    "/admin/workflows/secret_b_flow/edit",
    "/admin/workflows/secret_b_flow/diff?a=1&b=2",
    "/admin/workflows/secret_b_flow/versions/1",
    "/admin/rules/{rule}/edit",
]
POSTS = [
    ("/requests/{request}/decide", {"step": "0", "verdict": "approve"}),
    ("/requests/{request}/comment", {"body": "pwned"}),
    ("/requests/{request}/withdraw", {}),
    ("/requests/{request}/resubmit", {"amount": "1"}),
    ("/admin/members/{member}", {"roles": ["Admin"], "active": "on"}),
    ("/admin/invitations/{invitation}/revoke", {}),
    ("/admin/rules/{rule}/edit", {"definition": "name: x"}),
    ("/admin/rules/{rule}/delete", {}),
    ("/admin/workflows/secret_b_flow/edit", {"definition": "name: x\nsteps: []"}),
    ("/delegations/{delegation}/revoke", {}),
    ("/admin/support-access/{grant}/revoke", {}),
]


def _random(victims):
    return {
        "request": uuid.uuid4(),
        "member": uuid.uuid4(),
        "invitation": uuid.uuid4(),
        "rule": uuid.uuid4(),
        "delegation": uuid.uuid4(),
        "grant": uuid.uuid4(),
    }


@pytest.mark.parametrize("path", GETS)
def test_get_with_another_tenants_id_is_a_plain_404(victims, tenant_a, login, path):
    admin = login(tenant_a.username("admin"))
    base = f"/t/{tenant_a.slug}"
    theirs = admin.get(base + path.format(**victims))
    random = admin.get(base + path.format(**_random(victims)).replace("secret_b_flow", "nope_x"))
    assert theirs.status_code == random.status_code == 404
    assert comparable_page(theirs) == comparable_page(random)
    assert "secret" not in text_of(theirs).lower()


@pytest.mark.parametrize(("path", "data"), POSTS)
def test_post_with_another_tenants_id_is_a_plain_404_and_changes_nothing(
    victims, database, tenant_a, login, path, data
):
    def snapshot():
        with database.connect("admin") as conn:
            return [
                conn.execute(
                    f"SELECT count(*), max(x::text) FROM {table} AS x WHERE tenant_id = %s",
                    (victims["tenant"].id,),
                ).fetchone()
                for table in (
                    "approval_request",
                    "step_decision",
                    "request_comment",
                    "membership",
                    "membership_role",
                    "invitation",
                    "approval_rule",
                    "workflow_version",
                    "delegation",
                    "support_access_grant",
                    "audit_event",
                )
            ]

    before = snapshot()
    admin = login(tenant_a.username("admin"))
    base = f"/t/{tenant_a.slug}"
    theirs = admin.post(base + path.format(**victims), data=data)
    random = admin.post(
        base + path.format(**_random(victims)).replace("secret_b_flow", "nope_x"), data=data
    )
    assert theirs.status_code == random.status_code == 404
    assert comparable_page(theirs) == comparable_page(random)
    assert snapshot() == before


def test_bulk_with_another_tenants_request_reports_not_found(victims, tenant_a, login):
    admin = login(tenant_a.username("admin"))
    items = [f"{victims['request']}:0:", f"{uuid.uuid4()}:0:"]
    # The confirmation lists only what is in the admin's own inbox: no title leaks.
    asked = text_of(admin.post(f"/t/{tenant_a.slug}/bulk", data={"item": items}))
    assert asked.count("(not in your inbox)") == 2 and "B secret" not in asked
    resp = admin.post(f"/t/{tenant_a.slug}/bulk", data={"item": items, "confirm": "yes"})
    html = text_of(resp)
    assert html.count("Not found") == 2
    assert "B secret" not in html


def test_member_of_another_tenant_gets_404_for_every_page(victims, tenant_a, login):
    b = victims["tenant"]
    outsider = login(tenant_a.username("admin"))
    for path in (
        "/",
        "/mine",
        "/new",
        "/delegations",
        f"/requests/{victims['request']}",
        "/admin/",
        "/admin/members/",
        "/admin/workflows/",
        "/admin/audit/",
    ):
        theirs = outsider.get(f"/t/{b.slug}{path}")
        nowhere = outsider.get(f"/t/no-such-tenant{path}")
        assert theirs.status_code == nowhere.status_code == 404, path
        assert comparable_page(theirs) == comparable_page(nowhere)
