"""The rule language: parsing (with exact error paths) and the interpreter's semantics."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signoff.workflow.definitions import DefinitionError as DefinitionErrorFromDefinitions
from signoff.workflow.rules import (
    AllOf,
    AnyOf,
    Compare,
    DefinitionError,
    Rule,
    RuleApprover,
    evaluate,
    make_context,
    matching_rules,
    parse_condition,
    parse_rule,
    parse_rules,
    rule_to_dict,
)

SPEC_RULES: list[dict[str, Any]] = [
    {
        "name": "High Value Expense Rule",
        "priority": 100,
        "conditions": [{"field": "input_data.amount", "operator": ">", "value": 5000}],
        "approvers": [{"type": "role", "role": "CFO", "required": True}],
    }
]


def ctx(**input_data: Any) -> dict[str, Any]:
    return make_context(
        "expense_approval",
        input_data,
        requester_id=7,
        requester_username="alice",
        requester_roles=["Staff", "Manager"],
    )


def errors_of(exc: pytest.ExceptionInfo[DefinitionError]) -> dict[str, str]:
    return {e.path: e.message for e in exc.value.errors}


# --------------------------------------------------------------------------- parsing


def test_spec_rule_parses_as_written() -> None:
    (rule,) = parse_rules(SPEC_RULES)
    assert rule == Rule(
        name="High Value Expense Rule",
        priority=100,
        conditions=(Compare("input_data.amount", ">", 5000),),
        approvers=(RuleApprover("role", "CFO", required=True),),
    )
    assert rule.match == "all" and rule.action == "add_approvers"


def test_definition_error_is_one_class() -> None:
    assert DefinitionError is DefinitionErrorFromDefinitions


def test_rule_round_trips_through_dict() -> None:
    raw = {
        "name": "mixed",
        "priority": -3,
        "description": "d",
        "match": "any",
        "conditions": [
            {"any": [{"field": "requester.roles", "operator": "contains", "value": "VIP"}]},
            {"field": "input_data.category", "operator": "in", "value": ["travel", "meals"]},
            {"field": "input_data.amount", "operator": "<=", "value": Decimal("10.50")},
            {"field": "input_data.rate", "operator": "==", "value": 0.1},
        ],
        "approvers": [
            {"type": "user", "user": "bob", "required": False},
            {"type": "manager"},
        ],
    }
    rule = parse_rule(raw)
    exported = rule_to_dict(rule)
    assert exported["conditions"][2]["value"] == "10.50"  # exact, JSON-safe
    assert parse_rule(exported) == rule
    auto = parse_rule({"name": "a", "conditions": raw["conditions"], "action": "auto_approve"})
    assert parse_rule(rule_to_dict(auto)) == auto


def test_integral_decimal_becomes_int() -> None:
    cond = parse_condition(
        {"field": "input_data.amount", "operator": ">", "value": Decimal("5000.00")}
    )
    assert cond == Compare("input_data.amount", ">", 5000)


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        (
            {
                "name": "r",
                "conditions": [{"field": "input_data.amount", "operator": "gt", "value": 1}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0].operator",
            "unknown operator 'gt'",
        ),
        (
            {
                "name": "r",
                "conditions": [{"operator": ">", "value": 1}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0].field",
            "is required",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "input_data.amount", "operator": ">"}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0].value",
            "is required",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "inputdata.amount", "operator": ">", "value": 1}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0].field",
            "unknown root 'inputdata'",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "input_data..x", "operator": ">", "value": 1}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0].field",
            "dotted path",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "workflow", "operator": "in", "value": "x"}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0].value",
            "needs a list",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "workflow", "operator": "in", "value": []}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0].value",
            "empty list",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "workflow", "operator": ">", "value": True}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0].value",
            "number or a string",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "workflow", "operator": "==", "value": [1]}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0].value",
            "single value",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "workflow", "operator": "==", "value": float("nan")}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0].value",
            "finite",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "workflow", "operator": "==", "value": 1, "vaule": 2}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0].vaule",
            "did you mean 'value'",
        ),
        (
            {"name": "r", "conditions": [{"all": []}], "approvers": [{"type": "manager"}]},
            "rules[0].conditions[0].all",
            "non-empty list",
        ),
        (
            {
                "name": "r",
                "conditions": [{"all": [{"field": "workflow", "operator": "~", "value": 1}]}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0].all[0].operator",
            "unknown operator '~'",
        ),
        (
            {
                "name": "r",
                "conditions": [{"all": [], "any": []}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditions[0]",
            "exactly one key",
        ),
        (
            {"name": "r", "conditions": ["amount > 5"], "approvers": [{"type": "manager"}]},
            "rules[0].conditions[0]",
            "must be a mapping",
        ),
        (
            {"name": "r", "conditions": [], "approvers": [{"type": "manager"}]},
            "rules[0].conditions",
            "non-empty",
        ),
        (
            {
                "conditions": [{"field": "workflow", "operator": "==", "value": 1}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].name",
            "name is required",
        ),
        (
            {
                "name": "r",
                "priority": "high",
                "conditions": [{"field": "workflow", "operator": "==", "value": 1}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].priority",
            "whole number",
        ),
        (
            {
                "name": "r",
                "match": "some",
                "conditions": [{"field": "workflow", "operator": "==", "value": 1}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].match",
            "unknown match 'some'",
        ),
        (
            {
                "name": "r",
                "action": "approve",
                "conditions": [{"field": "workflow", "operator": "==", "value": 1}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].action",
            "unknown action 'approve'",
        ),
        (
            {"name": "r", "conditions": [{"field": "workflow", "operator": "==", "value": 1}]},
            "rules[0].approvers",
            "at least one approver",
        ),
        (
            {
                "name": "r",
                "action": "auto_approve",
                "conditions": [{"field": "workflow", "operator": "==", "value": 1}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].approvers",
            "takes no approvers",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "workflow", "operator": "==", "value": 1}],
                "approvers": [{"type": "group", "group": "x"}],
            },
            "rules[0].approvers[0].type",
            "unknown approver type 'group'",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "workflow", "operator": "==", "value": 1}],
                "approvers": [{"type": "role"}],
            },
            "rules[0].approvers[0].role",
            "role name is required",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "workflow", "operator": "==", "value": 1}],
                "approvers": [{"type": "role", "role": "CFO", "required": "yes"}],
            },
            "rules[0].approvers[0].required",
            "true or false",
        ),
        (
            {
                "name": "r",
                "conditions": [{"field": "workflow", "operator": "==", "value": 1}],
                "approvers": [{"type": "role", "role": "CFO"}, {"type": "role", "role": "CFO"}],
            },
            "rules[0].approvers[1]",
            "duplicates approvers[0]",
        ),
        (
            {
                "name": "r",
                "conditons": [],
                "conditions": [{"field": "workflow", "operator": "==", "value": 1}],
                "approvers": [{"type": "manager"}],
            },
            "rules[0].conditons",
            "did you mean 'conditions'",
        ),
    ],
)
def test_rule_errors_name_the_path(raw: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(DefinitionError) as exc:
        parse_rules([raw])
    found = errors_of(exc)
    assert path in found, found
    assert fragment in found[path]


def test_all_rule_errors_are_collected() -> None:
    raw = [
        {
            "name": "",
            "conditions": [
                {"field": "input_data.amount", "operator": ">", "value": 1},
                {"field": "input_data.amount", "operator": "=>", "value": 1},
            ],
            "approvers": [{"type": "role"}],
        },
        {
            "name": "ok",
            "conditions": [{"field": "nope", "operator": "==", "value": 1}],
            "approvers": [{"type": "manager"}],
        },
    ]
    with pytest.raises(DefinitionError) as exc:
        parse_rules(raw)
    assert set(errors_of(exc)) == {
        "rules[0].name",
        "rules[0].conditions[1].operator",
        "rules[0].approvers[0].role",
        "rules[1].conditions[0].field",
    }
    assert "rules[0].conditions[1].operator" in str(exc.value)


def test_duplicate_rule_names() -> None:
    rule = SPEC_RULES[0]
    with pytest.raises(DefinitionError) as exc:
        parse_rules([rule, dict(rule)])
    assert list(errors_of(exc)) == ["rules[1].name"]


def test_nesting_and_size_are_bounded() -> None:
    cond: dict[str, Any] = {"field": "workflow", "operator": "==", "value": 1}
    for _ in range(12):
        cond = {"all": [cond]}
    with pytest.raises(DefinitionError) as exc:
        parse_condition(cond)
    assert "nest deeper" in str(exc.value)
    wide = {"any": [{"field": "workflow", "operator": "==", "value": i} for i in range(300)]}
    with pytest.raises(DefinitionError, match="too many conditions"):
        parse_condition(wide)


def test_parse_rule_alone_uses_relative_paths() -> None:
    with pytest.raises(DefinitionError) as exc:
        parse_rule(
            {
                "name": "r",
                "conditions": [{"field": "workflow", "operator": "?", "value": 1}],
                "approvers": [{"type": "manager"}],
            }
        )
    assert list(errors_of(exc)) == ["conditions[0].operator"]


# --------------------------------------------------------------------------- semantics


def cond(field: str, operator: str, value: Any) -> Compare:
    return parse_condition({"field": field, "operator": operator, "value": value})  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("actual", "operator", "value", "expected"),
    [
        (6000, ">", 5000, True),
        (5000, ">", 5000, False),
        (5000, ">=", 5000, True),
        ("5000.00", ">", 5000, False),
        ("5000.00", ">=", 5000, True),
        ("5000.01", ">", 5000, True),
        (Decimal("5000.001"), ">", "5000", True),
        (4999.99, "<", 5000, True),
        (0.3, "==", "0.3", True),  # floats by their shortest repr: 0.3 means 0.3
        (0.1 + 0.2, "==", 0.3, False),  # 0.30000000000000004 is not 0.3, exactly
        (Decimal("0.1"), "==", 0.1, True),
        (10**20 + 1, ">", 1e20, True),
        ("1e3", "==", 1000, True),
        ("12abc", ">", 5, False),  # not numeric vs number: incomparable
        ("abc", "<", 5, False),
        ("2024-01-31", "<", "2024-02-01", True),  # ISO dates order as strings
        ("b", ">", "a", True),
        (True, "==", 1, False),  # booleans are not numbers
        (True, "==", True, True),
        (None, "==", None, True),
        (None, "!=", 0, True),
        ("CFO", "!=", "CFO", False),
        ("travel", "in", ["travel", "meals"], True),
        ("5.0", "in", [5, 6], True),
        ("hotel", "in", ["travel", "meals"], False),
        ("hotel", "not_in", ["travel", "meals"], True),
        (5, "not_in", ["5"], False),
        (["Staff", "Manager"], "contains", "Manager", True),
        (["Staff"], "contains", "Manager", False),
        ([1, 2], "contains", "2.0", True),
        ("urgent travel", "contains", "travel", True),
        ("urgent", "contains", 5, False),
        ({"a": 1}, "==", 1, False),
        (True, ">", 0, False),  # a boolean field is not a number
    ],
)
def test_operator_semantics(actual: Any, operator: str, value: Any, expected: bool) -> None:
    assert (
        evaluate(cond("input_data.x", operator, value), {"input_data": {"x": actual}}) is expected
    )


@pytest.mark.parametrize("operator", [">", ">=", "<", "<=", "==", "!=", "in", "not_in", "contains"])
def test_missing_path_is_false_for_every_operator(operator: str) -> None:
    value: Any = [1] if operator in ("in", "not_in") else 1
    c = cond("input_data.missing", operator, value)
    assert evaluate(c, ctx(amount=1)) is False
    assert evaluate(cond("input_data.amount.deeper", operator, value), ctx(amount=1)) is False
    assert evaluate(c, {}) is False


def test_requester_and_workflow_paths() -> None:
    context = ctx(amount="10")
    assert evaluate(cond("requester.roles", "contains", "Manager"), context)
    assert evaluate(cond("requester.username", "==", "alice"), context)
    assert evaluate(cond("requester.id", "==", 7), context)
    assert evaluate(cond("workflow", "==", "expense_approval"), context)


def test_nested_all_any() -> None:
    c = parse_condition(
        {
            "all": [
                {"field": "input_data.amount", "operator": ">", "value": 100},
                {
                    "any": [
                        {"field": "input_data.category", "operator": "==", "value": "travel"},
                        {"field": "requester.roles", "operator": "contains", "value": "Intern"},
                    ]
                },
            ]
        }
    )
    assert isinstance(c, AllOf) and isinstance(c.conditions[1], AnyOf)
    assert evaluate(c, ctx(amount=200, category="travel"))
    assert not evaluate(c, ctx(amount=200, category="meals"))
    assert not evaluate(c, ctx(amount=50, category="travel"))


def test_strings_are_data_never_code() -> None:
    c = cond("input_data.note", "==", "__import__('os').system('false')")
    assert evaluate(c, ctx(note="__import__('os').system('false')")) is True
    assert evaluate(c, ctx(note="x")) is False


def test_rule_match_modes_and_ordering() -> None:
    base = {"approvers": [{"type": "manager"}]}
    rules = parse_rules(
        [
            {
                "name": "b",
                "priority": 10,
                "conditions": [{"field": "input_data.amount", "operator": ">", "value": 1}],
                **base,
            },
            {
                "name": "a",
                "priority": 10,
                "conditions": [{"field": "input_data.amount", "operator": ">", "value": 1}],
                **base,
            },
            {
                "name": "top",
                "priority": 50,
                "conditions": [{"field": "input_data.amount", "operator": ">", "value": 1}],
                **base,
            },
            {
                "name": "any",
                "match": "any",
                "conditions": [
                    {"field": "input_data.amount", "operator": ">", "value": 10**6},
                    {"field": "input_data.category", "operator": "==", "value": "travel"},
                ],
                **base,
            },
            {
                "name": "all",
                "conditions": [
                    {"field": "input_data.amount", "operator": ">", "value": 10**6},
                    {"field": "input_data.category", "operator": "==", "value": "travel"},
                ],
                **base,
            },
        ]
    )
    names = [r.name for r in matching_rules(rules, ctx(amount="5", category="travel"))]
    assert names == ["top", "a", "b", "any"]
    assert matching_rules(rules, ctx(amount="0")) == []


def test_spec_rule_matches_high_amounts_only() -> None:
    rules = parse_rules(SPEC_RULES)
    assert matching_rules(rules, ctx(amount="5000.00")) == []
    assert [r.name for r in matching_rules(rules, ctx(amount="5000.01"))] == [
        "High Value Expense Rule"
    ]
    assert matching_rules(rules, ctx()) == []


# --------------------------------------------------------------------------- properties

decimals = st.decimals(
    allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9
)


def representations(d: Decimal) -> st.SearchStrategy[Any]:
    options: list[Any] = [d, str(d), format(d, "f")]
    if d == d.to_integral_value():
        options.append(int(d))
    if Decimal(repr(float(d))) == d:  # a float literal that means exactly d
        options.append(float(d))
    return st.sampled_from(options)


@settings(max_examples=300, deadline=None)
@given(
    a=decimals.flatmap(lambda d: st.tuples(st.just(d), representations(d))),
    b=decimals.flatmap(lambda d: st.tuples(st.just(d), representations(d))),
    operator=st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
)
def test_numeric_comparison_is_exact_whatever_the_representation(
    a: tuple[Decimal, Any], b: tuple[Decimal, Any], operator: str
) -> None:
    (da, ra), (db, rb) = a, b
    reference = {
        ">": da > db,
        ">=": da >= db,
        "<": da < db,
        "<=": da <= db,
        "==": da == db,
        "!=": da != db,
    }[operator]
    assert evaluate(cond("input_data.x", operator, rb), {"input_data": {"x": ra}}) is reference
