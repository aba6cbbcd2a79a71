"""Tenant self-onboarding: one call creates the tenant, its admin and starter workflows.

:func:`sign_up` is what the public sign-up page calls (and what an API may call): it
validates everything first, then writes the tenant (a global row), the admin's FAB
user when they have no account yet, the tenant's built-in roles, the admin
membership, three starter workflows and the ``tenant.signed_up`` audit event in
**one** transaction. Logging the admin in is the caller's job.

Enumeration: a slug that is taken or reserved must be reported (the user chooses
it); whether an email has an account is not. Without a signed-in user the public
page never calls :func:`sign_up` directly: it checks the form with
:func:`check_sign_up` and continues by e-mail
(:mod:`signoff.provisioning.verification`), and :func:`sign_up` runs only once the
e-mailed link proved the address, with the password hash taken at the form.
Callers rate-limit per address.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from signoff.audit.chain import append as audit_append
from signoff.db.binding import bound_tenant
from signoff.errors import N_
from signoff.roles import ADMIN_ROLE, BUILTIN_TENANT_ROLES
from signoff.tenancy.accounts import (
    add_member,
    clean_name,
    find_account,
    new_account,
    normalize_email,
    password_problems,
)
from signoff.tenancy.models import Tenant
from signoff.tenancy.models import TenantRole as Role
from signoff.workflow import registry

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])$")
#: Slugs that would collide with the platform's own paths or invite impersonation.
RESERVED_SLUGS = frozenset(
    {
        "about",
        "account",
        "accounts",
        "admin",
        "administrator",
        "api",
        "app",
        "apps",
        "assets",
        "auth",
        "billing",
        "blog",
        "dashboard",
        "default",
        "demo",
        "docs",
        "health",
        "help",
        "home",
        "invite",
        "invites",
        "login",
        "logout",
        "mail",
        "me",
        "mfa",
        "new",
        "null",
        "operator",
        "operators",
        "platform",
        "pricing",
        "ready",
        "register",
        "root",
        "security",
        "settings",
        "signoff",
        "signup",
        "sign-up",
        "static",
        "status",
        "support",
        "system",
        "team",
        "tenant",
        "tenants",
        "test",
        "undefined",
        "user",
        "users",
        "www",
    }
)
#: Extra roles a new tenant starts with, beyond the built-in ones.
STARTER_ROLES = ("Senior_Manager",)
#: The specification's expense workflow, with a field schema for the request form.
EXPENSE_APPROVAL: dict[str, Any] = {
    "name": "Expense Approval",
    "description": "Multi-step expense approval workflow",
    "steps": [
        {
            "name": "Manager Approval",
            "required_role": "Manager",
            "requires_mfa": False,
            "auto_approve_threshold": None,
        },
        {
            "name": "Finance Approval",
            "required_role": "Finance_Manager",
            "requires_mfa": True,
            "auto_approve_threshold": 1000,
        },
    ],
    "initial_state": "pending_manager_approval",
    "approval_required_states": ["pending_manager_approval", "pending_finance_approval"],
    "auto_approve_conditions": {"amount_threshold": 100, "user_roles": ["Senior_Manager"]},
    "fields": [
        {"name": "amount", "type": "decimal", "required": True, "min": 0, "label": "Amount"},
        {
            "name": "description",
            "type": "text",
            "required": True,
            "max_length": 2000,
            "label": "What was it for?",
        },
        {"name": "spent_on", "type": "date", "label": "Date of the expense"},
    ],
}

PURCHASE_REQUEST: dict[str, Any] = {
    "name": "Purchase Request",
    "description": "Buy something for the organisation",
    "steps": [
        {"name": "Manager Approval", "required_role": "Manager", "requires_mfa": False},
        {
            "name": "Finance Approval",
            "required_role": "Finance_Manager",
            "requires_mfa": False,
            "auto_approve_threshold": 500,
            "sla_hours": 72,
        },
    ],
    "initial_state": "pending_manager_approval",
    "approval_required_states": ["pending_manager_approval", "pending_finance_approval"],
    "fields": [
        {"name": "item", "type": "string", "required": True, "max_length": 200, "label": "Item"},
        {"name": "amount", "type": "decimal", "required": True, "min": 0, "label": "Amount"},
        {"name": "vendor", "type": "string", "max_length": 200, "label": "Vendor"},
        {"name": "justification", "type": "text", "max_length": 4000, "label": "Justification"},
    ],
}

ACCESS_REQUEST: dict[str, Any] = {
    "name": "Access Request",
    "description": "Access to a system, reviewed by a manager then an administrator",
    "steps": [
        {"name": "Manager Approval", "required_role": "Manager", "requires_mfa": False},
        {"name": "Administrator Review", "required_role": ADMIN_ROLE, "requires_mfa": True},
    ],
    "initial_state": "pending_manager_approval",
    "approval_required_states": ["pending_manager_approval", "pending_admin_review"],
    "fields": [
        {
            "name": "system",
            "type": "string",
            "required": True,
            "max_length": 120,
            "label": "System",
        },
        {
            "name": "access_level",
            "type": "choice",
            "required": True,
            "choices": ["read", "write", "admin"],
            "label": "Access level",
        },
        {"name": "until", "type": "date", "label": "Needed until"},
        {"name": "reason", "type": "text", "required": True, "max_length": 2000, "label": "Reason"},
    ],
}

STARTER_WORKFLOWS: dict[str, dict[str, Any]] = {
    "expense_approval": EXPENSE_APPROVAL,
    "purchase_request": PURCHASE_REQUEST,
    "access_request": ACCESS_REQUEST,
}


class SignUpError(ValueError):
    """The sign-up was refused; ``errors`` maps a form field to its messages."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = {k: list(v) for k, v in errors.items()}
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in self.errors.items()))

    @property
    def code(self) -> str:
        return "credentials" if "credentials" in self.errors else "invalid"


