"""The rule language of ``FAB_APPROVAL_RULES``: parsed once, then run by a tiny interpreter.

A rule is ``{name, priority, conditions, match, approvers, action}``. Conditions are
``{field, operator, value}`` leaves or ``{all: [...]}`` / ``{any: [...]}`` nodes. Nothing is
ever ``eval``-ed: :func:`parse_rule` turns the raw structure into frozen dataclasses (and
rejects anything it does not understand, at save time), and :func:`evaluate` walks them.

Semantics, chosen so that rules behave the same whether data arrives as JSON, form strings
or Python objects:

* ``field`` is a dotted path into the context (see :func:`make_context`): ``input_data.amount``,
  ``requester.roles``, ``workflow``. A path that does not resolve makes the condition false
  (every operator, ``!=`` and ``not_in`` included): missing data never matches.
* Numbers are compared exactly as :class:`~decimal.Decimal`: ints, Decimals, floats (by their
  shortest repr, so ``0.1`` means 0.1) and numeric strings such as ``"5000.00"`` (what
  :func:`~signoff.workflow.definitions.validate_input` produces) are all numbers.
* ``>``, ``>=``, ``<``, ``<=`` compare two numbers, or two non-numeric strings (ISO dates order
  correctly); any other mix is false. ``==``/``!=`` compare numbers numerically and everything
  else by type and value (``True`` is not ``1``). ``in``/``not_in`` take a list. ``contains``
  asks whether a list field holds the value, or a string field contains a string value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, TypeAlias

from signoff.workflow.errors import DefinitionError, FieldError, check_keys, join_path

__all__ = [
    "ACTIONS",
    "MATCH_MODES",
    "OPERATORS",
    "ROOTS",
    "AllOf",
    "AnyOf",
    "Compare",
    "Condition",
    "DefinitionError",
    "FieldError",
    "Rule",
    "RuleApprover",
    "condition_to_dict",
    "evaluate",
    "make_context",
    "matching_rules",
    "parse_condition",
    "parse_rule",
    "parse_rules",
    "referenced_fields",
    "rule_to_dict",
    "to_decimal",
]

OPERATORS: Final = (">", ">=", "<", "<=", "==", "!=", "in", "not_in", "contains")
ORDERING: Final = frozenset({">", ">=", "<", "<="})
#: Top-level names a condition may start from; see :func:`make_context`.
ROOTS: Final = ("input_data", "requester", "workflow")
MATCH_MODES: Final = ("all", "any")
ACTIONS: Final = ("add_approvers", "auto_approve")
RULE_APPROVER_KINDS: Final = ("role", "user", "manager")

#: Limits that keep a hostile or accidental rule from costing more than a few microseconds.
MAX_DEPTH: Final = 8
MAX_NODES: Final = 200
MAX_LIST: Final = 500
MAX_STRING: Final = 1000

_PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NUMERIC_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,6})?")

Scalar: TypeAlias = bool | int | float | str | None
Value: TypeAlias = Scalar | tuple[Scalar, ...]


@dataclass(frozen=True)
class Compare:
    """A leaf: ``field operator value``; ``value`` is a tuple for ``in``/``not_in``."""

    field: str
    operator: str
    value: Value


@dataclass(frozen=True)
class AllOf:
    """True when every sub-condition is true."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """True when at least one sub-condition is true."""

    conditions: tuple[Condition, ...]


Condition: TypeAlias = Compare | AllOf | AnyOf


@dataclass(frozen=True)
class RuleApprover:
    """An approver a rule adds: ``kind`` role/user/manager; optional ones do not gate."""

    kind: str
    value: str | None = None
    required: bool = True


@dataclass(frozen=True)
class Rule:
    """A parsed rule; ``conditions`` are combined with ``match`` (``all`` or ``any``)."""

    name: str
    conditions: tuple[Condition, ...]
    priority: int = 0
    match: str = "all"
    approvers: tuple[RuleApprover, ...] = ()
    action: str = "add_approvers"
    description: str = ""

    def matches(self, context: Mapping[str, Any]) -> bool:
        """Whether this rule applies to ``context``."""
        results = (evaluate(c, context) for c in self.conditions)
        return all(results) if self.match == "all" else any(results)


# --------------------------------------------------------------------------- evaluation


def to_decimal(value: object) -> Decimal | None:
    """``value`` as an exact finite Decimal if it is a number or numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and len(value) <= 100 and _NUMERIC_RE.fullmatch(value):
        return Decimal(value)
    return None


_MISSING: Final = object()


