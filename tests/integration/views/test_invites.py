"""Invitations: signed, expiring, single-use links into a tenant."""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import urlsplit

from tests.fixtures.tenants import PASSWORD, web_login
from tests.integration.views.conftest import fresh_client, link, mails_to, text_of

STRONG = "Invited-and-h4ppy"


def _invite(client, tenant, email, roles=("Requester",)):
    resp = client.post(
        f"/t/{tenant.slug}/admin/members/invite", data={"email": email, "roles": list(roles)}
    )
    assert resp.status_code == 200, text_of(resp)
    link = re.search(r'value="(http[^"]+/invite/[^"]+)" data-testid="invite-link"', text_of(resp))
    assert link, text_of(resp)
    return urlsplit(link.group(1)).path


def _rows(database, sql, *args):
    with database.connect("admin") as conn:
        return conn.execute(sql, args).fetchall()


def test_invite_new_person_sets_name_and_password(mail_app, mailbox, database, tenant_factory):
    """The invitee proves the address by e-mail, then sets a name and password."""
    tenant = tenant_factory()
    admin = fresh_client(mail_app)
    web_login(admin, tenant.username("admin"))
    email = f"newbie-{uuid.uuid4().hex[:6]}@example.org"
    resp = admin.post(
        f"/t/{tenant.slug}/admin/members/invite",
        data={"email": email, "roles": ["Requester", "Manager"]},
    )
    assert resp.status_code == 200 and "e-mailed" in text_of(resp)
    path = link(mails_to(mailbox, email)[0], "/invite/")
    token = path.rsplit("/", 1)[1]
    # The database keeps only the token's hash.
    ((stored,),) = _rows(database, "SELECT token_hash FROM invitation WHERE email = %s", email)
    assert stored != token and len(stored) == 64
    assert email in text_of(admin.get(f"/t/{tenant.slug}/admin/members/"))

    guest = fresh_client(mail_app)
    page = guest.get(path)
    assert page.status_code == 200
    assert email in text_of(page) and "Continue by e-mail" in text_of(page)
    assert guest.post(path).status_code == 200
    join = link(mails_to(mailbox, email, expect=2)[1], "/account/join/")
    weak = guest.post(join, data={"name": "New Bie", "password": "weak"})
    assert weak.status_code == 422 and "at least 10 characters" in text_of(weak)
    resp = guest.post(join, data={"name": "New Bie", "password": STRONG})
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/t/{tenant.slug}/")
    assert guest.get(f"/t/{tenant.slug}/").status_code == 200  # signed in, a member

    roles = _rows(
        database,
        "SELECT r.name FROM ab_user u JOIN membership m ON m.user_id = u.id "
        "JOIN membership_role mr ON mr.membership_id = m.id AND mr.tenant_id = m.tenant_id "
        "JOIN tenant_role r ON r.id = mr.role_id AND r.tenant_id = mr.tenant_id "
        "WHERE u.email = %s AND m.tenant_id = %s ORDER BY 1",
        email,
        tenant.id,
    )
    assert roles == [("Manager",), ("Requester",)]
    assert _rows(
        database,
        "SELECT action FROM audit_event WHERE tenant_id = %s AND action LIKE 'member.%%' "
        "AND payload->>'invitation' IS NOT NULL",
        tenant.id,
    )
    # Single use: the same link is now invalid, like a forged one.
    again = fresh_client(mail_app).get(path)
    forged = fresh_client(mail_app).get(path[:-3] + "abc")
    assert again.status_code == forged.status_code == 404
    assert "not valid" in text_of(again)
    # The new account signs in with the email as its user name.
    web_login(fresh_client(mail_app), email, STRONG)


