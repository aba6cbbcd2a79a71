"""Tenant admin: every request of the organisation under ``/t/<tenant_slug>/admin/requests/``
(issue 15 item 1).

Filters (workflow, status, requester, approver, submitted between two dates, overdue),
full-text search over titles and input fields, sorting, keyset pages and a CSV export
of the same selection. The queries are :mod:`signoff.workflow.search`, read under
row-level security: another tenant's requests never match, whatever the arguments.
Bad arguments answer 400 and name the field.

A workflow whose definition lists ``auditors: [role, ...]`` opens the page to the
members of those roles, read-only and restricted to the workflows that name one of
their roles (the list and the CSV alike); anyone else who is not an admin gets 403.
Each title links the request page, which an auditor reads without its forms
(:func:`signoff.workflow.queries.request_access`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask import abort, request
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from signoff.extensions import db
from signoff.roles import ADMIN_ROLE
from signoff.tenancy.access import current_tenant, require_roles, require_tenant
from signoff.tenancy.models import Membership
from signoff.views.common import SignoffView, tenant_nav
from signoff.views.tenant_base import TenantScoped
from signoff.workflow import search
from signoff.workflow.models import ApprovalStep, Workflow
from signoff.workflow.registry import audited_workflows

#: The export's ceiling: a larger selection is refused with a 400 asking to narrow it.
EXPORT_LIMIT = 50_000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """Text for a spreadsheet cell, formula injection neutralised (OWASP)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _people(session: Any) -> list[tuple[int, str]]:
    rows = session.execute(
        select(User.id, User.first_name, User.last_name, User.username)
        .join(Membership, Membership.user_id == User.id)
        .order_by(func.lower(User.first_name), User.username)
    ).all()
    return [
        (int(uid), " ".join(p for p in (first, last) if p and p != "-") or username)
        for uid, first, last, username in rows
    ]


def _open_steps(
    session: Any, ids: list[Any], names: dict[int, str]
) -> dict[Any, list[dict[str, Any]]]:
    """Active steps of the listed requests (the "waiting for" and "due" columns)."""
    out: dict[Any, list[dict[str, Any]]] = {}
    if not ids:
        return out
    for step in session.scalars(
        select(ApprovalStep)
        .where(ApprovalStep.request_id.in_(ids), ApprovalStep.status == "active")
        .order_by(ApprovalStep.step_index)
    ):
        who = [names.get(int(u), str(u)) for u in step.open_approvers]
        out.setdefault(step.request_id, []).append(
            {
                "name": step.name,
                "who": ", ".join(who[:3]) + (f" +{len(who) - 3}" if len(who) > 3 else ""),
                "due_at": step.due_at,
            }
        )
    return out


def _fields(row: Any) -> str:
    """The first few input fields, as "name: value" (the search covers all of them)."""
    parts = []
    for key, value in (row.input_data or {}).items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value)
            parts.append(f"{key}: {text[:40]}{'…' if len(text) > 40 else ''}")
        if len(parts) == 3:
            break
    return " · ".join(parts)


def _scope(session: Any) -> tuple[str, ...] | None:
    """None for the tenant's admins (every workflow); for an auditor, the workflows
    whose ``auditors`` name one of their roles; 403 for anyone else."""
    roles = set(require_roles(session, ()).role_names)
    if ADMIN_ROLE in roles:
        return None
    keys = audited_workflows(session, require_tenant(), roles)
    if not keys:
        abort(403)
    return keys


def _filter(session: Any) -> search.RequestFilter:
    return replace(search.parse_filter(request.args), scope=_scope(session))


class AdminRequestsView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>/admin/requests"
    default_view = "index"
    # Members: the tenant's admins, and the auditors of a workflow (``_scope``).
    tenant_roles = ()

    @expose("/")
    @no_cache
    def index(self) -> str | Response:
        session = db.session
        f = _filter(session)
        now = datetime.now(UTC)
        result = search.page(session, f, now=now) if not f.errors else None
        people = _people(session)
        names = dict(people)
        rows = result.rows if result else []
        steps = _open_steps(session, [r.id for r in rows], names)
        page = self.render(
            "signoff/admin_requests.html",
            nav=tenant_nav(session),
            f=f,
            result=result,
            rows=rows,
            steps=steps,
            fields={r.id: _fields(r) for r in rows},
            names=names,
            people=people,
            workflows=[
                (key, name)
                for key, name in session.execute(
                    select(Workflow.key, Workflow.name).order_by(Workflow.name)
                ).all()
                if f.scope is None or key in f.scope
            ],
            auditor=f.scope is not None,
            statuses=search.STATUSES,
            sorts=search.SORTS,
            now=now,
            first_page=request.args.get("after") is None,
        )
        return page if not f.errors else Response(page, status=400, mimetype="text/html")

    @expose("/export.csv")
    @no_cache
    def export(self) -> Response:
        session = db.session
        f = _filter(session)
        if f.errors:
            field, message = next(iter(f.errors.items()))
            return Response(f"{field} {message}\n", status=400, mimetype="text/plain")
        found = search.match(session, f.q) if f.q else None
        approver = search.approver_match(session, f.approver) if f.approver is not None else None
        count = 0
        if (found is None or not found.empty) and (approver is None or not approver.empty):
            count = session.scalar(
                select(func.count()).select_from(
                    search.filtered(f, found=found, approver=approver)
                    .limit(EXPORT_LIMIT + 1)
                    .order_by(None)
                    .subquery()
                )
            )
        if int(count or 0) > EXPORT_LIMIT:
            message = (
                _("more than %(limit)s requests match: narrow the filters", limit=EXPORT_LIMIT)
                + "\n"
            )
            return Response(message, status=400, mimetype="text/plain")
        names = dict(_people(session))
        slug = current_tenant(session).slug
        rows = list(search.iter_all(session, f, limit=EXPORT_LIMIT, found=found, approver=approver))

        def generate() -> Iterator[str]:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(
                [
                    "id",
                    "title",
                    "workflow",
                    "version",
                    "status",
                    "requester_id",
                    "requester",
                    "submitted_at",
                    "completed_at",
                    "input_data",
                ]
            )
            for r in rows:
                writer.writerow(
                    [
                        str(r.id),
                        _cell(r.title),
                        _cell(r.workflow_key),
                        r.version,
                        r.status,
                        r.requester_id,
                        _cell(names.get(r.requester_id, "")),
                        r.submitted_at.astimezone(UTC).isoformat(),
                        r.completed_at.astimezone(UTC).isoformat() if r.completed_at else "",
                        _cell(json.dumps(r.input_data, sort_keys=True, ensure_ascii=False)),
                    ]
                )
                yield out.getvalue()
                out.seek(0)
                out.truncate()
            if not rows:
                yield out.getvalue()

        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        resp = Response("".join(generate()), mimetype="text/csv")
        resp.headers["Content-Disposition"] = f'attachment; filename="{slug}-requests-{stamp}.csv"'
        return resp


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(AdminRequestsView())
