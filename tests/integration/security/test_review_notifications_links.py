"""Security review of the e-mail action links (``/act/<token>``), attacked through HTTP.

Failing tests here prove a vulnerability (see each docstring); passing ones document
an attack that is refused and was not covered elsewhere."""

from __future__ import annotations

import email
import re
import uuid
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from signoff.devservers import EmbeddedSmtp, start_embedded_smtp
from tests.conftest import app_config
from tests.fixtures.tenants import PASSWORD, api_token, fresh_client
from tests.integration.api.conftest import Api
from tests.integration.security.conftest import Person, approve, code, submit
from tests.integration.workflow.conftest import actor, in_tenant

BASE_URL = "http://signoff.test"
LINK = re.compile(r"^(Approve|Reject):\s+(\S+)$", re.M)


# --- helpers ------------------------------------------------------------------------------


def request_round(app: Any, tenant: Any, request_id: Any) -> int:
    from signoff.workflow.models import ApprovalRequest

    with in_tenant(app, tenant) as session:
        req = session.get(ApprovalRequest, request_id)
        assert req is not None
        return int(req.round)


def link_path(
    app: Any,
    tenant: Any,
    who: str,
    request_id: Any,
    step: int,
    verdict: str = "approve",
    *,
    salt: str | None = None,
) -> str:
    """The path of an action link exactly as the e-mail channel mints it."""
    from signoff.notifications import links

    with app.app_context():
        kwargs: dict[str, Any] = {} if salt is None else {"salt": salt}
        token = links.make_token(
            tenant_id=tenant.id,
            user_id=tenant.user(who),
            request_id=uuid.UUID(str(request_id)),
            step_index=step,
            round=request_round(app, tenant, request_id),
            verdict=verdict,
            **kwargs,
        )
    return f"/act/{token}"


def decisions(database: Any, request_id: Any) -> list[tuple[int, str, str, bool]]:
    with database.connect("admin") as conn:
        rows = conn.execute(
            "SELECT actor_id, verdict, method, mfa_verified FROM step_decision "
            "WHERE request_id = %s ORDER BY decided_at",
            (str(request_id),),
        ).fetchall()
    return [(int(r[0]), str(r[1]), str(r[2]), bool(r[3])) for r in rows]


def deactivate(api: Api, who: str) -> None:
    """The tenant admin deactivates ``who`` through the API ("they lose access to the
    tenant at once")."""
    member = api.get("/api/v1/members/me", who).get_json()
    resp = api.post(f"/api/v1/members/{member['id']}/deactivate")
    assert resp.status_code == 200 and resp.get_json()["active"] is False, resp.get_json()


class Mail:
    def __init__(self, smtp: EmbeddedSmtp) -> None:
        self.smtp = smtp

    def messages(self) -> list[Message]:
        files = sorted(p for p in Path(self.smtp.mailbox).iterdir() if p.suffix == ".eml")
        return [email.message_from_bytes(p.read_bytes()) for p in files]

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages() if m["To"] == address]


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/plain part")


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSmtp]:
    server = start_embedded_smtp(tmp_path_factory.mktemp("review-mail"))
    yield server
    server.stop()


@pytest.fixture
def mail(app: Any, smtp: EmbeddedSmtp, monkeypatch: pytest.MonkeyPatch) -> Mail:
    """E-mail switched on for this test, into a real SMTP sink."""
    monkeypatch.setitem(app.config, "SIGNOFF_SMTP_URL", smtp.url)
    monkeypatch.setitem(app.config, "SIGNOFF_BASE_URL", BASE_URL)
    return Mail(smtp)


def dispatch(app: Any, tenant: Any) -> None:
    from signoff.extensions import db
    from signoff.notifications.dispatch import dispatch_tenant

    with app.app_context():
        try:
            dispatch_tenant(db.session, tenant.id)
        finally:
            db.session.remove()


# --- findings -----------------------------------------------------------------------------


