"""Invitations: a tenant admin invites an email address into the tenant with some roles.

The link carries a token signed with ``SECRET_KEY`` (itsdangerous
``URLSafeTimedSerializer``, salt ``signoff-invite``) holding the tenant id, the
invitation id and a random nonce. The database keeps only the token's SHA-256, so
a database reader cannot accept an invitation, and the row makes the link single
use, revocable and listable. A token is accepted only when its signature and age
are valid *and* its hash matches a pending, unexpired row of the tenant it names.

Accepting binds the tenant the (signed) token names: the invitee is not a member
yet, so nothing else could. An existing account (same email) accepts after signing
in (:func:`accept_invitation`). The invitation link alone never creates an
account, because the admin who made it may hold it (it is shown to them when the
installation cannot send mail): a person without an account asks for an e-mail,
and the link in it (:mod:`signoff.tenancy.account_tokens`) proves the address before
:func:`join_verified` creates the account with the invited email as user name.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import (
    DateTime,
    Index,
    Integer,
    String,
    UniqueConstraint,
    delete,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, Session, mapped_column

from signoff.audit.chain import append as audit_append
from signoff.billing import quotas
from signoff.db.base import Base, TenantOwned, created_at, tenant_fk, tenant_pk, tenant_row_id
from signoff.db.binding import bound_tenant
from signoff.errors import N_
from signoff.extensions import current_appbuilder
from signoff.tenancy.access import require_tenant
from signoff.tenancy.accounts import clean_name, new_account, password_problems
from signoff.tenancy.models import Membership, MembershipRole, Tenant, TenantRole

SALT = "signoff-invite"
#: Default lifetime of an invitation link (``SIGNOFF_INVITE_MAX_AGE`` seconds overrides).
DEFAULT_MAX_AGE = 7 * 24 * 3600


class Invitation(TenantOwned, Base):
    """A pending, accepted or revoked invitation of one email into the tenant."""

    __tablename__ = "invitation"
    __table_args__ = (
        tenant_pk("invitation"),
        UniqueConstraint("tenant_id", "token_hash", name="uq_invitation_token"),
        tenant_fk("invitation"),
        Index("ix_invitation_email", "tenant_id", "email"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(64)), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_by: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    invited_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at()

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= datetime.now(UTC):
            return "expired"
        return "pending"


class InviteError(ValueError):
    """An invitation cannot be created or accepted; ``field`` names the form field."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True)
