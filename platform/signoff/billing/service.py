"""A tenant's subscription: upgrade, downgrade, cancel, invoices, payment method, and
applying what Stripe says (used by the pages, the API and the webhook).

Every function works on the *bound* tenant. Calls to Stripe happen while the tenant's
``tenant_billing`` row is locked (``FOR UPDATE``), so two upgrades cannot create two
customers; the customer is also created with an idempotency key of the tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from signoff.audit.chain import append as audit_append
from signoff.billing import plans
from signoff.billing.models import BillingEvent, TenantBilling
from signoff.billing.quotas import tenant_plan
from signoff.billing.stripe_api import BillingUnavailable, as_dict, client
from signoff.db.binding import current_tenant_id
from signoff.errors import N_, ActionError, Conflict, Invalid, PaymentRequired
from signoff.roles import ADMIN_ROLE
from signoff.tenancy.models import Membership, MembershipRole, Tenant, TenantRole
from signoff.workflow.models import NotificationOutbox

LIVE = ("active", "trialing", "past_due")


def _tenant_id() -> uuid.UUID:
    tid = current_tenant_id()
    if tid is None:
        raise RuntimeError("billing needs a bound tenant")
    return tid


def billing_row(session: Session, *, lock: bool = False) -> TenantBilling:
    """The bound tenant's billing row, created on first use."""
    query = select(TenantBilling)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        # Two first uses at once: one inserts, the other's insert does nothing.
        session.execute(pg_insert(TenantBilling).values({}).on_conflict_do_nothing())
        row = session.scalar(query)
        assert row is not None
    return row


def _audit(session: Session, actor_id: int | None, action: str, **payload: Any) -> None:
    audit_append(
        session,
        actor_id=actor_id,
        on_behalf_of_id=None,
        action=action,
        object_type="billing",
        object_id=None,
        payload=payload,
    )


def _stripe_call(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return as_dict(fn(*args, **kwargs))
    except stripe.CardError as exc:
        raise PaymentRequired(
            "card_declined",
            N_("The card was declined: %(reason)s", reason=exc.user_message or str(exc)),
        ) from exc
    except stripe.InvalidRequestError as exc:
        raise Invalid(
            "stripe_refused",
            N_("Stripe refused: %(reason)s", reason=exc.user_message or str(exc)),
            field="payment_method",
        ) from exc
    except stripe.StripeError as exc:
        raise BillingUnavailable("stripe_unavailable", f"Stripe did not answer: {exc}") from exc


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int) else None


def _sub_plan_id(sub: Mapping[str, Any]) -> str | None:
    items = (sub.get("items") or {}).get("data") or []
    if items:
        plan = items[0].get("plan") or items[0].get("price") or {}
        return str(plan.get("id")) if plan.get("id") else None
    plan = sub.get("plan") or {}
    return str(plan.get("id")) if plan.get("id") else None


def _set_plan(
    session: Session, row: TenantBilling, key: str, actor_id: int | None, why: str
) -> None:
    tenant = session.get(Tenant, _tenant_id())
    assert tenant is not None
    if row.override_plan is not None:
        return  # an operator's plan holds until the operator clears it
    if tenant.plan != key:
        before = tenant.plan
        tenant.plan = key
        _audit(session, actor_id, "billing.plan_changed", before=before, after=key, reason=why)


