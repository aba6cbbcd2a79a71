"""The pure engine: every pattern, skip and auto-approve rule, refusal and transition."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from signoff.workflow.definitions import (
    ApproverSpec,
    StepDef,
    WorkflowDefinition,
    parse_definition,
)
from signoff.workflow.engine import (
    REFUSAL_CODES,
    Decision,
    EligibleInput,
    FrozenDict,
    Refusal,
    RequestState,
    Transition,
    decide,
    escalate,
    expire,
    extra_steps_for_rules,
    overdue_steps,
    resubmit,
    start,
    state_from_dict,
    state_to_dict,
    withdraw,
)
from signoff.workflow.rules import make_context, parse_rules
from tests.fixtures.workflows import spec_expense

NOW = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
REQ = 1  # the requester in every test


def expense() -> WorkflowDefinition:
    """The specification's expense workflow, parsed from a fresh copy."""
    return parse_definition("expense_approval", spec_expense())


def wf(*steps: dict[str, Any], **extra: Any) -> WorkflowDefinition:
    return parse_definition("wf", {"name": "WF", "steps": list(steps), **extra})


def ids(*users: int) -> dict[int, int]:
    return dict.fromkeys(users, 1)


def submit(
    defn: WorkflowDefinition,
    eligible: Sequence[EligibleInput],
    *,
    amount: Any = None,
    roles: Sequence[str] = (),
    **kwargs: Any,
) -> Transition:
    data = {} if amount is None else {"amount": amount}
    return start(
        defn,
        requester_id=REQ,
        requester_roles=roles,
        input_data=data,
        eligible_by_step=eligible,
        now=NOW,
        **kwargs,
    )


def act(
    state: RequestState,
    actor: int,
    step: int = 0,
    verdict: str = "approve",
    *,
    behalf: int | None = None,
    mfa: bool = True,
) -> Transition:
    return decide(
        state,
        actor_id=actor,
        on_behalf_of_id=behalf,
        step_index=step,
        verdict=verdict,
        now=LATER,
        mfa_fresh=mfa,
    )


def run(state: RequestState, *moves: tuple[int, int, str]) -> RequestState:
    for actor, step, verdict in moves:
        state = act(state, actor, step, verdict).state
    return state


def refused(code: str, fn: Any, *args: Any, **kwargs: Any) -> Refusal:
    with pytest.raises(Refusal) as exc:
        fn(*args, **kwargs)
    assert exc.value.code == code, exc.value
    return exc.value


def statuses(state: RequestState) -> list[str]:
    return [s.status for s in state.steps]


# --------------------------------------------------------------------------- the spec's workflow


def test_spec_workflow_end_to_end() -> None:
    defn = expense()
    t = submit(defn, [ids(2, 3), ids(4)], amount="5000.00")
    assert t.kinds() == ["request_submitted", "step_activated"]
    assert t.state.status == "pending" and statuses(t.state) == ["active", "waiting"]
    assert t.events[1].data["approvers"] == (2, 3)

    t = act(t.state, 2)
    assert t.kinds() == ["decision_recorded", "step_completed", "step_activated"]
    assert statuses(t.state) == ["approved", "active"]
    refused("step_not_active", act, t.state, 3, 0)
    refused("mfa_required", act, t.state, 4, 1, mfa=False)

    t = act(t.state, 4, 1)
    assert t.kinds() == ["decision_recorded", "step_completed", "request_approved"]
    assert t.state.status == "approved" and t.state.version == 3
    refused("not_pending", act, t.state, 3, 1)


@pytest.mark.parametrize(
    ("amount", "skipped"), [("1000", True), (1000.0, True), ("999.99", True), ("1000.01", False)]
)
def test_spec_finance_step_auto_approves_at_or_below_its_threshold(
    amount: Any, skipped: bool
) -> None:
    t = submit(expense(), [ids(2), ids(4)], amount=amount)
    assert (t.state.steps[1].status == "skipped") is skipped
    if skipped:
        assert t.state.steps[1].skip_reason == "auto_approve_threshold"
        assert t.kinds() == ["request_submitted", "step_skipped", "step_activated"]
        assert act(t.state, 2).state.status == "approved"


