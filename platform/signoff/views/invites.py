"""The invitation page ``/invite/<token>``: join a tenant from a signed, expiring link.

Someone signed in with the invited address accepts here. Anyone else sees the same
page whether or not the address has an account, and continues by e-mail: the mail
to the invited address says "sign in, then accept" to an existing account and
carries a link to choose a name and password (``/account/join/<token>``) to a new
one. So the invitation link alone, which the admin may hold, never creates an
account (:mod:`signoff.provisioning.verification`). A token that is bad, used,
revoked or too old gets one and the same answer. POSTs are rate-limited per address.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from signoff.extensions import db, limiter
from signoff.limiter import client_address
from signoff.provisioning import verification
from signoff.tenancy.invites import InviteError, accept_invitation, open_invitation
from signoff.views.account import check_email_page, mail_unavailable
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
        error: InviteError | None = None
        if request.method == "POST" and user is None:
            try:
                verification.request_join(token, info, client_address())
            except verification.MailUnavailable:
                return mail_unavailable()
            return check_email_page(self, "join", info.email, tenant_name=info.tenant_name)
        if request.method == "POST":
            try:
                info, _account = accept_invitation(session, token, user=user)
            except InviteError as exc:
                error = exc
            else:
                flash(_("Welcome to %(name)s.", name=info.tenant_name), "success")
                return redirect(url_for("PortalView.home", tenant_slug=info.tenant_slug))
        login_url = f"{self.appbuilder.get_url_for_login}?next={quote(request.path, safe='/')}"
        page = self.render(
            "signoff/invite.html",
            info=info,
            token=token,
            signed_in=user,
            error=error,
            login_url=login_url,
            logout_url=self.appbuilder.get_url_for_logout,
        )
        return page if error is None else Response(page, mimetype="text/html", status=422)


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(InviteView())
