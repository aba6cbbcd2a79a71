"""Tenant admin: API keys, the OpenAPI browser and an API quick start, under
``/t/<tenant_slug>/admin/api/``.

Keys are created and revoked through :mod:`signoff.tenancy.apikeys` (the same
actions as ``/api/v1/api-keys``, audited in the tenant's chain); the secret is on the
page that answers the form only, never in a redirect, a flash or the log. Ids in URLs
are read under row-level security, so another tenant's key is a 404 like a random id.

The OpenAPI browser is FAB's Swagger UI (its bundled script, served from this
origin) on a portal page for the tenant's Admins, who write the integrations;
FAB's own ``/swagger/v1`` stays for FAB admins.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from signoff.db.ids import as_uuid
from signoff.extensions import db
from signoff.languages import translated
from signoff.roles import ADMIN_ROLE
from signoff.tenancy import apikeys
from signoff.tenancy.access import current_membership, current_tenant
from signoff.tenancy.apikey_models import ApiKey
from signoff.tenancy.models import Membership
from signoff.text import InvalidText, check_text
from signoff.views.common import SignoffView, tenant_nav, user_names
from signoff.views.tenant_base import TenantScoped

#: The form's choice -> the key's scopes (``None``: everything the member may do).
SCOPE_CHOICES: dict[str, list[str] | None] = {"all": None, "read": ["read"]}


def _keys(session: Any) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ApiKey, Membership.user_id)
        .join(
            Membership,
            (Membership.tenant_id == ApiKey.tenant_id) & (Membership.id == ApiKey.membership_id),
        )
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id)
        .limit(500)
    ).all()
    names = user_names(session, [uid for _, uid in rows] + [k.created_by for k, _ in rows])
    now = datetime.now(UTC)
    return [
        {
            "key": key,
            "user": names.get(int(uid), str(uid)),
            "creator": names.get(int(key.created_by or 0)),
            "active": key.revoked_at is None and (key.expires_at is None or key.expires_at > now),
        }
        for key, uid in rows
    ]


def _name_problem(raw: str | None) -> tuple[str, str | None]:
    name = " ".join((raw or "").split())
    if not name:
        return name, "A name is required, such as the system that will use the key."
    if len(name) > 100:
        return name, _(
            "The name is %(length)s characters long; at most 100 are allowed.", length=len(name)
        )
    try:
        check_text(name, field="name", limit=100)
    except InvalidText as exc:
        return name, _("The name %(reason)s.", reason=translated(exc.reason))
    return name, None


class ApiAdminView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>/admin/api"
    default_view = "keys"
    tenant_roles = (ADMIN_ROLE,)

    def _keys_page(self, errors: dict[str, str], status: int = 200) -> str | Response:
        session = db.session
        page = self.render(
            "signoff/admin_api_keys.html",
            nav=tenant_nav(session),
            keys=_keys(session),
            errors=errors,
            form=request.form,
        )
        return page if status == 200 else Response(page, status=status, mimetype="text/html")

    @expose("/keys/")
    @no_cache
    def keys(self) -> str | Response:
        return self._keys_page({})

    @expose("/keys/", methods=["POST"])
    @no_cache
    def create_key(self) -> str | Response:
        session = db.session
        name, problem = _name_problem(request.form.get("name"))
        errors: dict[str, str] = {}
        if problem:
            errors["name"] = problem
        choice = request.form.get("scopes") or ""
        if choice not in SCOPE_CHOICES:
            errors["scopes"] = "Choose what the key may do: everything you may do, or read only."
        membership = current_membership(session)
        if membership is None or not membership.active:
            abort(404)
        if errors:
            session.rollback()
            return self._keys_page(errors, 422)
        key, secret = apikeys.create(
            session,
            membership=membership,
            name=name,
            scopes=SCOPE_CHOICES[choice],
            expires_at=None,
            created_by=int(g.user.id),
        )
        session.commit()
        # The secret is on this answer only (not in a redirect, a flash or the log).
        return self.render(
            "signoff/admin_api_key_created.html",
            nav=tenant_nav(session),
            key=key,
            secret=secret,
            base_url=request.host_url.rstrip("/"),
        )

    @expose("/keys/<key_id>/revoke", methods=["POST"])
    def revoke_key(self, key_id: str) -> Response:
        session = db.session
        kid = as_uuid(key_id)
        key = session.get(ApiKey, kid) if kid else None
        if key is None:
            abort(404)
        if apikeys.revoke(session, key, by=int(g.user.id)):
            session.commit()
            flash(_("Key “%(name)s” revoked: it is refused from now on.", name=key.name), "success")
        return redirect(url_for("ApiAdminView.keys"))

    @expose("/docs")
    @no_cache
    def docs(self) -> str:
        session = db.session
        return self.render(
            "signoff/admin_api_docs.html",
            nav=tenant_nav(session),
            openapi_url=url_for("SignoffOpenApi.get"),
        )

    @expose("/quickstart")
    @no_cache
    def quickstart(self) -> str:
        session = db.session
        return self.render(
            "signoff/admin_api_quickstart.html",
            nav=tenant_nav(session),
            tenant=current_tenant(session),
            keys=[k for k in _keys(session) if k["active"]],
            base_url=request.host_url.rstrip("/"),
            secret=None,
        )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(ApiAdminView())
