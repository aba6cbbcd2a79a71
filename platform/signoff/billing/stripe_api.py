"""The Stripe client of this app, and pushing the plans to Stripe.

One ``stripe.StripeClient`` per app (``app.extensions``), built from
``SIGNOFF_STRIPE_SECRET_KEY`` and, when set, ``SIGNOFF_STRIPE_API_BASE`` (tests point
it at localstripe on 127.0.0.1). Nothing here sets the ``stripe`` module's globals,
so two apps in one process never share a key. Stripe objects are turned into plain
dicts at once (:func:`as_dict`).
"""

from __future__ import annotations

from typing import Any

import stripe
from flask import current_app

from signoff.billing import plans
from signoff.errors import ActionError

_EXT = "signoff_stripe"


class BillingUnavailable(ActionError):
    """Stripe is not configured or did not answer: 503."""

    status = 503


def client() -> stripe.StripeClient:
    cfg = current_app.config
    key = cfg.get("SIGNOFF_STRIPE_SECRET_KEY")
    if not key:
        raise BillingUnavailable("billing_off", "Billing is not configured on this installation")
    cached = current_app.extensions.get(_EXT)
    if cached is not None and cached[0] == key:
        return cached[1]
    base = cfg.get("SIGNOFF_STRIPE_API_BASE")
    kwargs: dict[str, Any] = {"max_network_retries": 1}
    if base:
        kwargs["base_addresses"] = {"api": str(base).rstrip("/")}
    made = stripe.StripeClient(str(key), **kwargs)
    current_app.extensions[_EXT] = (key, made)
    return made


def as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict()


def js_url() -> str:
    """Where the page loads Stripe.js from (localstripe serves a replacement)."""
    base = current_app.config.get("SIGNOFF_STRIPE_API_BASE")
    if base:
        return str(base).rstrip("/") + "/js.stripe.com/v3/"
    return "https://js.stripe.com/v3/"


def _retrieve(fn: Any, ident: str) -> dict[str, Any] | None:
    try:
        return as_dict(fn(ident))
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return None
        raise


def sync_plans() -> list[dict[str, Any]]:
    """Create or update a Product and a recurring Plan in Stripe for every paid plan.

    Idempotent: a Product is updated in place; a Plan's amount, currency and interval
    cannot change in Stripe, so a Plan that differs is deleted and created again under
    the same id (subscriptions keep the price they were created with). Returns one
    line per plan: ``{"plan", "product", "stripe_plan", "action"}``.
    """
    api = client()
    done: list[dict[str, Any]] = []
    for plan in plans.all_plans():
        if not plan.paid:
            done.append({"plan": plan.key, "action": "free (not in Stripe)"})
            continue
        product = _retrieve(api.v1.products.retrieve, plan.product_id)
        if product is None:
            api.v1.products.create(
                params={"id": plan.product_id, "name": f"Signoff {plan.name}", "type": "service"}
            )
            action = "created"
        else:
            if product.get("name") != f"Signoff {plan.name}":
                api.v1.products.update(plan.product_id, params={"name": f"Signoff {plan.name}"})
            action = "unchanged"
        existing = _retrieve(api.v1.plans.retrieve, plan.stripe_plan_id)
        same = existing is not None and (
            existing.get("amount") == plan.price
            and existing.get("currency") == plan.currency
            and existing.get("interval") == plan.interval
        )
        if existing is not None and not same:
            api.v1.plans.delete(plan.stripe_plan_id)
            existing = None
            action = "updated"
        if existing is None:
            api.v1.plans.create(
                params={
                    "id": plan.stripe_plan_id,
                    "product": plan.product_id,
                    "amount": plan.price,
                    "currency": plan.currency,
                    "interval": plan.interval,
                    "nickname": plan.name,
                }
            )
            if action == "unchanged":
                action = "created"
        done.append(
            {
                "plan": plan.key,
                "product": plan.product_id,
                "stripe_plan": plan.stripe_plan_id,
                "action": action,
            }
        )
    return done