def test_a_deactivated_member_cannot_decide_with_an_email_link(
    app: Any, database: Any, expense_tenant: Any
) -> None:
    """Review finding, fixed.
    deactivating a member ("they lose access to the tenant at once") does
    not void the Approve/Reject links already e-mailed to them: ``views/act.py``
    ``_check`` only looks at the global ``ab_user.active`` flag, never at the
    membership, and the action trusts the step's frozen ``open_approvers``. A
    dismissed employee keeps approving (or rejecting) the tenant's requests for
    ``SIGNOFF_ACTION_LINK_MAX_AGE`` (72 h) from their mailbox. (The Slack path checks
    the membership; the e-mail path does not.)"""
    tenant = expense_tenant
    api = Api(fresh_client(app), tenant)
    rid = api.submit(5000, title="Dismissal test")
    link = link_path(app, tenant, "manager", rid, 0)
    deactivate(api, "manager")
    # Every other door is closed: no token for the tenant any more.
    refused = fresh_client(app).post(
        "/api/v1/security/login",
        json={
            "username": tenant.username("manager"),
            "password": PASSWORD,
            "provider": "db",
            "tenant": tenant.slug,
        },
    )
    assert refused.status_code == 401

    resp = fresh_client(app).post(link, data={"comment": "still here"})

    assert decisions(database, rid) == [], "a deactivated member decided through an e-mail link"
    assert resp.status_code in (403, 404, 409)


def test_a_deactivated_member_is_sent_no_more_email_about_the_tenants_requests(
    app: Any, database: Any, expense_tenant: Any, mail: Mail
) -> None:
    """Review finding, fixed.
    the e-mail channel (``notifications/email.py`` ``targets``/``send``)
    checks only ``ab_user.active``, not the membership, so a deactivated member keeps
    receiving the tenant's mail: comments (with their text), reminders and
    escalations, each reminder with fresh Approve/Reject links (see the finding
    above). The Slack channel and the digest do check the membership."""
    tenant = expense_tenant
    api = Api(fresh_client(app), tenant)
    rid = api.submit(5000, title="Confidential reorg budget")
    dispatch(app, tenant)
    to = f"manager@{tenant.slug}.example"
    assert len(mail.to(to)) == 1  # the approval request, while still a member

    deactivate(api, "manager")
    resp = api.post(
        f"/api/v1/requests/{rid}/comments", "alice", json={"body": "Layoffs start in March"}
    )
    assert resp.status_code in (200, 201), resp.get_json()
    dispatch(app, tenant)

    leaked = [text_of(m) for m in mail.to(to)[1:]]
    assert leaked == [], f"a deactivated member was e-mailed: {leaked}"


def test_tenant_wide_mfa_policy_also_binds_email_links(
    app: Any, database: Any, expense_tenant: Any, person: Any
) -> None:
    """Review finding (policy gap), fixed.
    with ``tenant.mfa_required`` "every member must pass an MFA
    check once per web login or per access token before anything else in that
    tenant", yet an e-mail link decides a step without any second factor: whoever
    reads the approver's mailbox (one factor) approves in a tenant that demanded two.
    The same holds for Slack buttons. Either ask for the TOTP code on the confirmation
    page when the tenant requires MFA, or state plainly that links bypass the policy."""
    tenant = expense_tenant
    manager: Person = person(tenant, "manager")
    manager.enroll()
    with database.connect("admin") as conn:
        conn.execute("UPDATE tenant SET mfa_required = true WHERE id = %s", (tenant.id,))
        conn.commit()
    # Through the API a new token of the manager gets nothing done without a code.
    pending = manager.get("/api/v1/approval-workflow/pending", token=manager.relogin())
    assert pending.status_code == 403, pending.get_json()

    rid = submit(app, tenant)
    resp = fresh_client(app).post(link_path(app, tenant, "manager", rid, 0))

    assert decisions(database, rid) == [], "an e-mail link decided without MFA"
    assert resp.status_code in (401, 403, 422)


# --- refused attacks (coverage the existing tests lack) -----------------------------------


