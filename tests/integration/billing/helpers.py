"""Helpers of the billing tests: signed events, tenant state, API clients."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from sqlalchemy import func, select

from tests.fixtures.tenants import fresh_client
from tests.integration.api.conftest import Api
from tests.integration.billing.conftest import WEBHOOK_SECRET, wait_for
from tests.integration.workflow.conftest import in_tenant


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(
    etype: str, obj: dict[str, Any], *, event_id: str | None = None, created: int | None = None
) -> bytes:
    return json.dumps(
        {
            "id": event_id or f"evt_test{time.time_ns()}",
            "object": "event",
            "type": etype,
            "created": int(time.time()) if created is None else created,
            "data": {"object": obj},
        }
    ).encode()


def post_event(client: Any, payload: bytes, signature: str | None = "sign") -> Any:
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = sign(payload)
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post("/billing/stripe/webhook", data=payload, headers=headers)


def state(app: Any, tenant: Any) -> dict[str, Any]:
    from signoff.billing.models import BillingEvent, TenantBilling
    from signoff.tenancy.models import Tenant

    with in_tenant(app, tenant) as s:
        row = s.scalar(select(TenantBilling))
        plan = s.scalar(select(Tenant.plan).where(Tenant.id == tenant.id))
        events = {
            e.event_id: (e.type, e.outcome)
            for e in s.scalars(select(BillingEvent).order_by(BillingEvent.received_at))
        }
        outbox = s.scalar(
            select(func.count()).select_from(_outbox()).where(_outbox().kind == "billing_past_due")
        )
        return {
            "plan": plan,
            "customer": row.stripe_customer_id if row else None,
            "subscription": row.stripe_subscription_id if row else None,
            "subscription_status": row.subscription_status if row else None,
            "status": row.status if row else "ok",
            "cancel_at_period_end": row.cancel_at_period_end if row else False,
            "events": events,
            "past_due_mails": int(outbox or 0),
        }


def _outbox() -> Any:
    from signoff.workflow.models import NotificationOutbox

    return NotificationOutbox


def api_for(billing: Any, tenant: Any) -> Api:
    return Api(fresh_client(billing.app), tenant)


def upgrade(api: Any, plan: str = "team", pm: str | None = "pm_card_visa") -> Any:
    body: dict[str, Any] = {"plan": plan}
    if pm:
        body["payment_method"] = pm
    return api.post("/api/v1/billing/upgrade", json=body)


def wait_event(app: Any, tenant: Any, etype: str, outcome: str | None = None) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        st = state(app, tenant)
        hits = [o for t, o in st["events"].values() if t == etype]
        if hits and (outcome is None or outcome in hits):
            return st
        return None

    result: dict[str, Any] = wait_for(seen, what=f"{etype} ({outcome}) delivered by localstripe")
    return result
