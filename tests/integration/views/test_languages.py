"""Languages over HTTP (issue 15 item 7): ``Accept-Language: de`` renders the portal in
German with no English message of the catalogue left; the profile's language wins over
the header; amounts typed in the request form are read per language, and an ambiguous
one is refused with a 422 naming the field; e-mails go out in the recipient's language."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from babel.messages.pofile import read_po

from signoff.languages import TRANSLATIONS
from tests.fixtures.tenants import fresh_client
from tests.integration.views.conftest import strip_tags, submit, text_of
from tests.integration.workflow.conftest import in_tenant

DE = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


def _english_sentences() -> list[str]:
    """The catalogue's English texts of two words or more whose German differs, with
    their placeholders and markup cut out: none may show on a German page."""
    with (TRANSLATIONS / "de" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="de")
    found = []
    for message in catalog:
        if not message.id:
            continue
        english = message.id if isinstance(message.id, str) else message.id[0]
        german = message.string if isinstance(message.string, str) else message.string[0]
        if english == german:
            continue
        for piece in re.split(r"%\(\w+\)s|<[^>]+>|%%", english):
            piece = re.sub(r"\s+", " ", piece).strip(" .,:;()")
            if len(piece.split()) >= 2 and piece not in german:
                found.append(piece)
    return sorted(set(found))


ENGLISH = _english_sentences()


def _english_left(html: str) -> list[str]:
    visible = re.sub(r"\s+", " ", strip_tags(html))
    return [s for s in ENGLISH if re.search(rf"(?<!\w){re.escape(s)}(?!\w)", visible)]


def _set_language(client: Any, language: str) -> None:
    page = client.post(
        "/account/profile/language", data={"language": language, "back": "/account/profile"}
    )
    assert page.status_code == 302, text_of(page)


def test_the_catalogue_has_sentences_to_look_for() -> None:
    assert "Waiting for you" in ENGLISH and "Submit for approval" in ENGLISH


def test_german_accept_language_renders_every_portal_page_in_german(
    app: Any, portal_tenant: Any, login: Any
) -> None:
    base = f"/t/{portal_tenant.slug}"
    rid = submit(
        app,
        portal_tenant,
        "expense_approval",
        {"amount": "1500.50", "description": "Laptop"},
        title="Neuer Laptop",
    )
    manager = login(portal_tenant.username("manager"))
    alice = login(portal_tenant.username("alice"))
    pages = {
        "inbox": (manager, f"{base}/"),
        "request (approver)": (manager, f"{base}/requests/{rid}"),
        "request (requester)": (alice, f"{base}/requests/{rid}"),
        "mine": (alice, f"{base}/mine"),
        "new": (alice, f"{base}/new"),
        "form": (alice, f"{base}/new/expense_approval"),
        "delegations": (alice, f"{base}/delegations"),
        "profile": (alice, f"{base}/account/profile"),
        "withdraw": (alice, f"{base}/requests/{rid}/withdraw"),
        "notifications": (manager, f"{base}/notifications/"),
        "notification preferences": (manager, f"{base}/notifications/preferences"),
        "sign in": (fresh_client(app), "/login/"),
        "sign up": (fresh_client(app), "/signup/"),
        "forgotten password": (fresh_client(app), "/account/forgot-password"),
        "sessions": (alice, "/account/sessions/"),
        "password": (alice, f"{base}/account/password"),
        "mfa enrolment": (alice, f"{base}/mfa/enroll"),
    }
    for name, (client, path) in pages.items():
        page = client.get(path, headers=DE)
        assert page.status_code == 200, (name, page.status_code)
        html = text_of(page)
        assert '<html lang="de">' in html, name
        assert _english_left(html) == [], name
    # Error pages too (werkzeug's own texts are English only): 404 and 405 of a page.
    for name, (page, status) in {
        "404": (manager.get(f"{base}/no-such-page", headers=DE), 404),
        "405": (manager.post(f"{base}/mine", headers=DE), 405),
    }.items():
        assert page.status_code == status, name
        html = text_of(page)
        assert '<html lang="de">' in html and _english_left(html) == [], name
    inbox = text_of(manager.get(f"{base}/", headers=DE))
    assert "Wartet auf Sie" in inbox and "Posteingang" in inbox and "Abmelden" in inbox
    # The amount in German notation, the dates in German order.
    assert "Betrag 1.500,50" in inbox
    request_page = text_of(manager.get(f"{base}/requests/{rid}", headers=DE))
    assert "Ihre Entscheidung" in request_page and "1.500,50" in request_page
    assert "Genehmigungskette" in request_page
    # And the same pages in English without the header, or with an English one.
    for headers in ({}, EN):
        english = text_of(manager.get(f"{base}/", headers=headers))
        assert '<html lang="en">' in english and "Waiting for you" in english
        assert "amount 1,500.50" in english
        assert "Waiting for you" in _english_left(english)  # the check does find English


def test_every_admin_page_is_in_german(app: Any, portal_tenant: Any, login: Any) -> None:
    """The admin pages, found by following the admin navigation from the overview."""
    submit(app, portal_tenant, "expense_approval", {"amount": "20", "description": "Taxi"})
    admin = login(portal_tenant.username("admin"))
    overview = text_of(admin.get(f"/t/{portal_tenant.slug}/admin/", headers=DE))
    tabs = re.findall(r'<li><a href="([^"]+)" class="[^"]*">([^<]+)</a></li>', overview)
    assert len(tabs) >= 15 and ("Mitglieder" in dict(tabs).values())
    for path, label in tabs:
        page = admin.get(path, headers=DE)
        assert page.status_code == 200, (label, page.status_code)
        assert _english_left(text_of(page)) == [], label


def test_the_profile_language_wins_over_the_header(portal_tenant: Any, login: Any) -> None:
    base = f"/t/{portal_tenant.slug}"
    alice = login(portal_tenant.username("alice"))
    _set_language(alice, "en")
    page = text_of(alice.get(f"{base}/mine", headers=DE))
    assert '<html lang="en">' in page and "My requests" in page
    _set_language(alice, "de")
    page = text_of(alice.get(f"{base}/mine", headers=EN))
    assert '<html lang="de">' in page and "Meine Anträge" in page
    profile = text_of(alice.get("/account/profile", headers=EN, follow_redirects=True))
    assert 'value="de" lang="de" selected' in profile
    # Empty: the browser decides again.
    _set_language(alice, "")
    assert '<html lang="en">' in text_of(alice.get(f"{base}/mine", headers=EN))
    assert '<html lang="de">' in text_of(alice.get(f"{base}/mine", headers=DE))
    # A language Signoff does not speak is refused, and nothing changes.
    bad = alice.post(
        "/account/profile/language",
        data={"language": "fr", "back": "/account/profile"},
        headers=EN,
        follow_redirects=True,
    )
    assert "Language: choose one of English, Deutsch." in text_of(bad)
    assert '<html lang="de">' in text_of(alice.get(f"{base}/mine", headers=DE))


def _statements(app: Any, client: Any, path: str, **kwargs: Any) -> tuple[Any, list[str]]:
    """The response to ``client.get(path)`` and every SQL statement the app sent for it."""
    from sqlalchemy import event

    from signoff.extensions import db

    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        resp = client.get(path, **kwargs)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return resp, seen


def test_the_profile_language_comes_with_the_user_load(
    app: Any, database: Any, tenant_factory: Any, login: Any
) -> None:
    """A signed-in page reads the profile language with the user's own row: no
    statement of its own (it was one more per page), and German is still chosen."""
    tenant = tenant_factory()
    german_reader(database, tenant, "bob")
    bob = login(tenant.username("bob"))
    bob.get(f"/t/{tenant.slug}/mine", headers=EN)  # warms the permission cache
    resp, seen = _statements(app, bob, f"/t/{tenant.slug}/mine", headers=EN)
    html = text_of(resp)
    assert resp.status_code == 200 and '<html lang="de">' in html and "Meine Anträge" in html
    flat = [re.sub(r"\s+", " ", s) for s in seen]
    assert not any(s.startswith("SELECT language FROM ab_user") for s in flat), flat
    # The user's load is where it came from.
    assert any("FROM ab_user" in s and "ab_user.language" in s for s in flat), flat
    assert not any(s.startswith(("ROLLBACK TO SAVEPOINT", "SAVEPOINT")) for s in flat), flat


def test_an_unsupported_header_falls_back_to_english(portal_tenant: Any, login: Any) -> None:
    alice = login(portal_tenant.username("alice"))
    page = alice.get(f"/t/{portal_tenant.slug}/mine", headers={"Accept-Language": "fr, ja"})
    assert '<html lang="en">' in text_of(page)


def _stored_amount(database: Any, tenant: Any, title: str) -> Any:
    with database.connect("admin") as conn:
        row = conn.execute(
            "SELECT input_data->>'amount' FROM approval_request WHERE tenant_id = %s "
            "AND title = %s",
            (tenant.id, title),
        ).fetchone()
    return row[0] if row else None


@pytest.mark.parametrize(
    ("headers", "typed", "stored"),
    [
        (DE, "1.500,50", "1500.50"),
        (DE, "1,5", "1.5"),
        (EN, "1,500.50", "1500.50"),
        (EN, "1500", "1500"),
    ],
)
def test_amounts_typed_in_the_form_are_read_in_the_language(
    database: Any, portal_tenant: Any, login: Any, headers: dict, typed: str, stored: str
) -> None:
    alice = login(portal_tenant.username("alice"))
    title = f"Amount {uuid.uuid4().hex[:8]}"
    sent = alice.post(
        f"/t/{portal_tenant.slug}/new/expense_approval",
        data={"title": title, "amount": typed, "description": "Offsite"},
        headers=headers,
    )
    assert sent.status_code == 302, text_of(sent)
    assert Decimal(_stored_amount(database, portal_tenant, title)) == Decimal(stored)


@pytest.mark.parametrize(
    ("headers", "typed", "says"),
    [
        (DE, "1,500", "ist mehrdeutig"),
        (EN, "1,5", "is ambiguous"),
        (EN, "1.500", "is ambiguous"),
        (DE, "1,500.50", "ist kein Betrag"),
    ],
)
def test_an_ambiguous_amount_is_refused_naming_the_field(
    database: Any, portal_tenant: Any, login: Any, headers: dict, typed: str, says: str
) -> None:
    alice = login(portal_tenant.username("alice"))
    title = f"Ambiguous {uuid.uuid4().hex[:8]}"
    refused = alice.post(
        f"/t/{portal_tenant.slug}/new/expense_approval",
        data={"title": title, "amount": typed, "description": "Offsite"},
        headers=headers,
    )
    assert refused.status_code == 422
    html = text_of(refused)
    amount_block = html.split('data-field="amount"')[1].split('data-field="description"')[0]
    assert says in amount_block
    assert f'value="{typed}"' in amount_block  # kept as typed, to correct
    assert _stored_amount(database, portal_tenant, title) is None


def test_flash_messages_follow_the_language(app: Any, portal_tenant: Any, login: Any) -> None:
    base = f"/t/{portal_tenant.slug}"
    rid = submit(app, portal_tenant, "expense_approval", {"amount": "80", "description": "Taxi"})
    alice = login(portal_tenant.username("alice"))
    done = alice.post(f"{base}/requests/{rid}/comment", data={"body": "Quittung folgt"}, headers=DE)
    page = text_of(alice.get(done.headers["Location"], headers=DE))
    assert "Kommentar hinzugefügt." in page and "Comment added." not in page


def german_reader(database: Any, tenant: Any, who: str) -> None:
    """``who`` of ``tenant`` chose German on their profile (written as the admin role)."""
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE ab_user SET language = 'de' WHERE username = %s", (tenant.username(who),)
        )


def test_emails_go_out_in_the_recipients_language(
    app: Any, database: Any, portal_tenant: Any
) -> None:
    from flask_appbuilder.security.sqla.models import User
    from sqlalchemy import select

    from signoff.notifications.email import compose
    from signoff.tenancy.models import Tenant
    from signoff.workflow.models import NotificationOutbox

    rid = submit(
        app,
        portal_tenant,
        "expense_approval",
        {"amount": "1500.50", "description": "Laptop"},
        title="Laptop",
    )
    german_reader(database, portal_tenant, "manager")

    def mail_to(who: str) -> Any:
        with in_tenant(app, portal_tenant) as session:
            user = session.scalar(select(User).where(User.username == portal_tenant.username(who)))
            note = NotificationOutbox(
                kind="approval_needed",
                payload={},
                request_id=rid,
                step_index=0,
                recipient_id=user.id,
                title="Approval needed: Laptop",
            )
            return compose(session, session.get(Tenant, portal_tenant.id), note, user)

    german = mail_to("manager")
    assert "bittet Sie um Genehmigung" in german.text and "Hallo " in german.text
    assert "1.500,50" in german.text and ">Genehmigen</a>" in german.html
    assert '<html lang="de">' in german.html
    # Nobody else's language changed: the second manager (no choice) reads English.
    english = mail_to("manager2")
    assert "asks for your approval" in english.text and "1,500.50" in english.text


def test_api_error_messages_are_translated_and_their_codes_stay(
    app: Any, portal_tenant: Any
) -> None:
    from tests.integration.api.conftest import Api

    api = Api(fresh_client(app), portal_tenant)
    body = {"workflow": "expense_approval", "title": "Ohne Betrag", "input_data": {}}
    answers = {
        lang: api.post("/api/v1/requests/", "alice", json=body, headers={"Accept-Language": lang})
        for lang in ("en", "de")
    }
    assert {a.status_code for a in answers.values()} == {422}
    english, german = answers["en"].get_json(), answers["de"].get_json()
    assert english["code"] == german["code"] == "invalid_input"
    assert english["errors"]["input_data.amount"] == ["is required"]
    assert german["errors"]["input_data.amount"] == ["ist erforderlich"]
    # An engine refusal: the requester may not decide on their own request.
    rid = submit(app, portal_tenant, "expense_approval", {"amount": "5000", "description": "Taxi"})
    refused = api.post(
        f"/api/v1/approval-workflow/approve/{rid}/0",
        "alice",
        json={},
        headers={"Accept-Language": "de"},
    ).get_json()
    german_refusals = {
        "self_approval": "der Antragsteller kann nicht über seinen eigenen Antrag entscheiden",
        "not_eligible": "Sie gehören nicht zu den Genehmigenden dieses Schritts",
    }
    assert refused["message"] == german_refusals[refused["code"]], refused


def test_the_operator_console_is_in_german(app: Any, portal_tenant: Any) -> None:
    from signoff.cli.operator import create_operator_user
    from tests.fixtures.tenants import web_login

    name = f"op-{uuid.uuid4().hex[:6]}"
    password = "Operat0r-passphrase!"
    create_operator_user(app, name, f"{name}@ops.example", password, "Olga", "Ops")
    operator = fresh_client(app)
    web_login(operator, name, password)
    for path in ("/operator/", "/operator/tenants/", "/operator/audit/", "/operator/support/"):
        page = operator.get(path, headers=DE)
        assert page.status_code == 200, path
        html = text_of(page)
        assert '<html lang="de">' in html and _english_left(html) == [], path
    assert "Mandanten" in text_of(operator.get("/operator/", headers=DE))


# --- messages made with values in the lower floors (issue 15 item 7, the remaining gaps) ---


def test_refusals_with_values_are_translated_and_keep_their_codes(
    app: Any, portal_tenant: Any
) -> None:
    from tests.integration.api.conftest import Api

    api = Api(fresh_client(app), portal_tenant)
    body = {"workflow": "no_such_flow", "title": "X", "input_data": {}}
    english, german = (
        api.post("/api/v1/requests/", "alice", json=body, headers={"Accept-Language": lang})
        for lang in ("en", "de")
    )
    assert english.status_code == german.status_code == 404
    assert english.get_json()["code"] == german.get_json()["code"] == "unknown_workflow"
    assert english.get_json()["message"] == "No workflow 'no_such_flow'"
    assert german.get_json()["message"] == "Kein Workflow „no_such_flow“"
    # An engine refusal naming the request's status, the status word in German too.
    rid = submit(app, portal_tenant, "expense_approval", {"amount": "500", "description": "Taxi"})
    assert api.post(f"/api/v1/requests/{rid}/withdraw", "alice").status_code == 200
    again = api.post(f"/api/v1/requests/{rid}/withdraw", "alice", headers={"Accept-Language": "de"})
    assert again.status_code == 409 and again.get_json()["code"] == "not_pending"
    message = again.get_json()["message"]
    assert "zurückgezogen" in message and "withdrawn" not in message, message


def test_marshmallow_messages_are_translated(app: Any, portal_tenant: Any) -> None:
    from tests.integration.api.conftest import Api

    api = Api(fresh_client(app), portal_tenant)
    body = {"title": 5, "input_data": {}}  # no workflow, a title that is no text
    answers = {
        lang: api.post("/api/v1/requests/", "alice", json=body, headers={"Accept-Language": lang})
        for lang in ("en", "de")
    }
    english, german = answers["en"].get_json(), answers["de"].get_json()
    assert answers["de"].status_code == 400 and english["code"] == german["code"]
    assert english["errors"]["workflow"] == ["Missing data for required field."]
    assert german["errors"]["workflow"] == ["Pflichtfeld fehlt."]
    assert german["errors"]["title"] == ["Keine gültige Zeichenkette."]
    assert german["message"].endswith(("Pflichtfeld fehlt.", "Keine gültige Zeichenkette."))
    # A message marshmallow formats with its values (a validator's limit).
    long = api.post(
        "/api/v1/requests/",
        "alice",
        json={"workflow": "w" * 65},
        headers={"Accept-Language": "de"},
    ).get_json()
    assert long["errors"]["workflow"] == ["Die Länge muss zwischen 1 und 64 liegen."], long


def test_the_email_subject_is_in_the_recipients_language(
    app: Any, database: Any, portal_tenant: Any
) -> None:
    from flask_appbuilder.security.sqla.models import User
    from sqlalchemy import select

    from signoff.notifications.email import compose
    from signoff.tenancy.models import Tenant
    from signoff.workflow.models import NotificationOutbox

    rid = submit(
        app,
        portal_tenant,
        "expense_approval",
        {"amount": "300", "description": "Bahn"},
        title="Bahnfahrt",
    )
    german_reader(database, portal_tenant, "manager")

    def mail_to(who: str) -> Any:
        # The row the workflow wrote (its stored title is English), composed for its reader.
        with in_tenant(app, portal_tenant) as session:
            user = session.scalar(select(User).where(User.username == portal_tenant.username(who)))
            note = session.scalar(
                select(NotificationOutbox).where(
                    NotificationOutbox.request_id == rid,
                    NotificationOutbox.kind == "approval_needed",
                    NotificationOutbox.recipient_id == user.id,
                )
            )
            assert note is not None and note.title == "Approval needed: Bahnfahrt"
            tenant = session.get(Tenant, portal_tenant.id)
            return tenant.name, compose(session, tenant, note, user)

    name, german = mail_to("manager")
    assert german.subject == f"[{name}] Genehmigung nötig: Bahnfahrt"
    assert "<title>Genehmigung nötig: Bahnfahrt</title>" in german.html
    _, english = mail_to("manager2")
    assert english.subject == f"[{name}] Approval needed: Bahnfahrt"


def test_slack_messages_are_in_the_recipients_language(
    app: Any, database: Any, tenant_factory: Any, monkeypatch: Any
) -> None:
    from tests.integration.notifications.slack_helpers import (
        FakeSlack,
        buttons,
        click_body,
        configure,
        connect,
        dispatch,
        expense_tenant,
        link,
        new_secret,
        post_click,
        signed_headers,
    )
    from tests.integration.notifications.slack_helpers import submit as slack_submit

    fake = FakeSlack().start()
    try:
        configure(app, monkeypatch, fake)
        tenant = expense_tenant(tenant_factory, app)
        secret = new_secret()
        connect(app, tenant, secret)
        link(app, tenant, "manager", "UDEUTSCH01")
        link(app, tenant, "manager2", "UENGLISH01")
        german_reader(database, tenant, "manager")
        slack_submit(app, tenant, title="Team offsite")
        assert dispatch(app, tenant).errors == []

        def approval(slack_user: str) -> dict[str, Any]:
            found = [m for m in fake.messages_to(slack_user) if buttons(m).get("signoff_approve")]
            assert found, fake.calls
            return found[-1]

        german = approval("UDEUTSCH01")
        assert german["text"].startswith("Genehmigung nötig: Team offsite")
        section = german["blocks"][0]["text"]["text"]
        assert "*Genehmigung nötig: Team offsite*" in section and "Beantragt von" in section
        labels = {k: b["text"]["text"] for k, b in buttons(german).items()}
        assert labels == {
            "signoff_approve": "Genehmigen",
            "signoff_reject": "Ablehnen",
            "signoff_open": "In Signoff öffnen",
        }
        english = approval("UENGLISH01")
        assert english["text"].startswith("Approval needed: Team offsite")
        assert buttons(english)["signoff_open"]["text"]["text"] == "Open in Signoff"
        # The answer to a click speaks the clicking member's language.
        body = click_body("UDEUTSCH01", buttons(german)["signoff_approve"])
        answer = post_click(fresh_client(app), tenant.slug, body, signed_headers(secret, body))
        assert answer.status_code == 200, answer.get_data(as_text=True)
        text = answer.get_json()["text"]
        assert "Sie haben „Team offsite“" in text and "in Slack genehmigt" in text, text
    finally:
        fake.stop()


def test_pages_wrapped_late_are_in_german(portal_tenant: Any, login: Any) -> None:
    """The e-mail change page and the attachment delete confirmation, which were English."""
    import io

    from tests.integration.api.test_attachments_api import PNG

    base = f"/t/{portal_tenant.slug}"
    alice = login(portal_tenant.username("alice"))
    page = alice.get(f"{base}/account/email", headers=DE)
    assert page.status_code == 200
    html = text_of(page)
    assert "E-Mail-Adresse ändern" in html and _english_left(html) == []
    sent = alice.post(
        f"{base}/new/expense_approval",
        data={
            "title": "Quittung",
            "amount": "420",  # above the auto-approval limit: the request stays open
            "description": "Taxi",
            "files": [(io.BytesIO(PNG), "taxi.png")],
        },
        content_type="multipart/form-data",
        headers=DE,
    )
    assert sent.status_code == 302, text_of(sent)
    shown = text_of(alice.get(sent.headers["Location"], headers=DE))
    found = re.search(rf"{base}/attachments/([0-9a-f-]+)/delete", shown)
    assert found, shown
    ask = alice.get(found.group(0), headers=DE)
    assert ask.status_code == 200
    confirm = text_of(ask)
    assert "„taxi.png“ löschen?" in confirm and "Ja, löschen" in confirm
    assert _english_left(confirm) == []


def test_workflow_definition_errors_are_translated(app: Any, portal_tenant: Any) -> None:
    from tests.integration.api.conftest import Api

    api = Api(fresh_client(app), portal_tenant)
    definition = {
        "name": "Probe",
        "steps": [{"name": "Prüfung", "required_role": "Manager", "pattern": "mojority"}],
    }
    answers = {
        lang: api.post(
            "/api/v1/workflows/validate",
            json={"key": "probe", "definition": definition},
            headers={"Accept-Language": lang},
        ).get_json()
        for lang in ("en", "de")
    }
    english = answers["en"]["errors"]["steps[0].pattern"]
    german = answers["de"]["errors"]["steps[0].pattern"]
    assert english[0].startswith("unknown pattern 'mojority'; expected one of sequential")
    assert german[0].startswith("unbekanntes Muster 'mojority'; erwartet wird eines von sequential")


# --- HTTP errors, the operator console and every marshmallow message (the last gaps) ----


def test_http_errors_of_pages_are_in_german(app: Any, portal_tenant: Any, login: Any) -> None:
    """werkzeug's own texts (404, 405, any other status) never reach a German page."""
    from werkzeug.exceptions import RequestedRangeNotSatisfiable

    from signoff.views.common import html_error

    base = f"/t/{portal_tenant.slug}"
    alice = login(portal_tenant.username("alice"))
    pages = {
        "404 in a tenant": (alice.get, f"{base}/no-such-page", 404, "Seite nicht gefunden"),
        "404 outside": (fresh_client(app).get, "/no-such-page", 404, "Seite nicht gefunden"),
        "405": (alice.post, f"{base}/mine", 405, "Diese Adresse nimmt das nicht an"),
    }
    for name, (method, path, status, says) in pages.items():
        page = method(path, headers=DE)
        assert page.status_code == status, (name, page.status_code)
        html = text_of(page)
        assert '<html lang="de">' in html and says in html, name
        assert _english_left(html) == [], name
        assert "The requested URL" not in html and "The method is not allowed" not in html
    assert "GET" in alice.post(f"{base}/mine", headers=DE).headers.get("Allow", "")
    # In English without the header: our words, not werkzeug's.
    english = text_of(alice.post(f"{base}/mine", headers=EN))
    assert "This address does not accept that" in english
    # Any other status: "Fehler <code>" and our message for it.
    with app.test_request_context(f"{base}/x", headers=DE):
        page = html_error(RequestedRangeNotSatisfiable())
        html = page.get_data(as_text=True)
        assert page.status_code == 416 and "Fehler 416" in html
        assert "Bereich nicht erfüllbar" in html and "cannot provide" not in html


