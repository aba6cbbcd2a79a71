"""Tenant self-onboarding: the sign-up page and ``signoff.provisioning.onboarding.sign_up``."""

from __future__ import annotations

import uuid

import pytest

from signoff.provisioning.onboarding import STARTER_WORKFLOWS, slug_problems
from signoff.tenancy.accounts import password_problems
from tests.conftest import app_config
from tests.fixtures.tenants import PASSWORD
from tests.integration.views.conftest import (
    comparable_page,
    fresh_client,
    link,
    mails_to,
    text_of,
)
from tests.integration.worker.conftest import body

STRONG = "Tr0ubadour-and-friends"


def _form(slug, email=None, **extra):
    data = {
        "organisation": f"Org {slug}",
        "slug": slug,
        "admin_name": "Ada Lovelace",
        "email": email or f"ada@{slug}.example",
        "password": STRONG,
    }
    data.update(extra)
    return data


def _rows(database, sql, *args):
    with database.connect("admin") as conn:
        return conn.execute(sql, args).fetchall()


def new_slug() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def test_sign_up_creates_everything_and_signs_the_admin_in(mail_app, mailbox, database):
    """Sign-up continues by e-mail; the verification link creates the tenant, its
    admin and starter workflows, and signs the admin in."""
    client = fresh_client(mail_app)
    slug = new_slug()
    assert client.get("/signup/").status_code == 200
    resp = client.post("/signup/", data=_form(slug, email=f"Ada@{slug.upper()}.example"))
    assert resp.status_code == 200, text_of(resp)
    assert "Check your e-mail" in text_of(resp)
    assert _rows(database, "SELECT 1 FROM tenant WHERE slug = %s", slug) == []
    (mail,) = mails_to(mailbox, f"ada@{slug}.example")
    resp = client.post(link(mail, "/account/verify/"))
    assert resp.status_code == 302, text_of(resp)
    assert resp.headers["Location"].endswith(f"/t/{slug}/?welcome=1")

    ((tenant_id, name, status, plan),) = _rows(
        database, "SELECT id, name, status, plan FROM tenant WHERE slug = %s", slug
    )
    assert (name, status, plan) == (f"Org {slug}", "active", "free")
    ((user_id, username, _email, first, last),) = _rows(
        database,
        "SELECT id, username, email, first_name, last_name FROM ab_user WHERE email = %s",
        f"ada@{slug}.example",
    )
    assert (username, first, last) == (f"ada@{slug}.example", "Ada", "Lovelace")
    roles = _rows(
        database,
        "SELECT r.name FROM membership m JOIN membership_role mr ON mr.membership_id = m.id "
        "AND mr.tenant_id = m.tenant_id JOIN tenant_role r ON r.id = mr.role_id "
        "WHERE m.tenant_id = %s AND m.user_id = %s",
        tenant_id,
        user_id,
    )
    assert roles == [("Admin",)]
    keys = {
        r[0] for r in _rows(database, "SELECT key FROM workflow WHERE tenant_id = %s", tenant_id)
    }
    assert keys == set(STARTER_WORKFLOWS)
    events = _rows(
        database, "SELECT action, actor_id FROM audit_event WHERE tenant_id = %s", tenant_id
    )
    assert events == [("tenant.signed_up", user_id)]

    # Signed in, in the new tenant, as its admin.
    home = client.get(f"/t/{slug}/?welcome=1")
    assert home.status_code == 200
    assert f"Welcome to Org {slug}" in text_of(home)
    assert client.get(f"/t/{slug}/admin/").status_code == 200
    assert client.get(f"/t/{slug}/new/expense_approval").status_code == 200


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("admin", "is reserved"),
        ("api", "is reserved"),
        ("A", "use 3-40 lowercase"),
        ("has space", "use 3-40 lowercase"),
        ("-dash", "use 3-40 lowercase"),
        ("a--b", "two hyphens"),
    ],
)
def test_bad_slugs_are_refused_next_to_the_field(app, database, slug, message):
    client = fresh_client(app)
    resp = client.post("/signup/", data=_form(slug, email=f"x-{uuid.uuid4().hex[:6]}@ex.example"))
    assert resp.status_code == 422
    html = text_of(resp)
    assert message in html.split('id="slug"')[1].split('id="admin_name"')[0]
    assert _rows(database, "SELECT 1 FROM tenant WHERE slug = %s", slug) == []


