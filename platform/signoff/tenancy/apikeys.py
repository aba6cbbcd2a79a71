"""API keys for machine clients: create, resolve, revoke.

A key is ``sk_`` + 43 url-safe characters (256 random bits). The database keeps
its SHA-256 and the first characters for display; the secret is shown once.

Resolution happens before any tenant is bound: ``signoff.api_key_tenant(hash)``
(SECURITY DEFINER) returns the key's tenant and member only for a live key of an
active member of an active tenant. The caller then binds that tenant exactly as
a JWT's tenant claim does; nothing a client sends can name another tenant.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from signoff.audit.chain import append as audit_append
from signoff.tenancy.apikey_models import ApiKey
from signoff.tenancy.models import Membership

KEY_PREFIX = "sk_"
#: Characters of the key kept for display (``sk_`` + 8).
DISPLAY_CHARS = 11
#: ``last_used_at`` is written at most this often per key (one write, not one per call).
TOUCH_EVERY = timedelta(seconds=60)

_RESOLVE = text("SELECT tenant_id, user_id FROM signoff.api_key_tenant(:hash)")


@dataclass(frozen=True)
class KeyPrincipal:
    """Who a presented key authenticates: its tenant, member and limits."""

    tenant_id: uuid.UUID
    user_id: int
    key_id: uuid.UUID
    scopes: tuple[str, ...] | None

    def allows(self, method: str) -> bool:
        if not self.scopes:
            return True
        needed = "read" if method in ("GET", "HEAD", "OPTIONS") else "write"
        return needed in self.scopes


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def hash_key(raw: str) -> bytes:
    return hashlib.sha256(raw.encode("utf-8")).digest()


def generate() -> tuple[str, bytes, str]:
    """A new secret, its hash and its display prefix."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    return raw, hash_key(raw), raw[:DISPLAY_CHARS]


def resolve(session: Session, raw: str) -> tuple[uuid.UUID, int] | None:
    """The (tenant, user) of a live key, looked up before any tenant is bound."""
    if not looks_like_key(raw) or len(raw) > 200:
        return None
    row = session.execute(_RESOLVE, {"hash": hash_key(raw)}).first()
    if row is None:
        return None
    return uuid.UUID(str(row.tenant_id)), int(row.user_id)


def load_principal(
    session: Session, raw: str, tenant_id: uuid.UUID, user_id: int
) -> KeyPrincipal | None:
    """The key's row read under RLS once its tenant is bound; refreshes ``last_used_at``."""
    key = session.scalars(
        select(ApiKey).where(ApiKey.key_hash == hash_key(raw), ApiKey.revoked_at.is_(None))
    ).first()
    if key is None:
        return None
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at > TOUCH_EVERY:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == key.id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    return KeyPrincipal(
        tenant_id=tenant_id,
        user_id=user_id,
        key_id=key.id,
        scopes=tuple(key.scopes) if key.scopes else None,
    )


def create(
    session: Session,
    *,
    membership: Membership,
    name: str,
    scopes: Sequence[str] | None,
    expires_at: datetime | None,
    created_by: int,
) -> tuple[ApiKey, str]:
    """Store a new key for ``membership`` in the caller's transaction; (row, secret)."""
    raw, digest, prefix = generate()
    key = ApiKey(
        membership_id=membership.id,
        name=name,
        prefix=prefix,
        key_hash=digest,
        scopes=sorted(set(scopes)) if scopes else None,
        expires_at=expires_at,
        created_by=created_by,
    )
    session.add(key)
    session.flush()
    audit_append(
        session,
        actor_id=created_by,
        on_behalf_of_id=None,
        action="api_key.created",
        object_type="api_key",
        object_id=str(key.id),
        payload={
            "name": name,
            "prefix": prefix,
            "member_user_id": membership.user_id,
            "scopes": key.scopes,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return key, raw


def revoke(session: Session, key: ApiKey, *, by: int) -> bool:
    """Revoke ``key`` in the caller's transaction; False when it already was."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = datetime.now(UTC)
    key.revoked_by = by
    session.flush()
    audit_append(
        session,
        actor_id=by,
        on_behalf_of_id=None,
        action="api_key.revoked",
        object_type="api_key",
        object_id=str(key.id),
        payload={"name": key.name, "prefix": key.prefix},
    )
    return True