def test_existing_account_signs_in_then_accepts(app, database, tenant_a, tenant_b, login):
    admin = login(tenant_a.username("admin"))
    email = f"bob@{tenant_b.slug}.example"
    path = _invite(admin, tenant_a, email)
    guest = fresh_client(app)
    page = text_of(guest.get(path))
    assert "Sign in" in page and 'name="password"' not in page
    # The link alone creates nothing; this app cannot mail, and says so.
    assert guest.post(path, data={"name": "X", "password": STRONG}).status_code == 503

    # Someone else's account cannot take it.
    intruder = login(tenant_b.username("alice"))
    assert "this invitation is for" in text_of(intruder.get(path))
    assert intruder.post(path).status_code == 422

    bob = login(tenant_b.username("bob"))
    assert bob.get(f"/t/{tenant_a.slug}/").status_code == 404
    resp = bob.post(path)
    assert resp.status_code == 302
    assert bob.get(f"/t/{tenant_a.slug}/").status_code == 200
    assert bob.get(f"/t/{tenant_b.slug}/").status_code == 200


def test_revoked_and_expired_links_are_refused(app, database, tenant_a, login):
    admin = login(tenant_a.username("admin"))
    email = f"late-{uuid.uuid4().hex[:6]}@example.org"
    path = _invite(admin, tenant_a, email)
    ((iid,),) = _rows(database, "SELECT id FROM invitation WHERE email = %s", email)
    assert admin.post(f"/t/{tenant_a.slug}/admin/invitations/{iid}/revoke").status_code == 302
    assert fresh_client(app).get(path).status_code == 404

    # Past expires_at in the database.
    path = _invite(admin, tenant_a, email)
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE invitation SET expires_at = now() - interval '1 minute' "
            "WHERE email = %s AND revoked_at IS NULL",
            (email,),
        )
    assert fresh_client(app).get(path).status_code == 404

    # A token whose signed timestamp is older than SIGNOFF_INVITE_MAX_AGE (7 days).
    from itsdangerous import URLSafeTimedSerializer
    from itsdangerous.timed import TimestampSigner

    from signoff.tenancy.invites import SALT, token_hash

    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 8 * 24 * 3600

    path = _invite(admin, tenant_a, email)
    fresh = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT)
    payload = fresh.loads(path.rsplit("/", 1)[1])
    old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT, signer=EightDaysAgo)
    old_token = old.dumps(payload)
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE invitation SET token_hash = %s WHERE id = %s",
            (token_hash(old_token), payload["i"]),
        )
    assert fresh_client(app).get(f"/invite/{old_token}").status_code == 404


def test_invite_refuses_members_unknown_roles_and_bad_email(app, tenant_a, login):
    admin = login(tenant_a.username("admin"))
    base = f"/t/{tenant_a.slug}/admin"
    for data, message in (
        ({"email": f"alice@{tenant_a.slug}.example", "roles": ["Requester"]}, "already a member"),
        ({"email": "x@example.org", "roles": ["Overlord"]}, "Unknown role"),
        ({"email": "nope", "roles": ["Requester"]}, "not a valid email"),
        ({"email": "x@example.org"}, "Choose at least one role"),
    ):
        resp = admin.post(f"{base}/members/invite", data=data)
        assert resp.status_code == 422
        assert message in text_of(resp)


def test_invite_shows_every_error_at_once_and_keeps_the_choices(app, tenant_a, login):
    admin = login(tenant_a.username("admin"))
    base = f"/t/{tenant_a.slug}/admin"
    # Nothing is ticked on a fresh form.
    assert "checked" not in text_of(admin.get(f"{base}/members/")).split('id="invite"')[1]
    resp = admin.post(f"{base}/members/invite", data={"email": "nope"})
    page = text_of(resp)
    assert resp.status_code == 422
    assert "not a valid email" in page and "Choose at least one role" in page
    assert "2 problems" in page
    resp = admin.post(f"{base}/members/invite", data={"email": "nope", "roles": ["Manager"]})
    page = text_of(resp)
    assert 'value="Manager" checked' in page and 'value="Requester" checked' not in page


def test_without_mail_the_admin_is_told_to_share_the_link(app, tenant_a, login):
    admin = login(tenant_a.username("admin"))
    resp = admin.post(
        f"/t/{tenant_a.slug}/admin/members/invite",
        data={"email": f"m-{uuid.uuid4().hex[:6]}@example.org", "roles": ["Manager"]},
    )
    page = text_of(resp)
    assert "E-mail is not set up on this platform: share this link" in page
    assert "SIGNOFF_SMTP_URL" not in page
    assert 'data-copy="link"' in page


