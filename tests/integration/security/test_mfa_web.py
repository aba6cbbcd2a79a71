"""MFA in the portal: the enrolment page, the step-up prompt that returns to the
decision, the tenant's "MFA at every login" policy, and what a session keeps."""

from __future__ import annotations

import re
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from tests.fixtures.tenants import web_login
from tests.integration.security.conftest import at_finance_step, code, fresh_client


def signed_in(app: Any, tenant: Any, who: str) -> Any:
    client = fresh_client(app)
    web_login(client, tenant.username(who))
    return client


class Enrolment(NamedTuple):
    secret: str
    recovery_codes: list[str]
    code_used: str  # the code that confirmed it: spent, so replaying it must fail


def enrol_on_the_web(client: Any, slug: str) -> Enrolment:
    page = client.get(f"/t/{slug}/mfa/enroll")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'src="data:image/svg+xml' in html
    secret = re.search(r'data-testid="mfa-secret">([A-Z2-7]+)<', html)
    assert secret, html
    used = code(secret.group(1))
    done = client.post(f"/t/{slug}/mfa/enroll", data={"code": used})
    assert done.status_code == 200
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", done.get_data(as_text=True))
    assert len(codes) == 10
    return Enrolment(secret.group(1), codes, used)


def last_decision(database: Any, rid: Any) -> tuple[Any, ...]:
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT step_index, verdict, mfa_verified, method FROM step_decision "
            "WHERE request_id = %s ORDER BY decided_at DESC LIMIT 1",
            (rid,),
        ).fetchone()


def decide(client: Any, slug: str, rid: Any, step: int = 1) -> Any:
    return client.post(
        f"/t/{slug}/requests/{rid}/decide",
        data={"verdict": "approve", "step": str(step), "comment": "fine"},
    )


def test_enrolment_page_then_recovery_codes_once(app, database, expense_tenant):
    client = signed_in(app, expense_tenant, "finance")
    slug = expense_tenant.slug
    enrol_on_the_web(client, slug)
    again = client.get(f"/t/{slug}/mfa/enroll")
    html = again.get_data(as_text=True)
    assert 'data-testid="codes-left">10<' in html
    assert "<code>" not in html  # the codes are never shown again
    assert "mfa-secret" not in html


def test_a_wrong_code_keeps_the_enrolment_pending(app, expense_tenant):
    client = signed_in(app, expense_tenant, "bob")
    slug = expense_tenant.slug
    html = client.get(f"/t/{slug}/mfa/enroll").get_data(as_text=True)
    secret = re.search(r'data-testid="mfa-secret">([A-Z2-7]+)<', html).group(1)
    bad = client.post(f"/t/{slug}/mfa/enroll", data={"code": "000000"})
    assert bad.status_code == 422
    # Reloading keeps the same pending key (the QR code the user scanned).
    assert secret in client.get(f"/t/{slug}/mfa/enroll").get_data(as_text=True)


def test_the_step_up_prompt_returns_to_the_decision(app, database, expense_tenant):
    slug = expense_tenant.slug
    client = signed_in(app, expense_tenant, "finance")
    secret = enrol_on_the_web(client, slug).secret
    # A new login: the enrolment's verification is gone.
    client = signed_in(app, expense_tenant, "finance")
    rid = at_finance_step(app, expense_tenant)
    page = f"/t/{slug}/requests/{rid}"

    # The decision asks for the code in place: the request page again, the comment
    # kept, nothing decided.
    sent = decide(client, slug, rid)
    assert sent.status_code == 403
    html = sent.get_data(as_text=True)
    assert 'data-testid="mfa-code"' in html and ">fine</textarea>" in html
    assert last_decision(database, rid)[0] == 0  # nothing decided at the MFA step

    # The stand-alone prompt (recovery codes, links from elsewhere) still returns there.
    target = urlsplit(f"/t/{slug}/mfa/verify?next={page}")
    prompt = client.get(f"{target.path}?{target.query}")
    assert prompt.status_code == 200
    assert "authenticator" in prompt.get_data(as_text=True)
    back = client.post(f"{target.path}?{target.query}", data={"code": code(secret, 1)})
    assert back.status_code == 302
    assert urlsplit(back.headers["Location"]).path == page

    assert decide(client, slug, rid).status_code == 302
    assert last_decision(database, rid) == (1, "approve", True, "web")


