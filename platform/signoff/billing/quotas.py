"""Quota checks in the caller's transaction: the database decides.

Counted quotas (members, workflows) take the tenant's billing advisory lock for the
quota, then count: under READ COMMITTED the count after the lock sees every row a
previous holder committed, so two writers at the limit cannot both pass. Requests per
month are a counter row (``billing_usage``) raised by one ``INSERT .. ON CONFLICT DO
UPDATE .. WHERE requests < limit``: the row lock serializes concurrent submits and the
``WHERE`` is re-checked on the newest row. Over quota raises
:class:`signoff.errors.QuotaExceeded` (402); nothing already stored is touched.

:func:`check_quota` is the general form for quotas counted elsewhere (attachment
storage: the caller passes what is used and what it adds).

Everything here is a no-op while billing is off (``plans.enabled()``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, scoped_session

from signoff.billing import plans
from signoff.billing.models import BillingUsage, TenantBilling
from signoff.db.binding import current_tenant_id
from signoff.errors import N_, Message, PaymentRequired, QuotaExceeded
from signoff.tenancy.models import Membership, Tenant

SessionLike = Session | scoped_session[Session]

_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "'signoff.billing:' || CAST(:tenant AS text) || ':' || :quota, 0))"
)
_COUNT_REQUEST = text(
    "INSERT INTO billing_usage (period, requests) VALUES (:period, 1) "
    "ON CONFLICT (tenant_id, period) DO UPDATE SET requests = billing_usage.requests + 1 "
    "WHERE CAST(:limit AS integer) IS NULL OR billing_usage.requests < CAST(:limit AS integer) "
    "RETURNING requests"
)


def _tenant(session: SessionLike) -> uuid.UUID:
    tenant = current_tenant_id()
    if tenant is None:
        raise RuntimeError("a quota check needs a bound tenant")
    return tenant


def tenant_plan(session: SessionLike, tenant_id: uuid.UUID | None = None) -> plans.Plan:
    tid = tenant_id or _tenant(session)
    return plans.get_plan(session.scalar(select(Tenant.plan).where(Tenant.id == tid)))


def this_month(now: datetime | None = None) -> date:
    now = now or datetime.now(UTC)
    return date(now.year, now.month, 1)


def _refuse(quota: str, plan: plans.Plan, limit: int, needed: int) -> QuotaExceeded:
    lifts = plans.lifting(quota, needed, plan)
    label = Message(plans.QUOTA_LABELS.get(quota, quota), {})
    return QuotaExceeded(
        quota,
        limit=limit,
        plan=plan.key,
        upgrade_to=lifts.key if lifts else None,
        message=N_(
            "%(quota)s: the %(plan)s plan allows %(limit)s; the %(lifts)s plan lifts it",
            quota=label,
            plan=plan.name,
            limit=limit,
            lifts=lifts.name,
        )
        if lifts
        else N_(
            "%(quota)s: the %(plan)s plan allows %(limit)s",
            quota=label,
            plan=plan.name,
            limit=limit,
        ),
    )


def check_quota(session: SessionLike, quota: str, *, used: int, adding: int = 1) -> None:
    """Refuse (402) when ``used + adding`` passes the bound tenant's ``quota``.

    The caller counts ``used`` in the same transaction, after :func:`lock_quota`."""
    if not plans.enabled():
        return
    plan = tenant_plan(session)
    limit = plan.limit(quota)
    if limit is not None and used + adding > limit:
        raise _refuse(quota, plan, limit, used + adding)


def lock_quota(session: SessionLike, quota: str) -> None:
    """Serialize the bound tenant's writers of ``quota`` until commit."""
    session.execute(_LOCK, {"tenant": str(_tenant(session)), "quota": quota})


def check_members(session: SessionLike, adding: int = 1) -> None:
    """Before adding active members to the bound tenant."""
    if not plans.enabled():
        return
    lock_quota(session, "members")
    used = session.scalar(
        select(func.count()).select_from(Membership).where(Membership.active.is_(True))
    )
    check_quota(session, "members", used=int(used or 0), adding=adding)


#: Bytes in one of ``attachment_mb``'s units.
MB = 1024 * 1024


def attachment_bytes(session: SessionLike) -> int:
    """Bytes the bound tenant's attachments hold (row-level security scopes the sum)."""
    return int(session.scalar(text("SELECT coalesce(sum(size_bytes), 0) FROM attachment")) or 0)


