"""Security review: markup that people type (request titles, field names and values,
comments, step names) in the e-mail, the confirmation page of a link, the
notification centre and Slack messages.

Failing tests here prove a vulnerability (see each docstring); passing ones document
an injection that is neutralised and was not covered elsewhere."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.fixtures.tenants import fresh_client, web_login
from tests.fixtures.workflows import spec_expense
from tests.integration.api.conftest import Api
from tests.integration.workflow.conftest import actor, in_tenant, save

SCRIPT = "<script>alert(document.domain)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_LINK = '<a href="javascript:alert(1)">open</a>'
PHISH = '<a href="https://evil.example/login">Manager Approval</a>'
#: What must never reach an HTML page or e-mail as markup.
FORBIDDEN = ("<script", "<img", '<a href="javascript:', '<a href="https://evil.example')


def _rows(app: Any, tenant: Any, request_id: Any, kind: str) -> list[uuid.UUID]:
    """The ids of the request's outbox rows of ``kind``."""
    from sqlalchemy import select

    from signoff.workflow.models import NotificationOutbox

    with in_tenant(app, tenant) as session:
        return list(
            session.scalars(
                select(NotificationOutbox.id).where(
                    NotificationOutbox.request_id == request_id, NotificationOutbox.kind == kind
                )
            )
        )


def _mail_html(app: Any, tenant: Any, note_id: uuid.UUID) -> str:
    """The HTML e-mail of an outbox row exactly as the e-mail channel would send it."""
    from flask_appbuilder.security.sqla.models import User

    from signoff.notifications import email
    from signoff.tenancy.models import Tenant
    from signoff.workflow.models import NotificationOutbox

    with in_tenant(app, tenant) as session:
        row = session.get(Tenant, tenant.id)
        note = session.get(NotificationOutbox, note_id)
        recipient = session.get(User, note.recipient_id)
        return email.compose(session, row, note, recipient).html


def _hostile_request(app: Any, tenant: Any) -> uuid.UUID:
    api = Api(fresh_client(app), tenant)
    rid = api.submit(
        5000,
        title=f"Team dinner {SCRIPT} {IMG}",
        input_data={
            "amount": 5000,
            "note": SCRIPT,
            "vendor": IMG,
            "link": "javascript:alert(1)",
            f"x{IMG}": JS_LINK,
        },
    )
    resp = api.post(
        f"/api/v1/requests/{rid}/comments", "alice", json={"body": f"{JS_LINK} {SCRIPT} {IMG}"}
    )
    assert resp.status_code == 201, resp.get_json()
    return uuid.UUID(rid)


def _assert_inert(html: str, where: str) -> None:
    for bad in FORBIDDEN:
        assert bad not in html, f"{bad!r} reaches {where} as markup"


# --- finding ------------------------------------------------------------------------------


def test_a_step_name_is_not_markup_in_the_approvers_email(app: Any, tenant_factory: Any) -> None:
    """Review finding, fixed.
    the HTML e-mail builds its opening sentence by including
    ``signoff/email/_intro.txt`` into ``notification.html``. A ``.txt`` template is
    compiled WITHOUT autoescaping, and ``{% set intro %}...{% endset %}`` turns what it
    renders into ``Markup``, so ``{{ step.name }}`` (and every other value of the intro:
    requester, delegator, comment author, the row's title for other kinds) is pasted
    into the HTML unescaped. Step names are free text (``definitions/parse.py`` only
    bounds their length), so whoever edits a workflow puts live HTML (a fake "Approve"
    button to a phishing page, tracking images, forms) into every approver's e-mail,
    sent from the platform's address in the tenant's branding. Fix: render the intro as
    HTML (``_intro.html``, autoescaped), or ``{{ intro|e }}``/``escape()`` the captured
    block, or select autoescape for every template of ``signoff/email/``."""
    tenant = tenant_factory()
    definition = spec_expense()
    definition["steps"][0]["name"] = PHISH
    save(app, tenant, "expense_approval", definition)
    api = Api(fresh_client(app), tenant)
    rid = api.submit(5000, title="Quarterly budget")
    [note, *_] = _rows(app, tenant, uuid.UUID(rid), "approval_needed")

    html = _mail_html(app, tenant, note)

    assert PHISH not in html, "the step name reached the e-mail as a live link"
    assert "&lt;a href=" in html


# --- neutralised (coverage the existing tests lack) ---------------------------------------


def test_request_text_is_inert_in_the_html_email(app: Any, tenant_factory: Any) -> None:
    tenant = tenant_factory()
    save(app, tenant, "expense_approval", spec_expense())
    rid = _hostile_request(app, tenant)
    for kind in ("approval_needed", "comment"):
        for note in _rows(app, tenant, rid, kind):
            _assert_inert(_mail_html(app, tenant, note), f"the {kind} e-mail")


def test_request_text_is_inert_on_the_link_page_and_in_the_notification_centre(
    app: Any, tenant_factory: Any
) -> None:
    from signoff.notifications import links

    tenant = tenant_factory()
    definition = spec_expense()
    definition["steps"][0]["name"] = PHISH
    save(app, tenant, "expense_approval", definition)
    rid = _hostile_request(app, tenant)
    with app.app_context():
        token = links.make_token(
            tenant_id=tenant.id,
            user_id=tenant.user("manager"),
            request_id=rid,
            step_index=0,
            round=1,
            verdict="approve",
        )
    page = fresh_client(app).get(f"/act/{token}")
    assert page.status_code == 200
    _assert_inert(page.get_data(as_text=True), "the link's confirmation page")

    client = fresh_client(app)
    web_login(client, tenant.username("manager"))
    centre = client.get(f"/t/{tenant.slug}/notifications/")
    assert centre.status_code == 200
    _assert_inert(centre.get_data(as_text=True), "the notification centre")
    api = Api(fresh_client(app), tenant)
    listed = api.get("/api/v1/notifications/", "manager")
    assert listed.status_code == 200 and listed.mimetype == "application/json"


def test_request_text_cannot_become_a_slack_link_or_mention(app: Any, tenant_factory: Any) -> None:
    from signoff.notifications import slack
    from signoff.tenancy.models import Tenant

    tenant = tenant_factory()
    definition = spec_expense()
    definition["steps"][0]["name"] = "<https://evil.example|Approve here> <!channel>"
    save(app, tenant, "expense_approval", definition)
    with in_tenant(app, tenant) as session:
        from signoff.workflow.actions import do_submit

        rid = do_submit(
            session,
            actor=actor(tenant, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": 5000, "vendor": "<https://evil.example|ACME> <@U0ADMIN>"},
            title="Laptop <@U0ADMIN>",
        ).request_id
    [note, *_] = _rows(app, tenant, rid, "approval_needed")
    from signoff.workflow.models import NotificationOutbox

    with in_tenant(app, tenant) as session:
        message = slack.compose(
            session,
            session.get(Tenant, tenant.id),
            session.get(NotificationOutbox, note),
            buttons=False,
        )
    blocks = json.dumps(message["blocks"])
    for bad in ("<https://evil.example", "<!channel>", "<@U0ADMIN>"):
        assert bad not in blocks