@pytest.mark.parametrize(
    ("amount", "roles", "reason"),
    [
        ("100", (), "amount_threshold"),
        (100, (), "amount_threshold"),
        ("0.00", (), "amount_threshold"),
        ("100.01", (), None),
        (None, (), None),
        ("not a number", (), None),
        ("5000", ("Senior_Manager",), "user_role"),
        ("5000", ("Manager",), None),
    ],
)
def test_spec_auto_approve_conditions(
    amount: Any, roles: tuple[str, ...], reason: str | None
) -> None:
    t = submit(expense(), [ids(2), ids(4)], amount=amount, roles=roles)
    if reason is None:
        assert t.state.status == "pending"
        return
    assert t.state.status == "approved"
    assert t.kinds() == ["request_submitted", "request_approved"]
    assert t.events[-1].data == {"reason": "auto_approve", "detail": reason}
    assert statuses(t.state) == ["skipped", "skipped"]


def test_auto_approve_does_not_need_approvers() -> None:
    t = submit(expense(), [{}, {}], amount="5")
    assert t.state.status == "approved"


# --------------------------------------------------------------------------- patterns


def test_sequential_single_role_first_approval_completes() -> None:
    t = submit(wf({"name": "s", "required_role": "R"}), [ids(2, 3, 4)])
    assert t.state.steps[0].slots == ((2, 3, 4),)
    done = act(t.state, 3).state
    assert done.status == "approved"
    assert done.steps[0].decisions == (Decision(3, None, "approve", LATER, 1),)


def test_sequential_single_role_reject_rejects() -> None:
    t = act(submit(wf({"name": "s", "required_role": "R"}), [ids(2, 3)]).state, 2, 0, "reject")
    assert t.kinds() == ["decision_recorded", "step_rejected", "request_rejected"]
    assert t.state.status == "rejected" and statuses(t.state) == ["rejected"]


def sequential_list() -> WorkflowDefinition:
    users = [{"type": "user", "user": u} for u in ("ann", "bob", "cat")]
    return wf({"name": "chain", "approvers": users}, {"name": "after", "required_role": "R"})


def test_sequential_list_goes_in_turn() -> None:
    t = submit(sequential_list(), [{2: 1, 3: 1, 4: 1}, ids(9)])
    assert t.state.steps[0].slots == ((2,), (3,), (4,))
    assert t.events[-1].data["approvers"] == (2,)
    refused("out_of_turn", act, t.state, 3)
    refused("out_of_turn", act, t.state, 4, 0, "reject")
    t = act(t.state, 2)
    assert t.kinds() == ["decision_recorded", "turn_passed"]
    assert t.events[-1].data["approvers"] == (3,)
    refused("already_decided", act, t.state, 2)
    refused("out_of_turn", act, t.state, 4)
    state = run(t.state, (3, 0, "approve"), (4, 0, "approve"))
    assert statuses(state) == ["approved", "active"]


def test_sequential_list_accepts_one_group_per_entry() -> None:
    t = submit(sequential_list(), [[ids(4), ids(3), ids(2)], ids(9)])
    assert t.state.steps[0].slots == ((4,), (3,), (2,))
    refused("out_of_turn", act, t.state, 2)
    assert act(t.state, 4).state.steps[0].status == "active"


def test_sequential_list_reject_in_turn_rejects() -> None:
    state = run(submit(sequential_list(), [{2: 1, 3: 1, 4: 1}, ids(9)]).state, (2, 0, "approve"))
    assert act(state, 3, 0, "reject").state.status == "rejected"


def test_sequential_list_naming_the_requester_is_refused() -> None:
    err = refused("no_eligible_approver", submit, sequential_list(), [{2: 1, REQ: 1, 4: 1}, ids(9)])
    assert err.step == 0


def test_first_response() -> None:
    defn = wf(
        {
            "name": "f",
            "pattern": "first_response",
            "approvers": [{"type": "role", "role": "A"}, {"type": "role", "role": "B"}],
        }
    )
    start_state = submit(defn, [[ids(2), ids(3)]]).state
    assert act(start_state, 3).state.status == "approved"
    assert act(start_state, 2, 0, "reject").state.status == "rejected"