def apply_subscription(
    session: Session, row: TenantBilling, sub: Mapping[str, Any], *, actor_id: int | None = None
) -> str:
    """Make the bound tenant follow ``sub`` (fetched from Stripe, never an event's
    copy): its plan while the subscription lives, the free plan once it ended."""
    sub_id = str(sub.get("id"))
    status = str(sub.get("status"))
    if row.stripe_subscription_id not in (None, sub_id) and status not in LIVE:
        return "ignored_old_subscription"  # an old subscription ending changes nothing
    plan = plans.plan_for_stripe_id(_sub_plan_id(sub))
    row.subscription_status = status
    row.cancel_at_period_end = bool(sub.get("cancel_at_period_end"))
    row.current_period_end = _ts(sub.get("current_period_end"))
    row.updated_at = datetime.now(UTC)
    if status in LIVE and plan is not None:
        row.stripe_subscription_id = sub_id
        row.subscribed_plan = plan.key
        _set_plan(session, row, plan.key, actor_id, f"subscription {status}")
        return "applied"
    if status in ("canceled", "incomplete_expired", "unpaid"):
        row.subscribed_plan = None
        free = plans.all_plans()[0]
        _set_plan(session, row, free.key, actor_id, f"subscription {status}")
        return "downgraded"
    return "recorded"


def ensure_customer(
    session: Session, *, email: str, actor_id: int | None, row: TenantBilling | None = None
) -> str:
    """The bound tenant's Stripe customer, created once (under the row lock, with an
    idempotency key of the tenant). Callers commit it before anything that may fail,
    so a declined card never leaves a customer Signoff forgot."""
    tid = _tenant_id()
    row = row or billing_row(session, lock=True)
    if row.stripe_customer_id is None:
        customer = _stripe_call(
            client().v1.customers.create,
            params={"email": email, "description": f"Signoff tenant {tid}"},
            options={"idempotency_key": f"signoff-customer-{tid}"},
        )
        row.stripe_customer_id = str(customer["id"])
        _audit(session, actor_id, "billing.customer_created", customer=row.stripe_customer_id)
    return row.stripe_customer_id


def upgrade(
    session: Session, *, plan_key: str, payment_method: str | None, actor_id: int, email: str
) -> dict[str, Any]:
    """Subscribe the bound tenant to ``plan_key`` (or move its subscription there)."""
    plan = plans.find_plan(plan_key)
    if plan is None:
        raise Invalid("unknown_plan", N_("No plan '%(key)s'", key=plan_key), field="plan")
    row = billing_row(session, lock=True)
    if not plan.paid:
        raise Invalid(
            "free_plan", "The free plan needs no subscription: cancel instead", field="plan"
        )
    api = client()
    customer_id = ensure_customer(session, email=email, actor_id=actor_id, row=row)
    if payment_method and payment_method.startswith("tok_"):
        # A card token (Stripe.js createToken): the customer's default source.
        card = _stripe_call(
            api.v1.customers.payment_sources.create, customer_id, params={"source": payment_method}
        )
        _stripe_call(
            api.v1.customers.update,
            customer_id,
            params={
                "default_source": card["id"],
                "invoice_settings": {"default_payment_method": ""},
            },
        )
        payment_method = None
        has_card = True
    else:
        has_card = False
    if payment_method:
        if not payment_method.startswith("pm_"):
            raise Invalid(
                "invalid",
                "payment_method must be a Stripe id pm_... or tok_...",
                field="payment_method",
            )
        _stripe_call(
            api.v1.payment_methods.attach, payment_method, params={"customer": customer_id}
        )
        _stripe_call(
            api.v1.customers.update,
            customer_id,
            params={"invoice_settings": {"default_payment_method": payment_method}},
        )
    current = None
    if row.stripe_subscription_id and row.subscription_status in LIVE:
        current = _stripe_call(api.v1.subscriptions.retrieve, row.stripe_subscription_id)
        if current.get("status") not in LIVE:
            current = None
    if current is not None:
        items = (current.get("items") or {}).get("data") or []
        params: dict[str, Any] = {"cancel_at_period_end": False}
        if _sub_plan_id(current) != plan.stripe_plan_id:
            params["items"] = [{"id": items[0]["id"], "plan": plan.stripe_plan_id}]
        sub = _stripe_call(api.v1.subscriptions.update, current["id"], params=params)
    else:
        if not payment_method and not has_card:
            cust = _stripe_call(api.v1.customers.retrieve, customer_id)
            settings = cust.get("invoice_settings") or {}
            if not (settings.get("default_payment_method") or cust.get("default_source")):
                raise Invalid("payment_method_required", "A card is needed", field="payment_method")
        sub = _stripe_call(
            api.v1.subscriptions.create,
            params={
                "customer": customer_id,
                "items": [{"plan": plan.stripe_plan_id}],
                "payment_behavior": "error_if_incomplete",
            },
        )
    row.stripe_subscription_id = str(sub["id"])
    outcome = apply_subscription(session, row, sub, actor_id=actor_id)
    _audit(session, actor_id, "billing.subscribed", plan=plan.key, subscription=sub["id"])
    return {"plan": plan.key, "subscription_status": sub.get("status"), "outcome": outcome}


