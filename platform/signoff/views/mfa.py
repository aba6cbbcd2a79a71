"""MFA pages of the portal: ``/t/<tenant_slug>/mfa/enroll`` and ``/mfa/verify``.

The verify page is the step-up prompt: a decision on a step that requires MFA
sends the user here with ``next`` (the request page); after a valid code (or a
recovery code) the user returns there. ``next`` is only ever a path inside the
same tenant's portal. These pages show the tenant's name and colour but none of its
navigation or data (``brand_nav``): a tenant that requires MFA at login sends its
members here before anything else.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, g, make_response, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from flask_login import user_logged_in, user_logged_out
from werkzeug.wrappers import Response

from signoff.extensions import db
from signoff.languages import translated
from signoff.limiter import RateLimited
from signoff.security import mfa, mfa_state, mfa_web
from signoff.security.mfa import MfaError
from signoff.views.common import SignoffView, brand_nav
from signoff.views.tenant_base import TenantScoped

CODE_MAX = 32


class MfaView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>/mfa"
    default_view = "verify"

    def _next(self) -> str:
        return mfa_web.safe_next(request.values.get("next"), g.tenant_slug)

    def _page(self, template: str, status: int = 200, **kwargs: Any) -> Response:
        resp = make_response(self.render(template, nav=brand_nav(db.session), **kwargs), status)
        return resp

    @expose("/enroll", methods=["GET", "POST"])
    @no_cache
    def enroll(self) -> Response:
        uid = int(g.user.id)
        nxt = self._next()
        if mfa.is_enrolled(db.session, uid):
            left = mfa.recovery_codes_left(db.session, uid)
            db.session.rollback()
            return self._page("signoff/mfa_enroll.html", enrolled=True, codes_left=left, next=nxt)
        message = None
        status = 200
        if request.method == "POST":
            code = (request.form.get("code") or "")[:CODE_MAX]
            try:
                codes = mfa.confirm_enrolment(db.session, uid, code)
                return self._page("signoff/mfa_recovery_codes.html", codes=codes, next=nxt)
            except MfaError as exc:
                message, status = translated(exc.message), exc.status
            except RateLimited as exc:
                message, status = _limited(exc), 429
        try:
            enrolment = mfa.begin_enrolment(
                db.session, g.user, restart=request.args.get("restart") == "1"
            )
        except MfaError as exc:
            flash(translated(exc.message), "danger")
            return redirect(url_for("MfaView.verify", next=nxt))
        resp = self._page(
            "signoff/mfa_enroll.html",
            status,
            enrolled=False,
            enrolment=enrolment,
            message=message,
            next=nxt,
        )
        if status == 429:
            resp.headers["Retry-After"] = str(g.get("signoff_retry_after") or 60)
        return resp

    @expose("/verify", methods=["GET", "POST"])
    @no_cache
    def verify(self) -> Response:
        uid = int(g.user.id)
        nxt = self._next()
        if not mfa.is_enrolled(db.session, uid):
            db.session.rollback()
            return redirect(url_for("MfaView.enroll", next=nxt))
        message = None
        status = 200
        if request.method == "POST":
            code = (request.form.get("code") or "")[:CODE_MAX]
            try:
                if request.form.get("kind") == "recovery":
                    _verified_at, left = mfa.use_recovery_code(db.session, uid, code)
                    flash(_("Verified with a recovery code (%(num)s left).", num=left), "warning")
                else:
                    mfa.verify_code(db.session, uid, code)
                    flash(_("Verified."), "success")
                return redirect(nxt)
            except MfaError as exc:
                message, status = translated(exc.message), exc.status
            except RateLimited as exc:
                message, status = _limited(exc), 429
        reason = (
            "This organisation asks for a code from your authenticator app at every sign-in."
            if mfa.tenant_requires_mfa(db.session) and not mfa.login_verified(uid)
            else "This step needs a recent code from your authenticator app."
        )
        db.session.rollback()
        resp = self._page(
            "signoff/mfa_verify.html", status, next=nxt, message=message, reason=reason
        )
        if status == 429:
            resp.headers["Retry-After"] = str(g.get("signoff_retry_after") or 60)
        return resp


def _limited(exc: RateLimited) -> str:
    return f"Too many attempts. Try again in {exc.retry_after_seconds} seconds."


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(MfaView())
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.extensions.get("signoff_mfa_views"):
        return
    app.extensions["signoff_mfa_views"] = True
    # The tenant's "MFA at every login" policy, for every /t/<slug>/ page.
    app.before_request(mfa_web.web_login_policy)
    # A verification belongs to one login: signing in or out forgets it.
    user_logged_in.connect(mfa_state.clear_session, app)
    user_logged_out.connect(mfa_state.clear_session, app)