def test_wrong_and_replayed_codes_on_the_prompt(app, expense_tenant):
    slug = expense_tenant.slug
    client = signed_in(app, expense_tenant, "finance")
    enrolment = enrol_on_the_web(client, slug)
    wrong = client.post(f"/t/{slug}/mfa/verify", data={"code": "000000"})
    assert wrong.status_code == 422
    assert "not valid" in wrong.get_data(as_text=True)
    replay = client.post(f"/t/{slug}/mfa/verify", data={"code": enrolment.code_used})
    assert replay.status_code == 422
    assert "already used" in replay.get_data(as_text=True)


def test_a_recovery_code_on_the_prompt(app, database, expense_tenant):
    slug = expense_tenant.slug
    client = signed_in(app, expense_tenant, "cfo")
    codes = enrol_on_the_web(client, slug).recovery_codes
    client = signed_in(app, expense_tenant, "cfo")
    rid = at_finance_step(app, expense_tenant)
    used = client.post(
        f"/t/{slug}/mfa/verify?next=/t/{slug}/requests/{rid}",
        data={"kind": "recovery", "code": codes[3]},
    )
    assert used.status_code == 302
    assert decide(client, slug, rid).status_code == 302
    assert last_decision(database, rid)[2] is True
    again = client.post(f"/t/{slug}/mfa/verify", data={"kind": "recovery", "code": codes[3]})
    assert again.status_code == 422


def test_next_never_leaves_the_tenant_portal(app, expense_tenant, tenant_factory):
    slug = expense_tenant.slug
    client = signed_in(app, expense_tenant, "finance")
    enrol_on_the_web(client, slug)
    for evil in ("https://evil.example/x", "//evil.example/x", f"/t/{tenant_factory().slug}/"):
        html = client.get(f"/t/{slug}/mfa/verify", query_string={"next": evil}).get_data(
            as_text=True
        )
        assert "evil.example" not in html
        assert evil not in html


def test_signing_in_again_forgets_the_verification(app, database, expense_tenant):
    slug = expense_tenant.slug
    client = signed_in(app, expense_tenant, "finance")
    secret = enrol_on_the_web(client, slug).secret  # verified in this session
    rid = at_finance_step(app, expense_tenant)
    client.get("/logout/")
    web_login(client, expense_tenant.username("finance"))
    sent = decide(client, slug, rid)
    assert sent.status_code == 403 and 'data-testid="mfa-code"' in sent.get_data(as_text=True)
    assert client.post(f"/t/{slug}/mfa/verify", data={"code": code(secret, 1)}).status_code == 302
    assert decide(client, slug, rid).status_code == 302
    assert last_decision(database, rid)[:3] == (1, "approve", True)


def test_mfa_pages_are_for_members_only(app, expense_tenant, tenant_factory):
    other = tenant_factory()
    client = signed_in(app, expense_tenant, "finance")
    assert client.get(f"/t/{other.slug}/mfa/verify").status_code == 404
    assert client.get(f"/t/{other.slug}/mfa/enroll").status_code == 404
    anonymous = fresh_client(app)
    assert anonymous.get(f"/t/{expense_tenant.slug}/mfa/verify").status_code == 302


