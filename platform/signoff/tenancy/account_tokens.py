"""Links that prove an e-mail address: sign-up verification, joining by invitation,
password reset and a new address for an existing account (docs/ARCHITECTURE.md §9,
"Links that act").

A token is signed with ``SECRET_KEY`` (itsdangerous ``URLSafeTimedSerializer``, one
salt per purpose, so a link of one kind is never accepted as another) and carries the
row id of ``account_token`` and a random nonce. The table keeps only the token's
SHA-256, so a database reader cannot use a link; the row makes it expiring
(``expires_at``, and the signature's own age), single use (``used_at``, set in the
transaction that acts on it, with a conditional ``UPDATE`` so two concurrent uses
cannot both win) and revocable (a newer link of the same purpose and address, or a
password change, ends the older ones).

``account_token`` is a global table, like FAB's ``ab_*`` and the MFA tables: a sign-up
or a reset has no tenant yet. An invitation's tenant and invitation id travel in
``payload``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import (
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    cast,
    delete,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from signoff.db.base import Base, created_at, uuid_pk

SIGNUP = "signup"
INVITE = "invite"
RESET = "reset"
EMAIL_CHANGE = "email_change"
PURPOSES = (SIGNUP, INVITE, RESET, EMAIL_CHANGE)

_SALTS = {
    SIGNUP: "signoff-verify-signup-v1",
    INVITE: "signoff-verify-invite-v1",
    RESET: "signoff-password-reset-v1",
    EMAIL_CHANGE: "signoff-email-change-v1",
}
#: Lifetimes in seconds; ``SIGNOFF_VERIFY_LINK_MAX_AGE`` (sign-up, invitation) and
#: ``SIGNOFF_RESET_LINK_MAX_AGE`` (password reset) override them.
DEFAULT_VERIFY_MAX_AGE = 24 * 3600
DEFAULT_RESET_MAX_AGE = 3600


class AccountToken(Base):
    """One e-mailed link: its purpose, the address it proves, its state."""

    __tablename__ = "account_token"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_account_token"),
        UniqueConstraint("token_hash", name="uq_account_token_token_hash"),
        Index("ix_account_token_purpose_email", "purpose", "email"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    #: The account a reset or e-mail change link is for (``None`` for sign-up and
    #: invitation links).
    user_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TokenError(Exception):
    """The link cannot be used: ``invalid`` (404: forged, tampered, unknown),
    ``expired``, ``used`` or ``withdrawn`` (410: it was real once; ``withdrawn``: what it
    was for, an invitation, is gone)."""

    STATUS = {"invalid": 404, "expired": 410, "used": 410, "withdrawn": 410}
    MESSAGES = {
        "invalid": "This link is not valid. Check that you copied all of it.",
        "expired": "This link has expired. Ask for a new one.",
        "used": "This link was already used. Ask for a new one if you still need it.",
        "withdrawn": "The invitation behind this link was used, revoked or has expired.",
    }

    def __init__(self, code: str) -> None:
        super().__init__(self.MESSAGES[code])
        self.code = code
        self.message = self.MESSAGES[code]
        self.status = self.STATUS[code]


@dataclass(frozen=True)
class Claim:
    """What a valid link stands for (plain values, no ORM row)."""

    id: uuid.UUID
    purpose: str
    email: str
    user_id: int | None
    payload: dict[str, Any] = field(default_factory=dict)


def max_age(purpose: str) -> int:
    cfg = current_app.config
    if purpose == RESET:
        return int(cfg.get("SIGNOFF_RESET_LINK_MAX_AGE") or DEFAULT_RESET_MAX_AGE)
    return int(cfg.get("SIGNOFF_VERIFY_LINK_MAX_AGE") or DEFAULT_VERIFY_MAX_AGE)


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt=_SALTS[purpose])


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def issue(
    session: Session,
    *,
    purpose: str,
    email: str,
    user_id: int | None = None,
    payload: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> str:
    """A new link's token (the row is flushed, not committed). Older unused links of
    the same purpose for the same address (and invitation) stop working, and lose the
    secrets of their payload (a sign-up's password hash) at once."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}")
    body = dict(payload or {})
    older = update(AccountToken).where(
        AccountToken.purpose == purpose,
        AccountToken.email == email,
        AccountToken.used_at.is_(None),
    )
    if purpose == INVITE:
        older = older.where(AccountToken.payload["invitation"].astext == str(body["invitation"]))
    session.execute(older.values(used_at=_now(), payload=_without_secrets(AccountToken.payload)))
    row_id = uuid.uuid4()
    token = str(_serializer(purpose).dumps({"i": str(row_id), "n": secrets.token_urlsafe(16)}))
    session.add(
        AccountToken(
            id=row_id,
            purpose=purpose,
            email=email,
            user_id=user_id,
            payload=body,
            token_hash=token_hash(token),
            ip_address=(ip_address or None) and ip_address[:64],
            expires_at=_now() + timedelta(seconds=max_age(purpose)),
        )
    )
    session.flush()
    return token


#: Payload keys that must not outlive the link's use: dropped when it is used or
#: superseded; the clean-up job deletes expired rows (``signoff.jobs.cleanup``).
SECRET_PAYLOAD_KEYS = ("password_hash",)


def _without_secrets(payload: Any) -> Any:
    """SQL: ``payload - 'password_hash'`` (jsonb minus a key)."""
    for key in SECRET_PAYLOAD_KEYS:
        payload = payload.op("-", return_type=JSONB)(cast(literal(key), Text))
    return payload


def _decode(purpose: str, token: str) -> uuid.UUID:
    try:
        data = _serializer(purpose).loads(token, max_age=max_age(purpose))
        return uuid.UUID(str(data["i"]))
    except SignatureExpired:
        raise TokenError("expired") from None
    except (BadSignature, KeyError, TypeError, ValueError):
        raise TokenError("invalid") from None


def _check(row: AccountToken | None, token: str, purpose: str) -> AccountToken:
    if (
        row is None
        or row.purpose != purpose
        or not hmac.compare_digest(row.token_hash, token_hash(token))
    ):
        raise TokenError("invalid")
    if row.used_at is not None:
        raise TokenError("used")
    if row.expires_at <= _now():
        raise TokenError("expired")
    return row


def _claim(row: AccountToken) -> Claim:
    return Claim(
        id=row.id,
        purpose=row.purpose,
        email=row.email,
        user_id=row.user_id,
        payload=dict(row.payload or {}),
    )


def peek(session: Session, purpose: str, token: str) -> Claim:
    """The claim of a usable link, without using it (a GET, which must change nothing)."""
    row_id = _decode(purpose, token)
    row = session.get(AccountToken, row_id, populate_existing=True)
    return _claim(_check(row, token, purpose))


def consume(session: Session, purpose: str, token: str) -> Claim:
    """Use the link in the caller's transaction (flushed, not committed): the row is
    locked, checked and marked used, and secrets in its payload are dropped. If the
    caller rolls back, the link stays usable."""
    row_id = _decode(purpose, token)
    row = session.scalars(
        select(AccountToken)
        .where(AccountToken.id == row_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    claim = _claim(_check(row, token, purpose))
    assert row is not None
    row.used_at = _now()
    row.payload = {k: v for k, v in claim.payload.items() if k not in SECRET_PAYLOAD_KEYS}
    session.flush()
    return claim


#: Used (or superseded) links are kept this long, so a second click still says "already
#: used" rather than "not valid"; their payload holds no secret by then.
USED_RETENTION = timedelta(days=1)


def purge(session: Session, now: datetime | None = None) -> int:
    """Delete links that expired or were used more than :data:`USED_RETENTION` ago
    (the caller commits); returns how many."""
    now = now or _now()
    gone = session.execute(
        delete(AccountToken)
        .where(
            or_(
                AccountToken.expires_at <= now,
                AccountToken.used_at < now - USED_RETENTION,
            )
        )
        .returning(AccountToken.id)
    ).all()
    return len(gone)


def revoke_for_user(session: Session, user_id: int, purpose: str = RESET) -> None:
    """End every unused link of ``purpose`` for ``user_id`` (a password just changed)."""
    session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user_id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
        )
        .values(used_at=_now())
    )
