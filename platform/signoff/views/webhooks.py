"""Tenant admin: webhook endpoints under ``/t/<tenant_slug>/admin/webhooks/``.

Register an endpoint (the secret is shown once, on the page that answers the form),
change or delete it, rotate its secret, send a test event, read the delivery log and
redeliver. The work is :mod:`signoff.notifications.webhook_endpoints` (audited); ids in
URLs are read under row-level security, so another tenant's endpoint or delivery is a
404 like a random id.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from signoff.db.binding import current_tenant_id
from signoff.errors import ActionError, NotFound
from signoff.extensions import db
from signoff.languages import translated
from signoff.notifications import webhook_endpoints as hooks
from signoff.notifications.models import WebhookEndpoint
from signoff.notifications.webhooks import EVENT_TYPES
from signoff.roles import ADMIN_ROLE
from signoff.views.common import SignoffView, tenant_nav, user_names
from signoff.views.tenant_base import TenantScoped

#: Badge class of each delivery status (the stylesheet's request badges).
STATUS_BADGE = {
    "sent": "approved",
    "dead": "rejected",
    "pending": "pending",
    "skipped": "withdrawn",
}


def _load(endpoint_id: str) -> WebhookEndpoint:
    try:
        return hooks.get_endpoint_for(db.session, endpoint_id)
    except NotFound:
        abort(404)


def _form_types() -> list[str]:
    return [t for t in request.form.getlist("event_types") if t]


class WebhookAdminView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>/admin/webhooks"
    default_view = "list"
    tenant_roles = (ADMIN_ROLE,)

    def _list_page(self, errors: dict[str, str] | None = None) -> str:
        session = db.session
        _total, rows = hooks.list_endpoints(session, limit=200)
        return self.render(
            "signoff/admin_webhooks.html",
            nav=tenant_nav(session),
            endpoints=rows,
            event_types=EVENT_TYPES,
            errors=errors or {},
            form=request.form,
        )

    def _detail_page(
        self,
        row: WebhookEndpoint,
        *,
        secret: str | None = None,
        errors: dict[str, str] | None = None,
        result: dict[str, Any] | None = None,
    ) -> str:
        session = db.session
        total, deliveries = hooks.list_deliveries(session, row, limit=50)
        return self.render(
            "signoff/admin_webhook.html",
            nav=tenant_nav(session),
            endpoint=row,
            secret=secret,
            deliveries=deliveries,
            deliveries_total=total,
            event_types=EVENT_TYPES,
            errors=errors or {},
            form=request.form if errors else {},
            result=result,
            badge=STATUS_BADGE,
            creator=user_names(session, [row.created_by]).get(row.created_by or 0),
        )

    @expose("/")
    @no_cache
    def list(self) -> str:
        return self._list_page()

    @expose("/", methods=["POST"])
    @no_cache
    def create(self) -> str | Response:
        session = db.session
        try:
            row, secret = hooks.create_endpoint(
                session,
                url=request.form.get("url") or "",
                event_types=_form_types(),
                description=request.form.get("description"),
                created_by=int(g.user.id),
            )
            session.commit()
        except ActionError as exc:
            session.rollback()
            return self._list_page({exc.field or "url": exc.message})
        # The secret is on this answer only (not in a redirect, a flash or the log).
        flash(
            _("Endpoint registered. Copy the signing secret now: it is shown only once."), "success"
        )
        return self._detail_page(row, secret=secret)

    @expose("/<endpoint_id>", methods=["GET", "POST"])
    @no_cache
    def detail(self, endpoint_id: str) -> str | Response:
        session = db.session
        row = _load(endpoint_id)
        if request.method == "POST":
            try:
                hooks.update_endpoint(
                    session,
                    row,
                    by=int(g.user.id),
                    url=request.form.get("url") or "",
                    event_types=_form_types(),
                    description=request.form.get("description"),
                    active=request.form.get("active") == "on",
                    fields=("url", "event_types", "description", "active"),
                )
                session.commit()
            except ActionError as exc:
                session.rollback()
                return self._detail_page(
                    _load(endpoint_id), errors={exc.field or "url": exc.message}
                )
            flash(_("Endpoint saved."), "success")
            return redirect(url_for("WebhookAdminView.detail", endpoint_id=row.id))
        return self._detail_page(row)

    @expose("/<endpoint_id>/rotate", methods=["POST"])
    @no_cache
    def rotate(self, endpoint_id: str) -> str:
        session = db.session
        row = _load(endpoint_id)
        secret = hooks.rotate_secret(session, row, by=int(g.user.id))
        session.commit()
        flash(_("New signing secret: copy it now. The old secret signs nothing more."), "success")
        return self._detail_page(row, secret=secret)

    @expose("/<endpoint_id>/delete", methods=["POST"])
    def delete(self, endpoint_id: str) -> Response:
        session = db.session
        row = _load(endpoint_id)
        url = row.url
        hooks.delete_endpoint(session, row, by=int(g.user.id))
        session.commit()
        flash(_("Endpoint %(url)s deleted.", url=url), "success")
        return redirect(url_for("WebhookAdminView.list"))

    @expose("/<endpoint_id>/test", methods=["POST"])
    @no_cache
    def test(self, endpoint_id: str) -> Response:
        row = _load(endpoint_id)
        tenant_id = current_tenant_id()
        assert tenant_id is not None
        try:
            result = hooks.send_test(db.session, tenant_id, row, by=int(g.user.id))
        except ActionError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
        else:
            _flash_result(_("Test event"), result)
        return redirect(url_for("WebhookAdminView.detail", endpoint_id=endpoint_id))

    @expose("/deliveries/<delivery_id>/redeliver", methods=["POST"])
    @no_cache
    def redeliver(self, delivery_id: str) -> Response:
        tenant_id = current_tenant_id()
        assert tenant_id is not None
        try:
            result = hooks.redeliver(db.session, tenant_id, delivery_id, by=int(g.user.id))
        except NotFound:
            abort(404)
        except ActionError as exc:
            db.session.rollback()
            flash(exc.message, "danger")
            return redirect(url_for("WebhookAdminView.list"))
        _flash_result(_("Redelivery"), result)
        return redirect(url_for("WebhookAdminView.detail", endpoint_id=result["endpoint_id"]))


def _flash_result(what: str, result: dict[str, Any]) -> None:
    code = result.get("response_code")
    if result["status"] == "sent":
        flash(
            _(
                "%(what)s delivered: HTTP %(code)s in %(ms)s ms.",
                what=what,
                code=code,
                ms=result.get("latency_ms"),
            ),
            "success",
        )
    elif result["status"] == "pending":
        flash(
            _(
                "%(what)s failed (%(error)s); it will be retried.",
                what=what,
                error=translated(result.get("last_error") or ""),
            ),
            "warning",
        )
    else:
        flash(
            _(
                "%(what)s failed: %(error)s",
                what=what,
                error=translated(result.get("last_error") or ""),
            ),
            "danger",
        )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(WebhookAdminView())