def test_tenant_policy_sends_members_through_mfa_at_every_login(app, database, expense_tenant):
    slug = expense_tenant.slug
    with database.connect("admin") as conn:
        conn.execute("UPDATE tenant SET mfa_required = true WHERE id = %s", (expense_tenant.id,))
    client = signed_in(app, expense_tenant, "alice")
    home = client.get(f"/t/{slug}/")
    assert home.status_code == 302
    target = urlsplit(home.headers["Location"])
    assert target.path == f"/t/{slug}/mfa/enroll"
    assert parse_qs(target.query)["next"] == [f"/t/{slug}/"]
    # Other pages are held back as well, before any tenant data is shown.
    assert client.get(f"/t/{slug}/mine").status_code == 302
    secret = enrol_on_the_web(client, slug).secret
    assert client.get(f"/t/{slug}/").status_code == 200

    # The next login asks for a code again.
    client = signed_in(app, expense_tenant, "alice")
    again = client.get(f"/t/{slug}/")
    assert urlsplit(again.headers["Location"]).path == f"/t/{slug}/mfa/verify"
    assert client.post(f"/t/{slug}/mfa/verify", data={"code": code(secret, 1)}).status_code == 302
    assert client.get(f"/t/{slug}/").status_code == 200


def test_an_admin_resets_a_members_authenticator_on_the_member_page(
    app, database, expense_tenant, tenant_factory
):
    slug = expense_tenant.slug

    def totp_rows(user_id: int) -> int:
        with database.connect("admin") as conn:
            row = conn.execute("SELECT count(*) FROM mfa_totp WHERE user_id = %s", (user_id,))
            return int(row.fetchone()[0])

    def member_id(who: str) -> str:
        with database.connect("admin") as conn:
            return str(
                conn.execute(
                    "SELECT id FROM membership WHERE tenant_id = %s AND user_id = %s",
                    (expense_tenant.id, expense_tenant.user(who)),
                ).fetchone()[0]
            )

    finance = signed_in(app, expense_tenant, "finance")
    enrol_on_the_web(finance, slug)
    assert totp_rows(expense_tenant.user("finance")) == 1
    page = f"/t/{slug}/admin/members/{member_id('finance')}"
    reset = f"{page}/mfa-reset"

    admin = signed_in(app, expense_tenant, "admin")
    assert "Reset authenticator" in admin.get(page).get_data(as_text=True)
    # No fresh check of the admin's own: sent to the prompt, nothing deleted.
    first = admin.post(reset)
    assert first.status_code == 302 and "/mfa/verify?next=" in first.headers["Location"]
    assert totp_rows(expense_tenant.user("finance")) == 1
    # A manager is not a tenant admin; another tenant's admin cannot even see the member.
    manager = signed_in(app, expense_tenant, "manager")
    assert manager.post(reset).status_code == 403
    assert totp_rows(expense_tenant.user("finance")) == 1
    other = tenant_factory()
    outsider = signed_in(app, other, "admin")
    enrol_on_the_web(outsider, other.slug)
    assert (
        outsider.post(f"/t/{other.slug}/admin/members/{member_id('finance')}/mfa-reset").status_code
        == 404
    )
    assert totp_rows(expense_tenant.user("finance")) == 1

    enrol_on_the_web(admin, slug)  # confirming the enrolment is a fresh check
    # Never one's own: another admin does that.
    own = admin.post(
        f"/t/{slug}/admin/members/{member_id('admin')}/mfa-reset", follow_redirects=True
    )
    assert "Ask another admin" in own.get_data(as_text=True)
    assert totp_rows(expense_tenant.user("admin")) == 1

    done = admin.post(reset, follow_redirects=True)
    assert "Authenticator reset" in done.get_data(as_text=True)
    assert totp_rows(expense_tenant.user("finance")) == 0
    assert "No authenticator enrolled" in admin.get(page).get_data(as_text=True)
    with database.connect("admin") as conn:
        rows = conn.execute(
            "SELECT actor_id, object_id, payload FROM audit_event "
            "WHERE tenant_id = %s AND action = 'mfa.reset'",
            (expense_tenant.id,),
        ).fetchall()
    assert [(a, o, p["method"], p["had_authenticator"]) for a, o, p in rows] == [
        (expense_tenant.user("admin"), str(expense_tenant.user("finance")), "web", True)
    ]
