"""Slack pages: the tenant admin connects Slack (``/t/<slug>/admin/slack``); each member
links their Slack account (``/t/<slug>/slack/``) and confirms the one-time link the bot
sends them (``/t/<slug>/slack/confirm/<token>``: the GET only shows, the POST confirms).

The rules live in :mod:`signoff.notifications.slack_settings`; every change is audited
there, in the page's transaction. Slack's button clicks arrive at
:class:`signoff.api.slack.SlackInteractivityApi`.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, make_response, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from signoff.errors import NotFound
from signoff.extensions import db
from signoff.languages import translated
from signoff.notifications import slack as slack_channel
from signoff.notifications import slack_settings as settings
from signoff.notifications.slack_client import SlackCallFailed
from signoff.roles import ADMIN_ROLE
from signoff.tenancy.access import current_tenant
from signoff.views.common import SignoffView, tenant_nav, user_names
from signoff.views.tenant_base import TenantScoped


def _me() -> int:
    return int(g.user.id)


class SlackAdminView(TenantScoped, SignoffView):
    """The tenant admin's Slack page: connect, disconnect, members' links."""

    route_base = "/t/<tenant_slug>/admin/slack"
    default_view = "index"
    tenant_roles = (ADMIN_ROLE,)

    @expose("/", methods=["GET", "POST"])
    @no_cache
    def index(self) -> str | Response:
        session = db.session
        errors: dict[str, str] = {}
        form: dict[str, str] = {}
        if request.method == "POST":
            form = {"webhook_url": (request.form.get("webhook_url") or "").strip()}
            session.commit()  # end the read transaction before calling Slack
            try:
                settings.connect(
                    session(),
                    actor_id=_me(),
                    bot_token=request.form.get("bot_token"),
                    signing_secret=request.form.get("signing_secret"),
                    webhook_url=request.form.get("webhook_url"),
                )
                session.commit()
            except settings.SlackSettingsError as exc:
                session.rollback()
                errors[exc.field or "form"] = translated(exc.message)
            else:
                flash(_("Slack connected."), "success")
                return redirect(url_for("SlackAdminView.index"))
        tenant = current_tenant(session)
        links = settings.confirmed_links(session())
        names = user_names(session, [link.user_id for link in links])
        state = settings.status(session())
        return self.render(
            "signoff/admin_slack.html",
            nav=tenant_nav(session),
            state=state,
            connected_by=user_names(session, [state.connected_by]).get(state.connected_by or 0),
            interactivity_url=settings.interactivity_url(tenant.slug),
            switched_on=slack_channel.enabled(),
            link_page_url=settings.link_page_url(tenant.slug),
            links=links,
            names=names,
            errors=errors,
            form=form,
        )

    @expose("/disconnect", methods=["POST"])
    def disconnect(self) -> Response:
        session = db.session
        if settings.disconnect(session(), actor_id=_me()):
            session.commit()
            flash(_("Slack disconnected; every member's link was removed."), "success")
        return redirect(url_for("SlackAdminView.index"))

    @expose("/links/<int:user_id>/unlink", methods=["POST"])
    def unlink(self, user_id: int) -> Response:
        session = db.session
        if user_id > 2**31 - 1 or not settings.unlink(session(), actor_id=_me(), user_id=user_id):
            abort(404)
        session.commit()
        flash(_("Slack link removed."), "success")
        return redirect(url_for("SlackAdminView.index"))


class SlackLinkView(TenantScoped, SignoffView):
    """A member's Slack page: ask for a one-time link, confirm it, unlink."""

    route_base = "/t/<tenant_slug>/slack"
    default_view = "index"

    def _page(self, **extra: Any) -> str:
        session = db.session
        state = settings.status(session())
        return self.render(
            "signoff/portal_slack.html",
            nav=tenant_nav(session),
            state=state,
            link=settings.link_of(session(), _me()),
            errors=extra.pop("errors", {}),
            form=extra.pop("form", {}),
            max_minutes=settings.link_max_age() // 60,
            **extra,
        )

    @expose("/")
    @no_cache
    def index(self) -> str:
        return self._page()

    @expose("/link", methods=["POST"])
    def start(self) -> str | Response:
        session = db.session
        slack_id = (request.form.get("slack_user_id") or "").strip()
        tenant = current_tenant(session)
        user = session.get(User, _me())
        try:
            row, token = settings.start_link(session(), user_id=_me(), slack_user_id=slack_id)
            slack_id = row.slack_user_id
            session.commit()
        except settings.SlackSettingsError as exc:
            session.rollback()
            return self._page(
                errors={exc.field or "form": translated(exc.message)},
                form={"slack_user_id": slack_id},
            )
        who = user.username if user is not None else str(_me())
        try:
            settings.send_link_message(
                session(),
                slack_user_id=slack_id,
                url=settings.confirm_url(tenant.slug, token),
                member=who,
                tenant_name=tenant.name,
            )
        except SlackCallFailed as exc:
            session.rollback()
            flash(
                _(
                    "Slack did not deliver the message (%(code)s). Check the member ID and "
                    "try again.",
                    code=exc.code,
                ),
                "danger",
            )
            return redirect(url_for("SlackLinkView.index"))
        flash(
            _(
                "Check your direct messages from the Signoff app in Slack and open the link "
                "while signed in here."
            ),
            "success",
        )
        return redirect(url_for("SlackLinkView.index"))

    @expose("/unlink", methods=["POST"])
    def unlink(self) -> Response:
        session = db.session
        if settings.unlink(session(), actor_id=_me(), user_id=_me()):
            session.commit()
            flash(_("Your Slack account is no longer linked."), "success")
        return redirect(url_for("SlackLinkView.index"))

    @expose("/confirm/<token>", methods=["GET", "POST"])
    @no_cache
    def confirm(self, token: str) -> str | Response:
        session = db.session
        tenant = current_tenant(session)
        problem: str | None = None
        claim = None
        try:
            claim = settings.read_link_token(token)
            if request.method == "POST":
                settings.confirm_link(session(), claim, user_id=_me())
                session.commit()
                flash(_("Your Slack account is linked."), "success")
                return redirect(url_for("SlackLinkView.index"))
            settings.check_claim(session(), claim, user_id=_me())
        except NotFound:
            abort(404)
        except settings.SlackSettingsError as exc:
            session.rollback()
            problem = translated(exc.message)
        page = self.render(
            "signoff/portal_slack_confirm.html",
            nav=tenant_nav(session),
            tenant=tenant,
            claim=claim,
            problem=problem,
            token=token,
        )
        return make_response(page, 400) if problem else page


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(SlackAdminView())
    appbuilder.add_view_no_menu(SlackLinkView())
