"""Helpers of the Slack tests: a fake Slack (Web API, incoming webhook and
``response_url`` on 127.0.0.1), Slack's request signature computed here, and the
connection and links set up through the real code. No fixtures here: the folder is
shared, so the Slack tests keep their own (``slack_*``) names."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import actor, in_tenant, save

TEAM_ID = "T0SIGNOFF"
BOT_TOKEN = "xoxb-1111-2222-test-token"


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeSlack:
    """An http.server thread answering like Slack: ``/api/<method>`` (JSON, ``ok``),
    ``/hook/...`` (incoming webhook, text ``ok``) and ``/response/...`` (response_url)."""

    calls: list[Call] = field(default_factory=list)
    #: Web API method -> Slack error code to answer with ``ok: false``.
    errors: dict[str, str] = field(default_factory=dict)
    #: Web API method -> HTTP status to answer with (a server error).
    statuses: dict[str, int] = field(default_factory=dict)
    port: int = 0
    _server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeSlack:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ctype = self.headers.get("Content-Type", "")
                body: Any
                if "json" in ctype:
                    body = json.loads(raw or b"{}")
                else:
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.calls.append(Call(self.path, headers, body))
                status, reply, rtype = 200, b"ok", "text/plain"
                if self.path.startswith("/api/"):
                    method = self.path[len("/api/") :]
                    rtype = "application/json; charset=utf-8"
                    if method in fake.statuses:
                        status = fake.statuses[method]
                        reply = b"<html>oops</html>"
                        rtype = "text/html"
                    elif method in fake.errors:
                        reply = json.dumps({"ok": False, "error": fake.errors[method]}).encode()
                    elif method == "auth.test":
                        reply = json.dumps(
                            {"ok": True, "team_id": TEAM_ID, "user_id": "UBOT", "team": "Test"}
                        ).encode()
                    else:
                        reply = json.dumps(
                            {"ok": True, "channel": body.get("channel"), "ts": f"{time.time():.6f}"}
                        ).encode()
                self.send_response(status)
                self.send_header("Content-Type", rtype)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def api(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.path == f"/api/{method}"]

    def messages_to(self, channel: str) -> list[dict[str, Any]]:
        return [c.body for c in self.api("chat.postMessage") if c.body.get("channel") == channel]

    def posts(self, prefix: str) -> list[Call]:
        return [c for c in self.calls if c.path.startswith(prefix)]


def configure(app: Any, monkeypatch: Any, fake: FakeSlack, *, enabled: bool = True) -> None:
    monkeypatch.setitem(app.config, "SIGNOFF_SLACK_API_URL", f"{fake.url}/api/")
    monkeypatch.setitem(app.config, "FAB_APPROVAL_SLACK_NOTIFICATIONS", enabled)
    monkeypatch.setitem(app.config, "SIGNOFF_OUTBOUND_ALLOW", "127.0.0.1/32")


def expense_tenant(tenant_factory: Any, app: Any) -> Any:
    t = tenant_factory()
    save(app, t, "expense_approval", spec_expense())
    return t


def new_secret() -> str:
    return uuid.uuid4().hex


def connect(
    app: Any,
    tenant: Any,
    secret: str | None,
    *,
    bot: bool = True,
    webhook_url: str | None = None,
) -> None:
    from signoff.notifications import slack_settings

    with in_tenant(app, tenant) as session:
        slack_settings.connect(
            session(),
            actor_id=tenant.user("admin"),
            bot_token=BOT_TOKEN if bot else None,
            signing_secret=secret if bot else None,
            webhook_url=webhook_url,
        )
        session.commit()


def link(app: Any, tenant: Any, key: str, slack_user_id: str, *, confirm: bool = True) -> None:
    """Link a member through the real code: the pending link, then the member's confirmation."""
    from signoff.notifications import slack_settings

    with in_tenant(app, tenant) as session:
        uid = tenant.user(key)
        _row, token = slack_settings.start_link(session(), user_id=uid, slack_user_id=slack_user_id)
        session.commit()
        if confirm:
            claim = slack_settings.read_link_token(token)
            slack_settings.confirm_link(session(), claim, user_id=uid)
            session.commit()


def submit(app: Any, tenant: Any, amount: str = "5000", title: str = "Team offsite") -> uuid.UUID:
    from signoff.workflow.actions import do_submit

    with in_tenant(app, tenant) as session:
        result = do_submit(
            session,
            actor=actor(tenant, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": amount},
            title=title,
        )
    return result.request_id


def dispatch(app: Any, tenant: Any) -> Any:
    from signoff.extensions import db
    from signoff.notifications.dispatch import dispatch_tenant

    with app.app_context():
        try:
            return dispatch_tenant(db.session, tenant.id)
        finally:
            db.session.remove()


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The message's buttons by action_id."""
    out: dict[str, dict[str, Any]] = {}
    for block in message.get("blocks", []):
        if block.get("type") == "actions":
            for element in block["elements"]:
                out[element["action_id"]] = element
    return out


def click_body(
    slack_user: str,
    button: dict[str, Any],
    *,
    team: str = TEAM_ID,
    response_url: str | None = None,
) -> str:
    payload = {
        "type": "block_actions",
        "team": {"id": team},
        "user": {"id": slack_user, "team_id": team},
        "api_app_id": "A0TEST",
        "trigger_id": uuid.uuid4().hex,
        "container": {"type": "message", "message_ts": "1.2"},
        "actions": [
            {
                "type": "button",
                "action_id": button["action_id"],
                "block_id": "signoff_actions",
                "value": button.get("value", ""),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    if response_url:
        payload["response_url"] = response_url
    return urlencode({"payload": json.dumps(payload)})


def reason_body(
    slack_user: str, view: dict[str, Any], reason: str | None, *, team: str = TEAM_ID
) -> str:
    """Slack's ``view_submission`` of the reject modal ``view`` (as sent to views.open),
    its reason input holding ``reason``."""
    payload = {
        "type": "view_submission",
        "team": {"id": team},
        "user": {"id": slack_user, "team_id": team},
        "api_app_id": "A0TEST",
        "trigger_id": uuid.uuid4().hex,
        "view": {
            "id": "V0TEST",
            "type": "modal",
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {
                "values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}
            },
        },
    }
    return urlencode({"payload": json.dumps(payload)})


def signed_headers(secret: str, body: str, *, ts: int | None = None) -> dict[str, str]:
    """Slack's signature: ``v0=`` HMAC-SHA256 of ``v0:{ts}:{body}`` under the signing secret."""
    stamp = str(int(time.time()) if ts is None else ts)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def post_click(client: Any, slug: str, body: str, headers: dict[str, str]) -> Any:
    # buffered: the response is closed at once, so the response_url post (made once
    # the answer is sent) has happened when this returns.
    return client.post(
        f"/slack/t/{slug}/interactivity", data=body.encode(), headers=headers, buffered=True
    )


def decisions(database: Any, tenant: Any) -> list[tuple[Any, ...]]:
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT request_id, step_index, actor_id, verdict, method FROM step_decision "
            "WHERE tenant_id = %s ORDER BY decided_at",
            (tenant.id,),
        ).fetchall()


def row_counts(database: Any, tenant: Any) -> dict[str, int]:
    out = {}
    with database.connect("admin") as conn:
        for table in ("step_decision", "audit_event", "idempotency_key", "notification_outbox"):
            row = conn.execute(
                f"SELECT count(*) FROM {table} WHERE tenant_id = %s", (tenant.id,)
            ).fetchone()
            out[table] = int(row[0])
    return out
