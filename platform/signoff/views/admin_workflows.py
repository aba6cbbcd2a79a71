"""Tenant admin: workflows (list, edit as YAML with errors next to their paths, version
history, diff, SVG diagram) and approval rules, under ``/t/<tenant_slug>/admin/``.

A workflow key in the URL resolves through the tenant's effective workflows, so
another tenant's key is a 404 like a made-up one. Saving goes through
:func:`~signoff.workflow.actions.do_save_workflow` (validation, a new version,
its audit event, cache invalidation after commit).
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder import AppBuilder, expose
from flask_appbuilder.security.decorators import no_cache
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from signoff.audit.chain import append as audit_append
from signoff.db.ids import as_uuid
from signoff.extensions import db
from signoff.languages import translated
from signoff.roles import ADMIN_ROLE
from signoff.security.actor import request_actor
from signoff.tenancy.access import require_tenant
from signoff.views.common import SignoffView, tenant_nav, user_names
from signoff.views.diagram import workflow_svg
from signoff.views.forms import YamlProblem, from_yaml, to_yaml
from signoff.views.tenant_base import TenantScoped
from signoff.workflow import reality, registry
from signoff.workflow.actions import ActionError, do_save_workflow
from signoff.workflow.definitions import (
    DefinitionError,
    FieldError,
    definition_to_dict,
    parse_definition,
)
from signoff.workflow.errors import DefinitionWarnings
from signoff.workflow.models import ApprovalRule, Workflow, WorkflowVersion
from signoff.workflow.rules import rule_to_dict

NEW_TEMPLATE = {
    "name": "New workflow",
    "description": "",
    "steps": [{"name": "Manager Approval", "required_role": "Manager", "requires_mfa": False}],
    "fields": [{"name": "amount", "type": "decimal", "required": True, "label": "Amount"}],
}
WORKFLOW_KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
WORKFLOW_KEY_HINT = "lowercase letters, digits and underscores, starting with a letter"


def _versions(key: str) -> list[WorkflowVersion]:
    return list(
        db.session.scalars(
            select(WorkflowVersion)
            .join(
                Workflow,
                (Workflow.tenant_id == WorkflowVersion.tenant_id)
                & (Workflow.id == WorkflowVersion.workflow_id),
            )
            .where(Workflow.key == key)
            .order_by(WorkflowVersion.version.desc())
        )
    )


def _canonical_yaml(key: str, raw: dict[str, Any]) -> str:
    """The definition's YAML in its canonical key order (JSONB does not keep the order)."""
    try:
        return to_yaml(definition_to_dict(parse_definition(key, raw)))
    except DefinitionError:
        return to_yaml(raw)


def _new_template() -> dict[str, Any]:
    """The new-workflow template, naming one of the tenant's own roles."""
    role = reality.suggested_role(db.session)
    step = {"name": f"{role} Approval", "required_role": role, "requires_mfa": False}
    return {**NEW_TEMPLATE, "steps": [step]}


