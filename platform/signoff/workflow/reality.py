"""Save-time checks of a workflow definition against the bound tenant's people.

The parser (:mod:`signoff.workflow.definitions`) checks a definition's form; this module
checks what the form names: roles that are not the tenant's, users who are not members,
rule approvers that do not exist, and quorums or weight thresholds that the eligible
approvers can never reach. Each finding carries the definition path.

- **error** (the save is refused): an unknown role or user, a rule whose approvers name
  an unknown role or user, an ``auditors`` entry that is not one of the tenant's roles.
- **warning** (the admin confirms, or the save is refused): a role with no members yet,
  a quorum or threshold larger than the people (or weights) who could approve today.
  The message says what happens to requests reaching that step.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff.errors import N_
from signoff.roles import ADMIN_ROLE, MEMBER_ROLE
from signoff.tenancy.models import TenantRole
from signoff.workflow.approvers import Directory
from signoff.workflow.definitions import ApproverSpec, StepDef, WorkflowDefinition
from signoff.workflow.errors import join_path
from signoff.workflow.rules import Rule

REQUESTER_ROLE = "Requester"


@dataclass(frozen=True)
class Finding:
    """One problem: ``severity`` is ``error`` (refused) or ``warning`` (needs confirming)."""

    path: str
    message: str
    severity: str


def tenant_role_names(session: Session) -> set[str]:
    """Every role the bound tenant defines (with or without members)."""
    return set(session.scalars(select(TenantRole.name)))


def _roles_text(roles: set[str]) -> str:
    return ", ".join(sorted(roles)) or "none"


def _approver(
    spec_kind: str,
    value: str | None,
    path: str,
    roles: set[str],
    directory: Directory,
    out: list[Finding],
    *,
    rule_step: bool = False,
) -> None:
    if spec_kind == "role" and value:
        if value not in roles:
            close = difflib.get_close_matches(value, sorted(roles), n=1)
            found = (
                N_(
                    "no role %(role)s in this organisation (its roles: %(roles)s); "
                    "did you mean %(close)s?",
                    role=repr(value),
                    roles=_roles_text(roles),
                    close=repr(close[0]),
                )
                if close
                else N_(
                    "no role %(role)s in this organisation (its roles: %(roles)s)",
                    role=repr(value),
                    roles=_roles_text(roles),
                )
            )
            out.append(Finding(path, found, "error"))
        elif not directory.users_by_role.get(value):
            out.append(
                Finding(
                    path,
                    N_(
                        "role %(role)s has no members yet: invite one, or the step this rule "
                        "adds has no approver from this role and every request that reaches "
                        "this step will be refused until you fix it",
                        role=repr(value),
                    )
                    if rule_step
                    else N_(
                        "role %(role)s has no members yet: invite one, or this step has no "
                        "approver from this role and every request that reaches this step "
                        "will be refused until you fix it",
                        role=repr(value),
                    ),
                    "warning",
                )
            )
    elif spec_kind == "user" and value and value not in directory.user_by_name:
        out.append(
            Finding(
                path,
                N_("%(user)s is not an active member of this organisation", user=repr(value)),
                "error",
            )
        )


def _step_specs(step: StepDef, path: str) -> list[tuple[ApproverSpec, str]]:
    # A definition gives either required_role (one role) or approvers, never both.
    if step.required_role:
        return [(ApproverSpec("role", step.required_role), join_path(path, "required_role"))]
    base = join_path(path, "approvers")
    return [(a, join_path(base, i)) for i, a in enumerate(step.approvers)]


def _reach(step: StepDef, directory: Directory) -> tuple[int, int] | None:
    """(people, total weight) who could approve today, or None when a manager or a rule
    decides it per request."""
    people: dict[int, int] = {}
    for spec in step.approvers or (
        (ApproverSpec("role", step.required_role),) if step.required_role else ()
    ):
        if spec.kind in ("manager", "rule"):
            return None
        for uid, weight in directory.resolve(spec, requester_id=0).items():
            people[uid] = max(weight, people.get(uid, 0))
    return len(people), sum(people.values())


def check_definition(
    session: Session, defn: WorkflowDefinition, tenant_rules: Sequence[Rule] = ()
) -> list[Finding]:
    """Every finding for ``defn`` in the bound tenant (see the module docstring)."""
    directory = Directory.load(session)
    roles = tenant_role_names(session)
    out: list[Finding] = []
    rules_by_name = {r.name: r for r in (*defn.rules, *tenant_rules)}
    for i, step in enumerate(defn.steps):
        path = join_path("steps", i)
        for spec, at in _step_specs(step, path):
            if spec.kind == "rule" and spec.value and spec.value in rules_by_name:
                for approver in rules_by_name[spec.value].approvers:
                    _approver(approver.kind, approver.value, at, roles, directory, out)
            else:
                _approver(spec.kind, spec.value, at, roles, directory, out)
        reach = _reach(step, directory)
        if reach is None:
            continue
        people, weight = reach
        if step.pattern == "quorum" and isinstance(step.quorum, int) and step.quorum > people:
            out.append(
                Finding(
                    join_path(path, "quorum"),
                    N_(
                        "quorum %(quorum)s but only %(people)s member(s) can approve this step "
                        "today: every request that reaches this step will be refused until "
                        "you fix it",
                        quorum=step.quorum,
                        people=people,
                    ),
                    "warning",
                )
            )
        if step.pattern == "weighted" and step.threshold is not None and step.threshold > weight:
            out.append(
                Finding(
                    join_path(path, "threshold"),
                    N_(
                        "threshold %(threshold)s but the approvers' weights add up to "
                        "%(weight)s today: every request that reaches this step will be "
                        "refused until you fix it",
                        threshold=step.threshold,
                        weight=weight,
                    ),
                    "warning",
                )
            )
    for k, auditor in enumerate(defn.auditors):
        if auditor not in roles:
            _approver("role", auditor, join_path("auditors", k), roles, directory, out)
    for k, rule in enumerate(defn.rules):
        for m, approver in enumerate(rule.approvers):
            _approver(
                approver.kind,
                approver.value,
                join_path(join_path(join_path("rules", k), "approvers"), m),
                roles,
                directory,
                out,
                rule_step=True,
            )
    return out


def split(findings: Sequence[Finding]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(errors, warnings), each as messages grouped by path."""
    errors: dict[str, list[str]] = {}
    warnings: dict[str, list[str]] = {}
    for f in findings:
        (errors if f.severity == "error" else warnings).setdefault(f.path, []).append(f.message)
    return errors, warnings


def check_rule(session: Session, rule: Rule, path: str = "rules[0]") -> list[Finding]:
    """Errors only: a tenant rule whose approvers name an unknown role or user."""
    directory = Directory.load(session)
    roles = tenant_role_names(session)
    out: list[Finding] = []
    for m, approver in enumerate(rule.approvers):
        _approver(
            approver.kind,
            approver.value,
            join_path(join_path(path, "approvers"), m),
            roles,
            directory,
            out,
            rule_step=True,
        )
    return [f for f in out if f.severity == "error"]


def suggested_role(session: Session) -> str:
    """The role a new workflow or rule template names: one of the tenant's own roles,
    preferring one with members that is not Admin, Member or Requester (requesters do
    not approve), then Manager, then any other, then Admin."""
    directory = Directory.load(session)
    roles = tenant_role_names(session)
    approving = sorted(r for r in roles if r not in (ADMIN_ROLE, MEMBER_ROLE, REQUESTER_ROLE))
    staffed = [r for r in approving if directory.users_by_role.get(r)]
    if staffed:
        return "Manager" if "Manager" in staffed else staffed[0]
    if "Manager" in approving:
        return "Manager"
    return approving[0] if approving else ADMIN_ROLE
