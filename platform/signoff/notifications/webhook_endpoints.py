"""Managing a tenant's webhook endpoints: register, change, delete, rotate the secret,
send a test event, list and redeliver deliveries. Shared by the API and the admin page.

Every change is audited in the caller's transaction (``webhook.*`` events; a secret
never enters the audit trail). The URL is checked when it is saved, with the same rules
as each delivery (:func:`signoff.notifications.http.check_url`): http or https, no
credentials, a host that resolves only to allowed addresses. Another tenant's endpoint
or delivery reads as missing under row-level security: :class:`NotFound`, as a random id.

``send_test`` and ``redeliver`` commit, then make one attempt at once (a person is
waiting for the answer): a test delivery has a single attempt; a redelivery starts a
fresh set of attempts whatever the delivery's state was (dead, sent or pending) and
carries the same ``webhook-id`` as before.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from signoff.audit.chain import append as audit_append
from signoff.billing import quotas
from signoff.crypto import encrypt
from signoff.db.ids import parse_id
from signoff.errors import N_, Conflict, Invalid, NotFound
from signoff.notifications import http
from signoff.notifications.dispatch import deliver_due
from signoff.notifications.models import NotificationDelivery, WebhookEndpoint
from signoff.notifications.webhooks import (
    EVENT_TYPES,
    SECRET_PURPOSE,
    TEST_EVENT_TYPE,
    TEST_KIND,
    new_secret,
)
from signoff.workflow.models import NotificationOutbox

CHANNEL = "webhook"
DESCRIPTION_MAX = 200

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _audit(session: Session, by: int | None, action: str, endpoint_id: Any, **payload: Any) -> None:
    audit_append(
        session,
        actor_id=by,
        on_behalf_of_id=None,
        action=action,
        object_type="webhook_endpoint",
        object_id=str(endpoint_id),
        payload=payload,
    )


# --- validation ---------------------------------------------------------------------------


def validate_url(url: str) -> str:
    """``url`` if outbound requests may reach it now; :class:`Invalid` naming ``url``."""
    url = (url or "").strip()
    try:
        http.check_url(url)
    except (http.AddressRefused, http.OutboundUnreachable) as exc:
        # One answer whether the name is internal or unknown: the address stays in the log.
        log.info("webhook URL refused: %s", exc.message)
        raise Invalid("url_refused", http.tenant_message(exc), field="url") from None
    except http.OutboundError as exc:  # the URL itself (scheme, credentials, form)
        raise Invalid("url_refused", exc.message, field="url") from None
    return url


def validate_event_types(types: Sequence[str] | None) -> list[str]:
    """Known event types, sorted and without duplicates (``[]`` means every type)."""
    wanted = sorted(set(types or ()))
    unknown = [t for t in wanted if t not in EVENT_TYPES]
    if unknown:
        raise Invalid(
            "unknown_event_type",
            N_(
                "Unknown event type '%(kind)s'; known: %(known)s",
                kind=unknown[0],
                known=", ".join(EVENT_TYPES),
            ),
            field="event_types",
        )
    return wanted


def _description(value: str | None) -> str | None:
    text = (value or "").strip()
    if len(text) > DESCRIPTION_MAX:
        raise Invalid(
            "too_long",
            N_("At most %(count)s characters", count=DESCRIPTION_MAX),
            field="description",
        )
    return text or None


# --- endpoints ----------------------------------------------------------------------------


def get_endpoint_for(session: Session, endpoint_id: Any) -> WebhookEndpoint:
    """The bound tenant's endpoint; 404 for a malformed, missing or foreign id."""
    row = session.get(WebhookEndpoint, parse_id(endpoint_id))
    if row is None:
        raise NotFound("not_found", "Not found")
    return row