def _resolve(context: Mapping[str, Any], path: str) -> object:
    current: object = context
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _equal(a: object, b: object) -> bool:
    da, db = to_decimal(a), to_decimal(b)
    if da is not None and db is not None:
        return da == db
    if da is not None or db is not None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def _order(a: object, b: object) -> int | None:
    """-1/0/1 when ``a`` and ``b`` are comparable (both numbers or both strings), else None."""
    da, db = to_decimal(a), to_decimal(b)
    if da is not None and db is not None:
        return (da > db) - (da < db)
    if da is not None or db is not None:
        return None
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    return None


def _compare(actual: object, operator: str, value: Value) -> bool:
    if operator in ORDERING:
        order = _order(actual, value)
        if order is None:
            return False
        return {">": order > 0, ">=": order >= 0, "<": order < 0, "<=": order <= 0}[operator]
    if operator == "==":
        return _equal(actual, value)
    if operator == "!=":
        return not _equal(actual, value)
    if operator in ("in", "not_in"):
        assert isinstance(value, tuple)
        found = any(_equal(actual, v) for v in value)
        return found if operator == "in" else not found
    if operator == "contains":
        if isinstance(actual, list | tuple | set | frozenset):
            return any(_equal(item, value) for item in actual)
        if isinstance(actual, str) and isinstance(value, str):
            return value in actual
        return False
    raise ValueError(f"unknown operator {operator!r}")  # parse_condition never lets one through


