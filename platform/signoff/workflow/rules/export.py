"""Export of parsed rules and conditions back to the raw (JSON-safe) format."""

from __future__ import annotations

from typing import Any

from signoff.workflow.rules.model import AllOf, AnyOf, Condition, Value
from signoff.workflow.rules.rule import Rule


def _export_value(value: Value) -> Any:
    return list(value) if isinstance(value, tuple) else value


def condition_to_dict(condition: Condition) -> dict[str, Any]:
    """The raw (JSON-safe) form :func:`parse_condition` accepts."""
    if isinstance(condition, AllOf):
        return {"all": [condition_to_dict(c) for c in condition.conditions]}
    if isinstance(condition, AnyOf):
        return {"any": [condition_to_dict(c) for c in condition.conditions]}
    return {
        "field": condition.field,
        "operator": condition.operator,
        "value": _export_value(condition.value),
    }


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """The raw (JSON-safe) form :func:`parse_rule` accepts; defaults are left out."""
    out: dict[str, Any] = {"name": rule.name, "priority": rule.priority}
    if rule.description:
        out["description"] = rule.description
    out["conditions"] = [condition_to_dict(c) for c in rule.conditions]
    if rule.match != "all":
        out["match"] = rule.match
    if rule.action != "add_approvers":
        out["action"] = rule.action
    if rule.approvers:
        out["approvers"] = [
            {
                "type": a.kind,
                **({a.kind: a.value} if a.value is not None else {}),
                "required": a.required,
            }
            for a in rule.approvers
        ]
    return out
