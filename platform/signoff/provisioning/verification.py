"""Continue by e-mail: sign-up, joining by invitation and forgotten passwords.

Whether an address has an account must not show in any answer (README, "Accounts and
e-mail"). So the pages answer every well-formed request the same way ("check your
e-mail"), and what differs happens in an e-mail only the address's owner reads:

- **sign-up** (no one signed in): an existing account gets "you already have an
  account: sign in, or reset your password"; a new address gets a verification link.
  The organisation and the account are created only when that link is used
  (:func:`complete_signup`), so an unverified account never exists and cannot act.
- **invitation** (no one signed in): an existing account gets "sign in, then accept";
  a new address gets a link to choose a name and password (:func:`complete_join`).
  The invitation link itself never creates an account: the admin may hold it.
- **forgotten password**: an existing, active account gets a reset link; an unknown
  address gets nothing (the page says the same).
- **a new e-mail address** (signed in, with the current password): the new address
  gets a link that makes it the account's address when used (:func:`complete_email_change`,
  audited as ``account.email_changed`` in every organisation of the account, the old
  address told); an address that already has an account gets a mail saying so and no
  link, so the page does not tell whether it is taken.

The request thread only checks the form and the rate limits and hands the e-mail
address to :func:`later`; the lookup, the link and the SMTP conversation run on a
small background pool, so the answer takes the same work and time whichever case
it is. The mail goes through :func:`signoff.notifications.email.send_email`
(``SIGNOFF_SMTP_URL``; the quick start's ``/dev/mail`` page shows it). With no
``SIGNOFF_SMTP_URL`` the pages answer 503 saying that this installation cannot send
e-mail (:class:`MailUnavailable`): never a silent "check your e-mail". A mail that
fails to send is logged as an error.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from flask import Flask, current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy.orm import Session

from signoff.audit.chain import append as audit_append
from signoff.db.binding import bound_tenant
from signoff.errors import N_
from signoff.extensions import db
from signoff.limiter import Rule, account_key, address_key, config_limit, enforce
from signoff.notifications.email import send_email
from signoff.notifications.links import base_url
from signoff.provisioning.credentials import PasswordError, change_attempts_left
from signoff.provisioning.onboarding import SignUpError, SignUpForm, SignUpResult, sign_up
from signoff.security.passwords import hash_password
from signoff.tenancy import account_tokens as tokens
from signoff.tenancy.account_audit import audit_account_event
from signoff.tenancy.account_tokens import Claim, TokenError
from signoff.tenancy.accounts import find_account, normalize_email
from signoff.tenancy.invites import InviteInfo, invite_info, join_verified, open_invitation

log = logging.getLogger(__name__)

SCOPE_MAIL_ADDRESS = "account-mail-address"
SCOPE_MAIL_EMAIL = "account-mail-email"
SCOPE_LINK = "account-link"


class MailUnavailable(Exception):
    """This installation has no mail server (``SIGNOFF_SMTP_URL``): answered with 503."""

    message = (
        "This Signoff installation cannot send e-mail yet, so it cannot confirm your "
        "address. Ask its operator to set SIGNOFF_SMTP_URL."
    )


def mail_ready() -> bool:
    return bool(current_app.config.get("SIGNOFF_SMTP_URL"))


def require_mail() -> None:
    if not mail_ready():
        raise MailUnavailable()


# --- rate limits ----------------------------------------------------------------------------


def mail_budget(email: str) -> None:
    """Count one e-mail asked for, per client address and per address written to
    (429 when either is spent): sign-up, invitation and reset requests alike, for
    known and unknown addresses alike."""
    rules = []
    per_client = config_limit("SIGNOFF_RATELIMIT_ACCOUNT_MAIL_ADDRESS")
    if per_client:
        rules.append(Rule(SCOPE_MAIL_ADDRESS, per_client, address_key()))
    per_email = config_limit("SIGNOFF_RATELIMIT_ACCOUNT_MAIL_EMAIL")
    if per_email:
        rules.append(Rule(SCOPE_MAIL_EMAIL, per_email, account_key(email)))
    enforce(rules)


def link_budget() -> None:
    """Count one use (or guess) of an e-mailed link from this client address."""
    limit = config_limit("SIGNOFF_RATELIMIT_ACCOUNT_LINK")
    if limit:
        enforce([Rule(SCOPE_LINK, limit, address_key())])


# --- sending after the answer ---------------------------------------------------------------

#: One thread: account e-mails are few, and in order (a newer link ends the older ones).
_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signoff-account-mail")
_running: set[Future[None]] = set()
_running_lock = threading.Lock()


def _run(app: Flask, job: Callable[..., None], args: tuple[Any, ...]) -> None:
    with app.app_context():
        try:
            job(*args)
        except Exception:
            log.exception("account e-mail not sent (%s)", job.__name__)
            db.session.rollback()
        finally:
            db.session.remove()


def later(job: Callable[..., None], *args: Any) -> None:
    """Run ``job(*args)`` on the background pool in this app's context."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    future = _pool.submit(_run, app, job, args)
    with _running_lock:
        _running.add(future)
    future.add_done_callback(_forget)


