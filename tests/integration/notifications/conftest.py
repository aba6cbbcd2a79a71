"""Webhook fixtures: real HTTP receivers on loopback that verify every delivery with
``standardwebhooks`` (the receiving side's library), and tenants with the spec's
expense workflow. Outbound requests may reach loopback only where a test says so
(``SIGNOFF_OUTBOUND_ALLOW``)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.integration.api.conftest import Api, expense_tenant
from tests.integration.notifications.centre_helpers import (
    expense_tenant as centre_expense_tenant,
)
from tests.integration.notifications.slack_helpers import FakeSlack, configure
from tests.integration.views import conftest as views


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    peer: str
    #: The payload ``Webhook(secret).verify`` returned, or None when it refused.
    verified: Any = None
    error: str | None = None


@dataclass
class Receiver:
    """One HTTP server on ``host`` answering POSTs with ``status`` (and what else is set)."""

    host: str = "127.0.0.1"
    port: int = 0
    status: int = 200
    location: str | None = None
    reply_bytes: int = 2
    delay: float = 0.0
    secret: str | None = None
    received: list[Received] = field(default_factory=list)
    _server: Any = None
    _thread: Any = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                item = Received(self.path, headers, body, self.client_address[0])
                if receiver.secret is not None:
                    try:
                        item.verified = Webhook(receiver.secret).verify(body, headers)
                    except WebhookVerificationError as exc:
                        item.error = str(exc)
                receiver.received.append(item)
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                payload = b"x" * receiver.reply_bytes
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client stopped reading (size cap)
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        class Server(http.server.ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self._server = Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def events(self) -> list[str]:
        return [r.verified["type"] for r in self.received if r.verified is not None]


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """A factory of started receivers, all stopped at the end of the test."""
    started: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        r = Receiver(**kwargs).start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def allow(app: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Set ``SIGNOFF_OUTBOUND_ALLOW`` for this test (restored afterwards)."""

    def set_allow(value: str) -> None:
        monkeypatch.setitem(app.config, "SIGNOFF_OUTBOUND_ALLOW", value)

    set_allow("127.0.0.1/32")
    return set_allow


@pytest.fixture(scope="module")
def wa(tenant_factory: Any, app: Any) -> Any:
    """Tenant A with the expense workflow."""
    return expense_tenant(tenant_factory, app)


@pytest.fixture(scope="module")
def wb(tenant_factory: Any, app: Any) -> Any:
    """Tenant B with the expense workflow."""
    return expense_tenant(tenant_factory, app)


@pytest.fixture
def api_a(client: Any, wa: Any) -> Api:
    return Api(client, wa)


@pytest.fixture
def api_b(client: Any, wb: Any) -> Api:
    return Api(client, wb)


def register(api: Api, receiver: Receiver | None = None, **body: Any) -> dict[str, Any]:
    """Register an endpoint (at ``receiver``) as the admin; the receiver learns the secret."""
    if receiver is not None:
        body.setdefault("url", receiver.url)
    resp = api.post("/api/v1/webhooks/", json=body)
    assert resp.status_code == 201, resp.get_json()
    created: dict[str, Any] = resp.get_json()
    if receiver is not None:
        receiver.secret = created["secret"]
    return created


def dispatch(app: Any, tenant: Any, now: Any = None) -> Any:
    from signoff.extensions import db
    from signoff.notifications.dispatch import dispatch_tenant

    with app.app_context():
        try:
            return dispatch_tenant(db.session, tenant.id, now=now)
        finally:
            db.session.remove()


def webhook_rows(database: Any, tenant: Any, endpoint_id: str) -> list[dict[str, Any]]:
    """The endpoint's delivery rows (read as the admin role: what the database holds)."""
    with database.connect("admin") as conn:
        cur = conn.execute(
            "SELECT d.id, d.status, d.attempts, d.max_attempts, d.next_attempt_at, "
            "d.response_code, d.latency_ms, d.last_error, o.title "
            "FROM notification_delivery d JOIN notification_outbox o "
            "ON o.tenant_id = d.tenant_id AND o.id = d.outbox_id "
            "WHERE d.tenant_id = %s AND d.channel = 'webhook' AND d.target = %s "
            "ORDER BY d.created_at",
            (tenant.id, endpoint_id),
        )
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# --- fixtures shared by the centre, preferences and Slack tests ---------------------------

#: The pages' sign-in fixture of tests/integration/views (``login(username)``).
login = views.login


@pytest.fixture
def ta(tenant_factory: Any, app: Any) -> Any:
    """A tenant with the expense workflow (the notification-centre tests' "A")."""
    return centre_expense_tenant(tenant_factory, app)


@pytest.fixture
def tb(tenant_factory: Any, app: Any) -> Any:
    return centre_expense_tenant(tenant_factory, app)


@pytest.fixture(scope="module")
def slack_fake() -> Iterator[FakeSlack]:
    """Slack's Web API on 127.0.0.1 (``SIGNOFF_SLACK_API_URL`` points at it)."""
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def slack_on(app: Any, monkeypatch: pytest.MonkeyPatch, slack_fake: FakeSlack) -> FakeSlack:
    slack_fake.calls.clear()
    slack_fake.errors.clear()
    slack_fake.statuses.clear()
    configure(app, monkeypatch, slack_fake)
    return slack_fake