def unanimous() -> WorkflowDefinition:
    return wf({"name": "u", "pattern": "unanimous", "required_role": "R"})


def test_unanimous_needs_everyone() -> None:
    state = submit(unanimous(), [ids(2, 3, 4)]).state
    assert state.steps[0].need == 3
    state = run(state, (2, 0, "approve"), (3, 0, "approve"))
    assert state.status == "pending"
    assert act(state, 4).state.status == "approved"


def test_unanimous_any_reject_rejects() -> None:
    state = run(submit(unanimous(), [ids(2, 3, 4)]).state, (2, 0, "approve"))
    assert act(state, 4, 0, "reject").state.status == "rejected"


@pytest.mark.parametrize(
    ("eligible", "moves", "status"),
    [
        ((2, 3, 4), [(2, "approve")], "pending"),
        ((2, 3, 4), [(2, "approve"), (3, "approve")], "approved"),
        ((2, 3, 4), [(2, "reject"), (3, "approve")], "pending"),
        ((2, 3, 4), [(2, "reject"), (3, "reject")], "rejected"),
        ((2, 3, 4, 5), [(2, "approve"), (3, "approve")], "pending"),  # 2 of 4 is not a majority
        ((2, 3, 4, 5), [(2, "approve"), (3, "approve"), (4, "approve")], "approved"),
        ((2, 3, 4, 5), [(2, "reject"), (3, "reject")], "rejected"),  # a tie is the best left
        ((2,), [(2, "approve")], "approved"),
    ],
)
def test_majority(eligible: tuple[int, ...], moves: list[tuple[int, str]], status: str) -> None:
    state = submit(
        wf({"name": "m", "pattern": "majority", "required_role": "R"}), [ids(*eligible)]
    ).state
    state = run(state, *((u, 0, v) for u, v in moves))
    assert state.status == status


@pytest.mark.parametrize(
    ("quorum", "eligible", "moves", "status"),
    [
        (2, (2, 3, 4, 5), [(2, "approve")], "pending"),
        (2, (2, 3, 4, 5), [(2, "approve"), (3, "approve")], "approved"),
        (2, (2, 3, 4, 5), [(2, "approve"), (3, "reject"), (4, "reject")], "pending"),
        (
            2,
            (2, 3, 4, 5),
            [(2, "approve"), (3, "reject"), (4, "reject"), (5, "reject")],
            "rejected",
        ),
        (2, (2, 3, 4, 5), [(2, "reject"), (3, "reject"), (4, "reject")], "rejected"),
        ("60%", (2, 3, 4, 5, 6), [(2, "approve"), (3, "approve")], "pending"),
        ("60%", (2, 3, 4, 5, 6), [(2, "approve"), (3, "approve"), (4, "approve")], "approved"),
        ("60%", (2, 3, 4, 5, 6), [(2, "reject"), (3, "reject"), (4, "reject")], "rejected"),
        ("100%", (2, 3), [(2, "approve"), (3, "approve")], "approved"),
    ],
)
def test_quorum(
    quorum: int | str, eligible: tuple[int, ...], moves: list[tuple[int, str]], status: str
) -> None:
    defn = wf({"name": "q", "pattern": "quorum", "quorum": quorum, "required_role": "R"})
    state = run(submit(defn, [ids(*eligible)]).state, *((u, 0, v) for u, v in moves))
    assert state.status == status


def weighted() -> WorkflowDefinition:
    approvers = [{"type": "user", "user": "lead", "weight": 3}, {"type": "role", "role": "Team"}]
    return wf({"name": "w", "pattern": "weighted", "threshold": 4, "approvers": approvers})


def test_weighted_reaches_threshold() -> None:
    state = submit(weighted(), [[{2: 3}, {3: 1, 4: 1}]]).state
    assert state.steps[0].eligible == {2: 3, 3: 1, 4: 1} and state.steps[0].need == 4
    state = run(state, (3, 0, "approve"), (4, 0, "approve"))
    assert state.status == "pending"  # 2 of 4
    assert act(state, 2).state.status == "approved"  # 5 >= 4


