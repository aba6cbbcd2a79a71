"""Languages of what the notification channels show people (issue 15 item 7): delivery
errors, stored in English on their rows, shown in the reader's language on the admin's
pages; the Slack answer to a Slack user linked to no member, in the best language known.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.fixtures.tenants import fresh_client
from tests.integration.notifications.conftest import dispatch, register, webhook_rows
from tests.integration.notifications.slack_helpers import (
    buttons,
    click_body,
    connect,
    expense_tenant,
    link,
    new_secret,
    post_click,
    signed_headers,
)
from tests.integration.notifications.slack_helpers import dispatch as slack_dispatch
from tests.integration.notifications.slack_helpers import submit as slack_submit
from tests.integration.views.conftest import text_of

DE = {"Accept-Language": "de-DE,de;q=0.9"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


def test_a_failed_delivery_shows_its_error_in_the_readers_language(
    app: Any, api_a: Any, allow: Any, receivers: Any, database: Any, login: Any
) -> None:
    receiver = receivers()
    endpoint = register(api_a, receiver, event_types=["request.submitted"])
    allow("")  # the receiver's loopback address is no longer allowed: refused at delivery
    api_a.submit(5000)
    dispatch(app, api_a.tenant)
    [row] = webhook_rows(database, api_a.tenant, endpoint["id"])
    # Stored as made: English, the value in.
    assert row["status"] == "dead"
    assert row["last_error"].startswith("This URL resolves to a loopback address")
    admin = login(api_a.tenant.username("admin"))
    base = f"/t/{api_a.tenant.slug}/admin"
    for path in (f"{base}/deliveries/", f"{base}/webhooks/{endpoint['id']}"):
        german = text_of(admin.get(path, headers=DE))
        assert "Diese URL verweist auf eine Adresse vom Typ „Loopback“" in german, path
        assert "resolves to" not in german, path
        english = text_of(admin.get(path, headers=EN))
        assert "This URL resolves to a loopback address" in english, path
    deliveries = text_of(admin.get(f"{base}/deliveries/", headers=DE))
    assert "Endgültig fehlgeschlagen (keine weiteren Versuche)" in deliveries
    assert f"Endpunkt {endpoint['id'][:8]}" in deliveries


def test_stored_delivery_errors_read_back_in_german(app: Any) -> None:
    """Each message a channel stores with values in, as stored (plain English text), in
    German; a message inside another (a Slack call's outbound failure) is translated too."""
    from signoff.languages import translated
    from signoff.notifications import http

    private = str(http.tenant_message(http.AddressRefused("10.0.0.1 ...", reason="private")))
    cases = {
        "HTTP 410: Gone (the endpoint was deactivated)": (
            "HTTP 410: Gone (der Endpunkt wurde deaktiviert)"
        ),
        "HTTP 302: redirects are not followed (Location: https://elsewhere.example/)": (
            "HTTP 302: Weiterleitungen werden nicht verfolgt (Location: https://elsewhere.example/)"
        ),
        "hooks.example: timed out (read timeout=10)": (
            "hooks.example: Zeitüberschreitung (read timeout=10)"
        ),
        "hooks.example (203.0.113.9): cannot connect (refused)": (
            "hooks.example (203.0.113.9): keine Verbindung möglich (refused)"
        ),
        "Slack chat.postMessage: slack.example does not resolve (no address)": (
            "Slack chat.postMessage: slack.example lässt sich nicht auflösen (no address)"
        ),
        f"Slack webhook: {private}": (
            "Slack webhook: Diese URL verweist auf eine Adresse vom Typ „privat“, die "
            "ausgehende Anfragen nicht erreichen dürfen (Plattformbetreiber tragen Ausnahmen "
            "in SIGNOFF_OUTBOUND_ALLOW ein)"
        ),
        "the mail server refused the address: {'x@example.test': (550, b'no such user')}": (
            "der Mailserver hat die Adresse abgelehnt: {'x@example.test': (550, b'no such user')}"
        ),
        "the recipient's account is deactivated": "das Konto des Empfängers ist deaktiviert",
        "the endpoint was deleted": "der Endpunkt wurde gelöscht",
    }
    with app.test_request_context("/", headers=DE):
        for english, german in cases.items():
            assert translated(english) == german, english
    with app.test_request_context("/", headers=EN):
        for english in cases:
            assert translated(english) == english


def _with_locale(body: str, locale: str | None) -> str:
    """``body`` (a click) with Slack's ``user.locale`` set."""
    payload = json.loads(parse_qs(body)["payload"][0])
    if locale is not None:
        payload["user"]["locale"] = locale
    return urlencode({"payload": json.dumps(payload)})


def test_an_unlinked_slack_user_is_answered_in_the_best_language_known(
    app: Any, database: Any, tenant_factory: Any, slack_on: Any
) -> None:
    tenant = expense_tenant(tenant_factory, app)
    secret = new_secret()
    connect(app, tenant, secret)  # by the tenant's admin, who has chosen no language yet
    link(app, tenant, "manager", "ULINKED001")
    slack_submit(app, tenant, title="Team offsite")
    assert slack_dispatch(app, tenant).errors == []
    [message] = [m for m in slack_on.messages_to("ULINKED001") if buttons(m).get("signoff_approve")]
    button = buttons(message)["signoff_approve"]

    def answer(slack_user: str, locale: str | None = None) -> str:
        body = _with_locale(click_body(slack_user, button), locale)
        resp = post_click(fresh_client(app), tenant.slug, body, signed_headers(secret, body))
        assert resp.status_code == 200, resp.get_data(as_text=True)
        text: str = resp.get_json()["text"]
        return text

    english = "Your Slack account is not linked to a member of"
    german = "Ihr Slack-Konto ist mit keinem Mitglied von"
    # Nothing known: English.
    assert answer("UNOBODY001").startswith(english)
    # Slack's locale of the user, when the payload carries it.
    assert answer("UNOBODY002", "de-DE").startswith(german)
    assert answer("UNOBODY003", "fr-FR").startswith(english)  # not spoken: the next rule
    # The admin who connected the workspace chose German: their language.
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE ab_user SET language = 'de' WHERE username = %s",
            (tenant.username("admin"),),
        )
    assert answer("UNOBODY004").startswith(german)
    assert answer("UNOBODY005", "en-US").startswith(english)  # Slack's locale first
    # Nothing was decided by any of them.
    with database.connect("admin") as conn:
        decided = conn.execute(
            "SELECT count(*) FROM step_decision WHERE tenant_id = %s", (tenant.id,)
        ).fetchone()
    assert decided is not None and decided[0] == 0