def test_api_http_errors_are_translated_and_keep_their_codes(app: Any) -> None:
    client = fresh_client(app)
    for lang, not_found, not_allowed in (
        ("en", "Not found", "Method not allowed"),
        ("de", "Nicht gefunden", "Methode nicht erlaubt"),
    ):
        headers = {"Accept-Language": lang}
        missing = client.get("/api/v1/no-such-thing/", headers=headers)
        assert missing.status_code == 404
        assert missing.get_json() == {
            "code": "not_found",
            "message": not_found,
            "field": None,
            "errors": None,
        }
        wrong = client.put("/api/v1/workflows/validate", headers=headers)
        assert wrong.status_code == 405, wrong.get_data(as_text=True)
        body = wrong.get_json()
        assert body["code"] == "method_not_allowed" and body["message"] == not_allowed, body
        assert "POST" in wrong.headers.get("Allow", "")


def test_operator_console_errors_and_labels_are_in_german(app: Any, portal_tenant: Any) -> None:
    from signoff.cli.operator import create_operator_user
    from tests.fixtures.tenants import web_login

    name = f"op-{uuid.uuid4().hex[:6]}"
    password = "Operat0r-passphrase!"
    create_operator_user(app, name, f"{name}@ops.example", password, "Olga", "Ops")
    operator = fresh_client(app)
    web_login(operator, name, password)
    tenants = text_of(operator.get(f"/operator/tenants/?q={portal_tenant.slug}", headers=DE))
    assert f'aria-label="Tarif von {portal_tenant.slug}"' in tenants
    for path, says in (
        ("/operator/tenants/?page=abc", "page: muss eine ganze Zahl ab 1 sein"),
        ("/operator/tenants/?status=gone", "status: muss eines hiervon sein: active, suspended"),
        ("/operator/tenants/?q=" + "x" * 300, "q: höchstens"),
    ):
        page = operator.get(path, headers=DE)
        assert page.status_code == 400, path
        html = text_of(page)
        assert says in html and _english_left(html) == [], (path, html)
    missing = operator.get("/operator/no-such-page", headers=DE)
    assert missing.status_code == 404 and "Seite nicht gefunden" in text_of(missing)