def test_weighted_rejected_when_threshold_unreachable() -> None:
    state = submit(weighted(), [[{2: 3}, {3: 1, 4: 1}]]).state
    assert act(state, 3, 0, "reject").state.status == "pending"  # 3 + 1 still reachable
    assert act(state, 2, 0, "reject").state.status == "rejected"  # 1 + 1 < 4


def test_weighted_person_in_two_entries_counts_once_with_the_larger_weight() -> None:
    state = submit(weighted(), [[{2: 3}, {2: 1, 3: 1}]]).state
    assert state.steps[0].eligible == {2: 3, 3: 1}
    assert act(act(state, 2).state, 3).state.status == "approved"


def test_weighted_delegate_carries_the_principals_weight() -> None:
    state = submit(weighted(), [[{2: 3}, {3: 1, 4: 1}]]).state
    t = act(state, 9, behalf=2)
    assert t.state.steps[0].decisions[0] == Decision(9, 2, "approve", LATER, 3)
    assert t.events[0].data["on_behalf_of_id"] == 2
    assert act(t.state, 3).state.status == "approved"


def test_weighted_unreachable_at_submission() -> None:
    refused("not_enough_approvers", submit, weighted(), [[{2: 2}, {3: 1}]])


def parallel() -> WorkflowDefinition:
    approvers = [{"type": "role", "role": "Legal"}, {"type": "user", "user": "ceo"}]
    return wf({"name": "p", "pattern": "parallel", "approvers": approvers})


def test_parallel_needs_every_slot() -> None:
    state = submit(parallel(), [[ids(2, 3), ids(4)]]).state
    assert state.steps[0].slots == ((2, 3), (4,))
    state = run(state, (2, 0, "approve"), (3, 0, "approve"))
    assert state.status == "pending"  # two Legal approvals still leave the CEO slot empty
    assert act(state, 4).state.status == "approved"


def test_parallel_any_order() -> None:
    state = submit(parallel(), [[ids(2, 3), ids(4)]]).state
    assert run(state, (4, 0, "approve"), (3, 0, "approve")).status == "approved"


def test_parallel_one_person_fills_one_slot() -> None:
    state = submit(parallel(), [[ids(2, 3), ids(2)]]).state
    state = act(state, 2).state
    assert state.status == "pending"
    assert act(state, 3).state.status == "approved"  # 3 takes Legal, 2 the named slot


def test_parallel_without_distinct_people_is_refused() -> None:
    refused("not_enough_approvers", submit, parallel(), [[ids(2), ids(2)]])
    refused("no_eligible_approver", submit, parallel(), [[ids(2), ids(REQ)]])
    refused("no_eligible_approver", submit, parallel(), [[ids(2), {}]])


def test_parallel_reject_vetoes() -> None:
    state = run(submit(parallel(), [[ids(2, 3), ids(4)]]).state, (2, 0, "approve"))
    assert act(state, 4, 0, "reject").state.status == "rejected"


def test_parallel_flat_mapping_is_one_slot_per_user() -> None:
    state = submit(parallel(), [ids(2, 4)]).state
    assert state.steps[0].slots == ((2,), (4,))


# --------------------------------------------------------------------------- parallel groups


def grouped() -> WorkflowDefinition:
    return wf(
        {"name": "first", "required_role": "A"},
        {"name": "legal", "required_role": "L", "parallel_group": "review"},
        {"name": "it", "required_role": "I", "parallel_group": "review"},
        {"name": "last", "required_role": "Z"},
    )


def test_parallel_group_steps_are_active_together() -> None:
    state = act(submit(grouped(), [ids(2), ids(3), ids(4), ids(5)]).state, 2).state
    assert statuses(state) == ["approved", "active", "active", "waiting"]
    t = act(state, 4, 2)
    assert statuses(t.state) == ["approved", "active", "approved", "waiting"]
    assert "step_activated" not in t.kinds()
    t = act(t.state, 3, 1)
    assert t.kinds() == ["decision_recorded", "step_completed", "step_activated"]
    assert statuses(t.state) == ["approved", "approved", "approved", "active"]