def list_endpoints(
    session: Session, *, limit: int = 100, offset: int = 0
) -> tuple[int, list[WebhookEndpoint]]:
    total = int(session.scalar(select(func.count()).select_from(WebhookEndpoint)) or 0)
    rows = session.scalars(
        select(WebhookEndpoint)
        .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return total, list(rows)


def create_endpoint(
    session: Session,
    *,
    url: str,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    active: bool = True,
    created_by: int | None,
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint in the caller's transaction; (row, secret shown once)."""
    quotas.check_channel(session, "webhooks")  # the plan must include webhooks
    url = validate_url(url)
    types = validate_event_types(event_types)
    secret = new_secret()
    row = WebhookEndpoint(
        url=url,
        description=_description(description),
        event_types=types,
        secret_enc=encrypt(secret, purpose=SECRET_PURPOSE),
        active=active,
        created_by=created_by,
    )
    session.add(row)
    session.flush()
    session.refresh(row)
    _audit(
        session,
        created_by,
        "webhook.created",
        row.id,
        url=url,
        event_types=types,
        active=active,
    )
    return row, secret


def update_endpoint(
    session: Session,
    row: WebhookEndpoint,
    *,
    by: int | None,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
    fields: Sequence[str] = (),
) -> WebhookEndpoint:
    """Change what ``fields`` names (``url``, ``event_types``, ``description``, ``active``)."""
    before = {
        "url": row.url,
        "event_types": list(row.event_types),
        "description": row.description,
        "active": row.active,
    }
    if "url" in fields and url is not None:
        row.url = validate_url(url)
    if "event_types" in fields:
        row.event_types = validate_event_types(event_types)
    if "description" in fields:
        row.description = _description(description)
    if "active" in fields and active is not None:
        row.active = bool(active)
    session.flush()
    after = {
        "url": row.url,
        "event_types": list(row.event_types),
        "description": row.description,
        "active": row.active,
    }
    if after != before:
        _audit(session, by, "webhook.updated", row.id, before=before, after=after)
    return row


def delete_endpoint(session: Session, row: WebhookEndpoint, *, by: int | None) -> None:
    """Delete the endpoint; its pending deliveries are skipped, the log of the rest stays
    in the database (no longer listed)."""
    session.execute(
        update(NotificationDelivery)
        .where(
            NotificationDelivery.channel == CHANNEL,
            NotificationDelivery.target == str(row.id),
            NotificationDelivery.status == "pending",
        )
        .values(status="skipped", last_error="the endpoint was deleted")
        .execution_options(synchronize_session=False)
    )
    _audit(session, by, "webhook.deleted", row.id, url=row.url)
    session.delete(row)
    session.flush()


def rotate_secret(session: Session, row: WebhookEndpoint, *, by: int | None) -> str:
    """A new secret (shown once); the old one stops signing at once."""
    secret = new_secret()
    row.secret_enc = encrypt(secret, purpose=SECRET_PURPOSE)
    session.flush()
    _audit(session, by, "webhook.secret_rotated", row.id)
    return secret


# --- deliveries ---------------------------------------------------------------------------


def _delivery_query() -> Any:
    return select(
        NotificationDelivery, NotificationOutbox.title, NotificationOutbox.request_id
    ).join(
        NotificationOutbox,
        (NotificationOutbox.tenant_id == NotificationDelivery.tenant_id)
        & (NotificationOutbox.id == NotificationDelivery.outbox_id),
    )


def delivery_dict(row: NotificationDelivery, event_type: str, request_id: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "endpoint_id": row.target,
        "event_type": event_type,
        "request_id": request_id,
        "status": row.status,
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "response_code": row.response_code,
        "latency_ms": row.latency_ms,
        "last_error": row.last_error,
        "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
        "delivered_at": row.delivered_at,
        "created_at": row.created_at,
    }


def list_deliveries(
    session: Session,
    endpoint: WebhookEndpoint,
    *,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """The endpoint's deliveries, newest first, as dicts (see :func:`delivery_dict`)."""
    where = [
        NotificationDelivery.channel == CHANNEL,
        NotificationDelivery.target == str(endpoint.id),
    ]
    if status:
        where.append(NotificationDelivery.status == status)
    total = int(
        session.scalar(select(func.count()).select_from(NotificationDelivery).where(*where)) or 0
    )
    rows = session.execute(
        _delivery_query()
        .where(*where)
        .order_by(NotificationDelivery.created_at.desc(), NotificationDelivery.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return total, [delivery_dict(d, t, r) for d, t, r in rows]


def get_delivery_for(session: Session, delivery_id: Any) -> dict[str, Any]:
    """A webhook delivery of an existing endpoint of the bound tenant; 404 otherwise."""
    found = session.execute(
        _delivery_query().where(
            NotificationDelivery.id == parse_id(delivery_id),
            NotificationDelivery.channel == CHANNEL,
        )
    ).first()
    if found is None:
        raise NotFound("not_found", "Not found")
    row, event_type, request_id = found
    if session.get(WebhookEndpoint, parse_id(row.target)) is None:
        raise NotFound("not_found", "Not found")
    return delivery_dict(row, event_type, request_id)


def _attempt_now(session: Session, tenant_id: uuid.UUID, delivery_id: uuid.UUID) -> dict[str, Any]:
    deliver_due(session, tenant_id, only=[delivery_id], limit=1)
    return get_delivery_for(session, delivery_id)


def send_test(
    session: Session, tenant_id: uuid.UUID, endpoint: WebhookEndpoint, *, by: int | None
) -> dict[str, Any]:
    """Send a ``webhook.test`` event to ``endpoint`` now (one attempt); the delivery."""
    if not endpoint.active:
        raise Conflict("inactive", "The endpoint is inactive; activate it first", field="active")
    now = _now()
    note = NotificationOutbox(
        kind=TEST_KIND,
        title=TEST_EVENT_TYPE,
        recipient_id=None,
        payload={
            "type": TEST_EVENT_TYPE,
            "data": {"endpoint_id": str(endpoint.id), "sent_by": by, "message": "Test event"},
        },
        scheduled_for=now,
        dispatched_at=now,  # delivered here, never fanned out to other channels
    )
    session.add(note)
    session.flush()
    delivery = NotificationDelivery(
        outbox_id=note.id,
        channel=CHANNEL,
        target=str(endpoint.id),
        max_attempts=1,
        next_attempt_at=now,
    )
    session.add(delivery)
    session.flush()
    delivery_id = delivery.id
    _audit(session, by, "webhook.test_sent", endpoint.id, delivery_id=str(delivery_id))
    session.commit()
    return _attempt_now(session, tenant_id, delivery_id)


def redeliver(
    session: Session, tenant_id: uuid.UUID, delivery_id: Any, *, by: int | None
) -> dict[str, Any]:
    """Start a delivery over (fresh attempts, due now) and make one attempt at once."""
    current = get_delivery_for(session, delivery_id)
    if current["status"] == "skipped":
        raise Conflict("skipped", "This delivery was skipped and cannot be sent", field=None)
    done = session.execute(
        update(NotificationDelivery)
        .where(
            NotificationDelivery.id == current["id"],
            NotificationDelivery.status.in_(("pending", "sent", "dead")),
        )
        .values(status="pending", attempts=0, next_attempt_at=_now(), last_error=None)
        .returning(NotificationDelivery.id)
        .execution_options(synchronize_session=False)
    ).first()
    if done is None:
        session.rollback()
        raise Conflict("changed", "The delivery changed meanwhile; reload and retry")
    _audit(
        session,
        by,
        "webhook.redelivered",
        current["endpoint_id"],
        delivery_id=str(current["id"]),
        previous_status=current["status"],
    )
    session.commit()
    return _attempt_now(session, tenant_id, current["id"])