def _our_schemas() -> list[type]:
    import importlib
    import pkgutil

    from marshmallow import Schema

    import signoff.api

    for info in pkgutil.iter_modules(signoff.api.__path__):
        importlib.import_module(f"signoff.api.{info.name}")
    found: set[type] = set()
    todo = [Schema]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("signoff."):
                found.add(sub)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _messages(found: Any) -> list[str]:
    if isinstance(found, str):
        return [found]
    if isinstance(found, dict):
        return [m for v in found.values() for m in _messages(v)]
    if isinstance(found, list | tuple):
        return [m for v in found for m in _messages(v)]
    return []


def test_every_message_our_schemas_can_produce_is_in_german(app: Any) -> None:
    """Each field and validator of every marshmallow schema of ours, fed values of every
    kind that can be wrong (missing, null, wrong type, too short, too long, out of range,
    not one of the choices, not matching, too large, not finite, naive, out of bounds): no
    message it answers stays English in German, and none fails with anything but a
    ValidationError (that would be a 500)."""
    from marshmallow import RAISE, ValidationError, missing

    from signoff.languages import translated

    probes: list[Any] = [
        missing,
        None,
        {},
        [],
        "",
        " ",
        "zz",
        "\x00",
        "\x07",
        "x" * 100_001,
        True,
        1.5,
        float("nan"),
        10**400,
        -(10**12),
        10**12,
        -1,
        0,
        "not-a-uuid",
        "9999-99-99",
        "2020-01-01T00:00:00",
        "0001-01-01",
        "0001-01-01T00:00:00+00:00",
        [None],
        ["zz"],
        [{}],
        [10**12],
        {"k": None},
        {"k": "\x00"},
        b"\xff",
    ]
    produced: dict[str, str] = {}
    schemas = _our_schemas()
    assert len(schemas) >= 20, schemas
    for cls in schemas:
        schema = cls()
        for name, field in schema.fields.items():
            if field.dump_only:
                continue
            for probe in probes:
                try:
                    field.deserialize(probe, name, {name: probe})
                except ValidationError as exc:
                    for m in _messages(exc.messages):
                        produced.setdefault(m, f"{cls.__name__}.{name} <- {probe!r:.40}")
        for whole in ("not an object", {"no_such_field_here": 1}):
            try:
                schema.load(whole, unknown=RAISE)
            except ValidationError as exc:
                for m in _messages(exc.messages):
                    produced.setdefault(m, f"{cls.__name__} <- {whole!r}")
    kinds = " ".join(produced)
    for expected in (
        "Missing data for required field.",
        "Field may not be null.",
        "Unknown field.",
        "Invalid input type.",
        "Not a valid string.",
        "Not a valid integer.",
        "Not a valid boolean.",
        "Not a valid UUID.",
        "Not a valid list.",
        "Length must be between",
        "Must be one of:",
        "Must be greater than or equal to",
        "String does not match expected pattern.",
    ):
        assert expected in kinds, f"no probe produced {expected!r}: {sorted(produced)}"
    with app.test_request_context("/", headers=DE):
        english = {m: where for m, where in produced.items() if translated(m) == m}
    assert english == {}, f"English left in German: {english}"