def test_rejection_in_a_group_cancels_its_siblings() -> None:
    state = act(submit(grouped(), [ids(2), ids(3), ids(4), ids(5)]).state, 2).state
    t = act(state, 3, 1, "reject")
    assert t.kinds() == ["decision_recorded", "step_rejected", "step_cancelled", "request_rejected"]
    assert statuses(t.state) == ["approved", "rejected", "cancelled", "waiting"]


def test_a_group_can_start_first_and_skip_members() -> None:
    defn = wf(
        {
            "name": "legal",
            "required_role": "L",
            "parallel_group": "g",
            "skip_if": {"field": "input_data.amount", "operator": "<", "value": 10},
        },
        {"name": "it", "required_role": "I", "parallel_group": "g"},
        {"name": "last", "required_role": "Z"},
    )
    t = submit(defn, [ids(3), ids(4), ids(5)], amount=5)
    assert statuses(t.state) == ["skipped", "active", "waiting"]
    assert statuses(act(t.state, 4, 1).state) == ["skipped", "approved", "active"]
    t = submit(defn, [ids(3), ids(4), ids(5)], amount=50)
    assert statuses(t.state) == ["active", "active", "waiting"]


# --------------------------------------------------------------------------- skips and rules


def test_skip_if_and_all_skipped_approves_at_once() -> None:
    cheap = {"field": "input_data.amount", "operator": "<", "value": 100}
    defn = wf(
        {"name": "a", "required_role": "A", "skip_if": cheap},
        {"name": "b", "required_role": "B", "skip_if": {"any": [cheap]}},
    )
    t = submit(defn, [{}, {}], amount="99.99")
    assert t.kinds() == ["request_submitted", "step_skipped", "step_skipped", "request_approved"]
    assert t.events[1].data == {"name": "a", "reason": "skip_if"}
    assert t.state.status == "approved"
    refused("no_eligible_approver", submit, defn, [{}, {}], amount="100")


def test_skip_if_sees_the_requester() -> None:
    defn = wf(
        {
            "name": "a",
            "required_role": "A",
            "skip_if": {"field": "requester.roles", "operator": "contains", "value": "Director"},
        }
    )
    assert submit(defn, [{}], roles=["Director"]).state.status == "approved"
    assert submit(defn, [ids(2)], roles=["Staff"]).state.status == "pending"


RULES: list[dict[str, Any]] = [
    {
        "name": "High Value Expense Rule",
        "priority": 100,
        "conditions": [{"field": "input_data.amount", "operator": ">", "value": 5000}],
        "approvers": [
            {"type": "role", "role": "CFO", "required": True},
            {"type": "user", "user": "aud", "required": False},
        ],
    },
    {
        "name": "Optional audit",
        "priority": 5,
        "conditions": [{"field": "input_data.amount", "operator": ">", "value": 1000}],
        "approvers": [{"type": "user", "user": "aud", "required": False}],
    },
    {
        "name": "Tiny",
        "action": "auto_approve",
        "conditions": [{"field": "input_data.amount", "operator": "<", "value": 1}],
    },
]


def test_extra_steps_for_rules() -> None:
    defn = wf({"name": "s", "required_role": "R"}, rules=RULES)
    context = make_context("wf", {"amount": "6000"})
    steps = extra_steps_for_rules(defn, context)
    assert steps == [
        StepDef("rule:High Value Expense Rule", "unanimous", (ApproverSpec("role", "CFO"),)),
        StepDef("rule:Optional audit", "first_response", (ApproverSpec("user", "aud"),)),
    ]
    assert extra_steps_for_rules(defn, make_context("wf", {"amount": "10"})) == []
    global_rules = parse_rules([{**RULES[1], "name": "Global", "priority": 500}])
    names = [s.name for s in extra_steps_for_rules(defn, context, global_rules=global_rules)]
    assert names == ["rule:Global", "rule:High Value Expense Rule", "rule:Optional audit"]


