"""Home and profile: where a person lands after signing in, and their own settings.

- ``/`` (FAB's index view, ``FAB_INDEX_VIEW``): signed out, the login page; signed in,
  the organisations the person belongs to with what waits for them in each, straight
  into the only one when there is just one (and no operator console to offer).
- ``/account/profile``: the person's profile without a tenant (name, e-mail, sessions,
  the organisations); with exactly one organisation it is that organisation's profile.
  ``POST /account/profile/name`` changes the name, audited in each organisation's chain
  (``account.name_changed``); the e-mail is the proved address and is not changed here.
- ``/t/<slug>/account/profile``: the profile in one organisation's portal, with its
  branding: name and e-mail, password change, two-step verification (enrol, recovery
  codes), sessions, notification preferences, and the switcher's list.

The organisations come from :func:`signoff.tenancy.directory.member_tenants`
(``signoff.account_tenants``, the membership-resolving path); each inbox count is read
with that tenant bound, under row-level security like every other tenant page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, IndexView, expose
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from signoff.db.binding import bound_tenant
from signoff.errors import MfaError
from signoff.extensions import current_appbuilder, db
from signoff.languages import (
    LANGUAGES,
    force_locale,
    profile_language,
    select_locale,
    set_user_language,
    translated,
)
from signoff.security import mfa, sessions
from signoff.tenancy.account_audit import audit_account_event
from signoff.tenancy.accounts import clean_name, split_name
from signoff.tenancy.directory import member_tenants
from signoff.views.common import SignoffView, tenant_nav
from signoff.views.tenant_base import TenantScoped
from signoff.workflow.queries import inbox_count

#: The longest name a person can give themselves (first and last name, 64 each).
NAME_MAX = 128
#: Where the name form may return: one of the profile pages.
BACK_RE = re.compile(r"(/t/[a-z0-9-]{1,40})?/account/profile")


@dataclass
class Organisation:
    slug: str
    name: str
    active: bool
    inbox: int


def organisations(session: Session, user_id: int) -> list[Organisation]:
    """The person's organisations, each with its inbox count (read with that tenant
    bound; a suspended one shows no count)."""
    out = []
    for tenant in member_tenants(session, user_id):
        count = 0
        if tenant.status == "active":
            with bound_tenant(tenant.id, session):
                count = inbox_count(session, user_id)
        out.append(Organisation(tenant.slug, tenant.name, tenant.status == "active", count))
    return out


def is_operator() -> bool:
    """Whether the signed-in person may open the operator console."""
    # OperatorView's permissions: class_permission_name "Operator", method "read".
    return bool(current_appbuilder().sm.has_access("can_read", "Operator"))


def _login_redirect(next_path: str) -> Response:
    return redirect(f"{current_appbuilder().get_url_for_login}?next={next_path}")


class HomeView(IndexView):
    """``/``: the person's organisations (FAB's index view)."""

    route_base = ""
    default_view = "index"

    @expose("/")
    @no_cache
    def index(self) -> Response | str:
        if not current_user.is_authenticated:
            return redirect(current_appbuilder().get_url_for_login)
        session = db.session
        orgs = organisations(session, int(current_user.id))
        operator = is_operator()
        session.rollback()
        if len(orgs) == 1 and orgs[0].active and not operator:
            return redirect(url_for("PortalView.home", tenant_slug=orgs[0].slug))
        page: str = self.render_template(
            "signoff/home.html", orgs=orgs, operator=operator, nav=None, active="home"
        )
        return page


class ProfileView(SignoffView):
    """``/account/profile``: the profile with no organisation chosen."""

    route_base = "/account"
    default_view = "profile"

    @expose("/profile", methods=["GET"])
    @no_cache
    def profile(self) -> Response | str:
        if not current_user.is_authenticated:
            return _login_redirect("/account/profile")
        session = db.session
        orgs = organisations(session, int(current_user.id))
        session.rollback()
        if len(orgs) == 1 and orgs[0].active:
            return redirect(url_for("TenantProfileView.profile", tenant_slug=orgs[0].slug))
        return self.render(
            "signoff/profile.html",
            orgs=orgs,
            user=current_user,
            language=profile_language(),
            session_count=len(sessions.list_sessions(sessions.current_session_token())),
            active="profile",
        )

    @expose("/profile/name", methods=["POST"])
    @no_cache
    def name(self) -> Response:
        """Change the signed-in person's name (audited in each of their organisations)."""
        if not current_user.is_authenticated:
            return _login_redirect("/account/profile")
        back = request.form.get("back") or ""
        if not BACK_RE.fullmatch(back):
            back = "/account/profile"
        full = clean_name(request.form.get("name"), limit=NAME_MAX)
        if full is None:
            flash(
                _("Name: enter your name (up to %(num)s characters, no < or >).", num=NAME_MAX),
                "danger",
            )
            return redirect(back)
        session = db.session
        user = current_appbuilder().sm.get_user_by_id(int(current_user.id))
        first, last = split_name(full)
        previous = " ".join(p for p in (user.first_name, user.last_name) if p and p != "-")
        user.first_name, user.last_name = first[:64], last[:64]
        audit_account_event(
            session,
            int(user.id),
            action="account.name_changed",
            actor_id=int(user.id),
            payload={"from": previous, "to": full},
        )
        session.commit()
        flash(_("Your name was changed."), "success")
        return redirect(back)

    @expose("/profile/language", methods=["POST"])
    @no_cache
    def language(self) -> Response:
        """The signed-in person's language: ``en``, ``de``, or empty for the browser's."""
        if not current_user.is_authenticated:
            return _login_redirect("/account/profile")
        back = request.form.get("back") or ""
        if not BACK_RE.fullmatch(back):
            back = "/account/profile"
        chosen = request.form.get("language") or ""
        if chosen and chosen not in LANGUAGES:
            flash(
                _("Language: choose one of %(choices)s.", choices=", ".join(LANGUAGES.values())),
                "danger",
            )
            return redirect(back)
        set_user_language(int(current_user.id), chosen or None)
        db.session.commit()
        with force_locale(chosen or select_locale()):
            flash(_("Your language was changed."), "success")
        return redirect(back)


