"""Workflow definitions: the spec's format, extensions, exact error paths, export, input."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signoff.workflow.definitions import (
    ApproverSpec,
    AutoApprove,
    DefinitionError,
    FieldDef,
    InputError,
    StepDef,
    WorkflowDefinition,
    definition_to_dict,
    effective_definitions,
    parse_definition,
    parse_definitions,
    quorum_need,
    validate_input,
)
from signoff.workflow.rules import Compare
from tests.fixtures.workflows import spec_expense, spec_workflows

EXTENDED: dict[str, Any] = {
    "name": "Purchase",
    "fields": [
        {"name": "amount", "type": "decimal", "required": True, "min": 0, "max": "1000000.00"},
        {"name": "category", "type": "choice", "choices": ["it", "travel"], "required": True},
        {"name": "note", "type": "text", "max_length": 500, "label": "Note"},
        {"name": "due", "type": "date", "min": "2024-01-01"},
        {"name": "urgent", "type": "boolean"},
        {"name": "units", "type": "integer", "min": 1, "max": 100},
        {"name": "vendor", "type": "string"},
    ],
    "steps": [
        {
            "name": "Lead",
            "approvers": [{"type": "manager"}],
            "sla_hours": 24,
            "reminder_hours": 8,
            "escalate_to": {"type": "role", "role": "Director"},
            "skip_if": {"field": "input_data.amount", "operator": "<", "value": 100},
        },
        {
            "name": "IT",
            "pattern": "quorum",
            "quorum": "60%",
            "approvers": [{"type": "role", "role": "IT"}],
            "parallel_group": "review",
        },
        {
            "name": "Legal",
            "pattern": "weighted",
            "threshold": 3,
            "approvers": [
                {"type": "user", "user": "lea", "weight": 2},
                {"type": "role", "role": "Legal"},
            ],
            "parallel_group": "review",
            "allow_delegation": False,
        },
        {
            "name": "Board",
            "pattern": "parallel",
            "approvers": [{"type": "role", "role": "CFO"}, {"type": "user", "user": "ceo"}],
            "requires_mfa": True,
            "mfa_timeout": 600,
            "auto_approve_threshold": "250.50",
        },
        {
            "name": "Chain",
            "approvers": [{"type": "user", "user": "a"}, {"type": "user", "user": "b"}],
        },
        {
            "name": "Any",
            "pattern": "first_response",
            "approvers": [{"type": "rule", "rule": "pick"}],
        },
        {"name": "All", "pattern": "unanimous", "required_role": "Ops"},
        {"name": "Most", "pattern": "majority", "required_role": "Ops2"},
    ],
    "rules": [
        {
            "name": "Big IT",
            "priority": 5,
            "conditions": [
                {"field": "input_data.amount", "operator": ">", "value": 5000},
                {"field": "input_data.category", "operator": "==", "value": "it"},
            ],
            "approvers": [{"type": "role", "role": "CTO", "required": True}],
        }
    ],
}


def errors_of(raw: Any, key: str = "wf") -> dict[str, str]:
    with pytest.raises(DefinitionError) as exc:
        parse_definition(key, raw)
    return {e.path: e.message for e in exc.value.errors}


# --------------------------------------------------------------------------- the spec's format


def test_spec_example_parses_exactly() -> None:
    defn = parse_definitions(spec_workflows())["expense_approval"]
    assert defn == WorkflowDefinition(
        key="expense_approval",
        name="Expense Approval",
        description="Multi-step expense approval workflow",
        steps=(
            StepDef(
                name="Manager Approval",
                pattern="sequential",
                approvers=(ApproverSpec("role", "Manager"),),
                required_role="Manager",
            ),
            StepDef(
                name="Finance Approval",
                approvers=(ApproverSpec("role", "Finance_Manager"),),
                required_role="Finance_Manager",
                requires_mfa=True,
                auto_approve_threshold=Decimal(1000),
            ),
        ),
        initial_state="pending_manager_approval",
        approval_required_states=("pending_manager_approval", "pending_finance_approval"),
        auto_approve=AutoApprove(Decimal(100), ("Senior_Manager",)),
    )


def test_spec_example_exports_in_its_own_format() -> None:
    defn = parse_definition("expense_approval", spec_expense())
    assert definition_to_dict(defn) == spec_expense()


def test_extended_definition_parses_and_round_trips() -> None:
    defn = parse_definition("purchase", EXTENDED)
    steps = {s.name: s for s in defn.steps}
    assert steps["Lead"].approvers == (ApproverSpec("manager"),)
    assert steps["Lead"].skip_if == Compare("input_data.amount", "<", 100)
    assert steps["Lead"].escalate_to == ApproverSpec("role", "Director")
    assert steps["IT"].quorum == "60%" and steps["IT"].parallel_group == "review"
    assert steps["Legal"].approvers[0] == ApproverSpec("user", "lea", 2)
    assert steps["Legal"].threshold == 3 and not steps["Legal"].allow_delegation
    assert steps["Board"].auto_approve_threshold == Decimal("250.50")
    assert steps["Board"].mfa_timeout == 600
    assert defn.field("amount") == FieldDef(
        "amount", "decimal", required=True, min=Decimal(0), max=Decimal("1000000.00")
    )
    assert defn.field("due") == FieldDef("due", "date", min=date(2024, 1, 1))
    assert [r.name for r in defn.rules] == ["Big IT"]
    exported = definition_to_dict(defn)
    assert json.loads(json.dumps(exported)) == exported  # JSON-safe
    assert parse_definition("purchase", exported) == defn


def test_defaults() -> None:
    defn = parse_definition("x", {"name": "X", "steps": [{"name": "s", "required_role": "R"}]})
    assert defn.initial_state == "pending"
    assert defn.auto_approve is None and defn.fields == () and defn.rules == ()
    step = defn.steps[0]
    assert (step.pattern, step.requires_mfa, step.allow_delegation) == ("sequential", False, True)


def test_empty_auto_approve_conditions_mean_none() -> None:
    raw = spec_expense()
    raw["auto_approve_conditions"] = {"amount_threshold": None, "user_roles": []}
    assert parse_definition("x", raw).auto_approve is None


def test_parse_definitions_prefixes_paths_with_the_key() -> None:
    bad = spec_expense()
    bad["steps"][1]["pattern"] = "mojority"
    with pytest.raises(DefinitionError) as exc:
        parse_definitions({"ok": spec_expense(), "expense": bad})
    assert [e.path for e in exc.value.errors] == ["expense.steps[1].pattern"]


@pytest.mark.parametrize(
    ("quorum", "eligible", "need"),
    [
        (3, 10, 3),
        ("60%", 5, 3),
        ("60%", 4, 3),
        ("50%", 4, 2),
        ("100%", 7, 7),
        ("0.5%", 3, 1),
        ("33.33%", 3, 1),
    ],
)
def test_quorum_need(quorum: int | str, eligible: int, need: int) -> None:
    assert quorum_need(quorum, eligible) == need


# --------------------------------------------------------------------------- errors


def step_errors(step: dict[str, Any], *, index: int = 1) -> dict[str, str]:
    raw = spec_expense()
    raw["steps"][index] = step
    return errors_of(raw)


@pytest.mark.parametrize(
    ("step", "path", "fragment"),
    [
        (
            {"name": "F", "required_role": "R", "pattern": "mojority"},
            "steps[1].pattern",
            "unknown pattern 'mojority'; expected one of sequential, parallel",
        ),
        (
            {"name": "F", "required_role": "R", "pattern": "quorum"},
            "steps[1].quorum",
            "quorum pattern needs quorum",
        ),
        (
            {"name": "F", "required_role": "R", "quorum": 2},
            "steps[1].quorum",
            "only applies to the quorum pattern",
        ),
        (
            {"name": "F", "required_role": "R", "pattern": "quorum", "quorum": 0},
            "steps[1].quorum",
            "must be >= 1",
        ),
        (
            {"name": "F", "required_role": "R", "pattern": "quorum", "quorum": -2},
            "steps[1].quorum",
            "must be >= 1",
        ),
        (
            {"name": "F", "required_role": "R", "pattern": "quorum", "quorum": "0%"},
            "steps[1].quorum",
            "bad percentage",
        ),
        (
            {"name": "F", "required_role": "R", "pattern": "quorum", "quorum": "120%"},
            "steps[1].quorum",
            "bad percentage",
        ),
        (
            {"name": "F", "required_role": "R", "pattern": "quorum", "quorum": "60"},
            "steps[1].quorum",
            "bad percentage",
        ),
        (
            {"name": "F", "required_role": "R", "pattern": "quorum", "quorum": 2.5},
            "steps[1].quorum",
            "count >= 1 or a percentage",
        ),
        (
            {
                "name": "F",
                "pattern": "quorum",
                "quorum": 3,
                "approvers": [{"type": "user", "user": "a"}, {"type": "user", "user": "b"}],
            },
            "steps[1].quorum",
            "quorum 3 exceeds the 2 approvers",
        ),
        (
            {"name": "F", "required_role": "R", "pattern": "weighted"},
            "steps[1].threshold",
            "weighted pattern needs a threshold",
        ),
        (
            {"name": "F", "required_role": "R", "pattern": "weighted", "threshold": -1},
            "steps[1].threshold",
            "must be >= 1",
        ),
        (
            {"name": "F", "required_role": "R", "threshold": 2},
            "steps[1].threshold",
            "only applies to the weighted pattern",
        ),
        (
            {
                "name": "F",
                "pattern": "weighted",
                "threshold": 5,
                "approvers": [
                    {"type": "user", "user": "a", "weight": 2},
                    {"type": "user", "user": "b", "weight": 2},
                ],
            },
            "steps[1].threshold",
            "threshold 5 exceeds the total weight 4",
        ),
        (
            {
                "name": "F",
                "pattern": "weighted",
                "threshold": 2,
                "approvers": [{"type": "role", "role": "R", "weight": 0}],
            },
            "steps[1].approvers[0].weight",
            "must be >= 1",
        ),
        (
            {"name": "F", "approvers": [{"type": "role", "role": "R", "weight": 2}]},
            "steps[1].approvers[0].weight",
            "only applies to the weighted pattern",
        ),
        (
            {"name": "F", "pattern": "parallel", "required_role": "R"},
            "steps[1].approvers",
            "at least 2 approvers",
        ),
        (
            {"name": "F", "pattern": "parallel", "approvers": [{"type": "role", "role": "R"}]},
            "steps[1].approvers",
            "at least 2 approvers",
        ),
        (
            {
                "name": "F",
                "approvers": [{"type": "role", "role": "R"}, {"type": "user", "user": "u"}],
            },
            "steps[1].approvers",
            "ordered list of users",
        ),
        ({"name": "F", "approvers": []}, "steps[1].approvers", "non-empty list"),
        (
            {"name": "F", "required_role": "R", "approvers": [{"type": "manager"}]},
            "steps[1].approvers",
            "either required_role or approvers",
        ),
        ({"name": "F"}, "steps[1]", "needs approvers"),
        (
            {"name": "F", "approvers": [{"type": "team", "team": "x"}]},
            "steps[1].approvers[0].type",
            "unknown approver type 'team'",
        ),
        (
            {"name": "F", "approvers": [{"type": "user"}]},
            "steps[1].approvers[0].user",
            "is required",
        ),
        (
            {"name": "F", "approvers": [{"type": "manager", "role": "x"}]},
            "steps[1].approvers[0].role",
            "unknown key 'role'",
        ),
        (
            {
                "name": "F",
                "approvers": [{"type": "user", "user": "a"}, {"type": "user", "user": "a"}],
            },
            "steps[1].approvers[1]",
            "duplicates approvers[0]",
        ),
        (
            {"name": "F", "requred_role": "R", "required_role": "R"},
            "steps[1].requred_role",
            "did you mean 'required_role'",
        ),
        (
            {"name": "F", "required_role": "R", "auto_approve_threshold": -5},
            "steps[1].auto_approve_threshold",
            "must not be negative",
        ),
        (
            {"name": "F", "required_role": "R", "auto_approve_threshold": "lots"},
            "steps[1].auto_approve_threshold",
            "must be a number",
        ),
        (
            {"name": "F", "required_role": "R", "requires_mfa": "yes"},
            "steps[1].requires_mfa",
            "true or false",
        ),
        (
            {"name": "F", "required_role": "R", "mfa_timeout": 60},
            "steps[1].mfa_timeout",
            "needs requires_mfa",
        ),
        ({"name": "F", "required_role": "R", "sla_hours": 0}, "steps[1].sla_hours", "must be >= 1"),
        (
            {"name": "F", "required_role": "R", "sla_hours": 4, "reminder_hours": 4},
            "steps[1].reminder_hours",
            "less than sla_hours",
        ),
        (
            {"name": "F", "required_role": "R", "escalate_to": {"type": "role", "role": "D"}},
            "steps[1].escalate_to",
            "needs sla_hours",
        ),
        (
            {"name": "F", "required_role": "R", "sla_hours": 2, "escalate_to": {"type": "boss"}},
            "steps[1].escalate_to.type",
            "unknown approver type",
        ),
        (
            {
                "name": "F",
                "required_role": "R",
                "skip_if": {"field": "input_data.amount", "operator": "lt", "value": 1},
            },
            "steps[1].skip_if.operator",
            "unknown operator 'lt'",
        ),
        (
            {
                "name": "F",
                "required_role": "R",
                "skip_if": {"any": [{"field": "x.y", "operator": "<", "value": 1}]},
            },
            "steps[1].skip_if.any[0].field",
            "unknown root 'x'",
        ),
        (
            {"name": "F", "required_role": "R", "parallel_group": "a b"},
            "steps[1].parallel_group",
            "letters, digits",
        ),
        (
            {"name": "F", "required_role": "R", "allow_delegation": 1},
            "steps[1].allow_delegation",
            "true or false",
        ),
        ({"name": "", "required_role": "R"}, "steps[1].name", "non-empty string"),
        (
            {"name": "Manager Approval", "required_role": "R"},
            "steps[1].name",
            "duplicate step name",
        ),
        ("Finance", "steps[1]", "must be a mapping"),
    ],
)
def test_step_errors_name_step_and_reason(step: Any, path: str, fragment: str) -> None:
    found = step_errors(step)
    assert path in found, found
    assert fragment in found[path], found[path]


@pytest.mark.parametrize(
    ("field", "path", "fragment"),
    [
        (
            {"name": "amount", "type": "money"},
            "fields[0].type",
            "unknown type 'money'; expected one of string",
        ),
        ({"name": "amount"}, "fields[0].type", "is required"),
        ({"name": "1st", "type": "string"}, "fields[0].name", "letters, digits"),
        ({"name": "c", "type": "choice"}, "fields[0].choices", "non-empty list of choices"),
        (
            {"name": "c", "type": "choice", "choices": ["a", "a"]},
            "fields[0].choices[1]",
            "duplicate 'a'",
        ),
        (
            {"name": "c", "type": "string", "choices": ["a"]},
            "fields[0].choices",
            "only apply to choice",
        ),
        (
            {"name": "c", "type": "integer", "max_length": 3},
            "fields[0].max_length",
            "only applies to string and text",
        ),
        ({"name": "c", "type": "string", "max_length": 0}, "fields[0].max_length", "must be >= 1"),
        (
            {"name": "c", "type": "string", "min": 1},
            "fields[0].min",
            "only apply to integer, decimal and date",
        ),
        ({"name": "c", "type": "integer", "min": 1.5}, "fields[0].min", "whole number"),
        (
            {"name": "c", "type": "decimal", "min": 10, "max": 1},
            "fields[0].min",
            "greater than max",
        ),
        ({"name": "c", "type": "date", "max": "31/12/2024"}, "fields[0].max", "date like"),
        (
            {"name": "c", "type": "date", "min": "2024-02-01", "max": "2024-01-01"},
            "fields[0].min",
            "greater than max",
        ),
        (
            {"name": "c", "type": "string", "required": "true"},
            "fields[0].required",
            "true or false",
        ),
        ({"name": "c", "type": "string", "lable": "C"}, "fields[0].lable", "did you mean 'label'"),
    ],
)
def test_field_errors(field: dict[str, Any], path: str, fragment: str) -> None:
    found = errors_of(
        {"name": "X", "steps": [{"name": "s", "required_role": "R"}], "fields": [field]}
    )
    assert path in found, found
    assert fragment in found[path], found[path]


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda r: r.update(steps=[]), "steps", "non-empty list of steps"),
        (lambda r: r.pop("steps"), "steps", "non-empty list of steps"),
        (lambda r: r.pop("name"), "name", "is required"),
        (lambda r: r.update(stepz=[]), "stepz", "did you mean 'steps'"),
        (lambda r: r.update(initial_state=""), "initial_state", "non-empty string"),
        (
            lambda r: r.update(approval_required_states=["a", "a"]),
            "approval_required_states[1]",
            "duplicate",
        ),
        (
            lambda r: r.update(auto_approve_conditions={"amount_threshold": -1}),
            "auto_approve_conditions.amount_threshold",
            "must not be negative",
        ),
        (
            lambda r: r.update(auto_approve_conditions={"amount": 1}),
            "auto_approve_conditions.amount",
            "expected one of amount_threshold, user_roles",
        ),
        (
            lambda r: r.update(auto_approve_conditions={"user_roles": "Boss"}),
            "auto_approve_conditions.user_roles",
            "list of strings",
        ),
        (
            lambda r: r.update(
                rules=[
                    {
                        "name": "r",
                        "conditions": [{"field": "input_data.a", "operator": "=", "value": 1}],
                        "approvers": [{"type": "manager"}],
                    }
                ]
            ),
            "rules[0].conditions[0].operator",
            "unknown operator '='",
        ),
        (lambda r: r.update(fields="amount"), "fields", "list of fields"),
    ],
)
def test_workflow_errors(mutate: Any, path: str, fragment: str) -> None:
    raw = spec_expense()
    mutate(raw)
    found = errors_of(raw)
    assert path in found, found
    assert fragment in found[path], found[path]


def test_bad_key() -> None:
    assert "key" in errors_of(spec_expense(), key="has space")


def test_every_error_is_reported_at_once() -> None:
    raw = spec_expense()
    raw["steps"].append({"name": "Manager Approval", "required_role": "X", "pattern": "quorum"})
    raw["steps"].append({"name": "W", "pattern": "weighted", "required_role": "Y"})
    raw["fields"] = [{"name": "amount", "type": "decimal"}, {"name": "amount", "type": "money"}]
    raw["extra"] = 1
    found = errors_of(raw)
    assert set(found) == {
        "steps[2].name",
        "steps[2].quorum",
        "steps[3].threshold",
        "fields[1].name",
        "fields[1].type",
        "extra",
    }


def test_duplicate_field_names() -> None:
    raw = spec_expense()
    raw["fields"] = [{"name": "amount", "type": "decimal"}, {"name": "amount", "type": "integer"}]
    assert errors_of(raw) == {"fields[1].name": "duplicate field name 'amount' (also fields[0])"}


def test_parallel_group_must_be_consecutive() -> None:
    raw = {
        "name": "X",
        "steps": [
            {"name": "a", "required_role": "A", "parallel_group": "g"},
            {"name": "b", "required_role": "B"},
            {"name": "c", "required_role": "C", "parallel_group": "g"},
        ],
    }
    assert list(errors_of(raw)) == ["steps[2].parallel_group"]


def test_conditions_must_name_declared_fields() -> None:
    raw = copy.deepcopy(EXTENDED)
    raw["steps"][0]["skip_if"] = {"field": "input_data.amont", "operator": "<", "value": 1}
    raw["rules"][0]["conditions"][1]["field"] = "input_data.categry"
    found = errors_of(raw)
    assert set(found) == {"steps[0].skip_if", "rules[0].conditions[1]"}
    assert "unknown field 'amont'" in found["steps[0].skip_if"]


def test_amount_thresholds_need_a_numeric_amount_field() -> None:
    raw = spec_expense()
    raw["fields"] = [{"name": "amount", "type": "string"}]
    assert set(errors_of(raw)) == {
        "auto_approve_conditions.amount_threshold",
        "steps[1].auto_approve_threshold",
    }


def test_not_a_mapping() -> None:
    assert errors_of(["steps"]) == {"": "a workflow definition must be a mapping"}


# --------------------------------------------------------------------------- round trip


names = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
amounts = st.one_of(
    st.none(),
    st.integers(0, 10**6),
    st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False).map(str),
)
conditions = st.fixed_dictionaries(
    {
        "field": st.sampled_from(["input_data.amount", "requester.roles", "workflow"]),
        "operator": st.sampled_from(["<", "==", "contains"]),
        "value": st.one_of(st.integers(-5, 5), names, st.floats(-10, 10, allow_nan=False)),
    }
)
approver = st.one_of(
    st.builds(lambda n: {"type": "role", "role": n}, names),
    st.builds(lambda n: {"type": "rule", "rule": n}, names),
    st.just({"type": "manager"}),
)


@st.composite
def raw_steps(draw: st.DrawFn, index: int) -> dict[str, Any]:
    pattern = draw(
        st.sampled_from(
            [
                "sequential",
                "parallel",
                "unanimous",
                "majority",
                "first_response",
                "quorum",
                "weighted",
            ]
        )
    )
    step: dict[str, Any] = {"name": f"step{index}"}
    if pattern == "sequential" and draw(st.booleans()):
        step["required_role"] = draw(names)
    elif pattern == "sequential":
        users = draw(st.lists(names, min_size=1, max_size=3, unique=True))
        step["approvers"] = [{"type": "user", "user": u} for u in users]
    else:
        step["pattern"] = pattern
        entries = draw(
            st.lists(
                approver,
                min_size=2 if pattern == "parallel" else 1,
                max_size=3,
                unique_by=json.dumps,
            )
        )
        if pattern == "weighted":
            entries = [{**e, "weight": draw(st.integers(1, 4))} for e in entries]
            step["threshold"] = draw(st.integers(1, 5))
        step["approvers"] = entries
    if pattern == "quorum":
        step["quorum"] = draw(
            st.one_of(st.integers(1, 5), st.sampled_from(["50%", "60%", "100%", "12.5%"]))
        )
    step["requires_mfa"] = draw(st.booleans())
    if step["requires_mfa"] and draw(st.booleans()):
        step["mfa_timeout"] = draw(st.integers(1, 3600))
    step["auto_approve_threshold"] = draw(amounts)
    if draw(st.booleans()):
        step["sla_hours"] = draw(st.integers(2, 48))
        if draw(st.booleans()):
            step["reminder_hours"] = 1
        if draw(st.booleans()):
            step["escalate_to"] = {"type": "role", "role": draw(names)}
    if draw(st.booleans()):
        step["skip_if"] = draw(
            st.one_of(
                conditions,
                st.builds(lambda cs: {"any": cs}, st.lists(conditions, min_size=1, max_size=2)),
            )
        )
    if draw(st.booleans()):
        step["allow_delegation"] = False
    return step


@st.composite
def raw_definitions(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 4))
    steps = [draw(raw_steps(i)) for i in range(n)]
    if n >= 2 and draw(st.booleans()):
        steps[0]["parallel_group"] = steps[1]["parallel_group"] = "g"
    raw: dict[str, Any] = {"name": draw(names), "steps": steps}
    if draw(st.booleans()):
        raw["description"] = draw(st.text(max_size=20))
    if draw(st.booleans()):
        raw["auto_approve_conditions"] = {
            "amount_threshold": draw(amounts),
            "user_roles": draw(st.lists(names, max_size=2, unique=True)),
        }
    if draw(st.booleans()):
        raw["fields"] = [
            {
                "name": "amount",
                "type": "decimal",
                "required": draw(st.booleans()),
                "min": draw(st.sampled_from([None, 0, "0.01"])),
            },
            {"name": "kind", "type": "choice", "choices": ["a", "b"], "label": "Kind"},
            {"name": "day", "type": "date", "max": "2030-01-01"},
        ]
        for step in steps:
            step.pop("skip_if", None)
    if draw(st.booleans()):
        raw["rules"] = [
            {
                "name": draw(names),
                "priority": draw(st.integers(-5, 5)),
                "conditions": [draw(conditions)],
                "match": draw(st.sampled_from(["all", "any"])),
                "approvers": [{"type": "role", "role": "CFO", "required": draw(st.booleans())}],
            }
        ]
        if "fields" in raw:
            raw["rules"][0]["conditions"] = [
                {"field": "input_data.amount", "operator": ">", "value": 10}
            ]
    return raw


@settings(max_examples=200, deadline=None)
@given(raw=raw_definitions())
def test_definition_to_dict_round_trips(raw: dict[str, Any]) -> None:
    assert_round_trips(raw)


def assert_round_trips(raw: dict[str, Any]) -> None:
    """The export is JSON, parses back to the same definition, and exports identically."""
    defn = parse_definition("generated", raw)
    exported = definition_to_dict(defn)
    assert json.loads(json.dumps(exported)) == exported
    assert parse_definition("generated", exported) == defn
    assert definition_to_dict(parse_definition("generated", exported)) == exported


# --------------------------------------------------------------------------- input validation


@pytest.fixture(scope="module")
def purchase() -> WorkflowDefinition:
    return parse_definition("purchase", EXTENDED)


def input_errors(defn: WorkflowDefinition, data: Any) -> dict[str, str]:
    with pytest.raises(InputError) as exc:
        validate_input(defn, data)
    return {e.path: e.message for e in exc.value.errors}


def test_valid_input_is_cleaned(purchase: WorkflowDefinition) -> None:
    cleaned = validate_input(
        purchase,
        {
            "amount": 1234.5,
            "category": "it",
            "note": "line one\nline two",
            "due": date(2024, 5, 1),
            "urgent": "TRUE",
            "units": "7",
            "vendor": "ACME",
        },
    )
    assert cleaned == {
        "amount": "1234.5",
        "category": "it",
        "note": "line one\nline two",
        "due": "2024-05-01",
        "urgent": True,
        "units": 7,
        "vendor": "ACME",
    }
    assert json.loads(json.dumps(cleaned)) == cleaned


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [("12.50", "12.50"), (12, "12"), (Decimal("0.10"), "0.10"), ("1e3", "1000"), (0.1, "0.1")],
)
def test_decimals_become_exact_strings(
    purchase: WorkflowDefinition, value: Any, cleaned: str
) -> None:
    assert validate_input(purchase, {"amount": value, "category": "it"})["amount"] == cleaned


def test_optional_fields_may_be_missing_none_or_blank(purchase: WorkflowDefinition) -> None:
    cleaned = validate_input(
        purchase, {"amount": "1", "category": "it", "units": "", "due": None, "vendor": ""}
    )
    assert cleaned == {"amount": "1", "category": "it", "vendor": ""}


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ({"category": "it"}, "input_data.amount", "is required"),
        ({"amount": None, "category": "it"}, "input_data.amount", "is required"),
        ({"amount": "", "category": "it"}, "input_data.amount", "is required"),
        ({"amount": "12,50", "category": "it"}, "input_data.amount", "decimal number"),
        ({"amount": "NaN", "category": "it"}, "input_data.amount", "decimal number"),
        ({"amount": float("inf"), "category": "it"}, "input_data.amount", "decimal number"),
        ({"amount": True, "category": "it"}, "input_data.amount", "decimal number"),
        ({"amount": "1e40", "category": "it"}, "input_data.amount", "decimal number"),
        ({"amount": "-1", "category": "it"}, "input_data.amount", "at least 0"),
        ({"amount": "1000000.01", "category": "it"}, "input_data.amount", "at most 1000000.00"),
        ({"amount": 1, "category": "food"}, "input_data.category", "one of it, travel"),
        ({"amount": 1, "category": "it", "note": "x" * 501}, "input_data.note", "longer than 500"),
        (
            {"amount": 1, "category": "it", "note": "nul\x00"},
            "input_data.note",
            "control characters",
        ),
        (
            {"amount": 1, "category": "it", "vendor": "two\nlines"},
            "input_data.vendor",
            "control characters",
        ),
        (
            {"amount": 1, "category": "it", "vendor": "x" * 256},
            "input_data.vendor",
            "longer than 255",
        ),
        ({"amount": 1, "category": "it", "vendor": 5}, "input_data.vendor", "must be a string"),
        (
            {"amount": 1, "category": "it", "due": "2023-12-31"},
            "input_data.due",
            "on or after 2024-01-01",
        ),
        ({"amount": 1, "category": "it", "due": "2024-02-30"}, "input_data.due", "date like"),
        ({"amount": 1, "category": "it", "due": "20240101"}, "input_data.due", "date like"),
        ({"amount": 1, "category": "it", "urgent": "maybe"}, "input_data.urgent", "true or false"),
        ({"amount": 1, "category": "it", "units": 2.5}, "input_data.units", "whole number"),
        ({"amount": 1, "category": "it", "units": True}, "input_data.units", "whole number"),
        ({"amount": 1, "category": "it", "units": 101}, "input_data.units", "at most 100"),
        ({"amount": 1, "category": "it", "units": "0"}, "input_data.units", "at least 1"),
        ({"amount": 1, "category": "it", "colour": "red"}, "input_data.colour", "unknown field"),
    ],
)
def test_input_errors(
    purchase: WorkflowDefinition, data: dict[str, Any], path: str, fragment: str
) -> None:
    found = input_errors(purchase, data)
    assert path in found, found
    assert fragment in found[path], found[path]


def test_all_input_errors_are_reported(purchase: WorkflowDefinition) -> None:
    found = input_errors(purchase, {"amount": "x", "units": 0, "extra": 1})
    assert set(found) == {
        "input_data.amount",
        "input_data.category",
        "input_data.units",
        "input_data.extra",
    }


def test_input_must_be_an_object(purchase: WorkflowDefinition) -> None:
    assert input_errors(purchase, ["amount"]) == {"input_data": "must be an object"}


def test_schemaless_input() -> None:
    defn = parse_definition("expense_approval", spec_expense())
    data = {"amount": 12.5, "n": 3, "ok": True, "none": None, "d": Decimal("1.20"), "s": "hi"}
    assert validate_input(defn, data) == {**data, "d": "1.20"}
    assert set(input_errors(defn, {"nested": {"a": 1}, "list": [1], "bad": float("nan")})) == {
        "input_data.nested",
        "input_data.list",
        "input_data.bad",
    }
    assert "64 keys" in input_errors(defn, {f"k{i}": i for i in range(65)})["input_data"]
    assert validate_input(defn, {f"k{i}": i for i in range(64)})["k63"] == 63


def test_tenant_workflows_replace_whole_entries() -> None:
    tenant = {
        "expense_approval": {
            "name": "Tenant expenses",
            "steps": [{"name": "Boss", "required_role": "Boss"}],
        },
        "extra": {"name": "E", "steps": [{"name": "s", "required_role": "R"}]},
    }
    merged = effective_definitions(spec_workflows(), tenant)
    assert merged["expense_approval"].name == "Tenant expenses"
    assert [s.name for s in merged["expense_approval"].steps] == ["Boss"]
    assert merged["expense_approval"].auto_approve is None  # nothing inherited
    assert set(merged) == {"expense_approval", "extra"}
    assert effective_definitions(spec_workflows()) == parse_definitions(spec_workflows())
    with pytest.raises(DefinitionError) as exc:
        effective_definitions(spec_workflows(), {"extra": {"name": "E", "steps": []}})
    assert [e.path for e in exc.value.errors] == ["extra.steps"]
