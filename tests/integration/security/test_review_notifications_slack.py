"""Security review of Slack's interactivity endpoint (``/slack/t/<slug>/interactivity``).

Failing tests here prove a vulnerability (see each docstring); passing ones document
an attack that is refused and was not covered elsewhere."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from signoff.notifications import slack_interactivity
from tests.fixtures.tenants import fresh_client
from tests.fixtures.workflows import spec_expense
from tests.integration.api.conftest import Api
from tests.integration.notifications.slack_helpers import (
    FakeSlack,
    buttons,
    click_body,
    configure,
    connect,
    decisions,
    dispatch,
    link,
    new_secret,
    post_click,
    row_counts,
    signed_headers,
    submit,
)
from tests.integration.workflow.conftest import save

MANAGER_SLACK = "U0REVIEW01"


class CountingStream(io.BytesIO):
    """A request body that counts how much of it the server read."""

    def __init__(self, size: int) -> None:
        super().__init__(b"payload=" + b"a" * size)
        self.consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.consumed += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer)
        self.consumed += n
        return n

    def readline(self, size: int | None = -1) -> bytes:
        data = super().readline(size)
        self.consumed += len(data)
        return data


@pytest.fixture(scope="module")
def review_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def connected(
    app: Any, tenant_factory: Any, monkeypatch: pytest.MonkeyPatch, review_slack: FakeSlack
) -> Any:
    """A tenant with Slack (bot and signing secret) and the manager's Slack linked."""
    review_slack.calls.clear()
    configure(app, monkeypatch, review_slack)
    tenant = tenant_factory()
    save(app, tenant, "expense_approval", spec_expense())
    tenant.slack_secret = new_secret()
    connect(app, tenant, tenant.slack_secret)
    link(app, tenant, "manager", MANAGER_SLACK)
    return tenant


def _approve_button(app: Any, tenant: Any, fake: FakeSlack) -> dict[str, Any]:
    submit(app, tenant)
    dispatch(app, tenant)
    [message, *_] = fake.messages_to(MANAGER_SLACK)
    return buttons(message)["signoff_approve"]


# --- finding ------------------------------------------------------------------------------


def test_the_64_kib_body_cap_holds_for_chunked_requests(app: Any) -> None:
    """Review finding (low, unauthenticated memory exhaustion), fixed.
    ``api/slack.py`` enforces
    ``MAX_BODY`` (64 KiB) only through ``Content-Length``, then
    ``request.get_data()`` buffers the whole body; ``handle`` looks at its size only
    afterwards. A request with ``Transfer-Encoding: chunked`` (no length; gunicorn sets
    ``wsgi.input_terminated``) to any slug, without any signature, makes a web worker
    read and keep an arbitrarily large body in memory. No ``MAX_CONTENT_LENGTH`` is set
    anywhere, so the cap of this endpoint is the only one there is. Fix: read at most
    ``MAX_BODY + 1`` bytes (``request.stream.read(MAX_BODY + 1)``) or set
    ``request.max_content_length`` / ``MAX_CONTENT_LENGTH``."""
    body = CountingStream(4 * 1024 * 1024)
    resp = fresh_client(app).post(
        "/slack/t/no-such-tenant/interactivity",
        input_stream=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Transfer-Encoding": "chunked",
        },
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert resp.status_code in (400, 401, 404, 413)
    limit = slack_interactivity.MAX_BODY + 64 * 1024  # the cap and one buffer of slack
    assert body.consumed <= limit, f"read {body.consumed} bytes of an unauthenticated body"


# --- refused attacks (coverage the existing tests lack) -----------------------------------


def test_a_deactivated_members_slack_cannot_decide(
    app: Any, client: Any, database: Any, connected: Any, review_slack: FakeSlack
) -> None:
    """The Slack path checks the membership at click time (the e-mail path does not:
    see test_review_notifications_links.py)."""
    tenant = connected
    approve = _approve_button(app, tenant, review_slack)
    api = Api(fresh_client(app), tenant)
    member = api.get("/api/v1/members/me", "manager").get_json()
    assert api.post(f"/api/v1/members/{member['id']}/deactivate").status_code == 200
    body = click_body(MANAGER_SLACK, approve)
    resp = post_click(client, tenant.slug, body, signed_headers(tenant.slack_secret, body))
    assert resp.status_code == 200 and "not an active member" in resp.get_json()["text"]
    assert decisions(database, tenant) == []


def test_a_replay_with_a_respelled_signature_is_refused(
    app: Any, client: Any, database: Any, connected: Any, review_slack: FakeSlack
) -> None:
    """The replay guard keys on the signature's text; a respelling of the same signature
    (case, padding, a second value) must not pass as a new request."""
    tenant = connected
    approve = _approve_button(app, tenant, review_slack)
    body = click_body("U0NOBODY00", approve)  # unlinked: answered, decides nothing
    headers = signed_headers(tenant.slack_secret, body)
    assert post_click(client, tenant.slug, body, headers).status_code == 200
    before = row_counts(database, tenant)
    signature = headers["X-Slack-Signature"]
    for respelled in (
        signature.upper(),
        "V0=" + signature[3:],
        signature + " ",
        " " + signature,
        signature + ",v0=" + "0" * 64,
        "v0=" + "0" * 64 + "," + signature,
    ):
        resp = post_click(client, tenant.slug, body, {**headers, "X-Slack-Signature": respelled})
        assert resp.status_code == 401, respelled
    assert row_counts(database, tenant) == before
    assert decisions(database, tenant) == []


def test_a_click_for_a_team_less_payload_or_another_action_decides_nothing(
    app: Any, client: Any, database: Any, connected: Any, review_slack: FakeSlack
) -> None:
    """A signed payload without a team, with a forged action id (``signoff_open``
    carrying the approve value) or with the value of the other verdict decides nothing."""
    import json
    from urllib.parse import parse_qs, urlencode

    tenant = connected
    approve = _approve_button(app, tenant, review_slack)

    def variant(change: Any) -> str:
        payload = json.loads(parse_qs(click_body(MANAGER_SLACK, approve))["payload"][0])
        change(payload)
        return urlencode({"payload": json.dumps(payload)})

    bodies = [
        variant(lambda p: p.pop("team")),
        variant(lambda p: p.update(team={"id": "TOTHER000"})),
        variant(lambda p: p["actions"][0].update(action_id="signoff_open")),
        variant(lambda p: p["actions"][0].update(action_id="signoff_reject")),
        variant(lambda p: p.update(type="view_submission")),
    ]
    for body in bodies:
        resp = post_click(client, tenant.slug, body, signed_headers(tenant.slack_secret, body))
        assert resp.status_code in (200, 403)
    assert decisions(database, tenant) == []
