"""The tenant's roles in the portal's admin: ``/t/<tenant_slug>/admin/roles/``.

List (with how many members hold each), add, edit the name and description, delete
(the members holding it lose it). The built-in roles (Admin, Manager,
Finance_Manager, Requester) cannot be renamed or deleted
(:func:`signoff.tenancy.admins.builtin_role_refusal`). Every change is audited in the
same transaction. Ids in URLs are read under row-level security: another tenant's
role id is a 404 like a random one. The URLs are those of FAB's model view this
replaces (``list/``, ``add``, ``edit/<id>``, ``delete/<id>``, ``show/<id>``).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from signoff.audit.chain import append as audit_append
from signoff.db.ids import as_uuid
from signoff.extensions import db
from signoff.languages import translated
from signoff.roles import ADMIN_ROLE, BUILTIN_TENANT_ROLES
from signoff.tenancy.admins import builtin_role_refusal
from signoff.tenancy.models import MembershipRole, TenantRole
from signoff.text import InvalidText, check_text
from signoff.views.common import SignoffView, tenant_nav
from signoff.views.tenant_base import TenantScoped

NAME_MAX = 64
DESCRIPTION_MAX = 255


def _role_for(session: Session, role_id: str) -> TenantRole:
    """The bound tenant's role ``role_id``; 404 for a bad, missing or foreign id."""
    rid = as_uuid(role_id)
    role = session.get(TenantRole, rid) if rid is not None else None
    if role is None:
        abort(404)
    return role


def _holders(session: Session) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(MembershipRole.role_id, func.count()).group_by(MembershipRole.role_id)
    ).all()
    return {rid: int(n) for rid, n in rows}


def _read_form() -> tuple[str, str | None, dict[str, str]]:
    """Name and description from the form, with a message per bad field."""
    errors: dict[str, str] = {}
    name = (request.form.get("name") or "").strip()
    description = (request.form.get("description") or "").strip() or None
    try:
        check_text(name, field="name", limit=NAME_MAX)
        if not name:
            errors["name"] = _("Name: enter a name.")
    except InvalidText as exc:
        errors["name"] = _("Name: %(reason)s.", reason=translated(exc.reason))
    try:
        check_text(description or "", field="description", limit=DESCRIPTION_MAX)
    except InvalidText as exc:
        errors["description"] = _("Description: %(reason)s.", reason=translated(exc.reason))
    return name, description, errors


def _audit(session: Session, action: str, role: TenantRole, **payload: Any) -> None:
    audit_append(
        session,
        actor_id=int(g.user.id),
        on_behalf_of_id=None,
        action=action,
        object_type="tenant_role",
        object_id=str(role.id),
        payload={"name": role.name, **payload},
    )


def _name_taken(session: Session, name: str, but: uuid.UUID | None = None) -> bool:
    q = select(TenantRole.id).where(func.lower(TenantRole.name) == name.lower())
    if but is not None:
        q = q.where(TenantRole.id != but)
    return session.scalar(q) is not None


class TenantRolesView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>/admin/roles"
    default_view = "list"
    tenant_roles = (ADMIN_ROLE,)

    def _list_page(
        self, status: int = 200, errors: dict[str, str] | None = None, **form: Any
    ) -> Response:
        session = db.session
        roles = session.scalars(select(TenantRole).order_by(func.lower(TenantRole.name))).all()
        page = self.render(
            "signoff/admin_roles.html",
            nav=tenant_nav(session),
            roles=roles,
            holders=_holders(session),
            builtin=BUILTIN_TENANT_ROLES,
            errors=errors or {},
            form=form,
        )
        return Response(page, status=status, mimetype="text/html")

    @expose("/")
    @expose("/list/")
    @no_cache
    def list(self) -> Response:
        return self._list_page()

    @expose("/add", methods=["POST"])
    @no_cache
    def add(self) -> Response:
        session = db.session
        name, description, errors = _read_form()
        if not errors and _name_taken(session, name):
            errors["name"] = _("Name: a role called %(name)s exists already.", name=name)
        if errors:
            session.rollback()
            return self._list_page(400, errors, name=name, description=description)
        role = TenantRole(name=name, description=description)
        session.add(role)
        session.flush()
        _audit(session, "role.created", role)
        session.commit()
        flash(
            _("Role %(name)s added. Give it to members on their page in Members.", name=name),
            "success",
        )
        return redirect(url_for("TenantRolesView.list"))

    @expose("/show/<role_id>")
    @no_cache
    def show(self, role_id: str) -> Response:
        role = _role_for(db.session, role_id)
        return redirect(url_for("TenantRolesView.edit", role_id=role.id))

    @expose("/edit/<role_id>", methods=["GET", "POST"])
    @no_cache
    def edit(self, role_id: str) -> Response:
        session = db.session
        role = _role_for(session, role_id)
        errors: dict[str, str] = {}
        status = 200
        name, description = role.name, role.description
        if request.method == "POST":
            name, description, errors = _read_form()
            refusal = builtin_role_refusal(role.name, name) if name else None
            if refusal:
                errors["name"] = _("Name: %(reason)s.", reason=translated(refusal))
            elif not errors and _name_taken(session, name, but=role.id):
                errors["name"] = _("Name: a role called %(name)s exists already.", name=name)
            if not errors:
                old = role.name
                role.name, role.description = name, description
                _audit(session, "role.updated", role, previous_name=old)
                session.commit()
                flash(_("Role %(name)s saved.", name=name), "success")
                return redirect(url_for("TenantRolesView.list"))
            status = 400
        page = self.render(
            "signoff/admin_role_edit.html",
            nav=tenant_nav(session),
            role=role,
            name=name,
            description=description,
            errors=errors,
            builtin=role.name in BUILTIN_TENANT_ROLES,
            holders=_holders(session).get(role.id, 0),
        )
        session.rollback()
        return Response(page, status=status, mimetype="text/html")

    @expose("/delete/<role_id>", methods=["POST"])
    @no_cache
    def delete(self, role_id: str) -> Response:
        session = db.session
        role = _role_for(session, role_id)
        refusal = builtin_role_refusal(role.name, None)
        if refusal:
            session.rollback()
            flash(translated(refusal) + ".", "danger")
            return redirect(url_for("TenantRolesView.list"))
        if request.form.get("confirm") != "yes":
            session.rollback()
            flash('Tick "I understand" to delete the role.', "danger")
            return redirect(url_for("TenantRolesView.edit", role_id=role.id))
        holders = _holders(session).get(role.id, 0)
        _audit(session, "role.deleted", role, members_holding=holders)
        session.delete(role)
        session.commit()
        flash(_("Role %(name)s deleted.", name=role.name), "success")
        return redirect(url_for("TenantRolesView.list"))


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(TenantRolesView())