def test_rule_steps_run_after_the_definition() -> None:
    defn = wf({"name": "s", "required_role": "R"}, rules=RULES)
    extra = extra_steps_for_rules(defn, make_context("wf", {"amount": "6000"}))
    t = submit(defn, [ids(2), ids(7, 8), ids(9)], amount="6000", extra_steps=extra)
    assert [s.name for s in t.state.steps] == [
        "s",
        "rule:High Value Expense Rule",
        "rule:Optional audit",
    ]
    state = run(t.state, (2, 0, "approve"), (7, 1, "approve"))
    assert statuses(state) == ["approved", "active", "waiting"]  # unanimous: both CFOs
    state = run(state, (8, 1, "approve"), (9, 2, "approve"))
    assert state.status == "approved"


def test_rule_auto_approve() -> None:
    defn = wf({"name": "s", "required_role": "R"}, rules=RULES)
    t = submit(defn, [{}], amount="0.5")
    assert t.state.status == "approved"
    assert t.events[-1].data["detail"] == "rule:Tiny"
    global_rules = parse_rules(
        [
            {
                **RULES[2],
                "name": "G",
                "conditions": [{"field": "workflow", "operator": "==", "value": "wf"}],
            }
        ]
    )
    assert (
        submit(
            wf({"name": "s", "required_role": "R"}), [{}], global_rules=global_rules
        ).state.status
        == "approved"
    )


def test_eligible_sets_must_match_the_steps() -> None:
    defn = wf({"name": "s", "required_role": "R"})
    with pytest.raises(ValueError, match="1 steps"):
        submit(defn, [ids(2), ids(3)])
    with pytest.raises(ValueError, match="integers"):
        submit(defn, [{True: 1}])
    with pytest.raises(ValueError, match="weights"):
        submit(defn, [{2: 0}])
    with pytest.raises(ValueError, match="2 eligible groups for 1 approver"):
        submit(defn, [[ids(2), ids(3)]])


# ---------------------------------------------------------------- eligibility and refusals


def test_requester_is_never_eligible() -> None:
    state = submit(unanimous(), [ids(REQ, 2, 3)]).state
    assert state.steps[0].eligible == {2: 1, 3: 1} and state.steps[0].need == 2
    refused("no_eligible_approver", submit, unanimous(), [ids(REQ)])
    refused("no_eligible_approver", submit, unanimous(), [{}])


def test_refusal_codes_are_documented() -> None:
    assert Refusal("not_pending").message == REFUSAL_CODES["not_pending"]
    with pytest.raises(ValueError):
        Refusal("nope")


def test_self_approval_directly_and_on_behalf() -> None:
    state = submit(unanimous(), [ids(2, 3)]).state
    for actor, behalf in [(REQ, None), (REQ, 2), (2, REQ)]:
        for verdict in ("approve", "reject", "request_changes"):
            refused("self_approval", act, state, actor, 0, verdict, behalf=behalf)


def test_refusals_on_a_pending_request() -> None:
    defn = wf(
        {
            "name": "a",
            "pattern": "unanimous",
            "required_role": "A",
            "requires_mfa": True,
            "allow_delegation": False,
        },
        {"name": "b", "required_role": "B"},
    )
    state = submit(defn, [ids(2, 3), ids(4)]).state
    refused("step_not_active", act, state, 4, 1)
    refused("step_not_active", act, state, 4, 7)
    refused("step_not_active", act, state, 4, -1)
    refused("not_eligible", act, state, 9)
    refused("delegation_not_allowed", act, state, 9, behalf=2)
    refused("mfa_required", act, state, 2, mfa=False)
    refused("invalid_verdict", act, state, 2, 0, "maybe")
    state = act(state, 2).state
    refused("already_decided", act, state, 2)
    refused("already_decided", act, state, 2, 0, "reject")


def test_one_decision_per_principal_even_through_a_delegate() -> None:
    state = submit(unanimous(), [ids(2, 3, 4)]).state
    state = act(state, 9, behalf=2).state
    refused("already_decided", act, state, 2)
    refused("already_decided", act, state, 8, behalf=2)
    state = act(state, 3, behalf=3).state  # acting "on behalf" of oneself is acting directly
    assert state.steps[0].decisions[-1].on_behalf_of_id is None
    refused("not_eligible", act, state, 2, behalf=9)


