"""Workflow and step metadata from the specification's ProcessTemplate/ProcessStepTemplate:
``description``, ``category``, ``priority``, ``estimated_duration_hours``,
``expire_after_hours`` and a step's ``description`` and ``step_type``."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signoff.workflow.definitions import (
    DefinitionError,
    StepDef,
    WorkflowDefinition,
    definition_to_dict,
    parse_definition,
)
from signoff.workflow.definitions.model import PRIORITIES, STEP_TYPES
from signoff.workflow.registry import digest
from tests.fixtures.workflows import spec_expense
from tests.unit.workflow.test_definitions import assert_round_trips

BASE: dict[str, Any] = {
    "name": "Expense Approval",
    "steps": [
        {"name": "Manager Approval", "required_role": "Manager", "sla_hours": 24},
        {"name": "Finance Approval", "required_role": "Finance_Manager", "sla_hours": 72},
        {"name": "Archive", "required_role": "Clerk"},
    ],
}

FULL: dict[str, Any] = {
    "name": "Expense Approval",
    "description": "Multi-step expense approval workflow",
    "category": "finance",
    "priority": "high",
    "estimated_duration_hours": 48,
    "expire_after_hours": 168,
    "steps": [
        {
            "name": "Manager Approval",
            "description": "The requester's manager checks the claim.",
            "step_type": "approval",
            "required_role": "Manager",
            "sla_hours": 24,
        },
        {
            "name": "Finance Approval",
            "description": "Finance checks receipts\nand budget codes.",
            "step_type": "review",
            "required_role": "Finance_Manager",
            "sla_hours": 72,
        },
        {"name": "Archive", "step_type": "notification", "required_role": "Clerk"},
    ],
}


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def errors_of(raw: Any, key: str = "wf") -> dict[str, str]:
    with pytest.raises(DefinitionError) as exc:
        parse_definition(key, raw)
    return {e.path: e.message for e in exc.value.errors}


# --------------------------------------------------------------------------- accepted


def test_every_key_is_parsed() -> None:
    defn = parse_definition("expense", FULL)
    assert defn.description == "Multi-step expense approval workflow"
    assert defn.category == "finance"
    assert defn.priority == "high"
    assert defn.estimated_duration_hours == 48
    assert defn.expire_after_hours == 168
    assert [s.step_type for s in defn.steps] == ["approval", "review", "notification"]
    assert defn.steps[0].description == "The requester's manager checks the claim."
    assert defn.steps[1].description == "Finance checks receipts\nand budget codes."
    assert defn.steps[2].description == ""


def test_every_key_round_trips_through_export() -> None:
    defn = parse_definition("expense", FULL)
    exported = definition_to_dict(defn)
    assert json.loads(json.dumps(exported)) == exported
    assert exported["category"] == "finance"
    assert exported["priority"] == "high"
    assert exported["estimated_duration_hours"] == 48
    assert exported["expire_after_hours"] == 168
    assert exported["steps"][0]["description"] == "The requester's manager checks the claim."
    assert [s["step_type"] for s in exported["steps"]] == ["approval", "review", "notification"]
    assert "description" not in exported["steps"][2]
    assert parse_definition("expense", exported) == defn
    assert definition_to_dict(parse_definition("expense", exported)) == exported


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("description", "d" * 2000),
        ("category", "c" * 64),
        ("category", "finance"),
        *[("priority", p) for p in PRIORITIES],
        ("estimated_duration_hours", 1),
        ("estimated_duration_hours", 24 * 366),
        ("expire_after_hours", 72),  # equal to the largest sla_hours is allowed
        ("expire_after_hours", 24 * 366),
    ],
)
def test_each_workflow_key_alone_round_trips(key: str, value: Any) -> None:
    raw = base()
    raw[key] = value
    defn = parse_definition("wf", raw)
    assert getattr(defn, key) == value
    exported = definition_to_dict(defn)
    assert exported[key] == value
    assert parse_definition("wf", exported) == defn


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("description", "s" * 2000),
        *[("step_type", t) for t in STEP_TYPES],
    ],
)
def test_each_step_key_alone_round_trips(key: str, value: Any) -> None:
    raw = base()
    raw["steps"][1][key] = value
    defn = parse_definition("wf", raw)
    assert getattr(defn.steps[1], key) == value
    exported = definition_to_dict(defn)
    assert exported["steps"][1][key] == value
    assert key not in exported["steps"][0]
    assert parse_definition("wf", exported) == defn


def test_null_means_not_given() -> None:
    raw = base()
    raw.update(
        description=None,
        category=None,
        priority=None,
        estimated_duration_hours=None,
        expire_after_hours=None,
    )
    raw["steps"][0].update(description=None, step_type=None)
    assert parse_definition("wf", raw) == parse_definition("wf", base())


def test_defaults_leave_the_model_unchanged() -> None:
    defn = parse_definition("wf", base())
    assert (defn.category, defn.priority) == (None, None)
    assert (defn.estimated_duration_hours, defn.expire_after_hours) == (None, None)
    assert all(s.description == "" and s.step_type is None for s in defn.steps)
    assert StepDef("s") == StepDef("s", description="", step_type=None)
    assert WorkflowDefinition("k", "n") == WorkflowDefinition(
        "k", "n", category=None, priority=None
    )


def test_step_type_is_informational_only() -> None:
    """The engine reads steps, never step_type: a 'notification' step still needs its
    approvers, exactly like the same step without a step_type."""
    raw = base()
    raw["steps"][2]["step_type"] = "notification"
    typed = parse_definition("wf", raw).steps[2]
    plain = parse_definition("wf", base()).steps[2]
    assert typed.approvers == plain.approvers and typed.pattern == plain.pattern


# --------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("description", 5, "must be a string"),
        ("description", "d" * 2001, "is longer than 2000 characters"),
        ("category", "", "must be a non-empty string"),
        ("category", "   ", "must be a non-empty string"),
        ("category", ["finance"], "must be a non-empty string"),
        ("category", "c" * 65, "is longer than 64 characters"),
        (
            "priority",
            "critical",
            "unknown priority 'critical'; expected one of low, normal, high, urgent",
        ),
        ("priority", "High", "unknown priority 'High'; expected one of low, normal, high, urgent"),
        ("priority", 5, "unknown priority 5; expected one of low, normal, high, urgent"),
        ("estimated_duration_hours", 0, "must be >= 1, got 0"),
        ("estimated_duration_hours", -3, "must be >= 1, got -3"),
        ("estimated_duration_hours", 1.5, "must be a whole number >= 1"),
        ("estimated_duration_hours", "48", "must be a whole number >= 1"),
        ("estimated_duration_hours", True, "must be a whole number >= 1"),
        ("estimated_duration_hours", 24 * 366 + 1, "must be <= 8784, got 8785"),
        ("expire_after_hours", 0, "must be >= 1, got 0"),
        ("expire_after_hours", "168", "must be a whole number >= 1"),
        ("expire_after_hours", False, "must be a whole number >= 1"),
        ("expire_after_hours", 24 * 366 + 1, "must be <= 8784, got 8785"),
    ],
)
def test_bad_workflow_values(key: str, value: Any, message: str) -> None:
    raw = base()
    raw[key] = value
    assert errors_of(raw) == {key: message}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("description", 5, "must be a string"),
        ("description", "d" * 2001, "is longer than 2000 characters"),
        (
            "step_type",
            "approve",
            "unknown step_type 'approve'; expected one of approval, review, notification",
        ),
        (
            "step_type",
            "",
            "unknown step_type ''; expected one of approval, review, notification",
        ),
        (
            "step_type",
            ["review"],
            "unknown step_type ['review']; expected one of approval, review, notification",
        ),
    ],
)
def test_bad_step_values(key: str, value: Any, message: str) -> None:
    raw = base()
    raw["steps"][1][key] = value
    assert errors_of(raw) == {f"steps[1].{key}": message}


def test_expiry_before_the_longest_sla_is_refused() -> None:
    raw = base()
    raw["expire_after_hours"] = 48
    assert errors_of(raw) == {
        "expire_after_hours": "expire_after_hours 48 is less than sla_hours 72 of "
        "steps[1] ('Finance Approval'); a request must not expire before its longest step SLA"
    }


def test_expiry_names_the_first_step_with_the_longest_sla() -> None:
    raw = base()
    raw["steps"][2]["sla_hours"] = 72
    raw["steps"][0]["sla_hours"] = 10
    raw["expire_after_hours"] = 71
    found = errors_of(raw)
    assert list(found) == ["expire_after_hours"]
    assert "sla_hours 72 of steps[1] ('Finance Approval')" in found["expire_after_hours"]


def test_expiry_without_any_sla_is_accepted() -> None:
    raw = {"name": "X", "steps": [{"name": "s", "required_role": "R"}], "expire_after_hours": 1}
    assert parse_definition("wf", raw).expire_after_hours == 1


def test_misspelt_keys_are_still_rejected() -> None:
    raw = base()
    raw["categry"] = "finance"
    raw["expire_after"] = 5
    raw["steps"][0]["step_typ"] = "review"
    raw["steps"][0]["descripton"] = "x"
    found = errors_of(raw)
    assert found == {
        "categry": "unknown key 'categry'; did you mean 'category'?",
        "expire_after": "unknown key 'expire_after'; did you mean 'expire_after_hours'?",
        "steps[0].step_typ": "unknown key 'step_typ'; did you mean 'step_type'?",
        "steps[0].descripton": "unknown key 'descripton'; did you mean 'description'?",
    }


def test_fields_keys_do_not_accept_the_new_keys() -> None:
    raw = base()
    raw["fields"] = [{"name": "amount", "type": "decimal", "description": "x"}]
    assert list(errors_of(raw)) == ["fields[0].description"]


def test_all_metadata_errors_are_reported_at_once() -> None:
    raw = base()
    raw.update(category="", priority="meh", estimated_duration_hours=0, expire_after_hours=-1)
    raw["steps"][0]["step_type"] = "vote"
    raw["steps"][2]["description"] = 1
    assert set(errors_of(raw)) == {
        "category",
        "priority",
        "estimated_duration_hours",
        "expire_after_hours",
        "steps[0].step_type",
        "steps[2].description",
    }


# --------------------------------------------------------------------------- unchanged exports

#: Exports (``json.dumps``) and version digests of definitions that use none of the new keys,
#: captured before the keys existed: they must not change by a single byte.
BEFORE: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "expense_approval",
        spec_expense(),
        '{"name": "Expense Approval", "description": "Multi-step expense approval workflow", '
        '"steps": [{"name": "Manager Approval", "required_role": "Manager", "requires_mfa": '
        'false, "auto_approve_threshold": null}, {"name": "Finance Approval", "required_role": '
        '"Finance_Manager", "requires_mfa": true, "auto_approve_threshold": 1000}], '
        '"initial_state": "pending_manager_approval", "approval_required_states": '
        '["pending_manager_approval", "pending_finance_approval"], "auto_approve_conditions": '
        '{"amount_threshold": 100, "user_roles": ["Senior_Manager"]}}',
        "fff8ca8a3c733371600bc87e23dba2f569eebf505d22ebde33af1e595a07408e",
    ),
    (
        "purchase",
        {
            "name": "Purchase",
            "fields": [
                {"name": "amount", "type": "decimal", "required": True, "max": "1000000.00"},
                {"name": "category", "type": "choice", "choices": ["it", "travel"]},
            ],
            "steps": [
                {
                    "name": "Lead",
                    "approvers": [{"type": "manager"}],
                    "sla_hours": 24,
                    "reminder_hours": 8,
                    "escalate_to": {"type": "role", "role": "Director"},
                },
                {
                    "name": "IT",
                    "pattern": "quorum",
                    "quorum": "60%",
                    "approvers": [{"type": "role", "role": "IT"}],
                    "auto_approve_threshold": "250.50",
                },
            ],
        },
        '{"name": "Purchase", "steps": [{"name": "Lead", "approvers": [{"type": "manager"}], '
        '"requires_mfa": false, "auto_approve_threshold": null, "sla_hours": 24, "escalate_to": '
        '{"type": "role", "role": "Director"}, "reminder_hours": 8}, {"name": "IT", "approvers": '
        '[{"type": "role", "role": "IT"}], "requires_mfa": false, "auto_approve_threshold": '
        '"250.50", "pattern": "quorum", "quorum": "60%"}], "initial_state": "pending", '
        '"approval_required_states": [], "fields": [{"name": "amount", "type": "decimal", '
        '"required": true, "max": 1000000}, {"name": "category", "type": "choice", "choices": '
        '["it", "travel"]}]}',
        "b2a9c910caaae96f704fd1f308ae6e5eaab3ab3407426b7e86babfd8a908f076",
    ),
]


@pytest.mark.parametrize(("key", "raw", "text", "version_digest"), BEFORE)
def test_definitions_without_the_new_keys_export_exactly_as_before(
    key: str, raw: dict[str, Any], text: str, version_digest: str
) -> None:
    exported = definition_to_dict(parse_definition(key, raw))
    assert json.dumps(exported) == text
    assert digest(exported) == version_digest  # an unchanged definition is no new version


def test_metadata_changes_the_version_digest() -> None:
    plain = definition_to_dict(parse_definition("wf", base()))
    raw = base()
    raw["priority"] = "urgent"
    assert digest(definition_to_dict(parse_definition("wf", raw))) != digest(plain)


# --------------------------------------------------------------------------- property


@st.composite
def raw_with_metadata(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 4))
    slas = [draw(st.one_of(st.none(), st.integers(1, 500))) for _ in range(n)]
    steps: list[dict[str, Any]] = []
    for i, sla in enumerate(slas):
        step: dict[str, Any] = {"name": f"s{i}", "required_role": "R"}
        if sla is not None:
            step["sla_hours"] = sla
        if draw(st.booleans()):
            step["description"] = draw(st.text(max_size=30))
        if draw(st.booleans()):
            step["step_type"] = draw(st.sampled_from(STEP_TYPES))
        steps.append(step)
    raw: dict[str, Any] = {"name": "W", "steps": steps}
    if draw(st.booleans()):
        raw["description"] = draw(st.text(max_size=30))
    if draw(st.booleans()):
        raw["category"] = draw(st.text(min_size=1, max_size=64).filter(str.strip))
    if draw(st.booleans()):
        raw["priority"] = draw(st.sampled_from(PRIORITIES))
    if draw(st.booleans()):
        raw["estimated_duration_hours"] = draw(st.integers(1, 24 * 366))
    if draw(st.booleans()):
        longest = max((s for s in slas if s is not None), default=1)
        raw["expire_after_hours"] = draw(st.integers(longest, 24 * 366))
    return raw


@settings(max_examples=150, deadline=None)
@given(raw=raw_with_metadata())
def test_metadata_round_trips(raw: dict[str, Any]) -> None:
    assert_round_trips(raw)
