"""The per-user decision budget, drawn by every path that decides (web, API, CLI,
add-on): ``FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW`` decisions per
``FAB_APPROVAL_RATE_LIMIT_WINDOW`` seconds per user and tenant."""

from __future__ import annotations

from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff.db.binding import current_tenant_id
from signoff.errors import DecisionRateLimited
from signoff.limiter import SCOPE_DECISIONS, RateLimited, Rule, app_has_limiter, enforce
from signoff.tenancy.models import Membership, MembershipRole, TenantRole
from signoff.workflow.actions.core import Actor


def _tenant_roles(session: Session, user_id: int) -> set[str]:
    rows = session.scalars(
        select(TenantRole.name)
        .join(MembershipRole, MembershipRole.role_id == TenantRole.id)
        .join(Membership, Membership.id == MembershipRole.membership_id)
        .where(Membership.user_id == user_id, Membership.active.is_(True))
    )
    return set(rows)


def check_decision_rate(session: Any, actor: Actor, *, consume: bool = True) -> None:
    """The per-user decision budget, for every path that decides (web, API, CLI, add-on).

    ``FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW`` decisions (approve, reject, request
    changes) per ``FAB_APPROVAL_RATE_LIMIT_WINDOW`` seconds per user and tenant;
    members holding a tenant role in ``FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS`` are
    exempt, and so are automated actors. Redis down never blocks a decision.
    ``consume=False`` only tests whether one more decision fits.
    """
    if not has_app_context() or not actor.user_id or actor.method == "automated":
        return
    cfg = current_app.config
    amount = int(cfg.get("FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW") or 0)
    window = int(cfg.get("FAB_APPROVAL_RATE_LIMIT_WINDOW") or 0)
    tenant = current_tenant_id()
    if amount <= 0 or window <= 0 or tenant is None or not app_has_limiter():
        return
    exempt = set(cfg.get("FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS") or ())
    if exempt and exempt & _tenant_roles(session, actor.user_id):
        return
    limit = f"{amount} per {window} second"
    try:
        enforce(
            [Rule(SCOPE_DECISIONS, limit, f"tenant:{tenant}:user:{actor.user_id}")],
            consume=consume,
            always_open=True,
        )
    except RateLimited as exc:
        raise DecisionRateLimited(limit, exc.retry_after_seconds) from None