def test_pending_invitations_are_listed_resent_and_revoked(app, database, tenant_a, login):
    admin = login(tenant_a.username("admin"))
    email = f"p-{uuid.uuid4().hex[:6]}@example.org"
    first = _invite(admin, tenant_a, email, roles=("Manager",))
    listing = text_of(admin.get(f"/t/{tenant_a.slug}/admin/members/"))
    assert email in listing
    (iid,) = _rows(
        database,
        "SELECT id FROM invitation WHERE email = %s AND revoked_at IS NULL",
        email,
    )[0]
    resent = admin.post(f"/t/{tenant_a.slug}/admin/invitations/{iid}/resend")
    assert resent.status_code == 200 and "Invitation sent again" in text_of(resent)
    again = re.search(
        r'value="(http[^"]+/invite/[^"]+)" data-testid="invite-link"', text_of(resent)
    )
    assert again and urlsplit(again.group(1)).path != first
    assert fresh_client(app).get(first).status_code == 404  # the old link stopped working
    rows = _rows(
        database,
        "SELECT id, roles FROM invitation WHERE email = %s AND revoked_at IS NULL",
        email,
    )
    assert len(rows) == 1 and list(rows[0][1]) == ["Manager"]
    revoked = admin.post(f"/t/{tenant_a.slug}/admin/invitations/{rows[0][0]}/revoke")
    assert revoked.status_code == 302
    assert f"Invitation for {email} revoked." in text_of(admin.get(revoked.headers["Location"]))
    assert email not in text_of(admin.get(f"/t/{tenant_a.slug}/admin/members/"))
    # Resending a revoked invitation, or another tenant's id, is a 404.
    assert (
        admin.post(f"/t/{tenant_a.slug}/admin/invitations/{rows[0][0]}/resend").status_code == 404
    )


def test_non_admin_cannot_invite(tenant_a, login):
    alice = login(tenant_a.username("alice"))
    resp = alice.post(
        f"/t/{tenant_a.slug}/admin/members/invite",
        data={"email": "friend@example.org", "roles": ["Admin"]},
    )
    assert resp.status_code == 403


def test_invitation_of_a_suspended_tenant_shows_the_suspended_page(
    app, database, tenant_factory, login
):
    t = tenant_factory()
    admin = login(t.username("admin"))
    path = _invite(admin, t, f"s-{uuid.uuid4().hex[:6]}@example.org")
    with database.connect("admin") as conn:
        conn.execute("UPDATE tenant SET status = 'suspended' WHERE id = %s", (t.id,))
    page = fresh_client(app).get(path)
    assert page.status_code == 403 and "suspended" in text_of(page)


def test_password_of_fixture_users_is_strong_enough():
    from signoff.tenancy.accounts import password_problems

    assert password_problems(PASSWORD) == []


def test_with_mail_configured_the_link_goes_only_to_the_invitee(mail_app, mailbox, tenant_factory):
    tenant = tenant_factory()
    admin = fresh_client(mail_app)
    web_login(admin, tenant.username("admin"))
    email = f"mailed-{uuid.uuid4().hex[:6]}@example.org"
    resp = admin.post(
        f"/t/{tenant.slug}/admin/members/invite",
        data={"email": email, "roles": ["Requester"]},
    )
    page = text_of(resp)
    assert resp.status_code == 200 and "e-mailed" in page
    assert "/invite/" not in page  # the admin never holds the token
    (message,) = mails_to(mailbox, email)
    path = link(message, "/invite/")
    guest = fresh_client(mail_app)
    assert guest.post(path).status_code == 200
    join = link(mails_to(mailbox, email, expect=2)[1], "/account/join/")
    accepted = guest.post(join, data={"name": "Mailed Person", "password": STRONG})
    assert accepted.status_code == 302
