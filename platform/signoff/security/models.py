"""MFA tables: one authenticator per person, not per tenant.

These are global tables keyed by ``ab_user.id`` (like FAB's ``ab_*`` tables they
hold no tenant rows): a person who belongs to several tenants has one TOTP
secret, one set of recovery codes, and step-up verifications tied to the JWT
(``jti``) they were made with. The secret is stored encrypted (Fernet, key
derived from ``SECRET_KEY``; see :mod:`signoff.security.mfa`), recovery codes
only as password hashes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from signoff.db.base import Base, created_at, uuid_pk


def _user_fk(table: str) -> ForeignKey:
    return ForeignKey("ab_user.id", name=f"fk_{table}_user", ondelete="CASCADE")


class MfaTotp(Base):
    """A person's TOTP authenticator: active once ``confirmed_at`` is set."""

    __tablename__ = "mfa_totp"
    __table_args__ = (PrimaryKeyConstraint("user_id", name="pk_mfa_totp"),)

    user_id: Mapped[int] = mapped_column(Integer, _user_fk("mfa_totp"))
    #: Fernet token of the base32 secret.
    secret_encrypted: Mapped[str] = mapped_column(String(512), nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The TOTP time step (unix time // 30) of the last accepted code: a code of
    #: this step or an earlier one is never accepted again (RFC 6238 §5.2).
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    #: Consecutive failed codes; a database-side backstop that holds even when the
    #: Redis rate limiter is unreachable and fails open.
    failed_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class MfaRecoveryCode(Base):
    """One single-use recovery code, stored only as a password hash."""

    __tablename__ = "mfa_recovery_code"
    __table_args__ = (
        PrimaryKeyConstraint("id", name="pk_mfa_recovery_code"),
        Index("ix_mfa_recovery_code_user", "user_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[int] = mapped_column(Integer, _user_fk("mfa_recovery_code"), nullable=False)
    code_hash: Mapped[str] = mapped_column(String(256), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()


class MfaTokenVerification(Base):
    """A step-up verification made with one access token (API/JWT callers).

    Keyed by the token's ``jti``: a later token starts unverified, and the row
    dies with the token (``expires_at`` is the token's own expiry).
    """

    __tablename__ = "mfa_token_verification"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "jti", name="pk_mfa_token_verification"),
        Index("ix_mfa_token_verification_expires", "expires_at"),
    )

    user_id: Mapped[int] = mapped_column(Integer, _user_fk("mfa_token_verification"))
    jti: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    method: Mapped[str] = mapped_column(String(16), nullable=False, server_default="totp")