def evaluate(condition: Condition, context: Mapping[str, Any]) -> bool:
    """Evaluate a parsed condition against ``context``; never raises for missing data."""
    if isinstance(condition, AllOf):
        return all(evaluate(c, context) for c in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(evaluate(c, context) for c in condition.conditions)
    actual = _resolve(context, condition.field)
    if actual is _MISSING:
        return False
    return _compare(actual, condition.operator, condition.value)


def matching_rules(rules: Iterable[Rule], context: Mapping[str, Any]) -> list[Rule]:
    """The rules that apply to ``context``, highest priority first, then by name."""
    return sorted((r for r in rules if r.matches(context)), key=lambda r: (-r.priority, r.name))


def make_context(
    workflow: str,
    input_data: Mapping[str, Any],
    *,
    requester_id: int | None = None,
    requester_username: str | None = None,
    requester_roles: Iterable[str] = (),
) -> dict[str, Any]:
    """The mapping rule paths resolve in: ``workflow``, ``input_data.*``, ``requester.*``."""
    return {
        "workflow": workflow,
        "input_data": dict(input_data),
        "requester": {
            "id": requester_id,
            "username": requester_username,
            "roles": sorted(set(requester_roles)),
        },
    }


def referenced_fields(condition: Condition) -> Iterator[str]:
    """Every dotted field path used in ``condition`` (for cross-checks against a schema)."""
    if isinstance(condition, Compare):
        yield condition.field
    else:
        for sub in condition.conditions:
            yield from referenced_fields(sub)


# --------------------------------------------------------------------------- parsing


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
            errors.append(FieldError(path, f"is longer than {MAX_STRING} characters"))
        return raw
    if isinstance(raw, float):
        if to_decimal(raw) is None:
            errors.append(FieldError(path, "must be a finite number"))
        return raw
    if isinstance(raw, Decimal):
        if not raw.is_finite():
            errors.append(FieldError(path, "must be a finite number"))
            return None
        return int(raw) if raw == raw.to_integral_value() else str(raw)
    errors.append(FieldError(path, "must be a string, number, boolean or null"))
    return None


def _value(raw: object, operator: str, path: str, errors: list[FieldError]) -> Value:
    if operator in ("in", "not_in"):
        if not isinstance(raw, list | tuple):
            errors.append(FieldError(path, f"operator {operator!r} needs a list of values"))
            return ()
        if not raw:
            errors.append(FieldError(path, "must not be an empty list"))
        if len(raw) > MAX_LIST:
            errors.append(FieldError(path, f"has more than {MAX_LIST} values"))
        return tuple(_scalar(v, join_path(path, i), errors) for i, v in enumerate(raw))
    if isinstance(raw, list | tuple | Mapping):
        errors.append(FieldError(path, f"operator {operator!r} needs a single value"))
        return None
    value = _scalar(raw, path, errors)
    if operator in ORDERING and (value is None or isinstance(value, bool)):
        errors.append(FieldError(path, f"operator {operator!r} needs a number or a string"))
    if operator == "contains" and value is None:
        errors.append(FieldError(path, "operator 'contains' needs a value"))
    return value


def _condition(
    raw: object, path: str, errors: list[FieldError], depth: int, budget: _Budget
) -> Condition | None:
    budget.nodes += 1
    if budget.nodes == MAX_NODES + 1:
        errors.append(FieldError(path, f"too many conditions (at most {MAX_NODES})"))
    if depth > MAX_DEPTH:
        errors.append(FieldError(path, f"conditions nest deeper than {MAX_DEPTH} levels"))
        return None
    if not isinstance(raw, Mapping):
        errors.append(
            FieldError(
                path, "must be a mapping: {field, operator, value}, {all: [...]} or {any: [...]}"
            )
        )
        return None
    if "all" in raw or "any" in raw:
        if len(raw) != 1:
            errors.append(
                FieldError(path, "an 'all'/'any' condition takes exactly one key and a list")
            )
            return None
        ((key, subs),) = raw.items()
        sub_path = join_path(path, key)
        if not isinstance(subs, list | tuple) or not subs:
            errors.append(FieldError(sub_path, "must be a non-empty list of conditions"))
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
        errors.append(FieldError(join_path(path, "field"), "is required"))
    elif not isinstance(field, str) or len(field) > 200 or not _PATH_RE.fullmatch(field):
        errors.append(
            FieldError(join_path(path, "field"), "must be a dotted path like 'input_data.amount'")
        )
    elif field.split(".", 1)[0] not in ROOTS:
        errors.append(
            FieldError(
                join_path(path, "field"),
                f"unknown root {field.split('.', 1)[0]!r}; expected one of {', '.join(ROOTS)}",
            )
        )
    if operator is None:
        errors.append(FieldError(join_path(path, "operator"), "is required"))
    elif operator not in OPERATORS:
        errors.append(
            FieldError(
                join_path(path, "operator"),
                f"unknown operator {operator!r}; expected one of {', '.join(OPERATORS)}",
            )
        )
    if "value" not in raw:
        errors.append(FieldError(join_path(path, "value"), "is required"))
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
        raise DefinitionError(errors or [FieldError(path, "is invalid")])
    return cond


def _approver(raw: object, path: str, errors: list[FieldError]) -> RuleApprover | None:
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be a mapping like {type: role, role: CFO}"))
        return None
    kind = raw.get("type")
    if kind not in RULE_APPROVER_KINDS:
        msg = "is required" if kind is None else f"unknown approver type {kind!r}"
        errors.append(
            FieldError(join_path(path, "type"), f"{msg}; expected one of role, user, manager")
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
            errors.append(FieldError(join_path(path, value_key), f"a {kind} name is required"))
    required = raw.get("required", True)
    if not isinstance(required, bool):
        errors.append(FieldError(join_path(path, "required"), "must be true or false"))
    if len(errors) > before:
        return None
    return RuleApprover(kind, value, required)


def parse_rule_into(raw: object, path: str, errors: list[FieldError]) -> Rule | None:
    """Parse one rule, appending problems to ``errors`` with paths under ``path``."""
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be a mapping"))
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
        errors.append(FieldError(join_path(path, "name"), "a non-empty name is required"))
    priority = raw.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > 10**9:
        errors.append(FieldError(join_path(path, "priority"), "must be a whole number"))
    description = raw.get("description", "")
    if not isinstance(description, str):
        errors.append(FieldError(join_path(path, "description"), "must be a string"))
    match = raw.get("match", "all")
    if match not in MATCH_MODES:
        errors.append(
            FieldError(join_path(path, "match"), f"unknown match {match!r}; expected all or any")
        )
    action = raw.get("action", "add_approvers")
    if action not in ACTIONS:
        errors.append(
            FieldError(
                join_path(path, "action"),
                f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}",
            )
        )

    cond_path = join_path(path, "conditions")
    raw_conds = raw.get("conditions")
    conditions: list[Condition | None] = []
    if not isinstance(raw_conds, list | tuple) or not raw_conds:
        errors.append(FieldError(cond_path, "must be a non-empty list of conditions"))
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
        errors.append(FieldError(appr_path, "must be a list"))
    elif action == "auto_approve" and raw_apprs:
        errors.append(FieldError(appr_path, "an auto_approve rule takes no approvers"))
    elif action == "add_approvers" and not raw_apprs:
        errors.append(FieldError(appr_path, "an add_approvers rule needs at least one approver"))
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
                        f"duplicates approvers[{seen[(a.kind, a.value)]}]",
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
        errors.append(FieldError(path, "must be a list of rules"))
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
                    f"duplicate rule name {rule.name!r} (also {path}[{names[rule.name]}])",
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
        raise DefinitionError(errors or [FieldError(path, "is invalid")])
    return rule


def parse_rules(raw: Sequence[object], *, path: str = "rules") -> tuple[Rule, ...]:
    """Parse ``FAB_APPROVAL_RULES`` (or a workflow's ``rules``); paths like ``rules[0].name``."""
    errors: list[FieldError] = []
    rules = parse_rules_into(raw, path, errors)
    if errors:
        raise DefinitionError(errors)
    return rules


# --------------------------------------------------------------------------- export


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