def check_attachment_storage(session: SessionLike, adding_bytes: int) -> None:
    """Before storing ``adding_bytes`` more in the bound tenant: the plan's
    ``attachment_mb``, serialized with the tenant's other uploads until commit."""
    if not plans.enabled():
        return
    plan = tenant_plan(session)
    limit = plan.limit("attachment_mb")
    if limit is None:
        return
    lock_quota(session, "attachment_mb")
    needed = attachment_bytes(session) + adding_bytes
    if needed > limit * MB:
        raise _refuse("attachment_mb", plan, limit, -(-needed // MB))


def check_workflows(session: SessionLike, adding: int = 1) -> None:
    """Before creating a new workflow in the bound tenant."""
    if not plans.enabled():
        return
    lock_quota(session, "workflows")
    used = session.scalar(text("SELECT count(*) FROM workflow"))
    check_quota(session, "workflows", used=int(used or 0), adding=adding)


def check_channel(session: SessionLike, channel: str) -> None:
    """Before connecting a channel (``slack``, ``webhooks``): 402 unless the bound
    tenant's plan includes it."""
    if not plans.enabled():
        return
    plan = tenant_plan(session)
    if plan.channels.get(channel):
        return
    lifts = next((p for p in plans.all_plans() if p.channels.get(channel)), None)
    name = "Slack" if channel == "slack" else Message(N_("Webhooks"), {})
    raise QuotaExceeded(
        channel,
        limit=0,
        plan=plan.key,
        upgrade_to=lifts.key if lifts else None,
        message=N_(
            "%(channel)s are not included in the %(plan)s plan; the %(lifts)s plan includes them",
            channel=name,
            plan=plan.name,
            lifts=lifts.name,
        )
        if lifts
        else N_("%(channel)s are not included in the %(plan)s plan", channel=name, plan=plan.name),
    )


def billing_row(session: SessionLike) -> TenantBilling | None:
    return session.scalar(select(TenantBilling))


def billing_past_due(session: SessionLike) -> bool:
    """Whether the bound tenant has a failed payment outstanding (billing on only)."""
    if not plans.enabled():
        return False
    row = billing_row(session)
    return row is not None and row.status == "past_due"


def check_payment(session: SessionLike, now: datetime | None = None) -> None:
    """Refuse new work when a payment failed longer ago than the grace period."""
    if not plans.enabled():
        return
    row = billing_row(session)
    if row is None or row.status != "past_due" or row.past_due_since is None:
        return
    grace = timedelta(days=int(current_app.config.get("SIGNOFF_BILLING_GRACE_DAYS", 7)))
    if (now or datetime.now(UTC)) >= row.past_due_since + grace:
        raise PaymentRequired(
            "payment_past_due",
            "A payment failed and the grace period is over: new requests are refused "
            "until a tenant admin updates the payment method on the Billing page. "
            "Decisions on running requests continue.",
        )


def count_request(session: SessionLike, now: datetime | None = None) -> None:
    """Count one new request against this month's quota, or refuse (402)."""
    if not plans.enabled():
        return
    check_payment(session, now)
    plan = tenant_plan(session)
    limit = plan.limit("requests_per_month")
    if limit is not None and limit <= 0:
        raise _refuse("requests_per_month", plan, limit, 1)
    counted = session.scalar(_COUNT_REQUEST, {"period": this_month(now), "limit": limit})
    if counted is None and limit is not None:
        raise _refuse("requests_per_month", plan, limit, limit + 1)


def usage(session: SessionLike, now: datetime | None = None) -> dict[str, Any]:
    """The bound tenant's plan and its use of each quota."""
    plan = tenant_plan(session)
    members = session.scalar(
        select(func.count()).select_from(Membership).where(Membership.active.is_(True))
    )
    workflows = session.scalar(text("SELECT count(*) FROM workflow"))
    requests = session.scalar(
        select(BillingUsage.requests).where(BillingUsage.period == this_month(now))
    )
    used: dict[str, int | None] = {
        "members": int(members or 0),
        "workflows": int(workflows or 0),
        "requests_per_month": int(requests or 0),
        "attachment_mb": -(-attachment_bytes(session) // MB),  # whole MB, rounded up
    }
    return {
        "plan": plan.key,
        "quotas": [
            {
                "quota": q,
                "label": plans.QUOTA_LABELS[q],
                "used": used[q],
                "limit": plan.limit(q),
            }
            for q in plans.QUOTAS
        ],
    }
