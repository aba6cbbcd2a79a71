"""Parsing and validation of rules and conditions, collecting every error with its path."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal

from signoff.errors import N_
from signoff.workflow.errors import DefinitionError, FieldError, check_keys, join_path
from signoff.workflow.rules.evaluate import to_decimal
from signoff.workflow.rules.model import (
    ACTIONS,
    MATCH_MODES,
    MAX_DEPTH,
    MAX_LIST,
    MAX_NODES,
    MAX_STRING,
    OPERATORS,
    ORDERING,
    ROOTS,
    RULE_APPROVER_KINDS,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    RuleApprover,
    Scalar,
    Value,
)
from signoff.workflow.rules.rule import Rule

_PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class _Budget:
    """Counts condition nodes so one rule cannot grow without bound."""

    def __init__(self) -> None:
        self.nodes = 0


def _scalar(raw: object, path: str, errors: list[FieldError]) -> Scalar:
    """Canonical JSON-safe form of a literal: Decimals become int or numeric string."""
    if raw is None or isinstance(raw, bool | int):
        return raw
    if isinstance(raw, str):
        if len(raw) > MAX_STRING:
            errors.append(
                FieldError(
                    path, N_("is longer than %(MAX_STRING)s characters", MAX_STRING=MAX_STRING)
                )
            )
        return raw
    if isinstance(raw, float):
        if to_decimal(raw) is None:
            errors.append(FieldError(path, N_("must be a finite number")))
        return raw
    if isinstance(raw, Decimal):
        if not raw.is_finite():
            errors.append(FieldError(path, N_("must be a finite number")))
            return None
        return int(raw) if raw == raw.to_integral_value() else str(raw)
    errors.append(FieldError(path, N_("must be a string, number, boolean or null")))
    return None


def _value(raw: object, operator: str, path: str, errors: list[FieldError]) -> Value:
    if operator in ("in", "not_in"):
        if not isinstance(raw, list | tuple):
            errors.append(
                FieldError(
                    path,
                    N_("operator %(operator)s needs a list of values", operator=repr(operator)),
                )
            )
            return ()
        if not raw:
            errors.append(FieldError(path, N_("must not be an empty list")))
        if len(raw) > MAX_LIST:
            errors.append(
                FieldError(path, N_("has more than %(MAX_LIST)s values", MAX_LIST=MAX_LIST))
            )
        return tuple(_scalar(v, join_path(path, i), errors) for i, v in enumerate(raw))
    if isinstance(raw, list | tuple | Mapping):
        errors.append(
            FieldError(
                path, N_("operator %(operator)s needs a single value", operator=repr(operator))
            )
        )
        return None
    value = _scalar(raw, path, errors)
    if operator in ORDERING and (value is None or isinstance(value, bool)):
        errors.append(
            FieldError(
                path,
                N_("operator %(operator)s needs a number or a string", operator=repr(operator)),
            )
        )
    if operator == "contains" and value is None:
        errors.append(FieldError(path, N_("operator 'contains' needs a value")))
    return value


def _condition(
    raw: object, path: str, errors: list[FieldError], depth: int, budget: _Budget
) -> Condition | None:
    budget.nodes += 1
    if budget.nodes == MAX_NODES + 1:
        errors.append(
            FieldError(path, N_("too many conditions (at most %(MAX_NODES)s)", MAX_NODES=MAX_NODES))
        )
    if depth > MAX_DEPTH:
        errors.append(
            FieldError(
                path, N_("conditions nest deeper than %(MAX_DEPTH)s levels", MAX_DEPTH=MAX_DEPTH)
            )
        )
        return None
    if not isinstance(raw, Mapping):
        errors.append(
            FieldError(
                path,
                N_("must be a mapping: {field, operator, value}, {all: [...]} or {any: [...]}"),
            )
        )
        return None
    if "all" in raw or "any" in raw:
        if len(raw) != 1:
            errors.append(
                FieldError(path, N_("an 'all'/'any' condition takes exactly one key and a list"))
            )
            return None
        ((key, subs),) = raw.items()
        sub_path = join_path(path, key)
        if not isinstance(subs, list | tuple) or not subs:
            errors.append(FieldError(sub_path, N_("must be a non-empty list of conditions")))
            return None
        parsed = [
            _condition(s, join_path(sub_path, i), errors, depth + 1, budget)
            for i, s in enumerate(subs)
        ]
        if any(p is None for p in parsed):
            return None
        children = tuple(p for p in parsed if p is not None)
        return AllOf(children) if key == "all" else AnyOf(children)

    before = len(errors)
    check_keys(raw, ("field", "operator", "value"), path, errors)
    field = raw.get("field")
    operator = raw.get("operator")
    if field is None:
        errors.append(FieldError(join_path(path, "field"), N_("is required")))
    elif not isinstance(field, str) or len(field) > 200 or not _PATH_RE.fullmatch(field):
        errors.append(
            FieldError(
                join_path(path, "field"), N_("must be a dotted path like 'input_data.amount'")
            )
        )
    elif field.split(".", 1)[0] not in ROOTS:
        errors.append(
            FieldError(
                join_path(path, "field"),
                N_(
                    "unknown root %(item)s; expected one of %(value)s",
                    item=repr(field.split(".", 1)[0]),
                    value=", ".join(ROOTS),
                ),
            )
        )
    if operator is None:
        errors.append(FieldError(join_path(path, "operator"), N_("is required")))
    elif operator not in OPERATORS:
        errors.append(
            FieldError(
                join_path(path, "operator"),
                N_(
                    "unknown operator %(operator)s; expected one of %(value)s",
                    operator=repr(operator),
                    value=", ".join(OPERATORS),
                ),
            )
        )
    if "value" not in raw:
        errors.append(FieldError(join_path(path, "value"), N_("is required")))
        return None
    if not isinstance(operator, str) or operator not in OPERATORS:
        return None
    value = _value(raw["value"], operator, join_path(path, "value"), errors)
    if len(errors) > before:
        return None
    assert isinstance(field, str)
    return Compare(field, operator, value)


def parse_condition_into(raw: object, path: str, errors: list[FieldError]) -> Condition | None:
    """Parse one condition, appending problems to ``errors`` (for callers that collect)."""
    return _condition(raw, path, errors, 0, _Budget())


def parse_condition(raw: object, *, path: str = "condition") -> Condition:
    """Parse one condition or raise :class:`DefinitionError` naming every problem."""
    errors: list[FieldError] = []
    cond = parse_condition_into(raw, path, errors)
    if errors or cond is None:
        raise DefinitionError(errors or [FieldError(path, N_("is invalid"))])
    return cond


def _approver(raw: object, path: str, errors: list[FieldError]) -> RuleApprover | None:
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, N_("must be a mapping like {type: role, role: CFO}")))
        return None
    kind = raw.get("type")
    if kind not in RULE_APPROVER_KINDS:
        errors.append(
            FieldError(
                join_path(path, "type"),
                N_("is required; expected one of %(known)s", known="role, user, manager")
                if kind is None
                else N_(
                    "unknown approver type %(kind)s; expected one of %(known)s",
                    kind=repr(kind),
                    known="role, user, manager",
                ),
            )
        )
        return None
    before = len(errors)
    value_key = None if kind == "manager" else kind
    allowed = ["type", "required"] + ([value_key] if value_key else [])
    check_keys(raw, allowed, path, errors)
    value: str | None = None
    if value_key:
        value = raw.get(value_key)
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            errors.append(
                FieldError(join_path(path, value_key), N_("a %(kind)s name is required", kind=kind))
            )
    required = raw.get("required", True)
    if not isinstance(required, bool):
        errors.append(FieldError(join_path(path, "required"), N_("must be true or false")))
    if len(errors) > before:
        return None
    return RuleApprover(kind, value, required)


def parse_rule_into(raw: object, path: str, errors: list[FieldError]) -> Rule | None:
    """Parse one rule, appending problems to ``errors`` with paths under ``path``."""
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, N_("must be a mapping")))
        return None
    before = len(errors)
    check_keys(
        raw,
        ("name", "priority", "conditions", "match", "approvers", "action", "description"),
        path,
        errors,
    )
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errors.append(FieldError(join_path(path, "name"), N_("a non-empty name is required")))
    priority = raw.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > 10**9:
        errors.append(FieldError(join_path(path, "priority"), N_("must be a whole number")))
    description = raw.get("description", "")
    if not isinstance(description, str):
        errors.append(FieldError(join_path(path, "description"), N_("must be a string")))
    match = raw.get("match", "all")
    if match not in MATCH_MODES:
        errors.append(
            FieldError(
                join_path(path, "match"),
                N_("unknown match %(match)s; expected all or any", match=repr(match)),
            )
        )
    action = raw.get("action", "add_approvers")
    if action not in ACTIONS:
        errors.append(
            FieldError(
                join_path(path, "action"),
                N_(
                    "unknown action %(action)s; expected one of %(value)s",
                    action=repr(action),
                    value=", ".join(ACTIONS),
                ),
            )
        )

    cond_path = join_path(path, "conditions")
    raw_conds = raw.get("conditions")
    conditions: list[Condition | None] = []
    if not isinstance(raw_conds, list | tuple) or not raw_conds:
        errors.append(FieldError(cond_path, N_("must be a non-empty list of conditions")))
    else:
        budget = _Budget()
        conditions = [
            _condition(c, join_path(cond_path, i), errors, 1, budget)
            for i, c in enumerate(raw_conds)
        ]

    appr_path = join_path(path, "approvers")
    raw_apprs = raw.get("approvers", [])
    approvers: list[RuleApprover | None] = []
    if not isinstance(raw_apprs, list | tuple):
        errors.append(FieldError(appr_path, N_("must be a list")))
    elif action == "auto_approve" and raw_apprs:
        errors.append(FieldError(appr_path, N_("an auto_approve rule takes no approvers")))
    elif action == "add_approvers" and not raw_apprs:
        errors.append(
            FieldError(appr_path, N_("an add_approvers rule needs at least one approver"))
        )
    else:
        approvers = [_approver(a, join_path(appr_path, i), errors) for i, a in enumerate(raw_apprs)]
        seen: dict[tuple[str, str | None], int] = {}
        for i, a in enumerate(approvers):
            if a is None:
                continue
            if (a.kind, a.value) in seen:
                errors.append(
                    FieldError(
                        join_path(appr_path, i),
                        N_("duplicates approvers[%(item)s]", item=seen[(a.kind, a.value)]),
                    )
                )
            seen.setdefault((a.kind, a.value), i)

    if len(errors) > before:
        return None
    assert isinstance(name, str) and isinstance(priority, int) and isinstance(description, str)
    return Rule(
        name=name,
        conditions=tuple(c for c in conditions if c is not None),
        priority=priority,
        match=str(match),
        approvers=tuple(a for a in approvers if a is not None),
        action=str(action),
        description=description,
    )


def parse_rules_into(raw: object, path: str, errors: list[FieldError]) -> tuple[Rule, ...]:
    """Parse a list of rules (names must be unique), appending problems to ``errors``."""
    if not isinstance(raw, list | tuple):
        errors.append(FieldError(path, N_("must be a list of rules")))
        return ()
    rules: list[Rule] = []
    names: dict[str, int] = {}
    for i, item in enumerate(raw):
        rule = parse_rule_into(item, join_path(path, i), errors)
        if rule is None:
            continue
        if rule.name in names:
            errors.append(
                FieldError(
                    join_path(join_path(path, i), "name"),
                    N_(
                        "duplicate rule name %(name)s (also %(path)s[%(item)s])",
                        name=repr(rule.name),
                        path=path,
                        item=names[rule.name],
                    ),
                )
            )
        names.setdefault(rule.name, i)
        rules.append(rule)
    return tuple(rules)


def parse_rule(raw: object, *, path: str = "") -> Rule:
    """Parse and validate one rule; raise :class:`DefinitionError` listing every problem."""
    errors: list[FieldError] = []
    rule = parse_rule_into(raw, path, errors)
    if errors or rule is None:
        raise DefinitionError(errors or [FieldError(path, N_("is invalid"))])
    return rule


def parse_rules(raw: Sequence[object], *, path: str = "rules") -> tuple[Rule, ...]:
    """Parse ``FAB_APPROVAL_RULES`` (or a workflow's ``rules``); paths like ``rules[0].name``."""
    errors: list[FieldError] = []
    rules = parse_rules_into(raw, path, errors)
    if errors:
        raise DefinitionError(errors)
    return rules
