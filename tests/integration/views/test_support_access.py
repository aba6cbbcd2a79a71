"""Support access over HTTP, as an attacker would try it: an operator reads a tenant
only while that tenant's admin grants it, every read lands in that tenant's audit
chain (which still verifies), and nothing carries over to another tenant, past
expiry or past revocation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from click.testing import CliRunner

from signoff.cli import cli
from signoff.cli.operator import create_operator_user
from tests.fixtures.tenants import fresh_client, web_login
from tests.integration.views.conftest import submit, text_of

OPERATOR_PASSWORD = "Operat0r-support-passphrase"
SECRET_TITLE = "Confidential acquisition"
SECRET_ITEM = "Top secret item"


@pytest.fixture(scope="module")
def operator(app: Any) -> tuple[str, int]:
    name = f"op-{uuid.uuid4().hex[:6]}"
    uid = create_operator_user(app, name, f"{name}@ops.example", OPERATOR_PASSWORD, "Olga", "Ops")
    return name, uid


def _op(app: Any, operator: tuple[str, int]) -> Any:
    client = fresh_client(app)
    web_login(client, operator[0], OPERATOR_PASSWORD)
    return client


@pytest.fixture
def secret_tenant(portal_tenant: Any, app: Any) -> tuple[Any, uuid.UUID]:
    rid = submit(
        app,
        portal_tenant,
        "purchase_request",
        {"item": SECRET_ITEM, "amount": "9"},
        title=SECRET_TITLE,
    )
    return portal_tenant, rid


def _events(database: Any, tenant_id: Any) -> list[tuple[str, int | None, Any, Any]]:
    with database.connect("admin") as conn:
        return [
            (r[0], r[1], r[2], r[3])
            for r in conn.execute(
                "SELECT action, actor_id, object_id, payload FROM audit_event "
                "WHERE tenant_id = %s ORDER BY seq",
                (tenant_id,),
            )
        ]


def _grant(client: Any, slug: str, hours: Any = 4, reason: str = "Ticket 4711") -> Any:
    return client.post(
        f"/t/{slug}/admin/support-access/grant", data={"hours": str(hours), "reason": reason}
    )


def _grants(database: Any, tenant_id: Any) -> list[tuple[Any, ...]]:
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT id, granted_by, reason, expires_at - created_at, revoked_at "
            "FROM support_access_grant WHERE tenant_id = %s ORDER BY created_at",
            (tenant_id,),
        ).fetchall()


def _assert_refused(resp: Any, *secrets: str) -> None:
    assert resp.status_code == 403, resp.status_code
    html = text_of(resp)
    assert "No support access" in html
    for s in (SECRET_TITLE, SECRET_ITEM, *secrets):
        assert s not in html


def test_without_a_grant_the_operator_sees_nothing(app, database, operator, secret_tenant):
    t, rid = secret_tenant
    client = _op(app, operator)
    before = _events(database, t.id)
    _assert_refused(client.get(f"/operator/support/{t.id}/"), f"alice@{t.slug}")
    _assert_refused(client.get(f"/operator/support/{t.id}/requests/{rid}"))
    assert t.slug not in text_of(client.get("/operator/support/"))
    assert _events(database, t.id) == before  # a refusal reads and records nothing
    assert client.get(f"/operator/support/{uuid.uuid4()}/").status_code == 404
    assert client.get("/operator/support/not-a-uuid/").status_code == 404


def test_grant_read_and_audit_chain(app, database, operator, secret_tenant, login, redis_url):
    t, rid = secret_tenant
    admin = login(t.username("admin"))
    page = admin.get(f"/t/{t.slug}/admin/support-access/")
    assert page.status_code == 200 and "not granted" in text_of(page)
    assert _grant(admin, t.slug, 4, "Ticket 4711: stuck approvals").status_code == 302
    ((grant_id, granted_by, reason, duration, revoked),) = _grants(database, t.id)
    assert (granted_by, reason, revoked) == (
        int(t.user("admin")),
        "Ticket 4711: stuck approvals",
        None,
    )
    assert duration.total_seconds() == 4 * 3600
    assert "support.granted" in [e[0] for e in _events(database, t.id)]

    client = _op(app, operator)
    listing = text_of(client.get("/operator/support/"))
    assert t.slug in listing and "Ticket 4711" in listing
    before = len(_events(database, t.id))
    page = client.get(f"/operator/support/{t.id}/")
    assert page.status_code == 200
    html = text_of(page)
    assert SECRET_TITLE in html and f"alice@{t.slug}" in html and "purchase_request" in html
    assert "recorded" in html
    detail = client.get(f"/operator/support/{t.id}/requests/{rid}")
    assert detail.status_code == 200 and SECRET_ITEM in text_of(detail)
    # Read-only: there is nothing to post to, and the tenant's own pages stay closed.
    assert client.post(f"/operator/support/{t.id}/requests/{rid}").status_code == 405
    assert client.get(f"/t/{t.slug}/requests/{rid}").status_code == 404

    events = _events(database, t.id)[before:]
    assert [(a, actor, oid) for a, actor, oid, _ in events] == [
        ("support.opened", operator[1], str(t.id)),
        ("support.read", operator[1], str(rid)),
    ]
    for _, _, _, payload in events:
        assert payload["grant_id"] == str(grant_id) and payload["staff"] == operator[0]

    # The tenant admin sees the grant and each use.
    own = text_of(admin.get(f"/t/{t.slug}/admin/support-access/"))
    assert "support.opened" in own and "support.read" in own and operator[0] in own

    result = CliRunner().invoke(
        cli,
        ["audit", "verify", "--tenant", t.slug],
        env={
            "SIGNOFF_DATABASE_URL": database.app_url.render_as_string(hide_password=False),
            "SIGNOFF_SECRET_KEY": "cli-test-secret-key-0123456789abcdef",
            "SIGNOFF_REDIS_URL": redis_url,
            "SIGNOFF_AUDIT_KEY": "test-audit-key",
        },
    )
    assert result.exit_code == 0, result.output
    assert "chain ok" in result.output


def test_revoked_grant_is_refused_at_once(app, database, operator, secret_tenant, login):
    t, rid = secret_tenant
    admin = login(t.username("admin"))
    _grant(admin, t.slug)
    client = _op(app, operator)
    assert client.get(f"/operator/support/{t.id}/").status_code == 200
    ((grant_id, *_),) = _grants(database, t.id)
    assert admin.post(f"/t/{t.slug}/admin/support-access/{grant_id}/revoke").status_code == 302
    _assert_refused(client.get(f"/operator/support/{t.id}/"))
    _assert_refused(client.get(f"/operator/support/{t.id}/requests/{rid}"))
    actions = [e[0] for e in _events(database, t.id)]
    assert actions[-2:] == ["support.opened", "support.revoked"]
    assert "revoked" in text_of(admin.get(f"/t/{t.slug}/admin/support-access/"))


def test_expired_grant_is_refused_by_the_database_clock(
    app, database, operator, secret_tenant, login
):
    t, rid = secret_tenant
    _grant(login(t.username("admin")), t.slug, 1)
    client = _op(app, operator)
    assert client.get(f"/operator/support/{t.id}/").status_code == 200
    # The hour has passed (the rows as PostgreSQL would hold them an hour later).
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE support_access_grant SET created_at = now() - interval '61 minutes', "
            "expires_at = now() - interval '1 minute' WHERE tenant_id = %s",
            (t.id,),
        )
        conn.commit()
    _assert_refused(client.get(f"/operator/support/{t.id}/"))
    _assert_refused(client.get(f"/operator/support/{t.id}/requests/{rid}"))
    assert t.slug not in text_of(client.get("/operator/support/"))
    assert "expired" in text_of(
        login(t.username("admin")).get(f"/t/{t.slug}/admin/support-access/")
    )


def test_a_grant_in_one_tenant_opens_nothing_in_another(
    app, database, operator, secret_tenant, tenant_factory, login
):
    t, rid = secret_tenant
    other = tenant_factory()
    _grant(login(other.username("admin")), other.slug)
    client = _op(app, operator)
    assert client.get(f"/operator/support/{other.id}/").status_code == 200
    _assert_refused(client.get(f"/operator/support/{t.id}/"))
    # The granted tenant's URL with the other tenant's request id: read under the
    # granted tenant's binding, it does not exist.
    resp = client.get(f"/operator/support/{other.id}/requests/{rid}")
    assert resp.status_code == 404 and SECRET_TITLE not in text_of(resp)
    assert "support.read" not in [e[0] for e in _events(database, other.id)]
    assert not [e for e in _events(database, t.id) if e[0].startswith("support.")]


def test_a_tenant_admin_cannot_grant_or_revoke_for_another_tenant(
    app, database, secret_tenant, tenant_factory, login
):
    t, _ = secret_tenant
    other = tenant_factory()
    other_admin = login(other.username("admin"))
    assert _grant(other_admin, t.slug).status_code == 404
    assert _grants(database, t.id) == []
    # A's grant id through B's admin: the same 404 as a random id, and A's grant stays.
    _grant(login(t.username("admin")), t.slug)
    ((grant_id, *_),) = _grants(database, t.id)
    for gid in (grant_id, uuid.uuid4(), "nope"):
        resp = other_admin.post(f"/t/{other.slug}/admin/support-access/{gid}/revoke")
        assert resp.status_code == 404, gid
    assert _grants(database, t.id)[0][4] is None
    # Members without the tenant's Admin role cannot grant either.
    member = login(t.username("manager"))
    assert _grant(member, t.slug).status_code == 403
    assert member.get(f"/t/{t.slug}/admin/support-access/").status_code == 403
    assert len(_grants(database, t.id)) == 1


@pytest.mark.parametrize(
    ("hours", "reason", "message"),
    [
        (0, "x", "between 1 and 72"),
        (73, "x", "between 1 and 72"),
        ("soon", "x", "whole number"),
        (4, "   ", "reason is required"),
        (4, "<b></b>", "reason is required"),
        (4, "y" * 501, "longer than 500"),
    ],
)
def test_bad_grants_are_refused_with_the_field(
    app, database, tenant_factory, login, hours, reason, message
):
    t = tenant_factory({"admin": ["Admin"]}, managers={})
    admin = login(t.username("admin"))
    resp = _grant(admin, t.slug, hours, reason)
    assert resp.status_code == 302
    page = text_of(admin.get(f"/t/{t.slug}/admin/support-access/"))
    assert message in page
    assert _grants(database, t.id) == []


def test_tenant_people_cannot_use_the_operator_support_view(
    app, database, secret_tenant, tenant_factory, login
):
    """A grant opens the tenant to platform staff, not to another tenant's admin."""
    t, rid = secret_tenant
    _grant(login(t.username("admin")), t.slug)
    outsider = tenant_factory()
    for who in (login(outsider.username("admin")), login(t.username("alice")), fresh_client(app)):
        for path in (
            "/operator/support/",
            f"/operator/support/{t.id}/",
            f"/operator/support/{t.id}/requests/{rid}",
        ):
            resp = who.get(path)
            assert resp.status_code in (302, 403), (path, resp.status_code)
            # The error page names the signed-in person (whose test username holds
            # the slug), nothing of the tenant.
            page = text_of(resp).replace(t.username("alice"), "")
            assert SECRET_TITLE not in page and t.slug not in page
    assert not [e for e in _events(database, t.id) if e[0] in ("support.opened", "support.read")]