def test_a_link_of_an_earlier_round_decides_nothing_after_resubmission(
    app: Any, database: Any, expense_tenant: Any
) -> None:
    from signoff.workflow.actions import do_request_changes, do_resubmit

    tenant = expense_tenant
    rid = submit(app, tenant)
    old = link_path(app, tenant, "manager", rid, 0)
    with in_tenant(app, tenant) as session:
        do_request_changes(
            session, actor=actor(tenant, "manager"), request_id=rid, comment="Receipt?"
        )
    with in_tenant(app, tenant) as session:
        do_resubmit(
            session, actor=actor(tenant, "alice"), request_id=rid, input_data={"amount": 90000}
        )
    before = decisions(database, rid)
    for method in ("get", "post"):
        resp = getattr(fresh_client(app), method)(old)
        assert resp.status_code == 409 and b"submitted again" in resp.data
    assert decisions(database, rid) == before
    # A link of the new round works.
    assert fresh_client(app).post(link_path(app, tenant, "manager", rid, 0)).status_code == 200


def test_an_mfa_step_refuses_empty_wrong_and_replayed_codes_from_a_link(
    app: Any, database: Any, expense_tenant: Any, person: Any
) -> None:
    tenant = expense_tenant
    finance: Person = person(tenant, "finance")
    finance.enroll()
    rid = submit(app, tenant)
    approve(app, tenant, rid, 0, "manager")
    link = link_path(app, tenant, "finance", rid, 1)
    assert finance.enrol_code is not None
    before = decisions(database, rid)
    client = fresh_client(app)
    for data, status in (
        ({}, 422),
        ({"code": ""}, 422),
        ({"code": "   "}, 422),
        ({"code": "000000" if finance.enrol_code != "000000" else "111111"}, 422),
        ({"code": "12345678901"}, 422),
        ({"code": finance.enrol_code}, 422),  # already spent on enrolment: a replay
    ):
        resp = client.post(link, data=data)
        assert resp.status_code == status, (data, resp.status_code)
        assert decisions(database, rid) == before
    # A recovery code is not a TOTP code on this page either.
    resp = client.post(link, data={"code": finance.recovery_codes[0]})
    assert resp.status_code == 422 and decisions(database, rid) == before

    assert finance.secret is not None
    fresh = code(finance.secret, 1)
    done = client.post(link, data={"code": fresh})
    assert done.status_code == 200, done.data
    assert decisions(database, rid)[-1] == (tenant.user("finance"), "approve", "email", True)


def test_a_slack_button_value_is_not_an_email_link_and_the_reverse(
    app: Any, database: Any, expense_tenant: Any
) -> None:
    from signoff.notifications import links, slack

    tenant = expense_tenant
    rid = submit(app, tenant)
    button = link_path(app, tenant, "manager", rid, 0, salt=slack.ACTION_SALT)
    for method in ("get", "post"):
        resp = getattr(fresh_client(app), method)(button)
        assert resp.status_code == 400 and b"not valid" in resp.data
    assert decisions(database, rid) == []
    with app.app_context():
        email_token = link_path(app, tenant, "manager", rid, 0).rsplit("/", 1)[1]
        with pytest.raises(links.LinkError):
            slack.read_button_value(email_token)


def test_a_link_used_while_signed_in_to_another_tenant_acts_only_in_its_own(
    app: Any, database: Any, expense_tenant: Any, tenant_factory: Any
) -> None:
    """A member of another tenant who got hold of a link (forwarded mail) and opens it
    while signed in to their own tenant decides nothing there: the decision lands in
    the link's tenant, for the link's approver, and nothing is written elsewhere."""
    from tests.fixtures.tenants import web_login
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import save

    tenant = expense_tenant
    other = tenant_factory()
    save(app, other, "expense_approval", spec_expense())
    rid = submit(app, tenant)
    outsider = fresh_client(app)
    web_login(outsider, other.username("admin"))
    resp = outsider.post(link_path(app, tenant, "manager", rid, 0))
    assert resp.status_code == 200
    assert decisions(database, rid) == [(tenant.user("manager"), "approve", "email", False)]
    with database.connect("admin") as conn:
        written = conn.execute(
            "SELECT count(*) FROM step_decision WHERE tenant_id = %s", (other.id,)
        ).fetchone()[0]
    assert written == 0


