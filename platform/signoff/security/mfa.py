"""TOTP multi-factor authentication: enrolment, step-up, recovery codes, tenant policy.

- **TOTP** (RFC 6238; SHA-1, 6 digits, 30 s steps, one step of clock drift either
  way) through pyotp. The secret is generated here, shown once as a QR code and a
  text key, and is active only once a valid code confirms it. At rest it is
  encrypted with Fernet under a key derived (HKDF-SHA256) from ``SECRET_KEY``:
  rotating ``SECRET_KEY`` therefore voids every enrolment (users re-enrol).
- **Replay**: the time step of the last accepted code is stored; a code of that
  step or an earlier one is refused (``code_reused``), so a code works once.
- **Failed codes** are counted in Redis per account and per address
  (``SIGNOFF_RATELIMIT_MFA_*``, 429 when exhausted) and in the database
  (``SIGNOFF_MFA_MAX_FAILURES`` consecutive failures lock the authenticator for
  ``SIGNOFF_MFA_LOCKOUT_SECONDS``), which holds even when Redis is down. Every
  failure and success is audited in the chain of the tenant the request is made
  in (a token without a tenant: application log only).
- **Recovery codes**: ten single-use codes, shown once at confirmation, stored
  as werkzeug password hashes; using one counts as a verification.
- **Step-up**: a verification is recorded for the current credential
  (:mod:`signoff.security.mfa_state`); a decision on a ``requires_mfa`` step needs
  one younger than ``FAB_APPROVAL_MFA_TIMEOUT``.
- **Tenant policy** ``tenant.mfa_required``: every member must pass an MFA check
  once per web login or per access token before anything else in that tenant
  (API keys, being machine credentials, are exempt).
- **Reset** by a tenant admin deletes the authenticator, its recovery codes and
  its token verifications (the person re-enrols); the API audits it.
- **Who may read what**: the MFA tables are under the policy ``secret_owner``; each
  function here binds the transaction to the one user it acts for
  (:func:`signoff.db.binding.bind_secret_owner`) before touching them
  (docs/ARCHITECTURE.md §2, "User-global secrets").

The authenticator belongs to the person, not to a tenant: an admin of any tenant
the person belongs to can reset it, and that reset is audited in that tenant's chain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from flask import current_app, has_request_context, request
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, scoped_session
from werkzeug.security import check_password_hash, generate_password_hash

from signoff import limiter
from signoff.audit.chain import append as audit_append
from signoff.db.binding import bind_secret_owner, current_tenant_id
from signoff.errors import N_, MfaError
from signoff.security import mfa_state
from signoff.security.caller import current_caller
from signoff.security.models import MfaRecoveryCode, MfaTotp
from signoff.security.totp import (
    decrypt_secret,
    encrypt_secret,
    generate_recovery_codes,
    matching_steps,
    new_secret,
    normalize_recovery_code,
    provisioning_uri,
    qr_data_uri,
)
from signoff.tenancy.models import Membership, Tenant

log = logging.getLogger(__name__)

SessionLike = Session | scoped_session[Session]

#: Recovery codes carry ~50 random bits, so a moderate KDF suffices (checking all
#: ten of a user must stay well under a second).
RECOVERY_HASH_METHOD = "pbkdf2:sha256:100000"

VERIFY_PATH = "/api/v1/security/mfa/verify"
ENROLL_PATH = "/api/v1/security/mfa/enroll"


def _store_recovery_codes(session: SessionLike, user_id: int) -> list[str]:
    session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))
    codes = generate_recovery_codes()
    for code in codes:
        session.add(
            MfaRecoveryCode(
                user_id=user_id,
                code_hash=generate_password_hash(
                    normalize_recovery_code(code), method=RECOVERY_HASH_METHOD
                ),
            )
        )
    return codes


# --- state ------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _load(session: SessionLike, user_id: int, *, lock: bool = False) -> MfaTotp | None:
    """The authenticator of ``user_id``; binds the transaction to that user's secrets
    (every function here that touches the MFA tables starts with this or binds)."""
    bind_secret_owner(session, user_id)
    stmt = select(MfaTotp).where(MfaTotp.user_id == user_id)
    if lock:
        stmt = stmt.with_for_update()
    row: MfaTotp | None = session.scalars(stmt.execution_options(populate_existing=True)).first()
    return row


def is_enrolled(session: SessionLike, user_id: int) -> bool:
    row = _load(session, user_id)
    return row is not None and row.confirmed_at is not None


def recovery_codes_left(session: SessionLike, user_id: int) -> int:
    bind_secret_owner(session, user_id)
    return int(
        session.scalar(
            select(func.count())
            .select_from(MfaRecoveryCode)
            .where(MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.used_at.is_(None))
        )
        or 0
    )


def timeout_seconds() -> int:
    return int(current_app.config.get("FAB_APPROVAL_MFA_TIMEOUT") or 1800)


def verified_at(user_id: int) -> datetime | None:
    return mfa_state.mfa_verified_at(user_id)


def is_fresh(user_id: int, timeout: int | None = None) -> bool:
    """Whether this credential passed an MFA check within ``timeout`` seconds."""
    at = verified_at(user_id)
    if at is None:
        return False
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    age = _now() - at
    return timedelta(0) <= age <= timedelta(seconds=timeout or timeout_seconds())


def status(session: SessionLike, user_id: int) -> dict[str, Any]:
    row = _load(session, user_id)
    at = verified_at(user_id)
    return {
        "enrolled": row is not None and row.confirmed_at is not None,
        "pending": row is not None and row.confirmed_at is None,
        "recovery_codes_left": recovery_codes_left(session, user_id) if row else 0,
        "verified_at": at.isoformat() if at else None,
        "fresh": is_fresh(user_id),
        "timeout": timeout_seconds(),
    }


@dataclass(frozen=True)
class Enrolment:
    """What the user needs to add the authenticator: shown once, never stored plain."""

    secret: str
    uri: str
    qr: str

    def to_dict(self) -> dict[str, str]:
        return {"secret": self.secret, "otpauth_uri": self.uri, "qr": self.qr}


def _account_name(user: Any) -> str:
    return str(getattr(user, "email", None) or getattr(user, "username", None) or user.id)


def _enrolment(secret: str, user: Any) -> Enrolment:
    uri = provisioning_uri(secret, _account_name(user), str(current_app.config["APP_NAME"]))
    return Enrolment(secret=secret, uri=uri, qr=qr_data_uri(uri))


def begin_enrolment(session: SessionLike, user: Any, *, restart: bool = True) -> Enrolment:
    """Create (or, with ``restart``, replace) the user's pending authenticator."""
    row = _load(session, int(user.id), lock=True)
    if row is not None and row.confirmed_at is not None:
        session.rollback()
        raise MfaError(
            409,
            "already_enrolled",
            N_("An authenticator is already active; a tenant admin can reset it"),
        )
    if row is not None and not restart:
        secret = decrypt_secret(row.secret_encrypted)
        session.rollback()
        return _enrolment(secret, user)
    secret = new_secret()
    if row is None:
        session.add(MfaTotp(user_id=int(user.id), secret_encrypted=encrypt_secret(secret)))
    else:
        row.secret_encrypted = encrypt_secret(secret)
        row.last_used_step = None
        row.updated_at = _now()
    session.commit()
    return _enrolment(secret, user)


