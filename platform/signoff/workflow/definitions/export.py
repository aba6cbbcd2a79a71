"""Export of definitions back to the ``FAB_APPROVAL_WORKFLOWS`` format (JSON-safe)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from signoff.workflow.definitions.model import (
    ApproverSpec,
    FieldDef,
    StepDef,
    WorkflowDefinition,
)
from signoff.workflow.rules import condition_to_dict, rule_to_dict


def _number(value: Decimal) -> int | str:
    """Exact JSON-safe number: int when integral, else the decimal string."""
    return int(value) if value == value.to_integral_value() else str(value)


def _approver_dict(spec: ApproverSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"type": spec.kind}
    if spec.value is not None:
        out[spec.kind] = spec.value
    if spec.weight != 1:
        out["weight"] = spec.weight
    return out


def _step_dict(step: StepDef) -> dict[str, Any]:
    out: dict[str, Any] = {"name": step.name}
    if step.description:
        out["description"] = step.description
    if step.step_type is not None:
        out["step_type"] = step.step_type
    if step.required_role is not None:
        out["required_role"] = step.required_role
    else:
        out["approvers"] = [_approver_dict(a) for a in step.approvers]
    out["requires_mfa"] = step.requires_mfa
    out["auto_approve_threshold"] = (
        None if step.auto_approve_threshold is None else _number(step.auto_approve_threshold)
    )
    if step.pattern != "sequential":
        out["pattern"] = step.pattern
    optional: dict[str, Any] = {
        "mfa_timeout": step.mfa_timeout,
        "quorum": step.quorum,
        "threshold": step.threshold,
        "sla_hours": step.sla_hours,
        "escalate_to": None if step.escalate_to is None else _approver_dict(step.escalate_to),
        "reminder_hours": step.reminder_hours,
        "skip_if": None if step.skip_if is None else condition_to_dict(step.skip_if),
        "parallel_group": step.parallel_group,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    if not step.allow_delegation:
        out["allow_delegation"] = False
    return out


def _field_dict(fdef: FieldDef) -> dict[str, Any]:
    out: dict[str, Any] = {"name": fdef.name, "type": fdef.type}
    if fdef.required:
        out["required"] = True
    for key, bound in (("min", fdef.min), ("max", fdef.max)):
        if isinstance(bound, Decimal):
            out[key] = _number(bound)
        elif isinstance(bound, date):
            out[key] = bound.isoformat()
    if fdef.max_length is not None:
        out["max_length"] = fdef.max_length
    if fdef.choices:
        out["choices"] = list(fdef.choices)
    if fdef.label is not None:
        out["label"] = fdef.label
    return out


def definition_to_dict(defn: WorkflowDefinition) -> dict[str, Any]:
    """The JSON-safe ``FAB_APPROVAL_WORKFLOWS`` entry for ``defn`` (without its key)."""
    out: dict[str, Any] = {"name": defn.name}
    if defn.description:
        out["description"] = defn.description
    metadata: dict[str, Any] = {
        "category": defn.category,
        "priority": defn.priority,
        "estimated_duration_hours": defn.estimated_duration_hours,
        "expire_after_hours": defn.expire_after_hours,
    }
    out.update({k: v for k, v in metadata.items() if v is not None})
    if not defn.require_reason:
        out["require_reason"] = False
    out["steps"] = [_step_dict(s) for s in defn.steps]
    out["initial_state"] = defn.initial_state
    out["approval_required_states"] = list(defn.approval_required_states)
    if defn.auto_approve is not None:
        auto: dict[str, Any] = {}
        if defn.auto_approve.amount_threshold is not None:
            auto["amount_threshold"] = _number(defn.auto_approve.amount_threshold)
        if defn.auto_approve.user_roles:
            auto["user_roles"] = list(defn.auto_approve.user_roles)
        out["auto_approve_conditions"] = auto
    if defn.fields:
        out["fields"] = [_field_dict(f) for f in defn.fields]
    if defn.rules:
        out["rules"] = [rule_to_dict(r) for r in defn.rules]
    if defn.auditors:
        out["auditors"] = list(defn.auditors)
    return out