class TenantProfileView(TenantScoped, SignoffView):
    """``/t/<slug>/account/profile``: the profile inside one organisation's portal."""

    route_base = "/t/<tenant_slug>/account"
    default_view = "profile"

    @expose("/profile", methods=["GET"])
    @no_cache
    def profile(self) -> str:
        session = db.session
        uid = int(g.user.id)
        nav = tenant_nav(session)
        enrolled = mfa.is_enrolled(session, uid)
        codes_left = mfa.recovery_codes_left(session, uid) if enrolled else 0
        session.rollback()  # the MFA read bound this transaction to the person's secrets
        return self.render(
            "signoff/profile.html",
            nav=nav,
            orgs=organisations(session, uid),
            user=g.user,
            mfa_enrolled=enrolled,
            codes_left=codes_left,
            mfa_required=_requires_mfa(session),
            language=profile_language(),
            session_count=len(sessions.list_sessions(sessions.current_session_token())),
            active="profile",
        )

    @expose("/profile/recovery-codes", methods=["POST"])
    @no_cache
    def recovery_codes(self) -> Response | str:
        """Ten new recovery codes (the old ones stop working); after a fresh code."""
        back = url_for("TenantProfileView.profile")
        session = db.session
        try:
            codes = mfa.regenerate_recovery_codes(session, int(g.user.id))
        except MfaError as exc:
            session.rollback()
            if exc.code == "mfa_required":
                flash(_("Enter a code from your authenticator app first, then ask again."), "info")
                return redirect(url_for("MfaView.verify", next=back))
            flash(translated(exc.message), "danger")
            return redirect(back)
        return self.render(
            "signoff/mfa_recovery_codes.html",
            nav=tenant_nav(session),
            codes=codes,
            next=back,
            regenerated=True,
        )


def _requires_mfa(session: Session) -> bool:
    required = mfa.tenant_requires_mfa(session)
    session.rollback()
    return required


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(ProfileView())
    appbuilder.add_view_no_menu(TenantProfileView())
