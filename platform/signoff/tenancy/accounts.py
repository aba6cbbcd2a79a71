"""People: account names, e-mail and password rules, FAB user accounts and tenant
memberships. Used by sign-up, invitations and manifests alike."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from signoff.billing import quotas
from signoff.errors import N_
from signoff.extensions import current_appbuilder
from signoff.roles import MEMBER_ROLE
from signoff.security.passwords import hash_password
from signoff.tenancy.models import Membership, MembershipRole, TenantRole

PASSWORD_MIN = 10
PASSWORD_MAX = 256
#: A few of the most common passwords of at least PASSWORD_MIN characters.
_COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "0123456789",
        "1q2w3e4r5t",
        "qwertyuiop",
        "password123",
        "password1234",
        "passw0rd123",
        "iloveyou123",
        "qwerty12345",
        "administrator",
        "letmein1234",
        "welcome1234",
        "1qaz2wsx3edc",
        "abcdefghij",
        "aaaaaaaaaa",
        "changeme123",
        "football123",
        "monkey12345",
        "princess123",
        "sunshine123",
        "superman123",
        "trustno1234",
        "qwerty123456",
        "password12345",
    }
)


def normalize_email(raw: str | None) -> tuple[str | None, str | None]:
    """``(email, problem)``: the normalised address, or why it is not one."""
    value = (raw or "").strip()
    if not value:
        return None, N_("is required")
    if len(value) > 254:
        return None, N_("is too long")
    try:
        info = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return None, N_("is not a valid email address")
    return info.normalized.lower(), None


def password_problems(password: str | None, *, email: str | None = None) -> list[str]:
    """Why ``password`` is too weak: length, variety, common passwords, the email itself."""
    pw = password or ""
    if len(pw) < PASSWORD_MIN:
        return [N_("must be at least %(count)s characters", count=PASSWORD_MIN)]
    if len(pw) > PASSWORD_MAX:
        return [N_("must be at most %(count)s characters", count=PASSWORD_MAX)]
    problems = []
    lowered = pw.lower()
    classes = sum(
        [
            any(c.islower() for c in pw),
            any(c.isupper() for c in pw),
            any(c.isdigit() for c in pw),
            any(not c.isalnum() for c in pw),
        ]
    )
    # Long passphrases are strong whatever their characters; short ones need variety.
    if len(pw) < 16 and classes < 3:
        problems.append(
            N_(
                "mix at least three of lowercase, uppercase, digits and symbols, "
                "or use 16 characters or more"
            )
        )
    if lowered in _COMMON_PASSWORDS or len(set(pw)) < 4:
        problems.append(N_("is too common or repetitive"))
    if email:
        local = email.split("@", 1)[0].lower()
        if lowered == email.lower() or (len(local) >= 4 and local in lowered):
            problems.append(N_("must not contain your email address"))
    return problems


def clean_name(raw: str | None, *, limit: int) -> str | None:
    value = " ".join((raw or "").split())
    if not value or len(value) > limit:
        return None
    if any(unicodedata.category(ch)[0] == "C" for ch in value) or "<" in value or ">" in value:
        return None
    return value


def split_name(full: str) -> tuple[str, str]:
    """FAB keeps first and last names; the last word is the last name."""
    parts = full.rsplit(" ", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (full, "-")


def find_account(session: Session, email: str) -> Any | None:
    sm = current_appbuilder().sm
    user_model = sm.user_model
    return session.scalars(
        select(user_model).where(
            or_(func.lower(user_model.email) == email, func.lower(user_model.username) == email)
        )
    ).first()


def new_account(
    session: Session,
    *,
    email: str,
    name: str,
    password: str | None = None,
    password_hash: str | None = None,
) -> Any:
    """A FAB user for ``email`` with ``password`` (or a hash made earlier by
    :func:`hash_password`, e.g. at a sign-up whose address is verified later)."""
    if (password is None) == (password_hash is None):
        raise ValueError("give exactly one of password and password_hash")
    sm = current_appbuilder().sm
    member_role = sm.find_role(MEMBER_ROLE)
    if member_role is None:
        raise RuntimeError("FAB role 'Member' is missing: run `signoff db upgrade` first")
    first, last = split_name(name)
    user = sm.user_model()
    user.username = email
    user.email = email
    user.first_name = first[:64]
    user.last_name = last[:64]
    user.active = True
    user.roles = [member_role]
    user.password = password_hash if password is None else hash_password(password)
    session.add(user)
    session.flush()
    return user


def add_member(
    session: Session, *, user_id: int, roles: list[str], role_rows: Mapping[str, TenantRole]
) -> Membership:
    """A membership of the bound tenant with ``roles`` (rows in ``role_rows``)."""
    quotas.check_members(session)
    membership = Membership(user_id=user_id)
    session.add(membership)
    session.flush()
    for name in roles:
        session.add(MembershipRole(membership_id=membership.id, role_id=role_rows[name].id))
    session.flush()
    return membership