def _forget(future: Future[None]) -> None:
    with _running_lock:
        _running.discard(future)


def drain(timeout: float = 30.0) -> None:
    """Wait for every queued job (tests; a clean shutdown)."""
    with _running_lock:
        pending = set(_running)
    wait(pending, timeout=timeout)


def _mail(address: str, subject: str, text: str) -> None:
    send_email(address, subject, text + _FOOTER)


_FOOTER = (
    "\n--\nYou receive this because someone entered this address on Signoff. "
    "If it was not you, ignore this e-mail: nothing happens without you.\n"
)


def _hours(purpose: str) -> str:
    hours = max(1, tokens.max_age(purpose) // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"


# --- sign-up ------------------------------------------------------------------------------


def request_signup(form: SignUpForm, password: str, ip_address: str | None) -> None:
    """After a valid sign-up form: the e-mail that continues it (see the module doc)."""
    require_mail()
    mail_budget(form.email)
    later(_signup_job, form, password, ip_address)


def _signup_job(form: SignUpForm, password: str, ip_address: str | None) -> None:
    session = db.session
    # Hashed in both cases: the same work whether or not the account exists.
    password_hash = hash_password(password)
    base = base_url()
    if find_account(session, form.email) is not None:
        session.rollback()
        log.info("sign-up with the address of an existing account (told by e-mail)")
        _mail(
            form.email,
            "You already have a Signoff account",
            f'Someone asked to create the organisation "{form.organisation}" on Signoff '
            "with this e-mail address, which already has a Signoff account.\n\n"
            f"Sign in: {base}/login/?next=/signup/\n"
            "Once signed in, the sign-up page creates the organisation with your account.\n\n"
            f"Forgot your password? Choose a new one: {base}/account/forgot-password\n",
        )
        return
    token = tokens.issue(
        session,
        purpose=tokens.SIGNUP,
        email=form.email,
        payload={
            "organisation": form.organisation,
            "slug": form.slug,
            "admin_name": form.admin_name,
            "password_hash": password_hash,
        },
        ip_address=ip_address,
    )
    session.commit()
    _mail(
        form.email,
        f"Confirm your e-mail to create {form.organisation} on Signoff",
        f"Hello {form.admin_name},\n\n"
        f'Confirm that this is your address to create "{form.organisation}" on Signoff:\n\n'
        f"{base}/account/verify/{token}\n\n"
        f"The link works once and expires in {_hours(tokens.SIGNUP)}.\n",
    )


def signup_claim(session: Session, token: str) -> Claim:
    claim = tokens.peek(session, tokens.SIGNUP, token)
    session.rollback()
    return claim


def complete_signup(
    session: Session, token: str, *, slug: str | None, ip_address: str | None
) -> SignUpResult:
    """Use the verification link: the organisation, its admin account (with the
    password hash of the form) and the link marked used, in one transaction.
    :class:`TokenError` for a bad link, :class:`SignUpError` (link still usable) when
    the slug was taken meanwhile or the address got an account meanwhile."""
    try:
        claim = tokens.consume(session, tokens.SIGNUP, token)
        data = claim.payload
        return sign_up(
            session,
            organisation=data.get("organisation"),
            slug=slug or data.get("slug"),
            admin_name=data.get("admin_name"),
            email=claim.email,
            password_hash=str(data["password_hash"]),
            ip_address=ip_address,
            audit_extra={"email_verified": True},
        )
    except (TokenError, SignUpError):
        session.rollback()
        raise
    except Exception:
        session.rollback()
        raise


# --- invitations ----------------------------------------------------------------------------


def request_join(invite_token: str, info: InviteInfo, ip_address: str | None) -> None:
    """Someone not signed in continues an invitation: the e-mail to the invited address."""
    require_mail()
    mail_budget(info.email)
    later(_join_job, invite_token, ip_address)


def _join_job(invite_token: str, ip_address: str | None) -> None:
    session = db.session
    info = open_invitation(session, invite_token)
    if info is None or info.tenant_status != "active":
        log.info("invitation gone before its e-mail was sent; nothing sent")
        return
    base = base_url()
    existing = find_account(session, info.email) is not None
    token = None
    if not existing:
        token = tokens.issue(
            session,
            purpose=tokens.INVITE,
            email=info.email,
            payload={"tenant": str(info.tenant_id), "invitation": str(info.invitation_id)},
            ip_address=ip_address,
        )
    with bound_tenant(info.tenant_id, session):
        # The same event either way: the tenant's admins must not learn from their
        # audit trail whether the address has an account.
        audit_append(
            session,
            actor_id=None,
            on_behalf_of_id=None,
            action="invitation.email_sent",
            object_type="invitation",
            object_id=str(info.invitation_id),
            payload={"ip_address": ip_address},
        )
        session.flush()
    session.commit()
    roles = ", ".join(info.roles)
    if existing:
        _mail(
            info.email,
            f"Your invitation to {info.tenant_name} on Signoff",
            f"You are invited to join {info.tenant_name} on Signoff ({roles}).\n\n"
            "This address already has a Signoff account. Sign in, and accept:\n\n"
            f"{base}/login/?next=/invite/{invite_token}\n\n"
            f"Forgot your password? Choose a new one: {base}/account/forgot-password\n",
        )
    else:
        _mail(
            info.email,
            f"Confirm your e-mail to join {info.tenant_name} on Signoff",
            f"You are invited to join {info.tenant_name} on Signoff ({roles}).\n\n"
            "Confirm that this is your address and choose your password:\n\n"
            f"{base}/account/join/{token}\n\n"
            f"The link works once and expires in {_hours(tokens.INVITE)}.\n",
        )


def join_claim(session: Session, token: str) -> tuple[Claim, InviteInfo]:
    """The claim and the invitation of a usable join link; :class:`TokenError` when
    either is gone (``withdrawn``: the invitation was used, revoked or expired)."""
    claim = tokens.peek(session, tokens.INVITE, token)
    session.rollback()
    try:
        tenant_id = uuid.UUID(str(claim.payload["tenant"]))
        invitation_id = uuid.UUID(str(claim.payload["invitation"]))
    except (KeyError, ValueError):
        raise TokenError("invalid") from None
    info = invite_info(session, tenant_id, invitation_id)
    if info is None or info.email != claim.email:
        raise TokenError("withdrawn")
    return claim, info


def complete_join(session: Session, token: str, *, name: str | None, password: str | None) -> Any:
    """Use the join link: the account, the membership and both links marked used."""
    _claim, info = join_claim(session, token)
    return join_verified(
        session,
        info,
        name=name,
        password=password,
        before_commit=lambda s: tokens.consume(s, tokens.INVITE, token),
    )


# --- forgotten passwords ------------------------------------------------------------------


def request_reset(email: str, ip_address: str | None) -> None:
    """Forgot password: a reset link to an existing, active account; nothing otherwise."""
    require_mail()
    mail_budget(email)
    later(_reset_job, email, ip_address)


def _reset_job(email: str, ip_address: str | None) -> None:
    session = db.session
    account = find_account(session, email)
    if account is None or not account.active or not account.email:
        session.rollback()
        log.info("password reset for an address without an active account: nothing sent")
        return
    token = tokens.issue(
        session,
        purpose=tokens.RESET,
        email=str(account.email).lower(),
        user_id=int(account.id),
        ip_address=ip_address,
    )
    session.commit()
    log.info("password reset link sent: user=%s address=%s", account.id, ip_address)
    _mail(
        str(account.email),
        "Choose a new Signoff password",
        "Someone asked to reset the password of your Signoff account.\n\n"
        f"Choose a new password: {base_url()}/account/reset/{token}\n\n"
        f"The link works once and expires in {_hours(tokens.RESET)}. "
        "Your password stays as it is until you use it.\n",
    )


# --- a new e-mail address -------------------------------------------------------------------


def request_email_change(
    session: Session,
    user_id: int,
    *,
    email: str | None,
    password: str | None,
    ip_address: str | None,
) -> str:
    """The signed-in person asks for a new address: checked here (the address, the
    current password, the budgets), then the link goes to the new address in the
    background. The normalised address; :class:`PasswordError` names the field."""
    require_mail()
    address, problem = normalize_email(email)
    if address is None:
        raise PasswordError("email", N_("New e-mail %(problem)s", problem=problem))
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise PasswordError("email", "Your account is not available")
    if str(user.email or "").lower() == address:
        raise PasswordError("email", "This is already your e-mail address")
    change_attempts_left(session, user_id, password, ip_address, action="email.change_failed")
    mail_budget(address)
    later(_email_change_job, user_id, address, ip_address)
    return address


def _email_change_job(user_id: int, address: str, ip_address: str | None) -> None:
    session = db.session
    user = session.get(User, user_id)
    if user is None or not user.active:
        session.rollback()
        return
    if find_account(session, address) is not None:
        session.rollback()
        _mail(
            address,
            "This address already has a Signoff account",
            "Someone signed in to Signoff asked to use this address for their account, "
            "but it already belongs to a Signoff account, so nothing changed.\n",
        )
        return
    token = tokens.issue(
        session,
        purpose=tokens.EMAIL_CHANGE,
        email=address,
        user_id=user_id,
        payload={"from": str(user.email or "")},
        ip_address=ip_address,
    )
    session.commit()
    log.info("e-mail change link sent: user=%s address=%s", user_id, ip_address)
    _mail(
        address,
        "Confirm your new e-mail address for Signoff",
        f"{user.first_name or user.username} asked to use this address for their Signoff "
        "account.\n\n"
        f"Confirm it: {base_url()}/account/email/{token}\n\n"
        f"The link works once and expires in {_hours(tokens.EMAIL_CHANGE)}. "
        "Until then you keep signing in with your current address.\n",
    )


def email_change_claim(session: Session, token: str) -> Claim:
    claim = tokens.peek(session, tokens.EMAIL_CHANGE, token)
    session.rollback()
    return claim


def complete_email_change(session: Session, token: str, *, ip_address: str | None) -> Claim:
    """Use the link: the new address becomes the account's (audited in each of its
    organisations); the old address is told. :class:`TokenError` (``withdrawn`` when the
    address was taken meanwhile or the account is gone)."""
    try:
        claim = tokens.consume(session, tokens.EMAIL_CHANGE, token)
        user = session.get(User, claim.user_id) if claim.user_id is not None else None
        taken = find_account(session, claim.email)
        if user is None or not user.active or (taken is not None and taken.id != user.id):
            raise TokenError("withdrawn")
        old = str(user.email or "")
        user.email = claim.email
        audit_account_event(
            session,
            int(user.id),
            action="account.email_changed",
            actor_id=int(user.id),
            payload={"from": old, "to": claim.email, "ip_address": ip_address},
        )
        session.commit()
    except Exception:
        session.rollback()
        raise
    log.warning("e-mail address changed: user=%s address=%s", user.id, ip_address)
    if old:
        later(
            _mail,
            old,
            "Your Signoff e-mail address was changed",
            f"The e-mail address of your Signoff account is now {claim.email}. "
            "If you did not change it, reset your password and tell your organisation's "
            "admin.\n",
        )
    return claim