def cancel(session: Session, *, actor_id: int) -> dict[str, Any]:
    """Cancel at the end of the period: the plan stays until Stripe ends it."""
    row = billing_row(session, lock=True)
    if not row.stripe_subscription_id or row.subscription_status not in LIVE:
        raise Conflict("no_subscription", "There is no subscription to cancel")
    sub = _stripe_call(
        client().v1.subscriptions.update,
        row.stripe_subscription_id,
        params={"cancel_at_period_end": True},
    )
    apply_subscription(session, row, sub, actor_id=actor_id)
    _audit(session, actor_id, "billing.cancel_requested", subscription=row.stripe_subscription_id)
    return {"cancel_at_period_end": row.cancel_at_period_end, "ends": row.current_period_end}


def invoices(session: Session) -> list[dict[str, Any]]:
    """The bound tenant's invoices, from Stripe, by its own stored customer id only."""
    row = session.scalar(select(TenantBilling))
    if row is None or not row.stripe_customer_id:
        return []
    found = _stripe_call(
        client().v1.invoices.list, params={"customer": row.stripe_customer_id, "limit": 24}
    )
    return [
        {
            "id": inv.get("id"),
            "number": inv.get("number"),
            "status": inv.get("status"),
            "amount_due": inv.get("amount_due") or 0,
            "amount_paid": inv.get("amount_paid") or 0,
            "currency": inv.get("currency"),
            "created": _ts(inv.get("created") or inv.get("date")),
            "url": inv.get("hosted_invoice_url"),
        }
        for inv in found.get("data") or []
        if inv.get("customer") == row.stripe_customer_id
    ]


def payment_method(session: Session) -> dict[str, Any] | None:
    row = session.scalar(select(TenantBilling))
    if row is None or not row.stripe_customer_id:
        return None
    api = client()
    cust = _stripe_call(api.v1.customers.retrieve, row.stripe_customer_id)
    pm_id = (cust.get("invoice_settings") or {}).get("default_payment_method")
    if pm_id:
        pm = _stripe_call(api.v1.payment_methods.retrieve, str(pm_id))
        card = pm.get("card") or {}
    elif cust.get("default_source"):
        # A card saved from a token: the customer's default source.
        sources = (cust.get("sources") or {}).get("data") or []
        pm = next((s for s in sources if s.get("id") == cust["default_source"]), {})
        card = pm
    else:
        return None
    return {
        "id": pm.get("id"),
        "brand": card.get("brand"),
        "last4": card.get("last4"),
        "exp_month": card.get("exp_month"),
        "exp_year": card.get("exp_year"),
    }


def state(session: Session) -> dict[str, Any]:
    """The bound tenant's billing state for pages and the API (no Stripe call)."""
    row = session.scalar(select(TenantBilling))
    plan = tenant_plan(session)
    return {
        "enabled": plans.enabled(),
        "plan": plan.key,
        "plan_name": plan.name,
        "status": row.status if row else "ok",
        "past_due_since": row.past_due_since if row else None,
        "subscription_status": row.subscription_status if row else None,
        "subscribed_plan": row.subscribed_plan if row else None,
        "cancel_at_period_end": bool(row.cancel_at_period_end) if row else False,
        "current_period_end": row.current_period_end if row else None,
        "override_plan": row.override_plan if row else None,
        "has_customer": bool(row and row.stripe_customer_id),
    }


