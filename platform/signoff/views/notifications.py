"""The notification centre and notification preferences under
``/t/<tenant_slug>/notifications`` (every member, for themselves only).

The list shows the member's own notifications in this tenant, newest first, paged,
unread ones highlighted, each linking to its request; "mark as read" and "mark all
as read" are CSRF-protected POSTs. Another member's notification id is 404 and
changes nothing (:mod:`signoff.notifications.centre`). The preferences page is a
table of events by channel (only the channels the platform switches on) plus the
daily reminder digest (:mod:`signoff.notifications.preferences`).
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from werkzeug.wrappers import Response

from signoff.errors import NotFound
from signoff.extensions import db
from signoff.notifications import centre, preferences
from signoff.notifications.format import note_title
from signoff.views.common import SignoffView, tenant_nav, user_names
from signoff.views.tenant_base import TenantScoped

PAGE_SIZE = 20
CHANNEL_LABELS = {"email": _l("E-mail"), "slack": "Slack"}


def _page_arg(raw: str | None) -> int:
    try:
        return min(max(int(raw or 0), 0), 100_000)
    except ValueError:
        return 0


def _show_arg(raw: str | None) -> str:
    return "unread" if raw == "unread" else ""


def _back() -> Response:
    """The list again, at the page and filter the form came from."""
    page = _page_arg(request.form.get("page"))
    show = _show_arg(request.form.get("show"))
    args: dict[str, Any] = {}
    if page:
        args["page"] = page
    if show:
        args["show"] = show
    return redirect(url_for("NotificationsView.index", **args))


class NotificationsView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>/notifications"
    default_view = "index"

    @expose("/")
    @no_cache
    def index(self) -> str:
        session = db.session
        uid = int(g.user.id)
        show = _show_arg(request.args.get("show"))
        page = centre.list_for(
            session,
            uid,
            unread=True if show == "unread" else None,
            page=_page_arg(request.args.get("page")),
            page_size=PAGE_SIZE,
        )
        people: list[int | None] = []
        for note in page.items:
            payload = note.payload or {}
            for key in ("by", "on_behalf_of"):
                if isinstance(payload.get(key), int):
                    people.append(payload[key])
        return self.render(
            "signoff/notifications.html",
            nav=tenant_nav(session),
            page=page,
            show=show,
            unread=centre.unread_count(session, uid),
            labels={k: _(v) for k, v in preferences.KIND_LABELS.items()},
            names=user_names(session, people),
            request_titles=centre.request_titles(session, page.items),
            note_title=note_title,
        )

    @expose("/<notification_id>/read", methods=["POST"])
    def read(self, notification_id: str) -> Response:
        session = db.session
        try:
            centre.mark_read(session, int(g.user.id), notification_id)
        except NotFound:
            session.rollback()
            abort(404)
        session.commit()
        return _back()

    @expose("/read-all", methods=["POST"])
    def read_all(self) -> Response:
        session = db.session
        marked = centre.mark_all_read(session, int(g.user.id))
        session.commit()
        if marked:
            flash(
                ngettext(
                    "Marked %(num)s notification as read.",
                    "Marked %(num)s notifications as read.",
                    marked,
                ),
                "success",
            )
        return _back()

    @expose("/preferences", methods=["GET", "POST"])
    @no_cache
    def preferences_page(self) -> str | Response:
        session = db.session
        uid = int(g.user.id)
        channels = preferences.platform_channels()
        stored = preferences.load(session, uid)
        if request.method == "POST":
            settings: dict[str, Any] = {}
            for channel in preferences.PERSONAL_CHANNELS:
                if channel in channels:
                    settings[channel] = {
                        kind: f"{channel}:{kind}" in request.form
                        for kind in preferences.EVENT_KINDS
                    }
                elif isinstance(stored.get(channel), dict):
                    # A channel the platform hides keeps what the member chose before.
                    settings[channel] = stored[channel]
            if "email" in channels:
                settings[preferences.DIGEST_KEY] = "digest_reminders" in request.form
            elif stored.get(preferences.DIGEST_KEY) is True:
                settings[preferences.DIGEST_KEY] = True
            preferences.save(session, uid, settings)
            session.commit()
            flash(_("Notification preferences saved."), "success")
            return redirect(url_for("NotificationsView.preferences_page"))
        return self.render(
            "signoff/notification_preferences.html",
            nav=tenant_nav(session),
            channels=channels,
            channel_labels=CHANNEL_LABELS,
            kinds={k: _(v) for k, v in preferences.EVENT_KINDS.items()},
            chosen=preferences.resolved(stored),
        )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(NotificationsView())