def _address() -> str | None:
    return request.remote_addr if has_request_context() else None


def _method() -> str:
    return "api" if mfa_state.token_claims() is not None else "web"


def _audit(session: SessionLike, action: str, user_id: int, payload: dict[str, Any]) -> None:
    """Append to the bound tenant's chain; without a tenant, log only."""
    body = {"method": _method(), "ip_address": _address(), **payload}
    if current_tenant_id() is None:
        log.info("%s user=%s %s (no tenant bound: not in an audit chain)", action, user_id, body)
        return
    audit_append(
        session,
        actor_id=user_id,
        on_behalf_of_id=None,
        action=action,
        object_type="user",
        object_id=str(user_id),
        payload=body,
    )


def _guard(user_id: int) -> None:
    """429 while this account or address has too many recent failed codes."""
    limiter.enforce(limiter.mfa_rules(user_id), consume=False)


def _check_lock(session: SessionLike, row: MfaTotp, now: datetime) -> None:
    if row.locked_until is not None and row.locked_until > now:
        retry = max(1, int((row.locked_until - now).total_seconds()))
        session.rollback()
        raise MfaError(
            429,
            "mfa_locked",
            N_("Too many failed codes; try again in %(seconds)s seconds", seconds=retry),
            retry_after=retry,
        )