def test_changes_requested_then_resubmit_restarts_fresh() -> None:
    defn = expense()
    state = act(submit(defn, [ids(2, 3), ids(4)], amount="5000").state, 2).state
    t = act(state, 4, 1, "request_changes", mfa=True)
    assert t.kinds() == ["decision_recorded", "changes_requested"]
    assert t.state.status == "changes_requested"
    refused("not_pending", act, t.state, 4, 1)
    refused(
        "not_requester",
        resubmit,
        t.state,
        defn,
        actor_id=2,
        eligible_by_step=[ids(2), ids(4)],
        input_data={},
        now=LATER,
    )
    again = resubmit(
        t.state,
        defn,
        actor_id=REQ,
        eligible_by_step=[ids(2, 3), ids(4)],
        input_data={"amount": "4000"},
        now=LATER,
    )
    assert again.kinds() == ["request_resubmitted", "request_submitted", "step_activated"]
    assert again.state.status == "pending" and statuses(again.state) == ["active", "waiting"]
    assert all(s.decisions == () for s in again.state.steps)
    assert again.state.version == t.state.version + 1
    refused(
        "not_changes_requested",
        resubmit,
        again.state,
        defn,
        actor_id=REQ,
        eligible_by_step=[ids(2), ids(4)],
        input_data={},
        now=LATER,
    )
    cheap = resubmit(
        t.state,
        defn,
        actor_id=REQ,
        eligible_by_step=[ids(2), ids(4)],
        input_data={"amount": "50"},
        now=LATER,
    )
    assert cheap.state.status == "approved"


def test_withdraw() -> None:
    state = submit(grouped(), [ids(2), ids(3), ids(4), ids(5)]).state
    refused("not_requester", withdraw, state, actor_id=2)
    t = withdraw(state, actor_id=REQ, now=LATER)
    assert t.kinds() == ["step_cancelled", "request_withdrawn"]
    assert t.state.status == "withdrawn" and statuses(t.state) == [
        "cancelled",
        "waiting",
        "waiting",
        "waiting",
    ]
    refused("not_pending", withdraw, t.state, actor_id=REQ)
    refused("not_pending", act, t.state, 2)
    sent_back = act(state, 2, 0, "request_changes").state
    assert withdraw(sent_back, actor_id=REQ).state.status == "withdrawn"


def test_escalate_lets_the_target_stand_in() -> None:
    defn = wf(
        {
            "name": "u",
            "pattern": "unanimous",
            "required_role": "R",
            "sla_hours": 4,
            "escalate_to": {"type": "role", "role": "D"},
        }
    )
    state = run(submit(defn, [ids(2, 3)]).state, (2, 0, "approve"))
    assert state.steps[0].due_at == NOW + timedelta(hours=4)
    t = escalate(state, step_index=0, add_eligible={9: 1, REQ: 1}, now=LATER)
    assert t.kinds() == ["escalated"] and t.events[0].data["added"] == (9,)
    step = t.state.steps[0]
    assert step.escalated and step.eligible == {2: 1, 3: 1, 9: 1} and step.need == 2
    assert step.due_at == LATER + timedelta(hours=4)
    assert act(t.state, 9).state.status == "approved"


def test_escalate_slots() -> None:
    state = run(submit(sequential_list(), [{2: 1, 3: 1, 4: 1}, ids(9)]).state, (2, 0, "approve"))
    step = escalate(state, step_index=0, add_eligible={8: 1}, now=LATER).state.steps[0]
    assert step.slots == ((2,), (3, 8), (4,))
    step = escalate(
        submit(parallel(), [[ids(2), ids(4)]]).state, step_index=0, add_eligible={8: 1}, now=LATER
    ).state.steps[0]
    assert step.slots == ((2, 8), (4, 8))


def test_sequential_turn_keeps_later_slots_fillable() -> None:
    state = run(submit(sequential_list(), [{2: 1, 3: 1, 4: 1}, ids(9)]).state, (2, 0, "approve"))
    state = escalate(state, step_index=0, add_eligible={4: 1}, now=LATER).state
    assert state.steps[0].slots[1] == (3, 4)
    refused("out_of_turn", act, state, 4)  # 4 is the only one who can fill the last slot
    assert act(act(state, 3).state, 4).state.steps[0].status == "approved"


