"""Tenant manifests (``tenants/*.yaml``): apply idempotently, export back.

A manifest describes one tenant: its record, its roles, its members (FAB users,
created when missing) and, once the workflow domain is installed, its workflow
definitions and rules. Applying the same file twice changes nothing the second time.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from signoff.db.binding import bound_tenant
from signoff.extensions import current_appbuilder
from signoff.roles import BUILTIN_TENANT_ROLES, MEMBER_ROLE
from signoff.security.passwords import hash_password
from signoff.tenancy.accounts import normalize_email
from signoff.tenancy.models import (
    PLANS,
    Membership,
    MembershipRole,
    Tenant,
    TenantRole,
)
from signoff.workflow.errors import DefinitionError
from signoff.workflow.models import ApprovalRule, Workflow, WorkflowVersion
from signoff.workflow.registry import add_version, validate_rules
from signoff.workflow.rules import rule_to_dict


class ManifestError(ValueError):
    """The manifest is invalid; the message names the key."""


@dataclass
class ApplyReport:
    tenant: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    def changed(self) -> bool:
        return bool(self.created or self.updated)


def load_manifest(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: a manifest is a mapping")
    return data


def _req(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping or mapping[key] in (None, ""):
        raise ManifestError(f"{where}.{key} is required")
    return mapping[key]


def _ensure_user(app: Flask, session: Session, spec: Mapping[str, Any], where: str) -> Any:
    sm = current_appbuilder(app).sm
    username = _req(spec, "username", where)
    user = sm.find_user(username=username)
    if user is None:
        email, problem = normalize_email(_req(spec, "email", where))
        if problem or email is None:
            raise ManifestError(f"{where}.email {problem}")
        if sm.find_user(email=email) is not None:
            raise ManifestError(
                f"{where}.email {email!r} belongs to another account: use that account's username"
            )
        member_role = sm.find_role(MEMBER_ROLE)
        if member_role is None:
            raise ManifestError("FAB role 'Member' is missing: run `signoff db upgrade` first")
        user = sm.user_model()
        user.username = username
        user.email = email
        user.first_name = spec.get("first_name") or username
        user.last_name = spec.get("last_name") or "-"
        user.active = True
        user.roles = [member_role]
        if spec.get("password"):
            user.password = hash_password(str(spec["password"]))
        session.add(user)
        session.flush()
    return user


def apply_manifest(app: Flask, session: Session, data: Mapping[str, Any]) -> ApplyReport:
    """Create or update the tenant a manifest describes, in one transaction per tenant."""
    tspec = _req(data, "tenant", "manifest")
    slug = _req(tspec, "slug", "tenant")
    report = ApplyReport(tenant=slug)
    plan = tspec.get("plan", "free")
    if plan not in PLANS:
        raise ManifestError(f"tenant.plan must be one of {', '.join(PLANS)}")

    tenant = session.scalars(select(Tenant).where(Tenant.slug == slug)).first()
    if tenant is None:
        tenant = Tenant(slug=slug, name=_req(tspec, "name", "tenant"), plan=plan)
        session.add(tenant)
        report.created.append(f"tenant {slug}")
    for attr in ("name", "plan", "accent_color", "mfa_required"):
        if attr in tspec and getattr(tenant, attr) != tspec[attr]:
            setattr(tenant, attr, tspec[attr])
            if tenant.id is not None:
                report.updated.append(f"tenant.{attr}")
    session.flush()

    members = list(data.get("members") or [])
    users = {
        m["username"]: _ensure_user(app, session, m, f"members[{i}]")
        for i, m in enumerate(members)
        if isinstance(m, Mapping) and "username" in m
    }
    tenant_id: uuid.UUID = tenant.id
    # One transaction for the whole manifest: a refusal below (an unknown role, a
    # manager who is not a member, an invalid workflow) leaves nothing behind.
    session.flush()

    with bound_tenant(tenant_id, session):
        role_names = list(dict.fromkeys([*BUILTIN_TENANT_ROLES, *(data.get("roles") or [])]))
        roles = {r.name: r for r in session.scalars(select(TenantRole))}
        for name in role_names:
            if name not in roles:
                roles[name] = TenantRole(name=name)
                session.add(roles[name])
                report.created.append(f"role {name}")
        session.flush()

        existing = {m.user_id: m for m in session.scalars(select(Membership))}
        by_username: dict[str, Membership] = {}
        for i, spec in enumerate(members):
            where = f"members[{i}]"
            user = users[_req(spec, "username", where)]
            membership = existing.get(user.id)
            if membership is None:
                membership = Membership(user_id=user.id)
                session.add(membership)
                session.flush()
                report.created.append(f"member {user.username}")
            by_username[user.username] = membership
            wanted = set(spec.get("roles") or ["Requester"])
            unknown = wanted - roles.keys()
            if unknown:
                raise ManifestError(f"{where}.roles: unknown role(s) {sorted(unknown)}")
            have = {
                mr.role_id
                for mr in session.scalars(
                    select(MembershipRole).where(MembershipRole.membership_id == membership.id)
                )
            }
            for name in sorted(wanted):
                if roles[name].id not in have:
                    session.add(MembershipRole(membership_id=membership.id, role_id=roles[name].id))
                    report.updated.append(f"member {user.username} +{name}")
        session.flush()
        for i, spec in enumerate(members):
            manager = spec.get("manager")
            if not manager:
                continue
            if manager not in by_username:
                raise ManifestError(f"members[{i}].manager: {manager!r} is not a member here")
            membership = by_username[spec["username"]]
            if membership.manager_id != by_username[manager].id:
                membership.manager_id = by_username[manager].id
                report.updated.append(f"member {spec['username']} manager={manager}")
        _apply_workflows(session, data, report)
        session.commit()
    return report


def _apply_workflows(session: Session, data: Mapping[str, Any], report: ApplyReport) -> None:
    """Workflows become tenant versions (a new one only when the text changed); rules are
    upserted by name. Invalid ones raise DefinitionError with their paths."""
    workflows = data.get("workflows") or {}
    if not isinstance(workflows, Mapping):
        raise ManifestError("workflows must be a mapping of key -> definition")
    for key, raw in workflows.items():
        before = session.scalar(
            select(func.count())
            .select_from(WorkflowVersion)
            .where(WorkflowVersion.source == "tenant")
        )
        try:
            version = add_version(session, key=str(key), raw=raw, source="tenant", created_by=None)
        except DefinitionError as exc:
            where = f"workflows.{key}"
            raise ManifestError(
                "; ".join(
                    f"{where}.{e.path}: {e.message}" if e.path else f"{where}: {e.message}"
                    for e in exc.errors
                )
            ) from exc
        after = session.scalar(
            select(func.count())
            .select_from(WorkflowVersion)
            .where(WorkflowVersion.source == "tenant")
        )
        if after != before:
            report.updated.append(f"workflow {key} v{version.version}")
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list) or not all(isinstance(r, Mapping) for r in raw_rules):
        raise ManifestError("rules must be a list of rules")
    # ``workflow`` scopes a rule to one workflow; it is the manifest's key, not the rule's.
    try:
        parsed = validate_rules(
            [{k: v for k, v in r.items() if k != "workflow"} for r in raw_rules]
        )
    except DefinitionError as exc:
        raise ManifestError("; ".join(str(e) for e in exc.errors)) from exc
    existing = {r.name: r for r in session.scalars(select(ApprovalRule))}
    for raw, rule in zip(raw_rules, parsed, strict=True):
        definition = rule_to_dict(rule)
        wf_key = raw.get("workflow")
        row = existing.get(rule.name)
        if row is None:
            session.add(
                ApprovalRule(
                    name=rule.name,
                    priority=rule.priority,
                    workflow_key=wf_key,
                    definition=definition,
                )
            )
            report.created.append(f"rule {rule.name}")
        elif (row.definition, row.priority, row.workflow_key) != (
            definition,
            rule.priority,
            wf_key,
        ):
            row.definition, row.priority, row.workflow_key = definition, rule.priority, wf_key
            report.updated.append(f"rule {rule.name}")


def export_manifest(app: Flask, session: Session, slug: str) -> dict[str, Any]:
    tenant = session.scalars(select(Tenant).where(Tenant.slug == slug)).first()
    if tenant is None:
        raise ManifestError(f"no tenant {slug!r}")
    sm = current_appbuilder(app).sm
    out: dict[str, Any] = {
        "tenant": {
            "slug": tenant.slug,
            "name": tenant.name,
            "plan": tenant.plan,
            "accent_color": tenant.accent_color,
            "mfa_required": tenant.mfa_required,
        }
    }
    with bound_tenant(tenant.id, session):
        roles = sorted(r.name for r in session.scalars(select(TenantRole)))
        out["roles"] = [r for r in roles if r not in BUILTIN_TENANT_ROLES]
        memberships = list(session.scalars(select(Membership)))
        by_id = {m.id: m for m in memberships}
        members = []
        for m in sorted(memberships, key=lambda m: m.user_id):
            user = sm.get_user_by_id(m.user_id)
            entry: dict[str, Any] = {
                "username": user.username,
                "email": user.email,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "roles": m.role_names,
            }
            if m.manager_id and m.manager_id in by_id:
                entry["manager"] = sm.get_user_by_id(by_id[m.manager_id].user_id).username
            members.append(entry)
        out["members"] = members
        out.update(_export_workflows(session))
        session.rollback()
    return out


def _export_workflows(session: Session) -> dict[str, Any]:
    workflows: dict[str, Any] = {}
    rows = session.execute(
        select(Workflow.key, WorkflowVersion.definition)
        .join(
            WorkflowVersion,
            (WorkflowVersion.tenant_id == Workflow.tenant_id)
            & (WorkflowVersion.workflow_id == Workflow.id)
            & (WorkflowVersion.version == Workflow.current_version),
        )
        .where(WorkflowVersion.source == "tenant", Workflow.active.is_(True))
        .order_by(Workflow.key)
    ).all()
    for key, definition in rows:
        workflows[key] = definition
    rules = []
    for r in session.scalars(select(ApprovalRule).order_by(ApprovalRule.name)):
        entry = dict(r.definition)
        if r.workflow_key:
            entry["workflow"] = r.workflow_key
        rules.append(entry)
    out: dict[str, Any] = {}
    if workflows:
        out["workflows"] = workflows
    if rules:
        out["rules"] = rules
    return out
