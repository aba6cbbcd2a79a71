"""Support access: a tenant admin grants platform staff read access for a limited time.

Operators never see a tenant's requests, people or workflows, except while that
tenant's admin has granted support access: ``grant`` (1 to 72 hours, with a
reason), ``revoke`` (at once), both recorded in the tenant's audit chain. Whether a
grant is live is decided by PostgreSQL's clock in the reading transaction
(``expires_at > now()``), so an expired or revoked grant stops working at the next
statement, with no job to run. Every read by platform staff is recorded with
:func:`record_use` in the same transaction as the read, in the tenant's own chain.

Everything here runs with the tenant bound; rows of other tenants are invisible
(row-level security), so a foreign grant id is the same ``NotFound`` as a random one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from signoff.audit.chain import append as audit_append
from signoff.db.ids import parse_id
from signoff.errors import N_, Invalid, NotFound
from signoff.tenancy.support_models import MAX_HOURS, MIN_HOURS, REASON_MAX, SupportGrant
from signoff.text import InvalidText, TextTooLong, clean_text

__all__ = [
    "MAX_HOURS",
    "MIN_HOURS",
    "SupportGrant",
    "active_grant",
    "count_grants",
    "database_now",
    "get_grant_for",
    "grant",
    "grant_dict",
    "is_active",
    "list_grants",
    "record_use",
    "revoke",
]


def _hours(raw: Any) -> int:
    try:
        hours = int(raw)
    except (TypeError, ValueError):
        raise Invalid("invalid", "hours must be a whole number", field="hours") from None
    if isinstance(raw, bool) or not MIN_HOURS <= hours <= MAX_HOURS:
        raise Invalid(
            "invalid",
            N_("hours must be between %(min)s and %(max)s", min=MIN_HOURS, max=MAX_HOURS),
            field="hours",
        )
    return hours


def _reason(raw: Any) -> str:
    try:
        reason = clean_text(None if raw is None else str(raw), field="reason", limit=REASON_MAX)
    except TextTooLong:
        raise Invalid(
            "invalid",
            N_("reason is longer than %(limit)s characters", limit=REASON_MAX),
            field="reason",
        ) from None
    except InvalidText as exc:
        raise Invalid("invalid", exc.message, field="reason") from None
    if not reason:
        raise Invalid("invalid", "a reason is required", field="reason")
    return reason


def grant(session: Session, *, granted_by: int, hours: Any, reason: Any) -> SupportGrant:
    """Grant support access to the bound tenant from now for ``hours``; audited."""
    clean_hours = _hours(hours)
    clean_reason = _reason(reason)
    row = SupportGrant(
        granted_by=granted_by,
        reason=clean_reason,
        # The database's clock, as every later check: created_at is now() too.
        expires_at=func.now() + timedelta(hours=clean_hours),
    )
    session.add(row)
    session.flush()
    session.refresh(row)
    audit_append(
        session,
        actor_id=granted_by,
        on_behalf_of_id=None,
        action="support.granted",
        object_type="support_access_grant",
        object_id=str(row.id),
        payload={
            "hours": clean_hours,
            "reason": clean_reason,
            "expires_at": row.expires_at.isoformat(),
        },
    )
    return row


def revoke(session: Session, row: SupportGrant, *, by: int) -> bool:
    """End ``row`` now; False when it had already been revoked. Audited."""
    if row.revoked_at is not None:
        return False
    row.revoked_at = session.scalar(select(func.now()))
    row.revoked_by = by
    session.flush()
    audit_append(
        session,
        actor_id=by,
        on_behalf_of_id=None,
        action="support.revoked",
        object_type="support_access_grant",
        object_id=str(row.id),
        payload={"expires_at": row.expires_at.isoformat()},
    )
    return True


def get_grant_for(session: Session, grant_id: Any) -> SupportGrant:
    """The bound tenant's grant ``grant_id``; ``NotFound`` for missing and foreign alike."""
    row = session.get(SupportGrant, parse_id(grant_id))
    if row is None:
        raise NotFound("not_found", "Not found")
    return row


def list_grants(session: Session, *, limit: int = 100, offset: int = 0) -> list[SupportGrant]:
    """The bound tenant's grants, newest first."""
    return list(
        session.scalars(
            select(SupportGrant)
            .order_by(SupportGrant.created_at.desc(), SupportGrant.id)
            .limit(limit)
            .offset(offset)
        )
    )


def count_grants(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(SupportGrant)) or 0)


def active_grant(session: Session) -> SupportGrant | None:
    """The bound tenant's live grant lasting longest, by the database's clock, or None."""
    return session.scalars(
        select(SupportGrant)
        .where(SupportGrant.revoked_at.is_(None), SupportGrant.expires_at > func.now())
        .order_by(SupportGrant.expires_at.desc())
        .limit(1)
    ).first()


def is_active(session: Session, row: SupportGrant) -> bool:
    """Whether ``row`` is live now, by the database's clock."""
    if row.revoked_at is not None:
        return False
    return bool(session.scalar(select(func.now() < row.expires_at)))


def record_use(
    session: Session,
    row: SupportGrant,
    *,
    staff_id: int,
    staff_name: str,
    action: str,
    page: str,
    object_type: str = "tenant",
    object_id: str | None = None,
) -> int:
    """Append one support use to the bound tenant's chain (in the read's transaction)."""
    return audit_append(
        session,
        actor_id=staff_id,
        on_behalf_of_id=None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        payload={"grant_id": str(row.id), "staff": staff_name, "page": page},
    )


def database_now(session: Session) -> datetime:
    """PostgreSQL's ``now()``: the clock every grant is checked against."""
    return session.execute(select(func.now())).scalar_one()


def grant_dict(row: SupportGrant, now: datetime) -> dict[str, Any]:
    """A grant as the page and the API show it; ``active`` by the database's ``now``."""
    return {
        "id": row.id,
        "granted_by": row.granted_by,
        "reason": row.reason,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "revoked_by": row.revoked_by,
        "active": row.revoked_at is None and row.expires_at > now,
    }