def _fail(session: SessionLike, row: MfaTotp, user_id: int, kind: str, reason: str) -> NoReturn:
    """Count and audit a failed code, commit, and refuse."""
    now = _now()
    row.failed_attempts += 1
    locked = row.failed_attempts >= int(current_app.config.get("SIGNOFF_MFA_MAX_FAILURES") or 10)
    if locked:
        lockout = int(current_app.config.get("SIGNOFF_MFA_LOCKOUT_SECONDS") or 900)
        row.locked_until = now + timedelta(seconds=lockout)
        row.failed_attempts = 0
    row.updated_at = now
    _audit(session, "mfa.failed", user_id, {"kind": kind, "reason": reason, "locked": locked})
    session.commit()
    limiter.record(limiter.mfa_rules(user_id))
    if reason == "code_reused":
        raise MfaError(
            422,
            "code_reused",
            N_("This code was already used; wait for the next code"),
            field="code",
        )
    raise MfaError(422, "invalid_code", N_("The code is not valid"), field="code")


def _accept(
    session: SessionLike, row: MfaTotp, user_id: int, secret: str, code: str, kind: str
) -> datetime:
    """Check a TOTP code against ``row`` (locked FOR UPDATE) with replay protection."""
    now = _now()
    _check_lock(session, row, now)
    steps = matching_steps(secret, code, now=now.timestamp())
    last = row.last_used_step
    fresh = [s for s in steps if last is None or s > last]
    if not fresh:
        _fail(session, row, user_id, kind, "code_reused" if steps else "invalid_code")
    row.last_used_step = min(fresh)
    row.failed_attempts = 0
    row.locked_until = None
    row.updated_at = now
    return now


def confirm_enrolment(session: SessionLike, user_id: int, code: str) -> list[str]:
    """Activate the pending authenticator with a valid code; the ten recovery codes
    (returned once). Confirming proves possession, so it counts as a verification."""
    _guard(user_id)
    row = _load(session, user_id, lock=True)
    if row is None:
        session.rollback()
        raise MfaError(404, "not_enrolling", N_("Start an enrolment first"))
    if row.confirmed_at is not None:
        session.rollback()
        raise MfaError(409, "already_enrolled", N_("The authenticator is already active"))
    at = _accept(session, row, user_id, decrypt_secret(row.secret_encrypted), code, "confirm")
    row.confirmed_at = at
    codes = _store_recovery_codes(session, user_id)
    _audit(session, "mfa.enrolled", user_id, {})
    session.flush()
    mfa_state.record_verification(user_id, at, "totp")
    session.commit()
    return codes


def _confirmed_row(session: SessionLike, user_id: int) -> MfaTotp:
    row = _load(session, user_id, lock=True)
    if row is None or row.confirmed_at is None:
        session.rollback()
        raise MfaError(
            409,
            "not_enrolled",
            N_("No active authenticator: enrol one first (POST %(path)s)", path=ENROLL_PATH),
        )
    return row


def verify_code(session: SessionLike, user_id: int, code: str) -> datetime:
    """Step-up: check a TOTP code and record the verification for this credential."""
    _guard(user_id)
    row = _confirmed_row(session, user_id)
    at = _accept(session, row, user_id, decrypt_secret(row.secret_encrypted), code, "totp")
    _audit(session, "mfa.verified", user_id, {"kind": "totp"})
    mfa_state.record_verification(user_id, at, "totp")
    session.commit()
    return at


