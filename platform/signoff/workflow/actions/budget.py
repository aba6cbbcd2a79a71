"""The per-user decision budget, drawn by every path that decides (web, API, CLI,
add-on): ``FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW`` decisions per
``FAB_APPROVAL_RATE_LIMIT_WINDOW`` seconds per user and tenant."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app, g, has_app_context, has_request_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff.db.binding import current_tenant_id
from signoff.errors import DecisionRateLimited
from signoff.limiter import SCOPE_DECISIONS, RateLimited, Rule, app_has_limiter, enforce
from signoff.security.caller import current_caller
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


#: ``g`` key: the decision rule a tenant API call drew with its plan quota, in the
#: request's one Redis round trip (:func:`signoff.security.ratelimit.api_quota`).
PREDRAWN = "signoff_decision_predrawn"


def decision_rule(
    session: Any, user_id: int, *, tenant_roles: Iterable[str] | None = None
) -> Rule | None:
    """The bucket one decision by ``user_id`` in the bound tenant draws from, or
    ``None`` (no budget configured, no tenant, or a member of an exempt role).

    ``tenant_roles``: the user's roles in the bound tenant when already known (the
    request's resolved caller); otherwise they are read.
    """
    if not has_app_context() or not user_id:
        return None
    cfg = current_app.config
    amount = int(cfg.get("FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW") or 0)
    window = int(cfg.get("FAB_APPROVAL_RATE_LIMIT_WINDOW") or 0)
    tenant = current_tenant_id()
    if amount <= 0 or window <= 0 or tenant is None or not app_has_limiter():
        return None
    exempt = set(cfg.get("FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS") or ())
    if exempt:
        if tenant_roles is None:
            caller = current_caller()
            if caller is not None and caller.user_id == user_id and caller.tenant_id == tenant:
                tenant_roles = caller.tenant_roles  # read with the caller, this request
        roles = set(tenant_roles) if tenant_roles is not None else _tenant_roles(session, user_id)
        if exempt & roles:
            return None
    return Rule(SCOPE_DECISIONS, f"{amount} per {window} second", f"tenant:{tenant}:user:{user_id}")


def predrawn(rule: Rule) -> None:
    """Record that this request already drew ``rule`` (for its one decision)."""
    if has_request_context():
        setattr(g, PREDRAWN, rule)


def decision_refused(exc: RateLimited) -> DecisionRateLimited:
    return DecisionRateLimited(exc.rule.limit, exc.retry_after_seconds)


def check_decision_rate(session: Any, actor: Actor, *, consume: bool = True) -> None:
    """The per-user decision budget, for every path that decides (web, API, CLI, add-on).

    ``FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW`` decisions (approve, reject, request
    changes) per ``FAB_APPROVAL_RATE_LIMIT_WINDOW`` seconds per user and tenant;
    members holding a tenant role in ``FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS`` are
    exempt, and so are automated actors. Redis down never blocks a decision.
    ``consume=False`` only tests whether one more decision fits. A decision endpoint
    of the API drew its budget with the plan quota before the view ran (one Redis
    round trip per request); that draw covers exactly one decision.
    """
    if not has_app_context() or not actor.user_id or actor.method == "automated":
        return
    rule = decision_rule(session, actor.user_id)
    if rule is None:
        return
    if consume and has_request_context() and g.pop(PREDRAWN, None) == rule:
        return
    try:
        enforce([rule], consume=consume, always_open=True)
    except RateLimited as exc:
        raise decision_refused(exc) from None
