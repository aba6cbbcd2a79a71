"""Issue 12 item 4: a password reset through the e-mailed link and a password change
are audited (``password.reset``, ``password.changed``) in the chain of every tenant
the account is an active member of, and ``signoff audit verify`` still passes.

Through HTTP with the embedded SMTP server reading the reset mail."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner

from tests.fixtures.tenants import TenantFixture, fresh_client, web_login
from tests.integration.views.conftest import link, mails_to

NEW_PASSWORD = "Audited-and-h4ppy"
CHANGED_PASSWORD = "Changed-and-4udited"


def _join(app: Any, tenant: TenantFixture, username: str) -> None:
    """Make the existing account ``username`` a member of ``tenant`` too."""
    from signoff.extensions import db
    from signoff.provisioning.manifest import apply_manifest

    manifest = {
        "tenant": {"slug": tenant.slug, "name": f"Tenant {tenant.slug}", "plan": "team"},
        "members": [{"username": username, "roles": ["Requester"]}],
    }
    with app.app_context():
        apply_manifest(app, db.session, manifest)


def _events(database: Any, tenant: TenantFixture, action: str) -> list[tuple[Any, ...]]:
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT actor_id, object_type, object_id, payload FROM audit_event "
            "WHERE tenant_id = %s AND action = %s ORDER BY seq",
            (tenant.id, action),
        ).fetchall()


def _verify(database: Any, redis_url: str, tenant: TenantFixture) -> Any:
    from signoff.cli import cli

    return CliRunner().invoke(
        cli,
        ["audit", "verify", "--tenant", tenant.slug],
        env={
            "SIGNOFF_DATABASE_URL": database.app_url.render_as_string(hide_password=False),
            "SIGNOFF_SECRET_KEY": "cli-test-secret-key-0123456789abcdef",
            "SIGNOFF_REDIS_URL": redis_url,
            "SIGNOFF_AUDIT_KEY": "test-audit-key",
        },
    )


def test_reset_and_change_are_audited_in_every_tenant_of_the_account(
    mail_app, mailbox, database, redis_url, tenant_factory
):
    home = tenant_factory({"alice": ["Requester"], "admin": ["Admin"]}, managers={})
    second = tenant_factory({"admin": ["Admin"]}, managers={})
    left = tenant_factory({"admin": ["Admin"]}, managers={})
    stranger = tenant_factory({"admin": ["Admin"]}, managers={})
    alice = home.username("alice")
    uid = int(home.user("alice"))
    _join(mail_app, second, alice)
    _join(mail_app, left, alice)
    with database.connect("admin") as conn:  # alice left this one: inactive membership
        conn.execute(
            "UPDATE membership SET active = false WHERE tenant_id = %s AND user_id = %s",
            (left.id, uid),
        )
        conn.commit()

    # Forgotten password: the link in the mail sets a new one.
    email = f"alice@{home.slug}.example"
    fresh_client(mail_app).post("/account/forgot-password", data={"email": email})
    path = link(mails_to(mailbox, email)[0], "/account/reset/")
    guest = fresh_client(mail_app)
    address = guest.environ_base["REMOTE_ADDR"]
    resp = guest.post(path, data={"password": NEW_PASSWORD})
    assert resp.status_code == 302 and "/login/" in resp.headers["Location"]

    for tenant in (home, second):
        rows = _events(database, tenant, "password.reset")
        assert [(a, t, o) for a, t, o, _ in rows] == [(uid, "user", str(uid))], tenant.slug
        assert rows[0][3] == {"method": "email_link", "ip_address": address}
    for tenant in (left, stranger):
        assert _events(database, tenant, "password.reset") == [], tenant.slug

    # Changing it on one tenant's page is recorded in both of the account's tenants.
    client = fresh_client(mail_app)
    web_login(client, alice, NEW_PASSWORD)
    changed = client.post(
        f"/t/{second.slug}/account/password",
        data={"current_password": NEW_PASSWORD, "new_password": CHANGED_PASSWORD},
    )
    assert changed.status_code == 302
    for tenant in (home, second):
        rows = _events(database, tenant, "password.changed")
        assert [(a, t, o) for a, t, o, _ in rows] == [(uid, "user", str(uid))], tenant.slug
    for tenant in (left, stranger):
        assert _events(database, tenant, "password.changed") == [], tenant.slug
    web_login(fresh_client(mail_app), alice, CHANGED_PASSWORD)

    for tenant in (home, second, left, stranger):
        result = _verify(database, redis_url, tenant)
        assert result.exit_code == 0, result.output
        assert "chain ok" in result.output


def test_the_app_role_lists_an_accounts_tenants_only_with_no_tenant_bound(database, tenant_factory):
    """``signoff.account_tenants`` answers with tenant ids only, and refuses a
    transaction that has a tenant bound (a tenant's request never learns others)."""
    import psycopg
    import pytest

    tenant_a = tenant_factory()  # its own people: shared tenants' members get invited on

    uid = int(tenant_a.user("alice"))
    with database.connect("app") as conn:
        rows = conn.execute("SELECT * FROM signoff.account_tenants(%s)", (uid,)).fetchall()
        assert rows == [(tenant_a.id,)]
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_a.id),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM signoff.account_tenants(%s)", (uid,))
        conn.rollback()
        # RLS still hides other tenants' memberships from the app role itself.
        assert conn.execute("SELECT count(*) FROM membership").fetchone() == (0,)