def use_recovery_code(session: SessionLike, user_id: int, code: str) -> tuple[datetime, int]:
    """Spend one recovery code as a verification; (when, codes left)."""
    _guard(user_id)
    row = _confirmed_row(session, user_id)
    now = _now()
    _check_lock(session, row, now)
    wanted = normalize_recovery_code(code)
    unused = session.scalars(
        select(MfaRecoveryCode)
        .where(MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.used_at.is_(None))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    match = next((c for c in unused if check_password_hash(c.code_hash, wanted)), None)
    if match is None:
        _fail(session, row, user_id, "recovery", "invalid_code")
    match.used_at = now
    row.failed_attempts = 0
    row.locked_until = None
    row.updated_at = now
    left = len(unused) - 1
    _audit(session, "mfa.recovery_used", user_id, {"codes_left": left})
    mfa_state.record_verification(user_id, now, "recovery")
    session.commit()
    return now, left


def regenerate_recovery_codes(session: SessionLike, user_id: int) -> list[str]:
    """Ten new recovery codes (the old ones stop working); needs a fresh verification."""
    if not is_fresh(user_id):
        raise MfaError(
            403,
            "mfa_required",
            N_(
                "Verify a code first (POST %(path)s), then ask for new recovery codes",
                path=VERIFY_PATH,
            ),
        )
    _confirmed_row(session, user_id)
    codes = _store_recovery_codes(session, user_id)
    _audit(session, "mfa.recovery_regenerated", user_id, {})
    session.commit()
    return codes


def reset(session: SessionLike, user_id: int) -> bool:
    """Delete the authenticator, its recovery codes and its token verifications.

    The caller audits and commits; ``True`` if there was anything to delete.
    """
    existed = _load(session, user_id, lock=True) is not None
    session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))
    session.execute(delete(MfaTotp).where(MfaTotp.user_id == user_id))
    mfa_state.forget_user(session, user_id)
    return existed


def admin_reset(session: SessionLike, *, actor_id: int, user_id: int) -> bool:
    """A tenant Admin resets another active member's authenticator; audited as ``mfa.reset``.

    The caller checks that the actor is an Admin who passed MFA recently, and commits.
    Raises :class:`MfaError` for the actor's own authenticator (another admin must do
    it) and for anyone who is not an active member of the bound tenant (404).
    """
    if user_id == actor_id:
        raise MfaError(403, "self_reset", N_("Ask another admin to reset your own authenticator"))
    member = session.scalar(
        select(Membership.id).where(Membership.user_id == user_id, Membership.active.is_(True))
    )
    if member is None:
        raise MfaError(404, "not_found", N_("Not found"))
    existed = reset(session, user_id)
    # The rest of this transaction touches nobody's secrets.
    bind_secret_owner(session, None)
    audit_append(
        session,
        actor_id=actor_id,
        on_behalf_of_id=None,
        action="mfa.reset",
        object_type="user",
        object_id=str(user_id),
        payload={"had_authenticator": existed, "method": _method(), "ip_address": _address()},
    )
    return existed


# --- tenant policy: MFA at login ---------------------------------------------------------


def tenant_requires_mfa(session: SessionLike) -> bool:
    tenant_id = current_tenant_id()
    if tenant_id is None:
        return False
    resolved = current_caller()
    if (
        resolved is not None
        and resolved.tenant_id == tenant_id
        and resolved.tenant_mfa_required is not None
    ):
        # Read with the request's caller (signoff.api_caller, migration 0040), this request.
        return resolved.tenant_mfa_required
    tenant = session.get(Tenant, tenant_id)
    return bool(tenant is not None and tenant.mfa_required)


def login_verified(user_id: int) -> bool:
    """Whether this web login or access token passed an MFA check at all."""
    return verified_at(user_id) is not None
