"""Stripe's webhook: one endpoint for every tenant, trusted only after
``stripe.Webhook.construct_event`` (signature and tolerance).

The event names a customer, never a tenant. The tenant is the one whose *stored*
customer id matches (``signoff.billing_customer_tenant``, SECURITY DEFINER, asked with
no tenant bound); metadata is never read. The object the event is about
(subscription, invoice) is fetched from Stripe, and its customer must be the event's:
an event that pairs one customer with another's object is refused. What is applied is
the fetched object, so an event arriving late cannot roll a subscription back; payment
events older than the last one applied are recorded and ignored. Each event id is
stored once per tenant (``billing_event``) in the transaction that applies it, so a
replay changes nothing. Unknown event types and unknown customers are acknowledged
(200) and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import stripe
from flask import current_app
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, scoped_session

from signoff.billing import service
from signoff.billing.models import BillingEvent
from signoff.billing.stripe_api import as_dict, client
from signoff.db.binding import bound_tenant

SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
PAID_EVENTS = ("invoice.paid", "invoice.payment_succeeded")
FAILED_EVENTS = ("invoice.payment_failed",)
CHECKOUT_EVENTS = ("checkout.session.completed",)
HANDLED = SUBSCRIPTION_EVENTS + PAID_EVENTS + FAILED_EVENTS + CHECKOUT_EVENTS
MAX_BODY = 256 * 1024

_TENANT_OF = text("SELECT signoff.billing_customer_tenant(:customer)")


@dataclass
class Answer:
    status: int
    code: str
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"status": self.code, **self.extra}


def _id(value: Any, prefix: str) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, str) and value.startswith(prefix) and len(value) <= 255:
        return value
    return None


def handle(
    session: Session | scoped_session[Session], payload: bytes, signature: str | None
) -> Answer:
    cfg = current_app.config
    secret = cfg.get("SIGNOFF_STRIPE_WEBHOOK_SECRET")
    if not secret or not cfg.get("SIGNOFF_STRIPE_SECRET_KEY"):
        return Answer(404, "billing_off")
    if not signature:
        return Answer(400, "unsigned")
    try:
        event = stripe.Webhook.construct_event(
            payload,
            signature,
            str(secret),
            tolerance=int(cfg.get("SIGNOFF_STRIPE_WEBHOOK_TOLERANCE", 300)),
        )
    except stripe.SignatureVerificationError as exc:
        stale = "tolerance" in str(exc).lower()
        return Answer(400, "stale" if stale else "bad_signature")
    except ValueError:
        return Answer(400, "invalid_payload")
    ev = as_dict(event)
    etype = str(ev.get("type") or "")
    event_id = _id(ev.get("id"), "evt_")
    created = ev.get("created")
    if event_id is None or not isinstance(created, int):
        return Answer(400, "invalid_payload")
    if etype not in HANDLED:
        return Answer(200, "ignored", {"reason": "unhandled_type"})
    obj = (ev.get("data") or {}).get("object") or {}
    customer = _id(obj.get("customer"), "cus_")
    if customer is None:
        return Answer(400, "invalid_payload", {"reason": "no_customer"})
    real = session() if isinstance(session, scoped_session) else session
    if real.in_transaction():
        real.commit()
    with bound_tenant(None, real):
        tenant_id = real.scalar(_TENANT_OF, {"customer": customer})
        real.commit()
    if tenant_id is None:
        return Answer(200, "ignored", {"reason": "unknown_customer"})
    try:
        fetched = _fetch(etype, obj)
    except stripe.StripeError:
        return Answer(503, "stripe_unavailable")
    if fetched is None:
        return Answer(400, "refused", {"reason": "unknown_object"})
    if fetched.get("customer") != customer:
        # An event pairing this customer with another customer's object.
        return Answer(400, "refused", {"reason": "customer_mismatch"})
    with bound_tenant(tenant_id, real):
        try:
            # The row lock serializes one tenant's events; the event id is claimed in
            # the same transaction, so a replay finds it and changes nothing.
            row = service.billing_row(real, lock=True)
            if row.stripe_customer_id != customer:  # re-checked under the row lock
                real.rollback()
                return Answer(400, "refused", {"reason": "customer_mismatch"})
            seen = real.scalar(
                select(BillingEvent.event_id).where(BillingEvent.event_id == event_id)
            )
            if seen is not None:
                real.rollback()
                return Answer(200, "duplicate")
            outcome = _apply(real, row, etype, fetched, created)
            inserted = real.scalar(
                pg_insert(BillingEvent)
                .values(event_id=event_id, type=etype, created=created, outcome=outcome)
                .on_conflict_do_nothing()
                .returning(BillingEvent.event_id)
            )
            if inserted is None:
                real.rollback()
                return Answer(200, "duplicate")
            real.commit()
        except BaseException:
            real.rollback()
            raise
    return Answer(200, "processed", {"outcome": outcome})


def _fetch(etype: str, obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The object the event is about, as Stripe has it now."""
    api = client()
    try:
        if etype in SUBSCRIPTION_EVENTS:
            sub_id = _id(obj.get("id"), "sub_")
            return as_dict(api.v1.subscriptions.retrieve(sub_id)) if sub_id else None
        if etype in CHECKOUT_EVENTS:
            sub_id = _id(obj.get("subscription"), "sub_")
            return as_dict(api.v1.subscriptions.retrieve(sub_id)) if sub_id else None
        inv_id = _id(obj.get("id"), "in_")
        return as_dict(api.v1.invoices.retrieve(inv_id)) if inv_id else None
    except stripe.InvalidRequestError:
        return None


def _apply(session: Session, row: Any, etype: str, fetched: dict[str, Any], created: int) -> str:
    if etype in SUBSCRIPTION_EVENTS or etype in CHECKOUT_EVENTS:
        return service.apply_subscription(session, row, fetched)
    invoice_id = str(fetched.get("id"))
    if etype in PAID_EVENTS:
        if fetched.get("status") != "paid":
            return "ignored_unpaid"
        return service.mark_paid(session, row, invoice_id, created)
    if fetched.get("status") in ("paid", "void"):
        return "ignored_settled"  # the failure was overtaken (paid since, or voided)
    return service.mark_past_due(session, row, invoice_id, created)