def recent_events(session: Session, limit: int = 20) -> list[BillingEvent]:
    return list(
        session.scalars(select(BillingEvent).order_by(BillingEvent.received_at.desc()).limit(limit))
    )


# --- dunning ------------------------------------------------------------------------


def _admins(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(Membership.user_id)
            .join(
                MembershipRole,
                (MembershipRole.tenant_id == Membership.tenant_id)
                & (MembershipRole.membership_id == Membership.id),
            )
            .join(
                TenantRole,
                (TenantRole.tenant_id == MembershipRole.tenant_id)
                & (TenantRole.id == MembershipRole.role_id),
            )
            .where(TenantRole.name == ADMIN_ROLE, Membership.active.is_(True))
            .order_by(Membership.user_id)
        )
    )


def mark_past_due(session: Session, row: TenantBilling, invoice_id: str, created: int) -> str:
    if created < row.payment_event_at:
        return "stale_order"
    row.payment_event_at = created
    if row.status == "past_due":
        return "already_past_due"
    row.status = "past_due"
    row.past_due_since = datetime.now(UTC)
    row.updated_at = row.past_due_since
    for admin in _admins(session):
        session.add(
            NotificationOutbox(
                kind="billing_past_due",
                level="warning",
                title=N_("A payment for your Signoff subscription failed"),
                recipient_id=admin,
                payload={
                    "message": N_(
                        "Stripe could not collect a payment. Update the card on the Billing "
                        "page; after the grace period new requests are refused."
                    ),
                    "invoice": invoice_id,
                },
            )
        )
    _audit(session, None, "billing.payment_failed", invoice=invoice_id)
    return "past_due"


def mark_paid(session: Session, row: TenantBilling, invoice_id: str, created: int) -> str:
    if created < row.payment_event_at:
        return "stale_order"
    row.payment_event_at = created
    if row.status != "past_due":
        return "paid"
    row.status = "ok"
    row.past_due_since = None
    row.updated_at = datetime.now(UTC)
    _audit(session, None, "billing.payment_restored", invoice=invoice_id)
    return "restored"


# --- operators --------------------------------------------------------------------


def override_plan(
    session: Session, *, plan_key: str | None, reason: str, actor_id: int | None
) -> None:
    """An operator's plan for the bound tenant (``None`` clears it), with a reason,
    audited in the tenant's chain."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", "Say why the plan is overridden", field="reason")
    if plan_key is not None and plans.find_plan(plan_key) is None:
        raise Invalid("unknown_plan", N_("No plan '%(key)s'", key=plan_key), field="plan")
    row = billing_row(session, lock=True)
    tenant = session.get(Tenant, _tenant_id())
    assert tenant is not None
    before = tenant.plan
    row.override_plan = None
    row.override_reason = None
    target = plan_key or row.subscribed_plan or plans.all_plans()[0].key
    tenant.plan = target
    if plan_key is not None:
        row.override_plan = plan_key
        row.override_reason = reason[:500]
    row.updated_at = datetime.now(UTC)
    _audit(
        session,
        actor_id,
        "tenant.plan_overridden" if plan_key else "tenant.plan_override_cleared",
        before=before,
        after=target,
        reason=reason[:500],
    )


def overview_facts(
    status: str | None,
    subscription_status: str | None,
    override_plan: str | None,
    subscribed_plan: str | None,
) -> dict[str, Any]:
    """A tenant's billing facts for the operator console from its ``tenant_billing``
    columns (all ``None``: the tenant has no billing row)."""
    plan = plans.find_plan(subscribed_plan) if subscribed_plan else None
    live = subscription_status in ("active", "trialing", "past_due")
    return {
        "status": status or "ok",
        "subscription_status": subscription_status,
        "override_plan": override_plan,
        "mrr": plan.price if plan and live and plan.interval == "month" else 0,
    }


__all__ = ["ActionError", "BillingUnavailable"]
