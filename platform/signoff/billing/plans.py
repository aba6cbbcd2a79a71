"""The plans and their quotas, from ``SIGNOFF_BILLING_PLANS`` (``signoff.config``).

A plan's Stripe Product id is ``signoff-<plan>`` and its Stripe Plan (a recurring
price) ``signoff-<plan>-<interval>``: webhooks map a subscription back to a plan by that
id, never by metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from signoff.errors import N_

#: Quotas counted by Signoff, in the order pages show them.
QUOTAS = ("members", "workflows", "requests_per_month", "attachment_mb")
QUOTA_LABELS = {
    "members": N_("Members"),
    "workflows": N_("Workflows"),
    "requests_per_month": N_("Requests this month"),
    "attachment_mb": N_("Attachment storage (MB)"),
}
CHANNELS = ("slack", "webhooks")


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    price: int
    currency: str
    interval: str
    quotas: Mapping[str, int | None] = field(default_factory=dict)
    channels: Mapping[str, bool] = field(default_factory=dict)
    api_rate: str | None = None

    @property
    def product_id(self) -> str:
        return f"signoff-{self.key}"

    @property
    def stripe_plan_id(self) -> str:
        return f"signoff-{self.key}-{self.interval}"

    @property
    def paid(self) -> bool:
        return self.price > 0

    def limit(self, quota: str) -> int | None:
        value = self.quotas.get(quota)
        return None if value is None else int(value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "price": self.price,
            "currency": self.currency,
            "interval": self.interval,
            "quotas": {q: self.limit(q) for q in QUOTAS},
            "channels": {c: bool(self.channels.get(c)) for c in CHANNELS},
            "api_rate": self.api_rate,
        }


def _parse(key: str, raw: Mapping[str, Any], rates: Mapping[str, str]) -> Plan:
    quotas = raw.get("quotas") or {}
    return Plan(
        key=key,
        name=str(raw.get("name") or key.title()),
        price=int(raw.get("price") or 0),
        currency=str(raw.get("currency") or "usd"),
        interval=str(raw.get("interval") or "month"),
        quotas={q: (None if quotas.get(q) is None else int(quotas[q])) for q in QUOTAS},
        channels={c: bool((raw.get("channels") or {}).get(c)) for c in CHANNELS},
        api_rate=rates.get(key),
    )


def all_plans() -> list[Plan]:
    """Every configured plan, cheapest first."""
    cfg = current_app.config
    raw: Mapping[str, Any] = cfg.get("SIGNOFF_BILLING_PLANS") or {}
    rates: Mapping[str, str] = cfg.get("SIGNOFF_RATELIMIT_API_PLANS") or {}
    plans = [_parse(key, value, rates) for key, value in raw.items()]
    return sorted(plans, key=lambda p: (p.price, p.key))


def get_plan(key: str | None) -> Plan:
    """The plan ``key``; an unknown or missing key is the cheapest plan."""
    plans = all_plans()
    for plan in plans:
        if plan.key == key:
            return plan
    return plans[0]


def find_plan(key: str) -> Plan | None:
    return next((p for p in all_plans() if p.key == key), None)


def plan_for_stripe_id(stripe_plan_id: str | None) -> Plan | None:
    return next((p for p in all_plans() if p.stripe_plan_id == stripe_plan_id), None)


def lifting(quota: str, needed: int, current: Plan) -> Plan | None:
    """The cheapest plan dearer than ``current`` whose ``quota`` allows ``needed``."""
    for plan in all_plans():
        if plan.price <= current.price or plan.key == current.key:
            continue
        limit = plan.limit(quota)
        if limit is None or limit >= needed:
            return plan
    return None


def enabled() -> bool:
    """Billing is on when a Stripe secret key is configured."""
    return bool(current_app.config.get("SIGNOFF_STRIPE_SECRET_KEY"))
