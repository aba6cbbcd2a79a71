"""The tenant admin's setup checklist, computed from the tenant's real data each time.

A new organisation's first real request fails when no one holds the role its first
step names; the checklist says so before anyone tries. Items:

- ``approvers``: every role the workflows and rules name has at least one active member
  (one entry per role, with its member count);
- ``workflows``: the admin saved a workflow version after sign-up (reviewed and kept
  or changed);
- ``branding``: the organisation's name or colour was set on the branding page;
- ``first_request``: a request exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from signoff.audit.models import AuditEvent
from signoff.tenancy.models import Tenant
from signoff.workflow import registry
from signoff.workflow.approvers import Directory
from signoff.workflow.definitions import WorkflowDefinition
from signoff.workflow.models import ApprovalRequest, ApprovalRule, WorkflowVersion


@dataclass
class RoleNeed:
    role: str
    members: int
    used_by: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.members > 0


@dataclass
class Checklist:
    roles: list[RoleNeed]
    workflows_reviewed: bool
    branding_set: bool
    first_request: bool

    @property
    def approvers_done(self) -> bool:
        return all(r.done for r in self.roles)

    @property
    def done(self) -> int:
        return sum(
            (self.approvers_done, self.workflows_reviewed, self.branding_set, self.first_request)
        )

    @property
    def complete(self) -> bool:
        return self.done == 4


def _roles_of(defn: WorkflowDefinition) -> set[str]:
    roles = {step.required_role for step in defn.steps if step.required_role}
    roles |= {a.value for s in defn.steps for a in s.approvers if a.kind == "role" and a.value}
    roles |= {a.value for r in defn.rules for a in r.approvers if a.kind == "role" and a.value}
    if defn.steps:
        for s in defn.steps:
            if s.escalate_to is not None and s.escalate_to.kind == "role" and s.escalate_to.value:
                roles.add(s.escalate_to.value)
    return roles


def _rule_roles(definition: dict[str, Any]) -> set[str]:
    out = set()
    for a in definition.get("approvers") or []:
        if isinstance(a, dict) and a.get("type") == "role" and isinstance(a.get("role"), str):
            out.add(a["role"])
    return out


def setup_checklist(session: Session, tenant: Tenant) -> Checklist:
    """The bound tenant's checklist (see the module docstring)."""
    directory = Directory.load(session)
    used: dict[str, list[str]] = {}
    for key, eff in registry.effective_workflows(session, tenant.id).items():
        try:
            defn = eff.definition
        except ValueError:  # an invalid stored definition shows on the workflows page
            continue
        for role in _roles_of(defn):
            used.setdefault(role, []).append(defn.name or key)
    for rule in session.scalars(select(ApprovalRule).where(ApprovalRule.active.is_(True))):
        for role in _rule_roles(rule.definition or {}):
            used.setdefault(role, []).append(f"rule {rule.name}")
    roles = [
        RoleNeed(role, len(directory.users_by_role.get(role, ())), sorted(set(names)))
        for role, names in sorted(used.items())
    ]
    # Sign-up stores the starter workflows in its own transaction, so their versions
    # carry the tenant's creation time; anything later was saved by an admin.
    reviewed = bool(
        session.scalar(select(exists().where(WorkflowVersion.created_at > tenant.created_at)))
    )
    branded = bool(
        session.scalar(
            select(
                exists().where(
                    AuditEvent.object_type == "tenant",
                    AuditEvent.object_id == str(tenant.id),
                    AuditEvent.action == "tenant.branding_changed",
                )
            )
        )
    )
    first = bool(session.scalar(select(exists().where(ApprovalRequest.id.isnot(None)))))
    return Checklist(roles, reviewed, branded, first)