@pytest.fixture(scope="module")
def csrf_app(database: Any, redis_url: str, redis_prefix: str) -> Any:
    from signoff.app import create_app

    return create_app(app_config(database, redis_url, redis_prefix, WTF_CSRF_ENABLED=True))


def test_the_act_post_needs_the_csrf_token_of_its_confirmation_page(
    app: Any, csrf_app: Any, database: Any, expense_tenant: Any
) -> None:
    tenant = expense_tenant
    rid = submit(app, tenant)
    link = link_path(app, tenant, "manager", rid, 0)
    client = fresh_client(csrf_app)
    forged = client.post(link, data={"comment": "cross-site"})
    assert forged.status_code == 400 and decisions(database, rid) == []
    page = client.get(link)
    assert page.status_code == 200 and decisions(database, rid) == []  # GET never decides
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page.data) or re.search(
        rb'value="([^"]+)"[^>]*name="csrf_token"', page.data
    )
    assert token is not None
    done = client.post(link, data={"csrf_token": token.group(1).decode()})
    assert done.status_code == 200
    assert len(decisions(database, rid)) == 1


def test_the_token_never_authenticates_a_session(app: Any, expense_tenant: Any) -> None:
    """Opening or using a link signs nobody in: the tenant's pages and API stay closed."""
    tenant = expense_tenant
    rid = submit(app, tenant)
    client = fresh_client(app)
    link = link_path(app, tenant, "manager", rid, 0)
    assert client.get(link).status_code == 200
    assert client.post(link).status_code == 200
    page = client.get(f"/t/{tenant.slug}/requests/{rid}")
    assert page.status_code in (302, 401, 403, 404)
    assert client.get("/api/v1/approval-workflow/pending").status_code == 401
    # And a real token of the approver still works (nothing was revoked by the link).
    assert api_token(fresh_client(app), tenant.username("manager"), tenant.slug)


def test_a_resubmission_racing_the_click_does_not_let_an_old_link_decide_the_new_round(
    app: Any, database: Any, expense_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding (low, race), fixed.
    ``views/act.py`` compares the link's round with the request
    in ``_check``, in its own read, before ``do_approve`` takes the request lock, and
    the action never sees the round. A resubmission committed in between (the
    requester raised the amount from 5,000 to 90,000) is approved by a link that was
    minted, and shown on the confirmation page, for the old content. Slack documents
    the same gap as a known limit. Fix: pass the expected round to the action and
    compare it after ``_lock_and_load`` (refuse with ``Conflict("round_changed")``)."""
    from signoff.workflow import actions
    from signoff.workflow.actions import do_request_changes, do_resubmit

    tenant = expense_tenant
    rid = submit(app, tenant)  # 5,000
    old = link_path(app, tenant, "manager", rid, 0)
    real = actions.do_approve

    def requester_wins_the_race(session: Any, **kwargs: Any) -> Any:
        # What another request committed while the link's POST was between its check
        # and its decision: manager2 sent it back, alice raised the amount.
        with in_tenant(app, tenant) as s:
            do_request_changes(
                s, actor=actor(tenant, "manager2"), request_id=rid, comment="Too high"
            )
        with in_tenant(app, tenant) as s:
            do_resubmit(
                s, actor=actor(tenant, "alice"), request_id=rid, input_data={"amount": 90000}
            )
        monkeypatch.setattr(actions, "do_approve", real)
        return real(session, **kwargs)

    monkeypatch.setattr(actions, "do_approve", requester_wins_the_race)
    fresh_client(app).post(old)

    assert request_round(app, tenant, rid) == 2
    with database.connect("admin") as conn:
        approved_round_2 = conn.execute(
            "SELECT count(*) FROM step_decision WHERE request_id = %s AND round = 2 "
            "AND verdict = 'approve'",
            (str(rid),),
        ).fetchone()[0]
    assert approved_round_2 == 0, "a link of round 1 approved round 2 (amount 90,000)"
