"""Account pages reached by e-mail, and the change-password page.

- ``/account/verify/<token>``: the sign-up's verification link; a GET shows what will be
  created (mail scanners prefetch links), the POST creates it and signs the admin in.
- ``/account/join/<token>``: an invitee without an account proves the address, then
  chooses a name and a password.
- ``/account/forgot-password`` and ``/account/reset/<token>``: a reset link by e-mail,
  then a new password (and the MFA code when the account has an authenticator).
- ``/t/<slug>/account/password``: change the password while signed in (the current
  password, and the MFA code when enrolled); the person's other sessions end.
- ``/t/<slug>/account/email``: ask for a new e-mail address while signed in (the
  current password); the link goes to the new address.
- ``/account/email/<token>``: that link; a GET shows the change, the POST makes it
  (audited ``account.email_changed``; the old address is told).
- ``/account/sessions/``: the signed-in person's sessions (browsers and API token
  pairs), each with a button that ends it, and "sign out everywhere else".

A bad link is 404, a used or expired one 410, each with a page that says so. The
logic is :mod:`signoff.provisioning.verification` and
:mod:`signoff.provisioning.credentials`.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_user
from werkzeug.wrappers import Response

from signoff.db.ids import as_uuid
from signoff.errors import MfaError
from signoff.extensions import current_appbuilder, db
from signoff.languages import translated
from signoff.limiter import RateLimited, client_address
from signoff.provisioning import verification
from signoff.provisioning.credentials import PasswordError, change_password, complete_reset
from signoff.provisioning.credentials import reset_claim as reset_link_claim
from signoff.provisioning.onboarding import SignUpError
from signoff.security import mfa, sessions
from signoff.tenancy.account_tokens import TokenError
from signoff.tenancy.accounts import PASSWORD_MIN, normalize_email
from signoff.tenancy.invites import InviteError
from signoff.views.common import SignoffView, error_page, tenant_nav
from signoff.views.tenant_base import TenantScoped

log = logging.getLogger(__name__)


def link_problem(exc: TokenError) -> Response:
    """The 404/410 page of a link that cannot be used (logged, without the token)."""
    log.warning(
        "account link refused: %s (%s) address=%s",
        exc.code,
        request.endpoint,
        client_address(),
    )
    titles = {
        "invalid": "This link is not valid",
        "expired": "This link has expired",
        "withdrawn": "This invitation is no longer valid",
    }
    return error_page(
        exc.status, titles.get(exc.code, "This link was already used"), translated(exc.message)
    )


def mail_unavailable() -> Response:
    resp = error_page(503, "E-mail is not set up", verification.MailUnavailable.message)
    resp.headers["Retry-After"] = "3600"
    return resp


def check_email_page(view: SignoffView, kind: str, email: str, **extra: Any) -> Response:
    """The one answer of every request that continues by e-mail."""
    page = view.render(
        "signoff/account_check_email.html",
        kind=kind,
        email=email,
        dev_mail=bool(current_app.config.get("SIGNOFF_DEV_MAILBOX")),
        **extra,
    )
    return Response(page, mimetype="text/html", status=200)


def _page(view: SignoffView, template: str, status: int = 200, **kwargs: Any) -> Response:
    return Response(view.render(template, **kwargs), mimetype="text/html", status=status)


def _limited(exc: RateLimited) -> str:
    return f"Too many attempts. Try again in {exc.retry_after_seconds} seconds."


class AccountView(SignoffView):
    route_base = "/account"
    default_view = "forgot_password"

    # --- sign-up verification ---------------------------------------------------------------

    @expose("/verify/<token>", methods=["GET", "POST"])
    @no_cache
    def verify(self, token: str) -> Response:
        session = db.session
        if request.method == "POST":
            verification.link_budget()
        try:
            claim = verification.signup_claim(session, token)
        except TokenError as exc:
            return link_problem(exc)
        errors: dict[str, list[str]] = {}
        slug = claim.payload.get("slug")
        if request.method == "POST":
            wanted = request.form.get("slug") or slug
            try:
                result = verification.complete_signup(
                    session, token, slug=wanted, ip_address=client_address()
                )
            except TokenError as exc:
                return link_problem(exc)
            except SignUpError as exc:
                errors, slug = exc.errors, wanted
            else:
                sm = current_appbuilder().sm
                account = sm.get_user_by_id(result.user_id)
                login_user(account, remember=False)
                sm.update_user_auth_stat(account, True)
                return redirect(f"/t/{result.slug}/?welcome=1")
        return _page(
            self,
            "signoff/account_verify.html",
            422 if errors else 200,
            claim=claim,
            slug=slug,
            errors=errors,
        )

    # --- a new e-mail address ---------------------------------------------------------------

    @expose("/email/<token>", methods=["GET", "POST"])
    @no_cache
    def email(self, token: str) -> Response:
        session = db.session
        if request.method == "POST":
            verification.link_budget()
            try:
                claim = verification.complete_email_change(
                    session, token, ip_address=client_address()
                )
            except TokenError as exc:
                return link_problem(exc)
            return _page(self, "signoff/account_email_confirm.html", claim=claim, done=True)
        try:
            claim = verification.email_change_claim(session, token)
        except TokenError as exc:
            return link_problem(exc)
        return _page(self, "signoff/account_email_confirm.html", claim=claim, done=False)

    # --- joining by invitation --------------------------------------------------------------

    @expose("/join/<token>", methods=["GET", "POST"])
    @no_cache
    def join(self, token: str) -> Response:
        session = db.session
        if request.method == "POST":
            verification.link_budget()
        try:
            _claim, info = verification.join_claim(session, token)
        except TokenError as exc:
            return link_problem(exc)
        if info.tenant_status != "active":
            return error_page(403, "This organisation is suspended", "Ask its administrator.")
        error: InviteError | None = None
        status = 200
        if request.method == "POST":
            try:
                account = verification.complete_join(
                    session,
                    token,
                    name=request.form.get("name"),
                    password=request.form.get("password"),
                )
            except TokenError as exc:
                return link_problem(exc)
            except InviteError as exc:
                error = exc
                status = 409 if exc.code == "account_exists" else 422
            else:
                sm = current_appbuilder().sm
                login_user(account, remember=False)
                sm.update_user_auth_stat(account, True)
                flash(_("Welcome to %(name)s.", name=info.tenant_name), "success")
                return redirect(url_for("PortalView.home", tenant_slug=info.tenant_slug))
        return _page(
            self,
            "signoff/account_join.html",
            status,
            info=info,
            error=error,
            form=request.form,
            password_min=PASSWORD_MIN,
        )

    # --- forgotten password ---------------------------------------------------------------

    @expose("/forgot-password", methods=["GET", "POST"])
    @no_cache
    def forgot_password(self) -> Response:
        error = None
        if request.method == "POST":
            email, problem = normalize_email(request.form.get("email"))
            if problem or email is None:
                error = _("Email %(problem)s", problem=translated(problem or ""))
            else:
                try:
                    verification.request_reset(email, client_address())
                except verification.MailUnavailable:
                    return mail_unavailable()
                return check_email_page(self, "reset", email)
        return _page(
            self,
            "signoff/account_forgot.html",
            422 if error else 200,
            error=error,
            form=request.form,
        )

    @expose("/reset/<token>", methods=["GET", "POST"])
    @no_cache
    def reset(self, token: str) -> Response:
        session = db.session
        if request.method == "POST":
            verification.link_budget()
        try:
            claim, needs_code = reset_link_claim(session, token)
        except TokenError as exc:
            return link_problem(exc)
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            try:
                complete_reset(
                    session,
                    token,
                    password=request.form.get("password"),
                    code=request.form.get("code"),
                    ip_address=client_address(),
                )
            except TokenError as exc:
                return link_problem(exc)
            except PasswordError as exc:
                errors, status = {exc.field: translated(exc.message)}, 422
            except MfaError as exc:
                errors, status = {"code": translated(exc.message)}, exc.status
            except RateLimited as exc:
                errors, status = {"code": _limited(exc)}, 429
            else:
                # Every session of the account ended with the reset (same transaction).
                flash(_("Your password was changed. Sign in with the new one."), "success")
                return redirect(current_appbuilder().get_url_for_login)
        return _page(
            self,
            "signoff/account_reset.html",
            status,
            email=claim.email,
            needs_code=needs_code,
            errors=errors,
            password_min=PASSWORD_MIN,
        )


class PasswordView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>/account"
    default_view = "password"

    @expose("/password", methods=["GET", "POST"])
    @no_cache
    def password(self) -> Response:
        session = db.session
        uid = int(g.user.id)
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            try:
                change_password(
                    session,
                    uid,
                    current=request.form.get("current_password"),
                    new=request.form.get("new_password"),
                    code=request.form.get("code"),
                    ip_address=client_address(),
                    keep_session=sessions.current_session_token(),
                )
            except PasswordError as exc:
                errors, status = {exc.field: translated(exc.message)}, 422
            except MfaError as exc:
                errors, status = {"code": translated(exc.message)}, exc.status
            except RateLimited as exc:
                errors, status = {"current_password": _limited(exc)}, 429
            else:
                # The person's other sessions ended with the change (same transaction).
                flash(_("Your password was changed. You were signed out elsewhere."), "success")
                return redirect(url_for("PortalView.home"))
        needs_code = mfa.is_enrolled(session, uid)
        nav = tenant_nav(session)
        session.rollback()
        resp = _page(
            self,
            "signoff/account_password.html",
            status,
            nav=nav,
            needs_code=needs_code,
            errors=errors,
            password_min=PASSWORD_MIN,
        )
        if status == 429:
            resp.headers["Retry-After"] = str(g.get("signoff_retry_after") or 60)
        return resp


class EmailChangeView(TenantScoped, SignoffView):
    """``/t/<slug>/account/email``: ask for a new e-mail address (signed in)."""

    route_base = "/t/<tenant_slug>/account"
    default_view = "email"

    @expose("/email", methods=["GET", "POST"])
    @no_cache
    def email(self) -> Response:
        session = db.session
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            try:
                address = verification.request_email_change(
                    session,
                    int(g.user.id),
                    email=request.form.get("email"),
                    password=request.form.get("password"),
                    ip_address=client_address(),
                )
            except verification.MailUnavailable:
                return mail_unavailable()
            except PasswordError as exc:
                errors, status = {exc.field: exc.message}, 422
            except RateLimited as exc:
                errors, status = {"password": _limited(exc)}, 429
            else:
                return check_email_page(self, "email_change", address, nav=tenant_nav(session))
        nav = tenant_nav(session)
        session.rollback()
        resp = _page(
            self,
            "signoff/account_email.html",
            status,
            nav=nav,
            errors=errors,
            current=g.user.email,
            form=request.form,
        )
        if status == 429:
            resp.headers["Retry-After"] = str(g.get("signoff_retry_after") or 60)
        return resp


class SessionsView(SignoffView):
    """The signed-in person's sessions; any one of them, or all others, can be ended."""

    route_base = "/account/sessions"
    default_view = "index"

    def _signed_in(self) -> Response | None:
        if current_user.is_authenticated:
            return None
        return redirect(f"{current_appbuilder().get_url_for_login}?next=/account/sessions/")

    @expose("/", methods=["GET"])
    @no_cache
    def index(self) -> Response:
        if (resp := self._signed_in()) is not None:
            return resp
        rows = sessions.list_sessions(sessions.current_session_token())
        rows.sort(key=lambda row: not row.is_current)  # this session first, then newest
        return _page(self, "signoff/account_sessions.html", rows=rows)

    @expose("/<session_id>/revoke", methods=["POST"])
    @no_cache
    def revoke(self, session_id: str) -> Response:
        if (resp := self._signed_in()) is not None:
            return resp
        sid = as_uuid(session_id)
        token = sessions.current_session_token()
        if sid is None or not sessions.end_session(token, session_id=sid, reason="signed_out"):
            return error_page(404, "No such session", "It may have ended already.")
        flash(_("That session was signed out."), "success")
        return redirect(url_for("SessionsView.index"))

    @expose("/revoke-others", methods=["POST"])
    @no_cache
    def revoke_others(self) -> Response:
        if (resp := self._signed_in()) is not None:
            return resp
        session = db.session
        count = sessions.revoke_user_sessions(
            session,
            int(current_user.id),
            keep=sessions.current_session_token(),
            reason="signed_out_everywhere",
        )
        session.commit()
        flash(
            ngettext(
                "Signed out everywhere else (%(num)s session).",
                "Signed out everywhere else (%(num)s sessions).",
                count,
            ),
            "success",
        )
        return redirect(url_for("SessionsView.index"))


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(AccountView())
    appbuilder.add_view_no_menu(PasswordView())
    appbuilder.add_view_no_menu(EmailChangeView())
    appbuilder.add_view_no_menu(SessionsView())
