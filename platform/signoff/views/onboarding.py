"""The public sign-up page ``/signup/``: a new organisation and its admin.

A signed-in user creates the organisation at once with their account
(:func:`signoff.provisioning.onboarding.sign_up`). Anyone else continues by e-mail:
the form is checked (errors next to their fields), then the answer is the same
"check your e-mail" page whether or not the address has an account, and the
organisation is created only from the e-mailed link
(:mod:`signoff.provisioning.verification`, ``/account/verify/<token>``). POSTs are
rate-limited per client address (``SIGNOFF_SIGNUP_RATE_LIMIT``, default ``10 per
hour``) with the shared limiter, and the e-mails per address written to.
"""

from __future__ import annotations

from flask import current_app, g, redirect, request
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from werkzeug.wrappers import Response

from signoff.extensions import db, limiter
from signoff.limiter import client_address
from signoff.provisioning import verification
from signoff.provisioning.onboarding import (
    RESERVED_SLUGS,
    SignUpError,
    check_sign_up,
    sign_up,
    suggest_slug,
)
from signoff.tenancy.accounts import PASSWORD_MIN
from signoff.views.account import check_email_page, mail_unavailable
from signoff.views.common import SignoffView


def signup_limit() -> str:
    return str(current_app.config.get("SIGNOFF_SIGNUP_RATE_LIMIT") or "10 per hour")


class SignupView(SignoffView):
    route_base = "/signup"
    default_view = "signup"

    @expose("/", methods=["GET", "POST"])
    @limiter.limit(signup_limit, key_func=lambda: f"signup:{client_address()}", methods=["POST"])
    @no_cache
    def signup(self) -> str | Response:
        user = g.user if getattr(g.user, "is_authenticated", False) else None
        form = request.form if request.method == "POST" else {}
        errors: dict[str, list[str]] = {}
        if request.method == "POST" and user is None:
            try:
                checked = check_sign_up(
                    db.session,
                    organisation=form.get("organisation"),
                    slug=form.get("slug") or suggest_slug(form.get("organisation") or ""),
                    admin_name=form.get("admin_name"),
                    email=form.get("email"),
                    password=form.get("password"),
                )
                verification.request_signup(checked, str(form.get("password")), client_address())
            except SignUpError as exc:
                errors = exc.errors
            except verification.MailUnavailable:
                return mail_unavailable()
            else:
                return check_email_page(self, "signup", checked.email)
        elif request.method == "POST":
            try:
                result = sign_up(
                    db.session,
                    organisation=form.get("organisation"),
                    slug=form.get("slug") or suggest_slug(form.get("organisation") or ""),
                    user=user,
                    ip_address=client_address(),
                )
            except SignUpError as exc:
                errors = exc.errors
            else:
                return redirect(f"/t/{result.slug}/?welcome=1")
        page = self.render(
            "signoff/signup.html",
            form=form,
            errors=errors,
            signed_in=user,
            password_min=PASSWORD_MIN,
            reserved=sorted(RESERVED_SLUGS),
        )
        return page if not errors else Response(page, mimetype="text/html", status=422)


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(SignupView())