@dataclass(frozen=True)
class SignUpResult:
    tenant_id: uuid.UUID
    slug: str
    user_id: int
    created_user: bool


# --- validation -------------------------------------------------------------------------


def normalize_slug(raw: str | None) -> str:
    return (raw or "").strip().lower()


def slug_problems(slug: str) -> list[str]:
    """Why ``slug`` cannot be used (format and reserved words; not uniqueness)."""
    if not slug:
        return [N_("is required")]
    if not SLUG_RE.fullmatch(slug):
        return [
            N_(
                "use 3-40 lowercase letters, digits and hyphens, starting and ending with a "
                "letter or digit"
            )
        ]
    if "--" in slug:
        return [N_("must not contain two hyphens in a row")]
    if slug in RESERVED_SLUGS:
        return [N_("is reserved; choose another")]
    return []


def suggest_slug(name: str) -> str:
    """A slug derived from an organisation name (ASCII, hyphenated, at most 40 chars)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return re.sub(r"-{2,}", "-", slug)[:40].strip("-")


def slug_taken(session: Session, slug: str) -> bool:
    return session.scalar(select(func.count()).where(Tenant.slug == slug)) != 0


# --- the sign-up itself -------------------------------------------------------------------


def create_account_or_verify(
    session: Session,
    *,
    email: str,
    name: str | None,
    password: str | None = None,
    password_hash: str | None = None,
) -> tuple[Any, bool]:
    """A new account for ``email``. An existing account is never signed in from here:
    sign-up must not become a password-guessing endpoint beside the rate-limited login,
    so its owner is asked to sign in first (then sign-up reuses the signed-in account).
    Only a verified address reaches this, so saying so reveals nothing new."""
    if find_account(session, email) is not None:
        raise SignUpError(
            {
                "email": [
                    "This email already has a Signoff account: sign in first, then create "
                    "the organisation from the sign-up page."
                ]
            }
        )
    user = new_account(
        session, email=email, name=name or email, password=password, password_hash=password_hash
    )
    return user, True


@dataclass(frozen=True)
class SignUpForm:
    """A checked sign-up form of someone not signed in, before the address is proved."""

    organisation: str
    slug: str
    admin_name: str
    email: str


def check_sign_up(
    session: Session,
    *,
    organisation: str | None,
    slug: str | None,
    admin_name: str | None,
    email: str | None,
    password: str | None,
) -> SignUpForm:
    """Every check of the form that does not depend on whether ``email`` has an account
    (a taken slug is the chooser's business); raises :class:`SignUpError`."""
    errors: dict[str, list[str]] = {}
    org = clean_name(organisation, limit=120)
    if org is None:
        errors["organisation"] = [N_("is required (at most 120 characters, no markup)")]
    wanted = normalize_slug(slug)
    if problems := slug_problems(wanted):
        errors["slug"] = problems
    name = clean_name(admin_name, limit=120)
    if name is None:
        errors["admin_name"] = [N_("is required (at most 120 characters, no markup)")]
    clean_email, problem = normalize_email(email)
    if problem:
        errors["email"] = [problem]
    if problems := password_problems(password, email=clean_email):
        errors["password"] = problems
    if not errors and slug_taken(session, wanted):
        errors["slug"] = [N_("is already taken; choose another")]
    session.rollback()
    if errors:
        raise SignUpError(errors)
    assert org is not None and name is not None and clean_email is not None
    return SignUpForm(organisation=org, slug=wanted, admin_name=name, email=clean_email)


def sign_up(
    session: Session,
    *,
    organisation: str | None,
    slug: str | None,
    admin_name: str | None = None,
    email: str | None = None,
    password: str | None = None,
    user: Any | None = None,
    ip_address: str | None = None,
    plan: str = "free",
    password_hash: str | None = None,
    audit_extra: Mapping[str, Any] | None = None,
) -> SignUpResult:
    """Create a tenant with ``user`` (signed in already) or a new/verified account as its
    admin, and the starter workflows; all in one transaction. Raises :class:`SignUpError`.

    ``password_hash`` replaces ``password`` when the address was verified by e-mail
    (the form's password was checked and hashed then); ``audit_extra`` joins the
    ``tenant.signed_up`` payload. Anything the caller flushed before (the e-mailed
    link marked used) commits or rolls back with the sign-up."""
    errors: dict[str, list[str]] = {}
    org = clean_name(organisation, limit=120)
    if org is None:
        errors["organisation"] = [N_("is required (at most 120 characters, no markup)")]
    wanted = normalize_slug(slug)
    if problems := slug_problems(wanted):
        errors["slug"] = problems
    clean_email: str | None = None
    name: str | None = None
    if user is None:
        name = clean_name(admin_name, limit=120)
        if name is None:
            errors["admin_name"] = [N_("is required (at most 120 characters, no markup)")]
        clean_email, problem = normalize_email(email)
        if problem:
            errors["email"] = [problem]
        if password_hash is None and (problems := password_problems(password, email=clean_email)):
            errors["password"] = problems
    if errors:
        raise SignUpError(errors)
    if slug_taken(session, wanted):
        raise SignUpError({"slug": [N_("is already taken; choose another")]})

    try:
        created = False
        if user is None:
            assert clean_email is not None
            user, created = create_account_or_verify(
                session,
                email=clean_email,
                name=name,
                password=None if password_hash else password,
                password_hash=password_hash,
            )
        user_id = int(user.id)
        tenant = Tenant(slug=wanted, name=org, plan=plan)
        session.add(tenant)
        session.flush()
        tenant_id = tenant.id
        with bound_tenant(tenant_id, session):
            role_rows: dict[str, Role] = {}
            for role_name in (*BUILTIN_TENANT_ROLES, *STARTER_ROLES):
                role_rows[role_name] = Role(name=role_name)
                session.add(role_rows[role_name])
            session.flush()
            add_member(session, user_id=user_id, roles=[ADMIN_ROLE], role_rows=role_rows)
            for key, raw in STARTER_WORKFLOWS.items():
                registry.add_version(session, key=key, raw=raw, source="tenant", created_by=user_id)
            audit_append(
                session,
                actor_id=user_id,
                on_behalf_of_id=None,
                action="tenant.signed_up",
                object_type="tenant",
                object_id=str(tenant_id),
                payload={
                    "slug": wanted,
                    "name": org,
                    "plan": plan,
                    "new_account": created,
                    "workflows": sorted(STARTER_WORKFLOWS),
                    "ip_address": ip_address,
                    **dict(audit_extra or {}),
                },
            )
            session.flush()
        session.commit()
    except SignUpError:
        session.rollback()
        raise
    except IntegrityError as exc:
        # A concurrent sign-up took the slug (or the email) between the check and the insert.
        session.rollback()
        if "uq_tenant_slug" in str(exc.orig):
            raise SignUpError({"slug": [N_("is already taken; choose another")]}) from None
        raise SignUpError(
            {"credentials": ["We could not sign you up with this email and password."]}
        ) from None
    except Exception:
        session.rollback()
        raise
    return SignUpResult(tenant_id=tenant_id, slug=wanted, user_id=user_id, created_user=created)
