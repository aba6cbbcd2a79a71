"""The invitation page ``/invite/<token>``: join a tenant from a signed, expiring link.

Without an account the invitee sets a name and password (the account's user name
is the invited email); with an account they sign in first (the page links to the
login with ``next`` back here) and accept. A token that is bad, used, revoked or
too old gets one and the same answer. POSTs are rate-limited per address.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_login import login_user
from werkzeug.wrappers import Response

from signoff.extensions import db, limiter
from signoff.limiter import client_address
from signoff.tenancy.accounts import PASSWORD_MIN
from signoff.tenancy.invites import InviteError, accept_invitation, open_invitation
from signoff.views.common import SignoffView, suspended_page


def invite_limit() -> str:
    return str(current_app.config.get("SIGNOFF_INVITE_RATE_LIMIT") or "20 per hour")


class InviteView(SignoffView):
    route_base = "/invite"
    default_view = "accept"

    @expose("/<token>", methods=["GET", "POST"])
    @limiter.limit(invite_limit, key_func=lambda: f"invite:{client_address()}", methods=["POST"])
    @no_cache
    def accept(self, token: str) -> str | Response:
        session = db.session
        info = open_invitation(session, token)
        if info is None:
            page = self.render("signoff/invite.html", info=None, token=None, error=None)
            return Response(page, mimetype="text/html", status=404)
        if info.tenant_status != "active":
            return suspended_page(None)
        user = g.user if getattr(g.user, "is_authenticated", False) else None
        sm = self.appbuilder.sm
        has_account = user is None and sm.find_user(email=info.email) is not None
        error: InviteError | None = None
        if request.method == "POST":
            try:
                info, account = accept_invitation(
                    session,
                    token,
                    user=user,
                    name=request.form.get("name"),
                    password=request.form.get("password"),
                )
            except InviteError as exc:
                error = exc
            else:
                if user is None:
                    login_user(account, remember=False)
                    sm.update_user_auth_stat(account, True)
                flash(f"Welcome to {info.tenant_name}.", "success")
                return redirect(url_for("PortalView.home", tenant_slug=info.tenant_slug))
        login_url = f"{self.appbuilder.get_url_for_login}?next={quote(request.path, safe='/')}"
        page = self.render(
            "signoff/invite.html",
            info=info,
            token=token,
            signed_in=user,
            has_account=has_account,
            error=error,
            login_url=login_url,
            logout_url=self.appbuilder.get_url_for_logout,
            password_min=PASSWORD_MIN,
            form=request.form,
        )
        return page if error is None else Response(page, mimetype="text/html", status=422)


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(InviteView())