def _line_errors(errors: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    return sorted(errors.items(), key=lambda kv: kv[0])


class WorkflowAdminView(TenantScoped, SignoffView):
    route_base = "/t/<tenant_slug>/admin/workflows"
    default_view = "list"
    tenant_roles = (ADMIN_ROLE,)

    def _effective(self, key: str) -> registry.Effective:
        found = registry.get_effective(db.session, require_tenant(), key)
        if found is None:
            abort(404)
        return found

    @expose("/")
    @no_cache
    def list(self) -> str:
        workflows = registry.effective_workflows(db.session, require_tenant())
        return self.render(
            "signoff/admin_workflows.html", nav=tenant_nav(db.session), workflows=workflows
        )

    @expose("/<key>/")
    @no_cache
    def show(self, key: str) -> str:
        eff = self._effective(key)
        defn = eff.definition
        versions = _versions(key)
        names = user_names(db.session, [v.created_by for v in versions])
        return self.render(
            "signoff/admin_workflow.html",
            nav=tenant_nav(db.session),
            eff=eff,
            defn=defn,
            svg=workflow_svg(defn, rules=registry.tenant_rules(db.session, require_tenant(), key)),
            text=to_yaml(definition_to_dict(defn)),
            versions=versions,
            names=names,
        )

    @expose("/<key>/versions/<int:number>")
    @no_cache
    def version(self, key: str, number: int) -> str:
        self._effective(key)
        found = next((v for v in _versions(key) if v.version == number), None)
        if found is None:
            abort(404)
        defn = parse_definition(key, found.definition)
        return self.render(
            "signoff/admin_workflow_version.html",
            nav=tenant_nav(db.session),
            key=key,
            version=found,
            defn=defn,
            svg=workflow_svg(defn),
            text=to_yaml(definition_to_dict(defn)),
        )

    @expose("/<key>/diff")
    @no_cache
    def diff(self, key: str) -> str:
        self._effective(key)
        versions = {v.version: v for v in _versions(key)}
        try:
            a = int(request.args.get("a", ""))
            b = int(request.args.get("b", ""))
        except ValueError:
            ordered = sorted(versions)
            if len(ordered) < 2:
                abort(404)
            a, b = ordered[-2], ordered[-1]
        if a not in versions or b not in versions:
            abort(404)
        lines = list(
            difflib.unified_diff(
                _canonical_yaml(key, versions[a].definition).splitlines(),
                _canonical_yaml(key, versions[b].definition).splitlines(),
                fromfile=f"version {a}",
                tofile=f"version {b}",
                lineterm="",
                n=3,
            )
        )
        rows = []
        for line in lines:
            kind = "ctx"
            if line.startswith(("+++", "---")):
                kind = "file"
            elif line.startswith("@@"):
                kind = "hunk"
            elif line.startswith("+"):
                kind = "add"
            elif line.startswith("-"):
                kind = "del"
            rows.append((kind, line))
        return self.render(
            "signoff/admin_workflow_diff.html",
            nav=tenant_nav(db.session),
            key=key,
            a=a,
            b=b,
            rows=rows,
            numbers=sorted(versions),
        )

    @expose("/new", methods=["GET", "POST"])
    @no_cache
    def new(self) -> str | Response:
        return self._edit(None)

    @expose("/<key>/edit", methods=["GET", "POST"])
    @no_cache
    def edit(self, key: str) -> str | Response:
        return self._edit(key)

    def _edit(self, key: str | None) -> str | Response:
        eff = self._effective(key) if key else None
        text = _canonical_yaml(key, eff.raw) if eff and key else to_yaml(_new_template())
        errors: dict[str, list[str]] = {}
        warnings: dict[str, list[str]] = {}
        new_key = key or ""
        status = 200
        if request.method == "POST":
            text = request.form.get("definition", "")
            if key is None:
                new_key = (request.form.get("key") or "").strip()
                if not WORKFLOW_KEY_RE.fullmatch(new_key):
                    errors["key"] = [f"use {WORKFLOW_KEY_HINT} (at most 64)"]
                elif registry.get_effective(db.session, require_tenant(), new_key) is not None:
                    errors["key"] = ["a workflow with this key exists; edit it instead"]
            data = None
            try:
                data = from_yaml(text)
            except YamlProblem as exc:
                where = f" (line {exc.line})" if exc.line else ""
                errors["definition"] = [translated(exc.message) + where]
            if data is not None and not errors:
                try:
                    number = do_save_workflow(
                        db.session,
                        actor=request_actor(),
                        key=new_key,
                        definition=data,
                        check_tenant=True,
                        confirm_warnings=request.form.get("confirm_warnings") == "yes",
                    )
                    flash(_("Saved as version %(num)s.", num=number), "success")
                    return redirect(url_for("WorkflowAdminView.show", key=new_key))
                except DefinitionWarnings as exc:
                    db.session.rollback()
                    warnings = exc.as_dict()
                except DefinitionError as exc:
                    db.session.rollback()
                    errors.update(exc.as_dict())
                except ActionError as exc:
                    errors["definition"] = [translated(exc.message)]
            status = 422
        page = self.render(
            "signoff/admin_workflow_edit.html",
            nav=tenant_nav(db.session),
            key=key,
            new_key=new_key,
            text=text,
            errors=_line_errors(errors),
            error_map=errors,
            warnings=_line_errors(warnings),
        )
        return page if status == 200 else Response(page, mimetype="text/html", status=status)


class RuleAdminView(TenantScoped, SignoffView):
    """The tenant's approval rules (``FAB_APPROVAL_RULES`` format), one YAML text each."""

    route_base = "/t/<tenant_slug>/admin/rules"
    default_view = "list"
    tenant_roles = (ADMIN_ROLE,)

    @expose("/")
    @no_cache
    def list(self) -> str:
        rows = list(
            db.session.scalars(
                select(ApprovalRule).order_by(ApprovalRule.priority.desc(), ApprovalRule.name)
            )
        )
        return self.render(
            "signoff/admin_rules.html",
            nav=tenant_nav(db.session),
            rows=rows,
            texts={r.id: to_yaml(r.definition) for r in rows},
        )

    @expose("/new", methods=["GET", "POST"])
    @no_cache
    def new(self) -> str | Response:
        return self._edit(None)

    @expose("/<rule_id>/edit", methods=["GET", "POST"])
    @no_cache
    def edit(self, rule_id: str) -> str | Response:
        rid = as_uuid(rule_id)
        row = db.session.get(ApprovalRule, rid) if rid else None
        if row is None:
            abort(404)
        return self._edit(row)

    @expose("/<rule_id>/delete", methods=["POST"])
    def delete(self, rule_id: str) -> Response:
        rid = as_uuid(rule_id)
        row = db.session.get(ApprovalRule, rid) if rid else None
        if row is None:
            abort(404)
        name = row.name
        db.session.delete(row)
        _audit_rule("rule.deleted", str(rid), {"name": name})
        db.session.commit()
        flash(_("Rule “%(name)s” deleted.", name=name), "success")
        return redirect(url_for("RuleAdminView.list"))

    def _edit(self, row: ApprovalRule | None) -> str | Response:
        example = {
            "name": "High value",
            "priority": 100,
            "conditions": [{"field": "input_data.amount", "operator": ">", "value": 5000}],
            "approvers": [{"type": "role", "role": reality.suggested_role(db.session)}],
        }
        text = to_yaml(row.definition if row else example)
        workflow_key = (row.workflow_key if row else "") or ""
        active = row.active if row else True
        errors: dict[str, list[str]] = {}
        workflows = registry.effective_workflows(db.session, require_tenant())
        if request.method == "POST":
            text = request.form.get("definition", "")
            workflow_key = request.form.get("workflow") or ""
            active = request.form.get("active") == "on"
            if workflow_key and workflow_key not in workflows:
                errors["workflow"] = ["no such workflow"]
            data = None
            try:
                data = from_yaml(text)
            except YamlProblem as exc:
                errors["definition"] = [
                    translated(exc.message) + (f" (line {exc.line})" if exc.line else "")
                ]
            if data is not None and not errors:
                try:
                    (rule,) = registry.validate_rules([data])
                    found = reality.check_rule(db.session, rule)
                    if found:
                        raise DefinitionError([FieldError(f.path, f.message) for f in found])
                except DefinitionError as exc:
                    errors.update(exc.as_dict())
                else:
                    clash = db.session.scalars(
                        select(ApprovalRule).where(ApprovalRule.name == rule.name)
                    ).first()
                    if clash is not None and (row is None or clash.id != row.id):
                        errors["rules[0].name"] = ["another rule has this name"]
                    else:
                        if row is None:
                            row = ApprovalRule(name=rule.name, definition={})
                            db.session.add(row)
                        row.name = rule.name
                        row.priority = rule.priority
                        row.workflow_key = workflow_key or None
                        row.definition = rule_to_dict(rule)
                        row.active = active
                        db.session.flush()
                        _audit_rule(
                            "rule.saved",
                            str(row.id),
                            {
                                "name": rule.name,
                                "workflow": workflow_key or None,
                                "active": active,
                                "definition": row.definition,
                            },
                        )
                        db.session.commit()
                        flash(_("Rule “%(name)s” saved.", name=rule.name), "success")
                        return redirect(url_for("RuleAdminView.list"))
        page = self.render(
            "signoff/admin_rule_edit.html",
            nav=tenant_nav(db.session),
            row=row,
            text=text,
            workflow_key=workflow_key,
            active=active,
            workflows=workflows,
            errors=_line_errors(errors),
        )
        return page if request.method == "GET" else Response(page, mimetype="text/html", status=422)


def _audit_rule(action: str, rule_id: str, payload: dict[str, Any]) -> None:
    audit_append(
        db.session,
        actor_id=int(g.user.id),
        on_behalf_of_id=None,
        action=action,
        object_type="approval_rule",
        object_id=rule_id,
        payload=payload,
    )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(WorkflowAdminView())
    appbuilder.add_view_no_menu(RuleAdminView())
