"""Webhooks: tenant endpoints receiving signed event deliveries (the ``webhook`` channel).

Actions write an outbox row of kind ``event`` for each public event
(``signoff.workflow.actions.core.WEBHOOK_EVENT_TYPES``); :func:`targets` names the
tenant's active endpoints subscribed to its type (an empty ``event_types`` means every
type), and the dispatcher creates one delivery per endpoint. :func:`send` POSTs

    {"type": "request.approved", "timestamp": "<when it happened, ISO 8601>", "data": {...}}

signed per the Standard Webhooks specification (``standardwebhooks``): headers
``webhook-id`` (the delivery's id: the same on every retry, so receivers can drop
duplicates), ``webhook-timestamp`` (the attempt's time, Unix seconds) and
``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` under the endpoint's ``whsec_``
secret). Outbound HTTP goes through :mod:`signoff.notifications.http` (SSRF rules,
pinned address, no redirects, timeouts, size cap).

A 2xx answer is success. Any other answer, a timeout or a connection error is retried
with backoff by the dispatcher until ``max_attempts``, then dead. ``410 Gone`` is
final: the delivery is dead at once and the endpoint is deactivated (audited), as the
receiver said it is gone for good. A refused address is final too (nothing was sent).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from standardwebhooks import Webhook

from signoff.audit.chain import append as audit_append
from signoff.crypto import InvalidToken, decrypt
from signoff.db.ids import as_uuid
from signoff.errors import N_
from signoff.languages import add_templates
from signoff.notifications import http
from signoff.notifications.channels import (
    Delivery,
    DeliveryFailed,
    FanOutContext,
    FunctionChannel,
    Outcome,
)
from signoff.notifications.models import WebhookEndpoint
from signoff.workflow.actions.core import WEBHOOK_EVENT_TYPES

#: Every event type an endpoint can subscribe to, in a stable order.
EVENT_TYPES: tuple[str, ...] = tuple(sorted(set(WEBHOOK_EVENT_TYPES.values())))
#: The outbox kind of events (written by the actions) and of test events (written here).
EVENT_KIND = "event"
TEST_KIND = "webhook_test"
TEST_EVENT_TYPE = "webhook.test"
SECRET_PURPOSE = "webhook-secret"  # noqa: S105 (an HKDF label, not a secret)
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix)
SECRET_BYTES = 32

log = logging.getLogger(__name__)

#: Failures as a delivery row stores them (``last_error``, English with the values in),
#: read back in the reader's language by signoff.languages.translated; the first first.
add_templates(
    N_("%(problem)s (the endpoint was deactivated)"),
    N_("HTTP %(status)s: redirects are not followed (Location: %(location)s)"),
)


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


# --- fan-out ------------------------------------------------------------------------------


def targets(ctx: FanOutContext) -> list[str]:
    """The active endpoints of the tenant subscribed to this event's type."""
    if ctx.note.kind != EVENT_KIND:
        return []
    event_type = (ctx.note.payload or {}).get("type")
    if not isinstance(event_type, str) or not event_type:
        return []
    endpoints = ctx.memo.get("webhook_endpoints")
    if endpoints is None:
        endpoints = ctx.memo["webhook_endpoints"] = ctx.session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.event_types)
            .where(WebhookEndpoint.active.is_(True))
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        ).all()
    return [str(i) for i, types in endpoints if not types or event_type in types]


# --- one delivery -------------------------------------------------------------------------


def event_body(payload: dict[str, Any], occurred_at: datetime) -> str:
    """The JSON body of an event (exactly the bytes that are signed and sent)."""
    return json.dumps(
        {
            "type": payload.get("type"),
            "timestamp": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "data": payload.get("data") or {},
        },
        separators=(",", ":"),
        sort_keys=False,
        default=str,
    )


def signed_headers(secret: str, msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for ``body`` sent at ``at``."""
    signature = Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body)
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def _deactivate_gone(delivery: Delivery, endpoint: WebhookEndpoint) -> None:
    endpoint.active = False
    delivery.session.flush()
    audit_append(
        delivery.session,
        actor_id=None,
        on_behalf_of_id=None,
        action="webhook.deactivated",
        object_type="webhook_endpoint",
        object_id=str(endpoint.id),
        payload={"reason": "410 Gone", "delivery_id": str(delivery.row.id)},
    )


def send(delivery: Delivery) -> Outcome:
    row, note = delivery.row, delivery.note
    endpoint_id = as_uuid(row.target)
    endpoint = delivery.session.get(WebhookEndpoint, endpoint_id) if endpoint_id else None
    if endpoint is None:
        raise DeliveryFailed(N_("the endpoint was deleted"), retryable=False)
    if not endpoint.active:
        raise DeliveryFailed(N_("the endpoint is inactive"), retryable=False)
    try:
        secret = decrypt(endpoint.secret_enc, purpose=SECRET_PURPOSE)
    except InvalidToken:
        raise DeliveryFailed(
            N_("the signing secret cannot be read (SECRET_KEY changed?): rotate it"),
            retryable=False,
        ) from None
    body = event_body(dict(note.payload or {}), note.created_at)
    headers = signed_headers(secret, str(row.id), body, datetime.now(UTC))
    try:
        resp = http.post(endpoint.url, body.encode("utf-8"), headers)
    except http.AddressRefused as exc:
        # The delivery log is the tenant's to read: the internal address is only logged.
        log.warning("webhook %s refused: %s", endpoint.id, exc.message)
        raise DeliveryFailed(http.tenant_message(exc), retryable=not exc.permanent) from None
    except http.OutboundError as exc:
        raise DeliveryFailed(exc.message, retryable=not exc.permanent) from None
    row.latency_ms = resp.latency_ms
    if 200 <= resp.status < 300:
        return Outcome(response_code=resp.status, latency_ms=resp.latency_ms)
    snippet = resp.body[:300].decode("utf-8", "replace").strip()
    if 300 <= resp.status < 400:
        where = resp.headers.get("location", "")
        message = N_(
            "HTTP %(status)s: redirects are not followed (Location: %(location)s)",
            status=resp.status,
            location=where[:200],
        )
    else:
        message = f"HTTP {resp.status}" + (f": {snippet}" if snippet else "")
    if resp.status == 410:
        _deactivate_gone(delivery, endpoint)
        raise DeliveryFailed(
            N_("%(problem)s (the endpoint was deactivated)", problem=message),
            response_code=410,
            retryable=False,
        )
    raise DeliveryFailed(message, response_code=resp.status)


CHANNEL = FunctionChannel("webhook", targets, send)