def test_escalate_refusals() -> None:
    state = submit(grouped(), [ids(2), ids(3), ids(4), ids(5)]).state
    refused("step_not_active", escalate, state, step_index=1, add_eligible={9: 1}, now=LATER)
    refused("no_eligible_approver", escalate, state, step_index=0, add_eligible={REQ: 1}, now=LATER)
    done = withdraw(state, actor_id=REQ).state
    refused("not_pending", escalate, done, step_index=0, add_eligible={9: 1}, now=LATER)


def test_overdue_and_expire() -> None:
    defn = wf(
        {"name": "a", "required_role": "A", "sla_hours": 2}, {"name": "b", "required_role": "B"}
    )
    state = submit(defn, [ids(2), ids(3)]).state
    assert overdue_steps(state, NOW + timedelta(hours=1)) == ()
    assert overdue_steps(state, NOW + timedelta(hours=2)) == (0,)
    t = expire(state, NOW + timedelta(hours=3))
    assert t.kinds() == ["step_expired", "request_expired"]
    assert t.state.status == "expired" and statuses(t.state) == ["expired", "waiting"]
    assert overdue_steps(t.state, NOW + timedelta(days=9)) == ()
    refused("not_pending", expire, t.state, LATER)
    refused("not_pending", act, t.state, 2)
    refused("not_pending", withdraw, t.state, actor_id=REQ)


def test_terminal_states_refuse_everything() -> None:
    state = submit(unanimous(), [ids(2)]).state
    for terminal in (
        act(state, 2).state,
        act(state, 2, 0, "reject").state,
        withdraw(state, actor_id=REQ).state,
        expire(state, LATER).state,
    ):
        assert terminal.is_terminal and terminal.active_steps == ()
        refused("not_pending", act, terminal, 2)
        refused("not_pending", escalate, terminal, step_index=0, add_eligible={3: 1}, now=LATER)
        refused("not_pending", withdraw, terminal, actor_id=REQ)
        refused("not_pending", expire, terminal, LATER)


# ---------------------------------------------------------------- serialisation and events


def test_state_round_trips_through_json() -> None:
    state = submit(grouped(), [ids(2), ids(3), ids(4), ids(5)]).state
    state = act(state, 9, behalf=2).state
    state = escalate(state, step_index=1, add_eligible={7: 2}, now=LATER).state
    raw = json.loads(json.dumps(state_to_dict(state)))
    assert state_from_dict(raw) == state
    assert state_from_dict(raw).steps[1].eligible == FrozenDict({3: 1, 7: 2})


@pytest.mark.parametrize(
    "breakage",
    [
        lambda r: r.update(format=99),
        lambda r: r.update(status="limbo"),
        lambda r: r["steps"][0].update(status="done"),
        lambda r: r["steps"][0].update(index=5),
        lambda r: r["steps"][0]["decisions"].append(
            {"actor_id": 2, "verdict": "ok", "at": NOW.isoformat()}
        ),
        lambda r: r["steps"][0].update(eligible=[["2", 1]]),
        lambda r: r.pop("requester_id"),
    ],
)
def test_malformed_state_is_a_value_error(breakage: Any) -> None:
    raw = state_to_dict(submit(unanimous(), [ids(2)]).state)
    breakage(raw)
    with pytest.raises(ValueError):
        state_from_dict(raw)


def test_events_are_json_safe() -> None:
    t = submit(expense(), [ids(2), ids(4)], amount="5000")
    dumped = [e.to_dict() for e in t.events]
    assert json.loads(json.dumps(dumped)) == dumped
    assert dumped[-1] == {
        "kind": "step_activated",
        "step": 0,
        "data": {"name": "Manager Approval", "approvers": [2], "due_at": None},
    }


def test_frozen_dict_is_hashable_and_read_only() -> None:
    frozen = FrozenDict({2: 1})
    assert hash(frozen) == hash(FrozenDict({2: 1})) and frozen == {2: 1}
    assert not isinstance(frozen, dict) and not hasattr(frozen, "__setitem__")
    mapping: Mapping[int, int] = frozen
    assert dict(mapping) == {2: 1}