def test_taken_slug_is_refused_and_nothing_is_created(app, database, tenant_a):
    client = fresh_client(app)
    email = f"new-{uuid.uuid4().hex[:6]}@ex.example"
    resp = client.post("/signup/", data=_form(tenant_a.slug, email=email))
    assert resp.status_code == 422
    assert "already taken" in text_of(resp)
    assert _rows(database, "SELECT 1 FROM ab_user WHERE email = %s", email) == []


def test_weak_password_and_bad_email(app):
    client = fresh_client(app)
    resp = client.post("/signup/", data=_form(new_slug(), email="not-an-email", password="short"))
    assert resp.status_code == 422
    html = text_of(resp)
    assert "at least 10 characters" in html
    assert "not a valid email" in html
    assert password_problems("password1234")
    assert password_problems("aaaaaaaaaaaaaaaaaaaa")
    assert password_problems("ada.lovelace99!", email="ada.lovelace@x.example")
    assert not password_problems("correct horse battery staple")
    assert not password_problems("Tr0ub4dor&3x")
    assert slug_problems("acme-corp") == []


def test_existing_email_must_sign_in_first_whatever_the_password(
    mail_app, mailbox, database, tenant_factory
):
    """Sign-up never signs an existing account in, so it cannot be used to guess a
    password beside the rate-limited login: right or wrong password, same answer (the
    one a new address gets), no tenant created, nobody logged in; the account's owner
    is told by e-mail to sign in first."""
    tenant = tenant_factory()
    email = f"admin@{tenant.slug}.example"
    client = fresh_client(mail_app)
    answers = []
    for password in (STRONG, PASSWORD):
        slug = new_slug()
        resp = client.post("/signup/", data=_form(slug, email=email, password=password))
        assert resp.status_code == 200
        assert "Check your e-mail" in text_of(resp)
        answers.append(comparable_page(resp).replace(slug, "<slug>"))
        ((count,),) = _rows(database, "SELECT count(*) FROM tenant WHERE slug = %s", slug)
        assert count == 0
    assert answers[0] == answers[1]
    assert client.get(f"/t/{tenant.slug}/").status_code in (302, 404)
    for mail in mails_to(mailbox, email, expect=2):
        assert "already has a Signoff account" in body(mail)
        assert "/account/verify/" not in body(mail)


def test_signed_in_user_creates_another_organisation(app, login, tenant_a):
    client = login(tenant_a.username("alice"))
    page = text_of(client.get("/signup/"))
    assert 'name="password"' not in page
    slug = new_slug()
    resp = client.post("/signup/", data={"organisation": "Side project", "slug": slug})
    assert resp.status_code == 302
    assert client.get(f"/t/{slug}/admin/").status_code == 200


def test_sign_up_is_one_transaction(app, database, monkeypatch):
    """A failure after the tenant and user rows were written leaves nothing behind
    (the verification link's sign-up is this same call, with the link's row in it)."""
    import signoff.workflow.registry as registry

    real = registry.add_version
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "add_version", failing)
    slug = new_slug()
    email = f"atomic@{slug}.example"
    from signoff.extensions import db
    from signoff.provisioning.onboarding import sign_up

    with app.test_request_context("/signup/"), pytest.raises(RuntimeError):
        sign_up(
            db.session,
            organisation="Atomic",
            slug=slug,
            admin_name="A B",
            email=email,
            password=STRONG,
        )
    assert _rows(database, "SELECT 1 FROM tenant WHERE slug = %s", slug) == []
    assert _rows(database, "SELECT 1 FROM ab_user WHERE email = %s", email) == []
    assert (
        _rows(
            database,
            "SELECT 1 FROM membership m JOIN tenant t ON t.id = m.tenant_id WHERE t.slug = %s",
            slug,
        )
        == []
    )


def test_sign_up_is_rate_limited_per_address(database, redis_url, redis_prefix):
    from signoff.app import create_app

    limited = create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}rl-{uuid.uuid4().hex[:6]}:",
            SIGNOFF_SIGNUP_RATE_LIMIT="3 per hour",
        )
    )
    client = fresh_client(limited)
    codes = [client.post("/signup/", data={"organisation": ""}).status_code for _ in range(4)]
    assert codes == [422, 422, 422, 429]
    assert "Too many attempts" in text_of(client.post("/signup/", data={}))
    # Another address is not affected, and GETs never count.
    other = fresh_client(limited)
    assert other.post("/signup/", data={"organisation": ""}).status_code == 422
    assert client.get("/signup/").status_code == 200
