"""Turning approver specs (role, user, manager, rule) into concrete user ids.

The engine works on user ids only; this module answers "who holds role X in this
tenant", "who is the requester's manager", reading memberships under RLS, so it
can only ever see the bound tenant's people.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff.tenancy.models import Membership, MembershipRole, TenantRole
from signoff.workflow.definitions import ApproverSpec, StepDef
from signoff.workflow.engine import EligibleInput
from signoff.workflow.engine.machine import SLOT_PATTERNS
from signoff.workflow.rules import Rule, matching_rules


@dataclass
class Directory:
    """The bound tenant's active members: roles, usernames, managers."""

    roles_by_user: dict[int, set[str]] = field(default_factory=dict)
    users_by_role: dict[str, set[int]] = field(default_factory=dict)
    user_by_name: dict[str, int] = field(default_factory=dict)
    name_by_user: dict[int, str] = field(default_factory=dict)
    manager_of: dict[int, int] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session) -> Directory:
        d = cls()
        members = session.execute(
            select(Membership.id, Membership.user_id, Membership.manager_id, User.username)
            .join(User, User.id == Membership.user_id)
            .where(Membership.active.is_(True), User.active.is_(True))
        ).all()
        by_membership: dict[uuid.UUID, int] = {}
        for mid, uid, _mgr, username in members:
            by_membership[mid] = uid
            d.user_by_name[username] = uid
            d.name_by_user[uid] = username
            d.roles_by_user[uid] = set()
        for _mid, uid, mgr, _name in members:
            if mgr is not None and mgr in by_membership:
                d.manager_of[uid] = by_membership[mgr]
        for mid, role in session.execute(
            select(MembershipRole.membership_id, TenantRole.name).join(
                TenantRole,
                (TenantRole.tenant_id == MembershipRole.tenant_id)
                & (TenantRole.id == MembershipRole.role_id),
            )
        ):
            uid = by_membership.get(mid)
            if uid is not None:
                d.roles_by_user[uid].add(role)
                d.users_by_role.setdefault(role, set()).add(uid)
        return d

    def is_member(self, user_id: int) -> bool:
        return user_id in self.roles_by_user

    def roles(self, user_id: int) -> list[str]:
        return sorted(self.roles_by_user.get(user_id, ()))

    def resolve(
        self,
        spec: ApproverSpec,
        *,
        requester_id: int,
        rules: Sequence[Rule] = (),
        context: Mapping[str, Any] | None = None,
    ) -> dict[int, int]:
        """The users one approver spec names, each with the spec's weight."""
        ids: set[int] = set()
        if spec.kind == "role" and spec.value:
            ids = set(self.users_by_role.get(spec.value, ()))
        elif spec.kind == "user" and spec.value:
            uid = self.user_by_name.get(spec.value)
            ids = {uid} if uid is not None else set()
        elif spec.kind == "manager":
            mgr = self.manager_of.get(requester_id)
            ids = {mgr} if mgr is not None else set()
        elif spec.kind == "rule" and spec.value:
            for rule in matching_rules([r for r in rules if r.name == spec.value], context or {}):
                for approver in rule.approvers:
                    ids |= set(
                        self.resolve(
                            ApproverSpec(approver.kind, approver.value),
                            requester_id=requester_id,
                        )
                    )
        return {uid: spec.weight for uid in ids}

    def eligible_for(
        self,
        step: StepDef,
        *,
        requester_id: int,
        rules: Sequence[Rule] = (),
        context: Mapping[str, Any] | None = None,
    ) -> EligibleInput:
        """The engine's eligible input for one step: one mapping per entry for slot
        patterns (sequential lists, parallel), else one merged mapping."""
        specs: Iterable[ApproverSpec] = step.approvers or (
            (ApproverSpec("role", step.required_role),) if step.required_role else ()
        )
        per_entry = [
            self.resolve(s, requester_id=requester_id, rules=rules, context=context) for s in specs
        ]
        if step.pattern in SLOT_PATTERNS and len(per_entry) > 1:
            return per_entry
        merged: dict[int, int] = {}
        for entry in per_entry:
            for uid, weight in entry.items():
                merged[uid] = max(weight, merged.get(uid, 0))
        return merged
