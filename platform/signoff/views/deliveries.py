"""Tenant admin: notification deliveries that failed, under ``/t/<tenant_slug>/admin/deliveries/``.

The dead letter of every channel (e-mail, Slack, webhooks) and what is still being
retried, with the last error; a dead delivery can be retried (fresh attempts). Rows
are read under row-level security, so another tenant's delivery is a 404.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from signoff.db.binding import current_tenant_id
from signoff.db.ids import as_uuid
from signoff.extensions import db
from signoff.notifications.dispatch import retry_dead
from signoff.notifications.format import note_title
from signoff.notifications.models import NotificationDelivery
from signoff.roles import ADMIN_ROLE
from signoff.views.common import SignoffView, tenant_nav, user_names
from signoff.views.tenant_base import TenantScoped
from signoff.workflow.models import NotificationOutbox

SHOWN = {"dead": _l("Dead (no more attempts)"), "retrying": _l("Failed, will retry")}


class DeliveryAdminView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>/admin/deliveries"
    default_view = "list"
    tenant_roles = (ADMIN_ROLE,)

    @expose("/")
    @no_cache
    def list(self) -> str:
        session = db.session
        show = request.args.get("show", "dead")
        if show not in SHOWN:
            show = "dead"
        query = (
            select(NotificationDelivery, NotificationOutbox)
            .join(
                NotificationOutbox,
                (NotificationOutbox.tenant_id == NotificationDelivery.tenant_id)
                & (NotificationOutbox.id == NotificationDelivery.outbox_id),
            )
            .order_by(NotificationDelivery.created_at.desc())
            .limit(200)
        )
        if show == "dead":
            query = query.where(NotificationDelivery.status == "dead")
        else:
            query = query.where(
                NotificationDelivery.status == "pending", NotificationDelivery.attempts > 0
            )
        rows = session.execute(query).all()
        counts = dict(
            session.execute(
                select(NotificationDelivery.status, func.count()).group_by(
                    NotificationDelivery.status
                )
            ).all()
        )
        names = user_names(session, {n.recipient_id for _, n in rows if n.recipient_id})
        return self.render(
            "signoff/admin_deliveries.html",
            nav=tenant_nav(session),
            rows=rows,
            names=names,
            show=show,
            shown=SHOWN,
            counts=counts,
            note_title=note_title,
        )

    @expose("/<delivery_id>/retry", methods=["POST"])
    def retry(self, delivery_id: str) -> Response:
        found = as_uuid(delivery_id)
        tenant = current_tenant_id()
        if found is None or tenant is None:
            abort(404)
        if not retry_dead(db.session, tenant, found):
            abort(404)  # missing, another tenant's, or not dead: nothing to retry
        flash(_("The delivery will be attempted again within seconds."), "success")
        return redirect(url_for("DeliveryAdminView.list"))


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(DeliveryAdminView())
