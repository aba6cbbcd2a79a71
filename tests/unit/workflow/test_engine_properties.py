"""Property tests of the engine's invariants (docs/ARCHITECTURE.md §8).

A deliberately naive reference model (brute force, fractions, no shared code with the
engine) decides what should happen to every attempted decision; the engine must agree.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from signoff.workflow.definitions import parse_definition
from signoff.workflow.engine import (
    Refusal,
    RequestState,
    Transition,
    decide,
    start,
    state_from_dict,
    state_to_dict,
)

NOW = datetime(2025, 3, 1, tzinfo=UTC)
REQ = 1
OUTSIDER = 10  # never eligible; acts only as a delegate
PATTERNS = [
    "sequential",
    "sequential_list",
    "parallel",
    "unanimous",
    "majority",
    "first_response",
    "quorum",
    "weighted",
]
COUNT_PATTERNS = ["unanimous", "majority", "quorum", "weighted"]


@dataclass
class Scenario:
    """One step: how it is written, what the action layer resolved, and the reference."""

    pattern: str  # sequential_list is a sequential step over an ordered list of users
    raw_step: dict[str, Any]
    eligible_input: Any
    groups: list[dict[int, int]]  # one per approver entry, requester not yet removed
    quorum: int | str | None = None
    threshold: int | None = None

    @property
    def engine_pattern(self) -> str:
        return "sequential" if self.pattern == "sequential_list" else self.pattern


@st.composite
def scenarios(
    draw: st.DrawFn, patterns: list[str] = PATTERNS, requester_may_appear: bool = True
) -> Scenario:
    pattern = draw(st.sampled_from(patterns))
    raw: dict[str, Any]
    low = 1 if requester_may_appear else 2
    users = draw(st.lists(st.integers(low, 9), min_size=1, max_size=6, unique=True))
    if pattern == "parallel":
        n_slots = draw(st.integers(2, 3))
        groups = [
            dict.fromkeys(
                draw(st.lists(st.sampled_from(users), min_size=1, max_size=3, unique=True)), 1
            )
            for _ in range(n_slots)
        ]
        raw = {
            "pattern": "parallel",
            "approvers": [{"type": "role", "role": f"R{i}"} for i in range(n_slots)],
        }
        return Scenario(pattern, raw, groups, groups)
    if pattern == "sequential_list":
        raw = {"approvers": [{"type": "user", "user": f"u{u}"} for u in users]}
        groups = [{u: 1} for u in users]
        flat = dict.fromkeys(users, 1)
        return Scenario(pattern, raw, draw(st.sampled_from([flat, groups])), groups)
    weights = {u: draw(st.integers(1, 4)) if pattern == "weighted" else 1 for u in users}
    groups = [weights]
    raw = {"required_role": "R"}
    if pattern != "sequential":
        raw["pattern"] = pattern
    scenario = Scenario(pattern, raw, weights, groups)
    if pattern == "quorum":
        scenario.quorum = draw(
            st.one_of(
                st.integers(1, 7), st.sampled_from(["1%", "34%", "50%", "60%", "66.67%", "100%"])
            )
        )
        raw["quorum"] = scenario.quorum
    if pattern == "weighted":
        scenario.threshold = draw(st.integers(1, sum(weights.values()) + 2))
        raw["threshold"] = scenario.threshold
    return scenario


class Reference:
    """What should happen, computed the slow and obvious way."""

    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.slots = [{u: w for u, w in g.items() if u != REQ} for g in scenario.groups]
        self.eligible: dict[int, int] = {}
        for slot in self.slots:
            for u, w in slot.items():
                self.eligible[u] = max(w, self.eligible.get(u, 0))
        self.n = len(self.eligible)
        self.decisions: list[tuple[int, str]] = []
        self.status = "open"

    def submission_refusal(self) -> str | None:
        slotted = self.s.engine_pattern in ("sequential", "parallel") and len(self.slots) > 1
        if not self.eligible or (slotted and not all(self.slots)):
            return "no_eligible_approver"
        if self.s.pattern == "parallel" and not self._covers(list(self.eligible)):
            return "not_enough_approvers"
        if self.s.pattern == "quorum" and self._quorum_need() > self.n:
            return "not_enough_approvers"
        if self.s.pattern == "weighted":
            assert self.s.threshold is not None
            if sum(self.eligible.values()) < self.s.threshold:
                return "not_enough_approvers"
        return None

    def _quorum_need(self) -> int:
        q = self.s.quorum
        if isinstance(q, int):
            return q
        assert isinstance(q, str)
        return math.ceil(Fraction(q[:-1]) * self.n / 100)

    def _covers(self, people: list[int]) -> bool:
        k = len(self.slots)
        return any(
            all(perm[i] in self.slots[i] for i in range(k))
            for perm in itertools.permutations(people, k)
        )

    def _order(self) -> list[int]:
        return [next(iter(slot)) for slot in self.slots]

    def expect(self, actor: int, behalf: int | None) -> str | None:
        """The refusal code expected for this attempt, or None if it must be accepted."""
        if behalf == actor:
            behalf = None
        principal = behalf if behalf is not None else actor
        if self.status != "open":
            return "not_pending"
        if REQ in (actor, behalf):
            return "self_approval"
        if principal not in self.eligible:
            return "not_eligible"
        if principal in {p for p, _ in self.decisions}:
            return "already_decided"
        if self.s.pattern == "sequential_list":
            approved = sum(1 for _, v in self.decisions if v == "approve")
            if self._order()[approved] != principal:
                return "out_of_turn"
        return None

    def record(self, principal: int, verdict: str) -> None:
        self.decisions.append((principal, verdict))
        if verdict == "request_changes":
            self.status = "changes_requested"
            return
        self.status = self._status()

    def _status(self) -> str:
        approvers = [p for p, v in self.decisions if v == "approve"]
        rejects = [p for p, v in self.decisions if v == "reject"]
        undecided = [u for u in self.eligible if u not in {p for p, _ in self.decisions}]
        pattern = self.s.pattern
        if pattern == "first_response" or (pattern == "sequential" and len(self.slots) == 1):
            return "approved" if self.decisions[0][1] == "approve" else "rejected"
        if pattern in ("sequential_list", "parallel", "unanimous") and rejects:
            return "rejected"
        if pattern == "sequential_list":
            return "approved" if len(approvers) == len(self.slots) else "open"
        if pattern == "parallel":
            return "approved" if self._covers(approvers) else "open"
        if pattern == "unanimous":
            return "approved" if len(approvers) == self.n else "open"
        if pattern == "majority":
            if 2 * len(approvers) > self.n:
                return "approved"
            return "rejected" if 2 * (len(approvers) + len(undecided)) <= self.n else "open"
        if pattern == "quorum":
            need = self._quorum_need()
            if len(approvers) >= need:
                return "approved"
            return "rejected" if len(approvers) + len(undecided) < need else "open"
        assert pattern == "weighted" and self.s.threshold is not None
        have = sum(self.eligible[p] for p in approvers)
        if have >= self.s.threshold:
            return "approved"
        possible = have + sum(self.eligible[u] for u in undecided)
        return "rejected" if possible < self.s.threshold else "open"


def submit(scenario: Scenario) -> Transition:
    defn = parse_definition("prop", {"name": "P", "steps": [{"name": "s", **scenario.raw_step}]})
    return start(
        defn,
        requester_id=REQ,
        requester_roles=(),
        input_data={},
        eligible_by_step=[scenario.eligible_input],
        now=NOW,
    )


REQUEST_STATUS = {
    "open": "pending",
    "approved": "approved",
    "rejected": "rejected",
    "changes_requested": "changes_requested",
}
STEP_STATUS = {
    "open": "active",
    "approved": "approved",
    "rejected": "rejected",
    "changes_requested": "active",
}


def attempt(
    state: RequestState, actor: int, behalf: int | None, verdict: str, minute: int
) -> Transition | Refusal:
    try:
        return decide(
            state,
            actor_id=actor,
            on_behalf_of_id=behalf,
            step_index=0,
            verdict=verdict,
            now=NOW + timedelta(minutes=minute),
            mfa_fresh=False,
        )
    except Refusal as refusal:
        return refusal


def people(scenario: Scenario) -> list[int]:
    return sorted({u for g in scenario.groups for u in g} | {REQ, OUTSIDER})


@settings(max_examples=500, deadline=None)
@given(scenario=scenarios(), data=st.data())
def test_engine_matches_the_reference_model(scenario: Scenario, data: st.DataObject) -> None:
    """Every attempt is accepted or refused exactly as the reference says; the pattern
    arithmetic agrees after each decision; nothing is accepted after a terminal state; the
    requester never decides; each principal decides once; the step completes exactly once."""
    who = st.sampled_from(people(scenario))
    moves = data.draw(
        st.lists(
            st.tuples(
                who,
                st.one_of(st.none(), who),
                st.sampled_from(["approve", "approve", "reject", "request_changes"]),
            ),
            max_size=14,
        )
    )
    ref = Reference(scenario)
    expected_refusal = ref.submission_refusal()
    try:
        state = submit(scenario).state
    except Refusal as refusal:
        assert refusal.code == expected_refusal
        return
    assert expected_refusal is None
    assert dict(state.steps[0].eligible) == ref.eligible
    completions = 0
    for minute, (actor, behalf, verdict) in enumerate(moves):
        expected = ref.expect(actor, behalf)
        result = attempt(state, actor, behalf, verdict, minute)
        if isinstance(result, Refusal):
            assert result.code == expected, (result, expected)
            continue
        assert expected is None, f"accepted, but the reference expected {expected}"
        principal = behalf if behalf not in (None, actor) else actor
        assert principal is not None
        ref.record(principal, verdict)
        completions += sum(
            1 for e in result.events if e.kind in ("step_completed", "step_rejected")
        )
        state = result.state
        assert state.status == REQUEST_STATUS[ref.status]
        assert state.steps[0].status == STEP_STATUS[ref.status]
        assert state_from_dict(state_to_dict(state)) == state

    decisions = state.steps[0].decisions
    principals = [d.principal for d in decisions]
    assert len(principals) == len(set(principals))
    assert all(REQ not in (d.actor_id, d.on_behalf_of_id) for d in decisions)
    assert completions == (1 if state.status in ("approved", "rejected") else 0)
    if state.is_terminal or state.status == "changes_requested":
        for actor in range(1, OUTSIDER + 1):
            assert isinstance(attempt(state, actor, None, "approve", 99), Refusal)


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios(), behalf=st.one_of(st.none(), st.integers(2, OUTSIDER)), data=st.data())
def test_the_requester_can_never_decide(
    scenario: Scenario, behalf: int | None, data: st.DataObject
) -> None:
    """Whatever the state, the requester acting (or being acted for) is refused."""
    try:
        state = submit(scenario).state
    except Refusal:
        return
    for actor in data.draw(st.lists(st.integers(2, 9), max_size=4)):
        result = attempt(state, actor, None, "approve", 0)
        if isinstance(result, Transition):
            state = result.state
    for verdict in ("approve", "reject", "request_changes"):
        for actor_id, on_behalf in ((REQ, behalf), (behalf or 2, REQ)):
            result = attempt(state, actor_id, on_behalf, verdict, 1)
            assert isinstance(result, Refusal)
            assert result.code in ("self_approval", "not_pending")


def final_status(scenario: Scenario, votes: list[tuple[int, str]]) -> str:
    """Apply the votes in order, retrying out-of-turn ones until nothing moves."""
    state = submit(scenario).state
    pending = list(votes)
    while pending:
        progressed = False
        for vote in list(pending):
            result = attempt(state, vote[0], None, vote[1], 0)
            if isinstance(result, Transition):
                state = result.state
                pending.remove(vote)
                progressed = True
            elif result.code != "out_of_turn":
                pending.remove(vote)
        if not progressed:
            break
    return state.status


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios(requester_may_appear=False), data=st.data())
def test_any_order_of_the_same_approvals_ends_the_same(
    scenario: Scenario, data: st.DataObject
) -> None:
    """Everyone approving, in any order, always approves the step."""
    assume(Reference(scenario).submission_refusal() is None)
    votes = [(u, "approve") for u in Reference(scenario).eligible]
    first = data.draw(st.permutations(votes))
    second = data.draw(st.permutations(votes))
    assert final_status(scenario, first) == final_status(scenario, second) == "approved"


@settings(max_examples=300, deadline=None)
@given(scenario=scenarios(COUNT_PATTERNS, requester_may_appear=False), data=st.data())
def test_counted_patterns_do_not_depend_on_order(scenario: Scenario, data: st.DataObject) -> None:
    """When everyone votes, approve or reject, the order never changes a counted outcome."""
    ref = Reference(scenario)
    assume(ref.submission_refusal() is None)
    votes = [(u, data.draw(st.sampled_from(["approve", "reject"]))) for u in ref.eligible]
    outcomes = {final_status(scenario, data.draw(st.permutations(votes))) for _ in range(3)}
    assert len(outcomes) == 1
    for principal, verdict in votes:
        if ref.status == "open":
            ref.record(principal, verdict)
    assert outcomes == {REQUEST_STATUS[ref.status]}


steps_strategy = st.lists(
    st.tuples(
        st.sampled_from(["sequential", "unanimous", "majority", "first_response"]),
        st.lists(st.integers(2, 6), min_size=1, max_size=3, unique=True),
        st.booleans(),  # joins the previous step's parallel group
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(
    steps=steps_strategy,
    moves=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(1, 7),
            st.sampled_from(["approve", "approve", "approve", "reject"]),
        ),
        max_size=20,
    ),
)
def test_multi_step_structure(
    steps: list[tuple[str, list[int], bool]], moves: list[tuple[int, int, str]]
) -> None:
    """Only the first unfinished step or group is active; each step completes at most
    once; the request is approved exactly when every step is; nothing moves afterwards."""
    raw_steps = []
    group = 0
    for i, (pattern, _, joins) in enumerate(steps):
        if not (joins and i):
            group += 1
        raw = {"name": f"s{i}", "required_role": "R", "parallel_group": f"g{group}"}
        if pattern != "sequential":
            raw["pattern"] = pattern
        raw_steps.append(raw)
    defn = parse_definition("multi", {"name": "M", "steps": raw_steps})
    state = start(
        defn,
        requester_id=REQ,
        requester_roles=(),
        input_data={},
        eligible_by_step=[dict.fromkeys(users, 1) for _, users, _ in steps],
        now=NOW,
    ).state
    finished: dict[int, int] = {}
    for minute, (index, actor, verdict) in enumerate(moves):
        index = min(index, len(steps) - 1)
        was_terminal = state.is_terminal
        try:
            t = decide(
                state,
                actor_id=actor,
                step_index=index,
                verdict=verdict,
                now=NOW + timedelta(minutes=minute),
                mfa_fresh=True,
            )
        except Refusal:
            continue
        assert not was_terminal
        for e in t.events:
            if e.kind in ("step_completed", "step_rejected"):
                assert e.step is not None
                finished[e.step] = finished.get(e.step, 0) + 1
        state = t.state
        if state.status == "pending":
            active = state.active_steps
            first_open = next(i for i, s in enumerate(state.steps) if not s.is_done)
            group_of = state.steps[first_open].parallel_group
            same_group = [
                i
                for i, s in enumerate(state.steps)
                if s.parallel_group == group_of and s.status == "active"
            ]
            assert active and set(active) == set(same_group)
            assert all(s.is_done for s in state.steps[:first_open])
            assert all(
                s.status == "waiting"
                for s in state.steps
                if s.parallel_group != group_of and s.index > first_open
            )
    assert all(count == 1 for count in finished.values())
    assert (state.status == "approved") == all(s.status == "approved" for s in state.steps)
    if state.status == "rejected":
        assert sum(1 for s in state.steps if s.status == "rejected") == 1
        assert state.active_steps == ()