def test_a_token_users_profile_language_comes_with_the_caller(
    app: Any, database: Any, tenant_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token request's user is built from ``signoff.api_caller``'s row, profile
    language included (migration 0047): its error answers are in that language, over
    the header, and choosing it sends no statement of its own."""
    from tests.integration.api.conftest import Api, expense_tenant
    from tests.integration.api.test_decision_round_trips import statements

    tenant = expense_tenant(tenant_factory, app)
    german_reader(database, tenant, "alice")
    api = Api(fresh_client(app), tenant)
    # Fills the process's caches (permissions, the workflow) and records the session's
    # activity, so the calls below write nothing of the session's.
    assert api.get("/api/v1/approval-workflow/pending", "alice").status_code == 200
    with statements(app, monkeypatch) as seen_404:
        not_found = api.get(f"/api/v1/requests/{uuid.uuid4()}", "alice", headers=EN)
    body = {"workflow": "expense_approval", "input_data": {"amount": 5}, "colour": "red"}
    with statements(app, monkeypatch) as seen_422:
        invalid = api.post("/api/v1/requests/", "alice", json=body, headers=EN)
    # German, over the English header; the codes stay.
    assert not_found.status_code == 404, not_found.get_json()
    assert not_found.get_json()["code"] == "not_found"
    assert not_found.get_json()["message"] == "Nicht gefunden"
    assert invalid.status_code == 400, invalid.get_json()
    assert invalid.get_json()["errors"] == {"colour": ["Unbekanntes Feld."]}
    # The caller's statement, then the action's (the read of the request), and nothing
    # else: no savepoint, no read of the language, no load of the user.
    assert len(seen_404) == 2, seen_404
    assert "signoff.api_caller" in seen_404[0] and "user_language" in seen_404[0], seen_404
    assert "FROM approval_request" in seen_404[1], seen_404
    # The invalid body is refused before the action sends anything.
    assert len(seen_422) == 1 and "signoff.api_caller" in seen_422[0], seen_422
    # Without a profile language, the header decides.
    english = api.get(f"/api/v1/requests/{uuid.uuid4()}", "bob", headers=EN)
    assert english.status_code == 404 and english.get_json()["message"] == "Not found"