class InviteInfo:
    """What an invitation page shows: plain values, no ORM rows across tenant bindings."""

    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_name: str
    tenant_status: str
    invitation_id: uuid.UUID
    email: str
    roles: tuple[str, ...]


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def max_age() -> int:
    return int(current_app.config.get("SIGNOFF_INVITE_MAX_AGE") or DEFAULT_MAX_AGE)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def create_invitation(
    session: Session, *, invited_by: int, email: str, roles: list[str]
) -> tuple[Invitation, str]:
    """A new invitation in the bound tenant (flushed, not committed) and its token.

    Pending invitations of the same email are revoked: the newest link is the only one.
    """
    tenant_id = require_tenant()
    known = set(session.scalars(select(TenantRole.name)))
    unknown = sorted(set(roles) - known)
    if unknown:
        raise InviteError(
            "unknown_role", N_("Unknown role(s): %(roles)s", roles=", ".join(unknown)), "roles"
        )
    if not roles:
        raise InviteError("roles_required", N_("Choose at least one role"), "roles")
    sm = current_appbuilder().sm
    account = sm.find_user(email=email)
    if account is not None:
        member = session.scalars(
            select(Membership).where(Membership.user_id == account.id, Membership.active.is_(True))
        ).first()
        if member is not None:
            raise InviteError("already_member", N_("This person is already a member"), "email")
    for old in session.scalars(
        select(Invitation).where(
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    ):
        old.revoked_at = _now()
    invitation_id = uuid.uuid4()
    token = _serializer().dumps(
        {"t": str(tenant_id), "i": str(invitation_id), "n": secrets.token_urlsafe(16)}
    )
    row = Invitation(
        id=invitation_id,
        email=email,
        roles=sorted(set(roles)),
        token_hash=token_hash(token),
        expires_at=_now() + timedelta(seconds=max_age()),
        invited_by=invited_by,
    )
    session.add(row)
    session.flush()
    return row, token


def _decode(token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    try:
        data = _serializer().loads(token, max_age=max_age())
        return uuid.UUID(str(data["t"])), uuid.UUID(str(data["i"]))
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


def _pending(session: Session, token: str, invitation_id: uuid.UUID) -> Invitation | None:
    row = session.get(Invitation, invitation_id, populate_existing=True)
    if row is None or not hmac.compare_digest(row.token_hash, token_hash(token)):
        return None
    if row.status != "pending":
        return None
    return row


def open_invitation(session: Session, token: str) -> InviteInfo | None:
    """The pending invitation ``token`` stands for, or ``None`` (bad, used, revoked, old)."""
    decoded = _decode(token)
    if decoded is None:
        return None
    tenant_id, invitation_id = decoded
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        return None
    with bound_tenant(tenant_id, session):
        row = _pending(session, token, invitation_id)
        info = None if row is None else _info(tenant, row)
    session.rollback()
    return info


def _pending_by_id(session: Session, invitation_id: uuid.UUID) -> Invitation | None:
    row = session.get(Invitation, invitation_id, populate_existing=True)
    return row if row is not None and row.status == "pending" else None


def invite_info(
    session: Session, tenant_id: uuid.UUID, invitation_id: uuid.UUID
) -> InviteInfo | None:
    """The pending invitation ``invitation_id`` of ``tenant_id`` (named by a verified
    e-mail link, not by the invitation token), or ``None``."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        return None
    with bound_tenant(tenant_id, session):
        row = _pending_by_id(session, invitation_id)
        info = None if row is None else _info(tenant, row)
    session.rollback()
    return info


def _info(tenant: Tenant, row: Invitation) -> InviteInfo:
    return InviteInfo(
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        tenant_name=tenant.name,
        tenant_status=tenant.status,
        invitation_id=row.id,
        email=row.email,
        roles=tuple(row.roles),
    )


def _join(
    session: Session,
    info: InviteInfo,
    row: Invitation,
    user: Any,
    *,
    created: bool,
    extra: dict[str, Any] | None = None,
) -> None:
    """The membership with exactly the invited roles, the invitation marked used and
    the ``member.joined`` event, in the bound tenant's open transaction."""
    membership = session.scalars(select(Membership).where(Membership.user_id == user.id)).first()
    if membership is None or not membership.active:
        quotas.check_members(session)
    if membership is None:
        membership = Membership(user_id=user.id)
        session.add(membership)
        session.flush()
    membership.active = True
    roles = {r.name: r for r in session.scalars(select(TenantRole))}
    # Exactly the invited roles: re-inviting a deactivated member must not
    # bring back the roles they had before.
    session.execute(delete(MembershipRole).where(MembershipRole.membership_id == membership.id))
    for role_name in sorted(set(row.roles)):
        role = roles.get(role_name)
        if role is not None:
            session.add(MembershipRole(membership_id=membership.id, role_id=role.id))
    row.accepted_at = _now()
    row.accepted_by = user.id
    audit_append(
        session,
        actor_id=user.id,
        on_behalf_of_id=None,
        action="member.joined",
        object_type="membership",
        object_id=str(membership.id),
        payload={
            "invitation": str(row.id),
            "roles": list(row.roles),
            "invited_by": row.invited_by,
            "new_account": created,
            **(extra or {}),
        },
    )
    session.flush()


def accept_invitation(session: Session, token: str, *, user: Any) -> tuple[InviteInfo, Any]:
    """A signed-in ``user`` whose e-mail is the invited one accepts, in one transaction:
    the membership with the invited roles, the invitation marked used, the audit event.

    Nobody else accepts with the invitation link alone: a person without an account
    proves the address first by an e-mailed link (:func:`join_verified`), since
    whoever created the invitation may hold its link."""
    info = open_invitation(session, token)
    if info is None:
        raise InviteError("invalid", N_("This invitation link is invalid, used or expired"))
    if info.tenant_status != "active":
        raise InviteError("suspended", N_("This organisation is suspended"))
    if user is None:
        raise InviteError("sign_in", N_("Sign in, or continue by e-mail, to accept"))
    if (user.email or "").lower() != info.email:
        raise InviteError(
            "wrong_account",
            N_(
                "This invitation is for %(email)s; sign in with that account to accept",
                email=info.email,
            ),
        )
    try:
        with bound_tenant(info.tenant_id, session):
            row = _pending(session, token, info.invitation_id)
            if row is None:
                raise InviteError("invalid", N_("This invitation link is invalid, used or expired"))
            _join(session, info, row, user, created=False)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return info, user


def join_verified(
    session: Session,
    info: InviteInfo,
    *,
    name: str | None,
    password: str | None,
    before_commit: Any = None,
) -> Any:
    """A new account for the invited address, proved by an e-mailed link, joins the
    tenant: account, membership, invitation used and audit event in one transaction.
    ``before_commit(session)`` runs inside it (the caller marks its link used)."""
    if info.tenant_status != "active":
        raise InviteError("suspended", N_("This organisation is suspended"))
    clean = clean_name(name, limit=120)
    if clean is None:
        raise InviteError("invalid_name", N_("Your name is required"), "name")
    if problems := password_problems(password, email=info.email):
        raise InviteError(
            "weak_password", N_("Password %(problems)s", problems=problems), "password"
        )
    assert password is not None
    sm = current_appbuilder().sm
    try:
        if sm.find_user(email=info.email) is not None:
            raise InviteError(
                "account_exists",
                "You already have an account: sign in, then open the invitation again",
            )
        if before_commit is not None:
            before_commit(session)
        user = new_account(session, email=info.email, name=clean, password=password)
        with bound_tenant(info.tenant_id, session):
            row = _pending_by_id(session, info.invitation_id)
            if row is None or row.email != info.email:
                raise InviteError("invalid", N_("This invitation is no longer valid"))
            _join(session, info, row, user, created=True, extra={"email_verified": True})
        session.commit()
    except Exception:
        session.rollback()
        raise
    return user
