"""The public sign-up page ``/signup/``: a new organisation and its admin.

The logic is :func:`signoff.provisioning.onboarding.sign_up`; this page validates the
form through it, shows errors next to their fields, logs the admin in and sends
them to the new tenant's portal. POSTs are rate-limited per client address
(``SIGNOFF_SIGNUP_RATE_LIMIT``, default ``10 per hour``) with the shared limiter.
A signed-in user creates the organisation with their existing account.
"""

from __future__ import annotations

from flask import current_app, g, redirect, request
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_login import login_user
from werkzeug.wrappers import Response

from signoff.extensions import db, limiter
from signoff.limiter import client_address
from signoff.provisioning.onboarding import (
    RESERVED_SLUGS,
    SignUpError,
    sign_up,
    suggest_slug,
)
from signoff.tenancy.accounts import PASSWORD_MIN
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
        if request.method == "POST":
            try:
                result = sign_up(
                    db.session,
                    organisation=form.get("organisation"),
                    slug=form.get("slug") or suggest_slug(form.get("organisation") or ""),
                    admin_name=form.get("admin_name"),
                    email=form.get("email"),
                    password=form.get("password"),
                    user=user,
                    ip_address=client_address(),
                )
            except SignUpError as exc:
                errors = exc.errors
            else:
                if user is None:
                    account = self.appbuilder.sm.get_user_by_id(result.user_id)
                    login_user(account, remember=False)
                    self.appbuilder.sm.update_user_auth_stat(account, True)
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
