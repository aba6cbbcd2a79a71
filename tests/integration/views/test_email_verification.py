"""E-mail proof of an address (issue 12 items 3 and 4), through HTTP with the real
embedded SMTP server reading the mail: sign-up and invitations answer the same for
existing and new addresses and continue by e-mail; links are signed, expiring and
single use; forgotten and changed passwords; rate limits."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from signoff.provisioning.verification import drain
from tests.fixtures.tenants import PASSWORD, fresh_client, web_login
from tests.integration.security.conftest import Person, code
from tests.integration.views.conftest import (
    comparable_page,
    link,
    mail_app_for,
    mails_to,
    text_of,
)
from tests.integration.worker.conftest import body

STRONG = "Verified-and-h4ppy"


def _rows(database, sql, *args):
    with database.connect("admin") as conn:
        return conn.execute(sql, args).fetchall()


def new_email() -> str:
    return f"new-{uuid.uuid4().hex[:8]}@verify.example"


def new_slug() -> str:
    return f"v-{uuid.uuid4().hex[:10]}"


def signup_form(slug: str, email: str, password: str = STRONG) -> dict[str, str]:
    return {
        "organisation": f"Org {slug}",
        "slug": slug,
        "admin_name": "Grace Hopper",
        "email": email,
        "password": password,
    }


def _masked(resp: Any, *secrets: str) -> str:
    page = comparable_page(resp)
    for i, value in enumerate(secrets):
        page = page.replace(value, f"<value{i}>")
    return page


# --- sign-up ------------------------------------------------------------------------------


def test_sign_up_answers_the_same_for_existing_and_new_addresses(
    mail_app, mailbox, database, tenant_a
):
    existing = f"admin@{tenant_a.slug}.example"
    fresh = new_email()
    answers = []
    slugs = []
    for email in (existing, fresh):
        slug = new_slug()
        slugs.append(slug)
        resp = fresh_client(mail_app).post("/signup/", data=signup_form(slug, email))
        assert resp.status_code == 200, text_of(resp)
        assert "Check your e-mail" in text_of(resp)
        answers.append((resp.status_code, _masked(resp, email, slug)))
    assert answers[0] == answers[1]

    (told,) = mails_to(mailbox, existing)
    assert "already has a Signoff account" in body(told)
    assert "/account/verify/" not in body(told)
    assert "/account/forgot-password" in body(told)
    (verify,) = mails_to(mailbox, fresh)
    assert "/account/verify/" in link(verify, "/account/verify/")

    # Nothing exists before the link is used: no tenant, no account, no sign-in.
    for slug in slugs:
        assert _rows(database, "SELECT 1 FROM tenant WHERE slug = %s", slug) == []
    assert _rows(database, "SELECT 1 FROM ab_user WHERE email = %s", fresh) == []
    login = fresh_client(mail_app).post("/login/", data={"username": fresh, "password": STRONG})
    assert login.status_code in (302, 303) and "/login/" in login.headers["Location"]


def test_verification_link_creates_once_replay_and_tampering_refused(mail_app, mailbox, database):
    email, slug = new_email(), new_slug()
    assert fresh_client(mail_app).post("/signup/", data=signup_form(slug, email)).status_code == 200
    path = link(mails_to(mailbox, email)[0], "/account/verify/")
    token = path.rsplit("/", 1)[1]
    ((stored,),) = _rows(database, "SELECT token_hash FROM account_token WHERE email = %s", email)
    assert stored != token and len(stored) == 64  # only a hash is kept

    guest = fresh_client(mail_app)
    page = guest.get(path)
    assert page.status_code == 200 and f"Org {slug}" in text_of(page)
    assert _rows(database, "SELECT 1 FROM tenant WHERE slug = %s", slug) == []  # GET is safe

    tampered = guest.post(path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB"))
    assert tampered.status_code == 404 and "not valid" in text_of(tampered)

    resp = guest.post(path)
    assert resp.status_code == 302, text_of(resp)
    assert resp.headers["Location"].endswith(f"/t/{slug}/?welcome=1")
    assert guest.get(f"/t/{slug}/admin/").status_code == 200
    ((tenant_id,),) = _rows(database, "SELECT id FROM tenant WHERE slug = %s", slug)
    ((action, verified),) = _rows(
        database,
        "SELECT action, payload->>'email_verified' FROM audit_event WHERE tenant_id = %s",
        tenant_id,
    )
    assert (action, verified) == ("tenant.signed_up", "true")
    # The password hash left the link's row once used.
    ((payload,),) = _rows(database, "SELECT payload FROM account_token WHERE email = %s", email)
    assert "password_hash" not in payload
    web_login(fresh_client(mail_app), email, STRONG)

    for again in (fresh_client(mail_app).post(path), fresh_client(mail_app).get(path)):
        assert again.status_code == 410 and "already used" in text_of(again)
    # A link of another kind with a valid signature is not a sign-up link.
    other = fresh_client(mail_app).get(f"/account/reset/{token}")
    assert other.status_code == 404


def test_expired_verification_links_are_refused(mail_app, mailbox, database):
    from itsdangerous import URLSafeTimedSerializer
    from itsdangerous.timed import TimestampSigner

    email = new_email()
    fresh_client(mail_app).post("/signup/", data=signup_form(new_slug(), email))
    path = link(mails_to(mailbox, email)[0], "/account/verify/")
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE account_token SET expires_at = now() - interval '1 minute' WHERE email = %s",
            (email,),
        )
    resp = fresh_client(mail_app).get(path)
    assert resp.status_code == 410 and "expired" in text_of(resp)

    # A signature older than SIGNOFF_VERIFY_LINK_MAX_AGE, whatever the row says.
    class TwoDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 2 * 24 * 3600

    salt = "signoff-verify-signup-v1"
    data = URLSafeTimedSerializer(mail_app.config["SECRET_KEY"], salt=salt).loads(
        path.rsplit("/", 1)[1]
    )
    old = URLSafeTimedSerializer(mail_app.config["SECRET_KEY"], salt=salt, signer=TwoDaysAgo).dumps(
        data
    )
    resp = fresh_client(mail_app).post(f"/account/verify/{old}")
    assert resp.status_code == 410 and "expired" in text_of(resp)


def test_a_slug_taken_meanwhile_is_chosen_again_on_the_link(mail_app, mailbox, tenant_a):
    email, slug = new_email(), new_slug()
    fresh_client(mail_app).post("/signup/", data=signup_form(slug, email))
    path = link(mails_to(mailbox, email)[0], "/account/verify/")
    guest = fresh_client(mail_app)
    taken = guest.post(path, data={"slug": tenant_a.slug})
    assert taken.status_code == 422 and "already taken" in text_of(taken)
    assert 'id="slug"' in text_of(taken)
    ok = guest.post(path, data={"slug": slug})
    assert ok.status_code == 302 and ok.headers["Location"].endswith(f"/t/{slug}/?welcome=1")


def test_without_a_mail_server_sign_up_and_reset_say_so(app, database):
    email, slug = new_email(), new_slug()
    resp = fresh_client(app).post("/signup/", data=signup_form(slug, email))
    assert resp.status_code == 503 and "SIGNOFF_SMTP_URL" in text_of(resp)
    resp = fresh_client(app).post("/account/forgot-password", data={"email": email})
    assert resp.status_code == 503 and "cannot send e-mail" in text_of(resp)
    assert _rows(database, "SELECT 1 FROM account_token WHERE email = %s", email) == []


# --- invitations ----------------------------------------------------------------------------


def _invite(admin: Any, tenant: Any, email: str, roles=("Requester",)) -> None:
    resp = admin.post(
        f"/t/{tenant.slug}/admin/members/invite", data={"email": email, "roles": list(roles)}
    )
    assert resp.status_code == 200, text_of(resp)
    assert "/invite/" not in text_of(resp)  # mailed: the admin never holds the link


def test_invitation_answers_the_same_and_the_invitee_proves_the_address(
    mail_app, mailbox, database, tenant_factory
):
    tenant_a, tenant_b = tenant_factory(), tenant_factory()
    admin = fresh_client(mail_app)
    web_login(admin, tenant_a.username("admin"))
    existing = f"bob@{tenant_b.slug}.example"
    fresh = new_email()
    answers = {}
    paths = {}
    for email in (existing, fresh):
        _invite(admin, tenant_a, email)
        (invitation,) = mails_to(mailbox, email)
        path = link(invitation, "/invite/")
        paths[email] = path
        guest = fresh_client(mail_app)
        page = guest.get(path)
        assert page.status_code == 200
        # The old "create account" form would take a name and password: now the
        # link alone creates nothing, whatever is posted.
        resp = guest.post(path, data={"name": "Mallory", "password": STRONG})
        assert resp.status_code == 200 and "Check your e-mail" in text_of(resp)
        token = path.rsplit("/", 1)[1]
        answers[email] = (_masked(page, email, token), _masked(resp, email, token))
    assert answers[existing] == answers[fresh]
    assert _rows(database, "SELECT 1 FROM ab_user WHERE email = %s", fresh) == []

    (_, told) = mails_to(mailbox, existing, expect=2)
    assert "already has a Signoff account" in body(told)
    assert f"/login/?next={paths[existing]}" in body(told)
    (_, verify) = mails_to(mailbox, fresh, expect=2)
    join = link(verify, "/account/join/")
    sent = _rows(
        database,
        "SELECT count(*) FROM audit_event WHERE tenant_id = %s "
        "AND action = 'invitation.email_sent'",
        tenant_a.id,
    )
    assert sent[0][0] >= 2

    guest = fresh_client(mail_app)
    form = guest.get(join)
    assert form.status_code == 200 and "Choose a password" in text_of(form)
    weak = guest.post(join, data={"name": "New Person", "password": "weak"})
    assert weak.status_code == 422 and "at least 10 characters" in text_of(weak)
    resp = guest.post(join, data={"name": "New Person", "password": STRONG})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/t/{tenant_a.slug}/")
    assert guest.get(f"/t/{tenant_a.slug}/").status_code == 200
    ((verified,),) = _rows(
        database,
        "SELECT payload->>'email_verified' FROM audit_event WHERE tenant_id = %s "
        "AND action = 'member.joined' AND payload->>'new_account' = 'true' "
        "ORDER BY seq DESC LIMIT 1",
        tenant_a.id,
    )
    assert verified == "true"
    assert fresh_client(mail_app).post(join).status_code == 410
    assert fresh_client(mail_app).get(paths[fresh]).status_code == 404  # invitation used

    # The existing account accepts by signing in, as the e-mail says.
    bob = fresh_client(mail_app)
    web_login(bob, tenant_b.username("bob"))
    assert bob.post(paths[existing]).status_code == 302
    assert bob.get(f"/t/{tenant_a.slug}/").status_code == 200


def test_an_admin_held_link_without_mail_creates_no_account(app, database, tenant_a):
    admin = fresh_client(app)
    web_login(admin, tenant_a.username("admin"))
    email = new_email()
    resp = admin.post(
        f"/t/{tenant_a.slug}/admin/members/invite", data={"email": email, "roles": ["Requester"]}
    )
    page = text_of(resp)
    assert resp.status_code == 200 and "invite-no-mail" in page
    path = urlsplit(re.search(r'value="(http[^"]+/invite/[^"]+)"', page).group(1)).path
    held = fresh_client(app).post(path, data={"name": "Admin Himself", "password": STRONG})
    assert held.status_code == 503 and "cannot send e-mail" in text_of(held)
    assert _rows(database, "SELECT 1 FROM ab_user WHERE email = %s", email) == []


# --- forgotten password ---------------------------------------------------------------------


def test_forgot_password_same_answer_and_nothing_sent_to_unknown(mail_app, mailbox, tenant_factory):
    known = f"alice@{tenant_factory().slug}.example"
    unknown = new_email()
    answers = []
    for email in (known, unknown):
        resp = fresh_client(mail_app).post("/account/forgot-password", data={"email": email})
        answers.append((resp.status_code, _masked(resp, email)))
    assert answers[0] == answers[1] and answers[0][0] == 200
    assert "Check your e-mail" in answers[0][1]
    assert mails_to(mailbox, known)
    assert mails_to(mailbox, unknown, expect=0) == []
    bad = fresh_client(mail_app).post("/account/forgot-password", data={"email": "nope"})
    assert bad.status_code == 422 and "not a valid email" in text_of(bad)


def test_reset_link_sets_a_new_password_once(mail_app, mailbox, database, tenant_factory):
    tenant = tenant_factory()
    email = f"alice@{tenant.slug}.example"
    for _ in range(2):
        fresh_client(mail_app).post("/account/forgot-password", data={"email": email})
    first, second = mails_to(mailbox, email, expect=2)
    old_link, path = link(first, "/account/reset/"), link(second, "/account/reset/")
    assert fresh_client(mail_app).get(old_link).status_code == 410  # superseded

    guest = fresh_client(mail_app)
    assert guest.get(path).status_code == 200
    weak = guest.post(path, data={"password": "password1234"})
    assert weak.status_code == 422 and "too common" in text_of(weak)
    resp = guest.post(path, data={"password": STRONG})
    assert resp.status_code == 302 and "/login/" in resp.headers["Location"]
    web_login(fresh_client(mail_app), tenant.username("alice"), STRONG)
    refused = fresh_client(mail_app).post(
        "/login/", data={"username": tenant.username("alice"), "password": PASSWORD}
    )
    assert "/login/" in refused.headers["Location"]
    again = fresh_client(mail_app).post(path, data={"password": "An0ther-g00d-one"})
    assert again.status_code == 410 and "already used" in text_of(again)


def test_reset_asks_for_the_mfa_code_when_enrolled(mail_app, mailbox, tenant_factory):
    tenant = tenant_factory()
    person = Person(mail_app, tenant, "finance")
    person.enroll()
    email = f"finance@{tenant.slug}.example"
    fresh_client(mail_app).post("/account/forgot-password", data={"email": email})
    path = link(mails_to(mailbox, email)[0], "/account/reset/")
    guest = fresh_client(mail_app)
    assert 'name="code"' in text_of(guest.get(path))
    missing = guest.post(path, data={"password": STRONG})
    assert missing.status_code == 422 and "authenticator" in text_of(missing)
    wrong = guest.post(path, data={"password": STRONG, "code": "000000"})
    assert wrong.status_code == 422 and "not valid" in text_of(wrong)
    assert person.secret is not None
    ok = guest.post(path, data={"password": STRONG, "code": code(person.secret, 1)})
    assert ok.status_code == 302, text_of(ok)
    web_login(fresh_client(mail_app), tenant.username("finance"), STRONG)


# --- change password ------------------------------------------------------------------------


def test_change_password_needs_the_current_one_and_is_audited(mail_app, database, tenant_factory):
    tenant = tenant_factory()
    client = fresh_client(mail_app)
    web_login(client, tenant.username("alice"))
    url = f"/t/{tenant.slug}/account/password"
    assert client.get(url).status_code == 200
    wrong = client.post(url, data={"current_password": "nope", "new_password": STRONG})
    assert wrong.status_code == 422 and "not your current password" in text_of(wrong)
    weak = client.post(url, data={"current_password": PASSWORD, "new_password": "short"})
    assert weak.status_code == 422 and "at least 10 characters" in text_of(weak)
    ok = client.post(url, data={"current_password": PASSWORD, "new_password": STRONG})
    assert ok.status_code == 302
    web_login(fresh_client(mail_app), tenant.username("alice"), STRONG)
    actions = [
        a
        for (a,) in _rows(
            database,
            "SELECT action FROM audit_event WHERE tenant_id = %s AND action LIKE 'password.%%' "
            "ORDER BY seq",
            tenant.id,
        )
    ]
    assert actions == ["password.change_failed", "password.changed"]
    # Signed out, the page is the login.
    assert fresh_client(mail_app).get(url).status_code == 302


def test_change_password_asks_for_the_mfa_code_when_enrolled(mail_app, tenant_factory):
    tenant = tenant_factory()
    person = Person(mail_app, tenant, "finance")
    person.enroll()
    client = fresh_client(mail_app)
    web_login(client, tenant.username("finance"))
    url = f"/t/{tenant.slug}/account/password"
    form = {"current_password": PASSWORD, "new_password": STRONG}
    assert 'name="code"' in text_of(client.get(url))
    missing = client.post(url, data=form)
    assert missing.status_code == 422 and "authenticator" in text_of(missing)
    assert client.post(url, data={**form, "code": "000000"}).status_code == 422
    assert person.secret is not None
    ok = client.post(url, data={**form, "code": code(person.secret, 1)})
    assert ok.status_code == 302, text_of(ok)


# --- rate limits ----------------------------------------------------------------------------


def test_rate_limits_answer_429(database, redis_url, redis_prefix, mailbox, app, tenant_factory):
    limited = mail_app_for(
        database,
        redis_url,
        redis_prefix,
        mailbox.url,
        SIGNOFF_RATELIMIT_ACCOUNT_MAIL_EMAIL="2 per hour",
        SIGNOFF_RATELIMIT_ACCOUNT_LINK="3 per hour",
        SIGNOFF_RATELIMIT_PASSWORD_CHANGE="2 per hour",
    )
    # E-mails per address written to, whichever client asks and whether or not it
    # has an account.
    email = new_email()
    codes = [
        fresh_client(limited).post("/account/forgot-password", data={"email": email}).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    # Links tried per client address (guessing tokens).
    guesser = fresh_client(limited)
    tries = [guesser.post(f"/account/reset/x{i}").status_code for i in range(4)]
    assert tries == [404, 404, 404, 429]
    assert "Retry-After" in guesser.post("/account/verify/x").headers
    # Failed password changes per account.
    tenant = tenant_factory()
    client = fresh_client(limited)
    web_login(client, tenant.username("bob"))
    url = f"/t/{tenant.slug}/account/password"
    bad = {"current_password": "wrong-one", "new_password": STRONG}
    assert [client.post(url, data=bad).status_code for _ in range(3)] == [422, 422, 429]
    drain()


def test_a_join_link_dies_with_its_invitation(mail_app, mailbox, database, tenant_factory):
    tenant = tenant_factory()
    admin = fresh_client(mail_app)
    web_login(admin, tenant.username("admin"))
    email = new_email()
    _invite(admin, tenant, email)
    path = link(mails_to(mailbox, email)[0], "/invite/")
    assert fresh_client(mail_app).post(path).status_code == 200
    join = link(mails_to(mailbox, email, expect=2)[1], "/account/join/")
    ((iid,),) = _rows(database, "SELECT id FROM invitation WHERE email = %s", email)
    assert admin.post(f"/t/{tenant.slug}/admin/invitations/{iid}/revoke").status_code == 302
    for resp in (
        fresh_client(mail_app).get(join),
        fresh_client(mail_app).post(join, data={"name": "Late Comer", "password": STRONG}),
    ):
        assert resp.status_code == 410 and "no longer valid" in text_of(resp)
    assert _rows(database, "SELECT 1 FROM ab_user WHERE email = %s", email) == []


def test_two_simultaneous_uses_of_one_link_one_wins(mail_app, mailbox, tenant_factory):
    """The link's row is locked and marked used in the transaction that acts: of two
    requests racing with the same reset link, exactly one sets its password."""
    import threading

    tenant = tenant_factory()
    email = f"bob@{tenant.slug}.example"
    fresh_client(mail_app).post("/account/forgot-password", data={"email": email})
    path = link(mails_to(mailbox, email)[0], "/account/reset/")
    passwords = ["Racing-h0rse-one", "Racing-h0rse-two"]
    statuses: dict[str, int] = {}
    start = threading.Barrier(2)

    def use(password: str) -> None:
        client = fresh_client(mail_app)
        start.wait()
        statuses[password] = client.post(path, data={"password": password}).status_code

    threads = [threading.Thread(target=use, args=(p,)) for p in passwords]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses.values()) == [302, 410], statuses
    winner = next(p for p, status in statuses.items() if status == 302)
    web_login(fresh_client(mail_app), tenant.username("bob"), winner)


# --- change the e-mail address --------------------------------------------------------------


def test_change_email_is_confirmed_by_a_link_to_the_new_address_and_audited(
    mail_app, mailbox, database, tenant_factory
):
    tenant = tenant_factory()
    old = f"alice@{tenant.slug}.example"
    new = new_email()
    client = fresh_client(mail_app)
    web_login(client, tenant.username("alice"))
    profile = text_of(client.get(f"/t/{tenant.slug}/account/profile"))
    assert "Change e-mail" in profile
    url = f"/t/{tenant.slug}/account/email"
    assert client.get(url).status_code == 200

    # Refused, naming the field, and nothing sent.
    bad = client.post(url, data={"email": "not-an-address", "password": PASSWORD})
    assert bad.status_code == 422 and "New e-mail is not a valid email address" in text_of(bad)
    same = client.post(url, data={"email": old, "password": PASSWORD})
    assert same.status_code == 422 and "already your e-mail" in text_of(same)
    wrong = client.post(url, data={"email": new, "password": "nope"})
    assert wrong.status_code == 422 and "not your current password" in text_of(wrong)
    mails_to(mailbox, new, expect=0)

    resp = client.post(url, data={"email": new, "password": PASSWORD})
    assert resp.status_code == 200 and "Check your e-mail" in text_of(resp)
    (sent,) = mails_to(mailbox, new)
    path = link(sent, "/account/email/")
    # Nothing changes before the link is used; a GET (a mail scanner) changes nothing.
    page = fresh_client(mail_app).get(path)
    assert page.status_code == 200 and new in text_of(page) and old in text_of(page)
    web_login(fresh_client(mail_app), old)

    done = fresh_client(mail_app).post(path)
    assert done.status_code == 200 and "e-mail address is changed" in text_of(done)
    (email_now,) = _rows(database, "SELECT email FROM ab_user WHERE id = %s", tenant.user("alice"))
    assert email_now[0] == new
    web_login(fresh_client(mail_app), new)
    (told,) = mails_to(mailbox, old)
    assert new in body(told) and "/account/email/" not in body(told)
    again = fresh_client(mail_app).post(path)
    assert again.status_code == 410 and "already used" in text_of(again)
    events = _rows(
        database,
        "SELECT action, payload->>'from', payload->>'to' FROM audit_event "
        "WHERE tenant_id = %s AND action IN ('account.email_changed', 'email.change_failed') "
        "ORDER BY seq",
        tenant.id,
    )
    assert [tuple(e) for e in events] == [
        ("email.change_failed", None, None),
        ("account.email_changed", old, new),
    ]


def test_change_email_to_a_taken_address_sends_no_link_and_says_the_same(
    mail_app, mailbox, database, tenant_factory
):
    tenant = tenant_factory()
    taken = f"manager@{tenant.slug}.example"
    client = fresh_client(mail_app)
    web_login(client, tenant.username("alice"))
    url = f"/t/{tenant.slug}/account/email"
    fresh = new_email()
    answers = []
    for address in (taken, fresh):
        resp = client.post(url, data={"email": address, "password": PASSWORD})
        assert resp.status_code == 200
        answers.append(_masked(resp, address))
    assert answers[0] == answers[1]
    (told,) = mails_to(mailbox, taken)
    assert "already belongs to a Signoff account" in body(told)
    assert "/account/email/" not in body(told)
    # The fresh address's link, used after the address was taken meanwhile: refused.
    path = link(mails_to(mailbox, fresh)[0], "/account/email/")
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE ab_user SET email = %s WHERE id = %s", (fresh, tenant.user("manager2"))
        )
    resp = fresh_client(mail_app).post(path)
    assert resp.status_code == 410
    (email_now,) = _rows(database, "SELECT email FROM ab_user WHERE id = %s", tenant.user("alice"))
    assert email_now[0] == f"alice@{tenant.slug}.example"
